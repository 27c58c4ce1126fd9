"""``/``: the supervisor's HTML page (queues, agents, alarms), refreshed by the browser."""

from __future__ import annotations

import html
from typing import Any, Dict, List, Mapping, Optional

from ..live import service_alarms

__all__ = ("render_dashboard",)


def _fmt_secs(v: Optional[float]) -> str:
    if v is None:
        return "&ndash;"
    v = int(round(v))
    return f"{v // 60}:{v % 60:02d}" if v >= 60 else f"{v} s"



def _after_call_text(agent: Dict[str, Any]) -> str:
    """A pause or log-out the agent asked for during its call (carried out when the call is over)."""
    what = agent.get("after_call")
    return f"{what} after this call" if what else ""


def render_dashboard(status: Mapping[str, Any], refresh: int = 5) -> str:
    """A small self-contained HTML page (no scripts) refreshing itself every ``refresh`` seconds."""
    e = html.escape
    rows = []
    for q, d in sorted(status["queues"].items()):
        sl = d["service_level"]
        measured = sl["measured"]
        sl_text = "&ndash;" if measured is None else f"{measured * 100:.0f} %"
        late = measured is not None and measured < sl["fraction"]
        ag = d["agents"]
        rows.append(
            f"<tr><td>{e(q)}</td><td class=n>{d['waiting']}</td><td class=n>{_fmt_secs(d['oldest_wait'])}</td>"
            f"<td class=n>{_fmt_secs(d['ewt'])}</td><td class=n>{d['entered']}</td><td class=n>{d['answered']}</td>"
            f"<td class=n>{d['abandoned']}</td><td class=n>{d['exited'] + d['overflowed']}</td>"
            f"<td class=\"n{' late' if late else ''}\">{sl_text}</td>"
            f"<td class=n>{sl['fraction'] * 100:.0f} % / {sl['seconds']:g} s</td>"
            f"<td class=n>{d['callbacks'].get('pending', 0)}</td>"
            f"<td class=n>{ag.get('available', 0)} / {ag.get('reserved', 0) + ag.get('busy', 0)} / "
            f"{ag.get('wrap_up', 0)} / {ag.get('paused', 0)}</td></tr>")
    arows = []
    for a, d in sorted(status["agents"].items()):
        arows.append(f"<tr><td>{e(str(a))}</td><td class=\"st {e(d['state'])}\">{e(d['state'])}</td>"
                     f"<td>{e(d.get('reason') or _after_call_text(d))}</td><td>{e(str(d.get('call') or ''))}</td>"
                     f"<td class=n>{d.get('answered', 0)}</td><td>{e(d.get('dial') or '')}</td></tr>")
    svc = status["service"]
    ami = svc["ami"]
    ami_text = "disabled" if not ami["enabled"] else ("connected" if ami["connected"] else "NOT CONNECTED")
    alarms = _alarms(svc)
    alarm_html = "".join(f'<p class=alarm>{e(a)}</p>' for a in alarms)
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{meta}<title>acd - supervisor</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222}}
table{{border-collapse:collapse;margin-bottom:1.5em}}
th,td{{border-bottom:1px solid #ddd;padding:.3em .7em;text-align:left}}
th{{background:#f3f3f3}} td.n{{text-align:right;font-variant-numeric:tabular-nums}}
td.late{{color:#b00;font-weight:bold}} .st.available{{color:#070}} .st.paused{{color:#a60}}
.st.busy,.st.reserved{{color:#05a}} small{{color:#666}}
.alarm{{background:#b00;color:#fff;font-weight:bold;padding:.5em .8em;font-size:1.2em}}
</style></head><body>
<h1>acd supervisor</h1>
{alarm_html}
<p><small>engine time {status['now']:.0f} s &middot; up {svc['uptime']:.0f} s &middot; AMI {ami_text}
&middot; {svc['fastagi']['active']} AGI session(s) &middot; refreshed every {refresh} s</small></p>
<h2>Queues</h2>
<table><tr><th>queue</th><th>waiting</th><th>oldest wait</th><th>est. wait</th><th>entered</th><th>answered</th>
<th>abandoned</th><th>exited/overflowed</th><th>service level</th><th>target</th><th>call-backs pending</th>
<th>agents avail / on call / wrap-up / paused</th></tr>
{''.join(rows) or '<tr><td colspan=12>no queue</td></tr>'}
</table>
<p><small>Service level: calls answered within the target seconds / (answered + abandoned), since the journal
began (restarts included).</small></p>
<h2>Agents</h2>
<table><tr><th>agent</th><th>state</th><th>reason</th><th>call</th><th>answered</th><th>phone</th></tr>
{''.join(arows) or '<tr><td colspan=6>no agent logged in</td></tr>'}
</table>
</body></html>
"""


def _alarms(svc: Mapping[str, Any]) -> List[str]:
    """What a supervisor must not miss, worst first (the wallboard's service alarms)."""
    return [a["text"] for a in service_alarms(svc)]
