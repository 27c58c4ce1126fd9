"""Webhooks of call-backs: signed POSTs from the journal (the outbox) to a loopback receiver."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, List

import pytest

from acd.errors import InvalidInput
from acd.service import Dispatcher
from acd.service.outputs.webhooks import NOTE_DELIVERED, NOTE_GAVE_UP, sign, verify
from fakes.ami import FakeAMI
from fakes.channel import FakeChannel, agi
from fakes.webhook import WebhookReceiver
from service_support import http_get, make_config, run, state, until

SECRET = "0123456789abcdef-secret"


def hooks(port: int, **kw: Any) -> Any:
    # back-off in milliseconds: the tests stay fast, the policy is the same
    return {"url": f"http://127.0.0.1:{port}/hooks/acd?site=1", "secret": SECRET, "timeout": 1.0,
            "backoff": 0.01, "max_backoff": 0.05, **kw}


def notes(d: Dispatcher, kind: str) -> List[Any]:
    return [args[1] for _, op, args in d.engine.journal.records() if op == "note" and args[0] == kind]


async def free_port() -> int:
    """A port nothing listens on (the receiver starts on it later: 'down, then up')."""
    r = await WebhookReceiver(SECRET).start()
    port = r.port
    await r.stop()
    return port


# ------------------------------------------------------------------ config

@pytest.mark.parametrize("table,message", [
    ({"url": "ftp://x.example/", "secret": SECRET}, "webhooks.url must be an http:// or https:// URL"),
    ({"url": "https://u:pw@x.example/", "secret": SECRET}, "must not hold user:password@"),
    ({"url": "https://x.example/"}, "webhooks.secret is required"),
    ({"url": "https://x.example/", "secret": "short"}, "webhooks.secret must be a str of 16 to 256"),
    ({"url": "https://x.example/", "secret": SECRET, "events": ["callback.sent"]}, "unknown event 'callback.sent'"),
    ({"url": "https://x.example/", "secret": SECRET, "timeout": 0}, "webhooks.timeout must be a positive"),
    ({"url": "https://x.example/", "secret": SECRET, "backoff": 9, "max_backoff": 1},
     "webhooks.max_backoff must be at least"),
    ({"url": "https://x.example/", "secret": SECRET, "retries": 3}, "unknown field(s) in webhooks"),
])
def test_config_errors_name_the_field(tmp_path, table, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_config(tmp_path, webhooks=table)
    assert "pw" not in str(pytest.raises(InvalidInput, make_config, tmp_path,
                                         webhooks={"url": "https://u:pw@x.example/", "secret": SECRET}).value)


def test_no_table_no_webhooks(tmp_path):
    cfg = make_config(tmp_path)
    assert cfg.webhooks is None and Dispatcher(cfg).webhooks is None
    full = make_config(tmp_path, webhooks={"url": "https://sms.example/acd", "secret": SECRET,
                                           "events": ["callback.accepted"]})
    assert full.webhooks.events == ("callback.accepted",) and SECRET not in repr(full)


def test_sign_and_verify():
    body = b'{"id":"x"}'
    sig = sign(SECRET, "1700000000", body)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify(SECRET, "1700000000", body, sig, now=1700000100)
    assert not verify(SECRET, "1700000000", body + b" ", sig, now=1700000100)        # body changed
    assert not verify("another-secret-0000", "1700000000", body, sig, now=1700000100)
    assert not verify(SECRET, "1700000000", body, sig, now=1700001000)               # too old: replayed


# ------------------------------------------------------------------ delivery

def test_scheduled_event_is_signed_and_carries_the_call_back(tmp_path):
    async def main() -> None:
        rx = await WebhookReceiver(SECRET).start()
        d = Dispatcher(make_config(tmp_path, webhooks=hooks(rx.port)))
        await d.start()
        try:
            t0 = time.time()
            d.schedule_callback("c1", "support", 3600.0, "+33612345678")
            await until(lambda: d.webhooks.outbox.delivered == 1, what="delivery")
            headers, body, status = rx.requests[0]
            assert rx.bad_signatures == 0 and status == 200
            ev = json.loads(body)
            jid = d.engine.journal.journal_id
            [seq] = [s for s, op, _ in d.engine.journal.records() if op == "schedule_callback"]
            assert ev["id"] == f"{jid}-{seq}-0" == headers["x-acd-event-id"]
            assert ev["type"] == "callback.scheduled" == headers["x-acd-event-type"]
            assert (ev["call"], ev["queue"], ev["number"], ev["attempts"]) == ("c1", "support", "+33612345678", 0)
            assert abs(ev["occurred_at"] - t0) < 2 and abs(ev["scheduled_for"] - (t0 + 3600)) < 2
            assert headers["content-type"] == "application/json"
            assert abs(int(headers["x-acd-timestamp"]) - t0) < 2
            assert notes(d, NOTE_DELIVERED) == [{"seq": seq, "k": 0, "id": ev["id"], "status": 200}]
            assert not d.webhooks.outbox.pending
            st = d.status()["service"]["webhooks"]
            assert (st["delivered"], st["pending"], st["gave_up"], st["retries"]) == (1, 0, 0, 0)
            _, _, text = await http_get(d.http_port, "/metrics")
            assert b'acd_webhook_events_total{outcome="delivered"} 1' in text
            assert b"acd_webhook_pending 0" in text and b"acd_webhook_sending 1" in text
        finally:
            await d.stop()
            await rx.stop()

    run(main())


def test_receiver_down_is_retried_with_back_off_then_delivered_once(tmp_path):
    async def main() -> None:
        port = await free_port()
        d = Dispatcher(make_config(tmp_path, webhooks=hooks(port)))
        await d.start()
        rx = WebhookReceiver(SECRET)
        try:
            d.schedule_callback("c1", "support", 600.0, "0611111111")
            await until(lambda: d.webhooks.sender.stats.retries >= 3, what="retries while down")
            assert d.webhooks.sender.stats.last_error is not None
            await rx.start(port)
            await until(lambda: rx.accepted, what="delivery once up")
            await asyncio.sleep(0.1)
            assert len(rx.requests) == 1 and rx.bad_signatures == 0
            assert d.webhooks.outbox.delivered == 1 and not d.webhooks.outbox.pending
        finally:
            await d.stop()
            await rx.stop()

    run(main())


def test_back_off_doubles_with_jitter_up_to_the_cap(tmp_path):
    d = Dispatcher(make_config(tmp_path, webhooks=hooks(9, backoff=1.0, max_backoff=8.0)))
    s = d.webhooks.sender
    for failures, full in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [s.delay(failures) for _ in range(50)]
        assert all(full / 2 <= x <= full for x in delays) and len(set(delays)) > 1
    assert s.delay(1, retry_after=5.0) == 5.0 and s.delay(1, retry_after=60.0) == 8.0


def test_slow_receiver_500_and_429_are_retried(tmp_path):
    async def main() -> None:
        rx = await WebhookReceiver(SECRET, delays=[0.5], statuses=[200, 500, (429, {"Retry-After": "0"}), 503]).start()
        d = Dispatcher(make_config(tmp_path, webhooks=hooks(rx.port, timeout=0.2)))
        await d.start()
        try:
            d.schedule_callback("c1", "support", 600.0, "0611111111")
            await until(lambda: d.webhooks.outbox.delivered == 1, what="delivered at the 5th attempt")
            # the first answer came after the time-out: the sender had left (a retry, same event)
            assert [s for _, _, s in rx.requests][1:] == [500, 429, 503, 200]
            assert len({h["x-acd-event-id"] for h, _, _ in rx.requests}) == 1
            assert len({b for _, b, _ in rx.requests}) == 1                      # the same bytes each time
            assert [h["x-acd-attempt"] for h, _, _ in rx.requests] == ["1", "2", "3", "4", "5"]
            assert d.webhooks.sender.stats.retries == 4
        finally:
            await d.stop()
            await rx.stop()

    run(main())


def test_4xx_is_given_up_journaled_and_the_next_event_goes_on(tmp_path):
    async def main() -> None:
        rx = await WebhookReceiver(SECRET, statuses=[400]).start()
        cfg = make_config(tmp_path, webhooks=hooks(rx.port))
        d = Dispatcher(cfg)
        await d.start()
        try:
            d.schedule_callback("c1", "support", 600.0, "0611111111")
            d.schedule_callback("c2", "support", 600.0, "0622222222")
            await until(lambda: d.webhooks.outbox.delivered == 1, what="second delivered")
            assert [e["call"] for e in rx.events] == ["c1", "c2"]
            assert d.webhooks.outbox.gave_up == 1
            [gave_up] = notes(d, NOTE_GAVE_UP)
            assert gave_up["reason"] == "refused" and gave_up["status"] == 400
        finally:
            await d.stop()
        d2 = Dispatcher(cfg)                   # the given-up event is not retried after a restart
        await d2.start()
        try:
            assert not d2.webhooks.outbox.pending
            assert (d2.webhooks.outbox.delivered, d2.webhooks.outbox.gave_up) == (1, 1)   # from the journal
            await asyncio.sleep(0.1)
            assert len(rx.requests) == 2
        finally:
            await d2.stop()
            await rx.stop()

    run(main())


def test_too_old_is_given_up_and_not_retried_after_a_restart(tmp_path):
    async def main() -> None:
        port = await free_port()
        cfg = make_config(tmp_path, webhooks=hooks(port, max_age=0.2))
        d = Dispatcher(cfg)
        await d.start()
        try:
            d.schedule_callback("c1", "support", 600.0, "0611111111")
            await until(lambda: d.webhooks.outbox.gave_up == 1, what="given up")
            assert notes(d, NOTE_GAVE_UP)[0]["reason"] == "max_age"
        finally:
            await d.stop()
        rx = await WebhookReceiver(SECRET).start(port)
        d2 = Dispatcher(cfg)
        await d2.start()
        try:
            await asyncio.sleep(0.1)
            assert not rx.requests and not d2.webhooks.outbox.pending
        finally:
            await d2.stop()
            await rx.stop()

    run(main())


def test_pending_events_survive_a_restart_and_are_never_sent_twice(tmp_path):
    async def main() -> None:
        port = await free_port()
        cfg = make_config(tmp_path, webhooks=hooks(port))
        d = Dispatcher(cfg)
        await d.start()
        try:
            for i in range(3):
                d.schedule_callback(f"c{i}", "support", 600.0 + i, f"061111111{i}")
            await until(lambda: d.webhooks.sender.stats.retries >= 1, what="receiver down")
            ids = [f"{d.engine.journal.journal_id}-{k.seq}-{k.k}" for k in d.webhooks.outbox.pending.values()]
            assert len(ids) == 3
        finally:
            await d.stop()                     # the receiver is still down: nothing was delivered
        rx = await WebhookReceiver(SECRET).start(port)
        d2 = Dispatcher(cfg)
        await d2.start()
        try:
            await until(lambda: len(rx.accepted) == 3, what="all three after the restart")
            assert [e["id"] for e in rx.accepted] == ids                    # in journal order
            assert [e["call"] for e in rx.accepted] == ["c0", "c1", "c2"]
        finally:
            await d2.stop()
        d3 = Dispatcher(cfg)                   # delivered before the stop: not sent again
        await d3.start()
        try:
            await asyncio.sleep(0.1)
            assert len(rx.requests) == 3 and d3.webhooks.outbox.delivered == 3
        finally:
            await d3.stop()
            await rx.stop()

    run(main())


def test_history_from_before_webhooks_is_not_sent(tmp_path):
    async def main() -> None:
        d = Dispatcher(make_config(tmp_path))
        await d.start()
        d.schedule_callback("old", "support", 600.0, "0611111111")
        await d.stop()
        rx = await WebhookReceiver(SECRET).start()
        d2 = Dispatcher(make_config(tmp_path, webhooks=hooks(rx.port)))
        await d2.start()
        try:
            await until(lambda: d2.webhooks.outbox.started, what="webhooks start note")
            d2.schedule_callback("new", "support", 600.0, "0622222222")
            await until(lambda: rx.accepted, what="new event")
            await asyncio.sleep(0.05)
            assert [e["call"] for e in rx.events] == ["new"]
        finally:
            await d2.stop()
            await rx.stop()

    run(main())


def test_stop_is_prompt_while_a_post_hangs(tmp_path):
    async def main() -> None:
        rx = await WebhookReceiver(SECRET, delays=[30.0]).start()
        d = Dispatcher(make_config(tmp_path, webhooks=hooks(rx.port, timeout=20.0)))
        await d.start()
        d.schedule_callback("c1", "support", 600.0, "0611111111")
        await until(lambda: rx.requests, what="a POST in flight")
        t0 = time.monotonic()
        await d.stop()
        assert time.monotonic() - t0 < 1.0
        await rx.stop()

    run(main())


# ------------------------------------------------------------------ end to end over FastAGI + AMI

def test_callback_flow_accepted_dialled_reached(tmp_path):
    async def main() -> None:
        rx = await WebhookReceiver(SECRET).start()
        fake = await FakeAMI().start()
        cfg = make_config(tmp_path, ami_port=fake.port, queue={"callback_threshold": 30},
                          webhooks=hooks(rx.port))
        d = Dispatcher(cfg)
        await d.start()
        try:
            await until(lambda: d.ami_connected, what="AMI login")
            port = d.fastagi_port
            await agi(port, "agent_login?agent=1001")
            await agi(port, "agent_pause?agent=1001")
            ch = await FakeChannel(port, "enqueue?queue=support", uniqueid="1700000000.51",
                                   callerid="0612345678", digits="1").start()
            await ch.done()
            assert ch.variables["ACD_STATUS"] == "CALLBACK"
            await agi(port, "agent_ready?agent=1001")
            await until(lambda: state(d, "1700000000.51") == "connected", what="call-back connected")
            await agi(port, "call_end?call=1700000000.51&status=ANSWER", uniqueid="1700000099.1")
            await until(lambda: len(rx.accepted) == 3, what="three events")
            evs = rx.accepted
            assert [e["type"] for e in evs] == ["callback.accepted", "callback.dialled", "callback.reached"]
            assert {e["number"] for e in evs} == {"0612345678"} and {e["call"] for e in evs} == {"1700000000.51"}
            assert evs[0]["estimated_wait"] is None            # nobody free: no finite estimate
            assert evs[1]["agent"] == "1001" and evs[1]["attempt"] == 1
            assert evs[2]["agent"] == "1001" and evs[2]["answered_at"] <= evs[2]["occurred_at"]
            assert len({e["id"] for e in evs}) == 3 and rx.bad_signatures == 0
        finally:
            await d.stop()
            await fake.stop()
            await rx.stop()

    run(main())


def test_callback_flow_not_reached_retried_then_failed(tmp_path):
    async def main() -> None:
        rx = await WebhookReceiver(SECRET).start()
        fake = await FakeAMI().start()
        cfg = make_config(tmp_path, ami_port=fake.port, webhooks=hooks(rx.port),
                          queue={"callback_threshold": 30, "callback_attempts": 2, "callback_retry_delay": 0.2})
        d = Dispatcher(cfg)
        await d.start()
        try:
            await until(lambda: d.ami_connected, what="AMI login")
            port = d.fastagi_port
            await agi(port, "agent_login?agent=1001")
            await agi(port, "agent_pause?agent=1001")
            await agi(port, "enqueue?queue=support", uniqueid="1700000000.55", digits="1")
            await agi(port, "agent_ready?agent=1001")
            await until(lambda: state(d, "1700000000.55") == "connected", what="first call-back")
            await agi(port, "callback_result?call=1700000000.55&status=NOANSWER", uniqueid="1700000099.1")
            await until(lambda: state(d, "1700000000.55") == "connected", what="second call-back")
            await agi(port, "call_end?call=1700000000.55&status=BUSY", uniqueid="1700000099.2")
            await until(lambda: any(e["type"] == "callback.failed" for e in rx.accepted), what="failed event")
            evs = rx.accepted
            assert [e["type"] for e in evs] == ["callback.accepted", "callback.dialled", "callback.scheduled",
                                                "callback.dialled", "callback.failed"]
            assert evs[2]["attempts"] == 1 and evs[2]["scheduled_for"] >= evs[2]["occurred_at"]
            assert (evs[4]["reason"], evs[4]["status"], evs[4]["attempts"]) == ("not_reached", "BUSY", 2)
        finally:
            await d.stop()
            await fake.stop()
            await rx.stop()

    run(main())
