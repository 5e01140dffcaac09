"""Work queue and rate limiter: client-go / controller-runtime semantics."""

import threading
import time

from testbed.runner.workqueue import ControllerRateLimiter, TokenBucket, WorkQueue


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_an_item_is_queued_once_and_never_handed_out_twice_at_once():
    q = WorkQueue()
    q.add("a")
    q.add("a")
    q.add("b")
    assert len(q) == 2
    assert q.get() == "a"
    q.add("a")  # changed while processing: marked dirty, not queued
    assert q.get() == "b"
    q.done("b")
    assert len(q) == 0
    q.add("a")  # still only once
    q.done("a")  # done: queued again, once
    assert len(q) == 1
    assert q.get() == "a"
    q.done("a")
    assert len(q) == 0
    q.shutdown()


def test_add_after_keeps_the_earliest_time():
    q = WorkQueue()
    q.add_after("a", 5.0)
    q.add_after("a", 0.05)
    q.add_after("a", 10.0)
    started = time.monotonic()
    assert q.get() == "a"
    assert time.monotonic() - started < 2.0
    q.done("a")
    q.shutdown()


def test_get_blocks_until_shutdown():
    q = WorkQueue()
    got = []
    thread = threading.Thread(target=lambda: got.append(q.get()))
    thread.start()
    time.sleep(0.05)
    q.shutdown()
    thread.join(2)
    assert got == [None]
    q.add("late")
    assert len(q) == 0


def test_per_item_exponential_backoff_and_forget():
    limiter = ControllerRateLimiter(clock=FakeClock())
    assert [limiter.when("a") for _ in range(4)] == [0.005, 0.01, 0.02, 0.04]
    assert limiter.when("b") == 0.005
    limiter.forget("a")
    assert limiter.when("a") == 0.005


def test_backoff_is_capped_at_1000_seconds():
    limiter = ControllerRateLimiter(clock=FakeClock())
    delays = [limiter.when("a") for _ in range(30)]
    assert delays[-1] == 1000.0
    assert max(delays) == 1000.0


def test_overall_bucket_of_10_qps_with_burst_100():
    clock = FakeClock()
    bucket = TokenBucket(10, 100, clock)
    assert [bucket.reserve() for _ in range(100)] == [0.0] * 100
    assert abs(bucket.reserve() - 0.1) < 1e-9
    assert abs(bucket.reserve() - 0.2) < 1e-9
    clock.now += 10  # refilled
    assert bucket.reserve() == 0.0
