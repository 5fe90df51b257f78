"""rclone (Debian's package, provider Minio) against tessera over http: copy/sync a directory up
and back, list, ranged cat, server-side copy (also multipart UploadPartCopy), check, delete, purge.

rclone is configured only through RCLONE_CONFIG_T_* variables, and runs without AWS_CA_BUNDLE
(Debian's rclone 1.60 fails when that is set to a bundle it does not expect).

Owns: the rclone checks. Must never: read a user rclone.conf or accept a transfer without
comparing hashes.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

import harness

SMALLS = {f"f{i}.txt": harness.det_bytes(10 + 997 * i, seed=30 + i) for i in range(4)}
BIG = harness.det_bytes(20 * 1000 * 1000, seed=39)


class Rclone:
    def __init__(self, server: harness.Server, home: Path):
        home.mkdir(parents=True, exist_ok=True)
        conf = home / "rclone.conf"
        conf.write_text("")
        self.env = harness.clean_env(
            HOME=str(home),
            RCLONE_CONFIG=str(conf),
            RCLONE_CONFIG_T_TYPE="s3",
            RCLONE_CONFIG_T_PROVIDER="Minio",
            RCLONE_CONFIG_T_ENDPOINT=server.endpoint,
            RCLONE_CONFIG_T_ACCESS_KEY_ID=server.access_key,
            RCLONE_CONFIG_T_SECRET_ACCESS_KEY=server.secret_key,
            RCLONE_CONFIG_T_REGION=harness.REGION,
            RCLONE_CONFIG_T_FORCE_PATH_STYLE="true",
        )
        assert "AWS_CA_BUNDLE" not in self.env

    def __call__(self, *args: str, check: bool = True, timeout: float = 300):
        if shutil.which("rclone") is None:
            raise FileNotFoundError("rclone is not installed; conformance/test-all installs it")
        cmd = ["rclone", "--retries", "1", "--low-level-retries", "1", "--contimeout", "10s",
               "--timeout", "60s", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M",
               "--s3-copy-cutoff", "5M", *args]
        return harness.run(cmd, env=self.env, check=check, timeout=timeout)


@pytest.fixture(scope="module")
def rclone(server, tmp_path_factory):
    return Rclone(server, tmp_path_factory.mktemp("rclone-home"))


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("rclone-src")
    for name, data in SMALLS.items():
        (d / name).write_bytes(data)
    (d / "sub").mkdir()
    (d / "sub" / "big.bin").write_bytes(BIG)
    (d / "sub" / "empty").write_bytes(b"")
    return d


@pytest.fixture(scope="module")
def bucket(rclone):
    name = harness.unique_bucket("rclone")
    rclone("mkdir", f"t:{name}")
    yield name
    rclone("purge", f"t:{name}", check=False)


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): harness.sha256_file(p) for p in root.rglob("*")
            if p.is_file()}


def test_copy_up_and_list(rclone, bucket, src, s3):
    rclone("copy", str(src), f"t:{bucket}/data")
    listed = set(rclone("lsf", "-R", f"t:{bucket}/data").stdout.decode().split())
    assert listed == {"f0.txt", "f1.txt", "f2.txt", "f3.txt", "sub/", "sub/big.bin", "sub/empty"}
    top = set(rclone("lsf", f"t:{bucket}/data").stdout.decode().split())
    assert top == {"f0.txt", "f1.txt", "f2.txt", "f3.txt", "sub/"}
    # 20 MB above the 5M cutoff went up as a multipart upload.
    etag = s3.head_object(Bucket=bucket, Key="data/sub/big.bin")["ETag"]
    assert etag.strip('"').endswith("-4"), etag
    buckets = rclone("lsd", "t:").stdout.decode()
    assert bucket in buckets


def test_payload_modes(rclone, bucket, src):
    """Which x-amz-content-sha256 rclone (aws-sdk-go) sends for a single PUT and for parts."""
    proc = rclone("copy", "--dump", "headers", str(src), f"t:{bucket}/modes")
    log = proc.stderr.decode(errors="replace")
    modes = set(re.findall(r"(?im)^X-Amz-Content-Sha256:\s*(\S+)", log))
    assert modes, "no request headers in rclone --dump headers output"
    named = {"signed-sha256" if re.fullmatch(r"[0-9a-f]{64}", m) else m for m in modes}
    harness.note(f"rclone payload modes: {sorted(named)}")
    # rclone 1.60 sends single PUTs as UNSIGNED-PAYLOAD (with Content-MD5), parts signed.
    assert named == {"signed-sha256", "UNSIGNED-PAYLOAD"}, named
    rclone("purge", f"t:{bucket}/modes")


def test_cat_and_ranges(rclone, bucket):
    whole = rclone("cat", f"t:{bucket}/data/f3.txt").stdout
    assert whole == SMALLS["f3.txt"]
    part = rclone("cat", "--offset", "1234567", "--count", "100000",
                  f"t:{bucket}/data/sub/big.bin").stdout
    assert part == BIG[1234567:1234567 + 100000]


def test_check_and_sync_back(rclone, bucket, src, tmp_path):
    rclone("check", str(src), f"t:{bucket}/data")
    back = tmp_path / "back"
    rclone("sync", f"t:{bucket}/data", str(back))
    assert tree_hashes(back) == tree_hashes(src)
    md5 = rclone("md5sum", f"t:{bucket}/data/f0.txt").stdout.decode().split()[0]
    assert md5 == hashlib.md5(SMALLS["f0.txt"]).hexdigest()


def test_server_side_copy(rclone, bucket, tmp_path):
    rclone("copyto", f"t:{bucket}/data/f1.txt", f"t:{bucket}/copy/f1.txt")
    # Above --s3-copy-cutoff rclone copies with multipart UploadPartCopy.
    rclone("copyto", f"t:{bucket}/data/sub/big.bin", f"t:{bucket}/copy/big.bin")
    assert rclone("cat", f"t:{bucket}/copy/f1.txt").stdout == SMALLS["f1.txt"]
    rclone("copyto", f"t:{bucket}/copy/big.bin", str(tmp_path / "big.bin"))
    assert harness.sha256_file(tmp_path / "big.bin") == harness.sha256(BIG)


def test_sync_deletes_and_delete(rclone, bucket, src, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(src, changed)
    (changed / "f0.txt").unlink()
    (changed / "new.txt").write_bytes(b"new file")
    rclone("sync", str(changed), f"t:{bucket}/data")
    listed = set(rclone("lsf", "-R", f"t:{bucket}/data").stdout.decode().split())
    assert "f0.txt" not in listed and "new.txt" in listed
    rclone("delete", "--include", "*.txt", f"t:{bucket}/data")
    listed = set(rclone("lsf", "-R", f"t:{bucket}/data").stdout.decode().split())
    assert listed == {"sub/", "sub/big.bin", "sub/empty"}
    rclone("deletefile", f"t:{bucket}/copy/f1.txt")
    assert "f1.txt" not in rclone("lsf", f"t:{bucket}/copy").stdout.decode()


def test_zz_purge(rclone, bucket):
    rclone("purge", f"t:{bucket}")
    assert bucket not in rclone("lsd", "t:").stdout.decode()
