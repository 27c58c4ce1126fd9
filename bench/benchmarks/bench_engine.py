"""asv benchmarks of the engine at peak load."""

import numpy as np

import acd
from acd._reference import ReferenceEngine
from acd.workload import peak_load, replay

from .common import PEAK, REFERENCE, REFERENCE_EVENTS, SEED, STREAM_EVENTS, WAITING, peak


class PerOperation:
    """One operation through the Python API on a loaded engine (steady state kept)."""

    params = [WAITING]
    param_names = ["waiting"]
    timeout = 300

    def setup(self, waiting):
        self.load = peak(waiting)
        self.engine, self.driver = self.load.build(acd.Engine)
        self.queue = self.load.queues[0].name
        self.now = self.load.start + 1.0
        self.next_id = 10**9
        self.rng = np.random.default_rng(SEED)

    def time_enqueue_then_abandon(self, waiting):
        self.next_id += 1
        self.engine.enqueue(self.next_id, self.queue, self.now, 2)
        if self.engine.call_state(self.next_id) == "waiting":
            self.engine.abandon(self.next_id, self.now)

    def time_complete_ready_answer(self, waiting):
        """An agent ends a call, ends wrap-up, takes and answers the next call."""
        d = self.driver
        if not len(d.connected):
            return
        call = d.connected.items[int(self.rng.integers(len(d.connected)))]
        d.apply(("complete", call, self.now))
        agent = d.wrapping.items[-1]
        for dec in d.apply(("ready", agent, self.now)):
            d.apply(("answer", dec.call, self.now))

    def time_snapshot(self, waiting):
        self.engine.snapshot()


class StreamReplay:
    """Throughput on a recorded closed-loop peak-load stream (fresh engine per sample)."""

    params = [WAITING]
    param_names = ["waiting"]
    number = 1
    repeat = 3
    timeout = 600

    def setup(self, waiting):
        self.load = peak(waiting)
        engine, driver = self.load.build(acd.Engine)
        self.stream = driver.record(STREAM_EVENTS)
        self.fresh, _ = self.load.build(acd.Engine)
        self.fresh2, _ = self.load.build(acd.Engine)

    def time_replay_bulk(self, waiting):
        self.fresh.replay(self.stream)

    def time_replay_python_calls(self, waiting):
        replay(self.fresh2, self.stream)

    def peakmem_loaded_engine(self, waiting):
        self.load.build(acd.Engine)


class ReferenceModel:
    """The oracle on the same kind of stream, for the core/reference ratio."""

    number = 1
    repeat = 3
    timeout = 600

    def setup(self):
        self.load = peak_load(SEED, **REFERENCE)
        engine, driver = self.load.build(acd.Engine)
        self.stream = driver.record(REFERENCE_EVENTS)
        self.core, _ = self.load.build(acd.Engine)
        self.ref, _ = self.load.build(ReferenceEngine)

    def time_core(self):
        replay(self.core, self.stream)

    def time_reference(self):
        replay(self.ref, self.stream)
