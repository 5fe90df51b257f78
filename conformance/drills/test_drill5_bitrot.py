"""Drill 5: bitrot. Objects past the inline limit are written, then bytes are flipped in
random shard files (`data/<bucket>/<prefix>/<data-id>/part.N`) on both drives of one node
while a mixed load runs. Half of the damaged objects are read at once through every node and
must come back byte-identical; then `POST /_tessera/admin/v1/heal/scan` forces the scanner,
which must rewrite every damaged shard file: each one's bytes must become exactly what they
were before the flip (shards are deterministic, so a repaired file is the original file).
"""

from __future__ import annotations

import hashlib
import random
import time

from cluster import FeatureMissing
from drill import finish, live, make_bucket, phase, redundancy
from load import Ledger, Load, Op, body_for, digest, read_back

OBJECTS = 16
FILES_TO_ROT = 10
REPAIR_TIMEOUT_S = 60.0


def sha_file(p) -> str | None:
    try:
        return hashlib.sha256(p.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def test_drill5_bitrot_repaired_by_scanner(make_cluster):
    c = make_cluster()
    bucket = make_bucket(c)
    ledger = Ledger()
    rng = random.Random(55)
    s3 = c.client(c.nodes[0])
    keys = []
    for i in range(OBJECTS):
        key = f"rot/o{i}"
        data = body_for(key, i, rng.randint(200 * 1024, 900 * 1024), rng)
        t0 = time.monotonic()
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        st = ledger.state(key)
        st.acked, st.size = digest(data), len(data)
        ledger.record(Op("put", 1, t0, time.monotonic(), True))
        keys.append(key)
    # Every data directory now belongs to a rot/ object (the load has not started).
    victim = c.nodes[1]
    files = c.shard_files(victim)
    assert len(files) >= FILES_TO_ROT, f"only {len(files)} shard files on node {victim.index}"
    chosen = rng.sample(files, FILES_TO_ROT)
    original = {p: sha_file(p) for p in chosen}

    load = Load(c, bucket, ledger, live(c), threads=3, seed=56, large_every=5, multipart_max=1)
    load.start()
    try:
        for p in chosen:
            size = p.stat().st_size
            with open(p, "r+b") as f:
                for off in rng.sample(range(size), min(size, 6)) + [0, size - 1]:
                    f.seek(off)
                    b = f.read(1)
                    f.seek(off)
                    f.write(bytes([b[0] ^ (1 + rng.randrange(255))]))
            assert sha_file(p) != original[p]
        phase(f"flipped bytes in {len(chosen)} shard files on node {victim.index}")
        # Reads return correct data, through every node, for half of the objects now.
        read_now = [k for i, k in enumerate(keys) if i % 2 == 0]
        probe = Ledger()
        with ledger.lock:
            probe.keys = {k: ledger.keys[k] for k in read_now}
        read_back(c, bucket, probe)
        assert not probe.lost and not probe.wrong, (
            f"reads over rotted shards: lost {probe.lost[:5]} wrong {probe.wrong[:5]}")
        phase("rotted objects read back correctly through every node")

        t_scan = time.monotonic()
        missing = None
        try:
            for n in c.nodes:
                c.heal_scan(n)
        except FeatureMissing as e:
            missing = str(e)
        unrepaired = list(chosen)
        # Without the forced scan, give the periodic scanner (2 s interval) a short chance.
        wait = REPAIR_TIMEOUT_S if missing is None else 6.0
        while unrepaired and time.monotonic() - t_scan < wait:
            time.sleep(0.5)
            unrepaired = [p for p in unrepaired if sha_file(p) != original[p]]
        phase(f"{len(chosen) - len(unrepaired)} of {len(chosen)} rotted files repaired")
    finally:
        load.stop()
    if unrepaired and missing is not None:
        finish(c, 5, "bitrot", ledger, bucket, None, missing)
    assert not unrepaired, (
        f"{len(unrepaired)} of {len(chosen)} rotted shard files not rewritten to their "
        f"original bytes {REPAIR_TIMEOUT_S}s after POST heal/scan: "
        f"{[str(p.relative_to(c.root)) for p in unrepaired][:5]}"
        f" (exists: {[p.exists() for p in unrepaired][:5]})")
    ttr, missing_status = redundancy(c, t_scan, timeout=60)
    finish(c, 5, "bitrot", ledger, bucket, ttr, missing_status)
