"""Drill 6: replace a drive. While its node runs under a mixed load, one drive directory is
wiped entirely (a new, empty disk in the old one's place). The node must re-format it into
the same slot (same deployment id, set and slot as before) and bulk-heal it, with progress
visible in `GET /_tessera/admin/v1/heal` (polled and traced here); at the end every shard of
every live object is on the new drive and everything reads back through every node.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest

from cluster import FeatureMissing
from drill import finish, live, make_bucket, phase, redundancy
from load import Ledger, Load

REFORMAT_TIMEOUT_S = 45.0


def test_drill6_replace_wiped_drive(make_cluster):
    c = make_cluster()
    bucket = make_bucket(c)
    ledger = Ledger()
    load = Load(c, bucket, ledger, live(c), threads=4, seed=66, large_every=3, multipart_max=2)
    node = c.nodes[2]
    drive = node.drives[0]
    fmt_path = drive / ".tessera.sys" / "format.json"
    before = json.loads(fmt_path.read_text())
    trace: list[str] = []
    missing = None
    bulk_seen: dict = {}

    def poll(docs) -> None:
        """Traces the bulk heal of the wiped drive as node `node` reports it."""
        doc = docs[c.nodes.index(node)] if len(docs) == 4 else None
        if doc is None:
            return
        for b in doc.get("bulk", []):
            if str(drive) in b.get("drive", ""):
                bulk_seen.update(b)
                step = (f"{b.get('state')}({b.get('objects_healed')}/"
                        f"{b.get('total_objects', '?')})")
                if not trace or trace[-1] != step:
                    trace.append(step)
                    phase(f"bulk heal {step} scanned={b.get('objects_scanned')} "
                          f"bytes_healed={b.get('bytes_healed')} eta={b.get('eta_seconds')}")

    load.before_fault(c.nodes[0])
    load.start()
    try:
        time.sleep(5)
        # The old disk goes away at once (a rename: files the node holds open stay with it)
        # and an empty one takes its path, as when a disk is swapped under a mount point.
        old = drive.with_name(drive.name + ".removed")
        drive.rename(old)
        drive.mkdir()
        t_wipe = time.monotonic()
        c.event(f"wiped {drive.relative_to(c.root)}")
        shutil.rmtree(old, ignore_errors=True)
        # Every kind of write, while the new drive is still blank.
        outcomes = load.during_fault(c.nodes[0])
        assert all(o.endswith(": ok") for o in outcomes), (
            f"writes with one drive blank: {outcomes}")
        phase(f"wiped {drive.relative_to(c.root)}")
        while not fmt_path.exists():
            if missing is not None and time.monotonic() - t_wipe > 10:
                pytest.skip(f"the wiped drive was not re-formatted and the heal status is not "
                            f"served either (drive replacement, heal helper): {missing}")
            assert time.monotonic() - t_wipe < REFORMAT_TIMEOUT_S, (
                f"the wiped drive was not re-formatted within {REFORMAT_TIMEOUT_S}s; it holds "
                f"{sorted(str(p.relative_to(drive)) for p in drive.rglob('*'))[:10]}\n"
                f"{node.log_tail(20)}")
            try:
                poll([c.heal_status(n) for n in c.nodes])
            except FeatureMissing as e:
                missing = str(e)
            time.sleep(0.3)
        phase("re-formatted")
        time.sleep(3)
    finally:
        load.stop()
    after = json.loads(fmt_path.read_text())
    for field in ("deployment_id", "set_index", "slot", "sets", "drives_per_set"):
        assert after.get(field) == before.get(field), (
            f"re-formatted drive has {field}={after.get(field)!r}, was {before.get(field)!r}")
    if missing is None:
        ttr, missing = redundancy(c, t_wipe, timeout=90, on_poll=poll)
    else:
        ttr = None
    if missing is None:
        assert bulk_seen, "no bulk heal of the replaced drive ever showed in GET heal"
        assert bulk_seen.get("state") == "done" and bulk_seen.get("objects_failed") == 0, (
            f"bulk heal of the replaced drive: {bulk_seen}")
    finish(c, 6, "replace-drive", ledger, bucket, ttr, missing,
           extra=f"bulk={'->'.join(trace) or 'not-seen'}", every_shard=True)
