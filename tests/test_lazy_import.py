"""``import acd`` costs almost nothing: public names load on first use, numpy only with arrays.

Each check runs in a fresh interpreter (``sys.modules`` of this one is full)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_fresh(code: str) -> None:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_import_acd_loads_nothing_until_a_name_is_used():
    run_fresh("""
        import sys
        import acd
        assert "acd._core" not in sys.modules and "numpy" not in sys.modules
        assert set(acd.__all__) <= set(dir(acd)), set(acd.__all__) - set(dir(acd))
        from acd import InvalidInput, Queue
        assert "acd._core" not in sys.modules and "numpy" not in sys.modules
        assert acd.Engine.__module__ == "acd._core"
        acd.Engine().add_queue(Queue("q"))
        assert "numpy" not in sys.modules, "the engine needs no numpy"
        times, survival = acd.kaplan_meier([(1.0, True), (2.0, False)])
        assert "numpy" in sys.modules and list(survival) == [0.5]
        for name in acd.__all__:
            getattr(acd, name)
        try:
            acd.NoSuchThing
        except AttributeError as exc:
            assert "NoSuchThing" in str(exc)
        else:
            raise AssertionError("no AttributeError for an unknown name")
    """)


def test_the_asterisk_adapters_load_asyncio_and_ami_only_when_asked():
    run_fresh("""
        import sys
        import acd.adapters.asterisk as asterisk
        assert "asyncio" not in sys.modules and "acd.adapters.asterisk.ami" not in sys.modules
        assert set(asterisk.__all__) <= set(dir(asterisk))
        assert asterisk.SyncAGISession.__module__ == "acd.adapters.asterisk.blocking"
        assert asterisk.FastAGIServer.__module__ == "acd.adapters.asterisk.fastagi"
        for name in asterisk.__all__:
            getattr(asterisk, name)
        from acd.adapters.asterisk.agi import AGISession, main, report_error  # the old paths still work
    """)
