"""redis-py's ACL support, unmodified, against a real raftlock node, on RESP2 and RESP3:
`acl_setuser`, `acl_getuser` (which parses the reply), `acl_whoami`, `acl_log`, and a
client that authenticates with `username=` and `password=`.

`tests/compat.rs` starts the node (its `default` user open) and runs this file with
pytest, the port in RAFTLOCK_PORT. By hand:

    RAFTLOCK_PORT=6379 target/compat-venv/bin/python -m pytest tests/compat/test_redis_py_acl.py -v
"""

import os

import pytest
import redis
from redis.exceptions import AuthenticationError, NoPermissionError

HOST = os.environ.get("RAFTLOCK_HOST", "127.0.0.1")
PORT = int(os.environ["RAFTLOCK_PORT"])
PROTOCOLS = [int(p) for p in os.environ.get("RAFTLOCK_RESP", "2,3").split(",") if p]


def client(protocol, **auth):
    return redis.Redis(
        host=HOST, port=PORT, protocol=protocol, socket_timeout=30, decode_responses=True, **auth
    )


@pytest.fixture(params=PROTOCOLS, ids=lambda p: f"resp{p}")
def protocol(request):
    return request.param


@pytest.fixture
def admin(protocol):
    con = client(protocol)
    con.acl_setuser(
        "pyalice",
        enabled=True,
        passwords=["+pypw"],
        keys=["lock:*"],
        commands=["+get", "+set", "+lock", "+acl|whoami"],
    )
    yield con
    con.acl_deluser("pyalice")
    con.close()


def test_a_user_authenticates_with_username_and_password(admin, protocol):
    alice = client(protocol, username="pyalice", password="pypw")
    assert alice.acl_whoami() == "pyalice"
    assert alice.set("lock:py", "v")
    assert alice.get("lock:py") == "v"
    assert alice.execute_command("LOCK", "lock:pylock", "me", 30000) > 0
    with pytest.raises(NoPermissionError, match="No permissions to access a key"):
        alice.get("other")
    with pytest.raises(
        NoPermissionError, match="User pyalice has no permissions to run the 'del' command"
    ):
        alice.delete("lock:py")
    alice.close()


def test_acl_getuser_parses_and_a_wrong_password_is_refused(admin, protocol):
    user = admin.acl_getuser("pyalice")
    assert "on" in user["flags"]
    assert user["keys"] == ["~lock:*"] or user["keys"] == "~lock:*"
    assert "+lock" in user["commands"]
    wrong = client(protocol, username="pyalice", password="nope")
    with pytest.raises(AuthenticationError):
        wrong.ping()
    entries = admin.acl_log()
    assert any(e["reason"] == "auth" and e["username"] == "pyalice" for e in entries), entries
