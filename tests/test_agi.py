"""AGI protocol core: reply and environment parsers, quoting, the sync session."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acd.adapters.asterisk.agi import (MAX_COMMAND_BYTES, AGICommandError, AGICommandFailed, AGIEnvironment,
                                       AGIProtocol, AGIReply, ChannelHungUp, Command, EnvironmentParser,
                                       EnvironmentReceived, HangupReceived, ReplyParser, ReplyReceived,
                                       SyncAGISession, error_code, parse_env_line, parse_reply_line, parse_route)
from acd.errors import AcdError, InvalidInput, ProtocolError
from agi_support import split_args

ENV = {
    "agi_network": "yes",
    "agi_network_script": "enqueue?queue=support&priority=2",
    "agi_request": "agi://127.0.0.1:4573/enqueue?queue=support&priority=2",
    "agi_channel": "PJSIP/100-00000001",
    "agi_language": "fr",
    "agi_type": "PJSIP",
    "agi_uniqueid": "1700000000.1",
    "agi_version": "20.5.0",
    "agi_callerid": "0612345678",
    "agi_calleridname": "Alice",
    "agi_accountcode": "",
    "agi_context": "default",
    "agi_extension": "100",
    "agi_priority": "1",
    "agi_enhanced": "0.0",
    "agi_threadid": "140000000000000",
}


def env_bytes(env: dict[str, str] = ENV) -> bytes:
    return ("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n").encode()




# ----------------------------------------------------------------- replies


@pytest.mark.parametrize("line, expected", [
    ("200 result=0", AGIReply(200, "0")),
    ("200 result=1 (value)", AGIReply(200, "1", "value")),
    ("200 result=1 (two words)", AGIReply(200, "1", "two words")),
    ("200 result=-1", AGIReply(200, "-1")),
    ("200 result=-1 endpos=0", AGIReply(200, "-1", extra=(("endpos", "0"),))),
    ("200 result=-1 (hangup) endpos=25280", AGIReply(200, "-1", "hangup", (("endpos", "25280"),))),
    ("200 result=0 endpos=12345\r\n", AGIReply(200, "0", extra=(("endpos", "12345"),))),
    ("200 result=1234 (timeout)", AGIReply(200, "1234", "timeout")),
    ("200 result= (timeout)", AGIReply(200, "", "timeout")),
    ("200 result=12*3", AGIReply(200, "12*3")),
    ("200 result=1 (speech) endpos=1234 results=foo bar",
     AGIReply(200, "1", "speech", (("endpos", "1234"), ("results", "foo bar")))),
    ("200 result=-1 Gosub label not found", AGIReply(200, "-1", message="Gosub label not found")),
    ("200 result=1 (a (nested) value)", AGIReply(200, "1", "a (nested) value")),
    ("200 result=1 (x) y)", AGIReply(200, "1", "x) y")),
    ("200 result=1 ()", AGIReply(200, "1", "")),
    ("510 Invalid or unknown command", AGIReply(510, message="Invalid or unknown command")),
    ("511 Command Not Permitted on a dead channel", AGIReply(511, message="Command Not Permitted on a dead channel")),
    ("511 Command Not Permitted on a dead channel or intercept routine",
     AGIReply(511, message="Command Not Permitted on a dead channel or intercept routine")),
    ("520 Invalid command syntax.  Proper usage not available.",
     AGIReply(520, message="Invalid command syntax.  Proper usage not available.")),
])
def test_single_line_replies(line, expected):
    assert parse_reply_line(line) == expected
    assert ReplyParser().feed(line.encode()) == expected


def test_reply_accessors():
    r = parse_reply_line("200 result=-1 (hangup) endpos=25280")
    assert r.ok and r.result_int == -1 and r.endpos == 25280 and r.get("endpos") == "25280"
    assert r.get("nope") is None and r.get("nope", "d") == "d"
    assert parse_reply_line("200 result= (timeout)").result_int is None
    assert not parse_reply_line("510 Invalid or unknown command").ok
    assert str(r) == "200 result=-1 (hangup) endpos=25280"


def test_multiline_520():
    p = ReplyParser()
    assert p.feed(b"520-Invalid command syntax.  Proper usage follows:\n") is None
    assert p.in_body
    # body lines may look like anything, even like replies
    assert p.feed(b" Usage: SAY NUMBER <number> <escape digits> [gender]\n") is None
    assert p.feed(b"Example return code: 200 result=1 (testvariable)\n") is None
    assert p.feed(b"HANGUP\n") is None
    r = p.feed(b"520 End of proper usage.\n")
    assert r == AGIReply(520, message="Invalid command syntax.  Proper usage follows:",
                         usage=" Usage: SAY NUMBER <number> <escape digits> [gender]\n"
                               "Example return code: 200 result=1 (testvariable)\nHANGUP")
    assert not p.in_body
    assert p.feed("200 result=0") == AGIReply(200, "0")


def test_multiline_520_glued_end_marker():
    p = ReplyParser()
    p.feed("520-Invalid command syntax.  Proper usage follows:")
    r = p.feed("Answers channel. Returns -1 on failure, or 0 if successful.520 End of proper usage.")
    assert r.code == 520 and r.usage == "Answers channel. Returns -1 on failure, or 0 if successful."


def test_multiline_body_is_bounded():
    p = ReplyParser(max_body_lines=3)
    p.feed("520-Invalid command syntax.  Proper usage follows:")
    for _ in range(3):
        p.feed("x")
    with pytest.raises(ProtocolError, match="longer than 3 lines"):
        p.feed("x")
    assert not p.in_body


def test_hangup_notice():
    p = ReplyParser()
    assert repr(p.feed(b"HANGUP\n")) == "HANGUP"


@pytest.mark.parametrize("line", [
    "", "garbage", "200", "200 result", "200 result =1", "200 result=1 (unterminated", "200 result=1 (x)y",
    "20 result=1", "2000 result=1", "abc def", "200-result=1x", "200 result=1\x00", "200 result=1\n2",
    "200 result=(1)", "hangup",
])
def test_garbage_replies_raise_protocol_error(line):
    p = ReplyParser()
    try:
        r = p.feed(line)
    except ProtocolError:
        pass
    else:  # a few are legal starts of a multi-line reply
        assert r is None and p.in_body, line


def test_overlong_reply_line():
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        ReplyParser(max_line=100).feed(b"200 result=1 (" + b"x" * 200 + b")\n")
    assert ReplyParser(max_line=100).feed(b"200 result=0 endpos=1\r\n") is not None


def test_protocol_error_is_acd_and_value_error():
    assert issubclass(ProtocolError, AcdError) and issubclass(ProtocolError, ValueError)
    assert issubclass(ChannelHungUp, AcdError)


# ------------------------------------------------------------- environment


def test_environment_parse():
    p = EnvironmentParser()
    lines = env_bytes().splitlines(keepends=True)
    for line in lines[:-1]:
        assert p.feed(line) is None
    env = p.feed(lines[-1])
    assert isinstance(env, AGIEnvironment)
    assert env.channel == "PJSIP/100-00000001" and env.uniqueid == "1700000000.1"
    assert env["agi_accountcode"] == "" and env.network and env.language == "fr"
    assert env.network_script == "enqueue?queue=support&priority=2"
    assert env.callerid == "0612345678" and env.calleridname == "Alice"
    assert env.context == "default" and env.extension == "100"
    assert len(env) == len(ENV) and set(env) == set(ENV)
    assert "agi_request" in repr(env) or "request" in repr(env)


def test_environment_arguments():
    env = AGIEnvironment({**ENV, "agi_arg_1": "a", "agi_arg_2": "b c", "agi_arg_4": "skipped"})
    assert env.arguments == ("a", "b c")


@pytest.mark.parametrize("line, expected", [
    ("agi_channel: SIP/1", ("agi_channel", "SIP/1")),
    ("agi_accountcode: ", ("agi_accountcode", "")),
    ("agi_accountcode:", ("agi_accountcode", "")),
    ("agi_calleridname: Jean: Dupont", ("agi_calleridname", "Jean: Dupont")),
    ("agi_calleridname: Émilie", ("agi_calleridname", "Émilie")),
])
def test_env_line_ok(line, expected):
    assert parse_env_line(line) == expected


@pytest.mark.parametrize("line", [
    "agi_channel", "channel: x", "agi_: x", "agi_chan nel: x", "agi_channel:x", "AGI_channel: x",
    "agi_channel: a\x01b", "200 result=0", "HANGUP", " agi_channel: x",
])
def test_env_line_garbage(line):
    with pytest.raises(ProtocolError):
        parse_env_line(line)


def test_environment_errors():
    with pytest.raises(ProtocolError, match="missing AGI environment"):
        EnvironmentParser().feed(b"\n")
    p = EnvironmentParser()
    p.feed("agi_channel: x")
    with pytest.raises(ProtocolError, match="missing agi_request"):
        p.feed("")
    p = EnvironmentParser()
    p.feed("agi_channel: x")
    with pytest.raises(ProtocolError, match="duplicate"):
        p.feed("agi_channel: y")
    p = EnvironmentParser(max_lines=3)
    for i in range(3):
        p.feed(f"agi_x{i}: v")
    with pytest.raises(ProtocolError, match="longer than 3 lines"):
        p.feed("agi_x9: v")
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        EnvironmentParser(max_line=64).feed(b"agi_channel: " + b"x" * 100 + b"\n")
    done = EnvironmentParser()
    done.feed("agi_request: r")
    done.feed("agi_channel: c")
    done.feed("")
    with pytest.raises(ProtocolError, match="already complete"):
        done.feed("agi_x: y")


# ------------------------------------------------------------ sans-I/O core


def test_protocol_core_round_trip():
    proto = AGIProtocol()
    assert proto.state == "environment"
    events = [proto.feed_line(line) for line in env_bytes().splitlines(keepends=True)]
    assert isinstance(events[-1], EnvironmentReceived) and all(e is None for e in events[:-1])
    assert proto.state == "idle"
    assert proto.send(Command.build("ANSWER")) == b"ANSWER\n"
    assert proto.state == "waiting"
    with pytest.raises(AcdError, match="still waiting"):
        proto.send(Command("ANSWER"))
    assert isinstance(proto.feed_line(b"HANGUP\n"), HangupReceived) and proto.hung_up
    ev = proto.feed_line(b"200 result=0\n")
    assert isinstance(ev, ReplyReceived) and ev.command.name == "ANSWER" and ev.reply.result == "0"
    with pytest.raises(ProtocolError, match="no command is pending"):
        proto.feed_line(b"200 result=0\n")
    closed = proto.feed_eof()
    assert closed.pending is None and proto.state == "closed"
    with pytest.raises(ChannelHungUp):
        proto.send(Command("ANSWER"))


def test_protocol_core_511_marks_hangup():
    proto = AGIProtocol()
    for line in env_bytes().splitlines():
        proto.feed_line(line)
    proto.send(Command("ANSWER"))
    assert not proto.hung_up
    proto.feed_line("511 Command Not Permitted on a dead channel")
    assert proto.hung_up


# ----------------------------------------------------------------- quoting


def test_command_encoding():
    assert Command.build("STREAM FILE", "welcome", "").encode() == b'STREAM FILE "welcome" ""\n'
    assert Command.build("GET DATA", "enter-number", 5000, 4).encode() == b'GET DATA "enter-number" "5000" "4"\n'
    assert str(Command.build("SET VARIABLE", "X", 'say "hi" \\o/')) == r'SET VARIABLE "X" "say \"hi\" \\o/"'
    assert split_args(str(Command.build("SET VARIABLE", "X", 'say "hi" \\o/'))) == [
        "SET", "VARIABLE", "X", 'say "hi" \\o/']


@pytest.mark.parametrize("name, args", [
    ("answer", ()), ("ANSWER;", ()), ("", ()), ("SET  VARIABLE", ()), ("ANSWER", ("a\nb",)),
    ("ANSWER", ("a\rb",)), ("ANSWER", ("a\x00b",)), ("ANSWER", (1,)), ("ANSWER", ("x" * MAX_COMMAND_BYTES,)),
    ("ANSWER", ("\udcff",)),
])
def test_command_validation(name, args):
    with pytest.raises(InvalidInput):
        Command(name, args)


def test_command_build_types():
    with pytest.raises(InvalidInput):
        Command.build("SAY NUMBER", True)
    with pytest.raises(InvalidInput):
        Command.build("SAY NUMBER", 1.5)
    with pytest.raises(InvalidInput):
        Command.build("SAY NUMBER", None)


@given(st.lists(st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)),
                        max_size=40), max_size=8))
def test_quoting_round_trip(args):
    cmd = Command("EXEC", tuple(args))
    words = split_args(cmd.encode().decode("utf-8").rstrip("\n"))
    assert words == ["EXEC", *args]


# ------------------------------------------------------------------ routes


def _env(**over: str) -> AGIEnvironment:
    e = dict(ENV)
    for k, v in over.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    return AGIEnvironment(e)


def test_parse_route_fastagi():
    r = parse_route(_env())
    assert r.script == "enqueue" and dict(r.args) == {"queue": "support", "priority": "2"}
    r = parse_route(_env(agi_request="agi://10.0.0.1/acd/enqueue?queue=a%20b&note=x+y", agi_arg_1="lang=fr"))
    assert r.script == "acd/enqueue" and dict(r.args) == {"queue": "a b", "note": "x y", "lang": "fr"}
    r = parse_route(_env(agi_request="agi://10.0.0.1/login"))
    assert r.script == "login" and dict(r.args) == {}
    # not a URL: fall back on agi_network_script
    r = parse_route(_env(agi_request="enqueue", agi_network_script="enqueue?queue=x"))
    assert r.script == "enqueue" and dict(r.args) == {"queue": "x"}


@pytest.mark.parametrize("over", [
    {"agi_request": "agi://h/"},
    {"agi_request": "agi://h/../etc"},
    {"agi_request": "agi://h/a b"},
    {"agi_request": "agi://h/enqueue?queue"},
    {"agi_request": "agi://h/enqueue?queue=a&queue=b"},
    {"agi_request": "agi://h/enqueue?=x"},
    {"agi_request": "agi://h/enqueue?q=%0A"},
    {"agi_request": "agi://[::1/enqueue"},
    {"agi_request": "agi://h/enqueue?" + "&".join(f"k{i}=v" for i in range(40))},
    {"agi_request": "agi://h/enqueue?q=" + "x" * 2000},
    {"agi_request": "agi://h/enqueue?queue=a", "agi_arg_1": "queue=b"},
    {"agi_request": "agi://h/enqueue", "agi_arg_1": "no-equals"},
    {"agi_request": "enqueue", "agi_network_script": None},
])
def test_parse_route_rejects(over):
    with pytest.raises(InvalidInput):
        parse_route(_env(**over))


def test_parse_route_classic():
    r = parse_route(_env(agi_request="/var/lib/asterisk/agi-bin/acd-agi", agi_arg_1="enqueue?queue=support",
                         agi_arg_2="priority=3"), classic=True)
    assert r.script == "enqueue" and dict(r.args) == {"queue": "support", "priority": "3"}
    with pytest.raises(InvalidInput, match="no script named"):
        parse_route(_env(agi_request="acd-agi"), classic=True)


def test_error_code():
    assert error_code(InvalidInput("x")) == "INVALID_INPUT"
    assert error_code(AGICommandError("x")) == "AGI_COMMAND_ERROR"
    assert error_code(ChannelHungUp("x")) == "CHANNEL_HUNG_UP"


# ------------------------------------------------------------ sync session


def sync_session(replies: list[str], env: dict[str, str] = ENV) -> tuple[SyncAGISession, io.BytesIO]:
    stdin = io.BytesIO(env_bytes(env) + "".join(r + "\n" for r in replies).encode())
    stdout = io.BytesIO()
    s = SyncAGISession(stdin, stdout)
    s.read_environment()
    return s, stdout


def sent(stdout: io.BytesIO) -> list[list[str]]:
    return [split_args(line) for line in stdout.getvalue().decode().splitlines()]


def test_sync_helpers():
    s, out = sync_session([
        "200 result=0",                          # ANSWER
        "200 result=50 endpos=1234",             # STREAM FILE -> '2'
        "200 result=0 endpos=8000",              # STREAM FILE, no digit
        "200 result=0",                          # SAY NUMBER
        "200 result=123# (timeout)",             # GET DATA ... '#' is not returned by Asterisk, but tolerate
        "200 result=49",                         # WAIT FOR DIGIT -> '1'
        "200 result=0",                          # WAIT FOR DIGIT timeout
        "200 result=1",                          # SET VARIABLE
        "200 result=1 (hello world)",            # GET VARIABLE
        "200 result=0",                          # GET VARIABLE unset
        "200 result=1",                          # VERBOSE
        "200 result=0",                          # EXEC
        "200 result=1",                          # HANGUP
    ])
    assert s.env.channel == "PJSIP/100-00000001"
    assert s.answer() is None
    assert s.stream_file("welcome", "0123456789*#") == "2"
    assert s.stream_file("welcome") is None
    assert s.say_number(42, gender="f") is None
    assert s.get_data("enter-number", timeout=5, max_digits=4) == "123#"
    assert s.wait_for_digit(2.5) == "1"
    assert s.wait_for_digit() is None
    s.set_variable("ACD_CALL", 42)
    assert s.get_variable("FOO") == "hello world"
    assert s.get_variable("CALLERID(name)") is None
    s.verbose("hello", 3)
    assert s.exec("Playback", "a", "b") == 0
    s.hangup()
    assert s.hung_up and s.variables_set == {"ACD_CALL"}
    assert sent(out) == [
        ["ANSWER"],
        ["STREAM", "FILE", "welcome", "0123456789*#"],
        ["STREAM", "FILE", "welcome", ""],
        ["SAY", "NUMBER", "42", "", "f"],
        ["GET", "DATA", "enter-number", "5000", "4"],
        ["WAIT", "FOR", "DIGIT", "2500"],
        ["WAIT", "FOR", "DIGIT", "-1"],
        ["SET", "VARIABLE", "ACD_CALL", "42"],
        ["GET", "VARIABLE", "FOO"],
        ["GET", "VARIABLE", "CALLERID(name)"],
        ["VERBOSE", "hello", "3"],
        ["EXEC", "Playback", "a,b"],
        ["HANGUP"],
    ]


def test_sync_error_replies():
    s, _ = sync_session([
        "510 Invalid or unknown command",
        "520-Invalid command syntax.  Proper usage follows:",
        "Usage: STREAM FILE <filename> <escape digits> [sample offset]",
        "520 End of proper usage.",
        "200 result=-1 endpos=0",
        "200 result=-2",
        "HANGUP",
        "200 result=-1 endpos=0",
        "511 Command Not Permitted on a dead channel",
    ])
    with pytest.raises(AGICommandError) as e510:
        s.command("NO SUCH")
    assert e510.value.code == 510
    with pytest.raises(AGICommandError) as e520:
        s.stream_file("x")
    assert e520.value.code == 520 and "sample offset" in e520.value.usage
    with pytest.raises(AGICommandFailed) as failed:   # missing file on a live channel
        s.stream_file("missing")
    assert not isinstance(failed.value, ChannelHungUp) and failed.value.reply.result == "-1"
    with pytest.raises(AGICommandFailed, match="no application"):
        s.exec("Nope")
    with pytest.raises(ChannelHungUp):                # HANGUP came first: -1 is the hang-up
        s.stream_file("welcome")
    assert s.hung_up
    with pytest.raises(ChannelHungUp):
        s.answer()


def test_sync_eof_is_hangup():
    s, _ = sync_session([])
    with pytest.raises(ChannelHungUp, match="closed"):
        s.answer()
    assert s.hung_up


def test_sync_hangup_data_and_callback():
    s, _ = sync_session(["HANGUP", "200 result=-1 (hangup)"])
    seen = []
    s.on_hangup = lambda: seen.append(1)
    with pytest.raises(ChannelHungUp):
        s.wait_for_digit(1)
    assert seen == [1]


def test_sync_overlong_line():
    stdin = io.BytesIO(env_bytes() + b"200 result=1 (" + b"x" * 9000 + b")\n")
    s = SyncAGISession(stdin, io.BytesIO())
    s.read_environment()
    with pytest.raises(ProtocolError, match="longer than"):
        s.get_variable("X")


def test_sync_environment_errors():
    with pytest.raises(ProtocolError, match="input ended"):
        SyncAGISession(io.BytesIO(b"agi_channel: x\n"), io.BytesIO()).read_environment()
    with pytest.raises(ProtocolError, match="missing AGI environment"):
        SyncAGISession(io.BytesIO(b"\n"), io.BytesIO()).read_environment()
    with pytest.raises(AcdError):
        SyncAGISession(io.BytesIO(b""), io.BytesIO()).env


@pytest.mark.parametrize("call", [
    lambda s: s.stream_file("", ""),
    lambda s: s.stream_file("x", "abc"),
    lambda s: s.stream_file("x", offset=-1),
    lambda s: s.say_number(1.5),
    lambda s: s.say_number(1, gender="x"),
    lambda s: s.get_data("x", timeout=-1),
    lambda s: s.get_data("x", timeout=float("nan")),
    lambda s: s.get_data("x", max_digits=0),
    lambda s: s.wait_for_digit(True),
    lambda s: s.set_variable("A B", "x"),
    lambda s: s.set_variable("X", None),
    lambda s: s.set_variable("X", "a\nb"),
    lambda s: s.get_variable(""),
    lambda s: s.verbose("x", 9),
    lambda s: s.exec("Dial;rm", "x"),
    lambda s: s.exec("Dial", None),
    lambda s: s.hangup(""),
])
def test_sync_helper_argument_validation(call):
    s, out = sync_session([])
    with pytest.raises(InvalidInput):
        call(s)
    assert out.getvalue() == b""  # nothing was sent


# ------------------------------------------------------------------ fuzzing

_reply_lines = st.one_of(
    st.text(max_size=120),
    st.binary(max_size=120),
    st.builds(lambda code, sep, rest: f"{code}{sep}{rest}", st.sampled_from(["200", "510", "511", "520", "999"]),
              st.sampled_from([" ", "-", ""]), st.text(max_size=60)),
    st.builds(lambda tok, rest: f"200 result={tok}{rest}", st.text(max_size=8), st.text(max_size=40)),
)


@given(st.lists(_reply_lines, max_size=12))
def test_fuzz_reply_parser(lines):
    p = ReplyParser()
    for line in lines:
        was_in_body = p.in_body
        try:
            out = p.feed(line)
        except ProtocolError:
            assert not p.in_body or was_in_body  # garbage never opens a body
            if not was_in_body:
                # no state change: a valid reply still parses right after garbage
                assert p.feed("200 result=0") == AGIReply(200, "0")
            continue
        assert out is None or isinstance(out, AGIReply) or repr(out) == "HANGUP"
        if isinstance(out, AGIReply):
            assert 0 <= out.code <= 999
            if out.code == 200:
                assert out.result is not None


@given(st.lists(_reply_lines, max_size=8))
def test_fuzz_protocol_no_state_change_on_garbage(lines):
    proto = AGIProtocol()
    for line in env_bytes().splitlines():
        proto.feed_line(line)
    proto.send(Command("ANSWER"))
    for line in lines:
        before = (proto.state, proto.pending, proto.hung_up, proto._replies.in_body)
        try:
            proto.feed_line(line)
        except ProtocolError:
            assert (proto.state, proto.pending, proto.hung_up, proto._replies.in_body) == before
        if proto.pending is None and proto.state == "idle":
            proto.send(Command("ANSWER"))


@given(st.lists(st.one_of(st.text(max_size=80), st.binary(max_size=80),
                          st.builds(lambda k, v: f"agi_{k}: {v}", st.text(max_size=12), st.text(max_size=30))),
                max_size=10))
def test_fuzz_environment_parser(lines):
    p = EnvironmentParser()
    for line in lines:
        before = dict(p._vars)
        try:
            env = p.feed(line)
        except ProtocolError:
            assert p._vars == before
            if p.done:
                break
            continue
        if env is not None:
            assert "agi_request" in env and "agi_channel" in env
            break


_data_text = st.text(st.characters(blacklist_characters="\r\n)", blacklist_categories=("Cs",)), max_size=30)


@given(st.integers(-1, 10**6), st.one_of(st.none(), _data_text),
       st.lists(st.tuples(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True),
                          st.from_regex(r"[A-Za-z0-9]{0,8}", fullmatch=True)), max_size=3))
def test_fuzz_reply_round_trip(result, data, extra):
    line = f"200 result={result}" + (f" ({data})" if data is not None else "") + "".join(
        f" {k}={v}" for k, v in extra)
    r = parse_reply_line(line)
    assert r.result_int == result and r.data == data and r.extra == tuple(extra)
