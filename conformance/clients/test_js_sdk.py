"""The AWS SDK for JavaScript v3 (pinned in js/package-lock.json) against tessera over http.

Runs js/check.mjs under node: a stream-body PutObject (STREAMING-UNSIGNED-PAYLOAD-TRAILER with a
CRC32 trailer), GET back, a 20 MB lib-storage multipart Upload, ranges, list, copy, delete.

Owns: launching the node script and judging its exit code and output. Must never: install
packages itself (conformance/test-all runs `npm ci`) or pass when the script did not finish.
"""

from __future__ import annotations

import json
import shutil

import harness

JS_DIR = harness.REPO_ROOT / "conformance" / "clients" / "js"


def test_js_sdk_v3(server):
    node = shutil.which("node")
    assert node, "node is not installed; conformance/test-all installs it"
    assert (JS_DIR / "node_modules" / "@aws-sdk" / "client-s3").is_dir(), (
        f"run `npm ci` in {JS_DIR.relative_to(harness.REPO_ROOT)} first (conformance/test-all does)"
    )
    env = harness.clean_env(
        TESSERA_ENDPOINT=server.endpoint,
        TESSERA_ACCESS_KEY=server.access_key,
        TESSERA_SECRET_KEY=server.secret_key,
        TESSERA_BUCKET=harness.unique_bucket("jssdk"),
        TESSERA_REGION=harness.REGION,
    )
    proc = harness.run([node, str(JS_DIR / "check.mjs")], env=env, timeout=300, check=False,
                       cwd=JS_DIR)
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, f"node check.mjs exited {proc.returncode}\n{out}\n{err}"
    assert "JS-SDK-CHECKS-OK" in out, out
    modes_line = next(line for line in out.splitlines() if line.startswith("payload-modes: "))
    modes = json.loads(modes_line.removeprefix("payload-modes: "))
    assert any(m.startswith("STREAMING-UNSIGNED-PAYLOAD-TRAILER trailer=x-amz-checksum-crc32")
               for m in modes["PutObjectCommand"]), modes
    assert "UploadPartCommand" in modes, modes
    harness.note(f"JS SDK v3 {modes_line}")
