"""boto3 against tessera over http: signed payloads, multipart, listing, ranges, copy, presign,
conditional writes and flexible checksums.

Owns: the boto3 checks. Must never: accept an answer without checking the bytes or the error
code, or leave its bucket behind when it passes.
"""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

import harness
from conftest import make_client
from harness import MIB

SMALL = harness.det_bytes(1000, seed=1)
BIG = harness.det_bytes(20 * 1000 * 1000, seed=2)  # 20 MB: four 5 MiB parts
TRANSFER = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB,
                          max_concurrency=4)


def error_code(exc: ClientError) -> tuple[str, int]:
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]


class PayloadModes:
    """Records the x-amz-content-sha256 value boto3 sent for each operation (context manager)."""

    def __init__(self, client):
        self.client = client
        self.seen: dict[str, set[str]] = {}

    def __enter__(self):
        self.client.meta.events.register("before-send.s3", self._record)
        return self

    def __exit__(self, *exc):
        self.client.meta.events.unregister("before-send.s3", self._record)

    def _record(self, request, event_name="", **_):
        mode = request.headers.get("x-amz-content-sha256", b"")
        if isinstance(mode, bytes):
            mode = mode.decode()
        if len(mode) == 64:
            mode = "signed-sha256"
        self.seen.setdefault(event_name.rsplit(".", 1)[-1], set()).add(mode)


@pytest.fixture(scope="module")
def bucket(s3):
    name = harness.unique_bucket("boto3")
    s3.create_bucket(Bucket=name)
    yield name
    # Best-effort cleanup; test_zz_delete_bucket checks deletion for real.
    try:
        for obj in s3.list_objects_v2(Bucket=name).get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
        s3.delete_bucket(Bucket=name)
    except ClientError:
        pass


def test_bucket_listed_and_head(s3, bucket):
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert bucket in names
    assert s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    loc = s3.get_bucket_location(Bucket=bucket)
    assert loc.get("LocationConstraint") in (None, "", harness.REGION)


def test_small_put_get_signed_payload(s3, bucket):
    with PayloadModes(s3) as modes:
        put = s3.put_object(Bucket=bucket, Key="small/one.bin", Body=SMALL,
                            ContentType="application/x-test", Metadata={"colour": "blue"})
    assert put["ETag"].strip('"') == hashlib.md5(SMALL).hexdigest()
    got = s3.get_object(Bucket=bucket, Key="small/one.bin")
    assert harness.sha256(got["Body"].read()) == harness.sha256(SMALL)
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"colour": "blue"}
    assert got["ContentLength"] == len(SMALL)
    head = s3.head_object(Bucket=bucket, Key="small/one.bin")
    assert head["ContentLength"] == len(SMALL) and head["ETag"] == put["ETag"]
    # Over http botocore signs the payload itself (hex sha256 in x-amz-content-sha256).
    assert modes.seen.get("PutObject") == {"signed-sha256"}, modes.seen
    harness.note(f"boto3 http payload modes: {modes.seen}")


def test_empty_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="small/empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="small/empty")
    assert got["Body"].read() == b"" and got["ContentLength"] == 0
    assert got["ETag"].strip('"') == "d41d8cd98f00b204e9800998ecf8427e"


def test_multipart_20mb(s3, bucket):
    s3.upload_fileobj(io.BytesIO(BIG), bucket, "big/twenty.bin", Config=TRANSFER)
    head = s3.head_object(Bucket=bucket, Key="big/twenty.bin")
    assert head["ContentLength"] == len(BIG)
    assert head["ETag"].strip('"').endswith("-4"), head["ETag"]
    out = io.BytesIO()
    s3.download_fileobj(bucket, "big/twenty.bin", out, Config=TRANSFER)
    assert harness.sha256(out.getvalue()) == harness.sha256(BIG)
    part2 = s3.get_object(Bucket=bucket, Key="big/twenty.bin", PartNumber=2)
    assert part2["Body"].read() == BIG[5 * MIB:10 * MIB]
    assert part2["PartsCount"] == 4


def test_multipart_low_level_and_list_parts(s3, bucket):
    key = "big/manual.bin"
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)
    uid = up["UploadId"]
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix="big/")
    assert uid in [u["UploadId"] for u in uploads.get("Uploads", [])]
    parts = []
    chunks = [BIG[:5 * MIB], BIG[5 * MIB:6 * MIB]]
    for n, chunk in enumerate(chunks, start=1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=chunk)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
    assert [p["Size"] for p in listed["Parts"]] == [5 * MIB, MIB]
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                 MultipartUpload={"Parts": parts})
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert harness.sha256(body) == harness.sha256(BIG[:6 * MIB])
    # An aborted upload disappears.
    up2 = s3.create_multipart_upload(Bucket=bucket, Key="big/aborted")
    s3.abort_multipart_upload(Bucket=bucket, Key="big/aborted", UploadId=up2["UploadId"])
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="big/aborted", UploadId=up2["UploadId"])
    assert error_code(e.value) == ("NoSuchUpload", 404)


def test_list_prefix_delimiter(s3, bucket):
    for key in ("tree/a.txt", "tree/b.txt", "tree/sub/c.txt", "tree/sub/deeper/d.txt",
                "tree2/e.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    r = s3.list_objects_v2(Bucket=bucket, Prefix="tree/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["tree/a.txt", "tree/b.txt"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["tree/sub/"]
    r = s3.list_objects_v2(Bucket=bucket, Prefix="tree")
    assert [o["Key"] for o in r["Contents"]] == [
        "tree/a.txt", "tree/b.txt", "tree/sub/c.txt", "tree/sub/deeper/d.txt", "tree2/e.txt"]
    # Pagination with continuation tokens.
    keys, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, Prefix="tree", MaxKeys=2, **kw)
        keys += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert len(keys) == 5 and keys == sorted(keys)
    # ListObjects v1 with a marker.
    v1 = s3.list_objects(Bucket=bucket, Prefix="tree/", Marker="tree/b.txt")
    assert [o["Key"] for o in v1["Contents"]] == ["tree/sub/c.txt", "tree/sub/deeper/d.txt"]


def test_ranged_gets(s3, bucket):
    s3.put_object(Bucket=bucket, Key="range/obj", Body=BIG[:3 * MIB])
    data = BIG[:3 * MIB]
    n = len(data)
    for rng, expect, content_range in (
        ("bytes=0-9", data[:10], f"bytes 0-9/{len(data)}"),
        ("bytes=1048570-1048585", data[1048570:1048586], f"bytes 1048570-1048585/{n}"),
        (f"bytes={n - 100}-", data[-100:], f"bytes {n - 100}-{n - 1}/{n}"),
        ("bytes=-7", data[-7:], f"bytes {n - 7}-{n - 1}/{n}"),
    ):
        r = s3.get_object(Bucket=bucket, Key="range/obj", Range=rng)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert r["ContentRange"] == content_range
        assert r["Body"].read() == expect, rng
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="range/obj", Range=f"bytes={len(data) + 10}-")
    assert error_code(e.value) == ("InvalidRange", 416)


def test_copy(s3, bucket):
    s3.put_object(Bucket=bucket, Key="copy/src", Body=SMALL, Metadata={"k": "v"})
    s3.copy_object(Bucket=bucket, Key="copy/dst", CopySource={"Bucket": bucket, "Key": "copy/src"})
    got = s3.get_object(Bucket=bucket, Key="copy/dst")
    assert got["Body"].read() == SMALL and got["Metadata"] == {"k": "v"}
    s3.copy_object(Bucket=bucket, Key="copy/dst2", CopySource={"Bucket": bucket, "Key": "copy/src"},
                   MetadataDirective="REPLACE", Metadata={"k2": "v2"}, ContentType="text/plain")
    got = s3.get_object(Bucket=bucket, Key="copy/dst2")
    assert got["Body"].read() == SMALL and got["Metadata"] == {"k2": "v2"}
    assert got["ContentType"] == "text/plain"
    # Managed copy of the 20 MB object (multipart copy: UploadPartCopy with ranges).
    s3.upload_fileobj(io.BytesIO(BIG), bucket, "copy/big-src", Config=TRANSFER)
    s3.copy({"Bucket": bucket, "Key": "copy/big-src"}, bucket, "copy/big-dst", Config=TRANSFER)
    body = s3.get_object(Bucket=bucket, Key="copy/big-dst")["Body"].read()
    assert harness.sha256(body) == harness.sha256(BIG)


@pytest.mark.parametrize("signature_version", ["s3v4", "s3"])
def test_presigned_get_and_put(server, s3, bucket, signature_version):
    """Presigned URLs fetched with urllib: query SigV4 (s3v4) and SigV2 (s3)."""
    presigner = make_client(server, signature_version=signature_version)
    marker = "X-Amz-Signature=" if signature_version == "s3v4" else "Signature="
    key = f"presign/{signature_version}"
    s3.put_object(Bucket=bucket, Key=key, Body=SMALL)
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                           ExpiresIn=300)
    assert marker in url, url
    with server.urlopen(url) as resp:
        assert resp.status == 200 and resp.read() == SMALL
    # SigV2 signs the Content-Type too, so the URL is made for the type the PUT will send.
    put_url = presigner.generate_presigned_url(
        "put_object", ExpiresIn=300,
        Params={"Bucket": bucket, "Key": key + "-put", "ContentType": "application/octet-stream"})
    req = urllib.request.Request(put_url, data=BIG[:100_000], method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    with server.urlopen(req) as resp:
        assert resp.status == 200
    assert s3.get_object(Bucket=bucket, Key=key + "-put")["Body"].read() == BIG[:100_000]
    # A presigned URL with one character of its signature changed is refused.
    i = url.index(marker) + len(marker)
    bad = url[:i] + ("b" if url[i] == "a" else "a") + url[i + 1:]
    with pytest.raises(urllib.error.HTTPError) as e:
        server.urlopen(bad)
    assert e.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in e.value.read()


def test_conditional_put_if_none_match(s3, bucket):
    key = "cond/once"
    s3.put_object(Bucket=bucket, Key=key, Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key=key, Body=b"second", IfNoneMatch="*")
    assert error_code(e.value) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"first"


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256"])
def test_flexible_checksums(s3, bucket, algorithm):
    key = f"checksum/{algorithm}"
    expected = harness.crc32_b64(SMALL) if algorithm == "CRC32" else harness.sha256_b64(SMALL)
    put = s3.put_object(Bucket=bucket, Key=key, Body=SMALL, ChecksumAlgorithm=algorithm)
    assert put[f"Checksum{algorithm}"] == expected
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == expected
    got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert got["Body"].read() == SMALL  # botocore validates the returned checksum while reading
    assert got[f"Checksum{algorithm}"] == expected
    # A checksum that does not match the bytes is refused and nothing is stored.
    wrong = harness.crc32_b64(b"other") if algorithm == "CRC32" else harness.sha256_b64(b"other")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key=key + "-bad", Body=SMALL,
                      **{f"Checksum{algorithm}": wrong})
    assert error_code(e.value) in (("BadDigest", 400), ("XAmzContentChecksumMismatch", 400))
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key + "-bad")
    assert error_code(e.value)[1] == 404


def test_multipart_with_crc32(s3, bucket):
    cfg = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_fileobj(io.BytesIO(BIG), bucket, "checksum/mp", Config=cfg,
                      ExtraArgs={"ChecksumAlgorithm": "CRC32"})
    head = s3.head_object(Bucket=bucket, Key="checksum/mp", ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(BIG)
    assert head.get("ChecksumCRC32"), head
    got = s3.get_object(Bucket=bucket, Key="checksum/mp")["Body"].read()
    assert harness.sha256(got) == harness.sha256(BIG)


def test_delete_objects_and_missing(s3, bucket):
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"del/{i}", Body=b"x")
    r = s3.delete_objects(Bucket=bucket, Delete={
        "Objects": [{"Key": "del/0"}, {"Key": "del/1"}, {"Key": "del/missing"}]})
    assert sorted(d["Key"] for d in r.get("Deleted", [])) == ["del/0", "del/1", "del/missing"]
    assert not r.get("Errors")
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="del/").get("Contents", [])]
    assert left == ["del/2"]
    assert s3.delete_object(Bucket=bucket, Key="del/2")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.delete_object(Bucket=bucket, Key="del/2")["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="del/2")
    assert error_code(e.value) == ("NoSuchKey", 404)


def test_zz_delete_bucket(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=bucket)
    assert error_code(e.value) == ("BucketNotEmpty", 409)
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if objs:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objs, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=bucket)
    assert error_code(e.value)[1] == 404
