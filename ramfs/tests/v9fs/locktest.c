/* locktest.c: POSIX record locks and flock(2) on a file of the 9P mount.
 *
 *   locktest FILE
 *
 * With 9P2000.L the Linux client forwards a lock it granted locally to the server as
 * Tlock, and asks the server with Tgetlock when no local lock conflicts.  This takes a
 * write lock, tests a disjoint range (no conflict expected), checks from a child process
 * that the locked range conflicts, unlocks, and takes an flock(2) lock.  Prints one line
 * per check; exits 0 when all pass, 1 otherwise.
 *
 * Build: gcc -static -O2 -o locktest locktest.c
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

static void check(int ok, const char *what) {
    printf("locktest: %s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) failures++;
}

static struct flock range(short type, off_t start, off_t len) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = len;
    return fl;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: locktest FILE\n"); return 2; }
    int fd = open(argv[1], O_RDWR | O_CREAT, 0644);
    if (fd < 0) { perror(argv[1]); return 1; }

    struct flock fl = range(F_WRLCK, 0, 10);
    check(fcntl(fd, F_SETLK, &fl) == 0, "F_SETLK write lock [0,10)");

    fl = range(F_WRLCK, 20, 10);
    int r = fcntl(fd, F_GETLK, &fl);
    if (r < 0 || fl.l_type != F_UNLCK)
        printf("locktest: F_GETLK returned %d (%s), type %d start %lld len %lld pid %d\n", r,
               r < 0 ? strerror(errno) : "-", fl.l_type, (long long)fl.l_start,
               (long long)fl.l_len, (int)fl.l_pid);
    check(r == 0 && fl.l_type == F_UNLCK, "F_GETLK [20,30) finds no conflict");

    pid_t child = fork();
    if (child == 0) {
        int cfd = open(argv[1], O_RDWR);
        struct flock c = range(F_WRLCK, 5, 1);
        int r = fcntl(cfd, F_SETLK, &c);
        _exit(r < 0 && (errno == EAGAIN || errno == EACCES) ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "another process cannot lock [5,6)");

    fl = range(F_UNLCK, 0, 10);
    check(fcntl(fd, F_SETLK, &fl) == 0, "F_SETLK unlock [0,10)");

    check(flock(fd, LOCK_EX | LOCK_NB) == 0, "flock LOCK_EX");
    check(flock(fd, LOCK_UN) == 0, "flock LOCK_UN");
    close(fd);
    return failures ? 1 : 0;
}
