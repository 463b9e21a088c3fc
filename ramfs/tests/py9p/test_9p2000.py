"""py9p (PyPI p9fs) as a 9P2000 client of ramfs.

usage: python3 test_9p2000.py unix:PATH|tcp:HOST:PORT
The server must be fresh (empty root), owned by "test" (--owner test).
"""
import os
import sys
import time

from py9p import py9p

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from p9util import Failed, check, client, expect_error, run  # noqa: E402

ADDRESS = sys.argv[1]
V = py9p.Version.v9P2000
BIG = bytes((i * 7 + i // 251) & 0xFF for i in range(100_000))
st = {}


def login():
    st["c"] = client(ADDRESS, "test", V, msize=8192)
    check(st["c"].msize == 8192, "msize %d" % st["c"].msize)


def mkdir():
    c = st["c"]
    r = c.create("/dir", perm=py9p.DMDIR | 0o755, mode=py9p.OREAD)
    check(r.qid.type & py9p.QTDIR, "qid type %r" % r.qid.type)
    c.close()


def create_write():
    c = st["c"]
    c.create("/dir/hello.txt", perm=0o644, mode=py9p.ORDWR)
    check(c.write(b"hello, 9p\n") == 10, "short write")
    c.close()


def stat_file():
    (d,) = st["c"].stat("/dir/hello.txt")
    check(d.name == b"hello.txt", "name %r" % d.name)
    check(d.length == 10, "length %d" % d.length)
    check(d.mode == 0o644, "mode %o" % d.mode)
    check(d.uid == b"test" and d.gid == b"test", "owner %r/%r" % (d.uid, d.gid))
    check(d.qid.type == 0, "qid type %r" % d.qid.type)


def read_back():
    c = st["c"]
    c.open("/dir/hello.txt", py9p.OREAD)
    data = c.read(100)
    c.close()
    check(data == b"hello, 9p\n", "read %r" % data)


def walk():
    c = st["c"]
    qids = c.walk("/dir/hello.txt")
    c.close()
    check(len(qids) == 2, "%d qids" % len(qids))
    check(qids[0].type & py9p.QTDIR and qids[1].type == 0, "qid types")
    expect_error(lambda: c.walk("/dir/nosuch"), "incomplete walk (1 out of 2)", "walk to a missing file")


def big_file():
    # 100 KB across many messages: each write and read carries at most msize - 24 bytes.
    c = st["c"]
    chunk = c.msize - py9p.IOHDRSZ
    c.create("/dir/big", perm=0o600, mode=py9p.OWRITE)
    for off in range(0, len(BIG), chunk):
        check(c.write(BIG[off:off + chunk]) == len(BIG[off:off + chunk]), "short write")
    c.close()
    c.open("/dir/big", py9p.OREAD)
    got = b""
    while True:
        piece = c.read(chunk)
        if not piece:
            break
        got += piece
    c.close()
    check(got == BIG, "read back %d bytes, %s" % (len(got), "same" if got == BIG else "different"))
    (d,) = c.stat("/dir/big")
    check(d.length == len(BIG), "length %d" % d.length)


def list_dir():
    c = st["c"]
    check(c.cd("dir"), "cd dir")
    names = sorted(n.decode() for n in c.ls())
    check(names == ["big", "hello.txt"], "ls in dir %r" % names)
    longs = c.ls(long=1)
    check(len(longs) == 2 and all("test" in l for l in longs), "ls -l %r" % longs)
    check(c.cd("/"), "cd /")


def rename():
    c = st["c"]
    c.walk("/dir/hello.txt")
    d = py9p.Dir(0)
    d.type, d.dev, d.qid = 0xFFFF, 0xFFFFFFFF, py9p.Qid(0xFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)
    d.mode, d.atime, d.mtime, d.length = 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF
    d.name, d.uid, d.gid, d.muid = "renamed.txt", "", "", ""
    c._wstat(c.F, [d])
    c.close()
    (s,) = c.stat("/dir/renamed.txt")
    check(s.length == 10, "renamed file length %d" % s.length)
    expect_error(lambda: c.walk("/dir/hello.txt"), "incomplete walk (1 out of 2)", "old name")


def second_client():
    # ramfs serves many clients at once; glenda sees test's files but may not write
    # into test's 0755 directory.
    g = client(ADDRESS, "glenda", V)
    st["g"] = g
    (d,) = g.stat("/dir/big")
    check(d.uid == b"test" and d.length == len(BIG), "glenda's stat")
    expect_error(lambda: g.create("/dir/mine", perm=0o644, mode=py9p.OWRITE),
                 "permission denied", "create in another user's directory")
    g.create("/glenda.txt", perm=0o644, mode=py9p.OWRITE)
    g.write(b"g")
    g.close()
    (d,) = st["c"].stat("/glenda.txt")
    check(d.uid == b"glenda" and d.muid == b"glenda", "owner %r" % d.uid)


def remove():
    c = st["c"]
    expect_error(lambda: c.rm("/dir"), "directory is not empty", "remove a full directory")
    c.rm("/dir/renamed.txt")
    c.rm("/dir/big")
    c.rm("/dir")
    c.rm("/glenda.txt")
    expect_error(lambda: c.walk("/dir"), "file does not exist", "walk to a removed directory")
    c.open("/", py9p.OREAD)
    left = c.lsdir()
    c.close()
    check(left == [], "root not empty: %r" % [x.name for x in left])


def orclose_on_disconnect():
    # A file opened with ORCLOSE is removed when its fid goes, also when the connection
    # drops without a Tclunk (the server clunks every fid of a closed connection).
    t = client(ADDRESS, "test", V)
    t.create("/doomed", perm=0o644, mode=py9p.OWRITE | py9p.ORCLOSE)
    t.write(b"x")
    (d,) = st["c"].stat("/doomed")
    check(d.length == 1, "doomed file length %d" % d.length)
    t.fd.close()
    # The server notices the closed connection on its own time: poll with a deadline.
    deadline = time.monotonic() + 10
    while True:
        try:
            st["c"].walk("/doomed")
            st["c"].close()
        except py9p.RpcError:
            return
        if time.monotonic() > deadline:
            raise Failed("/doomed still exists 10 s after its connection closed")
        time.sleep(0.05)


def disconnect():
    st["g"].fd.close()
    st["c"].fd.close()


if __name__ == "__main__":
    try:
        run([
            ("version and attach", login),
            ("mkdir", mkdir),
            ("create and write", create_write),
            ("stat", stat_file),
            ("read back", read_back),
            ("walk", walk),
            ("100 KB file in msize pieces", big_file),
            ("directory listing", list_dir),
            ("rename by wstat", rename),
            ("second client", second_client),
            ("remove", remove),
            ("ORCLOSE file removed when its connection drops", orclose_on_disconnect),
            ("disconnect", disconnect),
        ])
    except Failed as e:
        print("FAIL", e)
        sys.exit(1)
