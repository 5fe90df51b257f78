"""aws-cli (v1, `aws s3` and `aws s3api`) against tessera over http and over https.

Over http botocore signs the payload (hex SHA-256) and sends the CRC32 as a header; over https it
streams object data (PutObject, UploadPart) as STREAMING-UNSIGNED-PAYLOAD-TRAILER (aws-chunked
with a CRC32 trailer) and still signs the other requests' payloads. Each scheme runs the same
checks; the payload mode is asserted from aws-cli's own debug log so the test knows which path
it exercised.

Owns: the aws-cli checks. Must never: use the machine's AWS configuration or CA bundle, or
accept a transfer without comparing hashes.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error

import pytest

import harness
from harness import MIB, AwsCli

SMALL = harness.det_bytes(3000, seed=11)
BIG = harness.det_bytes(20 * 1000 * 1000, seed=12)  # 3 parts of 8 MiB chunks


@pytest.fixture(scope="module", params=["http", "https"])
def cli(request, tmp_path_factory):
    srv = request.getfixturevalue("server" if request.param == "http" else "tls_server")
    return AwsCli(srv, tmp_path_factory.mktemp(f"awscli-{request.param}"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("awscli-files")
    (d / "small.bin").write_bytes(SMALL)
    (d / "big.bin").write_bytes(BIG)
    tree = d / "tree"
    (tree / "sub").mkdir(parents=True)
    for i in range(5):
        (tree / f"f{i}.txt").write_bytes(harness.det_bytes(100 + i * 1000, seed=100 + i))
    (tree / "sub" / "deep.bin").write_bytes(harness.det_bytes(9 * MIB, seed=200))
    return d


@pytest.fixture(scope="module")
def bucket(cli):
    name = harness.unique_bucket("awscli")
    out = cli("s3", "mb", f"s3://{name}").stdout.decode()
    assert f"make_bucket: {name}" in out
    yield name
    cli("s3", "rb", "--force", f"s3://{name}", check=False)


def test_cp_small_and_multipart(cli, bucket, files, tmp_path):
    cli("s3", "cp", str(files / "small.bin"), f"s3://{bucket}/data/small.bin")
    cli("s3", "cp", str(files / "big.bin"), f"s3://{bucket}/data/big.bin")
    head = cli.json("s3api", "head-object", "--bucket", bucket, "--key", "data/big.bin")
    assert head["ContentLength"] == len(BIG)
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]
    for name, data in (("small.bin", SMALL), ("big.bin", BIG)):
        cli("s3", "cp", f"s3://{bucket}/data/{name}", str(tmp_path / name))
        assert harness.sha256_file(tmp_path / name) == harness.sha256(data), name


def test_payload_mode(cli, bucket, files):
    """The uploads really used the modes this scheme is documented to use."""
    modes = set()
    for name in ("small.bin", "big.bin"):  # a single PutObject, then a multipart upload
        proc = cli("--debug", "s3", "cp", str(files / name), f"s3://{bucket}/mode/{name}")
        log = proc.stderr.decode(errors="replace")
        modes |= set(re.findall(r"x-amz-content-sha256:([A-Za-z0-9-]+)", log))
    assert modes, "no canonical request in aws --debug output"
    named = {"signed-sha256" if re.fullmatch(r"[0-9a-f]{64}", m) else m for m in modes}
    harness.note(f"aws-cli {cli.server.endpoint.split(':')[0]} payload modes: {sorted(named)}")
    if cli.server.https:
        # Object data: aws-chunked with a CRC32 trailer; CompleteMultipartUpload & co: signed.
        assert named == {"STREAMING-UNSIGNED-PAYLOAD-TRAILER", "signed-sha256"}, named
    else:
        assert named == {"signed-sha256"}, named
    for name, data in (("small.bin", SMALL), ("big.bin", BIG)):
        got = cli("s3", "cp", f"s3://{bucket}/mode/{name}", "-").stdout
        assert harness.sha256(got) == harness.sha256(data), name


def test_s3api_put_get_range(cli, bucket, files, tmp_path):
    put = cli.json("s3api", "put-object", "--bucket", bucket, "--key", "api/big.bin",
                   "--body", str(files / "big.bin"), "--content-type", "application/x-big",
                   "--metadata", "origin=awscli")
    assert put["ETag"].strip('"') == hashlib.md5(BIG).hexdigest()
    out = tmp_path / "range.bin"
    r = cli.json("s3api", "get-object", "--bucket", bucket, "--key", "api/big.bin",
                 "--range", "bytes=1000000-1999999", str(out))
    assert r["ContentRange"] == f"bytes 1000000-1999999/{len(BIG)}"
    assert out.read_bytes() == BIG[1000000:2000000]
    r = cli.json("s3api", "get-object", "--bucket", bucket, "--key", "api/big.bin",
                 "--range", "bytes=-10", str(out))
    assert out.read_bytes() == BIG[-10:]
    head = cli.json("s3api", "head-object", "--bucket", bucket, "--key", "api/big.bin")
    assert head["ContentType"] == "application/x-big"
    assert head["Metadata"] == {"origin": "awscli"}
    bad = cli("s3api", "get-object", "--bucket", bucket, "--key", "api/big.bin",
              "--range", f"bytes={len(BIG) * 2}-", str(out), check=False)
    assert bad.returncode != 0 and b"InvalidRange" in bad.stderr


def test_list_prefix_delimiter(cli, bucket, files):
    cli("s3", "cp", "--recursive", str(files / "tree"), f"s3://{bucket}/tree/")
    r = cli.json("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "tree/",
                 "--delimiter", "/")
    assert [o["Key"] for o in r["Contents"]] == [f"tree/f{i}.txt" for i in range(5)]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["tree/sub/"]
    ls = cli("s3", "ls", f"s3://{bucket}/tree/").stdout.decode()
    assert "PRE sub/" in ls and "f4.txt" in ls
    ls = cli("s3", "ls", "--recursive", f"s3://{bucket}/tree/").stdout.decode()
    assert "tree/sub/deep.bin" in ls
    v1 = cli.json("s3api", "list-objects", "--bucket", bucket, "--prefix", "tree/",
                  "--delimiter", "/", "--max-keys", "2")
    assert v1["IsTruncated"] is True and len(v1["Contents"]) == 2
    buckets = cli("s3", "ls").stdout.decode()
    assert bucket in buckets


def test_copy_server_side(cli, bucket, files, tmp_path):
    cli("s3", "cp", str(files / "small.bin"), f"s3://{bucket}/copy/small.bin")
    cli("s3", "cp", str(files / "big.bin"), f"s3://{bucket}/copy/big.bin")
    cli("s3", "cp", f"s3://{bucket}/copy/small.bin", f"s3://{bucket}/copy/small-2.bin")
    # Above the 8 MB threshold aws-cli copies with UploadPartCopy and byte ranges.
    cli("s3", "cp", f"s3://{bucket}/copy/big.bin", f"s3://{bucket}/copy/big-2.bin")
    cli.json("s3api", "copy-object", "--bucket", bucket, "--key", "copy/small-3.bin",
             "--copy-source", f"{bucket}/copy/small.bin", "--metadata-directive", "REPLACE",
             "--content-type", "text/x-copied")
    head = cli.json("s3api", "head-object", "--bucket", bucket, "--key", "copy/small-3.bin")
    assert head["ContentType"] == "text/x-copied"
    for key, data in (("small-2.bin", SMALL), ("big-2.bin", BIG), ("small-3.bin", SMALL)):
        cli("s3", "cp", f"s3://{bucket}/copy/{key}", str(tmp_path / key))
        assert harness.sha256_file(tmp_path / key) == harness.sha256(data), key


def test_sync_round_trip_and_delete(cli, bucket, files, tmp_path):
    cli("s3", "sync", str(files / "tree"), f"s3://{bucket}/sync/")
    back = tmp_path / "back"
    cli("s3", "sync", f"s3://{bucket}/sync/", str(back))
    assert harness.files_under(back) == harness.files_under(files / "tree")
    for rel in harness.files_under(files / "tree"):
        src = files / "tree" / rel
        if src.is_file():
            assert harness.sha256_file(back / rel) == harness.sha256_file(src), rel
    # A second sync has nothing to upload.
    again = cli("s3", "sync", str(files / "tree"), f"s3://{bucket}/sync/").stdout.decode()
    assert "upload:" not in again
    cli("s3", "rm", f"s3://{bucket}/sync/f0.txt")
    cli("s3", "rm", "--recursive", f"s3://{bucket}/sync/sub/")
    r = cli.json("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "sync/")
    assert sorted(o["Key"] for o in r["Contents"]) == [f"sync/f{i}.txt" for i in range(1, 5)]
    cli("s3api", "delete-objects", "--bucket", bucket, "--delete",
        json.dumps({"Objects": [{"Key": f"sync/f{i}.txt"} for i in range(1, 5)], "Quiet": True}))
    r = cli.json("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "sync/")
    assert not r.get("Contents")


@pytest.mark.parametrize("profile", ["sigv4", "default"])
def test_presign(cli, bucket, files, profile):
    """`aws s3 presign`: aws-cli v1 presigns with SigV2 unless s3v4 is configured."""
    cli("s3", "cp", str(files / "small.bin"), f"s3://{bucket}/presign/small.bin")
    url = cli("--profile", profile, "s3", "presign", f"s3://{bucket}/presign/small.bin",
              "--expires-in", "300").stdout.decode().strip()
    if profile == "default":
        assert "Signature=" in url and "X-Amz-" not in url, url
    else:
        assert "X-Amz-Signature=" in url, url
    with cli.server.urlopen(url) as resp:
        assert resp.status == 200 and resp.read() == SMALL
    with pytest.raises(urllib.error.HTTPError) as e:
        cli.server.urlopen(url.replace("presign/small.bin", "presign/other.bin"))
    assert e.value.code == 403  # the signature covers the path


def test_zz_remove_bucket(cli, bucket):
    nonempty = cli("s3", "rb", f"s3://{bucket}", check=False)
    assert nonempty.returncode != 0 and b"BucketNotEmpty" in nonempty.stderr
    cli("s3", "rm", "--recursive", f"s3://{bucket}/")
    cli("s3", "rb", f"s3://{bucket}")
    gone = cli("s3api", "head-bucket", "--bucket", bucket, check=False)
    assert gone.returncode != 0
