"""A small synchronous ZooKeeper wire client for the compat suites.

It speaks the ZooKeeper 3.8 client protocol directly (4-byte big-endian frame
length, jute records) so that the suites can check what kazoo hides or lacks:
exact error codes, reply headers, notification frames, persistent watches,
containers and TTL nodes, and deliberately broken input.

One `Conn` is one TCP connection. Requests are sent one at a time; while a
reply is awaited, notifications (xid -1) are queued in `Conn.events` in the
order they arrive, so a test can prove a notification came *before* a reply.
Every read has a deadline: nothing here can block forever.
"""

import collections
import os
import socket
import struct
import time

# Opcodes (ZooDefs.OpCode).
OP_NOTIFICATION = 0
OP_CREATE = 1
OP_DELETE = 2
OP_EXISTS = 3
OP_GET_DATA = 4
OP_SET_DATA = 5
OP_GET_ACL = 6
OP_SET_ACL = 7
OP_GET_CHILDREN = 8
OP_SYNC = 9
OP_PING = 11
OP_GET_CHILDREN2 = 12
OP_CHECK = 13
OP_MULTI = 14
OP_CREATE2 = 15
OP_RECONFIG = 16
OP_CHECK_WATCHES = 17
OP_REMOVE_WATCHES = 18
OP_CREATE_CONTAINER = 19
OP_DELETE_CONTAINER = 20
OP_CREATE_TTL = 21
OP_MULTI_READ = 22
OP_AUTH = 100
OP_SET_WATCHES = 101
OP_SASL = 102
OP_GET_EPHEMERALS = 103
OP_GET_ALL_CHILDREN_NUMBER = 104
OP_SET_WATCHES2 = 105
OP_ADD_WATCH = 106
OP_WHO_AM_I = 107
OP_CLOSE_SESSION = -11
OP_ERROR = -1

# Special xids.
XID_NOTIFICATION = -1
XID_PING = -2
XID_AUTH = -4
XID_SET_WATCHES = -8

# Error codes (KeeperException.Code).
OK = 0
RUNTIME_INCONSISTENCY = -2
MARSHALLING_ERROR = -5
UNIMPLEMENTED = -6
BAD_ARGUMENTS = -8
NO_NODE = -101
NO_AUTH = -102
BAD_VERSION = -103
NO_CHILDREN_FOR_EPHEMERALS = -108
NODE_EXISTS = -110
NOT_EMPTY = -111
SESSION_EXPIRED = -112
INVALID_ACL = -114
AUTH_FAILED = -115
NO_WATCHER = -121
QUOTA_EXCEEDED = -125

# Create flags (CreateMode).
PERSISTENT = 0
EPHEMERAL = 1
PERSISTENT_SEQUENTIAL = 2
EPHEMERAL_SEQUENTIAL = 3
CONTAINER = 4
PERSISTENT_WITH_TTL = 5
PERSISTENT_SEQUENTIAL_WITH_TTL = 6

# Event types (Watcher.Event.EventType) and the one state a server sends.
EV_NODE_CREATED = 1
EV_NODE_DELETED = 2
EV_NODE_DATA_CHANGED = 3
EV_NODE_CHILDREN_CHANGED = 4
STATE_SYNC_CONNECTED = 3

# Watcher types for checkWatches/removeWatches, and addWatch modes.
WATCHER_CHILDREN = 1
WATCHER_DATA = 2
WATCHER_ANY = 3
ADD_WATCH_PERSISTENT = 0
ADD_WATCH_PERSISTENT_RECURSIVE = 1

PERM_READ = 1
PERM_WRITE = 2
PERM_CREATE = 4
PERM_DELETE = 8
PERM_ADMIN = 16
PERM_ALL = 31

OPEN_ACL = [(PERM_ALL, "world", "anyone")]

Stat = collections.namedtuple(
    "Stat",
    "czxid mzxid ctime mtime version cversion aversion ephemeralOwner "
    "dataLength numChildren pzxid",
)
STAT_FORMAT = struct.Struct("!qqqqiiiqiiq")
Event = collections.namedtuple("Event", "type state path zxid")
ConnectResponse = collections.namedtuple(
    "ConnectResponse", "protocol_version timeout session_id passwd read_only raw_len"
)
MultiResult = collections.namedtuple("MultiResult", "type err value")


class ZkError(Exception):
    """A reply whose header carried a non-zero error code."""

    def __init__(self, code, op=None):
        super().__init__("ZooKeeper error %d (op %s)" % (code, op))
        self.code = code
        self.op = op


class Closed(Exception):
    """The server closed the connection (EOF or reset)."""


# ---------------------------------------------------------------- encoding


def enc_int(v):
    return struct.pack("!i", v)


def enc_long(v):
    return struct.pack("!q", v)


def enc_bool(v):
    return b"\x01" if v else b"\x00"


def enc_buffer(b):
    if b is None:
        return enc_int(-1)
    return enc_int(len(b)) + b


def enc_string(s):
    if s is None:
        return enc_int(-1)
    if isinstance(s, str):
        s = s.encode("utf-8")
    return enc_int(len(s)) + s


def enc_acl(acl):
    out = enc_int(len(acl))
    for perms, scheme, ident in acl:
        out += enc_int(perms) + enc_string(scheme) + enc_string(ident)
    return out


def enc_strings(items):
    out = enc_int(len(items))
    for s in items:
        out += enc_string(s)
    return out


def frame(payload):
    return enc_int(len(payload)) + payload


class Reader:
    """Decodes jute fields from a reply body, front to back."""

    def __init__(self, data, offset=0):
        self.data = data
        self.offset = offset

    def remaining(self):
        return len(self.data) - self.offset

    def int(self):
        (v,) = struct.unpack_from("!i", self.data, self.offset)
        self.offset += 4
        return v

    def long(self):
        (v,) = struct.unpack_from("!q", self.data, self.offset)
        self.offset += 8
        return v

    def bool(self):
        v = self.data[self.offset]
        self.offset += 1
        return v != 0

    def buffer(self):
        n = self.int()
        if n < 0:
            return None
        v = self.data[self.offset : self.offset + n]
        if len(v) != n:
            raise ValueError("short buffer")
        self.offset += n
        return bytes(v)

    def string(self):
        b = self.buffer()
        return None if b is None else b.decode("utf-8")

    def stat(self):
        v = Stat._make(STAT_FORMAT.unpack_from(self.data, self.offset))
        self.offset += STAT_FORMAT.size
        return v

    def acl(self):
        n = self.int()
        out = []
        for _ in range(max(n, 0)):
            perms = self.int()
            out.append((perms, self.string(), self.string()))
        return out

    def strings(self):
        n = self.int()
        return [self.string() for _ in range(max(n, 0))]


def parse_hosts(hosts):
    """`h1:p1,h2:p2[/chroot]` -> [(h1, p1), ...]."""
    hosts = hosts.split("/", 1)[0]
    out = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        out.append((host, int(port)))
    return out


def env_hosts():
    hosts = os.environ.get("ZK_HOSTS")
    if not hosts:
        raise RuntimeError("ZK_HOSTS is not set (expected 127.0.0.1:PORT[,...])")
    return hosts


# ---------------------------------------------------------------- four letter words


def four_letter(cmd, addr=None, timeout=10.0, extra=b""):
    """Send a four-letter word on a fresh connection and read until EOF."""
    if addr is None:
        addr = parse_hosts(env_hosts())[0]
    if isinstance(cmd, str):
        cmd = cmd.encode("ascii")
    deadline = time.monotonic() + timeout
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(cmd + extra)
        chunks = []
        while True:
            s.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


# ---------------------------------------------------------------- connection


class Conn:
    """One client connection, with or without a completed handshake."""

    def __init__(self, addr=None, io_timeout=10.0, source=None):
        """source: the local address to connect from (e.g. "127.0.0.2")."""
        if addr is None:
            addr = parse_hosts(env_hosts())[0]
        self.addr = addr
        self.io_timeout = io_timeout
        self.sock = socket.create_connection(
            addr, timeout=io_timeout, source_address=None if source is None else (source, 0)
        )
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.xid = 0
        self.events = collections.deque()
        self.session_id = 0
        self.passwd = b"\x00" * 16
        self.timeout = 0
        self.last_zxid = 0

    # -- lifecycle

    @classmethod
    def session(cls, addr=None, timeout_ms=30000, source=None, **kw):
        """Open a connection and create a new session (handshake done)."""
        c = cls(addr, source=source)
        resp = c.handshake(timeout_ms=timeout_ms, **kw)
        if resp is None or resp.timeout <= 0:
            c.close()
            raise Closed("handshake refused: %r" % (resp,))
        return c

    def handshake(
        self,
        timeout_ms=30000,
        session_id=0,
        passwd=b"\x00" * 16,
        last_zxid=0,
        read_only=False,
        send_read_only=True,
        protocol_version=0,
    ):
        """Send a ConnectRequest; return the ConnectResponse or None on close."""
        body = (
            enc_int(protocol_version)
            + enc_long(last_zxid)
            + enc_int(timeout_ms)
            + enc_long(session_id)
            + enc_buffer(passwd)
        )
        if send_read_only:
            body += enc_bool(read_only)
        self.send_raw(frame(body))
        try:
            payload = self.read_frame()
        except Closed:
            return None
        r = Reader(payload)
        proto = r.int()
        timeout = r.int()
        sid = r.long()
        pw = r.buffer()
        ro = r.bool() if r.remaining() > 0 else None
        resp = ConnectResponse(proto, timeout, sid, pw, ro, len(payload))
        if timeout > 0:
            self.session_id, self.passwd, self.timeout = sid, pw, timeout
        return resp

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def close_session(self):
        """Send closeSession (-11) and wait for its reply and the close."""
        hdr, _ = self.call(OP_CLOSE_SESSION, b"", check=False)
        return hdr

    # -- raw I/O

    def send_raw(self, data):
        self.sock.sendall(data)

    def _recv_some(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from server in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from server in time")
        except (ConnectionResetError, BrokenPipeError):
            raise Closed("connection reset")
        if not chunk:
            raise Closed("connection closed by server")
        self.buf += chunk

    def read_frame(self, timeout=None):
        deadline = time.monotonic() + (self.io_timeout if timeout is None else timeout)
        while len(self.buf) < 4:
            self._recv_some(deadline)
        (n,) = struct.unpack_from("!i", self.buf, 0)
        if n < 0 or n > 64 * 1024 * 1024:
            raise ValueError("bad frame length from server: %d" % n)
        while len(self.buf) < 4 + n:
            self._recv_some(deadline)
        payload = self.buf[4 : 4 + n]
        self.buf = self.buf[4 + n :]
        return payload

    def wait_closed(self, timeout=None):
        """True if the server closes the connection (EOF or RST) in time,
        having sent nothing more; raises if it sends data instead."""
        deadline = time.monotonic() + (self.io_timeout if timeout is None else timeout)
        try:
            while True:
                self._recv_some(deadline)
                if self.buf:
                    raise AssertionError("server sent data: %r" % self.buf[:64])
        except Closed:
            return True
        except TimeoutError:
            return False

    def read_reply(self, timeout=None):
        """Next non-notification frame -> (xid, zxid, err, Reader)."""
        while True:
            payload = self.read_frame(timeout)
            r = Reader(payload)
            xid, zxid, err = r.int(), r.long(), r.int()
            if xid == XID_NOTIFICATION:
                ev = Event(r.int(), r.int(), r.string(), zxid)
                self.events.append(ev)
                continue
            if zxid > 0:
                self.last_zxid = max(self.last_zxid, zxid)
            return xid, zxid, err, r

    # -- requests

    def next_xid(self):
        self.xid += 1
        return self.xid

    def send_request(self, op, body=b"", xid=None):
        if xid is None:
            xid = self.next_xid()
        self.send_raw(frame(enc_int(xid) + enc_int(op) + body))
        return xid

    def call(self, op, body=b"", check=True, xid=None):
        """Send one request, return ((xid, zxid, err), Reader of the body)."""
        xid = self.send_request(op, body, xid=xid)
        rxid, zxid, err, r = self.read_reply()
        if rxid != xid:
            raise AssertionError("reply xid %d for request xid %d" % (rxid, xid))
        if check and err != OK:
            raise ZkError(err, op)
        return (rxid, zxid, err), r

    def ping(self):
        self.send_raw(frame(enc_int(XID_PING) + enc_int(OP_PING)))
        xid, zxid, err, r = self.read_reply()
        return xid, zxid, err, r.remaining()

    def wait_event(self, timeout=10.0):
        """Next notification, waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        while not self.events:
            payload = self.read_frame(max(deadline - time.monotonic(), 0.001))
            r = Reader(payload)
            xid, zxid = r.int(), r.long()
            r.int()  # err: always 0 on notifications and pings
            if xid == XID_NOTIFICATION:
                self.events.append(Event(r.int(), r.int(), r.string(), zxid))
            elif xid != XID_PING:
                raise AssertionError("unexpected reply xid %d while waiting" % xid)
        return self.events.popleft()

    def drain_events(self):
        """Round-trip a ping: every notification the server queued before
        it is then in `events` (replies are ordered after notifications)."""
        self.ping()
        out = list(self.events)
        self.events.clear()
        return out

    # -- operations (raise ZkError on a non-zero error code)

    def create(self, path, data=b"", acl=OPEN_ACL, flags=0, op=None, ttl=None):
        """Create; returns (path, stat or None). op defaults by mode."""
        if op is None:
            if ttl is not None:
                op = OP_CREATE_TTL
            elif flags == CONTAINER:
                op = OP_CREATE_CONTAINER
            else:
                op = OP_CREATE2
        body = enc_string(path) + enc_buffer(data) + enc_acl(acl) + enc_int(flags)
        if op == OP_CREATE_TTL:
            body += enc_long(-1 if ttl is None else ttl)
        _, r = self.call(op, body)
        created = r.string()
        stat = r.stat() if op != OP_CREATE else None
        return created, stat

    def delete(self, path, version=-1):
        self.call(OP_DELETE, enc_string(path) + enc_int(version))

    def exists(self, path, watch=False):
        """Stat or None. NoNode is not an error here (and sets the watch)."""
        (_, _, err), r = self.call(OP_EXISTS, enc_string(path) + enc_bool(watch), check=False)
        if err == NO_NODE:
            return None
        if err != OK:
            raise ZkError(err, OP_EXISTS)
        return r.stat()

    def get_data(self, path, watch=False):
        _, r = self.call(OP_GET_DATA, enc_string(path) + enc_bool(watch))
        return r.buffer(), r.stat()

    def set_data(self, path, data, version=-1):
        _, r = self.call(OP_SET_DATA, enc_string(path) + enc_buffer(data) + enc_int(version))
        return r.stat()

    def get_acl(self, path):
        _, r = self.call(OP_GET_ACL, enc_string(path))
        return r.acl(), r.stat()

    def set_acl(self, path, acl, version=-1):
        _, r = self.call(OP_SET_ACL, enc_string(path) + enc_acl(acl) + enc_int(version))
        return r.stat()

    def get_children(self, path, watch=False):
        _, r = self.call(OP_GET_CHILDREN, enc_string(path) + enc_bool(watch))
        return r.strings()

    def get_children2(self, path, watch=False):
        _, r = self.call(OP_GET_CHILDREN2, enc_string(path) + enc_bool(watch))
        return r.strings(), r.stat()

    def sync(self, path):
        _, r = self.call(OP_SYNC, enc_string(path))
        return r.string()

    def add_watch(self, path, mode):
        _, r = self.call(OP_ADD_WATCH, enc_string(path) + enc_int(mode))
        return r

    def remove_watches(self, path, wtype):
        self.call(OP_REMOVE_WATCHES, enc_string(path) + enc_int(wtype))

    def check_watches(self, path, wtype):
        self.call(OP_CHECK_WATCHES, enc_string(path) + enc_int(wtype))

    def get_ephemerals(self, prefix):
        _, r = self.call(OP_GET_EPHEMERALS, enc_string(prefix))
        return r.strings()

    def get_all_children_number(self, path):
        _, r = self.call(OP_GET_ALL_CHILDREN_NUMBER, enc_string(path))
        return r.int()

    def who_am_i(self):
        _, r = self.call(OP_WHO_AM_I)
        n = r.int()
        return [(r.string(), r.string()) for _ in range(max(n, 0))]

    def auth(self, scheme, credential):
        """Send an AuthPacket (xid -4); return the reply's error code."""
        body = enc_int(0) + enc_string(scheme) + enc_buffer(credential)
        (xid, _, err), _ = self.call(OP_AUTH, body, check=False, xid=XID_AUTH)
        return err

    def multi(self, ops, op=OP_MULTI):
        """ops: list of (opcode, body bytes). Returns (outer err, [MultiResult])."""
        body = b""
        for opcode, opbody in ops:
            body += enc_int(opcode) + enc_bool(False) + enc_int(-1) + opbody
        body += enc_int(-1) + enc_bool(True) + enc_int(-1)
        (_, _, err), r = self.call(op, body, check=False)
        if err != OK:
            return err, []
        results = []
        while True:
            rtype, done, rerr = r.int(), r.bool(), r.int()
            if done:
                break
            if rtype == OP_ERROR:
                results.append(MultiResult(rtype, rerr, r.int()))
            elif rtype == OP_CREATE:
                results.append(MultiResult(rtype, rerr, r.string()))
            elif rtype in (OP_CREATE2, OP_CREATE_CONTAINER, OP_CREATE_TTL):
                results.append(MultiResult(rtype, rerr, (r.string(), r.stat())))
            elif rtype == OP_SET_DATA:
                results.append(MultiResult(rtype, rerr, r.stat()))
            elif rtype in (OP_DELETE, OP_CHECK):
                results.append(MultiResult(rtype, rerr, None))
            elif rtype == OP_GET_DATA:
                results.append(MultiResult(rtype, rerr, (r.buffer(), r.stat())))
            elif rtype == OP_GET_CHILDREN:
                results.append(MultiResult(rtype, rerr, r.strings()))
            else:
                raise AssertionError("unknown multi result type %d" % rtype)
        return err, results


# Bodies of multi ops.


def op_create(path, data=b"", acl=OPEN_ACL, flags=0, opcode=OP_CREATE):
    return opcode, enc_string(path) + enc_buffer(data) + enc_acl(acl) + enc_int(flags)


def op_delete(path, version=-1):
    return OP_DELETE, enc_string(path) + enc_int(version)


def op_set_data(path, data, version=-1):
    return OP_SET_DATA, enc_string(path) + enc_buffer(data) + enc_int(version)


def op_check(path, version):
    return OP_CHECK, enc_string(path) + enc_int(version)


def op_get_data(path):
    return OP_GET_DATA, enc_string(path) + enc_bool(False)


def op_get_children(path):
    return OP_GET_CHILDREN, enc_string(path) + enc_bool(False)


def end_session(conn, timeout=5.0):
    """Best effort: close `conn`'s session so it leaves no ephemerals and no
    later expiry txn behind. If its connection is gone, resume the session on
    a new connection and close it there."""
    sid, pw = conn.session_id, conn.passwd
    try:
        conn.sock.settimeout(timeout)
        conn.close_session()
        return
    except Exception:
        pass
    finally:
        conn.close()
    if not sid:
        return
    try:
        other = Conn(conn.addr, io_timeout=timeout)
    except OSError:
        return
    try:
        resp = other.handshake(session_id=sid, passwd=pw)
        if resp is not None and resp.timeout > 0:
            other.close_session()
    except Exception:
        pass
    finally:
        other.close()


def wait_until(predicate, timeout=10.0, interval=0.05):
    """Poll `predicate` until true; only for states with no event to await."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
