"""s3cmd against tessera over http: SigV4 with signed payloads, ListObjects v1, multipart put,
server-side copy, a resumed (ranged) get, and `signurl` (a SigV2 presigned URL).

Owns: the s3cmd checks. Must never: read the user's ~/.s3cfg or accept a transfer without
comparing hashes.
"""

from __future__ import annotations

import re
import time
import urllib.error
from pathlib import Path

import pytest

import harness

SMALL = harness.det_bytes(4096, seed=21)
BIG = harness.det_bytes(20 * 1000 * 1000, seed=22)  # 4 parts of 5 MiB


class S3cmd:
    def __init__(self, server: harness.Server, home: Path):
        self.server = server
        home.mkdir(parents=True, exist_ok=True)
        self.config = home / "s3cfg"
        self.config.write_text(
            "[default]\n"
            f"access_key = {server.access_key}\n"
            f"secret_key = {server.secret_key}\n"
            f"host_base = {server.host_port}\n"
            f"host_bucket = {server.host_port}\n"
            f"bucket_location = {harness.REGION}\n"
            "use_https = False\n"
            "signature_v2 = False\n"
            "check_ssl_certificate = True\n"
            "guess_mime_type = False\n"
            "socket_timeout = 60\n"
            "max_retries = 1\n"
            "progress_meter = False\n"
        )
        self.env = harness.clean_env(HOME=str(home))

    def __call__(self, *args: str, check: bool = True, timeout: float = 300):
        cmd = [harness.tool("s3cmd"), "-c", str(self.config), *args]
        return harness.run(cmd, env=self.env, check=check, timeout=timeout)


@pytest.fixture(scope="module")
def s3cmd(server, tmp_path_factory):
    return S3cmd(server, tmp_path_factory.mktemp("s3cmd-home"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("s3cmd-files")
    (d / "small.bin").write_bytes(SMALL)
    (d / "big.bin").write_bytes(BIG)
    return d


@pytest.fixture(scope="module")
def bucket(s3cmd):
    name = harness.unique_bucket("s3cmd")
    out = s3cmd("mb", f"s3://{name}").stdout.decode()
    assert f"Bucket 's3://{name}/' created" in out
    yield name
    s3cmd("rb", "--recursive", "--force", f"s3://{name}", check=False)


def test_put_get_small(s3cmd, bucket, files, tmp_path):
    s3cmd("put", str(files / "small.bin"), f"s3://{bucket}/dir/small.bin")
    s3cmd("get", f"s3://{bucket}/dir/small.bin", str(tmp_path / "small.bin"))
    assert (tmp_path / "small.bin").read_bytes() == SMALL
    info = s3cmd("info", f"s3://{bucket}/dir/small.bin").stdout.decode()
    assert str(len(SMALL)) in info


def test_multipart_put(s3cmd, s3, bucket, files, tmp_path):
    s3cmd("put", "--multipart-chunk-size-mb=5", str(files / "big.bin"),
          f"s3://{bucket}/dir/big.bin")
    etag = s3.head_object(Bucket=bucket, Key="dir/big.bin")["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}-4"', etag), etag  # really a 4-part multipart upload
    # s3cmd get checks the MD5 it stored in x-amz-meta-s3cmd-attrs against the bytes.
    s3cmd("get", f"s3://{bucket}/dir/big.bin", str(tmp_path / "big.bin"))
    assert harness.sha256_file(tmp_path / "big.bin") == harness.sha256(BIG)


def test_payload_mode(s3cmd, bucket, files):
    """s3cmd signs its payloads (SigV4, hex SHA-256 of the body)."""
    proc = s3cmd("-d", "put", str(files / "small.bin"), f"s3://{bucket}/mode/small.bin")
    log = (proc.stdout + proc.stderr).decode(errors="replace")
    modes = set(re.findall(r"x-amz-content-sha256'?[:,]\s*'?([0-9a-zA-Z-]+)", log))
    assert harness.sha256(SMALL) in modes, modes
    harness.note("s3cmd http payload modes: put signed with the body's SHA-256 (SigV4)")
    s3cmd("del", f"s3://{bucket}/mode/small.bin")


def test_resumed_get_uses_range(s3cmd, bucket, files, tmp_path):
    s3cmd("put", str(files / "big.bin"), f"s3://{bucket}/dir/resume.bin")
    partial = tmp_path / "resume.bin"
    partial.write_bytes(BIG[:7_654_321])
    s3cmd("get", "--continue", f"s3://{bucket}/dir/resume.bin", str(partial))
    assert harness.sha256_file(partial) == harness.sha256(BIG)


def test_ls_prefix(s3cmd, bucket, files):
    s3cmd("put", str(files / "small.bin"), f"s3://{bucket}/dir/sub/a.bin")
    s3cmd("put", str(files / "small.bin"), f"s3://{bucket}/other.bin")
    top = s3cmd("ls", f"s3://{bucket}").stdout.decode()
    assert re.search(rf"DIR\s+s3://{bucket}/dir/", top), top
    assert f"s3://{bucket}/other.bin" in top
    lines = s3cmd("ls", f"s3://{bucket}/dir/").stdout.decode()
    assert f"s3://{bucket}/dir/sub/" in lines and f"s3://{bucket}/dir/small.bin" in lines
    rec = s3cmd("ls", "--recursive", f"s3://{bucket}/dir/").stdout.decode()
    assert f"s3://{bucket}/dir/sub/a.bin" in rec
    assert f"s3://{bucket}/other.bin" not in rec
    buckets = s3cmd("ls").stdout.decode()
    assert f"s3://{bucket}" in buckets


def test_copy_and_move(s3cmd, bucket, tmp_path):
    s3cmd("cp", f"s3://{bucket}/dir/small.bin", f"s3://{bucket}/copies/small.bin")
    s3cmd("mv", f"s3://{bucket}/copies/small.bin", f"s3://{bucket}/copies/moved.bin")
    s3cmd("get", f"s3://{bucket}/copies/moved.bin", str(tmp_path / "moved.bin"))
    assert (tmp_path / "moved.bin").read_bytes() == SMALL
    gone = s3cmd("info", f"s3://{bucket}/copies/small.bin", check=False)
    assert gone.returncode != 0


def test_signurl(s3cmd, server, bucket):
    url = s3cmd("signurl", f"s3://{bucket}/dir/small.bin", f"+{300}").stdout.decode().strip()
    assert "Signature=" in url and "Expires=" in url, url
    with server.urlopen(url) as resp:
        assert resp.status == 200 and resp.read() == SMALL
    expired = s3cmd("signurl", f"s3://{bucket}/dir/small.bin",
                    str(int(time.time()) - 60)).stdout.decode().strip()
    with pytest.raises(urllib.error.HTTPError) as e:
        server.urlopen(expired)
    assert e.value.code == 403


def test_zz_delete_and_remove_bucket(s3cmd, bucket):
    s3cmd("del", f"s3://{bucket}/other.bin")
    listing = s3cmd("ls", "--recursive", f"s3://{bucket}").stdout.decode()
    assert "other.bin" not in listing
    notempty = s3cmd("rb", f"s3://{bucket}", check=False)
    assert notempty.returncode != 0 and b"BucketNotEmpty" in notempty.stderr + notempty.stdout
    s3cmd("del", "--recursive", "--force", f"s3://{bucket}")
    assert s3cmd("ls", "--recursive", f"s3://{bucket}").stdout.strip() == b""
    out = s3cmd("rb", f"s3://{bucket}").stdout.decode()
    assert "removed" in out
