"""The shipped examples run."""

import runpy
from pathlib import Path

import acd

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_virtual_hold_example(capsys):
    runpy.run_path(str(EXAMPLES / "virtual_hold.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "DialBack(call='caller-2'" in out
    assert "'reached': 1" in out
