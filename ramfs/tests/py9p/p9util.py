"""Shared helpers for ramfs's py9p client tests (not a test itself).

py9p is the 9P client of PyPI's `p9fs` package. These helpers connect it to a server
address given as `unix:PATH` or `tcp:HOST:PORT`, report steps, and add the one
9P2000.L request py9p cannot encode (Trenameat).
"""
import socket
import sys
import traceback

from py9p import py9p

TRENAMEAT, RRENAMEAT = 74, 75
AT_REMOVEDIR = 0x200
O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_DIRECTORY = 0, 1, 2, 0o100, 0o200000
S_IFMT, S_IFDIR, S_IFREG = 0o170000, 0o040000, 0o100000
ENOENT, EACCES, ENOTEMPTY = 2, 13, 39


class Failed(Exception):
    """A check of a test step did not hold."""


def check(cond, what):
    if not cond:
        raise Failed(what)


def expect_error(fn, want, what):
    """Runs fn, which must fail with py9p.RpcError whose argument is `want` (an errno
    int in 9P2000.L, a message bytes/str in 9P2000)."""
    try:
        fn()
    except py9p.RpcError as e:
        got = e.args[0] if e.args else None
        if isinstance(got, bytes):
            got = got.decode()
        check(got == want, "%s: error %r, expected %r" % (what, got, want))
        return
    raise Failed("%s: succeeded, expected error %r" % (what, want))


def connect(address):
    """A connected stream socket for `unix:PATH` or `tcp:HOST:PORT`."""
    if address.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(address[len("unix:"):])
    elif address.startswith("tcp:"):
        host, port = address[len("tcp:"):].rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
    else:
        raise ValueError("address must be unix:PATH or tcp:HOST:PORT: %r" % address)
    s.settimeout(30)
    return s


class Marshal(py9p.Marshal9P):
    """py9p's marshaller plus Trenameat, which py9p does not encode."""

    def enc(self, fcall):
        if fcall.type == TRENAMEAT:
            self.encF("=BH", fcall.type, fcall.tag)
            self.encF("I", fcall.olddirfid)
            self.encS(fcall.oldname)
            self.encF("I", fcall.newdirfid)
            self.encS(fcall.newname)
        else:
            super().enc(fcall)


py9p.cmdName.setdefault(TRENAMEAT, "Trenameat")
py9p.cmdName.setdefault(RRENAMEAT, "Rrenameat")


def client(address, user, version, msize=8192):
    """A logged-in py9p client (Tversion, Tauth attempt, Tattach, clone of the root)."""
    c = py9p.Client(connect(address), py9p.Credentials(user), ver=version, msize=msize)
    c.fd.marshal = Marshal(dotu=c.dotu)
    return c


def renameat(c, olddirfid, oldname, newdirfid, newname):
    f = py9p.Fcall(TRENAMEAT)
    f.olddirfid, f.oldname, f.newdirfid, f.newname = olddirfid, oldname, newdirfid, newname
    return c._rpc(f)


def run(steps):
    """Runs (name, function) pairs in order; prints one line each; exits 0 if all
    passed, 1 at the first failure."""
    for name, fn in steps:
        try:
            fn()
        except Exception:
            print("FAIL %s" % name)
            traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
            sys.exit(1)
        print("ok   %s" % name)
        sys.stdout.flush()
    print("all %d steps passed" % len(steps))
    sys.exit(0)
