# Declarations of the compiled engine (see _core.pyx for the invariants).

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint64_t


ctypedef struct Entry:
    double t          # primary key (time, or idle key)
    uint64_t seq      # tie-break: enqueue order (calls) or login order (agents)
    int32_t idx       # slot of the call / agent / bucket held


ctypedef struct Heap:
    Entry* a
    int32_t n
    int32_t cap


ctypedef struct CallRec:
    double entry      # entry into its current queue: rank and deadlines count from here
    double arrival    # first arrival: waits reported to users count from here
    uint64_t seq
    int32_t queue
    int32_t bucket    # bucket while waiting, else -1
    int32_t agent     # agent slot while offered/connected, else -1
    int32_t extra     # id of the call's own requirements (0 = none)
    int16_t step
    int8_t priority
    int8_t state


ctypedef struct AgentRec:
    double since      # time of the last state change
    double login
    double key        # idle ordering key, fixed when it became available
    double timer      # when a timed state ends (valid while in the timer heap)
    double busy_time  # reserved + busy + wrap-up, closed periods only
    uint64_t seq
    uint64_t last_offered
    int32_t group
    int32_t call
    int32_t answered
    int8_t state


ctypedef struct Bucket:
    Heap heap         # waiting calls, by (entry, seq)
    double offset     # offset from entry of the next time event (INFINITY if none)
    int32_t queue
    int32_t step
    int32_t priority
    int32_t extra
    int32_t req       # effective requirement id (step requirements merged with the call's own)
    int32_t req_off   # required skills (for highest_level scoring) in _req_skills
    int32_t req_len
    bint exit_next    # the next time event is the max-wait exit


ctypedef struct QueueRec:
    double ageing     # 0 when priority does not age
    double wrap_up
    int32_t n_steps
    int32_t step_base # into _step_overflow / _step_boost
    int32_t lut_base  # into _bucket_lut: step * 10 + priority
    int32_t waiting
    int64_t entered
    int64_t answered
    int64_t abandoned
    int64_t exited
    int64_t overflowed
