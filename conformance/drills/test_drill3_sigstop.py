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


def windows_after(ops, t0: float, now: float, running, band: float):
    """(k, p99, ops, verdict) for each 1-second window (by operation start) from t0 that is
    over: `bad` when its p99 exceeds the band, it saw no operation at all, or an operation
    that started in it is still running and already slower than the band; `pending` when
    one is still running within the band (nothing after it is judged yet); else `good`."""
    out = []
    k = 0
    while t0 + (k + 1) * WINDOW_S <= now:
        lo, hi = t0 + k * WINDOW_S, t0 + (k + 1) * WINDOW_S
        lat = [o.end - o.start for o in ops if lo <= o.start < hi]
        still = [now - start for start, kind, _ in running
                 if kind != "multipart" and lo <= start < hi]
        p = p99(lat + still)
        if any(x > band for x in still) or not (lat or still) or p > band:
            verdict = "bad"
        elif still:
            verdict = "pending"
        else:
            verdict = "good"
        out.append((k, p, len(lat) + len(still), verdict))
        if verdict == "pending":
            break
        k += 1
    return out


def recovered(wins) -> float | None:
    """Seconds after the fault from which every window is good, once GOOD_WINDOWS are."""
    judged = [w for w in wins if w[3] != "pending"]
    bad = [k for k, _, _, v in judged if v == "bad"]
    first_good = bad[-1] + 1 if bad else 0
    if len(judged) - first_good >= GOOD_WINDOWS:
        return first_good * WINDOW_S
    return None


def test_drill3_sigstop_one_node(make_cluster):
    c = make_cluster()
    bucket = make_bucket(c)
    ledger = Ledger()
    victim = c.nodes[2]
    targets = [n for n in c.nodes if n is not victim]
    # Six clients spread over the three other nodes: each node has requests in flight at
    # every moment, as in production, so each meets the frozen node at once.
    load = Load(c, bucket, ledger, lambda: list(targets), threads=6, seed=33, large_every=5,
                multipart_max=1, read_timeout=30, spread=True)

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
        wins = []
        while time.monotonic() - t_stop < RECOVERY_BOUND_S + GOOD_WINDOWS + 2:
            time.sleep(0.5)
            wins = windows_after(timed_ops(), t_stop, time.monotonic(), load.running(), band)
            recovered_at = recovered(wins)
            if recovered_at is not None:
                break
        worst = max([0.0] + [p for _, p, n, _ in wins if n])
        now = time.monotonic()
        slowest = sorted(((o.end - o.start, o.kind, o.node, o.start - t_stop, "done")
                          for o in timed_ops() if o.start > t_stop), reverse=True)[:4]
        slowest += [(now - st, kind, node, st - t_stop, "still running")
                    for st, kind, node in load.running() if kind != "multipart"
                    and now - st > band]
        slow_text = ", ".join(f"{kind} via node {node} at +{at:.1f}s took {d:.1f}s ({state})"
                              for d, kind, node, at, state in slowest)
        if os.environ.get("DRILLS_VERBOSE"):
            for k, p, n, v in wins:
                print(f"    window {k:2d}: {n:3d} ops, p99 {p * 1000:7.0f} ms {v}")
            print(f"    slowest: {slow_text}")
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
        f"{RECOVERY_BOUND_S} s of SIGSTOP (recovered after {recovered_at}); windows "
        f"{[(k, round(p, 2), n, v) for k, p, n, v in wins]}; slowest: {slow_text}; "
        f"errors {ledger.errors}")
    assert during, f"no write acknowledged while node {victim.index} was stopped: " \
                   f"{ledger.errors}"
    ttr, missing = redundancy(c, t_cont, timeout=90)
    finish(c, 3, "sigstop-gray-failure", ledger, bucket, ttr, missing,
           extra=f"p99_recovered_after={recovered_at:.0f}s baseline_p99="
                 f"{baseline * 1000:.0f}ms worst_p99={worst:.1f}s", every_shard=True)
