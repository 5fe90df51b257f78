"""Starts and stops the real `tessera` binary for the client checks; helpers they share.

Owns: finding the binary, starting it on temporary drives and a free 127.0.0.1 port with fresh
credentials, waiting for readiness, sampling its memory, and killing it afterwards (also when a
test fails or pytest itself dies: the child gets SIGKILL through PR_SET_PDEATHSIG). Also owns
deterministic test data and hashing helpers.

Must never: talk to anything but 127.0.0.1, reuse a server between unrelated sessions, leave a
process or a temp dir behind, or fake a server answer (every check runs against the binary).
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
MIB = 1024 * 1024
# Environment variables of the machine that would steer a client somewhere we did not choose.
CLIENT_ENV_TO_DROP = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CA_BUNDLE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "TESSERA_ROOT_USER",
    "TESSERA_ROOT_PASSWORD",
    "TESSERA_ADDRESS",
    "TESSERA_CERTS_DIR",
    "TESSERA_REGION",
    "TESSERA_DOMAIN",
    "TESSERA_PARITY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
)


NOTES: list[str] = []


def note(line: str) -> None:
    """A measured fact (peak RSS, payload modes seen) for pytest's terminal summary."""
    NOTES.append(line)


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without AWS/MinIO/proxy settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV_TO_DROP}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def tessera_binary() -> Path:
    """TESSERA_BIN, else $CARGO_TARGET_DIR/debug/tessera, else <repo>/target/debug/tessera."""
    if os.environ.get("TESSERA_BIN"):
        return Path(os.environ["TESSERA_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        return Path(target) / "debug" / "tessera"
    return REPO_ROOT / "target" / "debug" / "tessera"


def tool(name: str) -> str:
    """A client command, preferring the one installed next to this Python (the tools venv)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed; conformance/test-all installs it")
    return found


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it if the pytest process dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@dataclass
class Server:
    """One running `tessera server` process."""

    root: Path
    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen
    log_path: Path
    drives: list[Path]
    ca_file: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def host_port(self) -> str:
        return self.endpoint.split("://", 1)[1]

    @property
    def https(self) -> bool:
        return self.endpoint.startswith("https://")

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.https:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file))

    def urlopen(self, req, timeout: float = 60):
        """urllib against this server (trusting its test CA when on https); no proxies."""
        handlers = [urllib.request.ProxyHandler({})]
        if self.https:
            handlers.append(urllib.request.HTTPSHandler(context=self.ssl_context()))
        return urllib.request.build_opener(*handlers).open(req, timeout=timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def vm_rss_bytes(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        m = re.search(r"^VmRSS:\s+(\d+)\s+kB", status, re.M)
        if not m:
            raise RuntimeError("no VmRSS in /proc status")
        return int(m.group(1)) * 1024

    def assert_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"tessera exited with {self.process.returncode}; log tail:\n{self.log_tail()}"
            )

    def assert_no_panics(self) -> None:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        if "panicked at" in text:
            raise AssertionError(f"tessera panicked during the session; log tail:\n"
                                 f"{self.log_tail(80)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(root: Path, certs_dir: Path | None = None, ca_file: Path | None = None,
                 timeout: float = 60.0) -> Server:
    """Starts tessera on four temp drives under `root` (EC 2+2) at a free 127.0.0.1 port."""
    binary = tessera_binary()
    if not binary.exists():
        raise FileNotFoundError(
            f"tessera binary not found at {binary}: build it with "
            "`cargo build -p tessera-server --bin tessera` or set TESSERA_BIN"
        )
    root.mkdir(parents=True, exist_ok=True)
    drives = [root / f"d{i}" for i in range(1, 5)]
    cwd = root / "cwd"  # the server's working directory: must stay empty (no ./data, no escapes)
    cwd.mkdir(exist_ok=True)
    access_key = "conf" + secrets.token_hex(6)
    secret_key = secrets.token_hex(20)
    env = clean_env(TESSERA_ROOT_USER=access_key, TESSERA_ROOT_PASSWORD=secret_key)
    env.setdefault("RUST_LOG", "info")
    args = [str(binary), "server", "--address", "127.0.0.1:0", "--region", REGION]
    if certs_dir is not None:
        args += ["--certs-dir", str(certs_dir)]
    args.append(str(root / "d{1...4}"))
    log_path = root / "server.log"
    log = open(log_path, "wb")
    try:
        proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )
    finally:
        log.close()
    server = Server(root=root, endpoint="", access_key=access_key, secret_key=secret_key,
                    process=proc, log_path=log_path, drives=drives, ca_file=ca_file)
    try:
        deadline = time.monotonic() + timeout
        pattern = re.compile(r"Endpoint:\s+(https?://[^\s,]+)")
        while True:
            server.assert_alive()
            m = pattern.search(log_path.read_text(errors="replace"))
            if m:
                server.endpoint = m.group(1).rstrip("/")
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no 'Endpoint:' line within {timeout}s:\n{server.log_tail()}")
            time.sleep(0.05)
        if not re.match(r"https?://127\.0\.0\.1:\d+$", server.endpoint):
            raise AssertionError(f"unexpected endpoint {server.endpoint!r}")
        while True:
            server.assert_alive()
            try:
                with server.urlopen(server.endpoint + "/health/ready", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"/health/ready not 200 within {timeout}s:\n{server.log_tail()}")
            time.sleep(0.1)
    except BaseException:
        server.stop()
        raise
    return server


# ---------------------------------------------------------------- data and hashes


def det_bytes(size: int, seed: int) -> bytes:
    """`size` deterministic pseudo-random bytes (incompressible, reproducible)."""
    return random.Random(seed).randbytes(size)


def write_det_file(path: Path, size: int, seed: int, chunk: int = 8 * MIB) -> str:
    """Writes `size` deterministic pseudo-random bytes (AES-CTR keystream of the seed) to
    `path` in chunks, without holding them in memory; returns their sha256 hex."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = hashlib.sha256(f"tessera-conformance-{seed}".encode()).digest()
    keystream = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    zeros = bytes(chunk)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(chunk, left)
            block = keystream.update(zeros[:n])
            h.update(block)
            f.write(block)
            left -= n
    return h.hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 * MIB), b""):
            h.update(block)
    return h.hexdigest()


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def unique_bucket(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def run(cmd: list[str], env: dict[str, str], timeout: float = 300, check: bool = True,
        input: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Runs a client command; on failure the assertion shows its output."""
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout, input=input,
                          cwd=cwd)
    if check:
        assert_succeeded(cmd, proc)
    return proc


def assert_succeeded(cmd: list[str], proc: subprocess.CompletedProcess) -> None:
    """Raises with the command's output when it exited non-zero."""
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n"
            f"{proc.stdout.decode(errors='replace')[-4000:]}\nstderr:\n"
            f"{proc.stderr.decode(errors='replace')[-4000:]}"
        )


def files_under(path: Path) -> set[str]:
    """Every file and directory below `path`, relative, as strings."""
    return {str(p.relative_to(path)) for p in path.rglob("*")}


_TLS_DECODE_ALERT = b"TLSV1_ALERT_DECODE_ERROR"


class AwsCli:
    """Runs `aws` with a private config, credentials and CA bundle for one server."""

    def __init__(self, server: Server, home: Path, multipart_mb: int = 8):
        self.server = server
        home.mkdir(parents=True, exist_ok=True)
        config = home / "config"
        config.write_text(
            "[default]\n"
            f"region = {REGION}\n"
            "output = json\n"
            "s3 =\n"
            "    addressing_style = path\n"
            f"    multipart_threshold = {multipart_mb}MB\n"
            f"    multipart_chunksize = {multipart_mb}MB\n"
            "\n[profile sigv4]\n"
            f"region = {REGION}\n"
            "output = json\n"
            "s3 =\n"
            "    addressing_style = path\n"
            "    signature_version = s3v4\n"
        )
        creds = home / "credentials"
        keys = (f"aws_access_key_id = {server.access_key}\n"
                f"aws_secret_access_key = {server.secret_key}\n")
        creds.write_text(f"[default]\n{keys}\n[sigv4]\n{keys}")
        extra = {
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(creds),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_RETRY_MODE": "standard",
            "AWS_MAX_ATTEMPTS": "1",
            "HOME": str(home),
        }
        if server.https:
            extra["AWS_CA_BUNDLE"] = str(server.ca_file)  # the test CA, not the system bundle
        self.env = clean_env(**extra)

    def __call__(self, *args: str, check: bool = True, timeout: float = 300):
        cmd = [tool("aws"), "--endpoint-url", self.server.endpoint, *args]
        proc = run(cmd, env=self.env, check=False, timeout=timeout)
        if proc.returncode != 0 and _TLS_DECODE_ALERT in proc.stderr:
            # One CI run saw a single `tlsv1 alert decode error` from a fresh connection that
            # we could not reproduce in hundreds of runs since. Retries are otherwise off, so
            # the command is re-run once, and every such event is reported in the summary
            # with the server's log lines about TLS, so it stays visible rather than hidden.
            tls_lines = [line for line in self.server.log_tail(400).splitlines()
                         if "TLS" in line or "rustls" in line]
            NOTES.append(f"aws-cli: TLS decode_error alert, command re-run once: {' '.join(args)}; "
                         f"server TLS log lines: {tls_lines[-5:]}")
            proc = run(cmd, env=self.env, check=False, timeout=timeout)
        if check:
            assert_succeeded(cmd, proc)
        return proc

    def json(self, *args: str):
        out = self(*args).stdout
        return json.loads(out) if out.strip() else {}
