/*
 * test-interop.c - the interop matrix: ufuse against third-party FUSE
 * servers, unmodified, as Debian ships them, in every cache mode.
 *
 * usage: test-interop SERVER, SERVER one of
 *   sshfs          libfuse 3, over an sshd this program starts on 127.0.0.1
 *                  (a free high port, throw-away host and user keys)
 *   squashfuse     libfuse 3, read-only, over an image made by mksquashfs
 *   fuse-overlayfs libfuse 3, lower/upper/work directories
 *   fuse-zip       libfuse 2 (the hook), over a new zip archive
 *   archivemount   libfuse 2 (the hook), over a tar archive
 *   gocryptfs      go-fuse (not libfuse), over a fresh cipher directory
 *   moosefs        mfsmount (libfuse 3, refuses /dev/fd/N: attach=auto
 *                  retries with the hook) over a master and two
 *                  chunkservers this program starts
 *   glusterfs      the glusterfs client (its own FUSE code, opens /dev/fuse
 *                  itself: the hook, after the same retry) over a glusterd
 *                  and a one-brick volume this program makes
 * Each server's command line is the one docs/servers.md gives users.
 *
 * The two distributed engines run in namespaces of their own (isolate()):
 * a network namespace whose loopback device also carries 10.11.12.13 (the
 * MooseFS chunkserver refuses a master on 127.0.0.1, gluster a brick on
 * it), a mount namespace where /run, /var/lib/glusterd and
 * /var/log/glusterfs are private directories (no glusterd of another run
 * or of the machine is ever seen), and a PID namespace whose first process
 * runs the test: when it ends, however it ends, the kernel kills every
 * daemon left and the network namespace goes with them.
 *
 * What is checked, once per cache mode (cache=direct, writethrough,
 * writeback, auto; one cmocka test each, a fresh session each):
 *  - writable seeded servers: a seeded file is removed first thing, its
 *    name never looked up before (Linux always LOOKUPs it first);
 *  - the tree the server was seeded with (read-only image, overlay lower
 *    directory, tar archive) reads back identical to the original;
 *  - writable servers: a tree (files of 0, 1, 4095..4097, 64k+1, 1M+3 and
 *    2M+5 bytes, nested and empty directories, a symlink) copied IN through
 *    ufuse and OUT to a local directory is identical (manifest of type,
 *    permissions where the server keeps them, size, FNV-1a of the contents,
 *    link target); the tree copied by the previous mode's session is still
 *    there (it survived unmount and a new server process); where the server
 *    has a plain backing directory (sshfs, fuse-overlayfs) that directory,
 *    read with plain system calls, holds the same tree;
 *  - the namespace operations the server supports, with the results a
 *    kernel mount gives: mkdir/EEXIST, create, rename (and over a file, and
 *    of a directory), symlink/readlink, link, chmod, truncate/ftruncate,
 *    utimens, overwrite in place, O_APPEND, a 60-entry readdir, unlink,
 *    rmdir/ENOTEMPTY, statfs; read-only servers must refuse every change
 *    and stay unchanged;
 *  - distributed engines: a second session in another process (a second
 *    "client machine", the same cache mode, its own server process) shares
 *    files with this one: a file written and closed by one is read whole,
 *    at its new size, by the other after open (close-to-open), in both
 *    directions and over the other's cached copy; page-aligned halves of one
 *    file written by the two sessions both survive; a file renamed by one
 *    is found by the other under its new name.  What a session sees of the
 *    other's changes without opening (stat of a name it has cached) is
 *    printed, not required: that is the engine's attribute caching.
 * Server bugs (seen on kernel mounts too) are flags per server (struct
 * server), explained in docs/servers.md.
 *
 * Exit 77 only when the server's Debian package is not installed and
 * `apt-get install` cannot install it.
 *
 * State: one session (S) at a time, made and ended by each mode's test
 * (teardown unmounts even after a failed check), and for the distributed
 * engines one peer process (PEER_PID, its pipes PEER_IN/PEER_OUT) per
 * mode; one temporary directory (BASE) for the whole run, removed at exit.
 * The sshd child (SSHD_PID) and the engines' daemons (DAEMONS) are started
 * in main and killed at exit.  No threads, no locks.
 *
 * test-interop --peer MODE SERVER-ARGV... is the peer: it mounts its own
 * session and answers one command line at a time (peer_main).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "check.h"

#include "ufuse.h"

/* ------------------------------------------------------------------ */
/* The servers                                                         */

struct server {
    const char *name;
    const char *pkg;       /* Debian package */
    const char *bin;       /* its executable */
    int writable;
    int seeded;            /* starts with the original tree at /seed */
    int modes;             /* keeps permission bits */
    int link_err;          /* LINK: 0 works, else the errno it answers */
    int mtime;             /* keeps an mtime set by utimens (seconds) */
    const char *backing;   /* subdirectory of BASE holding the files, plain */
    int lost_dir_modes;    /* an empty directory's mode is not kept when the
                              server writes its store out (fuse-zip: on a
                              kernel mount too) */
    int no_symlink;        /* cannot create symlinks (ENOSYS, kernel too) */
    int link_size_wrong;   /* LINK's reply has the wrong size (kernel too) */
    int rename_keeps_old;  /* rename onto a file leaves the target's old
                              contents (kernel too) */
    int dir_rename_loses;  /* a renamed new directory may lose its new
                              entries (kernel too) */
    int stale_keep_cache;  /* answers OPEN with FOPEN_KEEP_CACHE and lets
                              cached pages go only when its 1 s attribute
                              timeout has passed: a client with the file
                              cached reads the old contents until then
                              (glusterfs's default fopen-keep-cache; a
                              kernel mount too) */
    int isolate;           /* runs in namespaces of its own (isolate()) */
    int peers;             /* shares files with a second session */
};

static const struct server servers[] = {
    {.name = "sshfs", .pkg = "sshfs", .bin = "sshfs", .writable = 1, .modes = 1,
     .mtime = 1, .backing = "remote"},
    {.name = "squashfuse", .pkg = "squashfuse", .bin = "squashfuse", .seeded = 1,
     .modes = 1, .mtime = 1},
    {.name = "fuse-overlayfs", .pkg = "fuse-overlayfs", .bin = "fuse-overlayfs",
     .writable = 1, .seeded = 1, .modes = 1, .mtime = 1, .backing = "upper"},
    /* no hard links in zip: libfuse 2 answers ENOSYS, Linux makes it EPERM */
    {.name = "fuse-zip", .pkg = "fuse-zip", .bin = "fuse-zip", .writable = 1, .modes = 1,
     .link_err = EPERM, .mtime = 1, .lost_dir_modes = 1},
    /* archivemount 0.8.7 has no symlink(); a rename onto a file drops the
     * source and keeps the target's contents; a directory renamed in the
     * session that made it can lose the files made in it (all three on a
     * kernel mount too) */
    {.name = "archivemount", .pkg = "archivemount", .bin = "archivemount", .writable = 1,
     .seeded = 1, .modes = 1, .mtime = 1,
     .no_symlink = 1, .rename_keeps_old = 1, .dir_rename_loses = 1},
    /* gocryptfs 2.3's LINK reply carries the cipher file's size (a kernel
     * mount shows it too until the attributes time out) */
    {.name = "gocryptfs", .pkg = "gocryptfs", .bin = "gocryptfs", .writable = 1,
     .modes = 1, .mtime = 1, .link_size_wrong = 1},
    {.name = "moosefs", .pkg = "moosefs-master moosefs-chunkserver moosefs-client",
     .bin = "mfsmaster mfschunkserver mfsmount", .writable = 1, .modes = 1, .mtime = 1,
     .isolate = 1, .peers = 1},
    {.name = "glusterfs", .pkg = "glusterfs-server glusterfs-client",
     .bin = "glusterd gluster glusterfs", .writable = 1, .modes = 1, .mtime = 1,
     .backing = "brick", .stale_keep_cache = 1, .isolate = 1, .peers = 1},
};

static const char *const MODES[] = {"direct", "writethrough", "writeback", "auto"};
#define NMODES 4

static const struct server *SRV;
static ufuse_t *S;
static char BASE[256];        /* /tmp/ufuse-interop-XXXXXX */
static char SEED[PATH_MAX];   /* BASE/lower: holds seed/orig, the original tree */
static char ORIG[PATH_MAX];   /* BASE/lower/seed/orig */
static char *SERVER_ARGV[32];
static int SERVER_ARGC;
static pid_t SSHD_PID = -1;
static int NO_DIR_MODES;      /* manifests leave directory modes out */
static int NO_LINKS;          /* manifests leave symlinks out */
static int NO_WHITEOUTS;      /* local manifests leave overlay's .wh.* out */
static int SSHD_PORT;
static pid_t DAEMONS[8];      /* the engines' daemons, killed at exit */
static int NDAEMONS;
static pid_t PEER_PID = -1;   /* the second client machine, or -1 */
static FILE *PEER_IN, *PEER_OUT; /* its command and answer pipes */
#define ENGINE_IP "10.11.12.13" /* the engines' address, on lo in our netns */

/* ------------------------------------------------------------------ */
/* Helpers (the assertion macros are in check.h)                      */

/* dst = a sep b, which must fit */
static void join(char *dst, size_t size, const char *a, const char *sep, const char *b)
{
    int n = snprintf(dst, size, "%s%s%s", a, sep, b);
    if (n < 0 || (size_t)n >= size)
        fail_msg("path too long: %s%s%s", a, sep, b);
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}
#define FNV_INIT UINT64_C(0xcbf29ce484222325)

static unsigned char *make_data(size_t n, uint64_t seed)
{
    unsigned char *p = malloc(n ? n : 1);
    if (!p)
        abort();
    uint64_t x = seed * UINT64_C(0x9e3779b97f4a7c15) + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)(x >> 24);
    }
    return p;
}

/* Run a command, its output appended to BASE/cmd.log.  @return its exit
 * status, or -1 if it did not exit normally. */
static int run(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(fmt("%s/cmd.log", BASE), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run_sh(const char *cmd)
{
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    return run(argv);
}

static void print_log(const char *what, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    fprintf(stderr, "---- %s (%s) ----\n", what, path);
    char line[1024];
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
    fprintf(stderr, "---- end ----\n");
}

static void lwrite(const char *path, const void *buf, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "open %s: %s\n", path, strerror(errno));
        abort();
    }
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, (const char *)buf + done, n - done);
        if (w <= 0) {
            fprintf(stderr, "write %s: %s\n", path, strerror(errno));
            abort();
        }
        done += (size_t)w;
    }
    close(fd);
    chmod(path, mode);
}

/* ------------------------------------------------------------------ */
/* The original tree                                                    */

static const struct {
    const char *path;      /* relative to the tree's root */
    char type;             /* 'f', 'd', 'l' */
    size_t size;           /* files */
    mode_t mode;
    const char *target;    /* links */
} TREE[] = {
    {"empty", 'f', 0, 0644, NULL},
    {"one", 'f', 1, 0600, NULL},
    {"f4095", 'f', 4095, 0640, NULL},
    {"f4096", 'f', 4096, 0644, NULL},
    {"f4097", 'f', 4097, 0755, NULL},
    {"d", 'd', 0, 0755, NULL},
    {"d/f64k1", 'f', 65537, 0644, NULL},
    {"d/nested", 'd', 0, 0750, NULL},
    {"d/nested/big", 'f', 1048576 + 3, 0644, NULL},
    {"d/nested/deeper", 'd', 0, 0755, NULL},
    {"d/nested/deeper/name with spaces", 'f', 100, 0644, NULL},
    {"d/emptydir", 'd', 0, 0700, NULL},
    {"huge", 'f', 2 * 1048576 + 5, 0644, NULL},
    {"link", 'l', 0, 0777, "d/nested/big"},
};
#define NTREE (sizeof TREE / sizeof TREE[0])

static void make_orig(void)
{
    if (mkdir(ORIG, 0755) != 0)
        abort();
    for (size_t i = 0; i < NTREE; i++) {
        const char *p = fmt("%s/%s", ORIG, TREE[i].path);
        if (TREE[i].type == 'd') {
            if (mkdir(p, 0700) != 0)
                abort();
        } else if (TREE[i].type == 'l') {
            if (symlink(TREE[i].target, p) != 0)
                abort();
        } else {
            unsigned char *d = make_data(TREE[i].size, i + 1);
            lwrite(p, d, TREE[i].size, TREE[i].mode);
            free(d);
        }
    }
    /* directory modes last (0700 while filling them) */
    for (size_t i = NTREE; i-- > 0;)
        if (TREE[i].type == 'd')
            chmod(fmt("%s/%s", ORIG, TREE[i].path), TREE[i].mode);
}

/* ------------------------------------------------------------------ */
/* Manifests: one line per entry, sorted by path                        */

struct mf {
    char **lines;
    size_t n, cap;
};

static void mf_add(struct mf *m, const char *rel, mode_t mode, long long size,
                   uint64_t hash, const char *target)
{
    if (S_ISLNK(mode) && NO_LINKS)
        return;
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 32;
        m->lines = realloc(m->lines, m->cap * sizeof *m->lines);
        assert_non_null(m->lines);
    }
    char perm[16] = "-";
    if (SRV->modes && !S_ISLNK(mode) && !(S_ISDIR(mode) && NO_DIR_MODES))
        snprintf(perm, sizeof perm, "%04o", (unsigned)(mode & 07777));
    char *line;
    if (S_ISREG(mode))
        assert_true(asprintf(&line, "%s f %s %lld %016llx", rel, perm, size,
                             (unsigned long long)hash) > 0);
    else if (S_ISDIR(mode))
        assert_true(asprintf(&line, "%s d %s", rel, perm) > 0);
    else if (S_ISLNK(mode))
        assert_true(asprintf(&line, "%s l -> %s", rel, target) > 0);
    else
        assert_true(asprintf(&line, "%s ? %o", rel, (unsigned)mode) > 0);
    m->lines[m->n++] = line;
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void mf_free(struct mf *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->lines[i]);
    free(m->lines);
    memset(m, 0, sizeof *m);
}

/* Fail, showing the first difference, unless @a and @b are equal. */
static void mf_compare(struct mf *a, struct mf *b, const char *what)
{
    qsort(a->lines, a->n, sizeof *a->lines, cmpstr);
    qsort(b->lines, b->n, sizeof *b->lines, cmpstr);
    size_t i = 0;
    while (i < a->n && i < b->n && strcmp(a->lines[i], b->lines[i]) == 0)
        i++;
    if (i == a->n && i == b->n)
        return;
    fprintf(stderr, "%s: manifests differ at line %zu:\n  expected: %s\n  found:    %s\n",
            what, i, i < a->n ? a->lines[i] : "(end)", i < b->n ? b->lines[i] : "(end)");
    fail_msg("%s: trees differ", what);
}

/* The manifest of a local tree. */
static void mf_local(struct mf *m, const char *root_, const char *rel)
{
    char root[PATH_MAX], dir[PATH_MAX];
    join(root, sizeof root, root_, "", "");
    join(dir, sizeof dir, root, *rel ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("opendir %s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (NO_WHITEOUTS && !strncmp(e->d_name, ".wh.", 4))
            continue;
        char r[PATH_MAX];
        snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        const char *p = fmt("%s/%s", root, r);
        struct stat st;
        SYS(lstat(p, &st));
        uint64_t h = FNV_INIT;
        char target[PATH_MAX] = "";
        if (S_ISREG(st.st_mode)) {
            int fd = open(p, O_RDONLY | O_CLOEXEC);
            SYS(fd);
            unsigned char buf[65536];
            ssize_t n;
            while ((n = read(fd, buf, sizeof buf)) > 0)
                h = fnv1a(h, buf, (size_t)n);
            SYS(n);
            close(fd);
        } else if (S_ISLNK(st.st_mode)) {
            ssize_t n = readlink(p, target, sizeof target - 1);
            SYS(n);
            target[n > 0 ? n : 0] = 0;
        }
        mf_add(m, r, st.st_mode, st.st_size, h, target);
        if (S_ISDIR(st.st_mode))
            mf_local(m, root, r);
    }
    closedir(d);
}

/* Read a file through ufuse: hash and size, and optionally a copy to @fd. */
static uint64_t r_hash(const char *path, long long *size, int fd)
{
    ufuse_file_t *f;
    int rc = ufuse_open(S, path, O_RDONLY, 0, &f);
    if (rc)
        fail_msg("ufuse_open %s: %s", path, errstr(rc));
    static unsigned char buf[131072 + 7];
    uint64_t h = FNV_INIT;
    long long off = 0;
    for (;;) {
        ssize_t n = ufuse_pread(f, buf, 100003, off);
        if (n < 0)
            fail_msg("ufuse_pread %s at %lld: %s", path, off, errstr(n));
        if (n == 0)
            break;
        h = fnv1a(h, buf, (size_t)n);
        if (fd >= 0 && write(fd, buf, (size_t)n) != n)
            fail_msg("local write: %s", strerror(errno));
        off += n;
    }
    OK(ufuse_close(f));
    *size = off;
    return h;
}

/* The manifest of a tree through ufuse; with @out, copy it there too. */
static void mf_remote(struct mf *m, const char *root_, const char *rel, const char *out_)
{
    char root[PATH_MAX], dir[PATH_MAX], outbuf[PATH_MAX];
    const char *out = out_ ? outbuf : NULL;
    join(root, sizeof root, root_, "", "");
    join(outbuf, sizeof outbuf, out_ ? out_ : "", "", "");
    join(dir, sizeof dir, root, *rel ? "/" : "", rel);
    ufuse_dir_t *d;
    int rc = ufuse_opendir(S, dir, &d);
    if (rc)
        fail_msg("ufuse_opendir %s: %s", dir, errstr(rc));
    struct ufuse_dirent e;
    char (*names)[256] = NULL;
    size_t nn = 0;
    while ((rc = ufuse_readdir(d, &e)) == 1) {
        if (!strcmp(e.name, ".") || !strcmp(e.name, ".."))
            continue;
        names = realloc(names, (nn + 1) * sizeof *names);
        assert_non_null(names);
        memcpy(names[nn++], e.name, 256);
    }
    OK(ufuse_closedir(d));
    if (rc < 0)
        fail_msg("ufuse_readdir %s: %s", dir, errstr(rc));
    for (size_t i = 0; i < nn; i++) {
        char r[PATH_MAX];
        snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", names[i]);
        char p[PATH_MAX], lpbuf[PATH_MAX];
        join(p, sizeof p, root, "/", r);
        struct stat st;
        rc = ufuse_lstat(S, p, &st);
        if (rc)
            fail_msg("ufuse_lstat %s: %s", p, errstr(rc));
        uint64_t h = FNV_INIT;
        long long size = st.st_size;
        char target[PATH_MAX] = "";
        const char *lp = NULL;
        if (out) {
            join(lpbuf, sizeof lpbuf, out, "/", r);
            lp = lpbuf;
        }
        if (S_ISREG(st.st_mode)) {
            int fd = -1;
            if (lp) {
                fd = open(lp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                SYS(fd);
            }
            h = r_hash(p, &size, fd);
            if (fd >= 0) {
                SYS(close(fd));
                SYS(chmod(lp, st.st_mode & 07777));
            }
            if (size != st.st_size)
                fail_msg("%s: read %lld bytes, stat says %lld", p, size,
                         (long long)st.st_size);
        } else if (S_ISLNK(st.st_mode)) {
            ssize_t n = ufuse_readlink(S, p, target, sizeof target - 1);
            if (n < 0 || n >= (ssize_t)sizeof target)
                fail_msg("ufuse_readlink %s: %zd (%s)", p, n, errstr(n));
            target[n > 0 && n < (ssize_t)sizeof target ? n : 0] = 0;
            if (lp)
                SYS(symlink(target, lp));
        } else if (S_ISDIR(st.st_mode) && lp) {
            SYS(mkdir(lp, 0700));
        }
        mf_add(m, r, st.st_mode, size, h, target);
        if (S_ISDIR(st.st_mode)) {
            mf_remote(m, root, r, out);
            if (lp)
                SYS(chmod(lp, st.st_mode & 07777));
        }
    }
    free(names);
}

/* Copy the local tree @src into @dst (which must not exist) through ufuse. */
static void copy_in(const char *src, const char *dst)
{
    struct stat st;
    SYS(lstat(src, &st));
    if (S_ISDIR(st.st_mode)) {
        int rc = ufuse_mkdir(S, dst, st.st_mode & 07777);
        if (rc)
            fail_msg("ufuse_mkdir %s: %s", dst, errstr(rc));
        DIR *d = opendir(src);
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char s2[PATH_MAX], d2[PATH_MAX];
            snprintf(s2, sizeof s2, "%s/%s", src, e->d_name);
            snprintf(d2, sizeof d2, "%s/%s", dst, e->d_name);
            copy_in(s2, d2);
        }
        closedir(d);
    } else if (S_ISLNK(st.st_mode)) {
        char t[PATH_MAX];
        ssize_t n = readlink(src, t, sizeof t - 1);
        SYS(n);
        t[n > 0 ? n : 0] = 0;
        int rc = ufuse_symlink(S, t, dst);
        if (rc == -ENOSYS && SRV->no_symlink)
            return;
        if (rc)
            fail_msg("ufuse_symlink %s: %s", dst, errstr(rc));
    } else {
        int fd = open(src, O_RDONLY | O_CLOEXEC);
        SYS(fd);
        ufuse_file_t *f;
        int rc = ufuse_open(S, dst, O_WRONLY | O_CREAT | O_EXCL, st.st_mode & 07777, &f);
        if (rc)
            fail_msg("ufuse_open %s: %s", dst, errstr(rc));
        static unsigned char buf[100003];
        off_t off = 0;
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) {
            ssize_t w = ufuse_pwrite(f, buf, (size_t)n, off);
            if (w != n)
                fail_msg("ufuse_pwrite %s at %lld: %zd (%s)", dst, (long long)off, w,
                         errstr(w));
            off += n;
        }
        SYS(n);
        close(fd);
        rc = ufuse_close(f);
        if (rc)
            fail_msg("ufuse_close %s: %s", dst, errstr(rc));
    }
}

static void check_remote_tree(const char *root_, const char *out_, const char *what_)
{
    char root[PATH_MAX], outbuf[PATH_MAX], what[PATH_MAX];
    const char *out = out_ ? outbuf : NULL;
    join(root, sizeof root, root_, "", "");
    join(outbuf, sizeof outbuf, out_ ? out_ : "", "", "");
    join(what, sizeof what, what_, "", "");
    struct mf want = {0}, got = {0};
    mf_local(&want, ORIG, "");
    mf_remote(&got, root, "", out);
    mf_compare(&want, &got, what);
    mf_free(&want);
    mf_free(&got);
    if (out) {
        struct mf o = {0};
        mf_local(&want, ORIG, "");
        mf_local(&o, out, "");
        mf_compare(&want, &o, fmt("%s (copied out to %s)", what, out));
        mf_free(&want);
        mf_free(&o);
    }
}

/* ------------------------------------------------------------------ */
/* Sessions                                                             */

static void mount_mode(int mode)
{
    char opts[128];
    snprintf(opts, sizeof opts, "cache=%s,timeout=60", MODES[mode]);
    fprintf(stderr, "[%s] ufuse_mount -o %s:", SRV->name, opts);
    for (int i = 0; i < SERVER_ARGC; i++)
        fprintf(stderr, " %s", SERVER_ARGV[i]);
    fprintf(stderr, "\n");
    int rc = ufuse_mount(&S, SERVER_ARGV, opts);
    if (rc) {
        if (SSHD_PID > 0)
            print_log("sshd", fmt("%s/sshd.log", BASE));
        fail_msg("ufuse_mount(%s, %s) = %d (%s)", SRV->name, opts, rc, errstr(rc));
    }
}

static void peer_kill(void);

static int teardown(void **state)
{
    (void)state;
    peer_kill();
    if (S) {
        int rc = ufuse_unmount(S);
        S = NULL;
        if (rc) {
            fprintf(stderr, "ufuse_unmount: %s\n", errstr(rc));
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Checks                                                               */

static void write_file(const char *path, const char *data, mode_t mode)
{
    ufuse_file_t *f;
    int rc = ufuse_open(S, path, O_WRONLY | O_CREAT | O_TRUNC, mode, &f);
    if (rc)
        fail_msg("ufuse_open %s: %s", path, errstr(rc));
    size_t n = strlen(data);
    assert_int_equal(NN(ufuse_pwrite(f, data, n, 0)), n);
    OK(ufuse_close(f));
}

static void expect_file(const char *path, const char *data, size_t n)
{
    ufuse_file_t *f;
    int rc = ufuse_open(S, path, O_RDONLY, 0, &f);
    if (rc)
        fail_msg("ufuse_open %s: %s", path, errstr(rc));
    char buf[256];
    ssize_t got = ufuse_pread(f, buf, sizeof buf, 0);
    OK(ufuse_close(f));
    if (got != (ssize_t)n || memcmp(buf, data, n) != 0)
        fail_msg("%s: read %zd bytes (%s), expected %zu", path, got, errstr(got), n);
    struct stat st;
    OK(ufuse_stat(S, path, &st));
    if (st.st_size != (off_t)n)
        fail_msg("%s: stat says %lld bytes, read %zu", path, (long long)st.st_size, n);
}

/* Namespace operations in /<mode>/ns of a writable server. */
static void check_namespace(const char *top)
{
    char ns[PATH_MAX], big[PATH_MAX];
    join(ns, sizeof ns, top, "/", "ns");
    join(big, sizeof big, ns, "/", "d60");
    struct stat st;
    OK(ufuse_mkdir(S, ns, 0755));
    ERR(ufuse_mkdir(S, ns, 0755), EEXIST);
    OK(ufuse_stat(S, ns, &st));
    assert_true(S_ISDIR(st.st_mode));

    /* create, rename, rename over a file */
    write_file(fmt("%s/f", ns), "hello world", 0644);
    expect_file(fmt("%s/f", ns), "hello world", 11);
    OK(ufuse_rename(S, fmt("%s/f", ns), fmt("%s/g", ns), 0));
    ERR(ufuse_lstat(S, fmt("%s/f", ns), &st), ENOENT);
    expect_file(fmt("%s/g", ns), "hello world", 11);
    write_file(fmt("%s/h", ns), "other", 0644);
    OK(ufuse_rename(S, fmt("%s/g", ns), fmt("%s/h", ns), 0));
    ERR(ufuse_lstat(S, fmt("%s/g", ns), &st), ENOENT);
    if (SRV->rename_keeps_old) {
        fprintf(stderr, "[%s] rename onto a file kept the target's contents "
                        "(server bug, kernel mounts show it too)\n", SRV->name);
        expect_file(fmt("%s/h", ns), "other", 5);
        write_file(fmt("%s/h", ns), "hello world", 0644);
    }
    expect_file(fmt("%s/h", ns), "hello world", 11);

    /* symlink */
    if (SRV->no_symlink) {
        ERR(ufuse_symlink(S, "h", fmt("%s/s", ns)), ENOSYS);
        write_file(fmt("%s/s", ns), "stand-in", 0644); /* unlinked below */
    } else {
        OK(ufuse_symlink(S, "h", fmt("%s/s", ns)));
        char t[64];
        assert_int_equal(NN(ufuse_readlink(S, fmt("%s/s", ns), t, sizeof t)), 1);
        assert_memory_equal(t, "h", 1);
        OK(ufuse_lstat(S, fmt("%s/s", ns), &st));
        assert_true(S_ISLNK(st.st_mode));
        expect_file(fmt("%s/s", ns), "hello world", 11);
    }

    /* hard link */
    int rc = ufuse_link(S, fmt("%s/h", ns), fmt("%s/hl", ns));
    if (SRV->link_err) {
        if (rc != -SRV->link_err)
            fail_msg("ufuse_link = %d (%s), expected -%d (%s)", rc, errstr(rc),
                     SRV->link_err, strerror(SRV->link_err));
    } else {
        OK(rc);
        if (SRV->link_size_wrong)
            fprintf(stderr, "[%s] size of the new link right after link(): %lld "
                            "(server bug, kernel mounts show it too)\n", SRV->name,
                    ufuse_stat(S, fmt("%s/hl", ns), &st) == 0 ? (long long)st.st_size : -1LL);
        else
            expect_file(fmt("%s/hl", ns), "hello world", 11);
        OK(ufuse_unlink(S, fmt("%s/hl", ns)));
        ERR(ufuse_lstat(S, fmt("%s/hl", ns), &st), ENOENT);
        expect_file(fmt("%s/h", ns), "hello world", 11);
    }

    /* chmod */
    OK(ufuse_chmod(S, fmt("%s/h", ns), 0640));
    OK(ufuse_stat(S, fmt("%s/h", ns), &st));
    if (SRV->modes)
        assert_int_equal(st.st_mode & 07777, 0640);
    assert_true(S_ISREG(st.st_mode));

    /* overwrite in place, O_APPEND, truncate, ftruncate */
    ufuse_file_t *f;
    OK(ufuse_open(S, fmt("%s/h", ns), O_RDWR, 0, &f));
    assert_int_equal(NN(ufuse_pwrite(f, "XY", 2, 1)), 2);
    OK(ufuse_close(f));
    expect_file(fmt("%s/h", ns), "hXYlo world", 11);
    OK(ufuse_open(S, fmt("%s/h", ns), O_WRONLY | O_APPEND, 0, &f));
    assert_int_equal(NN(ufuse_write(f, "!!", 2)), 2);
    OK(ufuse_close(f));
    expect_file(fmt("%s/h", ns), "hXYlo world!!", 13);
    OK(ufuse_truncate(S, fmt("%s/h", ns), 5));
    expect_file(fmt("%s/h", ns), "hXYlo", 5);
    OK(ufuse_open(S, fmt("%s/h", ns), O_RDWR, 0, &f));
    OK(ufuse_ftruncate(f, 8));
    OK(ufuse_fstat(f, &st));
    assert_int_equal(st.st_size, 8);
    OK(ufuse_close(f));
    expect_file(fmt("%s/h", ns), "hXYlo\0\0\0", 8);

    /* utimens */
    struct timespec ts[2] = {{1500000000, 0}, {1600000000, 0}};
    OK(ufuse_utimens(S, fmt("%s/h", ns), ts));
    OK(ufuse_stat(S, fmt("%s/h", ns), &st));
    if (SRV->mtime)
        assert_int_equal(st.st_mtim.tv_sec, 1600000000);

    /* a directory of 60 entries */
    OK(ufuse_mkdir(S, big, 0755));
    for (int i = 0; i < 60; i++)
        write_file(fmt("%s/entry-%02d", big, i), "x", 0644);
    ufuse_dir_t *d;
    OK(ufuse_opendir(S, big, &d));
    struct ufuse_dirent e;
    unsigned char seen[60] = {0};
    int n = 0, other = 0;
    while ((rc = ufuse_readdir(d, &e)) == 1) {
        int k;
        if (sscanf(e.name, "entry-%2d", &k) == 1 && k >= 0 && k < 60 && !seen[k]) {
            seen[k] = 1;
            n++;
        } else if (strcmp(e.name, ".") && strcmp(e.name, "..")) {
            other++;
            fprintf(stderr, "unexpected entry %s\n", e.name);
        }
    }
    OK(ufuse_closedir(d));
    OK(rc);
    assert_int_equal(n, 60);
    assert_int_equal(other, 0);
    ERR(ufuse_rmdir(S, big), ENOTEMPTY);
    for (int i = 0; i < 60; i++)
        OK(ufuse_unlink(S, fmt("%s/entry-%02d", big, i)));
    OK(ufuse_rmdir(S, big));
    ERR(ufuse_stat(S, big, &st), ENOENT);

    /* rename a directory with contents */
    OK(ufuse_mkdir(S, fmt("%s/a", ns), 0755));
    if (SRV->dir_rename_loses) {
        /* the server loses files made in a directory it then renames:
         * rename it empty, fill it afterwards */
        fprintf(stderr, "[%s] renaming an empty directory (server bug with a "
                        "non-empty new one, kernel mounts show it too)\n", SRV->name);
        OK(ufuse_rename(S, fmt("%s/a", ns), fmt("%s/a2", ns), 0));
        write_file(fmt("%s/a2/inner", ns), "inner", 0644);
    } else {
        write_file(fmt("%s/a/inner", ns), "inner", 0644);
        OK(ufuse_rename(S, fmt("%s/a", ns), fmt("%s/a2", ns), 0));
    }
    ERR(ufuse_stat(S, fmt("%s/a", ns), &st), ENOENT);
    expect_file(fmt("%s/a2/inner", ns), "inner", 5);

    /* unlink, rmdir */
    ERR(ufuse_unlink(S, fmt("%s/nonexistent", ns)), ENOENT);
    OK(ufuse_unlink(S, fmt("%s/a2/inner", ns)));
    OK(ufuse_rmdir(S, fmt("%s/a2", ns)));
    OK(ufuse_unlink(S, fmt("%s/s", ns)));
    OK(ufuse_unlink(S, fmt("%s/h", ns)));
    ERR(ufuse_stat(S, fmt("%s/h", ns), &st), ENOENT);

    struct statvfs sv;
    OK(ufuse_statfs(S, "/", &sv));
    OK(ufuse_rmdir(S, ns));
    ERR(ufuse_stat(S, ns, &st), ENOENT);
}

/* A read-only server refuses every change; nothing changes. */
static void check_readonly(void)
{
    ufuse_file_t *f;
    struct stat st;
    int rc = ufuse_open(S, "/newfile", O_WRONLY | O_CREAT, 0644, &f);
    if (rc == 0) {
        ufuse_close(f);
        fail_msg("a read-only server created /newfile");
    }
    fprintf(stderr, "[%s] create: %s; ", SRV->name, errstr(rc));
    rc = ufuse_mkdir(S, "/newdir", 0755);
    assert_true(rc < 0);
    fprintf(stderr, "mkdir: %s; ", errstr(rc));
    rc = ufuse_unlink(S, "/seed/orig/one");
    assert_true(rc < 0);
    fprintf(stderr, "unlink: %s; ", errstr(rc));
    rc = ufuse_rename(S, "/seed/orig/one", "/seed/orig/two", 0);
    assert_true(rc < 0);
    fprintf(stderr, "rename: %s; ", errstr(rc));
    rc = ufuse_open(S, "/seed/orig/one", O_WRONLY, 0, &f);
    if (rc == 0) {
        ssize_t w = ufuse_pwrite(f, "z", 1, 0);
        ufuse_close(f);
        assert_true(w < 0);
        fprintf(stderr, "write: %s\n", errstr(w));
    } else {
        fprintf(stderr, "open for writing: %s\n", errstr(rc));
    }
    ERR(ufuse_stat(S, "/newfile", &st), ENOENT);
    ERR(ufuse_stat(S, "/newdir", &st), ENOENT);
    struct statvfs sv;
    OK(ufuse_statfs(S, "/", &sv));
}

/* ------------------------------------------------------------------ */
/* Two client machines: this session and a peer process's               */

/* Write @size bytes of make_data(@size, @seed) at @off of @path through
 * @s (created if need be; truncated first with @trunc), then close it.
 * 0 or -errno. */
static long long fs_put(ufuse_t *s, const char *path, size_t size, uint64_t seed, off_t off,
                        int trunc)
{
    ufuse_file_t *f;
    int rc = ufuse_open(s, path, O_WRONLY | O_CREAT | (trunc ? O_TRUNC : 0), 0644, &f);
    if (rc)
        return rc;
    unsigned char *d = make_data(size, seed);
    size_t done = 0;
    long long err = 0;
    while (done < size && !err) {
        size_t n = size - done < 100003 ? size - done : 100003;
        ssize_t w = ufuse_pwrite(f, d + done, n, off + (off_t)done);
        if (w <= 0)
            err = w < 0 ? w : -EIO;
        else
            done += (size_t)w;
    }
    free(d);
    rc = ufuse_close(f);
    return err ? err : rc;
}

/* Open @path through @s, read it whole, close: its size and FNV-1a hash.
 * 0 or -errno. */
static long long fs_sum(ufuse_t *s, const char *path, long long *size, uint64_t *hash)
{
    ufuse_file_t *f;
    int rc = ufuse_open(s, path, O_RDONLY, 0, &f);
    if (rc)
        return rc;
    static unsigned char buf[131072];
    uint64_t h = FNV_INIT;
    long long off = 0;
    ssize_t n;
    while ((n = ufuse_pread(f, buf, sizeof buf, off)) > 0) {
        h = fnv1a(h, buf, (size_t)n);
        off += n;
    }
    rc = ufuse_close(f);
    *size = off;
    *hash = h;
    return n < 0 ? n : rc;
}

/* The size stat gives for @path (whatever @s has cached), or -errno. */
static long long fs_size(ufuse_t *s, const char *path)
{
    struct stat st;
    int rc = ufuse_stat(s, path, &st);
    return rc ? rc : (long long)st.st_size;
}

/* The peer: mount SERVER-ARGV in cache mode @mode, say "ready RC", then
 * answer each command line on stdin with one line on stdout. */
static int peer_main(const char *mode, char **server_argv)
{
    char opts[128];
    snprintf(opts, sizeof opts, "cache=%s,timeout=60", mode);
    int rc = ufuse_mount(&S, server_argv, opts);
    printf("ready %d\n", rc);
    fflush(stdout);
    if (rc)
        return 1;
    char line[PATH_MAX * 2 + 64], a[PATH_MAX], b[PATH_MAX];
    while (fgets(line, sizeof line, stdin)) {
        unsigned long long size, seed, off;
        int trunc;
        if (sscanf(line, "put %4095s %llu %llu %llu %d", a, &size, &seed, &off, &trunc) == 5) {
            printf("%lld\n", fs_put(S, a, (size_t)size, seed, (off_t)off, trunc));
        } else if (sscanf(line, "sum %4095s", a) == 1) {
            long long sz = 0;
            uint64_t h = 0;
            long long r = fs_sum(S, a, &sz, &h);
            printf("%lld %lld %llu\n", r, sz, (unsigned long long)h);
        } else if (sscanf(line, "size %4095s", a) == 1) {
            printf("%lld\n", fs_size(S, a));
        } else if (sscanf(line, "rename %4095s %4095s", a, b) == 2) {
            printf("%d\n", ufuse_rename(S, a, b, 0));
        } else if (sscanf(line, "unlink %4095s", a) == 1) {
            printf("%d\n", ufuse_unlink(S, a));
        } else if (strcmp(line, "quit\n") == 0) {
            rc = ufuse_unmount(S);
            S = NULL;
            printf("%d\n", rc);
            fflush(stdout);
            return rc ? 1 : 0;
        } else {
            printf("%d\n", -EINVAL);
        }
        fflush(stdout);
    }
    return 1;
}

/* Start the peer (this program, --peer) with its own session and server. */
static void peer_start(int mode)
{
    int in[2], out[2];
    SYS(pipe2(in, O_CLOEXEC));
    SYS(pipe2(out, O_CLOEXEC));
    char *argv[40] = {"test-interop", "--peer", (char *)MODES[mode]};
    for (int i = 0; i < SERVER_ARGC; i++)
        argv[3 + i] = SERVER_ARGV[i];
    fflush(NULL);
    PEER_PID = fork();
    SYS(PEER_PID);
    if (PEER_PID == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    PEER_IN = fdopen(in[1], "w");
    PEER_OUT = fdopen(out[0], "r");
    assert_non_null(PEER_IN);
    assert_non_null(PEER_OUT);
    char line[64];
    int rc = -1;
    if (!fgets(line, sizeof line, PEER_OUT) || sscanf(line, "ready %d", &rc) != 1 || rc)
        fail_msg("the peer's session did not start (%d: %s)", rc, errstr(rc));
}

/* Send a command to the peer; its answer line in @reply. */
static void peer_cmd(char *reply, size_t size, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static void peer_cmd(char *reply, size_t size, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vfprintf(PEER_IN, f, ap);
    va_end(ap);
    fputc('\n', PEER_IN);
    fflush(PEER_IN);
    if (!fgets(reply, (int)size, PEER_OUT))
        fail_msg("the peer did not answer");
}

/* A peer command whose answer is a return code. */
static long long peer_rc(const char *cmd)
{
    char r[128];
    peer_cmd(r, sizeof r, "%s", cmd);
    return strtoll(r, NULL, 10);
}

/* End the peer's session (its unmount's result) and reap it. */
static int peer_stop(void)
{
    char r[64];
    peer_cmd(r, sizeof r, "quit");
    int rc = atoi(r);
    fclose(PEER_IN);
    fclose(PEER_OUT);
    PEER_IN = PEER_OUT = NULL;
    int st;
    while (waitpid(PEER_PID, &st, 0) < 0 && errno == EINTR)
        ;
    PEER_PID = -1;
    return rc;
}

/* After a failed check: end the peer however it is. */
static void peer_kill(void)
{
    if (PEER_PID <= 0)
        return;
    if (PEER_IN)
        fclose(PEER_IN);
    if (PEER_OUT)
        fclose(PEER_OUT);
    PEER_IN = PEER_OUT = NULL;
    kill(PEER_PID, SIGTERM);
    waitpid(PEER_PID, NULL, 0);
    PEER_PID = -1;
}

static uint64_t data_hash(size_t size, uint64_t seed)
{
    unsigned char *d = make_data(size, seed);
    uint64_t h = fnv1a(FNV_INIT, d, size);
    free(d);
    return h;
}

/* This session (who = "A") or the peer ("B") reads @path whole: its size
 * and hash (0 or -errno). */
static long long sum_of(char who, const char *path, long long *got, uint64_t *h)
{
    long long rc;
    if (who == 'A') {
        rc = fs_sum(S, path, got, h);
    } else {
        char r[128];
        unsigned long long hh = 0;
        peer_cmd(r, sizeof r, "sum %s", path);
        if (sscanf(r, "%lld %lld %llu", &rc, got, &hh) != 3)
            fail_msg("peer: bad answer %s", r);
        *h = hh;
    }
    return rc;
}

/* @who reads @path whole: it must be @size bytes hashing to @hash. */
static void expect_sum(char who, const char *path, long long size, uint64_t hash)
{
    long long rc, got = -1;
    uint64_t h = 0;
    if (who == 'A') {
        rc = fs_sum(S, path, &got, &h);
    } else {
        char r[128];
        unsigned long long hh = 0;
        peer_cmd(r, sizeof r, "sum %s", path);
        if (sscanf(r, "%lld %lld %llu", &rc, &got, &hh) != 3)
            fail_msg("peer: bad answer %s", r);
        h = hh;
    }
    if (rc)
        fail_msg("%c: reading %s: %s", who, path, errstr(rc));
    if (got != size || h != hash)
        fail_msg("%c: %s read as %lld bytes (hash %016llx), expected %lld (%016llx): "
                 "not the other client's last close", who, path, got,
                 (unsigned long long)h, size, (unsigned long long)hash);
}

/*
 * @who, which has @path cached as @stale_size bytes hashing to @stale, reads
 * it after the other client rewrote it: it must read the new contents
 * (@size, @hash).  A stale_keep_cache engine, under a caching mode, may
 * show exactly the cached contents instead: until its attribute timeout
 * has passed when the size changed (fresh attributes then show the change
 * and the cache is dropped), for as long as the data stays cached when it
 * did not (nothing tells the client; a kernel mount shows the same).
 */
static void expect_sum_over_cache(int mode, char who, const char *path, long long size,
                                  uint64_t hash, long long stale_size, uint64_t stale)
{
    long long got = -1;
    uint64_t h = 0;
    long long rc = sum_of(who, path, &got, &h);
    if (rc == 0 && got == stale_size && h == stale && SRV->stale_keep_cache && mode != 0) {
        fprintf(stderr, "[%s] %c: %s read as its cached contents right after the other "
                        "client's close (server keeps the cache on open; a kernel mount "
                        "too); %s\n", SRV->name, who, path,
                size == stale_size ? "same size: kept (a kernel mount too)"
                                   : "reading again after its attribute timeout");
        if (size == stale_size)
            return;
        struct timespec ts = {2, 200 * 1000 * 1000}; /* > its 1 s timeout */
        nanosleep(&ts, NULL);
    }
    expect_sum(who, path, size, hash);
}

/* What stat shows of @path in session @who before opening it. */
static void note_size(char who, const char *path, long long want, const char *what)
{
    char r[64];
    long long got;
    if (who == 'A') {
        got = fs_size(S, path);
    } else {
        peer_cmd(r, sizeof r, "size %s", path);
        got = strtoll(r, NULL, 10);
    }
    fprintf(stderr, "[%s] %c: stat %s after %s, before opening it: %lld%s (%s)\n", SRV->name,
            who, path, what, got, got < 0 ? errstr(got) : "", got == want ? "current" : "stale");
}

static void check_peers(int mode)
{
    char dir[64], a[96], b[96], c[96];
    snprintf(dir, sizeof dir, "/%s/coh", MODES[mode]);
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(c, sizeof c, "%s/c", dir);
    OK(ufuse_mkdir(S, dir, 0755));
    peer_start(mode);

    /* A writes and closes; B, which never saw the name, reads it whole */
    OK(fs_put(S, a, 1048576 + 3, 11, 0, 1));
    expect_sum('B', a, 1048576 + 3, data_hash(1048576 + 3, 11));
    /* B rewrites it shorter; A, which has it cached, opens and reads */
    expect_sum('A', a, 1048576 + 3, data_hash(1048576 + 3, 11));
    OK(peer_rc(fmt("put %s 70000 12 0 1", a)));
    note_size('A', a, 70000, "B rewrote it");
    expect_sum_over_cache(mode, 'A', a, 70000, data_hash(70000, 12), 1048576 + 3,
                          data_hash(1048576 + 3, 11));
    /* and back: A rewrites, B (cached too) opens and reads */
    OK(fs_put(S, a, 4097, 13, 0, 1));
    note_size('B', a, 4097, "A rewrote it");
    expect_sum_over_cache(mode, 'B', a, 4097, data_hash(4097, 13), 70000,
                          data_hash(70000, 12));

    /* page-aligned halves of one file, one written by each client */
    enum { HALF = 65536 };
    OK(fs_put(S, b, 2 * HALF, 14, 0, 1));
    expect_sum('B', b, 2 * HALF, data_hash(2 * HALF, 14));
    OK(fs_put(S, b, HALF, 15, 0, 0));
    OK(peer_rc(fmt("put %s 65536 16 65536 0", b)));
    /* the result, and what each client has cached: its own half over the
     * first contents */
    unsigned char *d0 = make_data(2 * HALF, 14), *d1 = make_data(HALF, 15),
                  *d2 = make_data(HALF, 16);
    uint64_t both = fnv1a(fnv1a(FNV_INIT, d1, HALF), d2, HALF);
    uint64_t a_view = fnv1a(fnv1a(FNV_INIT, d1, HALF), d0 + HALF, HALF);
    uint64_t b_view = fnv1a(fnv1a(FNV_INIT, d0, HALF), d2, HALF);
    free(d0);
    free(d1);
    free(d2);
    expect_sum_over_cache(mode, 'A', b, 2 * HALF, both, 2 * HALF, a_view);
    expect_sum_over_cache(mode, 'B', b, 2 * HALF, both, 2 * HALF, b_view);
    if (SRV->backing) {
        /* whatever the clients keep, the store has both halves */
        long long sz = 0;
        uint64_t h = FNV_INIT;
        int fd = open(fmt("%s/%s%s", BASE, SRV->backing, b), O_RDONLY | O_CLOEXEC);
        SYS(fd);
        unsigned char buf[65536];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) {
            h = fnv1a(h, buf, (size_t)n);
            sz += n;
        }
        close(fd);
        if (sz != 2 * HALF || h != both)
            fail_msg("%s in the store: %lld bytes (hash %016llx), not both halves", b, sz,
                     (unsigned long long)h);
    }

    /* A renames; B finds it under the new name */
    OK(ufuse_rename(S, a, c, 0));
    expect_sum('B', c, 4097, data_hash(4097, 13));
    /* B removes it; what A (which has the name cached) sees is noted */
    OK(peer_rc(fmt("unlink %s", c)));
    ufuse_file_t *f;
    long long r = fs_size(S, c);
    int orc = ufuse_open(S, c, O_RDONLY, 0, &f);
    if (orc == 0)
        ufuse_close(f);
    fprintf(stderr, "[%s] A: after B removed %s: stat %lld (%s), open %s\n", SRV->name, c, r,
            r < 0 ? errstr(r) : "cached", orc ? errstr(orc) : "succeeds");
    OK(peer_stop());
    OK(ufuse_unlink(S, b));
    OK(ufuse_rmdir(S, dir));
}

static void run_mode(int mode)
{
    mount_mode(mode);
    char top[64], out[PATH_MAX];
    snprintf(top, sizeof top, "/%s", MODES[mode]);
    snprintf(out, sizeof out, "%s/out-%s", BASE, MODES[mode]);
    /* a seeded file removed first thing, its name never looked up (a
     * kernel mount always LOOKUPs the name before UNLINK) */
    if (SRV->seeded && SRV->writable) {
        struct stat st;
        OK(ufuse_unlink(S, fmt("/seed/victim-%s", MODES[mode])));
        ERR(ufuse_stat(S, fmt("/seed/victim-%s", MODES[mode]), &st), ENOENT);
    }
    /* what the server was seeded with */
    if (SRV->seeded)
        check_remote_tree("/seed/orig", NULL, "seed tree");
    if (!SRV->writable) {
        SYS(mkdir(out, 0700));
        check_remote_tree("/seed/orig", out, "tree read out");
        check_readonly();
        check_remote_tree("/seed/orig", NULL, "tree after refused changes");
        return;
    }
    /* the previous session's tree survived its unmount */
    if (mode > 0) {
        NO_DIR_MODES = SRV->lost_dir_modes;
        NO_LINKS = SRV->no_symlink;
        check_remote_tree(fmt("/%s/tree", MODES[mode - 1]), NULL,
                          fmt("tree copied by the %s session", MODES[mode - 1]));
        NO_DIR_MODES = NO_LINKS = 0;
    }
    NO_LINKS = SRV->no_symlink;
    OK(ufuse_mkdir(S, top, 0755));
    copy_in(ORIG, fmt("%s/tree", top));
    SYS(mkdir(out, 0700));
    check_remote_tree(fmt("%s/tree", top), out, "tree copied in and out");
    NO_LINKS = 0;
    check_namespace(top);
    /* the server's plain backing directory holds the same tree */
    if (SRV->backing) {
        OK(ufuse_sync(S));
        struct mf want = {0}, got = {0};
        mf_local(&want, ORIG, "");
        NO_WHITEOUTS = 1; /* fuse-overlayfs marks new directories opaque */
        mf_local(&got, fmt("%s/%s/%s/tree", BASE, SRV->backing, MODES[mode]), "");
        NO_WHITEOUTS = 0;
        mf_compare(&want, &got, "backing directory");
        mf_free(&want);
        mf_free(&got);
    }
    if (SRV->peers)
        check_peers(mode);
}

static void t_direct(void **state) { (void)state; run_mode(0); }
static void t_writethrough(void **state) { (void)state; run_mode(1); }
static void t_writeback(void **state) { (void)state; run_mode(2); }
static void t_auto(void **state) { (void)state; run_mode(3); }

/* ------------------------------------------------------------------ */
/* Setting the servers up                                               */

static void add_arg(const char *a)
{
    if (SERVER_ARGC >= 31)
        abort();
    SERVER_ARGV[SERVER_ARGC++] = strdup(a);
    SERVER_ARGV[SERVER_ARGC] = NULL;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static int port_open(const char *ip, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int setup_sshfs(void)
{
    const char *sshd = "/usr/sbin/sshd";
    if (access(sshd, X_OK) != 0 || access("/usr/bin/ssh-keygen", X_OK) != 0) {
        fprintf(stderr, "sshd or ssh-keygen missing\n");
        return -1;
    }
    mkdir(fmt("%s/remote", BASE), 0755);
    char *kh[] = {"ssh-keygen", "-q", "-t", "ed25519", "-N", "",
                  "-f", (char *)fmt("%s/hostkey", BASE), NULL};
    char *ku[] = {"ssh-keygen", "-q", "-t", "ed25519", "-N", "",
                  "-f", (char *)fmt("%s/userkey", BASE), NULL};
    if (run(kh) != 0 || run(ku) != 0)
        return -1;
    if (run_sh(fmt("cp %s/userkey.pub %s/authorized_keys", BASE, BASE)) != 0)
        return -1;
    SSHD_PORT = free_port();
    if (SSHD_PORT <= 0)
        return -1;
    FILE *c = fopen(fmt("%s/sshd_config", BASE), "w");
    if (!c)
        return -1;
    fprintf(c,
            "Port %d\nListenAddress 127.0.0.1\nHostKey %s/hostkey\n"
            "PidFile none\nAuthorizedKeysFile %s/authorized_keys\nStrictModes no\n"
            "PermitRootLogin prohibit-password\nPubkeyAuthentication yes\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "UsePAM no\nSubsystem sftp internal-sftp\n",
            SSHD_PORT, BASE, BASE);
    fclose(c);
    /* privilege separation directory, as the package's unit file makes it */
    mkdir("/run/sshd", 0755);
    SSHD_PID = fork();
    if (SSHD_PID < 0)
        return -1;
    if (SSHD_PID == 0) {
        int fd = open(fmt("%s/sshd.log", BASE), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(sshd, sshd, "-D", "-e", "-f", fmt("%s/sshd_config", BASE), (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && !port_open("127.0.0.1", SSHD_PORT); i++) {
        if (waitpid(SSHD_PID, NULL, WNOHANG) == SSHD_PID) {
            SSHD_PID = -1;
            print_log("sshd", fmt("%s/sshd.log", BASE));
            return -1;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!port_open("127.0.0.1", SSHD_PORT)) {
        print_log("sshd", fmt("%s/sshd.log", BASE));
        return -1;
    }
    add_arg("sshfs");
    add_arg("-f");
    add_arg("-F");
    add_arg("/dev/null");
    add_arg(fmt("-oIdentityFile=%s/userkey,StrictHostKeyChecking=no,"
                "UserKnownHostsFile=/dev/null,BatchMode=yes,LogLevel=ERROR,port=%d",
                BASE, SSHD_PORT));
    add_arg(fmt("root@127.0.0.1:%s/remote", BASE));
    add_arg("{}");
    return 0;
}

/* Start a daemon (in the foreground, its output in BASE/@log); it is
 * killed at exit.  Its pid, or -1. */
static pid_t start_daemon(char *const argv[], const char *log)
{
    if (NDAEMONS == (int)(sizeof DAEMONS / sizeof DAEMONS[0]))
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(fmt("%s/%s", BASE, log), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    if (pid > 0)
        DAEMONS[NDAEMONS++] = pid;
    return pid;
}

/* Wait (up to 60 s: a generous bound, not a timing claim) until the shell
 * condition @cond holds. */
static int wait_until(const char *cond)
{
    for (int i = 0; i < 600; i++) {
        if (run_sh(cond) == 0)
            return 0;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "gave up waiting for: %s\n", cond);
    return -1;
}

/* The network: lo up, and ENGINE_IP on it (isolate() made the namespace). */
static int setup_net(void)
{
    if (run_sh("ip link set lo up && ip addr add " ENGINE_IP "/32 dev lo") != 0) {
        fprintf(stderr, "ip failed (is iproute2 installed?)\n");
        return -1;
    }
    return 0;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

/*
 * MooseFS: a master and two chunkservers on ENGINE_IP, everything in
 * BASE/mfs; WORKING_USER root (their default user "mfs" could not even
 * write /dev/null here); metadata.mfs starts as "MFSM NEW" (an empty file
 * system).  The client: mfsmount -f -H ENGINE_IP {}.
 */
static int setup_moosefs(void)
{
    const char *m = fmt("%s/mfs", BASE);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", m);
    if (setup_net() != 0 || mkdir(dir, 0755) != 0 || mkdir(fmt("%s/master", dir), 0755) != 0)
        return -1;
    if (write_text(fmt("%s/mfsmaster.cfg", dir),
                   fmt("WORKING_USER = root\nWORKING_GROUP = root\nDATA_PATH = %s/master\n"
                       "EXPORTS_FILENAME = %s/mfsexports.cfg\n"
                       "TOPOLOGY_FILENAME = %s/mfstopology.cfg\n", dir, dir, dir)) ||
        write_text(fmt("%s/mfsexports.cfg", dir), "* / rw,alldirs,admin,maproot=0:0\n") ||
        write_text(fmt("%s/mfstopology.cfg", dir), "") ||
        write_text(fmt("%s/master/metadata.mfs", dir), "MFSM NEW"))
        return -1;
    char *master[] = {"mfsmaster", "-f", "-c", (char *)fmt("%s/mfsmaster.cfg", dir), NULL};
    int up = start_daemon(master, "mfsmaster.log") > 0;
    for (int i = 0; up && i < 600 && !port_open(ENGINE_IP, 9421); i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!up || !port_open(ENGINE_IP, 9421)) {
        print_log("mfsmaster", fmt("%s/mfsmaster.log", BASE));
        return -1;
    }
    for (int i = 1; i <= 2; i++) {
        const char *cs = fmt("%s/cs%d", dir, i);
        if (mkdir(cs, 0755) != 0 || mkdir(fmt("%s/hdd", cs), 0755) != 0 ||
            write_text(fmt("%s/mfshdd.cfg", cs), fmt("%s/hdd\n", cs)) ||
            write_text(fmt("%s/mfschunkserver.cfg", cs),
                       fmt("WORKING_USER = root\nWORKING_GROUP = root\nDATA_PATH = %s\n"
                           "HDD_CONF_FILENAME = %s/mfshdd.cfg\nHDD_LEAVE_SPACE_DEFAULT = 0\n"
                           "MASTER_HOST = " ENGINE_IP "\nCSSERV_LISTEN_PORT = %d\n",
                           cs, cs, 9422 + 10 * i)))
            return -1;
        char *argv[] = {"mfschunkserver", "-f", "-c",
                        (char *)fmt("%s/mfschunkserver.cfg", cs), NULL};
        if (start_daemon(argv, fmt("mfschunkserver%d.log", i)) < 0 ||
            wait_until(fmt("grep -q 'connected to Master' %s/mfschunkserver%d.log", BASE, i))) {
            print_log("mfschunkserver", fmt("%s/mfschunkserver%d.log", BASE, i));
            return -1;
        }
    }
    add_arg("mfsmount");
    add_arg("-f");
    add_arg("-H");
    add_arg(ENGINE_IP);
    add_arg("{}");
    return 0;
}

/*
 * GlusterFS: glusterd with private /var/lib/glusterd, /var/log/glusterfs
 * and /run (isolate()), a one-brick volume v0 on ENGINE_IP (force: the
 * brick is on the root file system), started.  The client:
 * glusterfs -N --volfile-server=ENGINE_IP --volfile-id=v0 {}.
 */
static int setup_glusterfs(void)
{
    const char *lib = fmt("%s/glusterd", BASE), *log = fmt("%s/glusterlog", BASE);
    if (setup_net() != 0 || mkdir(lib, 0755) != 0 || mkdir(log, 0755) != 0 ||
        mkdir(fmt("%s/brick", BASE), 0755) != 0 || mkdir("/run/gluster", 0755) != 0 ||
        mount(lib, "/var/lib/glusterd", NULL, MS_BIND, NULL) != 0 ||
        mount(log, "/var/log/glusterfs", NULL, MS_BIND, NULL) != 0) {
        fprintf(stderr, "glusterd's private directories: %s\n", strerror(errno));
        return -1;
    }
    char *glusterd[] = {"glusterd", "-N", "-l", (char *)fmt("%s/glusterd.log", BASE), NULL};
    if (start_daemon(glusterd, "glusterd.out") < 0 ||
        wait_until("gluster --mode=script volume list") != 0 ||
        run_sh(fmt("gluster --mode=script volume create v0 " ENGINE_IP ":%s/brick force",
                   BASE)) != 0 ||
        run_sh("gluster --mode=script volume start v0") != 0 ||
        wait_until("gluster --mode=script volume status v0 | grep -q ' Y '") != 0) {
        print_log("commands", fmt("%s/cmd.log", BASE));
        print_log("glusterd", fmt("%s/glusterd.log", BASE));
        return -1;
    }
    add_arg("glusterfs");
    add_arg("-N");
    add_arg("--volfile-server=" ENGINE_IP);
    add_arg("--volfile-id=v0");
    add_arg("{}");
    return 0;
}

/*
 * Namespaces of our own for the distributed engines (see the top): this
 * process stays outside and returns the exit status of its child, the
 * first process of the new PID namespace, which runs the test.  Returns in
 * the child only.
 */
static void isolate(void)
{
    /* the PID namespace is for the child; the others are unshared by the
     * child alone, so that this process keeps its own /proc */
    if (unshare(CLONE_NEWPID) != 0) {
        fprintf(stderr, "unshare: %s (the %s test needs root)\n", strerror(errno), SRV->name);
        exit(1);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        exit(1);
    if (pid > 0) {
        /* _exit: our children now go to the new namespace, and so would a
         * sanitizer's helper at exit() (LeakSanitizer's tracer) */
        int st;
        while (waitpid(pid, &st, 0) < 0)
            if (errno != EINTR)
                _exit(1);
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
    }
    /* our end ends everything: the parent dies, we die, the namespace's
     * processes die with us */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0 ||
        mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) {
        fprintf(stderr, "private /proc and /run: %s\n", strerror(errno));
        exit(1);
    }
}

static int setup_server(void)
{
    const char *n = SRV->name;
    if (!strcmp(n, "sshfs"))
        return setup_sshfs();
    if (!strcmp(n, "moosefs"))
        return setup_moosefs();
    if (!strcmp(n, "glusterfs"))
        return setup_glusterfs();
    if (!strcmp(n, "squashfuse")) {
        char *mk[] = {"mksquashfs", SEED, (char *)fmt("%s/seed.sqfs", BASE),
                      "-quiet", "-noappend", "-no-progress", NULL};
        if (run(mk) != 0) {
            fprintf(stderr, "mksquashfs failed (is squashfs-tools installed?)\n");
            return -1;
        }
        add_arg("squashfuse");
        add_arg("-f");
        add_arg(fmt("%s/seed.sqfs", BASE));
        add_arg("{}");
        return 0;
    }
    if (!strcmp(n, "fuse-overlayfs")) {
        mkdir(fmt("%s/upper", BASE), 0755);
        mkdir(fmt("%s/work", BASE), 0755);
        add_arg("fuse-overlayfs");
        add_arg("-f");
        add_arg("-o");
        add_arg(fmt("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", BASE, BASE, BASE));
        add_arg("{}");
        return 0;
    }
    if (!strcmp(n, "fuse-zip")) {
        add_arg("fuse-zip");
        add_arg("-f");
        add_arg(fmt("%s/archive.zip", BASE));
        add_arg("{}");
        return 0;
    }
    if (!strcmp(n, "archivemount")) {
        if (run_sh(fmt("tar -C %s/lower -cf %s/archive.tar seed", BASE, BASE)) != 0) {
            fprintf(stderr, "tar failed\n");
            return -1;
        }
        add_arg("archivemount");
        add_arg("-f");
        add_arg(fmt("%s/archive.tar", BASE));
        add_arg("{}");
        return 0;
    }
    if (!strcmp(n, "gocryptfs")) {
        mkdir(fmt("%s/cipher", BASE), 0700);
        lwrite(fmt("%s/password", BASE), "interop test password\n", 22, 0600);
        char *init[] = {"gocryptfs", "-q", "-init", "-extpass",
                        (char *)fmt("cat %s/password", BASE),
                        (char *)fmt("%s/cipher", BASE), NULL};
        if (run(init) != 0) {
            fprintf(stderr, "gocryptfs -init failed\n");
            return -1;
        }
        add_arg("gocryptfs");
        add_arg("-f");
        add_arg("-q");
        add_arg("-extpass");
        add_arg(fmt("cat %s/password", BASE));
        add_arg(fmt("%s/cipher", BASE));
        add_arg("{}");
        return 0;
    }
    return -1;
}

static int in_path(const char *bin)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
    char *copy = strdup(path), *save = NULL;
    int found = 0;
    for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save))
        found = access(fmt("%s/%s", d, bin), X_OK) == 0;
    free(copy);
    return found;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

static void cleanup(void)
{
    if (S) {
        ufuse_unmount(S);
        S = NULL;
    }
    peer_kill();
    if (SSHD_PID > 0) {
        kill(SSHD_PID, SIGTERM);
        waitpid(SSHD_PID, NULL, 0);
        SSHD_PID = -1;
    }
    for (int i = 0; i < NDAEMONS; i++)
        kill(DAEMONS[i], SIGTERM);
    for (int i = 0; i < NDAEMONS; i++)
        waitpid(DAEMONS[i], NULL, 0);
    NDAEMONS = 0;
    if (SRV && SRV->isolate && getpid() == 1) {
        /* we are the PID namespace's first process: whatever the daemons
         * started (gluster's brick process) goes too */
        kill(-1, SIGKILL);
        while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
            ;
    }
    if (BASE[0] && !getenv("UFUSE_KEEP"))
        nftw(BASE, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Are all the programs named in @bins (space-separated) in PATH? */
static int all_in_path(const char *bins)
{
    char *copy = strdup(bins), *save = NULL;
    int ok = 1;
    for (char *b = strtok_r(copy, " ", &save); b && ok; b = strtok_r(NULL, " ", &save))
        ok = in_path(b);
    free(copy);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "--peer")) {
        signal(SIGPIPE, SIG_IGN);
        return peer_main(argv[2], argv + 3);
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s SERVER\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < sizeof servers / sizeof servers[0]; i++)
        if (!strcmp(argv[1], servers[i].name))
            SRV = &servers[i];
    if (!SRV) {
        fprintf(stderr, "unknown server %s\n", argv[1]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (!all_in_path(SRV->bin)) {
        /* scripts/deps.sh installs it; try once more here */
        fprintf(stderr, "%s not found; trying apt-get install %s\n", SRV->bin, SRV->pkg);
        if (geteuid() == 0 &&
            run_sh(fmt("DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "
                       "install -y -qq --no-install-recommends %s >&2", SRV->pkg)) != 0)
            fprintf(stderr, "apt-get install %s failed\n", SRV->pkg);
        if (!all_in_path(SRV->bin)) {
            fprintf(stderr, "skip: Debian package(s) %s cannot be installed (apt-get "
                            "install failed), so %s cannot be tested\n",
                    SRV->pkg, SRV->bin);
            return 77;
        }
    }
    if (SRV->isolate)
        isolate();
    strcpy(BASE, "/tmp/ufuse-interop-XXXXXX");
    if (!mkdtemp(BASE)) {
        perror("mkdtemp");
        return 1;
    }
    atexit(cleanup);
    /* BASE/lower is what overlay, squashfs and tar are seeded with: the
     * servers show the original tree as /seed/orig */
    snprintf(SEED, sizeof SEED, "%s/lower", BASE);
    snprintf(ORIG, sizeof ORIG, "%s/lower/seed/orig", BASE);
    if (mkdir(SEED, 0755) != 0 || mkdir(fmt("%s/seed", SEED), 0755) != 0)
        return 1;
    make_orig();
    for (int i = 0; i < NMODES; i++)
        lwrite(fmt("%s/seed/victim-%s", SEED, MODES[i]), "v", 1, 0644);
    if (setup_server() != 0) {
        print_log("commands", fmt("%s/cmd.log", BASE));
        fprintf(stderr, "setting up %s failed\n", SRV->name);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(t_direct, teardown),
        cmocka_unit_test_teardown(t_writethrough, teardown),
        cmocka_unit_test_teardown(t_writeback, teardown),
        cmocka_unit_test_teardown(t_auto, teardown),
    };
    return cmocka_run_group_tests_name(SRV->name, tests, NULL, NULL);
}
