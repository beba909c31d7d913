/*
 * cmd_io.c - the xfs_io-like commands of the ufuse tool, which act on "the
 * open file" of the session: open, pread, pwrite, fsync, fdatasync,
 * ftruncate, fstat, close.
 *
 * Output follows xfs_io where it has a fixed form:
 *     read N/LEN bytes at offset OFF
 *     wrote N/LEN bytes at offset OFF
 * (N is what was transferred; a read stops early at end of file, a write
 * when the server accepts nothing more).  pread -v dumps the bytes first,
 * 16 per line, offsets in hex, as xfs_io's dump does.  Transfers go
 * CLI_CHUNK bytes per call through a buffer aligned for O_DIRECT.
 *
 * Locks: none (single-threaded tool).
 *
 * Invariants:
 *   1. At most one file is open (struct cli invariant 2); open closes the
 *      previous one first, and the session closes it at exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define IO_ALIGN 4096

static int need_file(struct cli *c)
{
    if (c->file)
        return CMD_OK;
    return fail_msg(c, CMD_FAIL, NULL, "no open file (use: open PATH)");
}

int cli_close_file(struct cli *c)
{
    if (!c->file)
        return CMD_OK;
    int r = ufuse_close(c->file);
    char *path = c->file_path;
    c->file = NULL;
    c->file_path = NULL;
    int rc = r < 0 ? fail(c, path, r) : CMD_OK;
    free(path);
    return rc;
}

int cmd_open(struct cli *c, struct cmd_args *a)
{
    int flags = a->flag['r'] ? O_RDONLY : O_RDWR;
    if (a->flag['c'])
        flags |= O_CREAT;
    if (a->flag['t'])
        flags |= O_TRUNC;
    if (a->flag['a'])
        flags |= O_APPEND;
    if (a->flag['d'])
        flags |= O_DIRECT;
    int rc = cli_close_file(c);              /* invariant 1 */
    if (rc != CMD_OK)
        return rc;
    char *p = path_resolve(c->cwd, a->argv[0]);
    ufuse_file_t *f;
    int r = ufuse_open(c->fs, p, flags, 0644, &f);
    if (r < 0) {
        free(p);
        return fail(c, a->argv[0], r);
    }
    c->file = f;
    c->file_path = p;
    c->file_flags = flags;
    return CMD_OK;
}

int cmd_close(struct cli *c, struct cmd_args *a)
{
    int rc = need_file(c);
    return rc != CMD_OK ? rc : cli_close_file(c);
}

/* Parse "OFF LEN" operands. */
static int off_len(struct cli *c, struct cmd_args *a, uint64_t *off,
                   uint64_t *len)
{
    int rc = arg_num(c, a->argv[0], INT64_MAX, off);
    if (rc == CMD_OK)
        rc = arg_num(c, a->argv[1], INT64_MAX - *off, len);
    return rc;
}

static void *io_buffer(uint64_t len)
{
    size_t n = len < CLI_CHUNK ? (size_t)len : CLI_CHUNK;
    n = (n + IO_ALIGN - 1) / IO_ALIGN * IO_ALIGN;
    return xaligned(IO_ALIGN, n ? n : IO_ALIGN);
}

int cmd_pread(struct cli *c, struct cmd_args *a)
{
    uint64_t off, len, done = 0;
    int rc = need_file(c);
    if (rc == CMD_OK)
        rc = off_len(c, a, &off, &len);
    if (rc != CMD_OK)
        return rc;
    unsigned char *buf = io_buffer(len);
    while (done < len) {
        size_t want = len - done < CLI_CHUNK ? (size_t)(len - done) : CLI_CHUNK;
        ssize_t n = ufuse_pread(c->file, buf, want, (off_t)(off + done));
        if (n < 0) {
            free(buf);
            return fail(c, c->file_path, (int)n);
        }
        if (n == 0)
            break;
        if (a->flag['v'])
            hex_dump(stdout, buf, (size_t)n, off + done);
        done += (uint64_t)n;
    }
    free(buf);
    printf("read %llu/%llu bytes at offset %llu\n", (unsigned long long)done,
           (unsigned long long)len, (unsigned long long)off);
    return CMD_OK;
}

int cmd_pwrite(struct cli *c, struct cmd_args *a)
{
    uint64_t off, len, fill = 0xcd, done = 0;
    int rc = need_file(c);
    if (rc == CMD_OK)
        rc = off_len(c, a, &off, &len);
    if (rc == CMD_OK && a->optval['S'])
        rc = arg_num(c, a->optval['S'], 0xff, &fill);
    if (rc != CMD_OK)
        return rc;
    unsigned char *buf = io_buffer(len);
    memset(buf, (int)fill, len < CLI_CHUNK ? (size_t)len : CLI_CHUNK);
    while (done < len) {
        size_t want = len - done < CLI_CHUNK ? (size_t)(len - done) : CLI_CHUNK;
        ssize_t n = ufuse_pwrite(c->file, buf, want, (off_t)(off + done));
        if (n < 0) {
            free(buf);
            return fail(c, c->file_path, (int)n);
        }
        if (n == 0)
            break;
        done += (uint64_t)n;
    }
    free(buf);
    printf("wrote %llu/%llu bytes at offset %llu\n",
           (unsigned long long)done, (unsigned long long)len,
           (unsigned long long)off);
    return CMD_OK;
}

int cmd_fsync(struct cli *c, struct cmd_args *a)
{
    int rc = need_file(c), r;
    if (rc != CMD_OK)
        return rc;
    r = ufuse_fsync(c->file);
    return r < 0 ? fail(c, c->file_path, r) : CMD_OK;
}

int cmd_fdatasync(struct cli *c, struct cmd_args *a)
{
    int rc = need_file(c), r;
    if (rc != CMD_OK)
        return rc;
    r = ufuse_fdatasync(c->file);
    return r < 0 ? fail(c, c->file_path, r) : CMD_OK;
}

int cmd_ftruncate(struct cli *c, struct cmd_args *a)
{
    uint64_t size;
    int rc = need_file(c), r;
    if (rc == CMD_OK)
        rc = arg_num(c, a->argv[0], INT64_MAX, &size);
    if (rc != CMD_OK)
        return rc;
    r = ufuse_ftruncate(c->file, (off_t)size);
    return r < 0 ? fail(c, c->file_path, r) : CMD_OK;
}

static void flags_string(int flags, char *out, size_t size)
{
    const char *acc = (flags & O_ACCMODE) == O_RDONLY ? "O_RDONLY"
                    : (flags & O_ACCMODE) == O_WRONLY ? "O_WRONLY"
                                                      : "O_RDWR";
    snprintf(out, size, "%s%s%s%s%s", acc,
             flags & O_CREAT ? "|O_CREAT" : "",
             flags & O_TRUNC ? "|O_TRUNC" : "",
             flags & O_APPEND ? "|O_APPEND" : "",
             flags & O_DIRECT ? "|O_DIRECT" : "");
}

int cmd_fstat(struct cli *c, struct cmd_args *a)
{
    struct stat st;
    char mode[11], fl[80], when[80];
    int rc = need_file(c), r;
    if (rc != CMD_OK)
        return rc;
    r = ufuse_fstat(c->file, &st);
    if (r < 0)
        return fail(c, c->file_path, r);
    mode_string(st.st_mode, mode);
    flags_string(c->file_flags, fl, sizeof(fl));
    printf("path %s\n", c->file_path);
    printf("flags %s\n", fl);
    printf("type %s\n", type_name(&st));
    printf("mode %04o %s\n", (unsigned)(st.st_mode & 07777), mode);
    printf("size %lld\n", (long long)st.st_size);
    printf("blocks %lld\n", (long long)st.st_blocks);
    printf("nlink %llu\n", (unsigned long long)st.st_nlink);
    printf("ino %llu\n", (unsigned long long)st.st_ino);
    printf("uid %u\n", (unsigned)st.st_uid);
    printf("gid %u\n", (unsigned)st.st_gid);
    time_string(&st.st_atim, true, when, sizeof(when));
    printf("atime %s\n", when);
    time_string(&st.st_mtim, true, when, sizeof(when));
    printf("mtime %s\n", when);
    time_string(&st.st_ctim, true, when, sizeof(when));
    printf("ctime %s\n", when);
    return CMD_OK;
}
