"""The in-process writer lock of the SQLite store hands the lock over in arrival order."""

from __future__ import annotations

import threading
import time

from partitur.store.db import FairLock


def test_waiters_get_the_lock_in_the_order_they_came() -> None:
    lock = FairLock()
    assert lock.acquire(timeout=1)
    order: list[int] = []
    threads = []
    for n in range(5):
        def take(n: int = n) -> None:
            assert lock.acquire(timeout=10)
            order.append(n)
            lock.release()
        t = threading.Thread(target=take)
        t.start()
        threads.append(t)
        time.sleep(0.05)  # queued one after the other
    lock.release()
    for t in threads:
        t.join(timeout=10)
    assert order == [0, 1, 2, 3, 4]


def test_a_wait_can_time_out_and_the_lock_still_works() -> None:
    lock = FairLock()
    assert lock.acquire(timeout=1)
    got: list[bool] = []
    t = threading.Thread(target=lambda: got.append(lock.acquire(timeout=0.1)))
    t.start()
    t.join(timeout=5)
    assert got == [False]
    lock.release()
    assert lock.acquire(timeout=0.1)  # nobody left waiting: free again
    lock.release()
