"""What every drill does around its fault: a bucket, the mixed load, waiting for full
redundancy, the final read-back through every node, and the one result line.

Owns: the result line's format (`drill N <name>: acknowledged=A lost=L wrong=W
time_to_redundancy=Xs`) and the rule that lost and wrong must be 0. When the heal status
(admin API, contract 1) is not served, the data checks still run and must pass; only then is
the drill skipped, naming the missing feature. Must never weaken a data assertion because a
feature is missing.
"""

from __future__ import annotations

import os
import time

import pytest

from cluster import Cluster, FeatureMissing
from load import Ledger, read_back


RESULTS: list[str] = []


def report(line: str) -> None:
    """The drill's one result line: printed now and repeated in the terminal summary."""
    print(line, flush=True)
    RESULTS.append(line)


_T0 = [time.monotonic()]


def phase(name: str) -> None:
    """With DRILLS_VERBOSE=1, prints how long the drill has run at each named step."""
    if os.environ.get("DRILLS_VERBOSE"):
        print(f"  [{time.monotonic() - _T0[0]:6.1f}s] {name}", flush=True)


def make_bucket(c: Cluster, name: str = "drill") -> str:
    phase("cluster up")
    s3 = c.client(c.nodes[0])
    s3.create_bucket(Bucket=name)
    return name


def live(c: Cluster):
    """Targets: every node that runs and is not stopped."""
    return lambda: [n for n in c.nodes if n.alive() and not n.stopped]


def redundancy(c: Cluster, since: float, timeout: float = 90.0, disk: bool = True,
               on_poll=None) -> tuple[float | None, str | None]:
    """(seconds from `since` to full redundancy, None) or (None, why it cannot be told)."""
    try:
        c.wait_redundancy(timeout, disk=disk, on_poll=on_poll)
    except FeatureMissing as e:
        return None, str(e)
    return time.monotonic() - since, None


def finish(c: Cluster, number: int, name: str, ledger: Ledger, bucket: str,
           ttr: float | None, missing: str | None, nodes=None, extra: str = "") -> None:
    """Reads everything back through every node, prints the result line, asserts it, and
    skips (after the data checks passed) when a feature needed for the heal part is missing."""
    phase("heal verified" if ttr is not None else "heal not verifiable")
    read_back(c, bucket, ledger, nodes=nodes)
    phase("read back")
    if os.environ.get("DRILLS_VERBOSE"):
        print(f"errors: {ledger.errors}\nshard problems: {c.shard_problems()[:10]}\n"
              f"data dirs: {len(c.data_dirs())}")
    ttr_text = f"{ttr:.1f}s" if ttr is not None else "unknown"
    report(f"drill {number} {name}: acknowledged={ledger.acknowledged} "
           f"lost={len(ledger.lost)} wrong={len(ledger.wrong)} time_to_redundancy={ttr_text}"
           + (f" {extra}" if extra else ""))
    detail = (f"lost: {ledger.lost[:10]}\nwrong: {ledger.wrong[:10]}\n"
              f"errors: {ledger.errors}\n{c.logs_tail(15)}")
    assert len(ledger.lost) == 0, detail
    assert len(ledger.wrong) == 0, detail
    if missing is not None:
        pytest.skip(f"data checks passed, but full redundancy cannot be verified: {missing}")
