"""asv benchmarks of the simulator: the compiled event loop driving the real engine."""

from acd.sim import bundled_scenario, simulate

from .common import SIM_AGENTS, SIM_CALLS, mmn_m


class SimulateMMnM:
    """One run of M/M/n+M, SIM_CALLS calls, full call records and agent intervals."""

    params = SIM_AGENTS
    param_names = ["agents"]
    timeout = 300

    def setup(self, agents):
        self.scenario = mmn_m(agents)

    def time_simulate(self, agents):
        simulate(self.scenario, 1, sample_every=self.scenario.end / 1000)

    def track_us_per_call(self, agents):
        res = simulate(self.scenario, 1, sample_every=self.scenario.end / 1000)
        return 1e6 * res.wall_time / SIM_CALLS

    track_us_per_call.unit = "us"


class SimulatePeakDay:
    """The bundled public-agency peak day (skills, segments, shifts, pauses, ring time), call-backs on."""

    timeout = 300

    def setup(self):
        self.scenario = bundled_scenario().with_callback(True)

    def time_simulate(self):
        simulate(self.scenario, 1)
