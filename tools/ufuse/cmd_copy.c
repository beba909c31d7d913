/*
 * cmd_copy.c - get and put: copy files and whole trees out of and into the
 * server.  Both are one tree walk (copy_any) between two struct sides
 * (side.c), run remote->local for get and local->remote for put.
 *
 * Behaviour (like cp(1), with modes kept):
 *  - Without -r the source is followed if it is a symlink and must not be a
 *    directory; with -r symlinks are copied as symlinks (their target text
 *    is kept as is) and directories recursively.
 *  - If the destination is an existing directory, the copy goes inside it
 *    under the source's last name; the source "/" or "." then merges into
 *    it.  An existing file is overwritten; an existing symlink in the way of
 *    a symlink is replaced.
 *  - Files are streamed CLI_CHUNK bytes at a time (never whole in memory),
 *    created 0600 and given their mode at the end; directories are made
 *    0700 and given their mode once their contents are in, so read-only
 *    trees copy too.  Other file types (fifos, devices, sockets) are skipped
 *    with a warning inside a tree, and refused as the operand itself.
 *  - The first error ends the command: "ufuse: get: PATH: strerror", PATH
 *    being the path on the side that failed.
 *
 * Locks: none (single-threaded tool).
 *
 * Invariants:
 *   1. Paths handed to the remote side are absolute and normalised; local
 *      paths are used as the user wrote them (joined with "/NAME").
 *   2. Every handle opened in copy_file is closed before it returns.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct copy {
    struct cli *c;
    const struct side *src, *dst;
};

static int copy_any(struct copy *k, const char *s, const char *d,
                    const struct stat *st);

static int copy_file(struct copy *k, const char *s, const char *d,
                     const struct stat *st)
{
    void *in, *out;
    bool src_err = false;
    int r = k->src->open(k->c, s, O_RDONLY, 0, &in);

    if (r < 0)
        return fail(k->c, s, r);
    r = k->dst->open(k->c, d, O_WRONLY | O_CREAT | O_TRUNC, 0600, &out);
    if (r < 0) {
        k->src->close(in);
        return fail(k->c, d, r);
    }
    r = stream_copy(k->c, k->src, in, k->dst, out, (uint64_t)st->st_size, d,
                    &src_err);
    if (r == 0) {
        r = k->dst->fchmod(out, st->st_mode & 07777);
        src_err = false;
    }
    int rc_in = k->src->close(in);
    int rc_out = k->dst->close(out);            /* reports write-back errors */
    if (r < 0)
        return fail(k->c, src_err ? s : d, r);
    if (rc_out < 0)
        return fail(k->c, d, rc_out);
    if (rc_in < 0)
        return fail(k->c, s, rc_in);
    return CMD_OK;
}

static int copy_link(struct copy *k, const char *s, const char *d)
{
    char *target;
    struct stat dst_st;
    int r = k->src->readlink(k->c, s, &target);

    if (r < 0)
        return fail(k->c, s, r);
    r = k->dst->symlink(k->c, target, d);
    if (r == -EEXIST && k->dst->lstat(k->c, d, &dst_st) == 0 &&
        !S_ISDIR(dst_st.st_mode)) {
        r = k->dst->unlink(k->c, d);
        if (r == 0)
            r = k->dst->symlink(k->c, target, d);
    }
    free(target);
    return r < 0 ? fail(k->c, d, r) : CMD_OK;
}

static int copy_dir(struct copy *k, const char *s, const char *d,
                    const struct stat *st)
{
    struct entry *ents;
    size_t n;
    bool made = true;
    int r = k->dst->mkdir(k->c, d, 0700);

    if (r == -EEXIST) {
        struct stat dst_st;
        made = false;
        r = k->dst->stat(k->c, d, &dst_st);
        if (r == 0 && !S_ISDIR(dst_st.st_mode))
            r = -EEXIST;
    }
    if (r < 0)
        return fail(k->c, d, r);
    r = k->src->list(k->c, s, &ents, &n);
    if (r < 0)
        return fail(k->c, s, r);
    int rc = CMD_OK;
    for (size_t i = 0; i < n && rc == CMD_OK; i++) {
        char *cs = path_join(s, ents[i].name);
        char *cd = path_join(d, ents[i].name);
        struct stat est = ents[i].st;
        if (!ents[i].has_stat && (r = k->src->lstat(k->c, cs, &est)) < 0)
            rc = fail(k->c, cs, r);
        else
            rc = copy_any(k, cs, cd, &est);
        free(cs);
        free(cd);
    }
    entries_free(ents, n);
    if (rc == CMD_OK && made &&
        (r = k->dst->chmod(k->c, d, st->st_mode & 07777)) < 0)
        rc = fail(k->c, d, r);
    return rc;
}

static int copy_any(struct copy *k, const char *s, const char *d,
                    const struct stat *st)
{
    switch (st->st_mode & S_IFMT) {
    case S_IFREG:
        return copy_file(k, s, d, st);
    case S_IFDIR:
        return copy_dir(k, s, d, st);
    case S_IFLNK:
        return copy_link(k, s, d);
    default:
        fflush(stdout);
        fprintf(stderr, "ufuse: %s: %s: skipped (%s)\n", k->c->cmd, s,
                type_name(st));
        return CMD_OK;
    }
}

/*
 * Copy @src (a path on side @from) to @dst (on side @to; NULL = @dflt, a
 * directory), following the rules in the header comment.
 */
static int copy_top(struct cli *c, const struct side *from, const char *src,
                    const struct side *to, const char *dst, bool recursive)
{
    struct copy k = { .c = c, .src = from, .dst = to };
    struct stat st, dst_st;
    int r = recursive ? from->lstat(c, src, &st) : from->stat(c, src, &st);

    if (r < 0)
        return fail(c, src, r);
    if (S_ISDIR(st.st_mode) && !recursive)
        return fail(c, src, -EISDIR);
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
        return fail_msg(c, CMD_FAIL, src,
                        "not a regular file, directory or symlink");
    char *name = path_base(src);
    char *target;
    if (to->stat(c, dst, &dst_st) == 0 && S_ISDIR(dst_st.st_mode) && name[0])
        target = path_join(dst, name);
    else
        target = xstrdup(dst);
    free(name);
    int rc = copy_any(&k, src, target, &st);
    free(target);
    return rc;
}

int cmd_get(struct cli *c, struct cmd_args *a)
{
    char *src = path_resolve(c->cwd, a->argv[0]);
    int rc = copy_top(c, &side_remote, src, &side_local,
                      a->argc > 1 ? a->argv[1] : ".", a->flag['r']);
    free(src);
    return rc;
}

int cmd_put(struct cli *c, struct cmd_args *a)
{
    char *dst = a->argc > 1 ? path_resolve(c->cwd, a->argv[1])
                            : xstrdup(c->cwd);
    int rc = copy_top(c, &side_local, a->argv[0], &side_remote, dst,
                      a->flag['r']);
    free(dst);
    return rc;
}
