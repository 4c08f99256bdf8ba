"""redis-py's own `Lock`, unmodified, against a real raftlock node, on RESP2 and RESP3.

`tests/compat.rs` starts the node and runs this file with pytest; it passes the node's
port in RAFTLOCK_PORT and the protocols to test in RAFTLOCK_RESP ("2", "3" or "2,3").
Run it by hand against a node of your own:

    RAFTLOCK_PORT=6379 target/compat-venv/bin/python -m pytest tests/compat -v

redis-py acquires with `SET name token NX PX ms` and releases, extends and reacquires with
Lua scripts (EVALSHA, with SCRIPT LOAD after a NOSCRIPT reply), so this suite exercises
strings, expiry and scripting together. Waits are bounded and generous: the machine that
runs the tests is shared and noisy, so no test depends on how fast the server answers.
"""

import os
import threading
import time
import uuid

import pytest
import redis
from redis.exceptions import LockError, LockNotOwnedError

HOST = os.environ.get("RAFTLOCK_HOST", "127.0.0.1")
PORT = int(os.environ["RAFTLOCK_PORT"])
PROTOCOLS = [int(p) for p in os.environ.get("RAFTLOCK_RESP", "2,3").split(",") if p]

# How long a test waits for something that must happen (a lease running out, a waiter
# getting the lock) before it fails.
EVENTUALLY = 30.0


@pytest.fixture(params=PROTOCOLS, ids=lambda p: f"resp{p}")
def r(request):
    client = redis.Redis(
        host=HOST,
        port=PORT,
        protocol=request.param,
        socket_timeout=EVENTUALLY,
        socket_connect_timeout=10,
    )
    yield client
    client.close()


@pytest.fixture
def name():
    """A lock name no other test (or protocol run) uses."""
    return f"compat:py:{uuid.uuid4().hex}"


def wait_until(predicate, what, timeout=EVENTUALLY):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_client_speaks_the_requested_protocol(r):
    assert r.ping() is True
    connection = r.connection_pool.get_connection()
    try:
        if connection.protocol in (3, "3"):
            # redis-py checks HELLO's reply itself; this makes the check visible.
            proto = connection.handshake_metadata.get(b"proto")
            assert proto == 3, connection.handshake_metadata
    finally:
        r.connection_pool.release(connection)


def test_scripting_is_available(r):
    # Lock.release/extend/reacquire need EVALSHA and SCRIPT LOAD; this names the cause
    # when they are missing, before the lock tests fail one by one.
    sha = r.script_load("return 1")
    assert r.evalsha(sha, 0) == 1
    assert r.eval("return ARGV[1]", 0, "x") == b"x"


def test_non_blocking_acquire(r, name):
    first = r.lock(name, timeout=30)
    second = r.lock(name, timeout=30)
    assert first.acquire(blocking=False) is True
    assert first.locked() and first.owned()

    assert second.acquire(blocking=False) is False
    assert second.locked() and not second.owned()

    first.release()
    assert not first.locked()
    assert second.acquire(blocking=False) is True
    assert second.owned() and not first.owned()
    second.release()
    assert r.exists(name) == 0


def test_lock_without_timeout_holds_until_released(r, name):
    lock = r.lock(name)
    assert lock.acquire(blocking=False)
    assert r.pttl(name) == -1
    assert r.lock(name).acquire(blocking=False) is False
    lock.release()
    assert r.exists(name) == 0


def test_blocking_acquire_waits_for_release(r, name):
    holder = r.lock(name, timeout=60)
    assert holder.acquire(blocking=False)

    result = {}
    done = threading.Event()

    def waiter():
        lock = r.lock(name, timeout=60, sleep=0.05)
        try:
            result["acquired"] = lock.acquire(blocking=True, blocking_timeout=EVENTUALLY)
            result["owned"] = lock.owned()
            if result["acquired"]:
                lock.release()
        except Exception as err:  # reported below, in the test's own thread
            result["error"] = err
        finally:
            done.set()

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    # While the holder holds the lock the waiter must not get it, however long it tries.
    assert not done.wait(0.5), f"waiter finished while the lock was held: {result}"
    holder.release()
    assert done.wait(EVENTUALLY + 10), "waiter never finished"
    thread.join()
    assert "error" not in result, result
    assert result == {"acquired": True, "owned": True}


def test_blocking_acquire_gives_up_after_blocking_timeout(r, name):
    holder = r.lock(name, timeout=60)
    assert holder.acquire(blocking=False)
    other = r.lock(name, timeout=60, sleep=0.05)
    started = time.monotonic()
    assert other.acquire(blocking=True, blocking_timeout=0.3) is False
    assert time.monotonic() - started < EVENTUALLY
    assert holder.owned() and not other.owned()
    holder.release()


def test_blocking_acquire_succeeds_when_the_lease_runs_out(r, name):
    # The holder never releases; its lease (0.5 s) ends by expiry on the server.
    holder = r.lock(name, timeout=0.5)
    assert holder.acquire(blocking=False)
    waiter = r.lock(name, timeout=60, sleep=0.05)
    assert waiter.acquire(blocking=True, blocking_timeout=EVENTUALLY) is True
    assert waiter.owned() and not holder.owned()

    # The old holder is no longer the owner: releasing raises, and leaves the new
    # owner's lock in place.
    with pytest.raises(LockNotOwnedError):
        holder.release()
    assert waiter.owned()
    waiter.release()
    assert r.exists(name) == 0


def test_release_by_a_non_owner_raises_lock_not_owned(r, name):
    lock = r.lock(name, timeout=60)
    assert lock.acquire(blocking=False)
    # Someone else takes the key over (as after an expiry and a new grant).
    r.set(name, "someone-else", px=60_000)
    assert not lock.owned()
    with pytest.raises(LockNotOwnedError):
        lock.extend(10)
    with pytest.raises(LockNotOwnedError):
        lock.reacquire()
    with pytest.raises(LockNotOwnedError):
        lock.release()
    # None of those touched the other owner's key.
    assert r.get(name) == b"someone-else"
    assert r.pttl(name) > 30_000


def test_release_of_a_lock_never_acquired_raises_lock_error(r, name):
    holder = r.lock(name, timeout=60)
    assert holder.acquire(blocking=False)
    stranger = r.lock(name, timeout=60)
    with pytest.raises(LockError):
        stranger.release()
    assert holder.owned()
    holder.release()


def test_extend_adds_to_or_replaces_the_ttl(r, name):
    lock = r.lock(name, timeout=10)
    assert lock.acquire(blocking=False)
    assert 0 < r.pttl(name) <= 10_000

    # Added to what is left: 10 s + 20 s.
    assert lock.extend(20) is True
    assert 20_000 < r.pttl(name) <= 30_000

    # Replaced.
    assert lock.extend(8, replace_ttl=True) is True
    assert 0 < r.pttl(name) <= 8_000
    assert lock.owned()
    lock.release()


def test_extend_after_expiry_raises_lock_not_owned(r, name):
    lock = r.lock(name, timeout=0.3)
    assert lock.acquire(blocking=False)
    wait_until(lambda: not lock.locked(), "the lease to run out")
    with pytest.raises(LockNotOwnedError):
        lock.extend(10)


def test_extend_without_timeout_is_refused_by_the_client(r, name):
    lock = r.lock(name)
    assert lock.acquire(blocking=False)
    with pytest.raises(LockError):
        lock.extend(10)
    lock.release()


def test_reacquire_resets_the_ttl(r, name):
    lock = r.lock(name, timeout=30)
    assert lock.acquire(blocking=False)
    assert lock.extend(8, replace_ttl=True)
    assert 0 < r.pttl(name) <= 8_000
    assert lock.reacquire() is True
    assert 10_000 < r.pttl(name) <= 30_000
    assert lock.owned()
    lock.release()


def test_scripts_are_loaded_again_after_script_flush(r, name):
    lock = r.lock(name, timeout=30)
    assert lock.acquire(blocking=False)
    lock.release()
    scripts = type(lock)
    assert r.script_exists(scripts.lua_release.sha) == [True]

    # redis-py runs EVALSHA, and on NOSCRIPT loads the script and runs EVALSHA again.
    r.script_flush()
    assert r.script_exists(scripts.lua_release.sha, scripts.lua_extend.sha) == [False, False]
    assert lock.acquire(blocking=False)
    assert lock.extend(10)
    lock.release()
    assert r.exists(name) == 0
    assert r.script_exists(scripts.lua_release.sha, scripts.lua_extend.sha) == [True, True]


def test_context_manager(r, name):
    with r.lock(name, timeout=30, blocking_timeout=EVENTUALLY) as lock:
        assert lock.owned()
        assert r.lock(name).acquire(blocking=False) is False
    assert r.exists(name) == 0


def test_eight_threads_times_fifty_increments_under_the_lock(r, name):
    threads, rounds = 8, 50
    counter = f"{name}:counter"
    inside = 0
    overlaps = []
    failures = []
    guard = threading.Lock()

    stop = threading.Event()  # set on the first failure, so the others give up soon
    deadline = time.monotonic() + 240

    def worker(index):
        nonlocal inside
        try:
            for round_ in range(rounds):
                lock = r.lock(name, timeout=60, sleep=0.01)
                # Blocking acquire, in slices so a failure elsewhere ends the test soon.
                while not lock.acquire(blocking=True, blocking_timeout=1):
                    if stop.is_set():
                        return
                    if time.monotonic() > deadline:
                        failures.append(f"thread {index} round {round_}: no lock in 240 s")
                        stop.set()
                        return
                with guard:
                    inside += 1
                    if inside != 1:
                        overlaps.append((index, round_, inside))
                # A read-modify-write that only the lock keeps from losing updates.
                value = int(r.get(counter) or 0)
                r.set(counter, value + 1)
                with guard:
                    inside -= 1
                lock.release()
        except Exception as err:
            failures.append(f"thread {index}: {type(err).__name__}: {err}")
            stop.set()

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(300)
        assert not thread.is_alive(), "a worker is still running after 300 s"
    assert failures == []
    assert overlaps == []
    assert int(r.get(counter)) == threads * rounds == 400
    assert r.exists(name) == 0
