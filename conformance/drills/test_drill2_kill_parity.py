"""Drill 2: SIGKILL as many nodes as parity allows for reads (2 of 4 with EC 4+4). Every
acknowledged object still reads back (GET and LIST) through the survivors; every write (PUT,
overwrite, DELETE, multipart) is refused with 503 SlowDown and an S3 XML error body; the
survivors say so on /health/cluster (503) while /health/ready stays 200. After the restart
nothing of a refused write is visible anywhere, and the nodes return to full redundancy.
"""

from __future__ import annotations

import os
import random
import time

from botocore.exceptions import BotoCoreError, ClientError

from drill import finish, live, make_bucket, phase, redundancy
from load import ABSENT, Ledger, Load, Op, body_for, digest, error_kind, may_have_applied, \
    read_back


def test_drill2_sigkill_parity_many_nodes(make_cluster):
    c = make_cluster()
    bucket = make_bucket(c)
    ledger = Ledger()
    load = Load(c, bucket, ledger, live(c), threads=4, seed=22, large_every=4, multipart_max=1)
    load.start()
    try:
        time.sleep(5)
    finally:
        load.stop()
    lost_nodes = c.nodes[2:]
    survivors = c.nodes[:2]
    assert len(lost_nodes) * c.drives_per_node == c.parity_shards
    for n in lost_nodes:
        c.kill(n)
    phase("killed")

    # Reads go on: every key through both survivors, and LIST.
    read_back(c, bucket, ledger, nodes=survivors)
    assert not ledger.lost and not ledger.wrong, (
        f"reads with {len(lost_nodes)} nodes down: lost {ledger.lost[:5]} "
        f"wrong {ledger.wrong[:5]}")
    phase("read back through survivors")
    for n in survivors:
        assert n.health("ready") == 200, f"node {n.index} not ready with peers down"
        assert n.health("cluster") == 503, (
            f"node {n.index}: /health/cluster not 503 without write quorum")

    # Writes are refused, each with 503 SlowDown.
    with ledger.lock:
        present = sorted(k for k, st in ledger.keys.items()
                         if st.certain() and st.acked not in (None, ABSENT))
    assert len(present) >= 4, f"too few objects written before the kill: {len(present)}"
    outcomes: list[str] = []

    def attempt(node, kind: str, key: str, call, value: str | None) -> None:
        st = ledger.state(key)
        t0 = time.monotonic()
        try:
            call()
        except (ClientError, BotoCoreError) as e:
            kind_text = error_kind(e)
            if may_have_applied(e) and value is not None:
                st.unacked.add(value)
            ledger.record(Op(kind, node.index, t0, time.monotonic(), False, kind_text))
            outcomes.append(f"{kind} {key} via {node.index}: {kind_text} "
                            f"in {time.monotonic() - t0:.1f}s")
            return
        ledger.record(Op(kind, node.index, t0, time.monotonic(), True))
        if value is not None:
            st.acked = value
        outcomes.append(f"{kind} {key} via {node.index}: ACKNOWLEDGED")

    for i in range(8):
        node = survivors[i % 2]
        s3 = c.client(node)
        if i < 4:
            key = f"refused/new{i}"
            data = body_for(key, i, 4096 * (i + 1), random.Random(i))
            attempt(node, "put", key, lambda: s3.put_object(Bucket=bucket, Key=key, Body=data),
                    digest(data))
        elif i < 6:
            key = present[i]
            data = body_for(key, 1000 + i, 300 * 1024, random.Random(i))
            attempt(node, "put", key, lambda: s3.put_object(Bucket=bucket, Key=key, Body=data),
                    digest(data))
        elif i == 6:
            key = present[0]
            attempt(node, "delete", key, lambda: s3.delete_object(Bucket=bucket, Key=key),
                    ABSENT)
        else:
            key = "refused/multipart"
            attempt(node, "multipart", key,
                    lambda: s3.create_multipart_upload(Bucket=bucket, Key=key), None)
    if os.environ.get("DRILLS_VERBOSE"):
        print("\n".join(outcomes))
    not_refused = [o for o in outcomes if " 503 SlowDown " not in o]
    assert not not_refused, f"writes with {len(lost_nodes)} nodes down not refused with " \
                            f"503 SlowDown: {not_refused}"
    phase("writes refused")
    # The error body is S3 XML.
    status, body = c.signed(survivors[0], "PUT", f"/{bucket}/refused/raw", b"x" * 1000,
                            timeout=30)
    text = body.decode(errors="replace")
    assert status == 503 and "<Error>" in text and "<Code>SlowDown</Code>" in text, (
        f"raw PUT without quorum: {status} {text[:300]}")
    ledger.state("refused/raw")

    # Back to four nodes: writes work again, nothing refused is visible, full redundancy.
    for n in lost_nodes:
        c.start(n)
    t_restart = time.monotonic()
    c.wait_ready(lost_nodes)
    c.wait_cluster_health(60)
    phase("restarted")
    load2 = Load(c, bucket, ledger, live(c), threads=4, seed=23, prefix="after",
                 large_every=4, multipart_max=0)
    load2.start()
    try:
        time.sleep(3)
    finally:
        load2.stop()
    assert any(o.ok and o.kind == "put" and o.start > t_restart for o in ledger.ops), (
        f"no write acknowledged after the restart: {ledger.errors}")
    ttr, missing = redundancy(c, t_restart, timeout=90)
    finish(c, 2, "sigkill-parity-nodes", ledger, bucket, ttr, missing)
