"""redis-py's own `Sentinel` client, unmodified, against a real 3-node raftlock cluster.

`tests/compat.rs` (`redis_py_sentinel_follows_a_leader_kill`) starts the cluster and runs
this file with pytest. It passes every node's client address in RAFTLOCK_SENTINELS
("host:port,host:port,...") and a directory in RAFTLOCK_HANDSHAKE_DIR through which this
file asks the Rust side to kill -9 the leader: it writes the leader's port to
`kill-request` and waits for `killed`.

The client is told only the sentinel addresses and the master name `raftlock`; it finds
the new leader after the kill by itself. Every wait is bounded and generous (the machine
is shared); measured times are printed.
"""

import os
import time
import uuid

import redis
from redis.exceptions import ConnectionError, LockNotOwnedError, ResponseError, TimeoutError
from redis.sentinel import Sentinel

SENTINELS = [
    (host, int(port))
    for host, port in (
        addr.rsplit(":", 1) for addr in os.environ["RAFTLOCK_SENTINELS"].split(",") if addr
    )
]
HANDSHAKE = os.environ["RAFTLOCK_HANDSHAKE_DIR"]
MASTER = "raftlock"

# How long the client may take to lock again after the kill before the test fails.
FAILOVER_BOUND = 60.0
# Errors a client sees while the cluster fails over; anything else fails the test.
TRANSIENT = (ConnectionError, TimeoutError)


def transient(error):
    if isinstance(error, TRANSIENT):
        return True
    return isinstance(error, ResponseError) and str(error).startswith(("NOLEADER", "TRYAGAIN"))


def ask_for_leader_kill(port):
    """Asks the Rust side to kill -9 the node on `port`; returns once it is dead."""
    tmp = os.path.join(HANDSHAKE, "kill-request.tmp")
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, os.path.join(HANDSHAKE, "kill-request"))
    killed = os.path.join(HANDSHAKE, "killed")
    deadline = time.monotonic() + 60
    while not os.path.exists(killed):
        assert time.monotonic() < deadline, "the leader was not killed within 60 s"
        time.sleep(0.02)


def release(lock):
    """Releases `lock`, retrying through a failover. A release whose reply was lost may
    have happened; then the retry finds the lock no longer ours."""
    deadline = time.monotonic() + FAILOVER_BOUND
    lost_reply = False
    while True:
        try:
            lock.release()
            return
        except LockNotOwnedError:
            assert lost_reply, "a lock we held was not ours at release"
            return
        except Exception as e:  # noqa: BLE001 - filtered by transient()
            if not transient(e) or time.monotonic() > deadline:
                raise
            lost_reply = True
            time.sleep(0.05)


def test_sentinel_client_keeps_locking_across_a_leader_kill():
    sentinel = Sentinel(SENTINELS, socket_timeout=5, socket_connect_timeout=2)
    master = sentinel.master_for(
        MASTER, socket_timeout=10, socket_connect_timeout=2, decode_responses=True
    )
    _, old_port = sentinel.discover_master(MASTER)
    assert old_port in [port for _, port in SENTINELS]
    assert master.execute_command("ROLE")[0] == "master"

    prefix = f"compat:sentinel:{uuid.uuid4().hex}"
    for i in range(5):
        lock = master.lock(f"{prefix}:job", timeout=30)
        assert lock.acquire(blocking_timeout=10), f"lock {i} before the kill"
        release(lock)
    # A lock held across the kill: acknowledged, so it must survive the failover.
    held = master.lock(f"{prefix}:held", timeout=120)
    assert held.acquire(blocking=False)

    ask_for_leader_kill(old_port)
    killed_at = time.monotonic()

    acquired, attempts, errors = [], 0, []
    while len(acquired) < 5:
        attempts += 1
        elapsed = time.monotonic() - killed_at
        assert elapsed < FAILOVER_BOUND, (
            f"only {len(acquired)} locks within {FAILOVER_BOUND} s of the kill "
            f"after {attempts} attempts; errors: {errors[-5:]}"
        )
        try:
            lock = master.lock(f"{prefix}:after:{len(acquired)}", timeout=30)
            if lock.acquire(blocking_timeout=5):
                acquired.append(time.monotonic() - killed_at)
                release(lock)
        except Exception as e:  # noqa: BLE001 - filtered by transient()
            if not transient(e):
                raise
            errors.append(f"{elapsed:.2f}s {type(e).__name__}: {e}")
            time.sleep(0.05)

    _, new_port = sentinel.discover_master(MASTER)
    assert new_port != old_port, "the dead node is still named the master"
    assert master.execute_command("ROLE")[0] == "master"
    # Nothing acknowledged was lost: the lock held across the kill is still ours.
    assert held.owned(), "the lock held across the kill was lost"
    other = master.lock(f"{prefix}:held", timeout=10)
    assert not other.acquire(blocking=False), "the held lock was granted twice"
    release(held)

    print(
        f"\nredis-py Sentinel: leader on port {old_port} killed; the client locked again "
        f"{acquired[0] * 1000:.0f} ms after the kill (5 locks by {acquired[-1] * 1000:.0f} ms), "
        f"new master on port {new_port}, {attempts} attempts, {len(errors)} transient errors"
    )
    for error in errors[:10]:
        print(f"  {error}")
