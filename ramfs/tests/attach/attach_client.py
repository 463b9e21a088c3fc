"""A minimal 9P2000.L client for tests/attach.rs: connects to the unix socket argv[1],
negotiates 9P2000.L, and attaches once as each uid in argv[2:] ("self" is this
process's euid). Prints one line per attach: "UID attached" or "UID refused ERRNO"."""
import os
import socket
import struct
import sys

NOFID = 0xFFFFFFFF


def frame(mtype, tag, body):
    return struct.pack("<IBH", 7 + len(body), mtype, tag) + body


def string(s):
    b = s.encode()
    return struct.pack("<H", len(b)) + b


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            sys.exit("server closed the connection")
        buf += chunk
    return buf


def recv(sock):
    size = struct.unpack("<I", recv_exact(sock, 4))[0]
    rest = recv_exact(sock, size - 4)
    return rest[0], rest[3:]


sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(10)
sock.connect(sys.argv[1])
sock.sendall(frame(100, 0xFFFF, struct.pack("<I", 8192) + string("9P2000.L")))
mtype, _ = recv(sock)
assert mtype == 101, "expected Rversion, got type %d" % mtype
for fid, arg in enumerate(sys.argv[2:], start=1):
    uid = os.geteuid() if arg == "self" else int(arg)
    body = struct.pack("<II", fid, NOFID) + string("") + string("") + struct.pack("<I", uid)
    sock.sendall(frame(104, fid, body))
    mtype, body = recv(sock)
    if mtype == 105:
        print("%d attached" % uid)
    elif mtype == 7:
        print("%d refused %d" % (uid, struct.unpack("<I", body)[0]))
    else:
        print("%d answered type %d" % (uid, mtype))
