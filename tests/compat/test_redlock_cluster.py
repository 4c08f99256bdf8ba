"""Redlock pointed at the nodes of ONE raftlock cluster: redlock-py and pottery's Redlock,
unmodified, one redis-py client per node, as a Redlock deployment has one per server.

Every copy of a request a client sends to the nodes must be answered alike
(docs/LOCKS.md, "Redlock on the nodes of one cluster"), so the client reaches its
majority, and two clients must never hold the lock at once.

tests/compat.rs starts a 3-node cluster and runs this file with pytest, passing the nodes'
client ports in RAFTLOCK_PORTS (comma-separated). By hand:

    RAFTLOCK_PORTS=7001,7002,7003 target/compat-venv/bin/python -m pytest \\
        tests/compat/test_redlock_cluster.py -v
"""

import os
import threading
import time
import uuid

import pottery
import redis
import redlock

HOST = os.environ.get("RAFTLOCK_HOST", "127.0.0.1")
PORTS = [int(port) for port in os.environ["RAFTLOCK_PORTS"].split(",")]


def per_node():
    return [
        redis.Redis(host=HOST, port=port, socket_timeout=30, socket_connect_timeout=10)
        for port in PORTS
    ]


def resource(label):
    return f"compat:redlock-cluster:{label}:{uuid.uuid4()}"


def redlock_py(retry_count=20):
    """Retries span a leader change (a second or two), as a deployment's would."""
    return redlock.Redlock(
        [{"host": HOST, "port": port, "socket_timeout": 30} for port in PORTS],
        retry_count=retry_count,
        retry_delay=0.2,
    )


def test_redlock_py_locks_and_unlocks_with_a_majority_of_the_nodes():
    dlm = redlock_py()
    name = resource("redlock-py")
    lock = dlm.lock(name, 10_000)
    assert lock, "redlock-py did not get the lock"
    assert lock.validity > 0
    for node in per_node():
        assert node.get(name) == lock.key
    rival = redlock_py(retry_count=1)
    assert rival.lock(name, 10_000) is False
    dlm.unlock(lock)
    assert per_node()[1].exists(name) == 0
    taken = rival.lock(name, 10_000)
    assert taken, "the lock was released, yet the rival did not get it"
    rival.unlock(taken)


def test_pottery_acquires_extends_and_releases():
    name = resource("pottery")
    lock = pottery.Redlock(key=name, masters=set(per_node()), auto_release_time=5)
    assert lock.acquire(timeout=10), "pottery did not get the lock"
    held_for = lock.locked()
    assert 0 < held_for <= 5
    rival = pottery.Redlock(key=name, masters=set(per_node()), auto_release_time=5)
    assert not rival.acquire(blocking=False)
    time.sleep(1)
    lock.extend()
    assert lock.locked() > 4
    lock.release()
    assert not lock.locked()
    assert rival.acquire(timeout=10), "the lock was released, yet the rival did not get it"
    rival.release()


def test_pottery_clients_contending_never_hold_the_lock_at_once():
    name = resource("contended")
    until = time.monotonic() + 4
    state = {"holder": None, "sections": 0, "overlaps": []}
    guard = threading.Lock()

    def worker(worker_id):
        lock = pottery.Redlock(key=name, masters=set(per_node()), auto_release_time=5)
        while time.monotonic() < until:
            if not lock.acquire(timeout=1):
                continue
            with guard:
                if state["holder"] is not None:
                    state["overlaps"].append((worker_id, state["holder"]))
                state["holder"] = worker_id
            time.sleep(0.01)
            with guard:
                state["holder"] = None
                state["sections"] += 1
            lock.release()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state["overlaps"] == [], f"two holders at once: {state['overlaps']}"
    assert state["sections"] > 4, f"only {state['sections']} critical sections ran"
