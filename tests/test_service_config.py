"""`acd serve` configuration: TOML in, validated ServiceConfig out, clear errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict

import pytest

from acd.errors import InvalidInput
from acd.service import ServiceConfig, load_config
from acd.service.config import config_from_dict

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "asterisk" / "acd.toml"


def base(**extra: Any) -> Dict[str, Any]:
    d: Dict[str, Any] = {"queues": [{"name": "support"}],
                         "agents": [{"id": "1001", "dial": "PJSIP/1001"}]}
    d.update(extra)
    return d


def test_defaults():
    cfg = config_from_dict(base())
    assert isinstance(cfg, ServiceConfig)
    assert cfg.fastagi.host == "127.0.0.1" and cfg.fastagi.port == 4573 and cfg.fastagi.unix_path is None
    assert cfg.http.host == "127.0.0.1" and cfg.http.enabled and cfg.http.port == 8573
    assert cfg.ami.enabled is False
    assert cfg.journal.sync == "full" and cfg.journal.path == "acd-journal.sqlite3"
    assert cfg.prompts.thereare == "queue-thereare" and cfg.prompts.callswaiting == "queue-callswaiting"
    assert cfg.prompts.youarenext == "queue-youarenext" and cfg.prompts.holdtime == "queue-holdtime"
    assert cfg.prompts.minutes == "queue-minutes" and cfg.prompts.callback_offer == "acd-callback-offer"
    assert cfg.callback.context == "acd-callback" and cfg.callback.accept_digit == "1"
    agent = cfg.agent("1001")
    assert agent is not None and agent.device == "PJSIP/1001" and agent.queues is None
    assert cfg.queue("support") is not None and cfg.queue("nope") is None
    assert cfg.engine == {}


def test_full_example_file_loads():
    cfg = load_config(EXAMPLE)
    assert {q.name for q in cfg.queues} >= {"support"}
    assert cfg.fastagi.port == 4573 and cfg.ami.enabled
    assert all(a.dial.startswith("PJSIP/") for a in cfg.agents)
    assert Path(cfg.journal.path).is_absolute() and Path(cfg.journal.path).parent == EXAMPLE.parent.resolve()


def test_file_paths_and_toml_errors(tmp_path):
    p = tmp_path / "acd.toml"
    p.write_text('[[queues]]\nname = "q"\n[journal]\npath = "data/j.sqlite3"\nsync = "normal"\n')
    cfg = load_config(p)
    assert cfg.journal.path == str(tmp_path / "data" / "j.sqlite3") and cfg.journal.sync == "normal"
    assert cfg.source == str(p)
    p.write_text('[[queues]]\nname = "q"\n[journal]\npath = ":memory:"\n')
    assert load_config(p).journal.path == ":memory:"
    p.write_text("[[queues]\nname = 1\n")
    with pytest.raises(InvalidInput, match="is not valid TOML"):
        load_config(p)
    with pytest.raises(InvalidInput, match=re.escape(f"cannot read config {str(tmp_path / 'nope.toml')!r}")):
        load_config(tmp_path / "nope.toml")
    p.write_text('[[queues]]\nname = "q"\n[fastagi]\nport = 70000\n')
    with pytest.raises(InvalidInput, match=re.escape(f"{p}: fastagi.port must be an int in 0..65535, got 70000")):
        load_config(p)


BAD = [
    ({"queues": []}, "queues must be a non-empty array of tables"),
    ({"queues": None}, "queues must be a non-empty array of tables"),
    ({"colour": "blue"}, "unknown field(s) in the configuration: ['colour']"),
    ({"queues": [{"name": "q", "wrap_up": -1}]}, "queues[0] ('q'): wrap_up must be a non-negative"),
    ({"queues": [{"name": "q", "colour": 1}]}, "queues[0] ('q'): unknown queue field(s) ['colour']"),
    ({"queues": [{"name": "q"}, {"name": "q"}]}, "queues[1].name 'q' is used twice"),
    ({"queues": [{"name": "q", "steps": [{"after": 0}, {"after": 60, "overflow": "x"}]}]},
     "queue 'q' overflows to an unknown queue 'x'"),
    ({"queues": [{"name": "a", "steps": [{"after": 0}, {"after": 5, "overflow": "b"}]},
                 {"name": "b", "steps": [{"after": 0}, {"after": 5, "overflow": "a"}]}]},
     "queues overflow in a cycle: 'a -> b -> a'"),
    ({"skills": ["fr", "fr"]}, "skills lists a skill twice"),
    ({"skills": [""]}, "skills[0] must be a non-empty printable str"),
    ({"engine": {"agent_strategy": "fastest"}}, "engine: agent_strategy must be one of"),
    ({"engine": {"speed": 1}}, "unknown field(s) in engine: ['speed']"),
    ({"agents": [{"id": "1"}]}, "agents[0].dial is required"),
    ({"agents": [{"dial": "PJSIP/1"}]}, "agents[0].id is required"),
    ({"agents": [{"id": "1", "dial": "PJSIP/1,20"}]}, "agents[0].dial must be a Dial() string"),
    ({"agents": [{"id": "1", "dial": "1001"}]}, "agents[0].dial must be a Dial() string"),
    ({"agents": [{"id": "1", "dial": "PJSIP/1"}, {"id": "1", "dial": "PJSIP/2"}]}, "agents[1].id '1' is used twice"),
    ({"agents": [{"id": "1", "dial": "PJSIP/1", "skills": {"tehc": 5}}]},
     "agents[0].skills names an undeclared skill 'tehc'"),
    ({"agents": [{"id": "1", "dial": "PJSIP/1", "skills": {"fr": 11}}], "skills": ["fr"]},
     "agents[0].skills: level of skill 'fr' must be an int in 1..10, got 11"),
    ({"agents": [{"id": "1", "dial": "PJSIP/1", "queues": ["sales"]}]}, "agents[0].queues names an unknown queue 'sales'"),
    ({"agents": [{"id": "1", "dial": "PJSIP/1", "callerid": ["100"]},
                 {"id": "2", "dial": "PJSIP/2", "callerid": "100"}]},
     "agents[1].callerid '100' already identifies agent '1'"),
    ({"agents": [{"id": "1", "dial": "PJSIP/1", "device": "phone 1"}]}, "agents[0].device must be a device name"),
    ({"agents": [{"id": "1", "dial": "PJSIP/1", "pin": 1234}]}, "unknown field(s) in agents[0]: ['pin']"),
    ({"agents": {"id": "1"}}, "agents must be an array of tables"),
    ({"fastagi": {"port": False}}, "fastagi needs a port or a unix_path"),
    ({"fastagi": {"port": "4573"}}, "fastagi.port must be an int in 0..65535, got '4573'"),
    ({"fastagi": {"max_sessions": 0}}, "fastagi.max_sessions must be an int in 1..100000, got 0"),
    ({"ami": {"enabled": True}}, "ami.secret is required when ami.enabled is true"),
    ({"ami": {"enabled": "yes", "secret": "x"}}, "ami.enabled must be true or false, got 'yes'"),
    ({"ami": {"port": 0, "secret": "x"}}, "ami.port must be an int in 1..65535, got 0"),
    ({"callback": {"accept_digit": "12"}}, "callback.accept_digit must be one of 0-9, * or #, got '12'"),
    ({"callback": {"ring_timeout": 0}}, "callback.ring_timeout must be a positive number of seconds"),
    ({"callback": {"context": "my context"}}, "callback.context must be a dialplan name"),
    ({"journal": {"sync": "sometimes"}}, "journal.sync must be 'full' or 'normal', got 'sometimes'"),
    ({"journal": {"path": ""}}, "journal.path must be a non-empty printable str"),
    ({"http": {"refresh": -1}}, "http.refresh must be an int in 0..3600, got -1"),
    ({"http": {"enabled": 1}}, "http.enabled must be true or false, got 1"),
    ({"prompts": {"thereare": "queue thereare"}}, "prompts.thereare must be a sound file name"),
    ({"prompts": {"welcome": "hello"}}, "unknown field(s) in prompts: ['welcome']"),
    ({"service": {"log_level": "loud"}}, "service.log_level must be one of"),
    ({"service": {"shutdown_timeout": -1}}, "service.shutdown_timeout must be a non-negative number of seconds"),
    ({"service": {"reattach_timeout": 0}}, "service.reattach_timeout must be a positive number of seconds"),
]


@pytest.mark.parametrize("change,message", BAD)
def test_bad_configs_name_the_field_and_value(change, message):
    data = base(**change)
    with pytest.raises(InvalidInput) as err:
        config_from_dict(data)
    assert message in str(err.value)
    assert str(err.value)[:1].islower()


def test_agents_details():
    cfg = config_from_dict(base(
        skills=["fr"],
        queues=[{"name": "general"},
                {"name": "support", "steps": [{"after": 0, "requirements": {"tech": 5}},
                                              {"after": 60, "overflow": "general"}]}],
        agents=[{"id": 1001, "dial": "PJSIP/1001", "skills": {"tech": 7, "fr": 3}, "queues": "support",
                 "callerid": [1001, "+33612345678"]},
                {"id": "b", "dial": "Local/2002@agents", "device": "PJSIP/2002"},
                {"id": "c", "dial": "PJSIP/3003&PJSIP/3004", "device": ""}]))
    a, b, c = cfg.agents
    assert a.id == "1001" and dict(a.skills) == {"fr": 3, "tech": 7} and a.queues == ("support",)
    assert a.callerid == ("1001", "+33612345678") and a.device == "PJSIP/1001"
    assert b.device == "PJSIP/2002"
    assert c.device is None
    assert [q.name for q in cfg.queues] == ["general", "support"]  # overflow targets first


def test_ami_and_fastagi_sections():
    cfg = config_from_dict(base(ami={"secret": "x", "host": "10.0.0.5", "ping_interval": 0},
                                fastagi={"port": False, "unix_path": "/run/acd/agi.sock"}))
    assert cfg.ami.enabled is True  # a filled [ami] table turns it on unless enabled = false
    assert cfg.ami.ping_interval is None and cfg.ami.host == "10.0.0.5"
    assert cfg.fastagi.port is None and cfg.fastagi.unix_path == "/run/acd/agi.sock"
    off = config_from_dict(base(ami={"enabled": False}))
    assert off.ami.enabled is False
    assert config_from_dict(base(callback={"accept_digit": 5})).callback.accept_digit == "5"


def test_engine_options_pass_through():
    cfg = config_from_dict(base(engine={"agent_strategy": "round_robin", "call_choice": "cmu_theta", "seed": 7,
                                        "ring_no_answer": "ready", "no_answer_delay": 5.0}))
    assert cfg.engine == {"agent_strategy": "round_robin", "call_choice": "cmu_theta", "seed": 7,
                          "ring_no_answer": "ready", "no_answer_delay": 5.0}
