"""The README's example runs and prints what its comments say."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs():
    text = README.read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[Assign(call='call-1', agent='alice'")
    assert lines[1] == "[]"
    assert lines[2] == "32.0"
    assert lines[3].startswith("[Assign(call='call-2', agent='bob'")
    assert "'waiting': 0" in lines[4]
