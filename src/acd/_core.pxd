# Declarations of the compiled engine's C records (see _core.pyx for the invariants).

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint64_t


ctypedef struct Entry:
    double t          # primary key (time, or idle key)
    uint64_t seq      # tie-break: enqueue order (calls), login order (agents), index (queues)
    int32_t idx       # slot of the call / agent / bucket / queue held


ctypedef struct Heap:
    Entry* a
    int32_t n
    int32_t cap


ctypedef struct CallRec:
    void* key         # the caller's id (a str or int; owned reference)
    int64_t hash      # hash(key), for the id table
    double entry      # entry into its current queue: rank and deadlines count from here
    double arrival    # first arrival: waits reported to users count from here; after answer, answer time
    uint64_t seq
    int32_t queue
    int32_t bucket    # bucket while in line, else -1
    int32_t agent     # agent slot while offered/dialing/connected, else -1
    int32_t extra     # id of the call's own requirements (0 = none)
    int16_t step
    int16_t attempts  # dial-back attempts made
    int8_t priority
    int8_t state
    int8_t virtual    # a call-back: the caller hung up and keeps their place


ctypedef struct AgentRec:
    double since      # time of the last state change
    double login
    double key        # idle ordering key, fixed when it became available
    double busy_time  # reserved + busy + wrap-up, closed periods only
    uint64_t seq
    uint64_t last_offered
    int32_t group
    int32_t call
    int32_t answered
    int8_t state


ctypedef struct Bucket:
    Heap heap         # calls in line, by (entry, seq)
    double offset     # offset from entry of the next time event (INFINITY if none)
    int32_t queue
    int32_t step
    int32_t priority
    int32_t extra
    int32_t req       # effective requirement id (step requirements merged with the call's own)
    int32_t req_off   # required skills (for highest_level scoring) in _req_skills
    int32_t req_len
    int8_t virtual    # holds call-backs (no max-wait exit, no announcements)
    bint exit_next    # the next time event is the max-wait exit


ctypedef struct QueueRec:
    double ageing     # 0 when priority does not age
    double wrap_up
    double sl_seconds
    double cost
    double prior_aht
    double prior_patience
    double cb_threshold   # < 0: no threshold
    double cb_risk        # < 0: no risk threshold
    double retry_delay
    double announce_every # 0: no periodic announcement
    int32_t cb_attempts
    int32_t sched_boost
    bint announce_on_join
    int32_t n_steps
    int32_t step_base # into _step_overflow / _step_boost
    int32_t lut_base  # into _bucket_lut: (virtual * n_steps + step) * 10 + priority
    int32_t waiting   # live callers in line
    int32_t cb_pending
    int64_t entered
    int64_t answered
    int64_t abandoned
    int64_t exited
    int64_t overflowed
    int64_t cb[7]     # offered, accepted, scheduled, dialled, reached, failed, cancelled
    int64_t ab[10]    # abandonments per priority
    int64_t obs[10]   # patience observations per priority
    double exposure[10]
    int64_t n_talk
    double talk_sum
    double les        # wait of the last caller taken (last-to-enter-service)
    double* ring_w    # recent waits (patience window), ring buffer
    uint8_t* ring_a   # ... and whether each ended in abandonment
    int32_t ring_head
    int32_t ring_n
