/*
 * hook-probe.c - a tiny program that test-fusehook runs with
 * libufuse-fusehook.so preloaded, to look at the hook from inside the
 * process it is loaded into (a libfuse server cannot tell us that).
 *
 * It is built without sanitizers (a preloaded library and an ASan runtime
 * do not mix) and uses libc only.  It performs a fixed sequence of calls and
 * prints one "key value..." line per result on stdout; the test parses
 * them.  It has no state beyond main()'s locals and takes no locks.
 *
 * usage: hook-probe MOUNTPOINT OTHERDIR
 *   MOUNTPOINT is what UFUSE_MOUNTPOINT names (or would name), OTHERDIR an
 *   unrelated directory that is not a mount point.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* glibc's fortify entry point, called directly to check the hook has it. */
extern int __open_2(const char *path, int flags);

/* "open NAME fd cloexec ino errno" for one attempt to open /dev/fuse. */
static int report_open(const char *name, int fd)
{
    int err = fd < 0 ? errno : 0;
    int cloexec = -1;
    unsigned long long ino = 0;
    int is_sock = 0;
    struct stat st;
    if (fd >= 0) {
        cloexec = (fcntl(fd, F_GETFD) & FD_CLOEXEC) ? 1 : 0;
        if (fstat(fd, &st) == 0) {
            ino = (unsigned long long)st.st_ino;
            is_sock = S_ISSOCK(st.st_mode);
        }
    }
    printf("open %s %d %d %llu %d %d\n", name, fd, cloexec, ino, is_sock, err);
    return fd;
}

static void report_call(const char *name, int rc)
{
    printf("call %s %d %d\n", name, rc, rc < 0 ? errno : 0);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: hook-probe MOUNTPOINT OTHERDIR\n");
        return 2;
    }
    const char *mnt = argv[1], *other = argv[2];
    const char *v;

    /* What the constructor left in the environment. */
    v = getenv("LD_PRELOAD");
    printf("env LD_PRELOAD %s\n", v ? v : "(unset)");
    v = getenv("UFUSE_FUSE_FD");
    printf("env UFUSE_FUSE_FD %s\n", v ? v : "(unset)");
    v = getenv("UFUSE_MOUNTPOINT");
    printf("env UFUSE_MOUNTPOINT %s\n", v ? v : "(unset)");
    v = getenv("UFUSE_EXTRA");
    printf("env UFUSE_EXTRA %s\n", v ? v : "(unset)");

    /* Every route to /dev/fuse. */
    int fds[8], n = 0;
    fds[n++] = report_open("open", open("/dev/fuse", O_RDWR | O_CLOEXEC));
    fds[n++] = report_open("open64", open64("/dev/fuse", O_RDWR));
    fds[n++] = report_open("openat", openat(AT_FDCWD, "/dev/fuse",
                                            O_RDWR | O_CLOEXEC));
    fds[n++] = report_open("openat64", openat64(-1, "/dev/fuse", O_RDWR));
    fds[n++] = report_open("__open_2", __open_2("/dev/fuse", O_RDWR));
    /* A plain file still opens normally through the hook. */
    int nul = open("/dev/null", O_RDONLY);
    struct stat st;
    printf("open /dev/null %d %d\n", nul >= 0 ? 1 : 0,
           nul >= 0 && fstat(nul, &st) == 0 && S_ISCHR(st.st_mode));
    if (nul >= 0)
        close(nul);

    /* mount(2) and umount(2). */
    char slash[4096];
    snprintf(slash, sizeof(slash), "%s/", mnt);
    report_call("mount_fuse", mount("probe", mnt, "fuse", 0, ""));
    report_call("mount_fuse_subtype",
                mount("probe", mnt, "fuse.probe", MS_NOSUID, ""));
    report_call("mount_fuse_slash", mount("probe", slash, "fuse", 0, ""));
    report_call("mount_other_fstype",
                mount("probe", mnt, "ufuse-no-such-fs", 0, ""));
    report_call("mount_other_dir", mount("probe", other, "fuse", 0, ""));
    report_call("umount2_mnt", umount2(mnt, MNT_DETACH));
    report_call("umount_mnt", umount(mnt));
    report_call("umount2_other", umount2(other, 0));

    /* Close every descriptor of the socket, then ask again. */
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    report_open("after_close", open("/dev/fuse", O_RDWR));
    fflush(stdout);
    return 0;
}
