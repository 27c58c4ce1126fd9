"""Configuration of ``acd serve``: one TOML file, validated once at start-up.

Every mistake raises :class:`acd.errors.InvalidInput` naming the field and
the value, e.g. ``agents[2].skills names an undeclared skill 'tehc'``.  Unknown
keys are errors too (a typo must not silently fall back on a default).

Layout (every table is optional except ``[[queues]]``; defaults shown)::

    skills = ["fr", "tech"]          # skills agents may hold (queues declare theirs too)

    [engine]                         # acd.Engine options (see docs/engine.md)
    agent_strategy = "longest_idle"
    call_choice = "priority_fifo"
    seed = 0
    ring_no_answer = "pause"
    no_answer_delay = 0.0
    reject_delay = 0.0
    patience_window = 4096

    [[queues]]                       # acd.policy.queue_from_dict fields
    name = "support"
    steps = [{after = 0, requirements = {tech = 5}}, {after = 30}]
    callback_threshold = 120

    [[schedules]]                    # opening hours (acd.schedule); none = always open
    name = "office"
    timezone = "Europe/Paris"
    queues = ["support"]             # default: every queue (a queue follows one schedule at most)
    hours = { mon = "08:30-12:30, 13:30-17:00", tue = "08:30-17:00" }   # days not given: closed
    holidays = ["france", "2026-12-24"]      # named sets (france, france-alsace-moselle), dates
    closed = ["2026-08-14", "2026-12-31 12:00/2027-01-02 08:30"]   # days, or local start/end spans

    [[agents]]                       # the directory: who may log in, and how to ring them
    id = "1001"
    dial = "PJSIP/1001"              # Dial() string for this agent's phone
    skills = {tech = 7, fr = 5}
    queues = ["support"]             # optional; default: every queue
    callerid = ["1001"]              # optional; numbers feature codes identify the agent by
    device = "PJSIP/1001"            # optional; device watched for DeviceStateChange

    [fastagi]
    host = "127.0.0.1"
    port = 4573
    unix_path = ""                   # "" = no relay socket for classic AGI scripts
    max_sessions = 1000

    [ami]
    enabled = false                  # true by default once the [ami] table has other keys
    host = "127.0.0.1"
    port = 5038
    username = "acd"
    secret = ""
    ping_interval = 30.0
    device_return_ready = true       # a device back to NOT_INUSE ends a "device_unavailable" pause

    [callback]                       # how a call-back is dialled (AMI Originate)
    context = "acd-callback"         # dialplan context the agent's leg is connected to
    exten = "s"
    priority = 1
    ring_timeout = 30.0              # seconds the agent's phone rings
    offer_timeout = 6.0              # seconds the caller has to press the accept digit
    accept_digit = "1"

    [journal]
    path = "acd-journal.sqlite3"     # relative paths are relative to this file
    sync = "full"                    # or "normal"
    # url = "postgresql://acd@db.example/acd"   # instead of path: the PostgreSQL journal, for a
    # schema = "acd"                            # primary and its standbys (docs/ha.md); password
                                                # from PGPASSWORD or ~/.pgpass, not this file

    [ha]                             # with a postgresql:// journal only
    node = ""                        # this node's name (default: host name and pid)
    lease = 2.0                      # seconds without heartbeat before a standby takes over
    max_lag = 5.0                    # GET /standby is 503 when the standby is further behind

    [http]
    enabled = true
    host = "127.0.0.1"
    port = 8573
    refresh = 5                      # dashboard auto-refresh, seconds
    token = ""                       # supervisor token (Authorization: Bearer ...): required for the
                                     # actions under /api/, and for every page when host is not loopback

    [prompts]                        # sound files (no extension), Asterisk stock names
    thereare = "queue-thereare"
    callswaiting = "queue-callswaiting"
    youarenext = "queue-youarenext"
    holdtime = "queue-holdtime"
    minutes = "queue-minutes"
    callback_offer = "acd-callback-offer"        # record it: "press 1 to be called back..."
    callback_accepted = "acd-callback-accepted"  # record it: "we will call you back..."
    music_on_hold = "default"        # MOH class while waiting ("" = silence)

    [service]
    shutdown_timeout = 20.0          # SIGTERM: seconds ringing and connected calls get to end (drain)
    reattach_timeout = 15.0          # seconds a requeued call may stay without an AGI session
    dial_report_timeout = 60.0       # seconds an agent may ring with no dial_result before it is checked
                                     # with Asterisk (AMI) or released as ring-no-answer
    log_level = "info"

    [survey]                         # post-call satisfaction survey (docs/survey.md)
    enabled = false
    share = 1.0                      # share of answered calls asked, 0..1 (chosen by a hash of the call id)
    question = "acd-survey-question" # record it: "how satisfied were you? press 1 to 5"
    solved = false                   # ask the second question too
    solved_question = "acd-survey-solved"    # record it: "was your problem solved? 1 yes, 2 no"
    invalid = "acd-survey-invalid"   # played before a question is asked again
    thanks = "acd-survey-thanks"
    timeout = 5.0                    # seconds to press a digit
    retries = 1                      # times a question is asked again after no digit or a wrong one

    [preferred]                      # returning callers to the agent they spoke with (docs/preferred.md)
    remember = 604800                # seconds the last agent of each caller number is remembered; 0: off
    wait = 60.0                      # default seconds a call waits for its preferred agent (enqueue's
                                     # preferred_for= overrides); never past the queue's first step

    [queue_log]                      # Asterisk's queue_log, for app_queue's reporting tools
    path = "/var/log/asterisk/queue_log_acd"   # absent table = none; relative to this file; a file of
                                     # acd's own (not app_queue's): docs/queue-log.md

    [webhooks]                       # signed HTTP notifications of call-backs (docs/webhooks.md);
    url = "https://sms.example/acd"  # absent table = none.  http:// or https://, required
    secret = "..."                   # HMAC-SHA256 key, 16 to 256 printable characters, required
    events = ["callback.accepted", "callback.scheduled", "callback.dialled", "callback.reached",
              "callback.failed"]     # default: all of them
    timeout = 10.0                   # seconds for one POST (connect to response head)
    backoff = 1.0                    # first retry delay; doubles per failure (with jitter) ...
    max_backoff = 300.0              # ... up to this
    max_age = 86400.0                # an event not delivered after this long is given up
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .._tables import TomlTable
from ..errors import AcdError, InvalidInput
from ..policy import Queue, check_name, check_skills, queue_from_dict
from ..schedule import Schedule, schedules_by_queue

__all__ = ("ServiceConfig", "AgentEntry", "FastAGIConfig", "AMIConfig", "CallbackConfig", "JournalConfig",
           "HTTPConfig", "Prompts", "ServiceOptions", "load_config", "config_from_dict", "ENGINE_OPTIONS",
           "LOG_LEVELS", "is_loopback", "WebhooksConfig", "WEBHOOK_EVENTS", "SurveyConfig", "PreferredConfig")

#: keys of the [engine] table (passed to acd.Engine / JournaledEngine.open)
ENGINE_OPTIONS = ("agent_strategy", "call_choice", "seed", "ring_no_answer", "no_answer_delay", "reject_delay",
                  "patience_window")
LOG_LEVELS = ("debug", "info", "warning", "error")

_DIAL = re.compile(r"[A-Za-z0-9_-]+/[^\s,()|]+\Z")
_DEVICE = re.compile(r"[A-Za-z0-9_-]+/[A-Za-z0-9_.+*#@-]+\Z")   # PJSIP/1001, Local/1001@phones
_DIALPLAN_NAME = re.compile(r"[A-Za-z0-9_+*#.-]{1,80}\Z")
_SOUND = re.compile(r"[A-Za-z0-9_./-]{1,200}\Z")
_NUMBER = re.compile(r"[0-9A-Za-z+*#_.-]{1,64}\Z")


# ------------------------------------------------------------------ helpers

class _Table(TomlTable):
    document = "the configuration"


def _str(where: str, value: object, *, empty: bool = False, pattern: Optional[re.Pattern[str]] = None,
         what: str = "") -> str:
    if not isinstance(value, str) or (not empty and not value) or len(value) > 1024 \
            or (value and not value.isprintable()):
        raise InvalidInput(f"{where} must be a {'' if empty else 'non-empty '}printable str, got {value!r}")
    if value and pattern is not None and not pattern.match(value):
        raise InvalidInput(f"{where} must be {what}, got {value!r}")
    return value


def _bool(where: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{where} must be true or false, got {value!r}")
    return value


def _int(where: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidInput(f"{where} must be an int in {lo}..{hi}, got {value!r}")
    return value


def _seconds(where: str, value: object, *, lo: float = 0.0, hi: float = 86400.0, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < lo or value > hi or (positive and value <= 0):
        what = "a positive" if positive else "a non-negative"
        raise InvalidInput(f"{where} must be {what} number of seconds (at most {hi:g}), got {value!r}")
    return float(value)


def _port(where: str, value: object) -> int:
    return _int(where, value, 0, 65535)


def _id(where: str, value: object) -> str:
    """Agent ids: str (an int is accepted and turned into its decimal text)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    return check_name(where, value)


def _str_list(where: str, value: object, item: Any) -> Tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise InvalidInput(f"{where} must be a list, got {value!r}")
    return tuple(item(f"{where}[{i}]", v) for i, v in enumerate(value))


# ------------------------------------------------------------------ sections

@dataclass(frozen=True)
class AgentEntry:
    """One agent of the directory."""

    id: str
    dial: str
    skills: Mapping[str, int] = field(default_factory=dict)
    queues: Optional[Tuple[str, ...]] = None
    callerid: Tuple[str, ...] = ()
    device: Optional[str] = None


@dataclass(frozen=True)
class FastAGIConfig:
    host: str = "127.0.0.1"
    port: Optional[int] = 4573
    unix_path: Optional[str] = None
    max_sessions: int = 1000


@dataclass(frozen=True)
class AMIConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "acd"
    secret: str = ""
    ping_interval: Optional[float] = 30.0
    device_return_ready: bool = True


@dataclass(frozen=True)
class CallbackConfig:
    context: str = "acd-callback"
    exten: str = "s"
    priority: int = 1
    ring_timeout: float = 30.0
    offer_timeout: float = 6.0
    accept_digit: str = "1"


@dataclass(frozen=True)
class JournalConfig:
    path: str = "acd-journal.sqlite3"
    sync: str = "full"
    url: Optional[str] = dataclasses.field(default=None, repr=False)   # postgresql://...: may hold a password
    schema: str = "acd"

    @property
    def shared(self) -> bool:
        """A PostgreSQL journal (primary / standby) rather than a file of this node's."""
        return self.url is not None

    @property
    def where(self) -> str:
        """For logs: the file, or the URL without its password."""
        if self.url is None:
            return self.path
        from ..journal.postgres import redact_url
        return redact_url(self.url) + ("" if self.schema == "acd" else f" (schema {self.schema})")


@dataclass(frozen=True)
class HAConfig:
    node: str = ""
    lease: float = 2.0
    max_lag: float = 5.0


@dataclass(frozen=True)
class HTTPConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8573
    refresh: int = 5
    token: str = dataclasses.field(default="", repr=False)


@dataclass(frozen=True)
class Prompts:
    """Sound files the enqueue script plays (names without extension)."""

    thereare: str = "queue-thereare"
    callswaiting: str = "queue-callswaiting"
    youarenext: str = "queue-youarenext"
    holdtime: str = "queue-holdtime"
    minutes: str = "queue-minutes"
    callback_offer: str = "acd-callback-offer"
    callback_accepted: str = "acd-callback-accepted"
    music_on_hold: str = "default"


@dataclass(frozen=True)
class ServiceOptions:
    shutdown_timeout: float = 20.0
    reattach_timeout: float = 15.0
    dial_report_timeout: float = 60.0
    log_level: str = "info"


@dataclass(frozen=True)
class ServiceConfig:
    """Everything ``acd serve`` needs; build it with :func:`load_config` or :func:`config_from_dict`."""

    queues: Tuple[Queue, ...]
    skills: Tuple[str, ...] = ()
    engine: Mapping[str, Any] = field(default_factory=dict)
    agents: Tuple[AgentEntry, ...] = ()
    fastagi: FastAGIConfig = FastAGIConfig()
    ami: AMIConfig = AMIConfig()
    callback: CallbackConfig = CallbackConfig()
    journal: JournalConfig = JournalConfig()
    ha: HAConfig = HAConfig()
    http: HTTPConfig = HTTPConfig()
    prompts: Prompts = Prompts()
    service: ServiceOptions = ServiceOptions()
    webhooks: Optional["WebhooksConfig"] = None
    queue_log: Optional[str] = None            # the path acd writes Asterisk's queue_log to
    schedules: Mapping[str, Schedule] = field(default_factory=dict)   # queue -> its opening hours
    survey: "SurveyConfig" = field(default_factory=lambda: SurveyConfig())
    preferred: "PreferredConfig" = field(default_factory=lambda: PreferredConfig())
    source: Optional[str] = None

    def agent(self, agent_id: str) -> Optional[AgentEntry]:
        for a in self.agents:
            if a.id == agent_id:
                return a
        return None

    def queue(self, name: str) -> Optional[Queue]:
        for q in self.queues:
            if q.name == name:
                return q
        return None

    def replace(self, **changes: Any) -> "ServiceConfig":
        """A copy with some sections replaced (``cfg.replace(http=HTTPConfig(port=0))``)."""
        return dataclasses.replace(self, **changes)


# ------------------------------------------------------------------ parsing

def _engine(data: object) -> Dict[str, Any]:
    t = _Table("engine", data)
    out = {k: t.pop(k) for k in ENGINE_OPTIONS if k in t.d}
    t.done()
    from .._core import Engine
    try:
        Engine(**out)
    except AcdError as e:
        raise InvalidInput(f"engine: {e}") from None
    except (TypeError, ValueError, OverflowError) as e:  # a wrongly typed option the core rejects natively
        raise InvalidInput(f"engine: bad option value ({e}) in {out!r}") from None
    return out


def _queues(data: object) -> Tuple[Queue, ...]:
    if not isinstance(data, list) or not data:
        raise InvalidInput(f"queues must be a non-empty array of tables ([[queues]]), got {data!r}")
    out: List[Queue] = []
    seen = set()
    for i, d in enumerate(data):
        if not isinstance(d, Mapping):
            raise InvalidInput(f"queues[{i}] must be a table, got {d!r}")
        try:
            q = queue_from_dict(d)
        except (AcdError, TypeError) as e:
            raise InvalidInput(f"queues[{i}] ({d.get('name')!r}): {e}") from None
        if q.name in seen:
            raise InvalidInput(f"queues[{i}].name {q.name!r} is used twice")
        seen.add(q.name)
        out.append(q)
    for q in out:
        for target in q.overflow_targets:
            if target not in seen:
                raise InvalidInput(f"queue {q.name!r} overflows to an unknown queue {target!r}")
    return tuple(_overflow_order(out))


def _overflow_order(queues: List[Queue]) -> List[Queue]:
    """Order queues so that every overflow target comes before the queues overflowing to it."""
    by_name = {q.name: q for q in queues}
    done: Dict[str, bool] = {}
    out: List[Queue] = []

    def visit(q: Queue, path: Tuple[str, ...]) -> None:
        if done.get(q.name):
            return
        if q.name in path:
            cycle = " -> ".join(path[path.index(q.name):] + (q.name,))
            raise InvalidInput(f"queues overflow in a cycle: {cycle!r}")
        for target in q.overflow_targets:
            visit(by_name[target], path + (q.name,))
        done[q.name] = True
        out.append(q)

    for q in queues:
        visit(q, ())
    return out


def _default_device(dial: str) -> Optional[str]:
    return dial if _DEVICE.match(dial) else None


def _agents(data: object, queue_names: "set[str]", skills: "set[str]") -> Tuple[AgentEntry, ...]:
    if not isinstance(data, list):
        raise InvalidInput(f"agents must be an array of tables ([[agents]]), got {data!r}")
    out: List[AgentEntry] = []
    ids: "set[str]" = set()
    numbers: Dict[str, str] = {}
    for i, d in enumerate(data):
        where = f"agents[{i}]"
        t = _Table(where, d)
        agent_id = _id(f"{where}.id", t.pop("id"))
        if agent_id in ids:
            raise InvalidInput(f"{where}.id {agent_id!r} is used twice")
        ids.add(agent_id)
        dial = _str(f"{where}.dial", t.pop("dial"), pattern=_DIAL,
                    what="a Dial() string such as 'PJSIP/1001' (no spaces, commas or parentheses)")
        raw_skills = t.pop("skills", {})
        try:
            sk = dict(check_skills(raw_skills))
        except AcdError as e:
            raise InvalidInput(f"{where}.skills: {e}") from None
        for name in sk:
            if name not in skills:
                raise InvalidInput(f"{where}.skills names an undeclared skill {name!r} "
                                   f"(declare it in skills = [...] or in a queue's requirements)")
        qs = t.pop("queues", None)
        queues = None
        if qs is not None:
            queues = _str_list(f"{where}.queues", qs, check_name)
            for q in queues:
                if q not in queue_names:
                    raise InvalidInput(f"{where}.queues names an unknown queue {q!r}")
        cids = _str_list(f"{where}.callerid", t.pop("callerid", ()),
                         lambda w, v: _str(w, _id(w, v), pattern=_NUMBER, what="a caller id number"))
        for n in cids:
            if n in numbers:
                raise InvalidInput(f"{where}.callerid {n!r} already identifies agent {numbers[n]!r}")
            numbers[n] = agent_id
        device = t.pop("device", None)
        if device is None:
            device = _default_device(dial)
        elif device == "":
            device = None
        else:
            device = _str(f"{where}.device", device, pattern=_DEVICE, what="a device name such as 'PJSIP/1001'")
        t.done()
        out.append(AgentEntry(agent_id, dial, sk, queues, cids, device))
    return tuple(out)


def _fastagi(data: object) -> FastAGIConfig:
    t = _Table("fastagi", data)
    host = _str("fastagi.host", t.pop("host", "127.0.0.1"))
    port = t.pop("port", 4573)
    port = None if port is False else _port("fastagi.port", port)
    unix = t.pop("unix_path", "")
    unix = _str("fastagi.unix_path", unix, empty=True) or None
    max_sessions = _int("fastagi.max_sessions", t.pop("max_sessions", 1000), 1, 100_000)
    t.done()
    if port is None and unix is None:
        raise InvalidInput("fastagi needs a port or a unix_path (port = false disables TCP)")
    return FastAGIConfig(host, port, unix, max_sessions)


def _ami(data: object) -> AMIConfig:
    t = _Table("ami", data)
    enabled = _bool("ami.enabled", t.pop("enabled", True if t.d else False))
    host = _str("ami.host", t.pop("host", "127.0.0.1"))
    port = _int("ami.port", t.pop("port", 5038), 1, 65535)
    username = _str("ami.username", t.pop("username", "acd"))
    secret = t.pop("secret", "")
    if not isinstance(secret, str):
        raise InvalidInput("ami.secret must be a str")
    ping = t.pop("ping_interval", 30.0)
    ping = None if ping in (0, False) else _seconds("ami.ping_interval", ping)
    ready = _bool("ami.device_return_ready", t.pop("device_return_ready", True))
    t.done()
    if enabled and not secret:
        raise InvalidInput("ami.secret is required when ami.enabled is true")
    return AMIConfig(enabled, host, port, username, secret, ping, ready)


def _callback(data: object) -> CallbackConfig:
    t = _Table("callback", data)
    name = "a dialplan name (letters, digits, '_', '-', '.', '+', '*', '#')"
    context = _str("callback.context", t.pop("context", "acd-callback"), pattern=_DIALPLAN_NAME, what=name)
    exten = _str("callback.exten", _id("callback.exten", t.pop("exten", "s")), pattern=_DIALPLAN_NAME, what=name)
    priority = _int("callback.priority", t.pop("priority", 1), 1, 10_000)
    ring = _seconds("callback.ring_timeout", t.pop("ring_timeout", 30.0), hi=600)
    offer = _seconds("callback.offer_timeout", t.pop("offer_timeout", 6.0), hi=60)
    digit = t.pop("accept_digit", "1")
    if isinstance(digit, int) and not isinstance(digit, bool):
        digit = str(digit)
    if not isinstance(digit, str) or len(digit) != 1 or digit not in "0123456789*#":
        raise InvalidInput(f"callback.accept_digit must be one of 0-9, * or #, got {digit!r}")
    t.done()
    return CallbackConfig(context, exten, priority, ring, offer, digit)


def _journal(data: object, base: Optional[Path]) -> JournalConfig:
    t = _Table("journal", data)
    path = _str("journal.path", t.pop("path", "acd-journal.sqlite3"))
    sync = t.pop("sync", "full")
    if sync not in ("full", "normal"):
        raise InvalidInput(f"journal.sync must be 'full' or 'normal', got {sync!r}")
    url = t.pop("url", None)
    schema = t.pop("schema", "acd")
    t.done()
    if url is not None:
        if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
            shown = url if not isinstance(url, str) else url.split("://")[0] + "://..."
            raise InvalidInput(f"journal.url must be a postgresql:// URL, got {shown!r}")
        if "path" in (data or {}):  # type: ignore[operator]
            raise InvalidInput("journal: give path (an SQLite file) or url (PostgreSQL), not both")
        if not isinstance(schema, str) or not _SQL_NAME.match(schema):
            raise InvalidInput(f"journal.schema must be a lower-case SQL name (letters, digits, _), got {schema!r}")
    elif schema != "acd":
        raise InvalidInput("journal.schema needs journal.url (a PostgreSQL journal)")
    if path != ":memory:" and base is not None and not os.path.isabs(path):
        path = str(base / path)
    return JournalConfig(path, sync, url, schema)


_SQL_NAME = re.compile(r"[a-z_][a-z0-9_]{0,40}\Z")


def _ha(data: object) -> HAConfig:
    t = _Table("ha", data)
    node = _str("ha.node", t.pop("node", ""), empty=True)
    if node and (len(node) > 40 or not node.isprintable() or " " in node):
        raise InvalidInput(f"ha.node must be a short name without spaces (at most 40 characters), got {node!r}")
    lease = _seconds("ha.lease", t.pop("lease", 2.0), hi=60)
    max_lag = _seconds("ha.max_lag", t.pop("max_lag", 5.0), hi=3600)
    t.done()
    if lease < 0.5:
        raise InvalidInput(f"ha.lease must be at least 0.5 s, got {lease!r}")
    return HAConfig(node, lease, max_lag)


def _http(data: object) -> HTTPConfig:
    t = _Table("http", data)
    enabled = _bool("http.enabled", t.pop("enabled", True))
    host = _str("http.host", t.pop("host", "127.0.0.1"))
    port = _port("http.port", t.pop("port", 8573))
    refresh = _int("http.refresh", t.pop("refresh", 5), 0, 3600)
    token = t.pop("token", "")
    if not isinstance(token, str) or (token and (len(token) < 16 or len(token) > 256 or not token.isprintable()
                                                 or " " in token)):
        raise InvalidInput("http.token must be a str of 16 to 256 printable characters without spaces "
                           f"(got {len(token) if isinstance(token, str) else type(token).__name__!s})")
    t.done()
    if enabled and not token and not is_loopback(host):
        raise InvalidInput(f"http.host {host!r} is not a loopback address: set http.token (the pages show callers "
                           "and agents, and the API ends calls), or bind to 127.0.0.1 behind a proxy")
    return HTTPConfig(enabled, host, port, refresh, token)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _prompts(data: object) -> Prompts:
    t = _Table("prompts", data)
    values = {}
    for f in dataclasses.fields(Prompts):
        v = t.pop(f.name, f.default)
        empty = f.name == "music_on_hold"
        values[f.name] = _str(f"prompts.{f.name}", v, empty=empty, pattern=_SOUND,
                              what="a sound file name without extension (letters, digits, '_', '-', '.', '/')")
    t.done()
    return Prompts(**values)


def _service(data: object) -> ServiceOptions:
    t = _Table("service", data)
    shutdown = _seconds("service.shutdown_timeout", t.pop("shutdown_timeout", 20.0), hi=3600, positive=False)
    reattach = _seconds("service.reattach_timeout", t.pop("reattach_timeout", 15.0), hi=3600)
    report = _seconds("service.dial_report_timeout", t.pop("dial_report_timeout", 60.0), lo=1.0, hi=3600)
    level = t.pop("log_level", "info")
    if level not in LOG_LEVELS:
        raise InvalidInput(f"service.log_level must be one of {LOG_LEVELS!r}, got {level!r}")
    t.done()
    return ServiceOptions(shutdown, reattach, report, level)


# ------------------------------------------------------------------ [queue_log] (outputs/queue_log.py)

def _queue_log(data: object, base: Optional[Path]) -> Optional[str]:
    if data is None:
        return None
    t = _Table("queue_log", data)
    path = _str("queue_log.path", t.pop("path"))
    t.done()
    if base is not None and not os.path.isabs(path):
        path = str(base / path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InvalidInput(f"queue_log.path {path!r}: its directory {folder!r} does not exist")
    if os.path.isdir(path):
        raise InvalidInput(f"queue_log.path {path!r} is a directory, not a file")
    return path


# ------------------------------------------------------------------ [webhooks] (outputs/webhooks.py)

#: event types a [webhooks] endpoint may subscribe to (docs/webhooks.md)
WEBHOOK_EVENTS = ("callback.accepted", "callback.scheduled", "callback.dialled", "callback.reached",
                  "callback.failed")


@dataclass(frozen=True)
class WebhooksConfig:
    url: str
    secret: str = dataclasses.field(default="", repr=False)
    events: Tuple[str, ...] = WEBHOOK_EVENTS
    timeout: float = 10.0
    backoff: float = 1.0
    max_backoff: float = 300.0
    max_age: float = 86400.0


def _webhook_url(value: object) -> str:
    from urllib.parse import urlsplit
    url = _str("webhooks.url", value)
    try:
        parts = urlsplit(url)
        port = parts.port                      # ValueError when out of range or not a number
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"webhooks.url must be an http:// or https:// URL with a host, got {url!r}")
    if parts.username is not None or parts.password is not None or parts.fragment or port == 0:
        # credentials in a URL end up in logs; the HMAC secret authenticates the sender instead
        shown = f"{parts.scheme}://...@{parts.hostname}" if parts.username is not None else url
        raise InvalidInput(f"webhooks.url must not hold user:password@, a #fragment or port 0, got {shown!r}")
    return url


def _webhooks(data: object) -> Optional[WebhooksConfig]:
    if data is None:
        return None
    t = _Table("webhooks", data)
    url = _webhook_url(t.pop("url"))
    secret = t.pop("secret")
    if not isinstance(secret, str) or not 16 <= len(secret) <= 256 or not secret.isprintable():
        raise InvalidInput("webhooks.secret must be a str of 16 to 256 printable characters "
                           f"(got {len(secret) if isinstance(secret, str) else type(secret).__name__!s})")
    events = _str_list("webhooks.events", t.pop("events", list(WEBHOOK_EVENTS)), _str)
    for e in events:
        if e not in WEBHOOK_EVENTS:
            raise InvalidInput(f"webhooks.events names an unknown event {e!r} (known: {', '.join(WEBHOOK_EVENTS)})")
    if not events or len(set(events)) != len(events):
        raise InvalidInput(f"webhooks.events must list each event at most once, and at least one, got {list(events)!r}")
    timeout = _seconds("webhooks.timeout", t.pop("timeout", 10.0), hi=300)
    backoff = _seconds("webhooks.backoff", t.pop("backoff", 1.0), hi=3600)
    max_backoff = _seconds("webhooks.max_backoff", t.pop("max_backoff", 300.0), hi=86400)
    max_age = _seconds("webhooks.max_age", t.pop("max_age", 86400.0), hi=30 * 86400)
    t.done()
    if max_backoff < backoff:
        raise InvalidInput(f"webhooks.max_backoff must be at least webhooks.backoff ({backoff:g}), got {max_backoff!r}")
    return WebhooksConfig(url, secret, events, timeout, backoff, max_backoff, max_age)


# ------------------------------------------------------------------ [survey] (survey.py)

@dataclass(frozen=True)
class SurveyConfig:
    enabled: bool = False
    share: float = 1.0
    question: str = "acd-survey-question"
    solved: bool = False
    solved_question: str = "acd-survey-solved"
    invalid: str = "acd-survey-invalid"
    thanks: str = "acd-survey-thanks"
    timeout: float = 5.0
    retries: int = 1


def _survey(data: object) -> SurveyConfig:
    t = _Table("survey", data)
    enabled = _bool("survey.enabled", t.pop("enabled", False))
    share = t.pop("share", 1.0)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
        raise InvalidInput(f"survey.share must be a number in 0..1 (the share of answered calls asked), got {share!r}")
    sound = "a sound file name without extension (letters, digits, '_', '-', '.', '/')"
    prompts = {k: _str(f"survey.{k}", t.pop(k, getattr(SurveyConfig, k)), pattern=_SOUND, what=sound)
               for k in ("question", "solved_question", "invalid", "thanks")}
    solved = _bool("survey.solved", t.pop("solved", False))
    timeout = _seconds("survey.timeout", t.pop("timeout", 5.0), hi=60)
    retries = _int("survey.retries", t.pop("retries", 1), 0, 3)
    t.done()
    return SurveyConfig(enabled, float(share), prompts["question"], solved, prompts["solved_question"],
                        prompts["invalid"], prompts["thanks"], timeout, retries)


# ------------------------------------------------------------------ [preferred] (last_agent.py)

@dataclass(frozen=True)
class PreferredConfig:
    remember: float = 7 * 86400.0   # seconds a caller number's last agent is kept (0: not remembered)
    wait: float = 60.0              # default hold for the preferred agents (enqueue's preferred_for)


def _preferred(data: object) -> PreferredConfig:
    t = _Table("preferred", data)
    remember = _seconds("preferred.remember", t.pop("remember", PreferredConfig.remember), hi=366 * 86400.0,
                        positive=False)
    wait = _seconds("preferred.wait", t.pop("wait", PreferredConfig.wait), hi=3600.0)
    t.done()
    return PreferredConfig(remember, wait)


def config_from_dict(data: Mapping[str, Any], *, base_dir: Optional[os.PathLike[str] | str] = None,
                     source: Optional[str] = None) -> ServiceConfig:
    """Validate parsed TOML (a dict) into a :class:`ServiceConfig`.

    ``base_dir``: directory relative journal paths are resolved against.
    """
    t = _Table("", data)
    skills_in = t.pop("skills", [])
    skills = _str_list("skills", skills_in, check_name)
    if len(set(skills)) != len(skills):
        raise InvalidInput(f"skills lists a skill twice: {list(skills)!r}")
    engine = _engine(t.pop("engine", {}))
    queues = _queues(t.pop("queues", None))
    declared = set(skills) | {s for q in queues for s in q.skills}
    agents = _agents(t.pop("agents", []), {q.name for q in queues}, declared)
    base = Path(base_dir) if base_dir is not None else None
    cfg = ServiceConfig(
        queues=queues, skills=skills, engine=engine, agents=agents,
        fastagi=_fastagi(t.pop("fastagi", {})), ami=_ami(t.pop("ami", {})),
        callback=_callback(t.pop("callback", {})), journal=_journal(t.pop("journal", {}), base),
        ha=_ha(t.pop("ha", {})), http=_http(t.pop("http", {})), prompts=_prompts(t.pop("prompts", {})),
        service=_service(t.pop("service", {})), webhooks=_webhooks(t.pop("webhooks", None)),
        queue_log=_queue_log(t.pop("queue_log", None), base),
        schedules=schedules_by_queue("schedules", t.pop("schedules", []), [q.name for q in queues]),
        survey=_survey(t.pop("survey", {})), preferred=_preferred(t.pop("preferred", {})), source=source)
    t.done()
    return cfg


def load_config(path: os.PathLike[str] | str) -> ServiceConfig:
    """Read and validate the TOML file at ``path`` (raises InvalidInput)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise InvalidInput(f"cannot read config {str(p)!r}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidInput(f"config {str(p)!r} is not valid TOML: {e}") from None
    try:
        return config_from_dict(data, base_dir=p.resolve().parent, source=str(p))
    except InvalidInput as e:
        raise InvalidInput(f"{p}: {e}") from None
