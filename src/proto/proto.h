/*
 * proto.h - the FUSE wire format: structure sizes by protocol minor,
 * validation of what a server sends, and conversions.  Every structure is
 * the kernel's own, from <linux/fuse.h>; nothing here re-types one.
 *
 * Everything a server sends is untrusted: the checks here return -EIO for
 * anything out of range, and never read past the length they are given.
 * Stateless; no locks.
 */
#ifndef UFUSE_PROTO_H
#define UFUSE_PROTO_H

#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* The protocol we speak (and offer at INIT). */
#define PROTO_MAJOR FUSE_KERNEL_VERSION
#define PROTO_MINOR FUSE_KERNEL_MINOR_VERSION
/* Oldest minor we accept from a server. */
#define PROTO_MIN_MINOR 7
/* Marks the unique of an INTERRUPT request (the kernel's fs/fuse/dev.c). */
#define PROTO_INT_REQ_BIT 1ULL
/* Largest opcode we keep per-opcode state for (enosys bits, stats). */
#define PROTO_MAX_OPCODE 64
/* A name component we accept: at most this many bytes (Linux's NAME_MAX). */
#define PROTO_NAME_MAX 255
/* Limits the Linux client applies that the uapi header does not carry
 * (fs/fuse/fuse_i.h): names in notifications, pages per request. */
#define PROTO_WIRE_NAME_MAX 1024
#define PROTO_MAX_PAGES 256
#define PROTO_DEFAULT_MAX_PAGES 32

const char *proto_opname(uint32_t opcode);

/* Sizes of structures that changed over the protocol's history. */
size_t proto_entry_out_size(uint32_t minor);
size_t proto_attr_out_size(uint32_t minor);
size_t proto_write_in_size(uint32_t minor);
size_t proto_mknod_in_size(uint32_t minor);
size_t proto_statfs_out_size(uint32_t minor);

/* Is @a a well-formed attribute block (known file type, size in range)? */
int proto_attr_valid(const struct fuse_attr *a);
/* Does @mode name one of the file types FUSE can carry? */
int proto_mode_valid(uint32_t mode);
void proto_attr_to_stat(const struct fuse_attr *a, struct stat *st);
void proto_statfs_to_statvfs(const struct fuse_kstatfs *k, struct statvfs *st);
/* Absolute expiry (monotonic ns) of a validity of @sec + @nsec from @now. */
uint64_t proto_valid_until(uint64_t now, uint64_t sec, uint32_t nsec);

/*
 * A name component from the caller: 0, -ENAMETOOLONG, or -EINVAL for an
 * empty name or one holding '/'.  "." and ".." are the walker's business.
 */
int proto_name_check(const char *name, size_t len);

/* One entry of a READDIR or READDIRPLUS reply. */
struct proto_dirent {
    uint64_t ino;
    uint64_t off;                      /* cookie of the next entry */
    uint32_t type;                     /* DT_* */
    const char *name;                  /* NOT NUL-terminated */
    uint32_t namelen;
    const struct fuse_entry_out *entry; /* READDIRPLUS only, else NULL */
};
/*
 * Walk the entries of a READDIR(PLUS) reply of @len bytes.  *@pos starts at
 * 0.  Returns 1 with @out filled, 0 at the end (also at an entry cut off by
 * the end of the reply, after at least one whole entry: libfuse 2 slices
 * its buffer so), -EIO for a first entry that does not fit, a name longer
 * than 1024 or 255 bytes, empty, or holding '/' or NUL, or (plus) invalid
 * attributes.
 */
int proto_dirent_next(const void *buf, size_t len, size_t *pos, int plus,
                      struct proto_dirent *out);

/*
 * Check a notification body (@code is FUSE_NOTIFY_*): the fixed part and
 * the variable tail must be exactly @len bytes, names NUL-terminated.
 * 0 or -EIO (unknown code: -ENOSYS).
 */
int proto_notify_check(int code, const void *buf, size_t len);

#endif
