"""Fixtures for the failure drills: a four-node cluster per drill, killed at the end whatever
happened, and the one-line result each drill prints, repeated in pytest's summary.

Owns: the clients' clean environment (no AWS settings of the machine), the import path of the
shared process harness (conformance/clients/harness.py), and cluster lifetimes. Must never
keep a node or a proxy alive after its drill.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clients"))
import harness  # noqa: E402

from cluster import Cluster  # noqa: E402
import drill  # noqa: E402
from drill import RESULTS  # noqa: E402

for _name in harness.CLIENT_ENV_TO_DROP:
    os.environ.pop(_name, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["NO_PROXY"] = "127.0.0.1,localhost"

def pytest_report_header(config):
    return [f"tessera binary: {harness.tessera_binary()}"]


def pytest_terminal_summary(terminalreporter):
    if RESULTS:
        terminalreporter.section("drill results")
        for line in RESULTS:
            terminalreporter.write_line(line)


@pytest.fixture
def make_cluster(tmp_path):
    """make_cluster(drives_per_node=2, parity=None, proxied=False) -> started Cluster."""
    made: list[Cluster] = []

    def make(**kw) -> Cluster:
        drill._T0[0] = time.monotonic()
        c = Cluster(root=tmp_path / f"cluster{len(made)}", **kw)
        made.append(c)
        c.root.mkdir(parents=True)
        c.start_all()
        return c

    try:
        yield make
    finally:
        failed = False
        for c in made:
            c.close()
        for c in made:
            try:
                c.assert_no_panics()
            except AssertionError as e:
                failed = True
                print(e)
        if failed:
            pytest.fail("a node panicked during the drill (see above)")
