/*
 * cli.h - shared declarations of the `ufuse` command-line tool.
 *
 * The tool is one session (struct cli) driven by a command loop (main.c)
 * over a table of commands (struct cmd).  Commands live in files by group:
 * cmd_fs.c (sftp-like namespace commands), cmd_copy.c (get/put),
 * cmd_io.c (xfs_io-like commands on "the open file").  side.c puts the
 * remote file system and the local one behind one interface (struct side)
 * so that get and put share one tree walk; util.c holds parsing, printing
 * and the progress bar.
 *
 * Locks: none.  The tool is single-threaded; the library may run threads of
 * its own behind the session handle.
 *
 * Only the public API of include/ufuse.h is used.
 */
#ifndef UFUSE_CLI_H
#define UFUSE_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "ufuse.h"

/* Transfer buffer of cat, get, put, pread and pwrite. */
#define CLI_CHUNK (1u << 20)

/* What a command handler returns. */
enum {
    CMD_OK = 0,     /* success */
    CMD_FAIL = 1,   /* failed; the message is printed already */
    CMD_USAGE = 2,  /* bad usage; the message is printed already */
    CMD_QUIT = 3,   /* end the session (exit/quit) */
};

/*
 * The session.
 * Invariants:
 *   1. cwd is an absolute, normalised path ("/" or "/a/b", no "." or ".."
 *      components, no trailing or doubled slash).
 *   2. file != NULL iff file_path != NULL: the one open file of the
 *      xfs_io-like commands and its absolute path.
 *   3. cmd names the command running (for messages), or is "ufuse".
 */
struct cli {
    ufuse_t *fs;
    char *cwd;
    ufuse_file_t *file;
    char *file_path;
    int file_flags;
    mode_t umask;          /* the process umask, applied to mkdir */
    const char *cmd;
    const char *server;    /* the -s string, or NULL for the built-in server */
    bool progress;         /* stderr is a terminal: show progress bars */
};

/* A command's words after option parsing. */
struct cmd_args {
    int argc;              /* operands */
    char **argv;
    bool flag[128];        /* flag['l'] is set by -l */
    const char *optval[128]; /* value of an option that takes one */
};

typedef int (*cmd_fn)(struct cli *c, struct cmd_args *a);

/* One row of the command table (main.c). */
struct cmd {
    const char *name;
    const char *opts;      /* option letters; "x:" takes a value */
    int min_args, max_args; /* operand counts; max -1 = no limit */
    cmd_fn fn;
    const char *usage;
    const char *help;
};

/* ---- handlers -------------------------------------------------------- */
/* cmd_fs.c */
int cmd_ls(struct cli *c, struct cmd_args *a);
int cmd_cd(struct cli *c, struct cmd_args *a);
int cmd_pwd(struct cli *c, struct cmd_args *a);
int cmd_stat(struct cli *c, struct cmd_args *a);
int cmd_cat(struct cli *c, struct cmd_args *a);
int cmd_mkdir(struct cli *c, struct cmd_args *a);
int cmd_rmdir(struct cli *c, struct cmd_args *a);
int cmd_rm(struct cli *c, struct cmd_args *a);
int cmd_mv(struct cli *c, struct cmd_args *a);
int cmd_ln(struct cli *c, struct cmd_args *a);
int cmd_readlink(struct cli *c, struct cmd_args *a);
int cmd_chmod(struct cli *c, struct cmd_args *a);
int cmd_truncate(struct cli *c, struct cmd_args *a);
int cmd_df(struct cli *c, struct cmd_args *a);
int cmd_info(struct cli *c, struct cmd_args *a);
/* cmd_copy.c */
int cmd_get(struct cli *c, struct cmd_args *a);
int cmd_put(struct cli *c, struct cmd_args *a);
/* cmd_io.c */
int cmd_open(struct cli *c, struct cmd_args *a);
int cmd_close(struct cli *c, struct cmd_args *a);
int cmd_pread(struct cli *c, struct cmd_args *a);
int cmd_pwrite(struct cli *c, struct cmd_args *a);
int cmd_fsync(struct cli *c, struct cmd_args *a);
int cmd_fdatasync(struct cli *c, struct cmd_args *a);
int cmd_ftruncate(struct cli *c, struct cmd_args *a);
int cmd_fstat(struct cli *c, struct cmd_args *a);
/* cmd_io.c: close the open file, if any (also used at exit). */
int cli_close_file(struct cli *c);

/* ---- the two file systems behind one interface (side.c) ---------------- */

/* A directory entry as listed by a side (sorted by name, no "." / ".."). */
struct entry {
    char *name;
    unsigned type;         /* DT_* or DT_UNKNOWN */
    bool has_stat;         /* st is filled (READDIRPLUS) */
    struct stat st;
};

/*
 * Operations of one side of a copy.  All return 0 (or a count) or -errno.
 * A handle is what open() returned; pwrite() writes all of @n or fails.
 */
struct side {
    const char *name;      /* "remote" or "local" */
    int (*lstat)(struct cli *c, const char *path, struct stat *st);
    int (*stat)(struct cli *c, const char *path, struct stat *st);
    int (*list)(struct cli *c, const char *path, struct entry **out,
                size_t *n);
    int (*readlink)(struct cli *c, const char *path, char **out);
    int (*mkdir)(struct cli *c, const char *path, mode_t mode);
    int (*symlink)(struct cli *c, const char *target, const char *path);
    int (*unlink)(struct cli *c, const char *path);
    int (*chmod)(struct cli *c, const char *path, mode_t mode);
    int (*open)(struct cli *c, const char *path, int flags, mode_t mode,
                void **h);
    ssize_t (*pread)(void *h, void *buf, size_t n, off_t off);
    int (*pwrite)(void *h, const void *buf, size_t n, off_t off);
    int (*fchmod)(void *h, mode_t mode);
    int (*close)(void *h);
};

extern const struct side side_remote;
extern const struct side side_local;
/* Write-only sink on standard output (pwrite ignores the offset). */
extern const struct side side_stdout;

void entries_free(struct entry *e, size_t n);
/* Remote helpers shared by several commands. */
int remote_list(struct cli *c, const char *path, struct entry **out,
                size_t *n);
int remote_readlink(struct cli *c, const char *path, char **out);

/*
 * Stream the data of an open source handle into an open destination
 * handle, CLI_CHUNK at a time from offset 0 until EOF.  @size (if known)
 * sizes the progress bar.  0 or -errno; *src_err tells which side failed.
 */
int stream_copy(struct cli *c, const struct side *from, void *fh,
                const struct side *to, void *th, uint64_t size,
                const char *label, bool *src_err);

/* ---- util.c ------------------------------------------------------------ */

void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* @n bytes aligned to @align (a power of two dividing @n); free(). */
void *xaligned(size_t align, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Split @s into words like a POSIX shell (quotes, backslashes, # comments;
 * no expansion).  On success *out is a NULL-terminated vector (free with
 * words_free) of *n words and NULL is returned; otherwise a static message.
 */
const char *split_words(const char *s, char ***out, int *n);

/* ufuse_mount_err, printing the library's message on failure (with a
 * pointer to `ufuse -o help` for an unknown option).  0 or -errno. */
int cli_mount(ufuse_t **out, char **argv, const char *opts);

/* `ufuse run|mount|umount ...` (tools/run/broker.c): argv[0] is the verb.
 * Returns the exit status. */
int run_main(int argc, char **argv);
void words_free(char **w);

/* A number: decimal or 0x hex, optional k/m/g suffix (powers of 1024),
 * at most @max.  0 or -EINVAL / -ERANGE. */
int parse_num(const char *s, uint64_t max, uint64_t *out);
/* parse_num() for a command's operand: CMD_OK, or CMD_USAGE after printing
 * "ufuse: CMD: ARG: invalid number". */
int arg_num(struct cli *c, const char *s, uint64_t max, uint64_t *out);

/* @arg taken relative to @cwd, normalised lexically (see invariant 1). */
char *path_resolve(const char *cwd, const char *arg);
/* Last component of a path ("" for "/", ".", ".."), malloc'd. */
char *path_base(const char *p);
/* dir + "/" + name without doubling the slash. */
char *path_join(const char *dir, const char *name);

/* "-rwxr-xr-x" (10 characters and a NUL). */
void mode_string(mode_t m, char out[11]);
/* "regular file", "directory", ... as stat(1) says. */
const char *type_name(const struct stat *st);
/* "2024-05-01 12:00:00.123456789 +0000" (@full) or "2024-05-01 12:00". */
void time_string(const struct timespec *ts, bool full, char *out,
                 size_t size);

/* xfs_io-style dump: "%08llx:  xx xx ...  ascii" lines. */
void hex_dump(FILE *f, const unsigned char *p, size_t n, uint64_t off);

/* Print "ufuse: CMD: ARG: strerror(-err)" (ARG omitted if NULL); CMD_FAIL. */
int fail(struct cli *c, const char *arg, int err);
/* Print "ufuse: CMD: ARG: MSG" (ARG omitted if NULL); returns @rc. */
int fail_msg(struct cli *c, int rc, const char *arg, const char *msg);

/* Progress bar on stderr for large transfers (only when c->progress). */
struct progress {
    bool on;
    const char *label;
    uint64_t total, done;
    double start, last;
};
void progress_start(struct progress *p, struct cli *c, const char *label,
                    uint64_t total);
void progress_add(struct progress *p, uint64_t n);
void progress_end(struct progress *p);

#endif /* UFUSE_CLI_H */
