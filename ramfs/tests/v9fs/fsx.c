/* fsx.c: a small fsx-style file exerciser for a 9P mount, written for ramfs's tests.
 *
 *   fsx [-n OPS] [-s SEED] [-l MAXLEN] [-c COPY] FILE
 *
 * Applies a pseudo-random sequence of pwrite, pread, ftruncate, fstat and close/reopen
 * to FILE (on the mount under test) and to COPY (a local file, default /tmp/fsx.copy),
 * and keeps an in-memory model of what the file must hold.  Every read of FILE is
 * compared with the model, every size with the model's size; at the end both whole
 * files are compared with the model.  The run is reproducible from SEED, which is
 * printed first.  On a mismatch the last operations are printed and the exit status
 * is 1; usage errors and I/O errors exit 2; success exits 0.
 *
 * Build: gcc -static -O2 -o fsx fsx.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum op_kind { OP_WRITE, OP_READ, OP_TRUNCATE, OP_STAT, OP_REOPEN };
static const char *op_names[] = { "write", "read", "truncate", "stat", "reopen" };

struct op { enum op_kind kind; uint64_t off, len; };

#define HISTORY 32
static struct op history[HISTORY];
static unsigned long nops_done;

static uint64_t rng_state;

/* xorshift64*: small, deterministic, good enough to pick offsets. */
static uint64_t rng(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static uint64_t below(uint64_t n) { return n ? rng() % n : 0; }

static void record(enum op_kind k, uint64_t off, uint64_t len) {
    history[nops_done % HISTORY] = (struct op){ k, off, len };
    nops_done++;
}

static void dump_history(void) {
    unsigned long first = nops_done > HISTORY ? nops_done - HISTORY : 0;
    fprintf(stderr, "fsx: last operations (oldest first):\n");
    for (unsigned long i = first; i < nops_done; i++) {
        struct op *o = &history[i % HISTORY];
        fprintf(stderr, "fsx:   #%lu %s off=%" PRIu64 " len=%" PRIu64 "\n", i,
                op_names[o->kind], o->off, o->len);
    }
}

static void fail(const char *what) {
    fprintf(stderr, "fsx: FAIL after %lu ops: %s\n", nops_done, what);
    dump_history();
    exit(1);
}

static void io_fail(const char *what) {
    fprintf(stderr, "fsx: I/O error after %lu ops: %s: %s\n", nops_done, what,
            strerror(errno));
    dump_history();
    exit(2);
}

static void full_pwrite(int fd, const unsigned char *buf, size_t len, off_t off,
                        const char *what) {
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) io_fail(what);
        buf += n; len -= (size_t)n; off += n;
    }
}

/* Reads up to len bytes; returns how many (less only at end of file). */
static size_t full_pread(int fd, unsigned char *buf, size_t len, off_t off,
                         const char *what) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, off + (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) io_fail(what);
        if (n == 0) break;
        got += (size_t)n;
    }
    return got;
}

static void compare(const unsigned char *got, const unsigned char *want, size_t len,
                    uint64_t off, const char *which) {
    for (size_t i = 0; i < len; i++) {
        if (got[i] != want[i]) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "%s: byte at offset %" PRIu64 " is 0x%02x, model has 0x%02x", which,
                     off + i, got[i], want[i]);
            fail(msg);
        }
    }
}

static void check_size(int fd, uint64_t want, const char *which) {
    struct stat st;
    if (fstat(fd, &st) < 0) io_fail("fstat");
    if ((uint64_t)st.st_size != want) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: size %lld, model has %" PRIu64, which,
                 (long long)st.st_size, want);
        fail(msg);
    }
}

/* Compares a whole file with the model. */
static void check_whole(int fd, const unsigned char *model, uint64_t size,
                        unsigned char *scratch, const char *which) {
    check_size(fd, size, which);
    size_t got = full_pread(fd, scratch, size + 1, 0, which);
    if (got != size) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: read %zu bytes of a %" PRIu64 "-byte file", which,
                 got, size);
        fail(msg);
    }
    compare(scratch, model, size, 0, which);
}

int main(int argc, char **argv) {
    unsigned long nops = 300;
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    uint64_t maxlen = 256 * 1024;
    const char *copy_path = "/tmp/fsx.copy";
    int c;
    while ((c = getopt(argc, argv, "n:s:l:c:")) != -1) {
        switch (c) {
        case 'n': nops = strtoul(optarg, NULL, 0); break;
        case 's': seed = strtoull(optarg, NULL, 0); break;
        case 'l': maxlen = strtoull(optarg, NULL, 0); break;
        case 'c': copy_path = optarg; break;
        default: goto usage;
        }
    }
    if (optind != argc - 1 || maxlen == 0) {
    usage:
        fprintf(stderr, "usage: fsx [-n OPS] [-s SEED] [-l MAXLEN] [-c COPY] FILE\n");
        return 2;
    }
    const char *path = argv[optind];
    printf("fsx: seed=%" PRIu64 " ops=%lu maxlen=%" PRIu64 " file=%s\n", seed, nops,
           maxlen, path);
    fflush(stdout);
    rng_state = seed ? seed : 1;

    unsigned char *model = calloc(maxlen, 1);
    unsigned char *scratch = malloc(maxlen + 1);
    unsigned char *data = malloc(maxlen);
    if (!model || !scratch || !data) { fprintf(stderr, "fsx: out of memory\n"); return 2; }
    uint64_t size = 0;

    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) io_fail("open file");
    int cfd = open(copy_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (cfd < 0) io_fail("open copy");

    unsigned long counts[5] = { 0 };
    for (unsigned long i = 0; i < nops; i++) {
        uint64_t r = below(100);
        enum op_kind k = r < 40 ? OP_WRITE : r < 75 ? OP_READ : r < 88 ? OP_TRUNCATE
                       : r < 95 ? OP_STAT : OP_REOPEN;
        counts[k]++;
        if (k == OP_WRITE) {
            /* Mostly small writes, sometimes large ones that span several 9P messages. */
            uint64_t off = below(maxlen);
            uint64_t cap = below(8) == 0 ? maxlen - off : (maxlen - off < 4096 ? maxlen - off : 4096);
            uint64_t len = 1 + below(cap);
            for (uint64_t j = 0; j < len; j++) data[j] = (unsigned char)rng();
            record(k, off, len);
            full_pwrite(fd, data, len, (off_t)off, "pwrite file");
            full_pwrite(cfd, data, len, (off_t)off, "pwrite copy");
            memcpy(model + off, data, len);
            if (off + len > size) size = off + len;
        } else if (k == OP_READ) {
            uint64_t off = below(size + 1);
            uint64_t len = 1 + below(below(8) == 0 ? maxlen : 8192);
            record(k, off, len);
            uint64_t want = off >= size ? 0 : (size - off < len ? size - off : len);
            size_t got = full_pread(fd, scratch, len, (off_t)off, "pread file");
            if (got != want) {
                char msg[160];
                snprintf(msg, sizeof msg, "read at %" PRIu64 " returned %zu bytes, model says %" PRIu64,
                         off, got, want);
                fail(msg);
            }
            compare(scratch, model + off, got, off, "file");
        } else if (k == OP_TRUNCATE) {
            uint64_t ns = below(4) == 0 ? 0 : below(maxlen + 1);
            record(k, ns, 0);
            if (ftruncate(fd, (off_t)ns) < 0) io_fail("ftruncate file");
            if (ftruncate(cfd, (off_t)ns) < 0) io_fail("ftruncate copy");
            /* Growing exposes zeros; shrinking forgets the tail. */
            if (ns < size) memset(model + ns, 0, size - ns);
            size = ns;
        } else if (k == OP_STAT) {
            record(k, size, 0);
            check_size(fd, size, "file");
            check_size(cfd, size, "copy");
        } else {
            record(k, 0, 0);
            if (close(fd) < 0) io_fail("close file");
            fd = open(path, O_RDWR);
            if (fd < 0) io_fail("reopen file");
        }
    }
    check_whole(fd, model, size, scratch, "file");
    check_whole(cfd, model, size, scratch, "copy");
    if (close(fd) < 0) io_fail("close file");
    if (close(cfd) < 0) io_fail("close copy");
    /* After close, a fresh open must see the same bytes (nothing lived only in a cache). */
    fd = open(path, O_RDONLY);
    if (fd < 0) io_fail("final open");
    check_whole(fd, model, size, scratch, "file after reopen");
    close(fd);
    printf("fsx: %lu ops OK (write %lu, read %lu, truncate %lu, stat %lu, reopen %lu), "
           "final size %" PRIu64 ", seed=%" PRIu64 "\n",
           nops, counts[OP_WRITE], counts[OP_READ], counts[OP_TRUNCATE], counts[OP_STAT],
           counts[OP_REOPEN], size, seed);
    return 0;
}
