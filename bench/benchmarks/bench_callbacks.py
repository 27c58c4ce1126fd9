"""asv benchmarks of the abandonment-aware features: EWT, call-back offers, dial-backs."""

import dataclasses

import acd
from acd.workload import peak_load

from .common import CALLBACK_WAITING, PEAK, SEED


class CallbackFeatures:
    """Peak load with call-back offers on join (EWT computed for every caller who waits)."""

    timeout = 300

    def setup(self):
        base = peak_load(SEED, waiting=CALLBACK_WAITING, **PEAK)
        queues = tuple(dataclasses.replace(q, callback_threshold=120.0, announce_on_join=True) for q in base.queues)
        self.load = dataclasses.replace(base, queues=queues)
        self.engine, self.driver = self.load.build(lambda: acd.Engine(call_choice="cmu_theta"))
        self.queue = queues[0].name
        self.now = self.load.start + 1.0
        self.next_id = 10**9

    def time_enqueue_with_offer_then_accept(self):
        self.next_id += 1
        out = self.engine.enqueue(self.next_id, self.queue, self.now, 2)
        if self.engine.call_state(self.next_id) == "waiting":
            self.engine.accept_callback(self.next_id, self.now)
            self.engine.abandon(self.next_id, self.now)
        return out

    def time_estimate_wait(self):
        self.engine.estimate_wait(self.queue, 2)

    def time_snapshot(self):
        self.engine.snapshot()
