"""Cron schedules: `[schedules.NAME]` tables that push a job at each tick, exactly once across
every master and host, decided in Redis (lua/schedule_tick.lua).

`model` (a schedule, validated), `ticks` (when it ticks, time zones and DST), `resolve` (its job
and arguments into the body to push, where the job modules are imported), `runner` (what the
master calls once per loop).
"""
