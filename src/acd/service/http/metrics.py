"""``/metrics``: the service status in the Prometheus text format (version 0.0.4).

Counters derived from the journal (queue counters, service levels, decisions,
commands, call-backs) are rebuilt at start-up, so they never go back across
a restart; the few counted by this process only (refused commands, AGI
sessions, journal write failures, AMI logins) say so in their help text, and
``acd_process_start_time_seconds`` tells a scraper when they were reset.
Every name, type and meaning is listed in docs/metrics.md.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

__all__ = ("render_metrics",)

def _num(v: Any) -> str:
    if v is None:
        return "NaN"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
        if math.isnan(v):
            return "NaN"
        return repr(v)
    return str(v)


def _label(v: Any) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Metrics:
    def __init__(self) -> None:
        self.out: List[str] = []

    def family(self, name: str, kind: str, help_: str, samples: Iterable[Tuple[Mapping[str, Any], Any]]) -> None:
        self.out.append(f"# HELP {name} {help_}")
        self.out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
                self.out.append(f"{name}{{{text}}} {_num(value)}")
            else:
                self.out.append(f"{name} {_num(value)}")

    def histogram(self, name: str, help_: str,
                  series: Iterable[Tuple[Mapping[str, Any], Sequence[Tuple[float, int]], float, int]]) -> None:
        """A histogram family: per labels, cumulative ``(le, count)`` pairs ending with +Inf, sum, count."""
        self.out.append(f"# HELP {name} {help_}")
        self.out.append(f"# TYPE {name} histogram")
        for labels, buckets, total, count in series:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            sep = "," if text else ""
            for le, n in buckets:
                self.out.append(f'{name}_bucket{{{text}{sep}le="{_num(float(le))}"}} {n}')
            braces = f"{{{text}}}" if text else ""
            self.out.append(f"{name}_sum{braces} {_num(float(total))}")
            self.out.append(f"{name}_count{braces} {count}")

    def text(self) -> str:
        return "\n".join(self.out) + "\n"


_QUEUE_COUNTERS = (("entered", "calls that entered the queue"),
                   ("answered", "calls answered by an agent"),
                   ("abandoned", "callers who hung up while waiting"),
                   ("exited", "calls that left unanswered (max wait, failed call-back)"),
                   ("overflowed", "calls moved to another queue"),
                   ("withdrawn", "calls ended by the service, not by the caller (outage, drain, supervisor)"))
_AGENT_STATES = ("available", "reserved", "busy", "wrap_up", "paused")


def render_metrics(status: Mapping[str, Any]) -> str:
    """Prometheus exposition text for :meth:`Dispatcher.status`."""
    m = _Metrics()
    queues: Mapping[str, Any] = status["queues"]
    m.family("acd_queue_waiting", "gauge", "Calls in line (live callers and call-backs).",
             (({"queue": q}, d["waiting"]) for q, d in queues.items()))
    m.family("acd_queue_oldest_wait_seconds", "gauge", "Wait of the longest-waiting call in line.",
             (({"queue": q}, d["oldest_wait"]) for q, d in queues.items()))
    m.family("acd_queue_estimated_wait_seconds", "gauge", "Estimated wait of a caller joining now (+Inf: no agent).",
             (({"queue": q}, _inf(d["ewt"])) for q, d in queues.items()))
    for key, help_ in _QUEUE_COUNTERS:
        m.family(f"acd_queue_{key}_total", "counter", help_[0].upper() + help_[1:] + ".",
                 (({"queue": q}, d[key]) for q, d in queues.items()))
    m.family("acd_queue_answered_within_target_total", "counter",
             "Calls answered within the queue's service-level seconds (rebuilt from the journal: survives restarts).",
             (({"queue": q}, d["service_level"]["answered_within"]) for q, d in queues.items()))
    m.family("acd_queue_service_level_target_seconds", "gauge", "Service-level target: answer within this many seconds.",
             (({"queue": q}, d["service_level"]["seconds"]) for q, d in queues.items()))
    m.family("acd_queue_service_level_target_ratio", "gauge",
             "Service-level target: this fraction of calls answered within the target seconds.",
             (({"queue": q}, d["service_level"]["fraction"]) for q, d in queues.items()))
    m.family("acd_queue_service_level_ratio", "gauge",
             "Service level achieved since the journal began: answered within the target seconds over answered "
             "+ abandoned (NaN before any).",
             (({"queue": q}, d["service_level"]["measured"]) for q, d in queues.items()))
    m.histogram("acd_queue_wait_seconds",
                "Waits of live callers, from entering the line to an agent's answer or the caller's hang-up "
                "(rebuilt from the journal); a bucket sits at the queue's service-level seconds.",
                _wait_series(queues))
    m.family("acd_queue_callbacks_total", "counter",
             "Call-back events by kind (dialled = reached + failed + being dialled).",
             (({"queue": q, "event": k}, v) for q, d in queues.items() for k, v in d["callbacks"].items()
              if k != "pending"))
    m.family("acd_queue_callbacks_pending", "gauge", "Call-backs accepted and not yet dialled back.",
             (({"queue": q}, d["callbacks"].get("pending", 0)) for q, d in queues.items()))
    m.family("acd_queue_agents", "gauge", "Agents serving the queue, by state.",
             (({"queue": q, "state": s}, d["agents"].get(s, 0)) for q, d in queues.items() for s in _AGENT_STATES))
    agents: Mapping[str, Any] = status["agents"]
    counts = {s: 0 for s in _AGENT_STATES}
    for a in agents.values():
        counts[a["state"]] = counts.get(a["state"], 0) + 1
    m.family("acd_agents", "gauge", "Logged-in agents by state.", (({"state": s}, n) for s, n in counts.items()))
    svc = status["service"]
    m.family("acd_decisions_total", "counter", "Engine decisions by kind (rebuilt from the journal).",
             (({"kind": k}, v) for k, v in sorted(svc["decisions"].items())))
    m.family("acd_commands_total", "counter", "Engine commands journaled, by command (rebuilt from the journal).",
             (({"command": k}, v) for k, v in sorted(svc["commands"].items())))
    m.family("acd_command_errors_total", "counter", "Engine commands refused, by command (since this process started).",
             (({"command": k}, v) for k, v in sorted(svc["command_errors"].items())))
    m.family("acd_engine_time_seconds", "gauge", "Engine clock (seconds of service operation).",
             [({}, status["now"])])
    m.family("acd_uptime_seconds", "gauge", "Seconds since this process started serving.", [({}, svc["uptime"])])
    fa = svc["fastagi"]
    m.family("acd_fastagi_sessions_active", "gauge", "AGI sessions in progress.", [({}, fa["active"])])
    m.family("acd_fastagi_sessions_total", "counter",
             "AGI connections by how they ended, each counted once (since this process started).",
             (({"outcome": k}, v) for k, v in fa["outcomes"].items()))
    m.family("acd_fastagi_errors_total", "counter",
             "ACD_ERROR codes, at most one per connection (since this process started).",
             (({"code": k}, v) for k, v in sorted(fa["by_code"].items())))
    ami = svc["ami"]
    m.family("acd_ami_connected", "gauge", "1 when logged in to the Asterisk manager.",
             [({}, ami["connected"])])
    m.family("acd_ami_logins_total", "counter",
             "Successful logins to the Asterisk manager, the first and each reconnection (since this process "
             "started).", [({}, ami.get("logins", 0))])
    m.family("acd_ami_last_login_timestamp_seconds", "gauge",
             "Unix time of the last login to the Asterisk manager (NaN before the first).",
             [({}, ami.get("last_login_unix"))])
    m.family("acd_dialbacks_in_progress", "gauge", "Call-backs being dialled right now.",
             [({}, svc["dialbacks_in_progress"])])
    m.family("acd_callbacks_in_doubt", "gauge",
             "Call-backs whose agent leg may still be ringing in Asterisk (looked up before any retry).",
             [({}, svc["callbacks_in_doubt"])])
    journal = svc["journal"]
    m.family("acd_journal_up", "gauge", "1 while the journal accepts writes (commands are refused otherwise).",
             [({}, journal["up"])])
    m.family("acd_journal_records", "gauge", "Records in the journal (its last seq).", [({}, journal["last_seq"])])
    m.family("acd_journal_write_failures_total", "counter",
             "Journal writes that failed (since this process started).", [({}, journal.get("write_failures", 0))])
    m.family("acd_journal_last_write_timestamp_seconds", "gauge",
             "Unix time this process last made a journal record durable (NaN before its first write).",
             [({}, journal.get("last_write_unix"))])
    ha = svc["ha"]
    m.family("acd_ha_role", "gauge", "1 for this node's role (primary, standby, deposed); a node on a file "
             "journal is primary.", (({"role": r}, ha["role"] == r) for r in ("primary", "standby", "deposed")))
    m.family("acd_ha_epoch", "gauge", "Epoch (fencing token) this node leads with; 0 when it does not lead.",
             [({}, ha["epoch"] or 0)])
    m.family("acd_journal_lag_seconds", "gauge", "Seconds since this node last held every durable journal "
             "record (0 on the primary; +Inf before a standby first caught up).",
             [({}, float("inf") if ha["lag"] is None else ha["lag"])])
    m.family("acd_service_draining", "gauge", "1 while the service drains before stopping (new calls refused).",
             [({}, svc["state"] == "draining")])
    m.family("acd_process_start_time_seconds", "gauge", "Start time of this process (Unix time).",
             [({}, svc["started_unix"])])
    _webhook_metrics(m, svc.get("webhooks"))
    return m.text()


def _webhook_metrics(m: _Metrics, hooks: Optional[Mapping[str, Any]]) -> None:
    """[webhooks] (outputs/webhooks.py); absent when the table is not configured."""
    if not hooks:
        return
    m.family("acd_webhook_events_total", "counter", "Webhook events settled, by outcome: delivered (2xx) or "
             "gave_up (refused with a 4xx, or older than max_age); rebuilt from the journal.",
             (({"outcome": k}, hooks[k]) for k in ("delivered", "gave_up")))
    m.family("acd_webhook_pending", "gauge", "Webhook events not delivered yet (the journal is the outbox).",
             [({}, hooks["pending"])])
    m.family("acd_webhook_attempts_total", "counter", "Webhook POSTs made (since this process started).",
             [({}, hooks["attempts"])])
    m.family("acd_webhook_retries_total", "counter", "Webhook POSTs that failed and were retried: connection "
             "error, time-out, 408, 429, 5xx (since this process started).", [({}, hooks["retries"])])
    m.family("acd_webhook_sending", "gauge", "1 while this node sends webhooks (it serves calls).",
             [({}, hooks["sending"])])


def _inf(v: Optional[float]) -> float:
    return math.inf if v is None else v


_Series = Tuple[Mapping[str, Any], List[Tuple[float, int]], float, int]


def _wait_series(queues: Mapping[str, Any]) -> Iterator[_Series]:
    for q, d in queues.items():
        for outcome, h in d.get("waits", {}).items():
            buckets = list(zip(h["le"], h["cumulative"])) + [(math.inf, h["count"])]
            yield {"queue": q, "outcome": outcome}, buckets, h["sum"], h["count"]


