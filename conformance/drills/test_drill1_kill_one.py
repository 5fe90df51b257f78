"""Drill 1: SIGKILL one node in the middle of a mixed load. Writes and reads go on through the
others; the node restarts; heal finishes (every node reports redundancy_ok), and no shard is
missing on disk: every object reads back from each half of the drives alone (exactly K
drives, so every shard there must be present and intact); every acknowledged object reads
back byte-identical through every node.
"""

from __future__ import annotations

import time

import pytest

from drill import finish, live, make_bucket, redundancy
from load import Ledger, Load


@pytest.mark.parametrize("drives_per_node,parity", [(2, None), (1, 2)],
                         ids=["8drives-ec4+4", "4drives-ec2+2"])
def test_drill1_sigkill_one_node(make_cluster, drives_per_node, parity):
    c = make_cluster(drives_per_node=drives_per_node, parity=parity)
    bucket = make_bucket(c)
    ledger = Ledger()
    load = Load(c, bucket, ledger, live(c), threads=4, seed=11, large_every=4, multipart_max=2)
    victim = c.nodes[2]
    load.before_fault(c.nodes[0])
    load.start()
    try:
        time.sleep(4)
        c.kill(victim)
        t_kill = time.monotonic()
        # Every kind of write the dead node misses, for sure (the load adds random ones).
        outcomes = load.during_fault(c.nodes[0])
        assert all(o.endswith(": ok") for o in outcomes), (
            f"writes with node {victim.index} down: {outcomes}")
        finish_spanning = load.spanning_multipart(c.nodes[1])
        time.sleep(max(0.0, 5 - (time.monotonic() - t_kill)))
        # One node down leaves every set its write quorum: the survivors say so.
        health = [n.health("cluster") for n in c.nodes if n is not victim]
        time.sleep(1)
        c.start(victim)
        t_restart = time.monotonic()
        c.wait_ready([victim])
        # A multipart upload whose first part the dead node missed, completed after it
        # is back (through the restarted node itself).
        spanning = finish_spanning(victim)
        assert spanning.endswith(": ok"), spanning
        time.sleep(2)
    finally:
        load.stop()
    assert health == [200, 200, 200], f"/health/cluster on the survivors: {health}"
    during = [o for o in ledger.ops if t_kill < o.start and o.end < t_restart and o.ok]
    writes = [o for o in during if o.kind in ("put", "delete", "multipart")]
    reads = [o for o in during if o.kind in ("get", "list")]
    assert writes and reads, (
        f"nothing acknowledged while node {victim.index} was down: "
        f"{len(writes)} writes, {len(reads)} reads; errors {ledger.errors}")
    ttr, missing = redundancy(c, t_restart, timeout=90)
    finish(c, 1, f"sigkill-one-node[{drives_per_node * 4}drives]", ledger, bucket, ttr, missing,
           every_shard=True)
