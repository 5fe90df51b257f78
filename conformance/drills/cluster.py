"""Four real `tessera` processes on 127.0.0.1-4 for the failure drills, and what a drill does
to them.

Owns: choosing one port free on every loopback address the drill uses, the endpoint list,
starting nodes (each on 127.0.0.i, or behind a TCP proxy on 127.0.0.i when the drill needs a
partition), SIGKILL / SIGSTOP / SIGCONT / restart, waiting for health, the SigV4-signed admin
API (`/_tessera/admin/v1/heal`), boto3 clients per node, and the on-disk shard check. Every
child gets SIGKILL through PR_SET_PDEATHSIG, and `Cluster.close` kills every child and proxy
whatever happened.

Must never: talk to anything but 127.0.0.x, touch a drive outside the drill's temp directory,
or leave a process, a proxy thread or a stopped (SIGSTOPped) node behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import selectors
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

import harness

REGION = harness.REGION
ADMIN = "/_tessera/admin/v1"
# Scanner and probes as short as the contracts allow, so heals finish within a drill.
NODE_ENV = {
    "TESSERA_SCANNER_INTERVAL": "2",
    "TESSERA_SCANNER_RATE": "0",
    "TESSERA_PROBE_INTERVAL_MS": "1000",
}


class FeatureMissing(Exception):
    """A contract another helper is building is not served by this binary (yet)."""


def _free_port(ips: list[str]) -> int:
    """A port that binds on every address in `ips` right now (the nodes bind it next)."""
    for _ in range(200):
        probe = socket.socket()
        probe.bind((ips[0], 0))
        port = probe.getsockname()[1]
        held = [probe]
        ok = True
        try:
            for ip in ips[1:]:
                s = socket.socket()
                try:
                    s.bind((ip, port))
                except OSError:
                    s.close()
                    ok = False
                    break
                held.append(s)
        finally:
            for s in held:
                s.close()
        if ok:
            return port
    raise RuntimeError(f"no port free on all of {ips}")


def _http(url: str, method: str = "GET", headers: dict | None = None, body: bytes = b"",
          timeout: float = 5.0) -> tuple[int, bytes]:
    """(status, body) of one request; status 0 when the connection failed or timed out."""
    req = urllib.request.Request(url, data=body if method != "GET" else None, method=method,
                                 headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError, OSError, TimeoutError):
        return 0, b""


def summary(doc: dict | None) -> str:
    """The parts of a heal status that say why it is not redundant (for messages)."""
    if doc is None:
        return "no answer"
    drives = [f"{d.get('slot')}={d.get('state')}" for d in doc.get("drives", [])
              if d.get("state") != "ok"]
    bulk = [f"{b.get('drive', '').rsplit('/', 2)[-2:]}:{b.get('state')}"
            for b in doc.get("bulk", []) if b.get("state") != "done"]
    return (f"redundancy_ok={doc.get('redundancy_ok')} queue={doc.get('queue')} "
            f"drives_not_ok={drives} bulk_not_done={bulk} "
            f"scanner={json.dumps(doc.get('scanner'))[:200]}")


@dataclass
class Node:
    """One `tessera server` process (index 1..4) and its drives."""

    index: int
    listen_ip: str   # where the process binds
    name_ip: str     # how the endpoint list names it (differs only behind a proxy)
    port: int
    drives: list[Path]
    log_path: Path
    process: subprocess.Popen | None = None
    stopped: bool = False

    @property
    def url(self) -> str:
        """Where clients reach this node (directly, never through a proxy)."""
        return f"http://{self.listen_ip}:{self.port}"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def health(self, probe: str, timeout: float = 3.0) -> int:
        return _http(f"{self.url}/health/{probe}", timeout=timeout)[0]

    def health_timed(self, probe: str, timeout: float = 15.0) -> tuple[int, float]:
        """(status, seconds to answer); status 0 when no answer within `timeout`."""
        t0 = time.monotonic()
        status = _http(f"{self.url}/health/{probe}", timeout=timeout)[0]
        return status, time.monotonic() - t0

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Cluster:
    """Four nodes sharing one endpoint list; see the module docs."""

    root: Path
    drives_per_node: int = 2
    parity: int | None = None
    proxied: bool = False
    access_key: str = field(default_factory=lambda: "drill" + secrets.token_hex(4))
    secret_key: str = field(default_factory=lambda: secrets.token_hex(20))
    nodes: list[Node] = field(default_factory=list)
    proxies: list["Proxy"] = field(default_factory=list)
    endpoints: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)   # what the drill did, and when
    t0: float = field(default_factory=time.monotonic)
    _clients: dict = field(default_factory=dict)
    _clients_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        name_ips = [f"127.0.0.{i}" for i in range(1, 5)]
        listen_ips = [f"127.0.0.{10 + i}" for i in range(1, 5)] if self.proxied else name_ips
        port = _free_port(sorted(set(name_ips + listen_ips)))
        for i in range(1, 5):
            drives = [self.root / f"n{i}" / f"d{d}" for d in range(1, self.drives_per_node + 1)]
            self.nodes.append(Node(index=i, listen_ip=listen_ips[i - 1],
                                   name_ip=name_ips[i - 1], port=port, drives=drives,
                                   log_path=self.root / f"n{i}.log"))
        # Drive-major order: the set's shards spread over the nodes.
        for d in range(self.drives_per_node):
            for n in self.nodes:
                self.endpoints.append(f"http://{n.name_ip}:{port}{n.drives[d]}")
        if self.proxied:
            self.proxies = [Proxy(n.name_ip, port, n.listen_ip, port) for n in self.nodes]

    # ------------------------------------------------------------------ layout

    @property
    def total_drives(self) -> int:
        return 4 * self.drives_per_node

    @property
    def parity_shards(self) -> int:
        if self.parity is not None:
            return self.parity
        return self.total_drives // 2  # MinIO's default for 4 and 8 drives

    @property
    def data_shards(self) -> int:
        return self.total_drives - self.parity_shards

    # ------------------------------------------------------------------ processes

    def mark(self) -> None:
        """Event times count from now (the drill's start, as key histories do)."""
        self.t0 = time.monotonic()

    def event(self, what: str) -> None:
        self.events.append(f"{time.monotonic() - self.t0:.2f}s {what}")

    def start(self, node: Node) -> None:
        binary = harness.tessera_binary()
        if not binary.exists():
            raise FileNotFoundError(
                f"tessera binary not found at {binary}: build it with "
                "`cargo build -p tessera-server --bin tessera` or set TESSERA_BIN")
        env = harness.clean_env(TESSERA_ROOT_USER=self.access_key,
                                TESSERA_ROOT_PASSWORD=self.secret_key, **NODE_ENV)
        env.pop("TESSERA_SELF", None)
        env.setdefault("RUST_LOG", "info")
        if self.parity is not None:
            env["TESSERA_PARITY"] = str(self.parity)
        args = [str(binary), "server", "--address", f"{node.listen_ip}:{node.port}",
                "--region", REGION]
        if self.proxied:
            args += ["--self", f"{node.name_ip}:{node.port}"]
        args += self.endpoints
        cwd = self.root / f"n{node.index}-cwd"
        cwd.mkdir(parents=True, exist_ok=True)
        with open(node.log_path, "ab") as log:
            log.write(f"\n==== drill: start node {node.index} at {time.time():.3f}\n".encode())
            log.flush()
            node.process = subprocess.Popen(
                args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, preexec_fn=harness._die_with_parent)
        node.stopped = False
        self.event(f"start node {node.index}")

    def start_all(self, timeout: float = 90.0) -> None:
        for p in self.proxies:
            p.start()
        for n in self.nodes:
            self.start(n)
        self.wait_ready(self.nodes, timeout)
        self.wait_cluster_health(timeout)

    def kill(self, node: Node) -> None:
        """SIGKILL: the crash drill."""
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait(timeout=10)
            self.event(f"SIGKILL node {node.index}")
        node.stopped = False

    def sigstop(self, node: Node) -> None:
        assert node.alive()
        node.process.send_signal(signal.SIGSTOP)
        node.stopped = True
        self.event(f"SIGSTOP node {node.index}")

    def sigcont(self, node: Node) -> None:
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGCONT)
            if node.stopped:
                self.event(f"SIGCONT node {node.index}")
        node.stopped = False

    def restart(self, node: Node, timeout: float = 90.0) -> None:
        self.kill(node)
        self.start(node)
        self.wait_ready([node], timeout)

    def close(self) -> None:
        """Kills every node (stopped ones too) and every proxy."""
        for n in self.nodes:
            try:
                if n.process is not None and n.process.poll() is None:
                    n.process.send_signal(signal.SIGKILL)
                    n.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for p in self.proxies:
            p.stop()

    def assert_no_panics(self) -> None:
        for n in self.nodes:
            text = n.log_path.read_text(errors="replace") if n.log_path.exists() else ""
            assert "panicked at" not in text, (
                f"node {n.index} panicked; log tail:\n{n.log_tail(60)}")

    def logs_tail(self, lines: int = 25) -> str:
        return "\n".join(f"--- node {n.index} log tail:\n{n.log_tail(lines)}" for n in self.nodes)

    # ------------------------------------------------------------------ health

    def wait_ready(self, nodes: list[Node], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        for n in nodes:
            while n.health("ready") != 200:
                if not n.alive():
                    raise AssertionError(f"node {n.index} exited with "
                                         f"{n.process.returncode}:\n{n.log_tail()}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"node {n.index} not ready within {timeout}s:\n"
                                       f"{n.log_tail()}")
                time.sleep(0.1)

    def wait_cluster_health(self, timeout: float = 60.0, nodes: list[Node] | None = None) -> float:
        """Waits until /health/cluster is 200 on every given (default: live) node."""
        t0 = time.monotonic()
        nodes = nodes or [n for n in self.nodes if n.alive() and not n.stopped]
        while not all(n.health("cluster") == 200 for n in nodes):
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"/health/cluster not 200 on all nodes within {timeout}s")
            time.sleep(0.2)
        return time.monotonic() - t0

    # ------------------------------------------------------------------ clients

    def client(self, node: Node, read_timeout: float = 20.0, connect_timeout: float = 3.0):
        """boto3 for `node`: path style, no retries (every failure is visible), short timeouts.
        Made once per node and timeouts (boto3 clients are thread-safe, and slow to make)."""
        key = (node.index, read_timeout, connect_timeout)
        with self._clients_lock:
            if key not in self._clients:
                cfg = Config(region_name=REGION, s3={"addressing_style": "path"},
                             # total_max_attempts: 1 is one attempt. (`max_attempts` counts
                             # retries: 1 made every call twice, and a refusal (503) of the
                             # second attempt hid a first one that timed out after it applied.)
                             retries={"total_max_attempts": 1, "mode": "standard"},
                             connect_timeout=connect_timeout, read_timeout=read_timeout,
                             max_pool_connections=16)
                session = boto3.session.Session(aws_access_key_id=self.access_key,
                                                aws_secret_access_key=self.secret_key,
                                                region_name=REGION)
                self._clients[key] = session.client("s3", endpoint_url=node.url, config=cfg)
            return self._clients[key]

    def signed(self, node: Node, method: str, path: str, body: bytes = b"",
               timeout: float = 10.0) -> tuple[int, bytes]:
        """One request signed with the root credentials (SigV4, service s3)."""
        url = node.url + path
        req = AWSRequest(method=method, url=url, data=body,
                         headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
        SigV4Auth(Credentials(self.access_key, self.secret_key), "s3", REGION).add_auth(req)
        return _http(url, method=method, headers=dict(req.headers.items()), body=body,
                     timeout=timeout)

    # ------------------------------------------------------------------ admin API

    def heal_status(self, node: Node) -> dict | None:
        """GET /_tessera/admin/v1/heal on `node`; None when the node does not answer.
        Raises FeatureMissing when the route is not there (contract 1 not landed)."""
        status, body = self.signed(node, "GET", f"{ADMIN}/heal")
        if status == 0:
            return None
        if status != 200:
            raise FeatureMissing(
                f"GET {ADMIN}/heal answered {status} ({body[:200]!r}): the admin API "
                "(session contract 1, heal helper) is not in this binary")
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise FeatureMissing(f"GET {ADMIN}/heal is not JSON: {body[:200]!r}") from e
        if "redundancy_ok" not in doc:
            raise FeatureMissing(f"GET {ADMIN}/heal lacks redundancy_ok: {body[:300]!r}")
        return doc

    def heal_scan(self, node: Node) -> None:
        status, body = self.signed(node, "POST", f"{ADMIN}/heal/scan")
        if status not in (200, 202):
            raise FeatureMissing(f"POST {ADMIN}/heal/scan answered {status} ({body[:200]!r}): "
                                 "the forced scan (contract 1, heal helper) is not there")

    def wait_scanner_cycle(self, timeout: float = 60) -> None:
        """Until every live node's scanner has completed a whole cycle that started after this
        call (a forced one: `POST heal/scan`). Such a cycle settles the keys that a write left
        on only some drives when its coordinating node was killed mid-commit: no client was
        told of them and no node queued them, so only the scanner finds them."""
        live = [n for n in self.nodes if n.alive() and not n.stopped]
        before = {}
        for n in live:
            doc = self.heal_status(n)
            before[n.index] = (doc or {}).get("scanner", {}).get("cycles", 0)
            self.heal_scan(n)
        t0 = time.monotonic()
        while True:
            # +2: the cycle running when asked may have started before the call.
            pending = [n.index for n in live
                       if (self.heal_status(n) or {}).get("scanner", {}).get("cycles", 0)
                       < before[n.index] + 2]
            if not pending:
                return
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"no whole scanner cycle within {timeout}s on {pending}")
            time.sleep(0.5)

    def wait_redundancy(self, timeout: float, on_poll=None) -> float:
        """Seconds until every live node reports redundancy_ok. Raises on timeout."""
        t0 = time.monotonic()
        while True:
            live = [n for n in self.nodes if n.alive() and not n.stopped]
            docs = [self.heal_status(n) for n in live]
            if on_poll is not None:
                on_poll(docs)
            if all(d is not None and d.get("redundancy_ok") is True for d in docs):
                return time.monotonic() - t0
            not_ok = [(n.index, d) for n, d in zip(live, docs)
                      if d is None or d.get("redundancy_ok") is not True]
            if os.environ.get("DRILLS_VERBOSE") and int(time.monotonic() - t0) % 5 == 0:
                print(f"    not redundant yet on {[i for i, _ in not_ok]}: "
                      f"{[summary(d) for _, d in not_ok]}", flush=True)
            if time.monotonic() - t0 > timeout:
                raise AssertionError(
                    f"no full redundancy within {timeout}s: not ok on nodes "
                    f"{[i for i, _ in not_ok]}: {[summary(d) for _, d in not_ok]}")
            time.sleep(0.5)

    # ------------------------------------------------------------------ disk

    def all_drives(self) -> list[Path]:
        return [d for n in self.nodes for d in n.drives]

    def data_dirs(self) -> dict[str, dict[Path, dict[str, int]]]:
        """data/<bucket>/<prefix>/<data-id> relative path -> {drive: {file: size}}."""
        out: dict[str, dict[Path, dict[str, int]]] = {}
        for drive in self.all_drives():
            data = drive / "data"
            if not data.is_dir():
                continue
            for bucket in data.iterdir():
                for prefix in (bucket.iterdir() if bucket.is_dir() else []):
                    for d in (prefix.iterdir() if prefix.is_dir() else []):
                        if not d.is_dir():
                            continue
                        files = {}
                        for f in d.iterdir():
                            try:
                                files[f.name] = f.stat().st_size
                            except FileNotFoundError:
                                pass
                        rel = str(d.relative_to(data))
                        out.setdefault(rel, {})[drive] = files
        return out

    def incomplete_data_dirs(self) -> list[str]:
        """Shard files present on at least K drives but not on all (or of unequal sizes).

        A diagnostic, not a verdict: such a file is either a live object's shard missing on
        some drive, or an orphan (the data of a write that failed or was superseded while a
        drive was away) that nothing references. Which one only the metadata knows, so the
        drills judge redundancy by reading every object from exactly K drives instead
        (`drill.verify_every_shard`) and report this count beside it."""
        problems = []
        for rel, per_drive in self.data_dirs().items():
            if len(per_drive) < self.data_shards:
                continue
            names = set()
            for files in per_drive.values():
                names |= set(files)
            for name in sorted(names):
                holders = [d for d, files in per_drive.items() if name in files]
                if len(holders) < self.data_shards:
                    continue  # an unreferenced part file of an upload that failed
                if len(holders) != self.total_drives:
                    missing = sorted(str(d.relative_to(self.root)) for d in self.all_drives()
                                     if d not in holders)
                    problems.append(f"{rel}/{name} missing on {missing}")
                    continue
                sizes = {per_drive[d][name] for d in holders}
                if len(sizes) != 1:
                    problems.append(f"{rel}/{name} has sizes {sorted(sizes)} across drives")
        return problems

    def shard_files(self, node: Node) -> list[Path]:
        out = []
        for drive in node.drives:
            data = drive / "data"
            if data.is_dir():
                out += [p for p in data.rglob("part.*") if p.is_file()]
        return sorted(out)


class Proxy:
    """A TCP proxy on NAME_IP:PORT forwarding to the node on LISTEN_IP:PORT, which can cut off
    chosen source addresses (a partition): new connections from a blocked source are accepted
    and then ignored (silence, like dropped packets), and live ones from it are frozen the
    same way. `heal()` closes the frozen ones so the nodes reconnect."""

    def __init__(self, ip: str, port: int, up_ip: str, up_port: int):
        self.addr = (ip, port)
        self.upstream = (up_ip, up_port)
        self.blocked: set[str] = set()
        self.lock = threading.Lock()
        self.pairs: list[tuple[socket.socket, socket.socket, str]] = []
        self.frozen: list[socket.socket] = []
        self.sel = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.thread: threading.Thread | None = None
        self.running = False
        self.wake_r, self.wake_w = socket.socketpair()

    def start(self) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(self.addr)
        self.listener.listen(256)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, ("accept", None))
        self.sel.register(self.wake_r, selectors.EVENT_READ, ("wake", None))
        self.running = True
        self.thread = threading.Thread(target=self._loop, name=f"proxy-{self.addr[0]}",
                                       daemon=True)
        self.thread.start()

    def block(self, sources: set[str]) -> None:
        with self.lock:
            self.blocked = set(sources)
        self.wake_w.send(b"b")

    def heal(self) -> None:
        with self.lock:
            self.blocked = set()
        self.wake_w.send(b"h")

    def stop(self) -> None:
        self.running = False
        try:
            self.wake_w.send(b"s")
        except OSError:
            pass
        if self.thread is not None:
            self.thread.join(timeout=5)
        for a, b, _ in self.pairs:
            for s in (a, b):
                s.close()
        for s in self.frozen:
            s.close()
        if self.listener is not None:
            self.listener.close()
        self.wake_r.close()
        self.wake_w.close()
        self.sel.close()

    def _drop_pair(self, a: socket.socket, b: socket.socket) -> None:
        for s in (a, b):
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        self.pairs = [p for p in self.pairs if p[0] is not a]

    def _apply(self) -> None:
        """Freeze live connections from blocked sources; release frozen ones after a heal."""
        with self.lock:
            blocked = set(self.blocked)
        for a, b, src in list(self.pairs):
            if src in blocked:
                for s in (a, b):
                    try:
                        self.sel.unregister(s)
                    except (KeyError, ValueError):
                        pass
                self.pairs = [p for p in self.pairs if p[0] is not a]
                self.frozen += [a, b]
        if not blocked:
            for s in self.frozen:
                s.close()
            self.frozen = []

    def _loop(self) -> None:
        while self.running:
            for key, _ in self.sel.select(timeout=0.5):
                kind, peer = key.data
                if kind == "wake":
                    self.wake_r.recv(64)
                    self._apply()
                elif kind == "accept":
                    try:
                        conn, (src, _) = self.listener.accept()
                    except BlockingIOError:
                        continue
                    with self.lock:
                        blocked = src in self.blocked
                    if blocked:
                        self.frozen.append(conn)
                        continue
                    up = socket.socket()
                    try:
                        up.settimeout(2)
                        up.connect(self.upstream)
                    except OSError:
                        up.close()
                        conn.close()
                        continue
                    for s in (conn, up):
                        s.setblocking(False)
                        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.pairs.append((conn, up, src))
                    self.sel.register(conn, selectors.EVENT_READ, ("data", up))
                    self.sel.register(up, selectors.EVENT_READ, ("data", conn))
                else:
                    src_sock = key.fileobj
                    try:
                        chunk = src_sock.recv(256 * 1024)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        chunk = b""
                    if not chunk:
                        a = next((p for p in self.pairs if src_sock in (p[0], p[1])), None)
                        if a is not None:
                            self._drop_pair(a[0], a[1])
                        continue
                    try:
                        peer.setblocking(True)
                        peer.settimeout(10)
                        peer.sendall(chunk)
                        peer.setblocking(False)
                    except OSError:
                        a = next((p for p in self.pairs if src_sock in (p[0], p[1])), None)
                        if a is not None:
                            self._drop_pair(a[0], a[1])
