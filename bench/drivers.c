/*
 * drivers.c - the benchmark's two drivers and the life cycle of a side.
 *
 * posix_driver: plain system calls on paths under side->root, which is a
 * kernel FUSE mountpoint (SIDE_KERNEL) or a tmpfs directory (SIDE_TMPFS).
 * ufuse_driver: the same calls through include/ufuse.h on side->s.
 * A file handle (void *) is the fd (intptr_t) for posix and the
 * ufuse_file_t * for ufuse.
 *
 * Side life cycle: side_attach() starts the server (kernel: fork + exec of
 * the server with the mountpoint, then wait until /proc/self/mountinfo
 * lists a fuse mount there and a statfs() has gone through INIT; ufuse:
 * ufuse_mount() with the same argv, "{}" standing for the mountpoint).
 * side_detach() unmounts (kernel: umount2, then waits for the server to
 * exit, killing it after 5 s; ufuse: ufuse_unmount()).
 *
 * Locks: none; a side is attached and detached by the main thread only.
 * Invariant: sd->up is true exactly while a server runs for the side.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *side_path(const struct side *sd, const char *path, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s", sd->root, path);
    return buf;
}

/* ------------------------------------------------------------------ */
/* POSIX driver                                                        */

static int px_open(struct side *sd, const char *path, int flags, mode_t mode, void **fh)
{
    char p[PATH_MAX];
    int fd = open(side_path(sd, path, p, sizeof(p)), flags | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    *fh = (void *)(intptr_t)fd;
    return 0;
}

static int px_close(struct side *sd, void *fh)
{
    return close((int)(intptr_t)fh) < 0 ? -errno : 0;
}

static ssize_t px_pread(void *fh, void *buf, size_t n, off_t off)
{
    ssize_t r = pread((int)(intptr_t)fh, buf, n, off);
    return r < 0 ? -errno : r;
}

static ssize_t px_pwrite(void *fh, const void *buf, size_t n, off_t off)
{
    ssize_t r = pwrite((int)(intptr_t)fh, buf, n, off);
    return r < 0 ? -errno : r;
}

static int px_fsync(void *fh)
{
    return fsync((int)(intptr_t)fh) < 0 ? -errno : 0;
}

static int px_stat(struct side *sd, const char *path, struct stat *st)
{
    char p[PATH_MAX];
    return stat(side_path(sd, path, p, sizeof(p)), st) < 0 ? -errno : 0;
}

static int px_mkdir(struct side *sd, const char *path, mode_t mode)
{
    char p[PATH_MAX];
    return mkdir(side_path(sd, path, p, sizeof(p)), mode) < 0 ? -errno : 0;
}

static int px_unlink(struct side *sd, const char *path)
{
    char p[PATH_MAX];
    return unlink(side_path(sd, path, p, sizeof(p))) < 0 ? -errno : 0;
}

static int px_rmdir(struct side *sd, const char *path)
{
    char p[PATH_MAX];
    return rmdir(side_path(sd, path, p, sizeof(p))) < 0 ? -errno : 0;
}

static long px_listdir(struct side *sd, const char *path)
{
    char p[PATH_MAX];
    DIR *d = opendir(side_path(sd, path, p, sizeof(p)));
    if (!d)
        return -errno;
    long n = 0;
    errno = 0;
    while (readdir(d))
        n++;
    long r = errno ? -errno : n;
    closedir(d);
    return r;
}

const struct driver posix_driver = {
    .name = "posix",
    .open = px_open, .close = px_close, .pread = px_pread, .pwrite = px_pwrite,
    .fsync = px_fsync, .stat = px_stat, .mkdir = px_mkdir, .unlink = px_unlink,
    .rmdir = px_rmdir, .listdir = px_listdir,
};

/* ------------------------------------------------------------------ */
/* ufuse driver                                                        */

static int uf_open(struct side *sd, const char *path, int flags, mode_t mode, void **fh)
{
    ufuse_file_t *f;
    int r = ufuse_open(sd->s, path, flags, mode, &f);
    if (r == 0)
        *fh = f;
    return r;
}

static int uf_close(struct side *sd, void *fh)
{
    return ufuse_close(fh);
}

static ssize_t uf_pread(void *fh, void *buf, size_t n, off_t off)
{
    return ufuse_pread(fh, buf, n, off);
}

static ssize_t uf_pwrite(void *fh, const void *buf, size_t n, off_t off)
{
    return ufuse_pwrite(fh, buf, n, off);
}

static int uf_fsync(void *fh)
{
    return ufuse_fsync(fh);
}

static int uf_stat(struct side *sd, const char *path, struct stat *st)
{
    return ufuse_stat(sd->s, path, st);
}

static int uf_mkdir(struct side *sd, const char *path, mode_t mode)
{
    return ufuse_mkdir(sd->s, path, mode);
}

static int uf_unlink(struct side *sd, const char *path)
{
    return ufuse_unlink(sd->s, path);
}

static int uf_rmdir(struct side *sd, const char *path)
{
    return ufuse_rmdir(sd->s, path);
}

static long uf_listdir(struct side *sd, const char *path)
{
    ufuse_dir_t *d;
    int r = ufuse_opendir(sd->s, path, &d);
    if (r < 0)
        return r;
    struct ufuse_dirent *ent = malloc(sizeof(*ent));
    if (!ent) {
        ufuse_closedir(d);
        return -ENOMEM;
    }
    long n = 0;
    while ((r = ufuse_readdir(d, ent)) == 1)
        n++;
    free(ent);
    ufuse_closedir(d);
    return r < 0 ? r : n;
}

const struct driver ufuse_driver = {
    .name = "ufuse",
    .open = uf_open, .close = uf_close, .pread = uf_pread, .pwrite = uf_pwrite,
    .fsync = uf_fsync, .stat = uf_stat, .mkdir = uf_mkdir, .unlink = uf_unlink,
    .rmdir = uf_rmdir, .listdir = uf_listdir,
};

/* ------------------------------------------------------------------ */
/* Sides                                                               */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool is_fuse_mounted(const char *dir)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        char mp[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strcmp(mp, dir) == 0 &&
            strstr(line, " - fuse"))
            found = true;
    }
    fclose(f);
    return found;
}

void drop_caches(void)
{
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "3", 1) < 0) {
            /* not root: nothing to drop, the fresh mount still counts */
        }
        close(fd);
    }
}

static int kernel_attach(struct side *sd)
{
    char *argv[17];
    int n = 0;
    for (int i = 0; i < sd->cmd.argc; i++)
        argv[n++] = strcmp(sd->cmd.argv[i], "{}") == 0 ? sd->root : sd->cmd.argv[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int fd = open(sd->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    double t0 = now_s();
    while (!is_fuse_mounted(sd->root)) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "bench: %s exited before mounting (status 0x%x); see %s\n",
                    argv[0], st, sd->log);
            return -EPROTO;
        }
        /* ufuse-memfs seeds its 1 GiB /big before it mounts: that took
         * up to a minute on a loaded machine (a hang guard, not a limit) */
        if (now_s() - t0 > 120) {
            fprintf(stderr, "bench: %s did not mount within 120 s\n", argv[0]);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -ETIMEDOUT;
        }
        usleep(1000);
    }
    /* mount(2) returns before INIT is answered: the first statfs waits */
    struct statfs sfs;
    statfs(sd->root, &sfs);
    sd->pid = pid;
    return 0;
}

static int kernel_detach(struct side *sd)
{
    double t0 = now_s();
    while (umount2(sd->root, 0) != 0 && is_fuse_mounted(sd->root)) {
        if (now_s() - t0 > 5) {
            umount2(sd->root, MNT_DETACH);
            break;
        }
        usleep(10000);
    }
    int rc = 0;
    for (;;) {
        int st;
        pid_t r = waitpid(sd->pid, &st, WNOHANG);
        if (r == sd->pid)
            break;
        if (r < 0 && errno != EINTR)
            break;
        if (now_s() - t0 > 5) {
            fprintf(stderr, "bench: server %d did not exit after the unmount: killing it\n",
                    (int)sd->pid);
            kill(sd->pid, SIGKILL);
            waitpid(sd->pid, NULL, 0);
            rc = -ETIMEDOUT;
            break;
        }
        usleep(1000);
    }
    sd->pid = 0;
    return rc;
}

int side_attach(struct side *sd)
{
    if (sd->up)
        return 0;
    int r = 0;
    switch (sd->kind) {
    case SIDE_TMPFS:
        break;
    case SIDE_KERNEL:
        r = kernel_attach(sd);
        break;
    case SIDE_UFUSE:
        r = ufuse_mount(&sd->s, sd->cmd.argv, sd->ufuse_opts);
        if (r < 0)
            fprintf(stderr, "bench: ufuse_mount(%s, \"%s\"): %s; see %s\n", sd->cmd.argv[0],
                    sd->ufuse_opts, strerror(-r), sd->log);
        break;
    }
    sd->up = r == 0;
    return r;
}

int side_detach(struct side *sd)
{
    if (!sd->up)
        return 0;
    int r = 0;
    switch (sd->kind) {
    case SIDE_TMPFS:
        break;
    case SIDE_KERNEL:
        r = kernel_detach(sd);
        break;
    case SIDE_UFUSE:
        r = ufuse_unmount(sd->s);
        sd->s = NULL;
        /* a server that exits 1 when its channel closes is a normal end */
        if (r == -EIO)
            r = 0;
        break;
    }
    sd->up = false;
    return r;
}

int side_remount(struct side *sd)
{
    if (sd->kind == SIDE_TMPFS)
        return 0;
    side_detach(sd);
    drop_caches();
    return side_attach(sd);
}

const char *kernel_unavailable(void)
{
    if (geteuid() != 0)
        return "not root";
    if (access("/dev/fuse", R_OK | W_OK) != 0)
        return "no usable /dev/fuse";
    return NULL;
}
