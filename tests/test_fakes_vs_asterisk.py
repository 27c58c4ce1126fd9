"""The fakes against recordings of a real Asterisk 22 (tests/data/asterisk22/, docs/asterisk22.md).

CI has no Asterisk: the service is tested against tests/fakes/.  These tests
keep the fakes honest: the AGI environment they send, the replies they give
on live and dead channels, and the AMI responses and events they write must
have the shape the recorded Asterisk 22.10.1 gave.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from agi_support import split_args
from fakes.ami import FakeAMI, channel_fields, event_fields
from fakes.channel import FakeChannel
from fakes.pbx import Channel, FakePBX

DATA = Path(__file__).resolve().parent / "data" / "asterisk22"


def records(name: str) -> List[Dict[str, Any]]:
    with open(DATA / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f][1:]


def messages(text: str) -> Dict[str, str]:
    return dict(line.partition(": ")[::2] for line in text.strip("\r\n").split("\r\n") if line)


def agi_recordings() -> List[Path]:
    """The FastAGI recordings: the calls (agi-*), the post-call survey (survey-*), the agency's menu
    (ivr-*) and a closed queue (closed-*)."""
    return sorted(p for kind in ("agi", "survey", "ivr", "closed") for p in DATA.glob(f"{kind}-*.jsonl"))


def agi_envs() -> Iterator[Tuple[str, List[Tuple[str, str]]]]:
    """Every recorded FastAGI environment, as (file, [(key, value)...])."""
    for path in agi_recordings():
        lines: Dict[str, List[str]] = {}
        done = set()
        for r in records(path.name):
            conn = r.get("conn", "")
            if r.get("dir") != "asterisk->acd" or not conn.startswith("agi") or conn in done:
                continue
            if r["data"] == "\n":
                done.add(conn)
                env = [tuple(line.partition(": ")[::2]) for line in lines.get(conn, [])]
                if env and env[0][0] == "agi_network":
                    yield path.name, env
                continue
            lines.setdefault(conn, []).append(r["data"].rstrip("\n"))


def agi_exchanges(name: str) -> Iterator[Tuple[str, str, bool]]:
    """(command, reply, channel already hung up) of one recording's FastAGI sessions."""
    pending: Dict[str, str] = {}
    dead: Dict[str, bool] = {}
    in_env: Dict[str, bool] = {}
    for r in records(name):
        conn = r.get("conn", "")
        if not conn.startswith("agi") or "data" not in r:
            continue
        data = r["data"]
        if r["dir"] == "asterisk->acd":
            if in_env.setdefault(conn, True):
                if data == "\n":
                    in_env[conn] = False
                continue
            if data == "HANGUP\n":
                dead[conn] = True
            elif conn in pending and data[:3].isdigit():
                yield pending.pop(conn), data.rstrip("\n"), dead.get(conn, False)
        else:
            pending[conn] = data.rstrip("\n")


def test_the_recordings_are_there():
    assert len(list(DATA.glob("agi-*.jsonl"))) >= 10 and len(list(DATA.glob("ami-*.jsonl"))) >= 5
    assert len(list(DATA.glob("survey-*.jsonl"))) >= 6 and len(list(DATA.glob("ivr-*.jsonl"))) >= 3
    envs = list(agi_envs())
    assert len(envs) > 20
    assert {dict(env)["agi_version"] for _, env in envs} == {"22.10.1"}


def test_fake_agi_environments_have_asterisk_22_fields_in_its_order():
    recorded = [k for k, _ in next(agi_envs())[1]]
    assert all([k for k, _ in env] == recorded for _, env in agi_envs())    # the same 22 keys every time
    channel = FakeChannel(4573, "enqueue?queue=support")
    ours = [line.partition(": ")[0] for line in channel.env().decode().splitlines() if line]
    assert ours == recorded
    pbx_env = asyncio.run(_pbx_env())
    assert [line.partition(": ")[0] for line in pbx_env.splitlines() if line] == recorded


async def _pbx_env() -> str:
    got: List[bytes] = []

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            line = await reader.readline()
            got.append(line)
            if line in (b"\n", b""):
                break
        writer.close()

    srv = await asyncio.start_server(server, "127.0.0.1", 0)
    pbx = FakePBX(srv.sockets[0].getsockname()[1])
    await pbx.agi(Channel("1.1", "PJSIP/trunk-00000001", "0612345678"), "enqueue?queue=support")
    srv.close()
    await srv.wait_closed()
    return b"".join(got).decode()


#: commands acd sends, by the first words the fakes recognise them
_ACD_COMMANDS = ("ANSWER", "SET VARIABLE", "SET MUSIC", "STREAM FILE", "SAY NUMBER", "GET DATA", "VERBOSE")


def _verb(command: str) -> str:
    words = split_args(command)
    two = " ".join(words[:2]).upper()
    return two if two in _ACD_COMMANDS else words[0].upper() if words else ""


@pytest.mark.parametrize("name", [p.name for p in agi_recordings()])
def test_fake_agi_replies_have_the_recorded_codes(name):
    """For every command acd sent in a recording, the fakes answer with the same reply code (and
    the same text for a dead channel) -- sound files excepted: the recordings had none."""
    pbx = FakePBX(0)
    compared = 0
    for command, reply, dead in agi_exchanges(name):
        if _verb(command) not in _ACD_COMMANDS:
            continue
        ch = Channel("1.1", "PJSIP/x", "0612345678")
        fake = FakeChannel(0, "x")
        if dead:
            ch.hung_up.set()
            fake.hung_up = True
        code = reply[:3]
        if code == "520":
            continue            # a syntax probe (agi-09): acd never sends malformed commands
        ours = pbx._reply(ch, split_args(command), "")
        theirs = fake.reply(command)
        assert ours.split()[0] == code, (command, reply, ours)
        assert theirs.split()[0] == code, (command, reply, theirs)
        if code == "511":
            assert ours == reply and theirs == reply
        compared += 1
    if name.startswith(("agi-01", "agi-02", "agi-09")):
        assert compared > 5


def ami_responses(name: str) -> Iterator[Tuple[str, Dict[str, str], str]]:
    """(user, action, first reply message) of one recording's AMI connections."""
    pending: Dict[str, Tuple[str, Dict[str, str]]] = {}
    users: Dict[str, str] = {}
    for r in records(name):
        conn = r.get("conn", "")
        if not conn.startswith("ami") or "data" not in r:
            continue
        msg = messages(r["data"])
        if r["dir"] == "acd->asterisk" and "Action" in msg:
            if msg["Action"] == "Login":
                users[conn] = msg.get("Username", "")
            pending[msg.get("ActionID", "")] = (users.get(conn, ""), msg)
        elif r["dir"] == "asterisk->acd" and "Response" in msg and msg.get("ActionID") in pending:
            user, action = pending.pop(msg["ActionID"])
            yield user, action, r["data"]


async def _ask(fake: FakeAMI, actions: List[Dict[str, str]]) -> List[Dict[str, str]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", fake.port)
    await reader.readline()
    out = []
    for action in actions:
        writer.write(("".join(f"{k}: {v}\r\n" for k, v in action.items()) + "\r\n").encode())
        await writer.drain()
        lines = []
        while True:
            line = (await reader.readline()).decode()
            if line in ("\r\n", ""):
                break
            lines.append(line)
        out.append(messages("".join(lines)))
    writer.close()
    return out


def test_fake_ami_answers_like_asterisk_22():
    by_action: Dict[Tuple[str, str], Tuple[str, Dict[str, str], Dict[str, str]]] = {}
    for user, action, reply in ami_responses("ami-01-basics.jsonl"):
        by_action.setdefault((action["Action"], user), (user, action, messages(reply)))
    cases = [by_action[k] for k in by_action if k[0] in ("Login", "Ping", "CoreShowChannels", "Logoff")]
    assert {(a["Action"], u) for u, a, _ in cases} >= {("CoreShowChannels", "acd"), ("CoreShowChannels", "rawtest"),
                                                       ("Ping", "rawtest"), ("Logoff", "rawtest")}
    # the recording's users: acd has write = originate,call; rawtest has write = all
    writes = {"acd": ("originate", "call"), "rawtest": ("originate", "call", "reporting", "system")}

    async def main() -> List[Tuple[Dict[str, str], Dict[str, str], Dict[str, str]]]:
        out = []
        for user, action, reply in cases:
            if action["Action"] == "Login" and reply.get("Response") != "Success":
                continue       # the fake does not refuse logins
            fake = await FakeAMI(write=writes[user]).start()
            try:
                prefix = [] if action["Action"] == "Login" else [{"Action": "Login", "Username": "acd",
                                                                  "Secret": "x", "ActionID": "l"}]
                got = (await _ask(fake, prefix + [action]))[-1]
            finally:
                await fake.stop()
            out.append((action, reply, got))
        return out

    for action, reply, got in asyncio.run(main()):
        assert got.get("Response") == reply.get("Response"), (action, reply, got)
        assert set(got) == set(reply), (action["Action"], sorted(reply), sorted(got))
        if reply.get("Response") == "Error" or action["Action"] == "Logoff":
            assert got.get("Message") == reply.get("Message")


def _first_event(name: str, event: str) -> Dict[str, str]:
    for r in records(name):
        if r.get("dir") == "asterisk->acd" and r.get("data", "").startswith(f"Event: {event}\r\n"):
            return messages(r["data"])
    raise AssertionError(f"no {event} in {name}")


@pytest.mark.parametrize("event,name", [("Hangup", "ami-03-call-events.jsonl"),
                                        ("Newstate", "ami-03-call-events.jsonl"),
                                        ("OriginateResponse", "ami-02-originate.jsonl"),
                                        ("CoreShowChannel", "ami-01-basics.jsonl")])
def test_fake_ami_events_have_the_recorded_fields(event, name):
    real = _first_event(name, event)
    chan = channel_fields("1.1", "PJSIP/1001-00000001")
    if event == "CoreShowChannel":
        ours = {"Event": event, "ActionID": "x", **chan}
    elif event == "OriginateResponse":
        sent: List[Dict[str, str]] = []
        fake = FakeAMI()

        async def capture(*pairs: Tuple[str, str], **fields: str) -> None:
            sent.append(dict(pairs))
        fake.event = capture                                      # type: ignore[method-assign]
        asyncio.run(fake.originate_response({"ActionID": "a", "Channel": "PJSIP/1001", "Context": "c",
                                             "Exten": "s"}, False, "3"))
        ours = sent[0]
    else:
        extra = {"Cause": "16", "Cause-txt": "Normal Clearing"} if event == "Hangup" else {}
        ours = {"Event": event, **dict(event_fields(chan, **extra))}
    assert set(ours) == set(real), (sorted(set(real) - set(ours)), sorted(set(ours) - set(real)))
