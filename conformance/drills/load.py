"""The drills' mixed load and its ledger: several client threads doing PUT / GET / LIST /
DELETE and multipart uploads through chosen nodes, every operation's outcome recorded, and the
final check that every acknowledged object reads back byte-identical through every node.

Owns: the ledger's model of what each key may hold, and the verdicts `lost` and `wrong`.
A key is owned by one worker, so its operations are sequential. Per key the ledger keeps the
last ACKNOWLEDGED state (a body's sha256, or absent) and the outcomes of unacknowledged
writes (a timeout or a reset may or may not have taken effect, now or later), which are also
acceptable; a write refused with 503 SlowDown must never become visible. Anything else read
back is either `lost` (an acknowledged body is gone) or `wrong` (a superseded, corrupted,
refused or never-written body, or a deleted key that came back).

Must never: retry inside the client (boto3 runs with retries off so every failure is
visible), count an unacknowledged write as acknowledged, or accept a body without hashing it.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

MIB = 1024 * 1024
ABSENT = "absent"
T0 = time.monotonic()  # histories print times relative to this (see Ledger.mark)


def body_for(key: str, seq: int, size: int, rng: random.Random) -> bytes:
    head = f"{key}|{seq}|".encode()
    return head + rng.randbytes(max(0, size - len(head)))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def error_kind(e: Exception) -> str:
    """'503 SlowDown', '404 NoSuchKey', 'ReadTimeoutError', ... for the error tallies."""
    if isinstance(e, ClientError):
        meta = e.response.get("ResponseMetadata", {})
        return f"{meta.get('HTTPStatusCode')} {e.response.get('Error', {}).get('Code')}"
    return type(e).__name__


def may_have_applied(e: Exception) -> bool:
    """Whether a failed write may still take effect. Only a refusal (503 SlowDown: "nothing
    was written") cannot. Even a connection error may follow an attempt the server did get:
    botocore (urllib3) re-sends a request once on its own when the connection closes before
    the response, retries off or not, so "could not connect" can be the second attempt's."""
    if isinstance(e, ClientError):
        meta = e.response.get("ResponseMetadata", {})
        code = e.response.get("Error", {}).get("Code")
        return not (meta.get("HTTPStatusCode") == 503 and code == "SlowDown")
    return True


def is_not_found(e: Exception) -> bool:
    return isinstance(e, ClientError) and e.response.get("Error", {}).get("Code") in (
        "NoSuchKey", "404", "NotFound")


@dataclass
class KeyState:
    acked: str | None = None            # sha256 hex, ABSENT, or None (never acknowledged)
    acked_at: float = 0.0
    unacked: set[str] = field(default_factory=set)
    size: int = 0
    history: list[str] = field(default_factory=list)   # for failure messages

    def log(self, kind: str, node: int, t0: float, outcome: str, value: str = "") -> None:
        self.history.append(f"{kind}{' ' + value[:12] if value else ''} via node {node} at "
                            f"{t0 - T0:.2f}s: {outcome}")

    def allowed(self) -> set[str]:
        out = set(self.unacked)
        out.add(self.acked if self.acked is not None else ABSENT)
        return out

    def certain(self) -> bool:
        return not self.unacked

    def verdict(self, seen: str) -> str | None:
        """None when `seen` (a sha256 or ABSENT) is acceptable, else 'lost' or 'wrong'."""
        if seen in self.allowed():
            return None
        if seen == ABSENT and self.acked not in (None, ABSENT):
            return "lost"
        return "wrong"


@dataclass
class Op:
    kind: str
    node: int
    start: float
    end: float
    ok: bool
    error: str = ""


class Ledger:
    """Every operation's outcome and every key's acceptable states."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, KeyState] = {}
        self.ops: list[Op] = []
        self.wrong: list[str] = []
        self.lost: list[str] = []
        self.errors: dict[str, int] = {}

    @staticmethod
    def mark() -> None:
        """Makes key histories count seconds from now (call when the drill starts)."""
        global T0
        T0 = time.monotonic()

    def histories(self, lines: list[str], limit: int = 4) -> str:
        """The operation history of the keys named in `lines` (failure messages)."""
        out = []
        with self.lock:
            for key in sorted(self.keys):
                if len(out) >= limit:
                    break
                if any(f" {key} " in f" {line} " or f" {key}:" in line for line in lines):
                    out.append(f"{key}: " + "; ".join(self.keys[key].history[-12:]))
        return "\n".join(out)

    def state(self, key: str) -> KeyState:
        with self.lock:
            return self.keys.setdefault(key, KeyState())

    def record(self, op: Op) -> None:
        with self.lock:
            self.ops.append(op)
            if not op.ok:
                k = f"{op.kind}: {op.error}"
                self.errors[k] = self.errors.get(k, 0) + 1

    def bad(self, verdict: str, what: str) -> None:
        with self.lock:
            (self.lost if verdict == "lost" else self.wrong).append(what)

    @property
    def acknowledged(self) -> int:
        with self.lock:
            return sum(1 for o in self.ops if o.ok)

    def acked_writes(self) -> int:
        with self.lock:
            return sum(1 for o in self.ops if o.ok and o.kind in ("put", "delete", "multipart"))


class Load:
    """`threads` workers, each owning its keys under `prefix/w<i>/`, doing a mixed load
    through the nodes `targets()` returns, until `stop()`."""

    def __init__(self, cluster, bucket: str, ledger: Ledger, targets, threads: int = 4,
                 prefix: str = "load", seed: int = 1, sizes=(1024, 64 * 1024),
                 large_every: int = 0, multipart_max: int = 2, op_pause: float = 0.0,
                 read_timeout: float = 20.0, spread: bool = False):
        self.cluster = cluster
        self.bucket = bucket
        self.ledger = ledger
        self.targets = targets
        self.threads = threads
        self.prefix = prefix
        self.seed = seed
        self.sizes = sizes
        self.large_every = large_every
        self.multipart_left = multipart_max
        self.op_pause = op_pause
        # spread: worker w's n-th operation goes to node (w + n) mod len(targets), so every
        # node always has clients (as in production) instead of a random choice.
        self.spread = spread
        self.stop_event = threading.Event()
        self.workers: list[threading.Thread] = []
        self.mp_lock = threading.Lock()
        self.clients = [cluster.client(n, read_timeout=read_timeout) for n in cluster.nodes]
        self.crashes: list[str] = []
        # worker -> (monotonic start, kind, node) of the operation it is in, None between
        self.inflight: dict[int, tuple[float, str, int] | None] = {}

    def start(self) -> None:
        for i in range(self.threads):
            t = threading.Thread(target=self._worker, args=(i,), name=f"load-{i}", daemon=True)
            t.start()
            self.workers.append(t)

    def running(self) -> list[tuple[float, str, int]]:
        """(start, kind, node) of every operation running now."""
        return [op for op in list(self.inflight.values()) if op is not None]

    def stop(self, timeout: float = 60.0) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for t in self.workers:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        alive = [t.name for t in self.workers if t.is_alive()]
        assert not alive, f"load threads still running after {timeout}s: {alive}"
        assert not self.crashes, f"load thread crashed: {self.crashes}"

    # ---------------------------------------------------------------- the worker

    def _worker(self, w: int) -> None:
        try:
            self._run(w)
        except Exception as e:  # a bug in the drill itself, surfaced by stop()
            import traceback
            self.crashes.append(f"worker {w}: {e!r}\n{traceback.format_exc()}")

    def _run(self, w: int) -> None:
        rng = random.Random(self.seed * 1000 + w)
        mine: list[str] = []
        seq = 0
        while not self.stop_event.is_set():
            nodes = self.targets()
            if not nodes:
                time.sleep(0.05)
                continue
            seq += 1
            node = nodes[(w + seq) % len(nodes)] if self.spread else rng.choice(nodes)
            s3 = self.clients[node.index - 1]
            r = rng.random()

            def running(kind: str) -> None:
                self.inflight[w] = (time.monotonic(), kind, node.index)

            if r < 0.30 or len(mine) < 3:
                key = f"{self.prefix}/w{w}/k{seq}"
                mine.append(key)
                running("put")
                self._put(s3, node, key, seq, rng)
            elif r < 0.45:
                running("put")
                self._put(s3, node, rng.choice(mine), seq, rng)
            elif r < 0.75:
                running("get")
                self._get(s3, node, rng.choice(mine))
            elif r < 0.83:
                running("list")
                self._list(s3, node, f"{self.prefix}/w{w}/", mine)
            elif r < 0.95:
                running("delete")
                self._delete(s3, node, rng.choice(mine))
            else:
                with self.mp_lock:
                    go = self.multipart_left > 0
                    self.multipart_left -= 1 if go else 0
                if go:
                    key = f"{self.prefix}/w{w}/mp{seq}"
                    mine.append(key)
                    running("multipart")
                    self._multipart(s3, node, key, seq, rng)
            self.inflight[w] = None
            if self.op_pause:
                time.sleep(self.op_pause)

    def before_fault(self, node, prefix: str = "fault") -> None:
        """Writes the keys `during_fault` will overwrite and delete (from the calling
        thread, which owns every key under `prefix`)."""
        s3, rng = self.clients[node.index - 1], random.Random(self.seed + 99)
        for i, key in enumerate((f"{prefix}/overwritten", f"{prefix}/deleted")):
            self._put(s3, node, key, 900_000 + i, rng, size=300 * 1024)
            assert self.ledger.state(key).acked not in (None, ABSENT), (
                f"setup write of {key} failed: {self.ledger.errors}")

    def during_fault(self, node, prefix: str = "fault") -> list[str]:
        """Every kind of write a down or cut-off node can miss, through `node`: a new inline
        object, a new object with shard files, a multipart upload, an overwrite and a
        delete. Returns the outcome of each (all are recorded in the ledger)."""
        s3, rng = self.clients[node.index - 1], random.Random(self.seed + 98)
        self._put(s3, node, f"{prefix}/small", 900_010, rng, size=3000)
        self._put(s3, node, f"{prefix}/large", 900_011, rng, size=400 * 1024)
        self._multipart(s3, node, f"{prefix}/multipart", 900_012, rng)
        self._put(s3, node, f"{prefix}/overwritten", 900_014, rng, size=250 * 1024)
        self._delete(s3, node, f"{prefix}/deleted")
        return [f"{k}: {self.ledger.state(f'{prefix}/{k}').history[-1]}"
                for k in ("small", "large", "multipart", "overwritten", "deleted")]

    def spanning_multipart(self, node, key: str = "fault/multipart-spanning"):
        """Starts a multipart upload and sends its first part now (during a fault); returns
        a function that sends the last part and completes it (after the fault), returning
        its outcome. The object's parts then come from both sides of the fault."""
        s3, rng = self.clients[node.index - 1], random.Random(self.seed + 97)
        first = body_for(key, 900_020, 5 * MIB, rng)
        upload_id = s3.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        etag1 = s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=1,
                               Body=first)["ETag"]

        def finish(through) -> str:
            s3b = self.clients[through.index - 1]
            last = body_for(key, 900_021, 2 * MIB, rng)
            h = digest(first + last)
            st = self.ledger.state(key)
            t0 = time.monotonic()
            try:
                etag2 = s3b.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                        PartNumber=2, Body=last)["ETag"]
                s3b.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id,
                    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag1},
                                               {"PartNumber": 2, "ETag": etag2}]})
            except (ClientError, BotoCoreError) as e:
                if may_have_applied(e):
                    st.unacked.add(h)
                st.log("multipart", through.index, t0, error_kind(e), h)
                self.ledger.record(Op("multipart", through.index, t0, time.monotonic(), False,
                                      error_kind(e)))
                return f"{key}: {error_kind(e)}"
            st.acked, st.acked_at, st.size = h, time.monotonic(), len(first) + len(last)
            st.log("multipart", through.index, t0, "ok (part 1 sent during the fault)", h)
            self.ledger.record(Op("multipart", through.index, t0, time.monotonic(), True))
            return f"{key}: ok"

        return finish

    def _size(self, seq: int, rng: random.Random) -> int:
        if self.large_every and seq % self.large_every == 0:
            return rng.randint(200 * 1024, 600 * 1024)  # past the inline limit: shard files
        return rng.randint(*self.sizes)

    def _put(self, s3, node, key: str, seq: int, rng: random.Random,
             size: int | None = None) -> None:
        data = body_for(key, seq, size if size is not None else self._size(seq, rng), rng)
        h = digest(data)
        st = self.ledger.state(key)
        t0 = time.monotonic()
        try:
            s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        except (ClientError, BotoCoreError) as e:
            if may_have_applied(e):
                st.unacked.add(h)
            st.log("put", node.index, t0, error_kind(e), h)
            self.ledger.record(Op("put", node.index, t0, time.monotonic(), False, error_kind(e)))
            return
        st.acked, st.acked_at, st.size = h, time.monotonic(), len(data)
        st.log("put", node.index, t0, "ok", h)
        self.ledger.record(Op("put", node.index, t0, time.monotonic(), True))

    def _delete(self, s3, node, key: str) -> None:
        st = self.ledger.state(key)
        t0 = time.monotonic()
        try:
            s3.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as e:
            if may_have_applied(e):
                st.unacked.add(ABSENT)
            st.log("delete", node.index, t0, error_kind(e))
            self.ledger.record(Op("delete", node.index, t0, time.monotonic(), False,
                                  error_kind(e)))
            return
        st.acked, st.acked_at = ABSENT, time.monotonic()
        st.log("delete", node.index, t0, "ok")
        self.ledger.record(Op("delete", node.index, t0, time.monotonic(), True))

    def _get(self, s3, node, key: str) -> None:
        st = self.ledger.state(key)
        t0 = time.monotonic()
        try:
            resp = s3.get_object(Bucket=self.bucket, Key=key)
            seen = digest(resp["Body"].read())
        except (ClientError, BotoCoreError) as e:
            if not is_not_found(e):
                self.ledger.record(Op("get", node.index, t0, time.monotonic(), False,
                                      error_kind(e)))
                return
            seen = ABSENT
        self.ledger.record(Op("get", node.index, t0, time.monotonic(), True))
        st.log("get", node.index, t0, seen[:12])
        v = st.verdict(seen)
        if v is not None:
            # While the load runs, an acknowledged object missing from a read is a wrong read
            # (read-after-write broken); `lost` is for the final read-back.
            self.ledger.bad("wrong", f"GET {key} via node {node.index} during load: "
                                     f"{seen[:12]} not in {sorted(s[:12] for s in st.allowed())}")

    def _list(self, s3, node, prefix: str, mine: list[str]) -> None:
        t0 = time.monotonic()
        listed: set[str] = set()
        try:
            token = None
            while True:
                kw = {"Bucket": self.bucket, "Prefix": prefix}
                if token:
                    kw["ContinuationToken"] = token
                page = s3.list_objects_v2(**kw)
                listed |= {o["Key"] for o in page.get("Contents", [])}
                if not page.get("IsTruncated"):
                    break
                token = page["NextContinuationToken"]
        except (ClientError, BotoCoreError) as e:
            self.ledger.record(Op("list", node.index, t0, time.monotonic(), False,
                                  error_kind(e)))
            return
        self.ledger.record(Op("list", node.index, t0, time.monotonic(), True))
        for key in set(mine):
            st = self.ledger.state(key)
            if not st.certain():
                continue
            present = st.acked not in (None, ABSENT)
            if present != (key in listed):
                what = ("missing" if present else
                        "listed after delete" if st.acked == ABSENT else
                        "listed, never written")
                self.ledger.bad("wrong", f"LIST via node {node.index}: {key} {what}")

    def _multipart(self, s3, node, key: str, seq: int, rng: random.Random) -> None:
        parts = [body_for(key, seq, 5 * MIB, rng), body_for(key, seq + 1, rng.randint(1, 3) * MIB,
                                                               rng)]
        whole = b"".join(parts)
        h = digest(whole)
        st = self.ledger.state(key)
        t0 = time.monotonic()
        upload_id = None
        try:
            upload_id = s3.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
            done = []
            for i, p in enumerate(parts, start=1):
                etag = s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                      PartNumber=i, Body=p)["ETag"]
                done.append({"PartNumber": i, "ETag": etag})
        except (ClientError, BotoCoreError) as e:
            self.ledger.record(Op("multipart", node.index, t0, time.monotonic(), False,
                                  error_kind(e)))
            if upload_id is not None:
                try:
                    s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                except (ClientError, BotoCoreError):
                    pass
            return
        try:
            s3.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                         MultipartUpload={"Parts": done})
        except (ClientError, BotoCoreError) as e:
            if may_have_applied(e):
                st.unacked.add(h)
            st.log("multipart", node.index, t0, error_kind(e), h)
            self.ledger.record(Op("multipart", node.index, t0, time.monotonic(), False,
                                  error_kind(e)))
            return
        st.acked, st.acked_at, st.size = h, time.monotonic(), len(whole)
        st.log("multipart", node.index, t0, "ok", h)
        self.ledger.record(Op("multipart", node.index, t0, time.monotonic(), True))


def read_back(cluster, bucket: str, ledger: Ledger, nodes=None, threads: int = 4) -> int:
    """Reads every key the ledger knows through every given node (default: all) and records
    lost/wrong verdicts; also LISTs the bucket through every node. Returns objects checked."""
    nodes = nodes or cluster.nodes
    clients = {n.index: cluster.client(n, read_timeout=60) for n in nodes}
    with ledger.lock:
        items = sorted(ledger.keys.items())
    jobs = [(key, st, n) for key, st in items for n in nodes]
    def one(job) -> None:
        key, st, n = job
        s3 = clients[n.index]
        try:
            resp = s3.get_object(Bucket=bucket, Key=key)
            seen = digest(resp["Body"].read())
        except (ClientError, BotoCoreError) as e:
            if not is_not_found(e):
                ledger.bad("lost" if st.acked not in (None, ABSENT) else "wrong",
                           f"final GET {key} via node {n.index}: {error_kind(e)}")
                return
            seen = ABSENT
        v = st.verdict(seen)
        if v is not None:
            ledger.bad(v, f"final GET {key} via node {n.index}: {seen[:12]}, acknowledged "
                          f"{(st.acked or ABSENT)[:12]}, unacknowledged "
                          f"{sorted(s[:12] for s in st.unacked)}")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, jobs))

    for n in nodes:
        s3 = clients[n.index]
        listed: set[str] = set()
        token = None
        while True:
            kw = {"Bucket": bucket}
            if token:
                kw["ContinuationToken"] = token
            page = s3.list_objects_v2(**kw)
            listed |= {o["Key"] for o in page.get("Contents", [])}
            if not page.get("IsTruncated"):
                break
            token = page["NextContinuationToken"]
        for key, st in items:
            if not st.certain():
                continue
            present = st.acked not in (None, ABSENT)
            if present and key not in listed:
                ledger.bad("lost", f"final LIST via node {n.index}: {key} missing")
            elif not present and key in listed:
                ledger.bad("wrong", f"final LIST via node {n.index}: {key} listed, but "
                                    f"{'deleted' if st.acked == ABSENT else 'never written'}")
    return len(items)
