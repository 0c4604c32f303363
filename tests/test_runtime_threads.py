"""The kernel worker threads (runtime/threads.py) and their spin hand-off (runtime/sync.py)."""
import threading

import numpy as np
import pytest

from graphc.runtime import sync, threads


def test_publish_and_wait_change():
    flags = np.zeros(8, dtype=np.int64)
    assert sync.wait_change(flags, 0, 0, 50) == 0          # unchanged: times out with the old value
    sync.publish(flags, 0, 7)
    assert flags[0] == 7
    assert sync.wait_change(flags, 0, 0, 50) == 7


def test_wait_change_sees_another_threads_write():
    # the flag is re-read on every turn (an atomic load), so a write from another thread ends the
    # spin; a plain load hoisted out of the loop would spin to the turn limit and return 0
    flags = np.zeros(8, dtype=np.int64)
    t = threading.Timer(0.01, lambda: sync.publish(flags, 1, 3))
    t.start()
    assert sync.wait_change(flags, 1, 0, 1 << 27) == 3      # ~4 s of turns at most
    t.join()


def test_workers_run_every_job_once_on_other_threads():
    pool = threads.Workers()
    seen = []
    for _ in range(50):         # back to back (the spin) and after sleeps (the event)
        seen.clear()
        pool.run([lambda k=k: seen.append((k, threading.get_ident())) for k in range(3)])
        assert sorted(k for k, _ in seen) == [0, 1, 2]
        assert dict(seen)[0] == threading.get_ident()
        assert dict(seen)[1] != threading.get_ident() and dict(seen)[2] != dict(seen)[1]
    for k in range(3):
        threading.Event().wait(0.002 * k)
        out = []
        pool.run([lambda: out.append(1), lambda: out.append(2)])
        assert sorted(out) == [1, 2]


def test_workers_reraise_a_worker_error_and_stay_usable():
    pool = threads.Workers()

    def boom():
        raise ValueError("kernel chunk failed")
    ran = []
    with pytest.raises(ValueError, match="kernel chunk failed"):
        pool.run([lambda: ran.append(0), boom])
    assert ran == [0]
    pool.run([lambda: ran.append(1), lambda: ran.append(2)])
    assert sorted(ran) == [0, 1, 2]


def test_two_callers_at_once_both_finish():
    # a caller that finds the workers busy runs its jobs itself
    pool = threads.Workers()
    gate = threading.Event()
    total = []

    def slow():
        gate.wait(5)
        total.append("slow")

    t = threading.Thread(target=lambda: pool.run([lambda: None, slow]))
    t.start()
    pool.run([lambda: total.append("a"), lambda: total.append("b")])   # workers busy: both run here
    gate.set()
    t.join(5)
    assert sorted(total) == ["a", "b", "slow"]


def test_batch_split_shares_chunks_and_matches_one_call(monkeypatch, configure):
    configure(threads=2)
    monkeypatch.setattr(threads, "SPLIT_MIN_WORK", 1)
    calls = []

    def kern(x, scale, out):
        calls.append(x.shape[0])
        out[:] = x * scale
    x = np.arange(13 * 4, dtype=np.float64).reshape(13, 4)
    out = np.empty_like(x)
    split = threads.batch_split(kern, work_per_item=1, split=(0, 2))
    split(x, 3.0, out)
    np.testing.assert_array_equal(out, x * 3.0)
    assert sum(calls) == 13 and len(calls) == min(2 * threads.CHUNKS_PER_THREAD, 13)
    assert split.serial is kern
