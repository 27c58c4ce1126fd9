"""The classic script's parsers do without ``re``, ``json`` and ``urllib.parse`` (they cost it
more to import than its own modules): each is checked here against the standard-library
equivalent it replaces -- the regular expression of the grammar, ``json``, ``parse_qsl``."""

from __future__ import annotations

import json
import math
import re
from urllib.parse import parse_qsl, quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from acd.adapters.asterisk import minijson
from acd.adapters.asterisk.commands import _is_variable, error_code
from acd.adapters.asterisk.lines import LineBuffer, read_line
from acd.adapters.asterisk.routes import _is_script_name, _unquote, parse_query
from acd.adapters.asterisk.wire import (_KEY_CHARS, WORD, _key_follows, _reply_head, has_control, is_command_name,
                                        is_env_key, is_int_token, is_name, is_result_token, parse_reply_line,
                                        without_control)
from acd.errors import InvalidInput, ProtocolError

# the grammar, as regular expressions (what the module used before it dropped re)
GRAMMAR = {
    is_command_name: r"[A-Z]+(?: [A-Z]+)*\Z",
    is_int_token: r"-?[0-9]{1,18}\Z",
    is_result_token: r"[0-9A-Za-z*#+.-]*\Z",
    is_env_key: r"agi_[A-Za-z0-9_]{1,64}\Z",
    _is_script_name: r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}(?:/[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}){0,7}\Z",
    _is_variable: r"[A-Za-z_][A-Za-z0-9_]*(?:\([^()\s\"\\]{0,256}\))?\Z",
}
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

# text built from the characters that matter to these grammars, plus anything else
interesting = st.text(st.sampled_from(list("azAZ09_-./()%*#+ =\t\n\r\x00\x7f\"\\é\u00a0\u2028\U0001f600agi")),
                      max_size=80)
any_text = st.one_of(interesting, st.text(max_size=80))


@pytest.mark.parametrize("check", list(GRAMMAR), ids=lambda f: f.__name__)
@given(text=any_text)
@example(text="A  B")
@example(text="agi_" + "x" * 64)
@example(text="agi_" + "x" * 65)
@example(text="a/" * 8 + "a")
@example(text="-" + "1" * 18)
@example(text="SET(x y)")
def test_character_classes_match_the_grammar(check, text):
    assert check(text) == bool(re.match(GRAMMAR[check], text)), text


@given(text=any_text)
def test_control_characters(text):
    assert has_control(text) == bool(CONTROL.search(text))
    assert without_control(text) == CONTROL.sub(" ", text).replace("\t", " ")


@given(text=any_text, start=st.sampled_from(list(WORD)), rest=st.sampled_from([WORD, _KEY_CHARS]),
       limit=st.integers(1, 80))
def test_names(text, start, rest, limit):
    chars = "".join(sorted(rest)).replace("-", r"\-")
    pattern = rf"[A-Za-z_][{chars}]{{0,{limit - 1}}}\Z"
    assert is_name(text, rest, limit) == bool(re.match(pattern, text))
    assert is_name(start + text, rest, limit) == bool(re.match(pattern, start + text))


@given(text=any_text, pos=st.integers(0, 80))
def test_key_follows(text, pos):
    assert _key_follows(text, pos) == bool(re.compile(r"\s+[A-Za-z_][A-Za-z0-9_-]*=").match(text, pos))


@given(text=any_text)
def test_reply_head(text):
    m = re.match(r"([0-9]{3})([ -])(.*)\Z", text, re.S)
    assert _reply_head(text) == ((int(m.group(1)), m.group(2), m.group(3)) if m else None)


@given(token=st.text(st.sampled_from(list("0123456789-*#ab \t()=x\u00a0")), max_size=20),
       tail=st.text(st.sampled_from(list("ab=() \t1endpos\u3000")), max_size=30))
def test_result_and_tail_of_a_200_reply(token, tail):
    line = f"200 result={token}{tail}"
    m = re.compile(r"result=([^\s]*)").match(line, 4)
    try:
        reply = parse_reply_line(line)
    except ProtocolError:
        assert not re.match(r"[0-9A-Za-z*#+.-]*\Z", m.group(1)) or "(" in line
        return
    assert reply.result == m.group(1)


@pytest.mark.parametrize("name, code", [("InvalidInput", "INVALID_INPUT"), ("AGITimeout", "AGI_TIMEOUT"),
                                        ("ProtocolError", "PROTOCOL_ERROR"), ("JournalError", "JOURNAL_ERROR"),
                                        ("AMIOutcomeUnknown", "AMI_OUTCOME_UNKNOWN"), ("X", "X")])
def test_error_codes(name, code):
    assert error_code(type(name, (Exception,), {})()) == code


@given(name=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True))
def test_error_code_matches_the_regex(name):
    snake = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
    assert error_code(type(name, (Exception,), {})()) == snake.sub("_", name).upper()


# ------------------------------------------------------------------ queries

query_text = st.one_of(
    st.text(st.sampled_from(list("ab=&+%2fE9C3A9xé \u00a0")), max_size=40),
    st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=5).map(
        lambda pairs: "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)),
)


@given(query=query_text)
@example(query="a=%C3%A9&b=%E2%82")
@example(query="a=%E2%82A%AC")
@example(query="a=%zz&b=100%")
def test_parse_query_is_parse_qsl(query):
    try:
        expected = parse_qsl(query, keep_blank_values=True, strict_parsing=True, max_num_fields=32)
    except ValueError:
        with pytest.raises(InvalidInput, match="malformed query string"):
            parse_query(query)
        return
    assert parse_query(query) == expected


@given(text=st.text(max_size=40))
def test_unquote(text):
    from urllib.parse import unquote
    assert _unquote(text) == unquote(text)
    assert _unquote(quote(text)) == text


# --------------------------------------------------------------------- JSON

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=20)


@given(value=values)
def test_minijson_writes_what_json_writes_and_reads_it_back(value):
    text = minijson.dumps(value)
    assert text == json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    assert minijson.loads(text) == value
    spaced = json.dumps(value, indent=1)
    assert minijson.loads(spaced) == json.loads(spaced)


@given(text=st.one_of(st.text(st.sampled_from(list('{}[]":,0123456789.eE+-tfrunlsa \\/u\n\t\x01')), max_size=30),
                      st.text(max_size=30)))
@example(text='{"a": 1, "a": 2}')
@example(text='"\\ud83d\\ude00"')
@example(text='"\\ud83d"')
@example(text="-0.5e+3")
@example(text="01")
@example(text="[1,]")
@example(text='"a\tb"')
def test_minijson_reads_a_subset_of_json(text):
    try:
        value = minijson.loads(text)
    except ProtocolError:
        return  # refused: json may accept more (NaN, duplicate keys, deeper nesting)
    expected = json.loads(text)
    assert value == expected or (isinstance(value, float) and math.isnan(value) and math.isnan(expected))
    assert type(value) is type(expected)


def test_minijson_refusals():
    for bad in ["", "nul", "[1,2", '{"a":1,}', '{"a" 1}', "1 2", '"\\x"', '"\\u12"', "NaN", "[" * 40 + "]" * 40,
                '{"a":1,"a":2}', "1" * 5000, "-", "1.", "1e"]:
        with pytest.raises(ProtocolError):
            minijson.loads(bad)
    with pytest.raises(InvalidInput, match="cannot write float"):
        minijson.dumps({"x": 1.5})
    with pytest.raises(InvalidInput, match="keys must be strings"):
        minijson.dumps({1: "x"})


# --------------------------------------------------------------- line buffer

@given(lines=st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")), max_size=8),
       cuts=st.lists(st.integers(1, 7), max_size=20), tail=st.binary(max_size=5).map(lambda b: b.replace(b"\n", b"")))
def test_line_buffer_gives_back_the_lines_however_the_bytes_arrive(lines, cuts, tail):
    data = b"".join(line + b"\n" for line in lines) + tail
    chunks = []
    pos = 0
    for cut in cuts:
        chunks.append(data[pos:pos + cut])
        pos += cut
    chunks.append(data[pos:])
    feed = iter([c for c in chunks if c])
    buf = LineBuffer(12)
    got = []
    while True:
        line = read_line(buf, lambda: next(feed, b""))
        if line is None:
            break
        got.append(line)
    assert got == [line + b"\n" for line in lines]  # a partial last line is dropped at the end


def test_line_buffer_bounds_a_line_before_it_ends():
    buf = LineBuffer(4)
    buf.feed(b"12345")  # may still be "1234\r\n"
    assert buf.next_line() is None
    buf.feed(b"6")
    with pytest.raises(ProtocolError, match="longer than 4 bytes"):
        buf.next_line()
    ok = LineBuffer(4)
    ok.feed(b"1234\r\n")
    assert ok.next_line() == b"1234\r\n"
    with pytest.raises(InvalidInput, match="max_line must be a positive int, got 0"):
        LineBuffer(0)


def test_too_many_route_arguments_says_so():
    from acd.adapters.asterisk.routes import MAX_ROUTE_ARGS, parse_query
    from acd.errors import InvalidInput
    query = "&".join(f"k{i}=v" for i in range(MAX_ROUTE_ARGS + 1))
    with pytest.raises(InvalidInput, match=f"too many script arguments .*: {MAX_ROUTE_ARGS + 1}, at most "
                                           f"{MAX_ROUTE_ARGS} allowed"):
        parse_query(query)
