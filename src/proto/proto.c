/*
 * proto.c - FUSE wire-format sizes, validation and conversion (proto.h).
 *
 * Invariants of every function here:
 *  1. No read beyond the length passed in.
 *  2. A value that a server sent and that is out of range yields -EIO,
 *     never a clamp that could hand a caller wrong data.
 */
#include "proto/proto.h"

#include "ufuse_share.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

static const char *const proto_opnames[] = {
    [FUSE_LOOKUP] = "LOOKUP", [FUSE_FORGET] = "FORGET",
    [FUSE_GETATTR] = "GETATTR", [FUSE_SETATTR] = "SETATTR",
    [FUSE_READLINK] = "READLINK", [FUSE_SYMLINK] = "SYMLINK",
    [FUSE_MKNOD] = "MKNOD", [FUSE_MKDIR] = "MKDIR",
    [FUSE_UNLINK] = "UNLINK", [FUSE_RMDIR] = "RMDIR",
    [FUSE_RENAME] = "RENAME", [FUSE_LINK] = "LINK", [FUSE_OPEN] = "OPEN",
    [FUSE_READ] = "READ", [FUSE_WRITE] = "WRITE", [FUSE_STATFS] = "STATFS",
    [FUSE_RELEASE] = "RELEASE", [FUSE_FSYNC] = "FSYNC",
    [FUSE_SETXATTR] = "SETXATTR", [FUSE_GETXATTR] = "GETXATTR",
    [FUSE_LISTXATTR] = "LISTXATTR", [FUSE_REMOVEXATTR] = "REMOVEXATTR",
    [FUSE_FLUSH] = "FLUSH", [FUSE_INIT] = "INIT", [FUSE_OPENDIR] = "OPENDIR",
    [FUSE_READDIR] = "READDIR", [FUSE_RELEASEDIR] = "RELEASEDIR",
    [FUSE_FSYNCDIR] = "FSYNCDIR", [FUSE_GETLK] = "GETLK",
    [FUSE_SETLK] = "SETLK", [FUSE_SETLKW] = "SETLKW",
    [FUSE_ACCESS] = "ACCESS", [FUSE_CREATE] = "CREATE",
    [FUSE_INTERRUPT] = "INTERRUPT", [FUSE_BMAP] = "BMAP",
    [FUSE_DESTROY] = "DESTROY", [FUSE_IOCTL] = "IOCTL", [FUSE_POLL] = "POLL",
    [FUSE_NOTIFY_REPLY] = "NOTIFY_REPLY", [FUSE_BATCH_FORGET] = "BATCH_FORGET",
    [FUSE_FALLOCATE] = "FALLOCATE", [FUSE_READDIRPLUS] = "READDIRPLUS",
    [FUSE_RENAME2] = "RENAME2", [FUSE_LSEEK] = "LSEEK",
    [FUSE_COPY_FILE_RANGE] = "COPY_FILE_RANGE",
    [FUSE_SETUPMAPPING] = "SETUPMAPPING", [FUSE_REMOVEMAPPING] = "REMOVEMAPPING",
    [FUSE_SYNCFS] = "SYNCFS", [FUSE_TMPFILE] = "TMPFILE",
};

const char *proto_opname(uint32_t opcode)
{
    if (opcode < sizeof proto_opnames / sizeof proto_opnames[0] &&
        proto_opnames[opcode])
        return proto_opnames[opcode];
    return "UNKNOWN";
}

size_t proto_entry_out_size(uint32_t minor)
{
    return minor < 9 ? FUSE_COMPAT_ENTRY_OUT_SIZE : sizeof(struct fuse_entry_out);
}

size_t proto_attr_out_size(uint32_t minor)
{
    return minor < 9 ? FUSE_COMPAT_ATTR_OUT_SIZE : sizeof(struct fuse_attr_out);
}

size_t proto_write_in_size(uint32_t minor)
{
    return minor < 9 ? FUSE_COMPAT_WRITE_IN_SIZE : sizeof(struct fuse_write_in);
}

size_t proto_mknod_in_size(uint32_t minor)
{
    return minor < 12 ? FUSE_COMPAT_MKNOD_IN_SIZE : sizeof(struct fuse_mknod_in);
}

size_t proto_statfs_out_size(uint32_t minor)
{
    return minor < 4 ? FUSE_COMPAT_STATFS_SIZE : sizeof(struct fuse_statfs_out);
}

int proto_mode_valid(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFCHR:
    case S_IFBLK: case S_IFIFO: case S_IFSOCK:
        return 1;
    default:
        return 0;
    }
}

int proto_attr_valid(const struct fuse_attr *a)
{
    return proto_mode_valid(a->mode) && a->size <= (uint64_t)LLONG_MAX &&
           a->atimensec < 1000000000u && a->mtimensec < 1000000000u &&
           a->ctimensec < 1000000000u;
}

void proto_attr_to_stat(const struct fuse_attr *a, struct stat *st)
{
    /* One conversion for the library and the readers of a shared region. */
    ufuse_share_attr_stat(a, st);
}

void proto_statfs_to_statvfs(const struct fuse_kstatfs *k, struct statvfs *st)
{
    memset(st, 0, sizeof *st);
    st->f_bsize = k->bsize;
    st->f_frsize = k->frsize ? k->frsize : k->bsize;
    st->f_blocks = k->blocks;
    st->f_bfree = k->bfree;
    st->f_bavail = k->bavail;
    st->f_files = k->files;
    st->f_ffree = k->ffree;
    st->f_favail = k->ffree;
    st->f_namemax = k->namelen;
}

uint64_t proto_valid_until(uint64_t now, uint64_t sec, uint32_t nsec)
{
    /* Clamp absurd validities (a server may say "forever" as ~0). */
    const uint64_t max_sec = 100ull * 365 * 24 * 3600;
    if (sec > max_sec)
        sec = max_sec;
    if (nsec >= 1000000000u)
        nsec = 999999999u;
    return now + sec * 1000000000ull + nsec;
}

int proto_name_check(const char *name, size_t len)
{
    if (len == 0)
        return -EINVAL;
    if (len > PROTO_NAME_MAX)
        return -ENAMETOOLONG;
    if (memchr(name, '/', len))
        return -EINVAL;
    return 0;
}

/* A name a server sent: non-empty, no '/', no NUL, at most NAME_MAX. */
static int proto_server_name_ok(const char *name, uint32_t len)
{
    return len > 0 && len <= PROTO_NAME_MAX && !memchr(name, '/', len) &&
           !memchr(name, '\0', len);
}

int proto_dirent_next(const void *buf, size_t len, size_t *pos, int plus,
                      struct proto_dirent *out)
{
    const char *base = buf;
    size_t p = *pos;
    if (p >= len)
        return 0;
    const struct fuse_dirent *d;
    const struct fuse_entry_out *e = NULL;
    size_t fixed, reclen;
    /*
     * An entry cut off by the end of the reply ends it: libfuse 2 answers
     * READDIR with slices of a prepared buffer, and Linux stops at such an
     * entry too, asking again from the last whole one's cookie.
     */
    if (plus) {
        const struct fuse_direntplus *dp;
        fixed = FUSE_NAME_OFFSET_DIRENTPLUS;
        if (len - p < fixed)
            goto cut;
        dp = (const struct fuse_direntplus *)(base + p);
        d = &dp->dirent;
        e = &dp->entry_out;
        reclen = FUSE_DIRENTPLUS_SIZE(dp);
    } else {
        fixed = FUSE_NAME_OFFSET;
        if (len - p < fixed)
            goto cut;
        d = (const struct fuse_dirent *)(base + p);
        reclen = FUSE_DIRENT_SIZE(d);
    }
    if (d->namelen > PROTO_WIRE_NAME_MAX)
        return -EIO;
    if (fixed + d->namelen > len - p)
        goto cut;
    const char *name = base + p + fixed;
    if (!proto_server_name_ok(name, d->namelen))
        return -EIO;
    if (e && e->nodeid && !proto_attr_valid(&e->attr))
        return -EIO;
    /* The last record's padding may be cut off; never step past the end. */
    *pos = reclen > len - p ? len : p + reclen;
    out->ino = d->ino;
    out->off = d->off;
    out->type = d->type;
    out->name = name;
    out->namelen = d->namelen;
    out->entry = e;
    return 1;
cut:
    /* A first entry that does not fit is no slice: nothing could progress. */
    if (p == 0)
        return -EIO;
    *pos = len;
    return 0;
}

/* The name after a notification's fixed part: @namelen bytes and a NUL,
 * exactly filling the @rest bytes left. */
static int proto_notify_name(const void *name, uint32_t namelen, size_t rest)
{
    if (namelen > PROTO_WIRE_NAME_MAX || rest != (size_t)namelen + 1 ||
        ((const char *)name)[namelen] != '\0' || !proto_server_name_ok(name, namelen))
        return -EIO;
    return 0;
}

int proto_notify_check(int code, const void *buf, size_t len)
{
    switch (code) {
    case FUSE_NOTIFY_POLL:
        return len == sizeof(struct fuse_notify_poll_wakeup_out) ? 0 : -EIO;
    case FUSE_NOTIFY_INVAL_INODE:
        return len == sizeof(struct fuse_notify_inval_inode_out) ? 0 : -EIO;
    case FUSE_NOTIFY_INVAL_ENTRY: {
        const struct fuse_notify_inval_entry_out *o = buf;
        return len < sizeof *o ? -EIO : proto_notify_name(o + 1, o->namelen, len - sizeof *o);
    }
    case FUSE_NOTIFY_DELETE: {
        const struct fuse_notify_delete_out *o = buf;
        return len < sizeof *o ? -EIO : proto_notify_name(o + 1, o->namelen, len - sizeof *o);
    }
    case FUSE_NOTIFY_STORE: {
        const struct fuse_notify_store_out *o = buf;
        if (len < sizeof *o || len - sizeof *o != o->size)
            return -EIO;
        if (o->offset > (uint64_t)LLONG_MAX - o->size)
            return -EIO;
        return 0;
    }
    case FUSE_NOTIFY_RETRIEVE: {
        const struct fuse_notify_retrieve_out *o = buf;
        if (len != sizeof *o || o->offset > (uint64_t)LLONG_MAX)
            return -EIO;
        return 0;
    }
    default:
        return -ENOSYS;
    }
}
