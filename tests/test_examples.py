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


def test_the_agency_menu_and_config_match_the_bundled_scenario():
    """[acd-ivr]'s choices and acd-agency.toml are the public_agency scenario's lines and segments,
    so `acd simulate public_agency` models the day the menu routes."""
    import re

    from acd.service import load_config
    from acd.sim import bundled_scenario

    sc = bundled_scenario("public_agency")
    cfg = load_config(EXAMPLES / "asterisk" / "acd-agency.toml")
    assert [q.name for q in cfg.queues] == list(sc.queue_names)
    for q, s in zip(cfg.queues, sc.queues):
        assert (q.steps, q.wrap_up, q.max_wait, q.service_level) == (s.steps, s.wrap_up, s.max_wait,
                                                                    s.service_level), q.name
    assert set(cfg.schedules) == set(sc.queue_names)
    plan = (EXAMPLES / "asterisk" / "extensions.conf").read_text()
    why = plan.split("\n[acd-ivr-why]\n")[1].split("\n[")[0]
    who = plan.split("\n[acd-ivr-who]\n")[1].split("\n[")[0]
    assert set(re.findall(r"Set\(ACD_LINE=(\w+)\)", why)) == set(sc.queue_names)
    menu = plan.split("\n[acd-ivr]\n")[1].split("\n[")[0]
    priorities = set(map(int, re.findall(r"Set\(ACD_PRIORITY=(\d)\)", who + menu)))
    assert priorities == {s.priority or 0 for s in sc.segments}
    # every line of the menu goes on to the one enqueue of [acd-in]
    assert why.count("Goto(acd-in,line,1)") == len(sc.queue_names)
    assert "enqueue?queue=${ACD_LINE}&priority=${ACD_PRIORITY}" in plan
