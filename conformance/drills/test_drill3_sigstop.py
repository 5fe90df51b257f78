"""Drill 3: SIGSTOP one node under load (a gray failure: its sockets accept, nothing answers).
Requests to the other nodes slow down at first (their calls to the frozen node wait for a
timeout), then the node is marked offline and the p99 latency of 1-second windows returns to
the baseline band within a few probe intervals. Then SIGCONT: the node rejoins, what it
missed is healed, and every acknowledged object reads back through every node.
"""

from __future__ import annotations

import os
import time

from drill import finish, make_bucket, phase, redundancy
from load import Ledger, Load

# Wall time from SIGSTOP until the p99 latency is back within the band for good. The first
# call to the frozen node waits out the internode unary timeout (10 s), after which the node
# is offline and skipped; a few probe intervals more are allowed on top.
RECOVERY_BOUND_S = 20.0
GOOD_WINDOWS = 3   # consecutive good 1-second windows that count as recovered
WINDOW_S = 1.0


def p99(latencies: list[float]) -> float:
    xs = sorted(latencies)
    return xs[min(len(xs) - 1, int(0.99 * len(xs)))] if xs else float("inf")


def windows_after(ops, t0: float, now: float, oldest_inflight: float | None):
    """p99 of every complete 1-second window (by start time) from t0: a window is complete
    once it is over and no operation that started in it (or before) is still running."""
    out = []
    k = 0
    while True:
        lo, hi = t0 + k * WINDOW_S, t0 + (k + 1) * WINDOW_S
        if hi > now or (oldest_inflight is not None and oldest_inflight < hi):
            break
        lat = [o.end - o.start for o in ops if lo <= o.start < hi]
        out.append((k, p99(lat), len(lat)))
        k += 1
    return out


def test_drill3_sigstop_one_node(make_cluster):
    c = make_cluster()
    bucket = make_bucket(c)
    ledger = Ledger()
    victim = c.nodes[2]
    targets = [n for n in c.nodes if n is not victim]
    load = Load(c, bucket, ledger, lambda: list(targets), threads=4, seed=33, large_every=5,
                multipart_max=1, read_timeout=30)

    def timed_ops():
        with ledger.lock:
            return [o for o in ledger.ops if o.kind != "multipart"]

    load.start()
    try:
        time.sleep(5)
        t_stop_base = time.monotonic()
        base = [o.end - o.start for o in timed_ops() if o.ok and o.start > t_stop_base - 4]
        baseline = p99(base)
        band = max(3 * baseline, 0.5)
        c.sigstop(victim)
        t_stop = time.monotonic()
        phase(f"SIGSTOP node {victim.index}; baseline p99 {baseline * 1000:.0f} ms "
              f"({len(base)} ops), band {band * 1000:.0f} ms")
        recovered_at = None
        worst = 0.0
        while time.monotonic() - t_stop < RECOVERY_BOUND_S + 10:
            time.sleep(0.5)
            wins = windows_after(timed_ops(), t_stop, time.monotonic(), load.oldest_inflight())
            worst = max([worst] + [p for _, p, n in wins if n])
            bad = [k for k, p, n in wins if n == 0 or p > band]
            good_tail = len(wins) - (bad[-1] + 1 if bad else 0)
            if good_tail >= GOOD_WINDOWS:
                recovered_at = (bad[-1] + 1) * WINDOW_S if bad else 0.0
                break
        if os.environ.get("DRILLS_VERBOSE"):
            for k, p, n in windows_after(timed_ops(), t_stop, time.monotonic(), None):
                print(f"    window {k:2d}: {n:3d} ops, p99 {p * 1000:7.0f} ms")
        during = [o for o in timed_ops() if o.start > t_stop and o.ok
                  and o.kind in ("put", "delete")]
        c.sigcont(victim)
        t_cont = time.monotonic()
        phase(f"SIGCONT; p99 recovered after {recovered_at}s, worst window p99 {worst:.1f}s")
        targets.append(victim)
        time.sleep(3)
    finally:
        c.sigcont(victim)
        load.stop()
    assert recovered_at is not None and recovered_at <= RECOVERY_BOUND_S, (
        f"p99 latency of the other nodes not back within {band * 1000:.0f} ms "
        f"(3x baseline {baseline * 1000:.0f} ms) for {GOOD_WINDOWS} s within "
        f"{RECOVERY_BOUND_S} s of SIGSTOP (recovered after {recovered_at}); errors "
        f"{ledger.errors}")
    assert during, f"no write acknowledged while node {victim.index} was stopped: " \
                   f"{ledger.errors}"
    ttr, missing = redundancy(c, t_cont, timeout=90)
    finish(c, 3, "sigstop-gray-failure", ledger, bucket, ttr, missing,
           extra=f"p99_recovered_after={recovered_at:.0f}s baseline_p99="
                 f"{baseline * 1000:.0f}ms worst_p99={worst:.1f}s", every_shard=True)
