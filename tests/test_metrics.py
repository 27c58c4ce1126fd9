"""``/metrics``: the wait histograms agree with acd.kpi, survive a restart, and the exposition parses."""

from __future__ import annotations

import math
import re
from typing import Dict, List, Tuple

import numpy as np
import pytest

import acd.sim.simulator as simulator
from acd import kpi
from acd.journal import JournaledEngine, SqliteJournal
from acd.journal.calls import CallLog, replay_journal
from acd.service import Dispatcher
from acd.service.counters import WAIT_BUCKETS, Counters
from acd.sim import bundled_scenario
from acd.sim._reference_loop import ReferenceLoop
from fakes.channel import FakeChannel, agi
from service_support import http_get, make_config, run, state, until

# ------------------------------------------------------------ a strict parser (text format 0.0.4)

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\["\\n])*)"(,|$)')
_KINDS = ("counter", "gauge", "histogram", "summary", "untyped")

Labels = Tuple[Tuple[str, str], ...]


def parse_exposition(text: str) -> Tuple[Dict[str, str], Dict[Tuple[str, Labels], float]]:
    """Family kinds and samples; AssertionError on anything a strict scraper would refuse:
    a sample outside its declared family, a TYPE after samples, duplicate series or labels,
    a value that is no float, a histogram whose buckets are not cumulative or lack +Inf."""
    assert text.endswith("\n")
    kinds: Dict[str, str] = {}
    samples: Dict[Tuple[str, Labels], float] = {}
    family = None
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert re.fullmatch(_NAME, name) and name not in kinds, line
            family = name
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == family and kind in _KINDS and name not in kinds, line
            kinds[name] = kind
            continue
        assert not line.startswith("#") and line, repr(line)
        m = _SAMPLE.match(line)
        assert m, line
        name, body, value = m.groups()
        assert family is not None and family in kinds, line
        suffixes = ("_bucket", "_sum", "_count") if kinds[family] == "histogram" else ("",)
        assert any(name == family + s for s in suffixes), f"{name} outside family {family}"
        labels: List[Tuple[str, str]] = []
        rest = body or ""
        while rest:
            lm = _LABEL.match(rest)
            assert lm, line
            labels.append((lm.group(1), lm.group(2)))
            rest = rest[lm.end():]
        assert len({k for k, _ in labels}) == len(labels), line
        key = (name, tuple(sorted(labels)))
        assert key not in samples, f"duplicate series {line}"
        samples[key] = float(value)   # accepts NaN, +Inf, -Inf as Prometheus does
    for name, kind in kinds.items():
        if kind == "histogram":
            check_histogram(name, samples)
    return kinds, samples


def check_histogram(name: str, samples: Dict[Tuple[str, Labels], float]) -> None:
    series: Dict[Labels, List[Tuple[float, float]]] = {}
    for (n, labels), v in samples.items():
        if n == name + "_bucket":
            le = dict(labels)["le"]
            rest = tuple(kv for kv in labels if kv[0] != "le")
            series.setdefault(rest, []).append((float(le), v))
    for rest, buckets in series.items():
        buckets.sort()
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), f"{name}{rest}: buckets not cumulative"
        assert buckets[-1][0] == math.inf and buckets[-1][1] == samples[(name + "_count", rest)]
        assert (name + "_sum", rest) in samples


# ------------------------------------------------------------ a simulated day through a journal


def _simulated_day(path: str, monkeypatch, name: str, scale: float) -> None:
    """The simulator's reference loop drives a JournaledEngine: the journal holds the commands a
    service would have written for the same calls (answers, ring-no-answers, abandons, overflows)."""
    def engine(**options):
        return JournaledEngine(SqliteJournal(path, sync="normal"), **options)

    engine.accept_callback = True
    monkeypatch.setattr(simulator, "Engine", engine)
    sc = bundled_scenario(name).scaled(scale).with_callback(False)
    simulator._run(sc, 11, callback_policy=None, callback_mode="auto", progress=None, sample_every=60.0,
                   record_agents=False, loop=ReferenceLoop)
    monkeypatch.undo()


def _replay(path: str) -> Tuple[Counters, CallLog]:
    counters = Counters()
    journal = SqliteJournal(path)
    try:
        def both(engine):
            log = CallLog()

            def observe(seq, op, args, decisions):
                counters.apply(seq, op, args, decisions)
                log(seq, op, args, decisions)
            observe.log = log
            return observe
        return counters, replay_journal(journal, both).log
    finally:
        journal.close()


def _check(hists, waits: np.ndarray, kpi_count: int, kpi_mean: float) -> None:
    """Histograms (summed over queues) against the same calls' waits as acd.kpi measures them."""
    count = sum(h.count for h in hists)
    total = sum(h.sum for h in hists)
    assert count == len(waits) == kpi_count > 0
    assert math.isclose(total, float(np.sum(waits)), rel_tol=1e-12)
    assert math.isclose(total / count, kpi_mean, rel_tol=1e-12)
    for h in hists:
        cum = h.cumulative()
        assert [n for _, n in cum] == sorted(n for _, n in cum) and cum[-1] == (math.inf, h.count)
    for le in hists[0].bounds:   # every bucket, not only the threshold's
        assert sum(h.at_most(le) for h in hists) == int(np.sum(waits <= le))


@pytest.mark.parametrize("name, scale", [("small_helpdesk", 0.5), ("public_agency", 0.03)])
def test_wait_histogram_of_a_day_equals_kpi(tmp_path, monkeypatch, name, scale):
    path = str(tmp_path / "day.sqlite3")
    _simulated_day(path, monkeypatch, name, scale)
    counters, log = _replay(path)
    rec = log.records()
    assert log.open_calls == 0 and len(rec) > 50
    seconds = {counters.targets[q][1] for q in log.queue_names}
    assert len(seconds) == 1   # both scenarios: one threshold, so kpi's "all" has the same one
    threshold = seconds.pop()
    summary = kpi.summary(rec, log.queue_names, sl_threshold=threshold)
    answered = rec[rec["outcome"] == kpi.OUTCOMES.index("answered")]
    abandoned = rec[rec["outcome"] == kpi.OUTCOMES.index("abandoned")]
    ans = [counters.waits[q, "answered"] for q in log.queue_names]
    ab = [counters.waits[q, "abandoned"] for q in log.queue_names]
    assert all(threshold in h.bounds and set(WAIT_BUCKETS) <= set(h.bounds) for h in ans + ab)
    _check(ans, answered["answered"] - answered["arrival"], summary["all"]["answered"], summary["all"]["asa"])
    _check(ab, abandoned["ended"] - abandoned["arrival"], summary["all"]["abandoned"],
           summary["all"]["mean_abandon_wait"])
    assert sum(h.at_most(threshold) for h in ans) == summary["all"]["answered_within"] == \
        sum(counters.sl[q].within for q in log.queue_names)
    if not rec["overflowed"].any():   # per queue too (with overflows the histogram counts in the answering
        for q in log.queue_names:     # queue, as acd_queue_answered_total does; kpi in the entry queue)
            assert counters.waits[q, "answered"].at_most(threshold) == summary[q]["answered_within"]
            assert counters.waits[q, "answered"].count == summary[q]["answered"]
            assert counters.waits[q, "abandoned"].count == summary[q]["abandoned"]
    else:
        assert name == "small_helpdesk"


# ------------------------------------------------------------ the service: exposition and restart


def _histogram_samples(samples: Dict[Tuple[str, Labels], float]) -> Dict[Tuple[str, Labels], float]:
    return {k: v for k, v in samples.items() if k[0].startswith("acd_queue_wait_seconds")}


def test_wait_histogram_survives_a_restart_and_the_exposition_parses(tmp_path):
    async def scrape(d: Dispatcher) -> Tuple[Dict[str, str], Dict[Tuple[str, Labels], float]]:
        status, _, body = await http_get(d.http_port, "/metrics")
        assert status == 200
        return parse_exposition(body.decode())

    async def main() -> None:
        cfg = make_config(tmp_path, queue={"service_level": [0.9, 45]})
        d = Dispatcher(cfg)
        await d.start()
        port = d.fastagi_port
        try:
            await agi(port, "agent_login?agent=1001")
            for i in range(2):
                await agi(port, "enqueue?queue=support", uniqueid=f"1700000009.{i}")
                await agi(port, "dial_result?status=ANSWER", uniqueid=f"1700000009.{i}")
                await agi(port, "call_end", uniqueid=f"1700000009.{i}")
            await agi(port, "agent_logout?agent=1001")
            ch = await FakeChannel(port, "enqueue?queue=support", uniqueid="1700000009.9").start()
            await until(lambda: state(d, "1700000009.9") == "waiting", what="waiting")
            await ch.hangup()
            await ch.done()
            await until(lambda: state(d, "1700000009.9") is None, what="abandoned")
            kinds, before = await scrape(d)
        finally:
            await d.stop()
        assert kinds["acd_queue_wait_seconds"] == "histogram"
        lbl = (("outcome", "answered"), ("queue", "support"))
        assert before[("acd_queue_wait_seconds_count", lbl)] == 2
        assert before[("acd_queue_wait_seconds_bucket", tuple(sorted(lbl + (("le", "45.0"),))))] == 2
        assert before[("acd_queue_wait_seconds_count", (("outcome", "abandoned"), ("queue", "support")))] == 1
        assert before[("acd_queue_service_level_target_ratio", (("queue", "support"),))] == 0.9
        assert before[("acd_queue_service_level_target_seconds", (("queue", "support"),))] == 45
        assert before[("acd_queue_service_level_ratio", (("queue", "support"),))] == 2 / 3
        assert before[("acd_journal_up", ())] == 1 and before[("acd_journal_write_failures_total", ())] == 0
        assert before[("acd_journal_last_write_timestamp_seconds", ())] > 1.6e9
        assert math.isnan(before[("acd_ami_last_login_timestamp_seconds", ())])
        sessions = {dict(k[1])["outcome"]: v for k, v in before.items() if k[0] == "acd_fastagi_sessions_total"}
        # 9 AGI connections: login, 2 x (enqueue, dial_result, call_end), logout, the abandoned enqueue
        assert sum(sessions.values()) == 9 and sessions["completed"] == 8 and sessions["hung_up"] == 1

        d2 = Dispatcher(cfg)
        await d2.start()
        try:
            _, after = await scrape(d2)
        finally:
            await d2.stop()
        assert _histogram_samples(after) == _histogram_samples(before) and _histogram_samples(before)

    run(main())
