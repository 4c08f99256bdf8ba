"""A small RESP2 client over a raw socket, so that every timeout and connection error is
the harness's own to classify (redis-py retries and reconnects behind our back)."""

import socket


class RespError(Exception):
    """An error reply (`-ERR ...`, `-TRYAGAIN ...`): the server answered."""


class ConnectionLost(Exception):
    """No reply: the connection failed, closed, or timed out."""


def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bytes):
            b = a
        else:
            b = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Conn:
    """One connection to one node. After any ConnectionLost the connection is closed and
    the next call opens a new one."""

    def __init__(self, host, port, timeout=1.5, connect_timeout=1.0, source=None):
        self.host = host
        self.source = source
        self.port = port
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.sock = None
        self.reader = None

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.reader = None

    def _connect(self):
        try:
            self.sock = socket.create_connection(
                (self.host, self.port), self.connect_timeout,
                source_address=(self.source, 0) if self.source else None)
        except OSError as e:
            self.close()
            raise ConnectionLost(f"connect {self.host}:{self.port}: {e}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def call(self, *args, timeout=None):
        """Sends one command and returns its reply; raises RespError for an error reply
        and ConnectionLost when no reply came within the timeout."""
        self.send(args, timeout=timeout)
        return self.reply()

    def send(self, *commands, timeout=None):
        """Sends commands at once (a pipeline); read their replies with reply()."""
        if self.sock is None:
            self._connect()
        self._io(lambda: (self.sock.settimeout(timeout if timeout is not None
                                               else self.timeout),
                          self.sock.sendall(b"".join(encode(c) for c in commands))))

    def reply(self):
        """The next reply; RespError for an error reply, ConnectionLost for none."""
        if self.sock is None:
            raise ConnectionLost(f"no connection to {self.host}:{self.port}")
        return self._io(self._read)

    def _io(self, fn):
        try:
            return fn()
        except RespError:
            raise
        except (OSError, ValueError, EOFError) as e:
            self.close()
            kind = "timeout" if isinstance(e, (socket.timeout, TimeoutError)) else "error"
            raise ConnectionLost(f"{kind} on {self.host}:{self.port}: {e!r}") from None

    def _line(self):
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise EOFError("connection closed")
        return line[:-2]

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.reader.read(n + 2)
            if len(data) != n + 2:
                raise EOFError("connection closed")
            return data[:-2].decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            items = []
            for _ in range(n):
                try:
                    items.append(self._read())
                except RespError as e:
                    items.append(e)
            return items
        raise ValueError(f"unexpected reply {line[:40]!r}")
