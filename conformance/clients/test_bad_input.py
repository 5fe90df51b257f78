"""Bad input over raw HTTP (http.client, signed with botocore's S3SigV4Auth): malformed XML,
wrong signatures, expired presigns, absurd ranges, oversized headers, `../` keys, unknown
operations. Each must get its S3 error status and code in an XML body, and leave the store
exactly as it was.

Owns: the negative checks against the binary. Must never: send anything a real client library
would "fix" on the way (requests are built byte for byte here), or accept a 2xx for bad input.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import secrets
import time
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import harness


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def error_code(self) -> str:
        """The <Code> of an S3 XML error body (fails the test if the body is not one)."""
        assert self.body, f"HTTP {self.status} without an XML error body"
        try:
            root = ET.fromstring(self.body)
        except ET.ParseError as e:
            raise AssertionError(f"HTTP {self.status}, body is not XML ({e}): {self.body[:200]!r}")
        assert root.tag == "Error", f"HTTP {self.status}, not an S3 error: {self.body[:300]!r}"
        code = root.findtext("Code")
        assert code, self.body[:300]
        assert root.findtext("RequestId") is not None or "x-amz-request-id" in self.headers
        return code


def send(server: harness.Server, method: str, path: str, query: str = "", body: bytes = b"",
         headers: dict[str, str] | None = None, secret: str | None = None,
         access_key: str | None = None, service: str = "s3", sign: bool = True,
         after_sign: dict[str, str] | None = None, timeout: float = 30) -> Reply:
    """Sends exactly `method path?query` with `body`, SigV4-signed (payload signed)."""
    target = path + (f"?{query}" if query else "")
    headers = dict(headers or {})
    if sign:
        creds = Credentials(access_key or server.access_key, secret or server.secret_key)
        req = AWSRequest(method=method, url=server.endpoint + target, data=body, headers=headers)
        signer = S3SigV4Auth if service == "s3" else SigV4Auth
        signer(creds, service, harness.REGION).add_auth(req)
        headers = {k: v for k, v in req.headers.items()}
    headers.update(after_sign or {})
    host, port = server.host_port.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        if not any(k.lower() == "host" for k in headers):
            conn.putheader("Host", server.host_port)
        for k, v in headers.items():
            conn.putheader(k, v)
        if body or method in ("PUT", "POST"):
            if not any(k.lower() == "content-length" for k in headers):
                conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if body else None)
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def quote_key(key: str) -> str:
    return urllib.parse.quote(key, safe="/~")


def md5_b64(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


@pytest.fixture(scope="module")
def bucket(s3):
    name = harness.unique_bucket("badinput")
    s3.create_bucket(Bucket=name)
    for key in ("keep/a", "keep/b", "keep/c"):
        s3.put_object(Bucket=name, Key=key, Body=key.encode() * 100)
    yield name
    for obj in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=obj["Key"])
    for up in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def unchanged(s3, bucket, server):
    """Asserts after the test that the bucket holds exactly what it held before."""

    def snapshot():
        objs = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {o["Key"]: (o["ETag"], o["Size"]) for o in objs}

    before = snapshot()
    yield
    server.assert_alive()
    assert snapshot() == before


@pytest.mark.parametrize("body", [
    b"<Delete><Object><Key>keep/a</Key></Object>",  # truncated
    b"this is not xml at all",
    b"<Delete><Object><Key>keep/a</Key></Object></Delete><Delete>",  # trailing garbage
], ids=["truncated", "not-xml", "trailing-garbage"])
def test_delete_objects_malformed_xml(server, bucket, unchanged, body):
    r = send(server, "POST", f"/{bucket}", "delete", body, {"Content-MD5": md5_b64(body)})
    assert (r.status, r.error_code()) == (400, "MalformedXML"), r


def test_complete_multipart_malformed_xml(server, s3, bucket, unchanged):
    key = "mp/never"
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    try:
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1,
                              Body=b"x" * 1000)["ETag"]
        for body in (b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>",
                     b"\x00\x01garbage",
                     f"<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>{etag}"
                     f"</ETag></Part></CompleteMultipartUpload>".encode()):
            r = send(server, "POST", f"/{bucket}/{key}",
                     f"uploadId={urllib.parse.quote(uid, safe='')}", body)
            assert r.status == 400, r
            assert r.error_code() in ("MalformedXML", "InvalidArgument"), r
        # The upload is still there, untouched, and no object appeared.
        parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)["Parts"]
        assert [p["PartNumber"] for p in parts] == [1]
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)


def test_wrong_signature(server, bucket, unchanged):
    r = send(server, "PUT", f"/{bucket}/sig/wrong", body=b"data",
             secret=server.secret_key[::-1])
    assert (r.status, r.error_code()) == (403, "SignatureDoesNotMatch"), r
    r = send(server, "GET", f"/{bucket}/keep/a", secret="not-the-secret")
    assert (r.status, r.error_code()) == (403, "SignatureDoesNotMatch"), r
    r = send(server, "GET", f"/{bucket}/keep/a", access_key="AKNOBODY" + secrets.token_hex(4))
    assert (r.status, r.error_code()) == (403, "InvalidAccessKeyId"), r
    # Control: the same request correctly signed is accepted.
    assert send(server, "GET", f"/{bucket}/keep/a").status == 200


def test_payload_hash_mismatch(server, bucket, unchanged):
    """Signed for one body, sent with another of the same length."""
    creds = Credentials(server.access_key, server.secret_key)
    req = AWSRequest(method="PUT", url=f"{server.endpoint}/{bucket}/sig/mismatch", data=b"AAAA")
    S3SigV4Auth(creds, "s3", harness.REGION).add_auth(req)
    headers = dict(req.headers.items())
    host, port = server.host_port.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("PUT", f"/{bucket}/sig/mismatch", body=b"BBBB", headers=headers)
        resp = conn.getresponse()
        r = Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()
    assert (r.status, r.error_code()) == (400, "XAmzContentSHA256Mismatch"), r


def test_bad_content_md5(server, bucket, unchanged):
    r = send(server, "PUT", f"/{bucket}/md5/wrong", body=b"hello",
             headers={"Content-MD5": md5_b64(b"jello")})
    assert (r.status, r.error_code()) == (400, "BadDigest"), r


def test_expired_presign(server, s3, bucket, unchanged):
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "keep/a"},
                                        ExpiresIn=1)
    from conftest import make_client

    v4 = make_client(server, signature_version="s3v4")
    get_v4 = v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "keep/a"},
                                       ExpiresIn=1)
    put_v4 = v4.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "exp/put"},
                                       ExpiresIn=1)
    time.sleep(2.5)
    for url, method in ((get_url, "GET"), (get_v4, "GET"), (put_v4, "PUT")):
        parts = urllib.parse.urlsplit(url)
        r = send(server, method, parts.path, parts.query, body=b"late" if method == "PUT" else b"",
                 sign=False)
        assert (r.status, r.error_code()) == (403, "AccessDenied"), (url, r)


def test_absurd_ranges(server, bucket, unchanged):
    size = len(b"keep/a" * 100)
    for rng in (f"bytes={size}-", "bytes=999999999999-1000000000000",
                "bytes=18446744073709551615-"):
        r = send(server, "GET", f"/{bucket}/keep/a", headers={"Range": rng})
        assert (r.status, r.error_code()) == (416, "InvalidRange"), (rng, r)
    # A suffix longer than the object is not an error: the whole object comes back.
    r = send(server, "GET", f"/{bucket}/keep/a", headers={"Range": "bytes=-999999999"})
    assert r.status in (200, 206) and r.body == b"keep/a" * 100, r


def test_oversized_user_metadata(server, bucket, unchanged):
    r = send(server, "PUT", f"/{bucket}/meta/big", body=b"x",
             headers={"x-amz-meta-big": "m" * 2100})
    assert (r.status, r.error_code()) == (400, "MetadataTooLarge"), r


def test_oversized_headers(server, bucket, unchanged):
    r = send(server, "GET", f"/{bucket}/keep/a", after_sign={"x-junk": "j" * 128 * 1024})
    assert r.status in (400, 431), r
    if r.status == 400:
        assert r.error_code() in ("RequestHeaderSectionTooLarge", "MetadataTooLarge",
                                  "InvalidRequest"), r
    # The server is still fine afterwards.
    assert send(server, "GET", f"/{bucket}/keep/a").status == 200


def dot_segment_keys(token: str) -> list[str]:
    """Keys with a `.` or `..` path segment: refused with an S3 error (as MinIO does), so that
    nothing downstream can mistake them for paths."""
    return [
        f"../escape-{token}-1",
        f"a/../../escape-{token}-2",
        f"../../../../../../../../tmp/escape-{token}-3",
        f"./dot/./escape-{token}-4",
        f"dir/../../../d1/escape-{token}-5",
    ]


def dotty_keys(token: str) -> list[str]:
    """Keys full of dots but without a dot segment: ordinary keys that must round-trip."""
    return [
        f"..\\..\\escape-{token}-6",
        f"...escape-{token}-7",
        f"a..b/..c/escape-{token}-8..",
        f"..escape-{token}-9/...",
    ]


def escaped_files(server: harness.Server, token: str) -> list[str]:
    """Files whose name carries the token anywhere a naive path join could have put them."""
    hits = []
    for base in (server.root.parent, Path("/tmp"), server.root / "cwd"):
        if base.is_dir():
            hits += [str(p) for p in base.iterdir() if token in p.name]
    for p in server.root.rglob(f"*{token}*"):
        hits.append(str(p))
    return sorted(set(hits))


def test_dot_segment_keys_refused(server, bucket, unchanged):
    token = secrets.token_hex(5)
    for key in dot_segment_keys(token):
        for path in (f"/{bucket}/{quote_key(key)}",
                     f"/{bucket}/{quote_key(key).replace('.', '%2E')}"):
            r = send(server, "PUT", path, body=b"must not land")
            assert r.status == 400, (path, r)
            assert r.error_code() in ("InvalidArgument", "InvalidObjectName", "InvalidURI",
                                      "XMinioInvalidObjectName"), (path, r)
            g = send(server, "GET", path)
            assert g.status in (400, 404) and g.error_code(), (path, g)
    assert escaped_files(server, token) == []
    assert list((server.root / "cwd").iterdir()) == []


def test_dotty_keys_stay_keys(server, s3, bucket):
    token = secrets.token_hex(5)
    keys = dotty_keys(token)
    for i, key in enumerate(keys):
        body = f"payload {i}".encode()
        r = send(server, "PUT", f"/{bucket}/{quote_key(key)}", body=body)
        assert r.status == 200, (key, r)
        # Also with the dots percent-encoded on the wire.
        enc = quote_key(key).replace(".", "%2E")
        r2 = send(server, "GET", f"/{bucket}/{enc}")
        assert r2.status == 200 and r2.body == body, (key, r2)
        # And through boto3.
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    for key in keys:
        assert key in listed, (key, listed)
    assert escaped_files(server, token) == []
    assert list((server.root / "cwd").iterdir()) == []
    for key in keys:
        assert send(server, "DELETE", f"/{bucket}/{quote_key(key)}").status == 204
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not any(token in k for k in listed)
    assert escaped_files(server, token) == []


def test_dotdot_bucket_names_rejected(server, unchanged):
    for path in ("/../etc", "/..", "/./x", "/%2E%2E/x"):
        r = send(server, "PUT", path)
        assert r.status in (400, 404), (path, r)
        assert r.error_code() in ("InvalidBucketName", "NoSuchBucket", "InvalidURI",
                                  "InvalidRequest"), (path, r)


@pytest.mark.parametrize("method,path,query,body,service", [
    ("PUT", "/{bucket}", "analytics&id=x", b"<AnalyticsConfiguration/>", "s3"),
    ("GET", "/{bucket}", "intelligent-tiering&id=x", b"", "s3"),
    ("PUT", "/{bucket}", "inventory&id=x", b"<InventoryConfiguration/>", "s3"),
    ("POST", "/{bucket}/keep/a", "select&select-type=2", b"<SelectObjectContentRequest/>", "s3"),
    ("POST", "/", "", b"Action=AssumeRole&Version=2011-06-15&RoleArn=x&RoleSessionName=y", "sts"),
    ("POST", "/", "", b"Action=ListUsers&Version=2010-05-08", "iam"),
], ids=["PutBucketAnalytics", "GetBucketIntelligentTiering", "PutBucketInventory",
        "SelectObjectContent", "STS-AssumeRole", "IAM-ListUsers"])
def test_unknown_operations_not_implemented(server, bucket, unchanged, method, path, query, body,
                                            service):
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if path == "/" else {}
    start = time.monotonic()
    r = send(server, method, path.format(bucket=bucket), query, body, headers, service=service)
    assert time.monotonic() - start < 10
    assert (r.status, r.error_code()) == (501, "NotImplemented"), r
