/*
 * memfs.h - internal interfaces of ufuse-memfs, the built-in in-memory FUSE
 * server (libfuse 3 low-level API).
 *
 * Files:
 *   main.c   command line, options, INIT, seeding, the session loop
 *   ops.c    the fuse_lowlevel_ops handlers (POSIX semantics, errno)
 *   fs.c     the object model: inode table, file handles, directories
 *            with stable cookies, xattrs, permission checks
 *   store.c  sparse file contents in 64 KiB chunks
 *
 * Lock order (outermost first); a thread never takes an earlier lock while
 * holding a later one:
 *   1. memfs.ns_lock        (rwlock) the name space: every directory's
 *                           entries, cookies, the dirent hash, ->parent
 *   2. inode->lock          (rwlock) one inode's attributes, size, data,
 *                           symlink target, xattrs.  Two inode locks are
 *                           only ever held together in copy_file_range,
 *                           and then in ascending inode-number order.
 *   3. inode->amu           (mutex)  one inode's atime (a leaf)
 *   3. memfs.fh_mu          (mutex)  the file-handle table
 *   4. memfs.itable_mu      (mutex)  the inode table and every inode's
 *                           nlookup / nopen / refs counts and nlink writes
 * inode->amu and memfs.itable_mu are leaves: nothing is acquired while
 * holding them; fh_mu is only held around itable_mu (handle_get).
 */
#ifndef UFUSE_MEMFS_H
#define UFUSE_MEMFS_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* Sparse data store (store.c)                                          */
/* ------------------------------------------------------------------ */

#define MEMFS_CHUNK_SHIFT 16
#define MEMFS_CHUNK ((size_t)1 << MEMFS_CHUNK_SHIFT)       /* 64 KiB */
/* Largest file size: 1 PiB (a 4-level radix tree of 64 KiB chunks). */
#define MEMFS_MAX_SIZE ((off_t)1 << 50)

struct store {
    void *root;         /* chunk (height 0) or radix node */
    unsigned height;    /* levels of radix nodes above the chunks */
    uint64_t nchunks;   /* chunks present */
};

/* All of these need the owning inode's lock: shared for store_get,
 * store_next_data, store_next_hole, store_read_iov and store_copy_out,
 * exclusive for the rest.  Offsets and lengths are bytes. */
void *store_get(const struct store *s, uint64_t idx);
int store_write(struct store *s, off_t off, const void *buf, size_t len);
int store_alloc(struct store *s, off_t off, off_t len);
/* Zero [off, off+len): chunks wholly inside are freed when @punch (a hole),
 * else kept allocated and cleared; partial chunks are cleared. */
int store_zero(struct store *s, off_t off, off_t len, bool punch);
/* Shrink: drop everything at or past @newsize (bytes past the new size in
 * the last chunk are cleared, so a later extension reads zeros). */
void store_truncate(struct store *s, off_t newsize);
void store_destroy(struct store *s);
/* Fill @iov (at most @max entries) to describe [off, off+len), holes as a
 * shared zero buffer.  @return the number of entries used, or -1 if @max
 * is too small. */
int store_read_iov(const struct store *s, off_t off, size_t len,
                   struct iovec *iov, int max);
void store_copy_out(const struct store *s, off_t off, size_t len, void *buf);
/* First byte offset >= @off that lies in a present chunk, or -1. */
off_t store_next_data(const struct store *s, off_t off);
/* First byte offset >= @off that lies in an absent chunk. */
off_t store_next_hole(const struct store *s, off_t off);

/* Chunks allocated over all files (statfs). */
extern _Atomic uint64_t memfs_chunks_total;

/* ------------------------------------------------------------------ */
/* Object model (fs.c)                                                  */
/* ------------------------------------------------------------------ */

struct xattr {
    struct xattr *next;
    char *name;
    void *value;
    size_t size;
};

struct dirent_m;

/* A directory slot: entries in cookie order; de == NULL is a tombstone
 * (the entry was removed; the slot is squeezed out by compaction). */
struct dslot {
    uint64_t cookie;
    struct dirent_m *de;
};

struct dir {
    struct dslot *slots;
    size_t nslots, cap;
    size_t nlive;           /* entries (slots with de != NULL) */
    uint64_t next_cookie;   /* cookies 1 and 2 are "." and ".." */
};

struct inode {
    /* Immutable after creation. */
    uint64_t ino;
    uint64_t generation;
    mode_t type;                    /* S_IFMT bits of mode */

    /* memfs.itable_mu */
    struct inode *hnext;
    uint64_t nlookup;               /* kernel/client references */
    uint32_t nopen;                 /* open handles */
    uint32_t refs;                  /* in-flight requests using it */
    _Atomic uint32_t nlink;         /* written under itable_mu */

    /* ->lock */
    pthread_rwlock_t lock;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    dev_t rdev;
    off_t size;
    struct timespec mtime, ctime;
    struct store data;              /* regular files */
    char *target;                   /* symlinks */
    struct xattr *xattrs;
    size_t xattr_names;             /* sum of (strlen(name) + 1) */

    /* ->amu */
    pthread_mutex_t amu;
    struct timespec atime;

    /* memfs.ns_lock (directories) */
    struct dir dir;
    uint64_t parent;                /* inode number of ".." */
};

/* A name in a directory.  memfs.ns_lock. */
struct dirent_m {
    struct dirent_m *hnext;         /* memfs.dtab chain */
    struct inode *dir;
    struct inode *child;
    uint64_t cookie;
    size_t slot;                    /* index in dir->dir.slots */
    uint32_t hash;
    size_t namelen;
    char name[];
};

/* An open file or directory.  memfs.fh_mu. */
struct handle {
    struct handle *hnext;
    uint64_t fh;
    struct inode *inode;            /* holds one nopen */
    int flags;                      /* open flags */
    bool isdir;
};

enum memfs_op {
    OP_LOOKUP, OP_FORGET, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD,
    OP_MKDIR, OP_UNLINK, OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN,
    OP_READ, OP_WRITE, OP_FLUSH, OP_RELEASE, OP_FSYNC, OP_OPENDIR,
    OP_READDIR, OP_RELEASEDIR, OP_FSYNCDIR, OP_STATFS, OP_SETXATTR,
    OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR, OP_ACCESS, OP_CREATE,
    OP_FALLOCATE, OP_READDIRPLUS, OP_COPY_FILE_RANGE, OP_LSEEK,
    OP_COUNT
};

struct memfs_opts {
    double attr_timeout;
    double entry_timeout;
    double negative_timeout;
    unsigned max_write;
    bool writeback;
    bool direct_io;
    bool keep_cache;
    bool atomic_trunc;
    bool no_readdirplus;
    bool splice_read;
    uint64_t enosys;            /* bit per enum memfs_op */
    size_t short_read;          /* 0 = off */
    size_t short_write;         /* 0 = off */
    off_t eio_at;               /* -1 = off */
    unsigned delay_ms;
    uint64_t hang_ino;          /* 0 = off */
    uint64_t die_after;         /* 0 = off */
    int exit_status;            /* status when the client closed the channel */
    bool dir_mountpoint;        /* refuse a mountpoint that is no directory */
    bool ignore_interrupts;     /* FUSE_INTERRUPT changes nothing */
    bool debug;
};

struct memfs {
    struct memfs_opts o;
    _Atomic bool killpriv;      /* FUSE_CAP_HANDLE_KILLPRIV granted */

    pthread_rwlock_t ns_lock;
    struct dirent_m **dtab;     /* name hash; ns_lock */
    size_t dtab_cap, dtab_n;

    pthread_mutex_t itable_mu;
    struct inode **itab;
    size_t itab_cap, itab_n;
    uint64_t next_ino;

    pthread_mutex_t fh_mu;
    struct handle **fhtab;
    size_t fhtab_cap, fhtab_n;
    uint64_t next_fh;

    _Atomic uint64_t answered;  /* replies sent, INIT included */
    _Atomic bool initialized;
};

extern struct memfs memfs;

#define MEMFS_ROOT_INO ((uint64_t)FUSE_ROOT_ID)
#define MEMFS_NAME_MAX 255
#define MEMFS_LINK_MAX 65000
#define MEMFS_SYMLINK_MAX 4095
#define MEMFS_XATTR_SIZE_MAX 65536
#define MEMFS_XATTR_LIST_MAX 65536

void fs_init(void);
void fs_now(struct timespec *ts);

/* Inode table.  inode_get() takes a ref (or returns NULL for an unknown
 * number); inode_put() drops it and frees the inode once nothing keeps it
 * alive (nlink, nlookup, nopen and refs all zero). */
struct inode *inode_new(mode_t mode, uid_t uid, gid_t gid, dev_t rdev);
struct inode *inode_get(uint64_t ino);
void inode_hold(struct inode *ip);
void inode_put(struct inode *ip);
void inode_lookup_inc(struct inode *ip);
void inode_forget(uint64_t ino, uint64_t n);
void inode_forget_ptr(struct inode *ip, uint64_t n);
void inode_nlink_set(struct inode *ip, uint32_t n);
uint64_t inode_count(void);

/* Fill @st; the caller holds ip->lock (shared at least). */
void inode_stat(struct inode *ip, struct stat *st);
void inode_touch_atime(struct inode *ip);

/* File handles. */
uint64_t handle_new(struct inode *ip, int flags, bool isdir);
/* Look @fh up for @ino: @return the inode (with a ref) and its flags, or
 * NULL when @fh is unknown or belongs to another inode or kind. */
struct inode *handle_get(uint64_t fh, uint64_t ino, bool isdir, int *flags);
/* Remove @fh: @return 0 or -EBADF. */
int handle_release(uint64_t fh, uint64_t ino, bool isdir);

/* Directories (all need memfs.ns_lock; writers exclusively). */
struct dirent_m *dir_find(struct inode *dir, const char *name);
int dir_add(struct inode *dir, const char *name, struct inode *child);
void dir_remove(struct dirent_m *de);
/* Index of the first slot with a cookie > @cookie. */
size_t dir_seek(const struct inode *dir, uint64_t cookie);
void dir_free(struct inode *dir);

/* Xattrs (need ip->lock). */
struct xattr *xattr_find(struct inode *ip, const char *name);
int xattr_set(struct inode *ip, const char *name, const void *value,
              size_t size, int flags);
int xattr_remove(struct inode *ip, const char *name);
void xattr_free_all(struct inode *ip);

/* Permission check of @mask (R_OK/W_OK/X_OK bits) against a snapshot of
 * an inode's mode/uid/gid for the caller of @req.  @return 0 or -EACCES. */
int perm_check(fuse_req_t req, mode_t mode, uid_t uid, gid_t gid, int mask);
bool caller_in_group(fuse_req_t req, gid_t gid);

/* The deterministic content of seed files: byte at offset o. */
static inline unsigned char memfs_pattern(uint64_t o)
{
    return (unsigned char)((o * UINT64_C(2654435761)) >> 13);
}

/* ------------------------------------------------------------------ */
/* Operations (ops.c)                                                   */
/* ------------------------------------------------------------------ */

extern const struct fuse_lowlevel_ops memfs_ops;
extern const char *const memfs_op_names[OP_COUNT];
/* A line on stderr prefixed "memfs: ": memfs_trace only with -d (the
 * request trace the tests read), memfs_warn always (client mistakes such
 * as a FORGET of an unknown inode). */
void memfs_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void memfs_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Seed a file under the root at start-up: @size bytes, of which @extents
 * extents of @extent_len bytes at offsets i * (@size / @extents) hold
 * memfs_pattern(offset), the rest holes (@extent_len <= @size / @extents).
 * @return 0 or -errno. */
int memfs_seed(const char *path, off_t size, uint64_t extents, uint64_t extent_len);

#endif
