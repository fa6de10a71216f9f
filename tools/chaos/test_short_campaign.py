"""The short fault campaign (issue 17 §1): about 1,000 operations through the gateway
while NATS, service processes and PostgreSQL are killed and restarted; every line of its
table must be zero. `make test` runs it (pyproject's testpaths include tools/);
`make chaos` runs the full one.

It runs as its own process with its own system in this test's temporary folder (its
kills would disturb the session's system; nothing is shared with another pytest process
running beside it), and that process group is ended whatever happens.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(2700)
def test_short_fault_campaign_loses_and_duplicates_nothing(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # A short path: PostgreSQL's socket lives in its data folder (107-byte limit).
    state = tmp_path_factory.mktemp("chaos")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tools.chaos",
            "--short",
            "--seed",
            "17",
            "--state",
            str(state),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = ""
    try:
        output, _ = process.communicate(timeout=2400)
    finally:
        # The campaign stops its own system on SIGTERM; SIGKILL ends whatever is left.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    print(output)
    assert process.returncode == 0, output[-6000:]
