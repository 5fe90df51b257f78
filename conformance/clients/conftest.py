"""Session fixtures for the real-client checks: one tessera over http, one over https.

Owns: the lifetime of the servers the client modules talk to (started once per pytest session,
killed at its end whatever happened) and the test CA for https. Must never: point a client at
anything but these servers, or keep a server alive after the session.
"""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

import harness

# In-process clients (boto3) must see none of the machine's AWS settings either.
for _name in harness.CLIENT_ENV_TO_DROP:
    os.environ.pop(_name, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["NO_PROXY"] = "127.0.0.1,localhost"


def pytest_report_header(config):
    return [f"tessera binary: {harness.tessera_binary()}"]


def pytest_terminal_summary(terminalreporter):
    if harness.NOTES:
        terminalreporter.section("measured by the conformance checks")
        for line in harness.NOTES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """tessera over plain http on four temp drives."""
    srv = harness.start_server(tmp_path_factory.mktemp("tessera-http"))
    try:
        yield srv
        srv.assert_alive()
        srv.assert_no_panics()
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory):
    """A CA made at test time and a server certificate for 127.0.0.1/localhost it signed."""
    import trustme

    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    cert = ca.issue_cert("127.0.0.1", "localhost", key_type=trustme.KeyType.RSA)
    d = tmp_path_factory.mktemp("tls")
    certs = d / "certs"
    certs.mkdir()
    cert.private_key_pem.write_to_path(str(certs / "private.key"))
    with open(certs / "public.crt", "wb") as f:
        for pem in cert.cert_chain_pems:
            f.write(pem.bytes())
    ca_file = d / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return certs, ca_file


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory, test_ca):
    """tessera over https (--certs-dir) with a certificate from the test CA."""
    certs, ca_file = test_ca
    srv = harness.start_server(tmp_path_factory.mktemp("tessera-https"), certs_dir=certs,
                               ca_file=ca_file)
    try:
        assert srv.https, f"--certs-dir given but endpoint is {srv.endpoint}"
        yield srv
        srv.assert_alive()
        srv.assert_no_panics()
    finally:
        srv.stop()


def make_client(srv: harness.Server, **config):
    """A boto3 S3 client for `srv` (path-style, our region, no retries hiding errors)."""
    cfg = Config(
        region_name=harness.REGION,
        s3={"addressing_style": "path", **config.pop("s3", {})},
        retries={"total_max_attempts": 1, "mode": "standard"},  # one attempt, no retry
        connect_timeout=10,
        read_timeout=120,
        **config,
    )
    session = boto3.session.Session(
        aws_access_key_id=srv.access_key,
        aws_secret_access_key=srv.secret_key,
        region_name=harness.REGION,
    )
    return session.client("s3", endpoint_url=srv.endpoint, config=cfg,
                          verify=str(srv.ca_file) if srv.https else None)


@pytest.fixture(scope="session")
def s3(server):
    return make_client(server)


@pytest.fixture
def work_dir(tmp_path) -> Path:
    return tmp_path
