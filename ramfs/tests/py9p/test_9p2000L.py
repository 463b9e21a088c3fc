"""py9p (PyPI p9fs) as a 9P2000.L client of ramfs.

usage: python3 test_9p2000L.py unix:PATH|tcp:HOST:PORT
py9p attaches with n_uname 0 (root). The server must be fresh (empty root).
"""
import os
import sys

from py9p import py9p

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from p9util import (  # noqa: E402
    AT_REMOVEDIR, ENOENT, ENOTEMPTY, O_CREAT, O_DIRECTORY, O_RDONLY, O_RDWR, S_IFDIR,
    S_IFMT, S_IFREG, Failed, check, client, expect_error, renameat, run)

ADDRESS = sys.argv[1]
DATA = b"9P2000.L from py9p\n" * 500
DIR = 20  # fid of /ldir, kept for the *at requests
st = {}


def login():
    c = client(ADDRESS, "root", py9p.Version.v9P2000L, msize=16384)
    check(c.msize == 16384, "msize %d" % c.msize)
    st["c"] = c


def mkdir():
    c = st["c"]
    r = c._mkdir(c.ROOT, "ldir", 0o750)
    check(r.qid.type & py9p.QTDIR, "qid type %r" % r.qid.type)
    c._walk(c.ROOT, DIR, ["ldir"])
    (a,) = c._getattr(DIR).stat
    check(a.mode == S_IFDIR | 0o750, "mode %o" % a.mode)


def lcreate_write():
    c = st["c"]
    c._walk(DIR, c.F, [])
    r = c._lcreate(c.F, "file", O_RDWR | O_CREAT, 0o640, 0)
    check(r.qid.type == 0, "qid type %r" % r.qid.type)
    chunk = c.msize - py9p.IOHDRSZ
    for off in range(0, len(DATA), chunk):
        piece = DATA[off:off + chunk]
        check(c._write(c.F, off, piece).count == len(piece), "short write")
    c.close()


def getattr_():
    c = st["c"]
    c.walk("/ldir/file")
    (a,) = c._getattr(c.F).stat
    c.close()
    check(a.mode == S_IFREG | 0o640, "mode %o" % a.mode)
    check(a.length == len(DATA), "size %d" % a.length)
    check(a.uid == 0 and a.gid == 0, "uid/gid %d/%d" % (a.uid, a.gid))


def lopen_read():
    c = st["c"]
    c.walk("/ldir/file")
    c._lopen(c.F, O_RDONLY)
    got, off = b"", 0
    while True:
        piece = c._read(c.F, off, c.msize).data
        if not piece:
            break
        got += piece
        off += len(piece)
    c.close()
    check(got == DATA, "read %d bytes" % len(got))


def readdir_names(c, fid):
    """Every name of an opened directory, following Treaddir offsets."""
    names, offset = [], 0
    while True:
        entries = c._readdir(fid, offset, 300).stat
        if not entries:
            return names
        names += [e.name for e in entries]
        offset = entries[-1].offset


def readdir():
    c = st["c"]
    c._walk(DIR, c.F, [])
    for i in range(30):
        c._mkdir(c.F, "sub%02d" % i, 0o755)
    c._lopen(c.F, O_RDONLY | O_DIRECTORY)
    names = readdir_names(c, c.F)
    c.close()
    want = ["file"] + ["sub%02d" % i for i in range(30)]
    check(sorted(n for n in names if n not in (".", "..")) == want, "names %r" % names)
    check(len(names) == len(set(names)), "a name came twice: %r" % names)


def rename():
    c = st["c"]
    renameat(c, DIR, "file", c.ROOT, "moved")
    expect_error(lambda: c.walk("/ldir/file"), "incomplete walk (1 out of 2)", "old name")
    c.walk("/moved")
    (a,) = c._getattr(c.F).stat
    c.close()
    check(a.length == len(DATA), "moved size %d" % a.length)
    expect_error(lambda: renameat(c, DIR, "nosuch", DIR, "x"), ENOENT, "rename a missing name")


def unlinkat():
    c = st["c"]
    expect_error(lambda: c._unlinkat(c.ROOT, "ldir", AT_REMOVEDIR), ENOTEMPTY, "rmdir a full directory")
    for i in range(30):
        c._unlinkat(DIR, "sub%02d" % i, AT_REMOVEDIR)
    c._unlinkat(c.ROOT, "moved", 0)
    c._unlinkat(c.ROOT, "ldir", AT_REMOVEDIR)
    expect_error(lambda: c._walk(c.ROOT, c.F, ["ldir"]), ENOENT, "walk to a removed directory")
    c._walk(c.ROOT, c.F, [])
    c._lopen(c.F, O_RDONLY)
    left = [n for n in readdir_names(c, c.F) if n not in (".", "..")]
    c.close()
    check(left == [], "root not empty: %r" % left)


def disconnect():
    st["c"].fd.close()


if __name__ == "__main__":
    try:
        run([
            ("version and attach", login),
            ("mkdir and getattr", mkdir),
            ("lcreate and write", lcreate_write),
            ("getattr", getattr_),
            ("lopen and read", lopen_read),
            ("readdir across many Treaddir", readdir),
            ("renameat", rename),
            ("unlinkat", unlinkat),
            ("disconnect", disconnect),
        ])
    except Failed as e:
        print("FAIL", e)
        sys.exit(1)
