"""Drill 7: linearizability of single-key reads and writes on a few hot keys. Writers put
unique values through all four nodes while readers read through all four nodes; every
operation's invocation and response times are recorded and a small checker judges the
history per key:

- a read returns a value that was written (never an invented, corrupted or refused one), and
  not one whose write started only after the read had finished;
- no read returns a value older than one already returned to any read that finished before
  this read started, nor older than a write acknowledged before this read started ("older":
  its write finished before the other value's write began);
- at the end every node returns the same value, and not one older than any acknowledged
  write.

Writes that fail ambiguously (timeout, reset) may or may not have happened: their values
are acceptable at any time after they began. Writes refused with 503 SlowDown never happened.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from drill import finish, make_bucket, phase, redundancy
from load import Ledger, Op, error_kind, is_not_found, may_have_applied

HOT_KEYS = ["hot/a", "hot/b", "hot/c"]
WRITERS = 3
READERS = 3
RUN_S = 9.0
INF = math.inf


@dataclass
class Write:
    key: str
    value: str
    start: float
    end: float       # INF when the outcome is unknown


@dataclass
class Read:
    key: str
    value: str       # "" for 404
    start: float
    end: float
    node: int


def body(value: str, rng: random.Random) -> bytes:
    return value.encode() + b"|" + rng.randbytes(rng.randint(100, 4000))


def value_of(data: bytes) -> str:
    return data.split(b"|", 1)[0].decode(errors="replace")


def check(writes: list[Write], reads: list[Read]) -> list[str]:
    """Violations of the rules in the module docs, one line each."""
    bad = []
    by_value = {w.value: w for w in writes}
    for key in {w.key for w in writes}:
        ws = [w for w in writes if w.key == key]
        rs = sorted((r for r in reads if r.key == key), key=lambda r: r.start)
        # (end, start of the value's write) for every acknowledged write and every read:
        # anything that ended before a read started sets a floor for what it may return.
        floors = [(w.end, w.start, f"write {w.value} acknowledged") for w in ws if w.end < INF]
        for r in rs:
            w = by_value.get(r.value)
            if w is not None and w.key == key:
                floors.append((r.end, w.start, f"read of {r.value} via node {r.node}"))
        floors.sort(key=lambda f: f[0])
        i, best, why = 0, -INF, ""
        for r in rs:
            while i < len(floors) and floors[i][0] < r.start:
                if floors[i][1] > best:
                    best, why = floors[i][1], floors[i][2]
                i += 1
            w = by_value.get(r.value)
            if w is None or w.key != key:
                bad.append(f"{key}: read via node {r.node} at {r.start:.3f} returned "
                           f"{r.value!r}, never written")
                continue
            if w.start > r.end:
                bad.append(f"{key}: read via node {r.node} returned {r.value} before its "
                           f"write began")
            if w.end < best:
                bad.append(f"{key}: read via node {r.node} at {r.start:.3f} returned "
                           f"{r.value} (write ended {w.end:.3f}), older than the {why} "
                           f"(write began {best:.3f}) that finished before the read started")
    return bad


def test_drill7_linearizable_hot_keys(make_cluster):
    c = make_cluster()
    bucket = make_bucket(c)
    ledger = Ledger()
    writes: list[Write] = []
    reads: list[Read] = []
    lock = threading.Lock()
    crashes: list[str] = []
    s3s = [c.client(n) for n in c.nodes]

    def put(node_i: int, key: str, value: str, rng: random.Random) -> None:
        data = body(value, rng)
        t0 = time.monotonic()
        try:
            s3s[node_i].put_object(Bucket=bucket, Key=key, Body=data)
        except (ClientError, BotoCoreError) as e:
            t1 = time.monotonic()
            with lock:
                if may_have_applied(e):
                    writes.append(Write(key, value, t0, INF))
            ledger.record(Op("put", node_i + 1, t0, t1, False, error_kind(e)))
            return
        t1 = time.monotonic()
        with lock:
            writes.append(Write(key, value, t0, t1))
        ledger.record(Op("put", node_i + 1, t0, t1, True))

    for key in HOT_KEYS:
        put(0, key, f"init-{key}", random.Random(0))
    assert len([w for w in writes if w.end < INF]) == len(HOT_KEYS), ledger.errors

    stop = threading.Event()

    def writer(i: int) -> None:
        try:
            rng = random.Random(700 + i)
            seq = 0
            while not stop.is_set():
                seq += 1
                put(rng.randrange(4), rng.choice(HOT_KEYS), f"w{i}-{seq}", rng)
        except Exception as e:  # a bug in the drill itself
            crashes.append(repr(e))

    def reader(i: int) -> None:
        try:
            rng = random.Random(800 + i)
            while not stop.is_set():
                node_i, key = rng.randrange(4), rng.choice(HOT_KEYS)
                t0 = time.monotonic()
                try:
                    got = value_of(s3s[node_i].get_object(Bucket=bucket, Key=key)["Body"].read())
                except (ClientError, BotoCoreError) as e:
                    if not is_not_found(e):
                        ledger.record(Op("get", node_i + 1, t0, time.monotonic(), False,
                                         error_kind(e)))
                        continue
                    got = ""
                t1 = time.monotonic()
                with lock:
                    reads.append(Read(key, got, t0, t1, node_i + 1))
                ledger.record(Op("get", node_i + 1, t0, t1, True))
        except Exception as e:
            crashes.append(repr(e))

    threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(WRITERS)]
    threads += [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(READERS)]
    for t in threads:
        t.start()
    time.sleep(RUN_S)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "history threads still running after 60 s"
    assert not crashes, crashes
    t_end = time.monotonic()
    phase(f"history: {len(writes)} writes, {len(reads)} reads")

    # Final reads through every node count as reads of the history too.
    for node_i in range(4):
        for key in HOT_KEYS:
            t0 = time.monotonic()
            try:
                got = value_of(s3s[node_i].get_object(Bucket=bucket, Key=key)["Body"].read())
            except ClientError as e:
                if not is_not_found(e):
                    raise
                got = ""
            reads.append(Read(key, got, t0, time.monotonic(), node_i + 1))
            ledger.record(Op("get", node_i + 1, t0, time.monotonic(), True))
            final_floor = max(w.start for w in writes if w.key == key and w.end < INF)
            w = next((w for w in writes if w.value == got), None)
            if w is None or w.end < final_floor:
                ledger.bad("lost", f"final read of {key} via node {node_i + 1}: {got!r} is "
                                   f"older than an acknowledged write")
    finals = {(r.key, r.value) for r in reads if r.start >= t_end}
    if len(finals) != len(HOT_KEYS):
        ledger.bad("wrong", f"nodes disagree on the final values: {sorted(finals)}")

    for line in check(writes, reads):
        ledger.bad("wrong", line)
    assert len([w for w in writes if w.end < INF]) > 3 * len(HOT_KEYS), (
        f"too few acknowledged writes to judge: {ledger.errors}")
    # No fault was injected: the heal status only confirms nothing is missing, and the
    # drill's verdict does not depend on it being served.
    ttr, _missing = redundancy(c, t_end, timeout=60)
    # The hot keys are in no ledger key state: finish reads back nothing else.
    finish(c, 7, "linearizable-hot-keys", ledger, bucket, ttr, None,
           extra=f"writes={sum(1 for w in writes if w.end < INF)} reads={len(reads)}")
