//! ramfs: an in-memory file server speaking 9P2000 and 9P2000.L.
//!
//! - [`fs`]: the file tree, shared by every connection and every front end.
//! - [`error`]: every error with its 9P2000 string and Linux errno.
//! - [`ninep_server`]: the 9P front end: sessions, fids, both dialects, the connection loop.
//! - [`transport`]: unix sockets, TCP and stdio as connections.
//! - [`redox_scheme`]: the Redox scheme front end over the same tree (`ramfs --scheme
//!   NAME` on Redox); off Redox only its platform-neutral bookkeeping is built, unless
//!   the `redox-scheme-tests` feature builds the handler for host tests.
//! - [`signals`]: SIGINT/SIGTERM handling; with a unix socket's peer credentials in
//!   [`transport`], the only OS-specific code.
//!
//! # Semantics
//!
//! **Sessions.** Tversion picks the dialect: "9P2000.L", or "9P2000" for any other
//! version starting with "9P"; anything else is answered "unknown". msize is clipped to
//! 256..=1 MiB, and a new Tversion clunks every fid of the session. Tauth is refused
//! (no authentication is configured): `Rlerror(ENOENT)` in 9P2000.L, as diod answers,
//! and an `Rerror` in 9P2000. A message of the other dialect gets "Function not
//! implemented" / `ENOSYS`. Pipelined reads and writes of files may be answered at once
//! on several threads (never two requests on one file when either writes); every other
//! request is answered after those before it, so an Rflush follows the reply of the
//! request it names.
//!
//! **Identities.** A 9P2000 attach names a user; a 9P2000.L attach gives a number
//! (`n_uname`). One registry keeps names and numbers consistent ("root" = 0, "nobody"
//! = 65534, other names from 100000). A name is registered for good, so a new name
//! from a client is at most 255 bytes (longer: "File name too long" / `ENAMETOOLONG`
//! at attach) and its registration counts against the memory limit; a refused wstat
//! registers no group. 9P2000 uses Plan 9's permission rules (no
//! superuser, a user is in the group of the same name and in those a `--users` file
//! lists it in); 9P2000.L uses POSIX rules with uid 0 privileged and the same groups,
//! except that after a root attach the connection's other users are judged by the
//! client, which knows their groups (diod's rule, `ninep_server::client_checks`).
//! Writes, truncations and chowns by anyone but uid 0 clear set-id bits; a
//! `Tsetattr` size through a fid opened for writing is not checked again. The root directory belongs to `--owner` (default "ramfs") and
//! has mode 0777, so a Linux 9P2000 mount (which attaches as "nobody") can create files.
//!
//! **Who may attach.** An attach name is a claim, checked against what the transport
//! knows of the peer ([`ninep_server::AttachRule`]): a unix-socket client that is not
//! root may attach only as its own uid (`SO_PEERCRED`; in 9P2000 as the name the
//! registry has for that number, its decimal digits unless it has another name), and
//! anything else is "Operation not permitted" / `EPERM`; root, `--stdio` and TCP
//! clients are believed, and so is everyone with `--trust-attach-names`.
//!
//! **Plan 9 rules (9P2000).** qid.path is unique and never reused; qid.vers changes with
//! every change. `DMAPPEND` files are written at their end, `DMEXCL` files are open at
//! most once, ORCLOSE files are removed at clunk and when the connection drops (not
//! directories: "illegal mode"), OTRUNC empties. Walking needs search permission,
//! creating needs write permission in the directory, and a created file's permissions
//! follow open(5)'s mask rule; the group is the directory's. A full directory cannot be
//! removed. Wstat is all or nothing, with the don't-touch values; a new name renames the
//! file in its directory; type, dev, qid and muid cannot change. Directory reads return
//! whole stat records; an offset must be 0 or where the last read ended; if the next
//! record does not fit a non-zero count, the read fails ("Invalid argument", as Linux's
//! getdents says for a buffer too small) rather than return the empty reply that means
//! the end. Records are at most 1069 bytes, since names are at most 255.
//!
//! **Linux rules (9P2000.L).** An open fid may be walked to a new fid (Linux's client
//! clones open fids under cache=loose; the clone is not open); getattr/setattr with the
//! valid masks; readdir returns "." and ".." and then the entries, each with a
//! per-directory sequence number as its offset cookie, so a listing continues correctly
//! while the directory changes (a count too small for the next entry is `EINVAL`, not
//! an empty reply);
//! symlinks, hard links, rename/renameat/unlinkat, mknod (fifos, sockets, devices);
//! statfs reports the memory limit in 4 KiB blocks; POSIX record locks per file, owned
//! by (connection, client_id, proc_id), never blocking (a conflict answers
//! `STATUS_BLOCKED` and the Linux client retries; a `client_id` longer than 255 bytes
//! is `EINVAL`; each lock record counts against the memory limit, `ENOSPC` past it,
//! and a file keeps at most 1024, `STATUS_ERROR` past that); fsync succeeds (memory is all
//! there is); extended attributes are kept in memory and count against the limit.
//!
//! **Errors.** 9P2000 error strings are all ones Linux's `net/9p/error.c` table knows
//! (see [`error`]), so a Linux program sees a real errno, never "Unknown error 526".
//! A badly framed message (size below 7 or above msize, a field overrunning, an unknown
//! type) closes that connection only; anything else is answered with an error, including
//! a well-framed message whose insides disagree with its size (a Twstat's stat record
//! of the wrong inner size or with bytes after it: "bogus wstat buffer" / `EINVAL`;
//! bytes after any other message's last field: "Invalid argument" / `EINVAL`), and
//! nothing is done for it. No input panics the server.
//!
//! **Memory.** File data counts by 4 KiB page (holes are free), plus names, symlink
//! targets, extended attributes, and [`fs::NODE_COST`] bytes a file; a copy of an
//! extended attribute held by a 9P2000.L `Txattrwalk` fid counts until its clunk (so a
//! getxattr on a full tree fails with `ENOSPC`). An operation past
//! `--max-memory` fails ("file system is full" / `ENOSPC`) and changes nothing. Pages
//! kept allocated for a memory mapping after a truncation (see below) still count until
//! the mapping lets them go.
//!
//! **Redox scheme.** `ramfs --scheme NAME` (Redox only) serves the same tree as a
//! scheme: `openat` (`O_CREAT`, `O_EXCL`, `O_TRUNC`, `O_DIRECTORY`, `O_STAT`,
//! `O_NOFOLLOW`/`O_SYMLINK`), `unlinkat`, `read`, `write`, `getdents`, `fchmod`,
//! `fchown`, `fcntl`, `fpath`, `fstat`, `fstatvfs`, `fsync`, `ftruncate`, `futimens`,
//! `frename`, `fevent` (always ready) and `mmap_prep`/`munmap`, with POSIX permission
//! checks as the caller's uid and gid (calls that arrive without credentials are judged
//! as the handle's opener). It exits 0 once its root handle is closed and no handle is
//! open and no page is mapped. See [`redox_scheme`].
//!
//! **Mapped pages.** `mmap_prep` borrows file pages through [`fs::Tree::lend_pages`]:
//! one address at which the pages lie side by side, kept in place until `munmap` gives
//! them back (the file's pages live in page-aligned runs that are merged when a window
//! first needs it, `fs/data.rs`). The loans are the tree's, so both front ends respect
//! them: a truncation that would drop a mapped page fails and changes nothing ("file in
//! use" in 9P2000, which Linux reads as `ETXTBSY`; `ETXTBSY` in 9P2000.L and on Redox),
//! writes land in the mapped pages, and a removed file stays, with its memory, until its
//! last mapped page comes back. A hole in a mapped window gets a zero page without
//! changing the file's length, data, times or version.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod error;
pub mod fs;
#[doc(hidden)]
pub mod fuzzing;
mod id_hash;
pub mod ninep_server;
pub mod redox_scheme;
pub mod signals;
pub mod transport;
