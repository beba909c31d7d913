/*
 * cmd_fs.c - the sftp-like commands of the ufuse tool: ls, cd, pwd, stat,
 * cat, mkdir, rmdir, rm, mv, ln, readlink, chmod, truncate, df, info.
 * (get and put are in cmd_copy.c.)
 *
 * Every handler takes its operands relative to the session's cwd
 * (path_resolve), stops at the first error and reports it as
 * "ufuse: CMD: ARG: strerror" with ARG as the user wrote it (or, inside a
 * recursive walk, the absolute path that failed).
 *
 * Locks: none (single-threaded tool).
 *
 * Invariants:
 *   1. Standard output is flushed before cat writes to fd 1 directly, so
 *      printf output and streamed data keep their order.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "cli.h"

/* ---- ls ---------------------------------------------------------------- */

/* One line of ls -l. */
struct row {
    const char *name;      /* as displayed */
    char *path;            /* absolute, for readlink */
    struct stat st;
};

static int num_width(unsigned long long v)
{
    int w = 1;
    while (v >= 10) {
        v /= 10;
        w++;
    }
    return w;
}

static void size_field(const struct stat *st, char *out, size_t size)
{
    if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
        snprintf(out, size, "%u, %u", major(st->st_rdev), minor(st->st_rdev));
    else
        snprintf(out, size, "%lld", (long long)st->st_size);
}

static void ls_rows(struct cli *c, struct row *rows, size_t n, bool longfmt)
{
    int wl = 1, wu = 1, wg = 1, ws = 1;
    char sz[48];

    if (!longfmt) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", rows[i].name);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct stat *st = &rows[i].st;
        size_field(st, sz, sizeof(sz));
        int w;
        if ((w = num_width(st->st_nlink)) > wl) wl = w;
        if ((w = num_width(st->st_uid)) > wu) wu = w;
        if ((w = num_width(st->st_gid)) > wg) wg = w;
        if ((w = (int)strlen(sz)) > ws) ws = w;
    }
    for (size_t i = 0; i < n; i++) {
        const struct stat *st = &rows[i].st;
        char mode[11], when[64], *target = NULL;
        mode_string(st->st_mode, mode);
        size_field(st, sz, sizeof(sz));
        time_string(&st->st_mtim, false, when, sizeof(when));
        printf("%s %*llu %*u %*u %*s %s %s", mode, wl,
               (unsigned long long)st->st_nlink, wu, (unsigned)st->st_uid,
               wg, (unsigned)st->st_gid, ws, sz, when, rows[i].name);
        if (S_ISLNK(st->st_mode) &&
            remote_readlink(c, rows[i].path, &target) == 0) {
            printf(" -> %s", target);
            free(target);
        }
        putchar('\n');
    }
}

/* List directory @path (absolute); @shown is how the user named it. */
static int ls_dir(struct cli *c, const char *path, const char *shown,
                  bool longfmt, bool all)
{
    struct entry *ents;
    size_t n, k = 0;
    int r = remote_list(c, path, &ents, &n);

    if (r < 0)
        return fail(c, shown, r);
    struct row *rows = xmalloc((n ? n : 1) * sizeof(*rows));
    int rc = CMD_OK;
    for (size_t i = 0; i < n; i++) {
        if (!all && ents[i].name[0] == '.')
            continue;
        struct row *w = &rows[k];
        w->name = ents[i].name;
        w->path = path_join(path, ents[i].name);
        w->st = ents[i].st;
        k++;
        if (longfmt && !ents[i].has_stat &&
            (r = ufuse_lstat(c->fs, w->path, &w->st)) < 0) {
            rc = fail(c, w->path, r);
            break;
        }
    }
    if (rc == CMD_OK)
        ls_rows(c, rows, k, longfmt);
    for (size_t i = 0; i < k; i++)
        free(rows[i].path);
    free(rows);
    entries_free(ents, n);
    return rc;
}

/*
 * Like ls(1): operands that are not directories first, in one aligned
 * group, then each directory's contents (under a "NAME:" header when there
 * are several operands).  ls -l shows a symlink operand itself; plain ls
 * follows it.
 */
int cmd_ls(struct cli *c, struct cmd_args *a)
{
    bool longfmt = a->flag['l'], all = a->flag['a'];
    char *dot[] = { ".", NULL };
    char **ops = a->argc ? a->argv : dot;
    int nops = a->argc ? a->argc : 1;
    struct row *rows = xmalloc(nops * sizeof(*rows));
    bool *isdir = xmalloc(nops * sizeof(*isdir));
    int rc = CMD_OK, nfiles = 0, ok = 0;

    for (; ok < nops; ok++) {
        struct row *w = &rows[ok];
        w->name = ops[ok];
        w->path = path_resolve(c->cwd, ops[ok]);
        int r = longfmt ? ufuse_lstat(c->fs, w->path, &w->st)
                        : ufuse_stat(c->fs, w->path, &w->st);
        if (r < 0) {
            fail(c, ops[ok], r);
            rc = CMD_FAIL;
            free(w->path);
            break;
        }
        isdir[ok] = S_ISDIR(w->st.st_mode);
    }
    if (rc == CMD_OK) {
        struct row *files = xmalloc(nops * sizeof(*files));
        for (int i = 0; i < nops; i++)
            if (!isdir[i])
                files[nfiles++] = rows[i];
        ls_rows(c, files, nfiles, longfmt);
        free(files);
        bool first = nfiles == 0;
        for (int i = 0; i < nops && rc == CMD_OK; i++) {
            if (!isdir[i])
                continue;
            if (nops > 1)
                printf("%s%s:\n", first ? "" : "\n", ops[i]);
            first = false;
            rc = ls_dir(c, rows[i].path, ops[i], longfmt, all);
        }
    }
    for (int i = 0; i < ok; i++)
        free(rows[i].path);
    free(rows);
    free(isdir);
    return rc;
}

/* ---- cd, pwd, stat ----------------------------------------------------- */

int cmd_cd(struct cli *c, struct cmd_args *a)
{
    const char *arg = a->argc ? a->argv[0] : "/";
    char *p = path_resolve(c->cwd, arg);
    struct stat st;
    int r = ufuse_stat(c->fs, p, &st);

    if (r == 0 && !S_ISDIR(st.st_mode))
        r = -ENOTDIR;
    if (r < 0) {
        free(p);
        return fail(c, arg, r);
    }
    free(c->cwd);
    c->cwd = p;
    return CMD_OK;
}

int cmd_pwd(struct cli *c, struct cmd_args *a)
{
    printf("%s\n", c->cwd);
    return CMD_OK;
}

int cmd_stat(struct cli *c, struct cmd_args *a)
{
    for (int i = 0; i < a->argc; i++) {
        char *p = path_resolve(c->cwd, a->argv[i]);
        char *target = NULL, mode[11], when[80];
        struct stat st;
        int r = ufuse_lstat(c->fs, p, &st);
        if (r == 0 && S_ISLNK(st.st_mode))
            r = remote_readlink(c, p, &target);
        free(p);
        if (r < 0)
            return fail(c, a->argv[i], r);
        mode_string(st.st_mode, mode);
        printf("  File: %s%s%s\n", a->argv[i], target ? " -> " : "",
               target ? target : "");
        free(target);
            printf("  Size: %-15lld Blocks: %-10lld IO Block: %-6ld %s\n",
               (long long)st.st_size, (long long)st.st_blocks,
               (long)st.st_blksize, type_name(&st));
        printf(" Inode: %-15llu Links: %llu", (unsigned long long)st.st_ino,
               (unsigned long long)st.st_nlink);
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
            printf("  Device type: %u,%u", major(st.st_rdev),
                   minor(st.st_rdev));
        putchar('\n');
        printf("Access: (%04o/%s)  Uid: %u  Gid: %u\n",
               (unsigned)(st.st_mode & 07777), mode, (unsigned)st.st_uid,
               (unsigned)st.st_gid);
        time_string(&st.st_atim, true, when, sizeof(when));
        printf("Access: %s\n", when);
        time_string(&st.st_mtim, true, when, sizeof(when));
        printf("Modify: %s\n", when);
        time_string(&st.st_ctim, true, when, sizeof(when));
        printf("Change: %s\n", when);
    }
    return CMD_OK;
}

/* ---- cat --------------------------------------------------------------- */

int cmd_cat(struct cli *c, struct cmd_args *a)
{
    for (int i = 0; i < a->argc; i++) {
        char *p = path_resolve(c->cwd, a->argv[i]);
        struct stat st;
        void *h = NULL;
        bool src_err = true;
        int r = ufuse_stat(c->fs, p, &st);
        if (r == 0 && S_ISDIR(st.st_mode))
            r = -EISDIR;
        if (r == 0)
            r = side_remote.open(c, p, O_RDONLY, 0, &h);
        free(p);
        if (r == 0) {
            fflush(stdout);                  /* invariant 1 */
            /* size 0: no progress bar over the data */
            r = stream_copy(c, &side_remote, h, &side_stdout, NULL, 0,
                            a->argv[i], &src_err);
            int rc = side_remote.close(h);
            if (r == 0)
                r = rc;
        }
        if (r < 0)
            return src_err ? fail(c, a->argv[i], r) : fail(c, "stdout", r);
    }
    return CMD_OK;
}

/* ---- namespace --------------------------------------------------------- */

/* mkdir -p: make every missing ancestor of absolute @p and @p itself. */
static int mkdir_parents(struct cli *c, const char *p, mode_t mode)
{
    char *buf = xstrdup(p);
    int r = 0;
    for (char *s = buf + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char save = *s;
        *s = '\0';
        r = ufuse_mkdir(c->fs, buf, mode);
        if (r == -EEXIST) {
            struct stat st;
            r = ufuse_stat(c->fs, buf, &st);
            if (r == 0 && !S_ISDIR(st.st_mode))
                r = save ? -ENOTDIR : -EEXIST;
        }
        *s = save;
        if (r < 0 || !save)
            break;
    }
    free(buf);
    return r;
}

int cmd_mkdir(struct cli *c, struct cmd_args *a)
{
    mode_t mode = 0777 & ~c->umask;
    for (int i = 0; i < a->argc; i++) {
        char *p = path_resolve(c->cwd, a->argv[i]);
        int r;
        if (a->flag['p'])
            r = strcmp(p, "/") ? mkdir_parents(c, p, mode) : 0;
        else
            r = ufuse_mkdir(c->fs, p, mode);
        free(p);
        if (r < 0)
            return fail(c, a->argv[i], r);
    }
    return CMD_OK;
}

int cmd_rmdir(struct cli *c, struct cmd_args *a)
{
    for (int i = 0; i < a->argc; i++) {
        char *p = path_resolve(c->cwd, a->argv[i]);
        int r = ufuse_rmdir(c->fs, p);
        free(p);
        if (r < 0)
            return fail(c, a->argv[i], r);
    }
    return CMD_OK;
}

/* rm -r of absolute @p, whose lstat is @st; reports its own errors. */
static int rm_tree(struct cli *c, const char *p, const struct stat *st)
{
    int r;
    if (!S_ISDIR(st->st_mode)) {
        r = ufuse_unlink(c->fs, p);
        return r < 0 ? fail(c, p, r) : CMD_OK;
    }
    struct entry *ents;
    size_t n;
    r = remote_list(c, p, &ents, &n);
    if (r < 0)
        return fail(c, p, r);
    int rc = CMD_OK;
    for (size_t i = 0; i < n && rc == CMD_OK; i++) {
        char *child = path_join(p, ents[i].name);
        struct stat cst = ents[i].st;
        if (!ents[i].has_stat && (r = ufuse_lstat(c->fs, child, &cst)) < 0)
            rc = fail(c, child, r);
        else
            rc = rm_tree(c, child, &cst);
        free(child);
    }
    entries_free(ents, n);
    if (rc == CMD_OK && (r = ufuse_rmdir(c->fs, p)) < 0)
        rc = fail(c, p, r);
    return rc;
}

int cmd_rm(struct cli *c, struct cmd_args *a)
{
    int rc = CMD_OK;
    for (int i = 0; i < a->argc && rc == CMD_OK; i++) {
        char *p = path_resolve(c->cwd, a->argv[i]);
        struct stat st;
        int r;
        if (!a->flag['r']) {
            r = ufuse_unlink(c->fs, p);
            rc = r < 0 ? fail(c, a->argv[i], r) : CMD_OK;
        } else if (strcmp(p, "/") == 0) {
            rc = fail_msg(c, CMD_FAIL, a->argv[i],
                          "refusing to remove the root directory");
        } else if ((r = ufuse_lstat(c->fs, p, &st)) < 0) {
            rc = fail(c, a->argv[i], r);
        } else {
            rc = rm_tree(c, p, &st);
        }
        free(p);
    }
    return rc;
}

/*
 * The destination of mv and ln: @arg resolved, or, when that is an existing
 * directory, the source's last name inside it.
 */
static char *dest_path(struct cli *c, const char *arg, const char *src)
{
    char *p = path_resolve(c->cwd, arg);
    struct stat st;
    if (ufuse_stat(c->fs, p, &st) == 0 && S_ISDIR(st.st_mode)) {
        char *name = path_base(src);
        if (name[0]) {
            char *q = path_join(p, name);
            free(p);
            p = q;
        }
        free(name);
    }
    return p;
}

int cmd_mv(struct cli *c, struct cmd_args *a)
{
    char *from = path_resolve(c->cwd, a->argv[0]);
    char *to = dest_path(c, a->argv[1], from);
    int r = ufuse_rename(c->fs, from, to, 0);
    free(from);
    free(to);
    return r < 0 ? fail(c, a->argv[0], r) : CMD_OK;
}

int cmd_ln(struct cli *c, struct cmd_args *a)
{
    const char *target = a->argv[0];
    char *link = dest_path(c, a->argv[1], target);
    int r;
    if (a->flag['s']) {
        r = ufuse_symlink(c->fs, target, link);   /* target kept verbatim */
    } else {
        char *existing = path_resolve(c->cwd, target);
        r = ufuse_link(c->fs, existing, link);
        free(existing);
    }
    free(link);
    return r < 0 ? fail(c, a->argv[1], r) : CMD_OK;
}

int cmd_readlink(struct cli *c, struct cmd_args *a)
{
    for (int i = 0; i < a->argc; i++) {
        char *p = path_resolve(c->cwd, a->argv[i]);
        char *target;
        int r = remote_readlink(c, p, &target);
        free(p);
        if (r < 0)
            return fail(c, a->argv[i], r);
        printf("%s\n", target);
        free(target);
    }
    return CMD_OK;
}

int cmd_chmod(struct cli *c, struct cmd_args *a)
{
    char *end;
    unsigned long mode = strtoul(a->argv[0], &end, 8);
    if (!a->argv[0][0] || *end || a->argv[0][0] == '-' || mode > 07777)
        return fail_msg(c, CMD_USAGE, a->argv[0], "invalid octal mode");
    for (int i = 1; i < a->argc; i++) {
        char *p = path_resolve(c->cwd, a->argv[i]);
        int r = ufuse_chmod(c->fs, p, (mode_t)mode);
        free(p);
        if (r < 0)
            return fail(c, a->argv[i], r);
    }
    return CMD_OK;
}

int cmd_truncate(struct cli *c, struct cmd_args *a)
{
    uint64_t size;
    int rc = arg_num(c, a->argv[0], INT64_MAX, &size);
    if (rc != CMD_OK)
        return rc;
    char *p = path_resolve(c->cwd, a->argv[1]);
    int r = ufuse_truncate(c->fs, p, (off_t)size);
    free(p);
    return r < 0 ? fail(c, a->argv[1], r) : CMD_OK;
}

/* ---- df, info ---------------------------------------------------------- */

int cmd_df(struct cli *c, struct cmd_args *a)
{
    const char *arg = a->argc ? a->argv[0] : ".";
    char *p = path_resolve(c->cwd, arg);
    struct statvfs sv;
    int r = ufuse_statfs(c->fs, p, &sv);
    free(p);
    if (r < 0)
        return fail(c, arg, r);
    unsigned long long unit = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
    unsigned long long total = sv.f_blocks * unit / 1024;
    unsigned long long avail = sv.f_bavail * unit / 1024;
    unsigned long long used = (sv.f_blocks - sv.f_bfree) * unit / 1024;
    unsigned long long iused = sv.f_files - sv.f_ffree;
    char pct[8] = "-";
    if (used + avail)   /* as df(1): rounded up */
        snprintf(pct, sizeof(pct), "%llu%%",
                 (used * 100 + used + avail - 1) / (used + avail));
    printf("%12s %12s %12s %5s %12s %12s %12s\n", "1K-blocks", "Used",
           "Available", "Use%", "Inodes", "IUsed", "IFree");
    printf("%12llu %12llu %12llu %5s %12llu %12llu %12llu\n", total, used,
           avail, pct, (unsigned long long)sv.f_files, iused,
           (unsigned long long)sv.f_ffree);
    printf("block size %lu, fragment size %lu, name max %lu\n",
           (unsigned long)sv.f_bsize, (unsigned long)sv.f_frsize,
           (unsigned long)sv.f_namemax);
    return CMD_OK;
}

int cmd_info(struct cli *c, struct cmd_args *a)
{
    struct ufuse_conninfo ci;
    int r = ufuse_conninfo(c->fs, &ci);
    if (r < 0)
        return fail(c, NULL, r);
    printf("server         %s\n",
           c->server ? c->server : "ufuse-memfs (built-in)");
    printf("protocol       %u.%u\n", ci.proto_major, ci.proto_minor);
    printf("max_read       %u\n", ci.max_read);
    printf("max_write      %u\n", ci.max_write);
    printf("max_readahead  %u\n", ci.max_readahead);
    printf("max_pages      %u\n", ci.max_pages);
    printf("time_gran      %u\n", ci.time_gran);
    printf("flags          0x%llx\n", (unsigned long long)ci.flags);
    return CMD_OK;
}
