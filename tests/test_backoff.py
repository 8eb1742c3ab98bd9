"""The runner's restart delays (deploy/supervision.py), without starting anything."""

from __future__ import annotations

from deploy.supervision import CEILING, Backoff, describe_exit


def test_delays_double_up_to_the_ceiling_and_reset_after_a_stable_run():
    backoff = Backoff()
    delays = [backoff.next_delay(uptime=1.0) for _ in range(9)]
    assert delays == [0.5, 1, 2, 4, 8, 16, CEILING, CEILING, CEILING]
    assert backoff.crash_looping
    # Up for longer than STABLE_AFTER: healthy again, the next death restarts quickly.
    assert backoff.next_delay(uptime=31.0) == 0.5
    assert not backoff.crash_looping


def test_a_crash_loop_is_named_from_the_third_quick_death():
    backoff = Backoff()
    flags = []
    for _ in range(4):
        backoff.next_delay(uptime=0.2)
        flags.append(backoff.crash_looping)
    assert flags == [False, False, True, True]


def test_exit_statuses_are_worded():
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(2) == "exited with status 2"
