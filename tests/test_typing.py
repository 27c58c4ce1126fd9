"""The hand-written stub matches the compiled module (mypy's stubtest)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_core_stub_matches_runtime():
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "acd._core", "acd.sim._loop",
         "--allowlist", str(ROOT / "stubtest-allowlist.txt")],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
