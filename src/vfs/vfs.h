/*
 * vfs.h - the session and the file-system operations above the data path:
 * path walk, attributes, open/create/close, namespace operations,
 * directories, xattrs, notifications.
 *
 * Seed counterpart: FreeBSD fuse_vnops.c / fuse_internal.c (and the VFS
 * name lookup that calls them).
 */
#ifndef UFUSE_VFS_H
#define UFUSE_VFS_H

#include <pthread.h>
#include <stdio.h>

#include "ufuse.h"
#include "io/io.h"

enum ufuse_cache_mode {
    CACHE_AUTO, CACHE_DIRECT, CACHE_WRITETHROUGH, CACHE_WRITEBACK,
};

struct ufuse_opts {
    enum ufuse_cache_mode cache;
    uint64_t timeout_ns;
    uint64_t spin_ns;        /* poll for a reply this long before sleeping */
    uint32_t max_read, max_write;
    int max_read_set;        /* max_read= given explicitly */
    int splice;              /* offer FUSE_SPLICE_* (see mount.c) */
    int share;               /* the cache in a memfd others map (ufuse_share_fd) */
    int default_permissions; /* check permissions here, from cached attributes */
    int outside_links;       /* absolute links and ".." above the root leave
                                the file system (ufuse_outside_path) */
    char *log_path;
    enum chan_attach attach;
    char *server_name;
    uint64_t cache_size;     /* page cache budget, bytes */
    uint32_t block_size;     /* a miss reads whole blocks */
    uint32_t readahead;      /* largest readahead window */
    uint64_t dirty_expire_ns;
};

struct ufuse {
    struct ufuse_opts opts;
    struct ulog log;
    FILE *logfp;             /* log=FILE, or NULL */
    struct conn conn;
    struct node_table nodes;
    struct io_mount io;         /* the data path and its page cache */
    struct share_region region; /* -o share: the cache's memory (else unused) */
    pthread_mutex_t handles_mu; /* guards the handle lists */
    struct ufuse_file *files;   /* open files, for unmount */
    struct ufuse_dir *dirs;
    uint64_t next_owner;        /* lock_owner ids */
    struct vfs_release *releasing; /* RELEASEs sent, not answered (handles_mu) */
    struct conn_group releases;    /* ... as background requests */
};

struct ufuse_file {
    struct io_file io;
    ufuse_t *s;
    pthread_mutex_t pos_mu;     /* guards pos */
    off_t pos;
    struct ufuse_file *prev, *next;
};

struct ufuse_dir {
    ufuse_t *s;
    struct node *node;
    uint64_t fh;
    int plus;                  /* the next batch is asked with READDIRPLUS */
    int plus_first_only;       /* READDIRPLUS_AUTO: only the first batch */
    int parse_plus;            /* the batch in buf came from READDIRPLUS */
    char *buf;                 /* last reply */
    size_t len, pos;
    uint64_t next_off;         /* cookie to ask from */
    uint64_t seq;              /* node_attr_seq when the batch was asked for */
    int eof;
    struct ufuse_dir *prev, *next;
};

/* Options: parse @s into @o (defaults first).  0, or -EINVAL with a
 * message naming the option and what it takes in @msg. */
int vfs_parse_opts(const char *s, struct ufuse_opts *o, char *msg, size_t msgsize);
void vfs_free_opts(struct ufuse_opts *o);
/* Bring a session up over @ch (INIT, tables). 0 or -errno; on error the
 * channel is closed and @msg says how the server failed, with the last
 * lines of its stderr. */
int vfs_start(ufuse_t *s, struct chan *ch, char *msg, size_t msgsize);
/* Spawn the server @argv (NULL: the built-in one) and vfs_start it; with
 * attach=auto, once more with the hook if it refuses /dev/fd/N (chan.c, A3).
 * 0 or -errno, with @msg saying why. */
int vfs_spawn(ufuse_t *s, char *const argv[], int log_fd, char *msg, size_t msgsize);
int vfs_unmount(ufuse_t *s);
/* Free the records of RELEASEs never answered; only once the connection
 * is destroyed (no callback can run any more). */
void vfs_releases_free(ufuse_t *s);
/* Notification callback (conn_notify_fn). */
void vfs_notify(void *ctx, int code, const void *body, size_t len);

/* Paths.  @follow: follow a symlink in the last component. */
int vfs_getattr_path(ufuse_t *s, const char *path, int follow, struct stat *st);
int vfs_access(ufuse_t *s, const char *path, int mode);
int vfs_mknod(ufuse_t *s, const char *path, mode_t mode, dev_t dev);
int vfs_mkdir(ufuse_t *s, const char *path, mode_t mode);
int vfs_remove(ufuse_t *s, const char *path, int dir);
int vfs_rename(ufuse_t *s, const char *from, const char *to, unsigned flags);
int vfs_link(ufuse_t *s, const char *existing, const char *newpath);
int vfs_symlink(ufuse_t *s, const char *target, const char *linkpath);
ssize_t vfs_readlink(ufuse_t *s, const char *path, char *buf, size_t size);
/* SETATTR on a path (@f NULL; a last-component symlink followed when
 * @follow) or a handle (@path NULL). */
int vfs_setattr(ufuse_t *s, const char *path, ufuse_file_t *f, int follow,
                struct fuse_setattr_in *in);
int vfs_statfs(ufuse_t *s, const char *path, struct statvfs *st);
ssize_t vfs_getxattr(ufuse_t *s, const char *path, const char *name, void *value,
                     size_t size);
int vfs_setxattr(ufuse_t *s, const char *path, const char *name, const void *value,
                 size_t size, int flags);
ssize_t vfs_listxattr(ufuse_t *s, const char *path, char *list, size_t size);
int vfs_removexattr(ufuse_t *s, const char *path, const char *name);

/* Files. */
int vfs_open(ufuse_t *s, const char *path, int flags, mode_t mode, ufuse_file_t **out);
/* Write back, FLUSH when @flush (ufuse_close; not ufuse_release), RELEASE
 * and free @f. */
int vfs_close(ufuse_file_t *f, int flush);
int vfs_fsync(ufuse_file_t *f, int datasync);
int vfs_fstat(ufuse_file_t *f, struct stat *st);
int vfs_share_fd(ufuse_t *s);
int vfs_share_refs_fd(ufuse_t *s);
int vfs_flush(ufuse_file_t *f);
/* ufuse_outside_path (the calling thread's last walk). */
ssize_t vfs_outside_path(char *buf, size_t size);
int vfs_file_share(ufuse_file_t *f, struct ufuse_share_ids *ids);
int vfs_fallocate(ufuse_file_t *f, int mode, off_t off, off_t len);
off_t vfs_lseek(ufuse_file_t *f, off_t off, int whence);
ssize_t vfs_copy_file_range(ufuse_file_t *in, off_t off_in, ufuse_file_t *out,
                            off_t off_out, size_t len, unsigned flags);

/* Directories. */
int vfs_opendir(ufuse_t *s, const char *path, ufuse_dir_t **out);
int vfs_readdir(ufuse_dir_t *d, struct ufuse_dirent *ent);
int vfs_rewinddir(ufuse_dir_t *d);
int vfs_fsyncdir(ufuse_dir_t *d, int datasync);
int vfs_closedir(ufuse_dir_t *d);

#endif
