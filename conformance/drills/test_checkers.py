"""The drills' own judges, checked on made-up histories (no cluster): the linearizability
checker of drill 7 and the ledger verdicts of every drill must flag what they exist to flag,
and accept what is allowed."""

from __future__ import annotations

from load import ABSENT, KeyState
from test_drill7_linearizable import INF, Read, Write, check


def test_checker_accepts_a_linearizable_history():
    writes = [Write("k", "a", 0, 1), Write("k", "b", 2, 3), Write("k", "c", 2.5, INF)]
    reads = [Read("k", "a", 1.5, 1.6, 1), Read("k", "b", 2.1, 2.2, 2),  # b concurrent: ok
             Read("k", "a", 2.15, 2.4, 3),  # a still allowed: overlaps the read of b
             Read("k", "b", 3.5, 3.6, 1), Read("k", "c", 3.7, 3.8, 2),  # ambiguous c lands
             Read("k", "c", 4.0, 4.1, 4)]
    assert check(writes, reads) == []


def test_checker_flags_a_stale_read_after_an_acknowledged_write():
    writes = [Write("k", "a", 0, 1), Write("k", "b", 2, 3)]
    bad = check(writes, [Read("k", "a", 3.5, 3.6, 2)])
    assert len(bad) == 1 and "older than the write b acknowledged" in bad[0]


def test_checker_flags_a_read_older_than_an_earlier_read():
    writes = [Write("k", "a", 0, 1), Write("k", "b", 2, 10)]
    reads = [Read("k", "b", 3, 4, 1), Read("k", "a", 5, 6, 2)]
    bad = check(writes, reads)
    assert len(bad) == 1 and "read of b via node 1" in bad[0]


def test_checker_flags_invented_and_future_values():
    writes = [Write("k", "a", 0, 1), Write("k", "b", 5, 6)]
    bad = check(writes, [Read("k", "zzz", 2, 3, 1), Read("k", "b", 2, 3, 1),
                         Read("k", "", 2, 3, 1)])
    assert len(bad) == 3, bad


def test_ledger_verdicts():
    st = KeyState(acked="h1")
    assert st.verdict("h1") is None
    assert st.verdict(ABSENT) == "lost"
    assert st.verdict("h0") == "wrong"
    st.unacked.add(ABSENT)  # a delete that timed out may have happened
    assert st.verdict(ABSENT) is None
    fresh = KeyState()  # only a refused write: nothing may be visible
    assert fresh.verdict(ABSENT) is None and fresh.verdict("h2") == "wrong"
    deleted = KeyState(acked=ABSENT)
    assert deleted.verdict("h1") == "wrong"
