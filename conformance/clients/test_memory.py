"""Bounded memory: a 2 GiB object streamed in and out of tessera (single PUT with a signed
payload, and a 64 MiB-part multipart upload by aws-cli) while the server's VmRSS is sampled every
100 ms from /proc; the peak must stay under 256 MiB and the bytes must come back identical.

Runs in CI (conformance/test-all). Skip it locally with TESSERA_SKIP_MEMORY_TEST=1. It skips
itself, saying so, only when the temp disk has under 10 GiB free.

Owns: the memory check and its own server (fresh drives, so earlier tests' heap does not count).
Must never: hold the 2 GiB in the test's own memory, or leave the file or the drives behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import harness
from harness import MIB, AwsCli

SIZE = 2 * 1024 * MIB
RSS_LIMIT = 256 * MIB
MIN_FREE = 10 * 1024 * MIB

pytestmark = [
    pytest.mark.memory,
    pytest.mark.skipif(os.environ.get("TESSERA_SKIP_MEMORY_TEST", "") not in ("", "0"),
                       reason="TESSERA_SKIP_MEMORY_TEST is set"),
]


class RssSampler:
    """Samples a process's VmRSS every 100 ms on a thread; keeps the peak."""

    def __init__(self, server: harness.Server):
        self.server = server
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                rss = self.server.vm_rss_bytes()
            except (OSError, RuntimeError):
                return  # the process is gone; the test notices through assert_alive
            self.peak = max(self.peak, rss)
            self.samples += 1
            self._stop.wait(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def scratch():
    base = Path(tempfile.gettempdir())
    free = shutil.disk_usage(base).free
    if free < MIN_FREE:
        pytest.skip(f"memory test needs 10 GiB free under {base}, only "
                    f"{free / 2**30:.1f} GiB free")
    d = Path(tempfile.mkdtemp(prefix="tessera-memory-", dir=base))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def mem_server(scratch):
    srv = harness.start_server(scratch / "server")
    try:
        yield srv
        srv.assert_no_panics()
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def big_file(scratch):
    path = scratch / "two-gib.bin"
    digest = harness.write_det_file(path, SIZE, seed=2048)
    return path, digest


@pytest.fixture(scope="module")
def s3(mem_server):
    from conftest import make_client

    return make_client(mem_server)


def report(label: str, sampler: RssSampler, seconds: float) -> str:
    line = (f"{label}: peak VmRSS {sampler.peak / MIB:.1f} MiB over {sampler.samples} samples, "
            f"{SIZE / MIB / seconds:.0f} MiB/s")
    harness.note(line)
    return line


@pytest.mark.timeout(1200)
def test_single_put_2gib(mem_server, s3, big_file):
    path, digest = big_file
    bucket = harness.unique_bucket("memory")
    s3.create_bucket(Bucket=bucket)
    with RssSampler(mem_server) as up:
        t = time.monotonic()
        with open(path, "rb") as f:
            s3.put_object(Bucket=bucket, Key="single", Body=f, ContentLength=SIZE)
        up_s = time.monotonic() - t
    mem_server.assert_alive()
    report("single PUT", up, up_s)
    with RssSampler(mem_server) as down:
        t = time.monotonic()
        h = hashlib.sha256()
        body = s3.get_object(Bucket=bucket, Key="single")["Body"]
        for chunk in body.iter_chunks(4 * MIB):
            h.update(chunk)
        down_s = time.monotonic() - t
    report("single GET", down, down_s)
    assert h.hexdigest() == digest
    s3.delete_object(Bucket=bucket, Key="single")
    s3.delete_bucket(Bucket=bucket)
    assert up.peak < RSS_LIMIT, f"PUT peak RSS {up.peak / MIB:.1f} MiB"
    assert down.peak < RSS_LIMIT, f"GET peak RSS {down.peak / MIB:.1f} MiB"


@pytest.mark.timeout(1200)
def test_multipart_2gib_awscli(mem_server, big_file, scratch):
    path, digest = big_file
    home = scratch / "awscli"
    cli = AwsCli(mem_server, home, multipart_mb=64)
    bucket = harness.unique_bucket("memory-mp")
    cli("s3", "mb", f"s3://{bucket}")
    with RssSampler(mem_server) as up:
        t = time.monotonic()
        cli("s3", "cp", str(path), f"s3://{bucket}/multi", timeout=1000)
        up_s = time.monotonic() - t
    mem_server.assert_alive()
    report("multipart PUT (aws s3 cp, 64 MiB parts)", up, up_s)
    head = cli.json("s3api", "head-object", "--bucket", bucket, "--key", "multi")
    assert head["ContentLength"] == SIZE
    assert head["ETag"].strip('"').endswith("-32"), head["ETag"]
    with RssSampler(mem_server) as down:
        t = time.monotonic()
        h = hashlib.sha256()
        proc = subprocess.Popen(
            [harness.tool("aws"), "--endpoint-url", mem_server.endpoint, "s3", "cp",
             f"s3://{bucket}/multi", "-"],
            env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for chunk in iter(lambda: proc.stdout.read(4 * MIB), b""):
                h.update(chunk)
            err = proc.stderr.read()
            rc = proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        down_s = time.monotonic() - t
    assert rc == 0, err.decode(errors="replace")
    report("multipart GET (aws s3 cp to stdout)", down, down_s)
    assert h.hexdigest() == digest
    cli("s3", "rb", "--force", f"s3://{bucket}")
    assert up.peak < RSS_LIMIT, f"multipart PUT peak RSS {up.peak / MIB:.1f} MiB"
    assert down.peak < RSS_LIMIT, f"GET peak RSS {down.peak / MIB:.1f} MiB"
