"""asv benchmarks of the classic AGI script: one process per AGI step, against a real ``acd serve``.

Tracked, not timed by asv: each figure is the median over AGI_SAMPLES processes
(``enqueue`` assigned at once), measured from outside the process (``wait4``,
``/proc``).  ``track_cpu_over_interpreter_start`` divides by the CPU of
``python -c pass`` measured in the same run, which makes it comparable across
machines.  The full report, with the burst against FastAGI:
``python bench/agi_script.py``.
"""

import compileall
import os
import statistics
import subprocess
import sys

import acd

from .agi_harness import Service, classic_sync, fastagi_sync, find_agi_script, find_native_relay, handler_delay
from .common import AGI_SAMPLES


class ClassicAGIEnqueue:
    """``AGI(acd-agi,enqueue?queue=support&priority=2)`` with an agent free: exec to exit."""

    timeout = 300
    number = 1
    repeat = 1

    def setup(self):
        compileall.compile_dir(os.path.dirname(acd.__file__), quiet=1)
        self.agi = find_agi_script()
        self.service = Service(1)
        self.n = 0

    def teardown(self):
        self.service.stop()

    def _enqueue(self):
        """One classic enqueue, then the call's dial_result and call_end over FastAGI (the agent is free again)."""
        self.n += 1
        call = f"asv.{self.n}"
        run = classic_sync(self.agi, self.service.socket_path, "enqueue", {"queue": "support", "priority": "2"},
                           f"PJSIP/trunk-{self.n:05d}", call)
        if run.status != 0 or run.variables.get("ACD_STATUS") != "OK":
            raise RuntimeError(f"enqueue not assigned at once: {run.status} {run.variables} {run.stderr}")
        port = self.service.port
        fastagi_sync(port, "dial_result", {"call": call, "status": "ANSWER", "agent": run.variables["ACD_AGENT"]},
                     "PJSIP/a0001-x", f"{call}-leg")
        fastagi_sync(port, "call_end", {"status": "ANSWER"}, f"PJSIP/trunk-{self.n:05d}", call, dead=True)
        return run

    def _median(self, field):
        return statistics.median(getattr(self._enqueue(), field) for _ in range(AGI_SAMPLES))

    def track_cpu(self):
        return self._median("cpu") * 1e3

    track_cpu.unit = "ms"

    def track_wall(self):
        return self._median("wall") * 1e3

    track_wall.unit = "ms"

    def track_peak_rss(self):
        return self._median("max_rss") / 2**20

    track_peak_rss.unit = "MB"

    def track_cpu_over_interpreter_start(self):
        script = self._median("cpu")
        bare = []
        for _ in range(AGI_SAMPLES):
            proc = subprocess.Popen([sys.executable, "-c", "pass"])
            _, _, usage = os.wait4(proc.pid, 0)
            proc.returncode = 0
            bare.append(usage.ru_utime + usage.ru_stime)
        return script / statistics.median(bare)

    track_cpu_over_interpreter_start.unit = "ratio"

    def track_unprotected_start(self):
        """Fork to SIGHUP handler in place: the window in which a hang-up kills the script."""
        return statistics.median(handler_delay([self.agi], AGI_SAMPLES)) * 1e3

    track_unprotected_start.unit = "ms"


class NativeAGIEnqueue(ClassicAGIEnqueue):
    """The same step through the compiled relay (``acd-agi-native`` linked as ``acd-agi``)."""

    def setup(self):
        super().setup()
        self.agi = find_native_relay()
