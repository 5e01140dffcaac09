"""A rate-limited work queue with client-go's semantics, which controller-runtime relies on:

- an item is processed by one worker at a time: adding it while it is being processed marks it
  dirty, and it is queued once more when the worker is done with it;
- adding an item that is already queued does nothing;
- add_after() keeps the earliest time when an item is scheduled twice;
- add_rate_limited() delays by the controller-runtime default limiter: the larger of a per-item
  exponential back-off (5 ms doubling to 1000 s) and an overall 10 qps token bucket (burst 100).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable


class TokenBucket:
    """golang.org/x/time/rate.Limiter.Reserve().Delay(): tokens may go negative."""

    def __init__(self, qps: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.qps = qps
        self.burst = burst
        self.tokens = float(burst)
        self.clock = clock
        self.last = clock()

    def reserve(self) -> float:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.qps)
        self.last = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.qps


class ControllerRateLimiter:
    """workqueue.DefaultTypedControllerRateLimiter."""

    def __init__(
        self,
        base_delay: float = 0.005,
        max_delay: float = 1000.0,
        qps: float = 10.0,
        burst: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.failures: dict[Hashable, int] = {}
        self.bucket = TokenBucket(qps, burst, clock)

    def when(self, item: Hashable) -> float:
        exp = self.failures.get(item, 0)
        self.failures[item] = exp + 1
        backoff = min(self.base_delay * 2.0**exp, self.max_delay)
        return max(backoff, self.bucket.reserve())

    def forget(self, item: Hashable) -> None:
        self.failures.pop(item, None)


class WorkQueue:
    def __init__(self, rate_limiter: ControllerRateLimiter | None = None) -> None:
        self.rate_limiter = rate_limiter or ControllerRateLimiter()
        self._cond = threading.Condition()
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._waiting: list[tuple[float, int, Hashable]] = []
        self._ready_at: dict[Hashable, float] = {}
        self._counter = itertools.count()
        self._shutting_down = False
        self._timer = threading.Thread(target=self._release_waiting, name="workqueue-delays", daemon=True)
        self._timer.start()

    def add(self, item: Hashable) -> None:
        with self._cond:
            self._add_locked(item)

    def _add_locked(self, item: Hashable) -> None:
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        if item in self._processing:
            return
        self._queue.append(item)
        self._cond.notify_all()

    def add_after(self, item: Hashable, delay: float) -> None:
        with self._cond:
            if self._shutting_down:
                return
            if delay <= 0:
                self._add_locked(item)
                return
            ready_at = time.monotonic() + delay
            if item in self._ready_at and self._ready_at[item] <= ready_at:
                return
            self._ready_at[item] = ready_at
            heapq.heappush(self._waiting, (ready_at, next(self._counter), item))
            self._cond.notify_all()

    def add_rate_limited(self, item: Hashable) -> float:
        with self._cond:
            delay = self.rate_limiter.when(item)
        self.add_after(item, delay)
        return delay

    def forget(self, item: Hashable) -> None:
        with self._cond:
            self.rate_limiter.forget(item)

    def get(self) -> Hashable | None:
        """The next item, or None once the queue is shut down."""
        with self._cond:
            while not self._queue and not self._shutting_down:
                self._cond.wait()
            if self._shutting_down:
                return None
            item = self._queue.popleft()
            self._processing.add(item)
            self._dirty.discard(item)
            return item

    def done(self, item: Hashable) -> None:
        with self._cond:
            self._processing.discard(item)
            if item in self._dirty and not self._shutting_down:
                self._queue.append(item)
                self._cond.notify_all()

    def shutdown(self) -> None:
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def _release_waiting(self) -> None:
        with self._cond:
            while not self._shutting_down:
                now = time.monotonic()
                while self._waiting and self._waiting[0][0] <= now:
                    ready_at, _, item = heapq.heappop(self._waiting)
                    if self._ready_at.get(item) == ready_at:
                        del self._ready_at[item]
                        self._add_locked(item)
                timeout = self._waiting[0][0] - now if self._waiting else None
                self._cond.wait(timeout)
