/*
 * main.c - ufuse-memfs: command line, options, seeding and the session loop.
 *
 * ufuse-memfs is the in-memory FUSE server that ufuse starts when the user
 * names no server, and the fault-injection server of the test suite.  It is
 * an ordinary libfuse 3 low-level file system: given a directory it mounts
 * there (root mounts directly, others through fusermount3); given
 * /dev/fd/N (libfuse >= 3.3) it serves the already open channel N, e.g. one
 * end of a SOCK_SEQPACKET socketpair.  It never daemonizes.
 *
 * Locks: none here; main() runs alone before the session loop starts and
 * after it ends.  peer_closed is atomic (written from the loop's threads).
 *
 * Exit status: 0 after an unmount, when the client closed the channel
 * (exit_status=N: N then), or on SIGTERM/SIGINT/SIGHUP; 1 on a run-time
 * error or a refused mountpoint (dir_mountpoint), 2 on a usage error, 3
 * when die_after fired.
 *
 * Built with FUSE_USE_VERSION 35 (memfs.h): fuse_session_loop_mt() is then
 * libfuse's 3.2 entry point, which takes the public fuse_loop_config.
 */
#include "memfs.h"

#include <errno.h>
#include <fuse_log.h>
#include <fuse_opt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MEMFS_VERSION "0.1.0"

enum {
    K_ATTR_TIMEOUT, K_ENTRY_TIMEOUT, K_NEGATIVE_TIMEOUT, K_MAX_WRITE,
    K_WRITEBACK, K_DIRECT_IO, K_KEEP_CACHE, K_ATOMIC_TRUNC, K_NO_READDIRPLUS,
    K_ENOSYS, K_SHORT_READ, K_SHORT_WRITE, K_EIO_AT, K_DELAY_MS, K_HANG_INO, K_DIE_AFTER,
    K_SPLICE_READ, K_SEED_FILE, K_SEED_SPARSE, K_EXIT_STATUS, K_DIR_MOUNTPOINT,
    K_IGNORE_INTERRUPTS,
};

static const struct fuse_opt opt_spec[] = {
    FUSE_OPT_KEY("attr_timeout=", K_ATTR_TIMEOUT),
    FUSE_OPT_KEY("entry_timeout=", K_ENTRY_TIMEOUT),
    FUSE_OPT_KEY("negative_timeout=", K_NEGATIVE_TIMEOUT),
    FUSE_OPT_KEY("max_write=", K_MAX_WRITE),
    FUSE_OPT_KEY("writeback", K_WRITEBACK),
    FUSE_OPT_KEY("direct_io", K_DIRECT_IO),
    FUSE_OPT_KEY("keep_cache", K_KEEP_CACHE),
    FUSE_OPT_KEY("atomic_trunc", K_ATOMIC_TRUNC),
    FUSE_OPT_KEY("no_readdirplus", K_NO_READDIRPLUS),
    FUSE_OPT_KEY("enosys=", K_ENOSYS),
    FUSE_OPT_KEY("short_read=", K_SHORT_READ),
    FUSE_OPT_KEY("short_write=", K_SHORT_WRITE),
    FUSE_OPT_KEY("eio_at=", K_EIO_AT),
    FUSE_OPT_KEY("delay_ms=", K_DELAY_MS),
    FUSE_OPT_KEY("hang_ino=", K_HANG_INO),
    FUSE_OPT_KEY("die_after=", K_DIE_AFTER),
    FUSE_OPT_KEY("splice_read", K_SPLICE_READ),
    FUSE_OPT_KEY("seed_file=", K_SEED_FILE),
    FUSE_OPT_KEY("seed_sparse=", K_SEED_SPARSE),
    FUSE_OPT_KEY("exit_status=", K_EXIT_STATUS),
    FUSE_OPT_KEY("dir_mountpoint", K_DIR_MOUNTPOINT),
    FUSE_OPT_KEY("ignore_interrupts", K_IGNORE_INTERRUPTS),
    FUSE_OPT_END
};

struct seed {
    char *path;
    off_t size;
    uint64_t extents, extent_len;   /* seed_file: one extent of size bytes */
};

static struct seed *seeds;
static size_t nseeds;
static atomic_bool peer_closed;
static bool show_debug_log;

static void usage(const char *prog)
{
    printf(
"usage: %s [-o opt[,opt...]] [-d] [-s] MOUNTPOINT\n"
"\n"
"An in-memory file system (libfuse 3 low-level API): ufuse's built-in server\n"
"and the fault-injection server of its tests.  MOUNTPOINT is a directory (a\n"
"kernel mount) or /dev/fd/N, an already open FUSE channel such as one end of\n"
"an AF_UNIX SOCK_SEQPACKET socketpair.  Always runs in the foreground; -s\n"
"serves requests on one thread, otherwise a thread pool does.  -d prints\n"
"libfuse's request log and a \"memfs: OP args pid=N\" line per request.\n"
"\n"
"File-system options (all off by default):\n"
"  -o attr_timeout=S      attribute cache time in seconds (default 1.0)\n"
"  -o entry_timeout=S     name cache time in seconds (default 1.0)\n"
"  -o negative_timeout=S  negative name cache time (default 0: reply ENOENT)\n"
"  -o max_write=BYTES     largest WRITE the client may send (default 1m)\n"
"  -o writeback           ask for the client's writeback cache\n"
"  -o direct_io           set direct_io on every open and create\n"
"  -o keep_cache          set keep_cache on every open and create\n"
"  -o atomic_trunc        ask for FUSE_ATOMIC_O_TRUNC and truncate on open\n"
"                         (otherwise O_TRUNC arrives as a SETATTR)\n"
"  -o no_readdirplus      do not offer READDIRPLUS (answer it ENOSYS)\n"
"  -o splice_read         answer READ through a memfd with fuse_reply_data(),\n"
"                         so that libfuse splices the reply: on a SEQPACKET\n"
"                         socket a large reply then arrives in several\n"
"                         datagrams, and those of replies spliced by\n"
"                         different threads may interleave\n"
"  -o seed_file=PATH:SIZE create the regular file PATH (its parent directory\n"
"                         must exist: normally a name in the root) of SIZE\n"
"                         bytes at start; the byte at offset o is\n"
"                         (uint8_t)((o * 2654435761) >> 13), computed in\n"
"                         unsigned 64-bit arithmetic.  May be repeated.\n"
"  -o seed_sparse=PATH:SIZE:N:LEN  the same, but a sparse file: N extents of\n"
"                         LEN bytes of that pattern, extent i at offset\n"
"                         i * (SIZE / N), the rest holes (SEEK_DATA and\n"
"                         SEEK_HOLE find them).  May be repeated.\n"
"\n"
"Fault injection (all off by default):\n"
"  -o enosys=OP[:OP...]   answer ENOSYS to these requests; OP is one of\n"
"                         lookup getattr setattr readlink mknod mkdir unlink\n"
"                         rmdir symlink rename link open read write flush\n"
"                         release fsync opendir readdir readdirplus\n"
"                         releasedir fsyncdir statfs setxattr getxattr\n"
"                         listxattr removexattr access create fallocate\n"
"                         lseek copy_file_range\n"
"  -o short_read=N        READ replies carry at most N bytes\n"
"  -o short_write=N       WRITE stores and acknowledges at most N bytes\n"
"  -o eio_at=OFF          a READ or WRITE whose range covers byte OFF fails\n"
"                         with EIO\n"
"  -o delay_ms=N          sleep N ms before answering each request (not\n"
"                         INIT, not FORGET); an interrupted one (the\n"
"                         client's FUSE_INTERRUPT) is answered EINTR at once\n"
"  -o hang_ino=N          never answer a request on node N (its node id in\n"
"                         the request header: LOOKUP in it, GETATTR, READ...\n"
"                         of it), unless interrupted: then EINTR\n"
"  -o die_after=N         _exit(3) right after the Nth reply (INIT counts as\n"
"                         the first; FORGETs have no reply and do not count)\n"
"  -o exit_status=N       exit with status N (0..255) when the client closed\n"
"                         the channel, as some servers do (glusterfs: 15)\n"
"  -o ignore_interrupts   let delay_ms and hang_ino requests run their course\n"
"                         even when interrupted, as servers may\n"
"  -o dir_mountpoint      refuse (exit 1 before serving) a MOUNTPOINT that is\n"
"                         not a directory, /dev/fd/N included, as mfsmount does\n"
"\n"
"BYTES, N, OFF and SIZE take k, m, g, t suffixes (powers of 1024).\n"
"libfuse's -o max_threads is ignored (this server uses the libfuse 3.5 loop\n"
"interface); -o clone_fd and -o max_idle_threads apply.\n"
"\n", prog);
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '\0')
        return -1;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
    }
    if (*end != '\0')
        return -1;
    if (shift && v > (ULLONG_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= 0.0))
        return -1;
    *out = v;
    return 0;
}

static int parse_enosys(const char *s, uint64_t *mask)
{
    char *copy = strdup(s);
    if (!copy)
        return -1;
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
        int found = -1;
        for (int i = 0; i < OP_COUNT; i++)
            if (memfs_op_names[i] && strcmp(memfs_op_names[i], tok) == 0)
                found = i;
        if (found < 0 || found == OP_FORGET) {
            fprintf(stderr, "ufuse-memfs: enosys: unknown or unanswerable request '%s'\n", tok);
            rc = -1;
            break;
        }
        *mask |= UINT64_C(1) << found;
    }
    free(copy);
    return rc;
}

/* seed_file=PATH:SIZE, or with @sparse seed_sparse=PATH:SIZE:N:LEN: the
 * numbers are the last colon-separated fields, PATH the rest. */
static int add_seed(const char *arg, bool sparse)
{
    char *path = strdup(arg);
    if (!path)
        return -1;
    uint64_t num[3];                /* SIZE, N, LEN */
    int nnum = sparse ? 3 : 1, rc = -1;
    for (int i = nnum - 1; i >= 0; i--) {
        char *c = strrchr(path, ':');
        if (!c || parse_size(c + 1, &num[i]) != 0)
            goto out;
        *c = '\0';
    }
    uint64_t size = num[0], n = sparse ? num[1] : 1, len = sparse ? num[2] : size;
    /* the extents may touch, never overlap */
    if (!*path || size > (uint64_t)MEMFS_MAX_SIZE || n == 0 || len > size / n)
        goto out;
    struct seed *ns = realloc(seeds, (nseeds + 1) * sizeof(*ns));
    if (!ns)
        goto out;
    seeds = ns;
    seeds[nseeds++] = (struct seed){.path = path, .size = (off_t)size, .extents = n,
                                      .extent_len = len};
    path = NULL;
    rc = 0;
out:
    free(path);
    return rc;
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    (void)data;
    (void)outargs;
    struct memfs_opts *o = &memfs.o;
    const char *val = strchr(arg, '=');
    val = val ? val + 1 : "";
    uint64_t n = 0;
    int bad = 0;
    switch (key) {
    case K_ATTR_TIMEOUT:
        bad = parse_seconds(val, &o->attr_timeout);
        break;
    case K_ENTRY_TIMEOUT:
        bad = parse_seconds(val, &o->entry_timeout);
        break;
    case K_NEGATIVE_TIMEOUT:
        bad = parse_seconds(val, &o->negative_timeout);
        break;
    case K_MAX_WRITE:
        bad = parse_size(val, &n) || n == 0 || n > UINT_MAX;
        o->max_write = (unsigned)n;
        break;
    case K_WRITEBACK:
        o->writeback = true;
        break;
    case K_DIRECT_IO:
        o->direct_io = true;
        break;
    case K_KEEP_CACHE:
        o->keep_cache = true;
        break;
    case K_ATOMIC_TRUNC:
        o->atomic_trunc = true;
        break;
    case K_NO_READDIRPLUS:
        o->no_readdirplus = true;
        break;
    case K_ENOSYS:
        bad = parse_enosys(val, &o->enosys);
        break;
    case K_SHORT_READ:
        bad = parse_size(val, &n) || n == 0;
        o->short_read = (size_t)n;
        break;
    case K_SHORT_WRITE:
        bad = parse_size(val, &n) || n == 0;
        o->short_write = (size_t)n;
        break;
    case K_EIO_AT:
        bad = parse_size(val, &n) || n > (uint64_t)MEMFS_MAX_SIZE;
        o->eio_at = (off_t)n;
        break;
    case K_DELAY_MS:
        bad = parse_size(val, &n) || n > 3600000;
        o->delay_ms = (unsigned)n;
        break;
    case K_HANG_INO:
        bad = parse_size(val, &n) || n == 0;
        o->hang_ino = n;
        break;
    case K_DIE_AFTER:
        bad = parse_size(val, &n) || n == 0;
        o->die_after = n;
        break;
    case K_SPLICE_READ:
        o->splice_read = true;
        break;
    case K_SEED_FILE:
    case K_SEED_SPARSE:
        bad = add_seed(val, key == K_SEED_SPARSE);
        break;
    case K_EXIT_STATUS:
        bad = parse_size(val, &n) || n > 255;
        o->exit_status = (int)n;
        break;
    case K_DIR_MOUNTPOINT:
        o->dir_mountpoint = true;
        break;
    case K_IGNORE_INTERRUPTS:
        o->ignore_interrupts = true;
        break;
    default:
        return 1;   /* not ours: libfuse's options and the mountpoint */
    }
    if (bad) {
        fprintf(stderr, "ufuse-memfs: bad option value: -o %s\n", arg);
        return -1;
    }
    return 0;
}

/* libfuse's log goes to stderr, except the "short read" with which it
 * notices that the client closed the channel: for us a normal end. */
static void log_func(enum fuse_log_level level, const char *fmt, va_list ap)
{
    (void)level;
    if (strstr(fmt, "short read on fuse device")) {
        atomic_store(&peer_closed, true);
        if (!show_debug_log)
            return;
    }
    vfprintf(stderr, fmt, ap);
}

/* Did the other end of channel @fd go away (EOF on a socket)? */
static bool channel_closed(int fd)
{
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0;
}

static int make_root(void)
{
    struct inode *root = inode_new(S_IFDIR | 0755, getuid(), getgid(), 0);
    if (!root || root->ino != MEMFS_ROOT_INO)
        return -1;
    root->parent = root->ino;
    root->size = 40;
    inode_nlink_set(root, 2);
    inode_put(root);
    return 0;
}

int main(int argc, char *argv[])
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_cmdline_opts copts;
    int ret = 1;

    memfs.o.attr_timeout = 1.0;
    memfs.o.entry_timeout = 1.0;
    memfs.o.negative_timeout = 0.0;
    memfs.o.max_write = 1u << 20;
    memfs.o.eio_at = -1;

    if (fuse_opt_parse(&args, NULL, opt_spec, opt_proc) == -1)
        return 2;
    if (fuse_parse_cmdline(&args, &copts) != 0)
        return 2;
    if (copts.show_help) {
        usage(argv[0]);
        printf("libfuse options:\n");
        fflush(stdout);
        fuse_cmdline_help();
        fuse_lowlevel_help();
        ret = 0;
        goto out_args;
    }
    if (copts.show_version) {
        printf("ufuse-memfs %s\n", MEMFS_VERSION);
        fflush(stdout);
        fuse_lowlevel_version();
        ret = 0;
        goto out_args;
    }
    if (!copts.mountpoint) {
        fprintf(stderr, "usage: %s [-o opt[,opt...]] [-d] [-s] MOUNTPOINT "
                        "(--help for more)\n", argv[0]);
        ret = 2;
        goto out_args;
    }
    memfs.o.debug = copts.debug != 0;
    show_debug_log = memfs.o.debug;
    struct stat mst;
    if (memfs.o.dir_mountpoint &&
        (stat(copts.mountpoint, &mst) != 0 || !S_ISDIR(mst.st_mode))) {
        fprintf(stderr, "ufuse-memfs: mountpoint '%s' is not a directory\n",
                copts.mountpoint);
        goto out_args;
    }

    fs_init();
    if (make_root() != 0) {
        fprintf(stderr, "ufuse-memfs: cannot create the root directory\n");
        goto out_args;
    }
    for (size_t i = 0; i < nseeds; i++) {
        int err = memfs_seed(seeds[i].path, seeds[i].size, seeds[i].extents,
                             seeds[i].extent_len);
        if (err) {
            fprintf(stderr, "ufuse-memfs: seed %s: %s\n", seeds[i].path, strerror(-err));
            ret = 2;
            goto out_args;
        }
    }

    fuse_set_log_func(log_func);
    struct fuse_session *se = fuse_session_new(&args, &memfs_ops, sizeof(memfs_ops), NULL);
    if (!se) {
        ret = 2;    /* libfuse said why (e.g. an unknown -o option) */
        goto out_args;
    }
    if (fuse_set_signal_handlers(se) != 0)
        goto out_session;
    if (fuse_session_mount(se, copts.mountpoint) != 0)
        goto out_signals;

    if (copts.singlethread) {
        ret = fuse_session_loop(se);
    } else {
        /* FUSE_USE_VERSION 35 selects fuse_session_loop_mt_32(), which takes
         * the public (v1) config; fuse_loop_cfg_create() is for >= 312. */
        struct fuse_loop_config cfg = {
            .clone_fd = copts.clone_fd,
            /* libfuse >= 3.12 leaves UINT_MAX here when -o max_idle_threads
             * is not given, and then rejects it with a warning. */
            .max_idle_threads = copts.max_idle_threads == UINT_MAX ? 10
                                                                   : copts.max_idle_threads,
        };
        ret = fuse_session_loop_mt(se, &cfg);
    }
    /* A positive value is the signal (SIGTERM, SIGINT, SIGHUP) that asked
     * for a clean stop; the client closing the channel is a normal end. */
    if (ret > 0)
        ret = 0;
    if (ret != 0 && atomic_load(&peer_closed) && channel_closed(fuse_session_fd(se)))
        ret = 0;
    ret = ret == 0 ? 0 : 1;
    if (ret == 0 && atomic_load(&peer_closed) && channel_closed(fuse_session_fd(se)))
        ret = memfs.o.exit_status;

    fuse_session_unmount(se);
out_signals:
    fuse_remove_signal_handlers(se);
out_session:
    fuse_session_destroy(se);
out_args:
    free(copts.mountpoint);
    fuse_opt_free_args(&args);
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i].path);
    free(seeds);
    return ret;
}
