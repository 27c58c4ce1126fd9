"""Opening hours: weekly hours in a time zone, holidays, closures; and `acd serve` refusing a closed queue."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acd.errors import AcdError, InvalidInput
from acd.schedule import easter, holiday_set, parse_schedule

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")

OFFICE = {"name": "office", "timezone": "Europe/Paris",
          "hours": {d: "08:30-12:30, 13:30-17:00" for d in ("mon", "tue", "wed", "thu", "fri")},
          "holidays": ["france", "2026-12-24"], "closed": ["2026-08-14", "2026-12-31 12:00/2027-01-02 08:30"]}


def office(**changes):
    return parse_schedule("schedules[0]", {**OFFICE, **changes})[0]


def at(zone, *fields):
    return dt.datetime(*fields, tzinfo=zone).timestamp()


def test_easter_and_the_french_public_holidays():
    # Easter Sundays from the published tables
    assert [easter(y) for y in (2024, 2025, 2026, 2027, 2038, 2285)] == [
        dt.date(2024, 3, 31), dt.date(2025, 4, 20), dt.date(2026, 4, 5), dt.date(2027, 3, 28),
        dt.date(2038, 4, 25), dt.date(2285, 3, 22)]
    days = sorted(holiday_set("france", 2026))
    assert days == [dt.date(2026, 1, 1), dt.date(2026, 4, 6), dt.date(2026, 5, 1), dt.date(2026, 5, 8),
                    dt.date(2026, 5, 14), dt.date(2026, 5, 25), dt.date(2026, 7, 14), dt.date(2026, 8, 15),
                    dt.date(2026, 11, 1), dt.date(2026, 11, 11), dt.date(2026, 12, 25)]
    am = holiday_set("france-alsace-moselle", 2026) - holiday_set("france", 2026)
    assert am == {dt.date(2026, 4, 3), dt.date(2026, 12, 26)}


def test_hours_are_local_wall_time_across_daylight_saving():
    s = office()
    # Paris changes to summer time on 2026-03-29 and back on 2026-10-25 (both Sundays)
    for day in (dt.date(2026, 3, 27), dt.date(2026, 3, 30), dt.date(2026, 10, 23), dt.date(2026, 10, 26)):
        opens = at(PARIS, day.year, day.month, day.day, 8, 30)
        assert not s.is_open(opens - 1) and s.is_open(opens)
        assert s.is_open(at(PARIS, day.year, day.month, day.day, 12, 29, 59))
        assert not s.is_open(at(PARIS, day.year, day.month, day.day, 12, 30))
        assert not s.is_open(at(PARIS, day.year, day.month, day.day, 17, 0))
    # 08:30 in Paris is 07:30 UTC in winter and 06:30 UTC in summer
    assert s.next_open(at(dt.timezone.utc, 2026, 3, 27, 0, 0)) == at(dt.timezone.utc, 2026, 3, 27, 7, 30)
    assert s.next_open(at(dt.timezone.utc, 2026, 3, 30, 0, 0)) == at(dt.timezone.utc, 2026, 3, 30, 6, 30)


def test_holidays_weekends_and_closures():
    s = office()
    assert not s.is_open(at(PARIS, 2026, 7, 14, 10, 0))               # Bastille Day, a Tuesday
    assert not s.is_open(at(PARIS, 2026, 8, 14, 10, 0))               # a closure (whole day)
    assert not s.is_open(at(PARIS, 2026, 12, 24, 10, 0))              # a holiday by date
    assert s.is_open(at(PARIS, 2026, 12, 31, 11, 59))
    assert not s.is_open(at(PARIS, 2026, 12, 31, 12, 0))              # a closure span starts
    # Friday 2026-05-08 (holiday) 18:00 -> Monday 11th 08:30
    assert s.next_open(at(PARIS, 2026, 5, 7, 18, 0)) == at(PARIS, 2026, 5, 11, 8, 30)
    # lunch: 12:30 -> 13:30 the same day
    assert s.next_open(at(PARIS, 2026, 6, 3, 12, 45)) == at(PARIS, 2026, 6, 3, 13, 30)
    # the end-of-year closure ends on Saturday 2 January 08:30: the queue opens Monday 4th
    assert s.next_open(at(PARIS, 2026, 12, 31, 12, 0)) == at(PARIS, 2027, 1, 4, 8, 30)
    # a closure ending in the middle of opening hours opens the queue at its end
    s2 = office(closed=["2026-06-03 09:00/2026-06-03 10:15"])
    assert s2.next_open(at(PARIS, 2026, 6, 3, 9, 30)) == at(PARIS, 2026, 6, 3, 10, 15)
    never = office(hours={"mon": "08:00-09:00"}, closed=["2026-01-01/2028-01-01"])
    assert never.next_open(at(PARIS, 2026, 3, 1, 0, 0)) is None


def brute_next_open(s, t, step=60.0, limit=12 * 86400):
    """The first minute boundary at or after t when the schedule is open, by looking at each."""
    k = 0.0
    if s.is_open(t):
        return t
    first = (t // step + 1) * step
    while k < limit:
        if s.is_open(first + k):
            return first + k
        k += step
    return None


YEAR_START = at(dt.timezone.utc, 2026, 1, 1)


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 365 * 86400.0), st.sampled_from(["Europe/Paris", "America/New_York"]))
def test_next_open_is_the_first_open_minute_over_a_year_in_two_zones(offset, zone):
    s = office(timezone=zone, hours={"mon": "08:30-12:30, 13:30-17:00", "tue": "09:00-17:30",
                                     "wed": "08:30-12:30", "thu": "00:00-24:00", "fri": "08:30-17:00",
                                     "sat": "09:00-12:00"})
    t = YEAR_START + offset
    got = s.next_open(t)
    want = brute_next_open(s, t)
    assert got == want, (dt.datetime.fromtimestamp(t, ZoneInfo(zone)), got, want)


def test_wall_time_of_a_new_york_office():
    s = office(timezone="America/New_York", holidays=[], closed=[])
    # US summer time starts 2026-03-08, Paris's on 2026-03-29: the offset to UTC follows New York's
    assert s.next_open(at(NEW_YORK, 2026, 3, 9, 7, 0)) == at(dt.timezone.utc, 2026, 3, 9, 12, 30)
    assert s.next_open(at(NEW_YORK, 2026, 3, 6, 7, 0)) == at(dt.timezone.utc, 2026, 3, 6, 13, 30)


@pytest.mark.parametrize("changes, message", [
    ({"timezone": "Mars/Olympus"}, "not a known IANA time zone"),
    ({"hours": {"mon": "8:30-25:00"}}, "must run forwards within one day"),
    ({"hours": {"mon": "09:00-08:00"}}, "must run forwards"),
    ({"hours": {"mon": "08:00-12:00, 11:00-13:00"}}, "spans overlap"),
    ({"hours": {"monday": "08:00-12:00"}}, "unknown day"),
    ({"hours": {"mon": "eight to noon"}}, "is not a span HH:MM-HH:MM"),
    ({"holidays": ["belgium"]}, "neither a date YYYY-MM-DD nor a known set"),
    ({"holidays": ["2026-02-30"]}, "is not a date"),
    ({"closed": ["2026-12-31 12:00/2026-12-31 11:00"]}, "must end after it starts"),
    ({"opening": "x"}, "unknown key"),
])
def test_bad_schedules_name_the_field(changes, message):
    with pytest.raises(InvalidInput, match=message):
        office(**changes)


# ---------------------------------------------------------------- acd serve


def test_acd_serve_tells_a_caller_the_queue_is_closed(tmp_path):
    import time

    from acd.journal import SqliteJournal
    from acd.service import Dispatcher
    from fakes.channel import agi
    from service_support import make_config, run

    today = dt.datetime.now(PARIS).date()           # the schedule's own day
    every_day = {d: "00:00-24:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    closed = {"name": "office", "timezone": "Europe/Paris", "hours": every_day, "closed": [today.isoformat()]}
    cfg = make_config(tmp_path, schedules=[closed])
    assert set(cfg.schedules) == {"support"}
    got = {}

    async def day() -> None:
        d = Dispatcher(cfg)
        await d.start()
        try:
            port = d.fastagi_port
            await agi(port, "agent_login", callerid="1001")
            got["closed"] = await agi(port, "enqueue?queue=support", uniqueid="1700000000.1")
            got["state"] = d.commands.call_state("1700000000.1")
            # a call-back retry due in a minute, while closed: at the next opening instead
            got["asked"] = time.time()
            d.schedule_callback("1700000000.3", "support", 60.0, "0612345678")
        finally:
            await d.stop()

    run(day())
    v = got["closed"].variables
    assert (v["ACD_STATUS"], v["ACD_EXIT_REASON"], v["ACD_QUEUE"]) == ("EXIT", "closed", "support")
    tomorrow = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0, 0), PARIS).timestamp()
    assert int(v["ACD_NEXT_OPEN"]) == tomorrow > time.time()
    assert got["state"] is None                     # it never entered the line
    j = SqliteJournal(cfg.journal.path, read_only=True)
    notes = [a for _, op, a in j.records() if op == "note" and a[0] == "closed"]
    j.close()
    assert notes and notes[0][1]["call"] == "1700000000.1" and notes[0][1]["schedule"] == "office"
    import io
    import json

    from acd.cli import main as acd_main
    out, err = io.StringIO(), io.StringIO()
    assert acd_main(["report", cfg.journal.path, "--format", "json"], out=out, err=err) == 0, err.getvalue()
    assert json.loads(out.getvalue())["closed"] == {"support": 1}     # counted apart, not offered
    out = io.StringIO()
    acd_main(["report", cfg.journal.path], out=out, err=err)
    assert "outside opening hours (not offered): 1 for support" in out.getvalue()
    j = SqliteJournal(cfg.journal.path, read_only=True)
    (slot,) = [a for _, op, a in j.records() if op == "schedule_callback"]
    j.close()
    call, queue, due, now = slot[:4]
    assert abs((due - now) - (tomorrow - got["asked"])) < 5       # engine seconds from now to the opening

    # open all day: served as usual
    cfg2 = make_config(tmp_path, schedules=[{**closed, "closed": []}],
                       journal={"path": str(tmp_path / "j2.sqlite3")})

    async def open_day() -> None:
        d = Dispatcher(cfg2)
        await d.start()
        try:
            await agi(d.fastagi_port, "agent_login", callerid="1001")
            got["open"] = await agi(d.fastagi_port, "enqueue?queue=support", uniqueid="1700000000.2")
        finally:
            await d.stop()

    run(open_day())
    assert got["open"].variables["ACD_STATUS"] == "OK"


def test_schedules_config_errors(tmp_path):
    from service_support import make_config

    with pytest.raises(AcdError, match=r"schedules\[0\].queues names an unknown queue 'sales'"):
        make_config(tmp_path, schedules=[{**OFFICE, "queues": ["sales"]}])
    with pytest.raises(AcdError, match="already follows schedule 'office'"):
        make_config(tmp_path, schedules=[OFFICE, {**OFFICE, "name": "other"}])
    with pytest.raises(AcdError, match=r"schedules\[0\].timezone"):
        make_config(tmp_path, schedules=[{**OFFICE, "timezone": ""}])
