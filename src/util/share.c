/*
 * share.c - the region behind the page cache and the attribute records
 * (see share.h and include/ufuse_share.h for the layout and its readers).
 *
 * Invariants:
 *  1. The header describes exactly what is mapped: every part lies inside
 *     the region, the refs and data parts start on page boundaries (a
 *     reader maps refs writable on its own), the index has a power of two
 *     slots, at least twice the frames (a probe stays short).
 *  2. Memory is touched only as it is used: parts are mapped with
 *     MAP_NORESERVE, the memfd is sized with ftruncate (no pages until
 *     written), so a 256 MiB budget costs its metadata pages only; the
 *     cache faults in page data just ahead of the frames it starts using
 *     (share_region_prefault).
 *  3. A private region's page data is a separate anonymous mapping with
 *     MADV_HUGEPAGE (a fault per 4 KiB page cost ~1.6 us here); a shared
 *     one's data lies in the memfd at data_off (4 KiB pages: shmem has
 *     no huge pages unless shmem_enabled allows them, see docs/run.md).
 *  4. A shared region is sealed once the session has mapped it: its size
 *     never changes and no other writable mapping, write(2) or hole punch
 *     can be made (F_SEAL_FUTURE_WRITE), so a process given the memfd can
 *     read the session's cache and never change it.  Its referenced bytes,
 *     which readers set, are a second memfd (sealed against size changes
 *     only): a reader can change nothing there but which pages CLOCK
 *     spares.
 */
#include "util/share.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static size_t share_align(size_t x, size_t a)
{
    return (x + a - 1) / a * a;
}

/* Fault in @len bytes at @p for writing in one call (best effort: before
 * Linux 5.14 they fault as they are first written). */
static void share_populate(void *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
    (void)madvise(p, len, MADV_POPULATE_WRITE);
#else
    (void)p, (void)len;
#endif
}

int share_region_init(struct share_region *r, size_t nframes, uint32_t nattrs,
                      uint32_t nentries, int shared)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->refs_fd = -1;
    if (!nframes || nframes >= UINT32_MAX / 4 || (nentries & (nentries - 1)))
        return -EINVAL;
    uint32_t mask = 1;
    while (mask < 2 * nframes)
        mask <<= 1;
    struct ufuse_share_header h = {
        .magic = UFUSE_SHARE_MAGIC,
        .version = UFUSE_SHARE_VERSION,
        .page_size = UFUSE_SHARE_PAGE,
        .nframes = (uint32_t)nframes,
        .index_mask = mask - 1,
        .nattrs = nattrs,
        .entries_mask = nentries ? nentries - 1 : 0,
    };
    size_t at = UFUSE_SHARE_PAGE;
    h.frames_off = at;
    at = share_align(at + nframes * sizeof(struct ufuse_share_frame), 64);
    h.index_off = at;
    at = share_align(at + (size_t)mask * sizeof(uint32_t), 64);
    h.attrs_off = at;
    at = share_align(at + (size_t)nattrs * sizeof(struct ufuse_share_attr), 64);
    h.entries_off = at;
    at = share_align(at + (size_t)nentries * sizeof(struct ufuse_share_entry), UFUSE_SHARE_PAGE);
    if (!shared) { /* a shared region's referenced bytes have a memfd of their own */
        h.refs_off = at;
        at = share_align(at + nframes, UFUSE_SHARE_PAGE);
    }
    h.data_off = at;
    size_t meta = at, data = nframes * UFUSE_SHARE_PAGE;
    h.size = shared ? meta + data : meta;

    if (shared) {
        r->fd = memfd_create("ufuse-share", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (r->fd < 0)
            return -errno;
        if (ftruncate(r->fd, (off_t)h.size) != 0) {
            int e = -errno;
            close(r->fd);
            r->fd = -1;
            return e;
        }
        r->base = mmap(NULL, h.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, r->fd, 0);
        /* Invariant 4: the size stays, and nobody but this mapping writes. */
        if (r->base != MAP_FAILED &&
            fcntl(r->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE) != 0) {
            munmap(r->base, h.size);
            r->base = MAP_FAILED;
        }
    } else {
        r->base = mmap(NULL, meta, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    }
    if (r->base == MAP_FAILED) {
        if (r->fd >= 0)
            close(r->fd);
        r->fd = -1;
        r->base = NULL;
        return -ENOMEM;
    }
    r->size = h.size;
    if (shared) {
        r->data = (char *)r->base + h.data_off;
        /* Huge pages where the administrator lets shmem have them
         * (shmem_enabled "advise"): the kernel copies into and out of
         * them ~2.8 times faster here (docs/run.md). */
        madvise(r->data, data, MADV_HUGEPAGE);
    } else {
        r->data = mmap(NULL, data, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (r->data == MAP_FAILED) {
            munmap(r->base, r->size);
            r->base = NULL;
            return -ENOMEM;
        }
        r->data_size = data;
        madvise(r->data, data, MADV_HUGEPAGE);
    }
    char *b = r->base;
    r->h = (struct ufuse_share_header *)b;
    *r->h = h;
    r->frames = (struct ufuse_share_frame *)(b + h.frames_off);
    r->index = (_Atomic uint32_t *)(b + h.index_off);
    r->index_mask = h.index_mask;
    r->attrs = (struct ufuse_share_attr *)(b + h.attrs_off);
    r->nattrs = nattrs;
    r->entries = nentries ? (struct ufuse_share_entry *)(b + h.entries_off) : NULL;
    r->entries_mask = h.entries_mask;
    /* Entry records go where their names hash, so nearly every new one
     * would fault a page of its own: fault the table in at once. */
    if (r->entries)
        share_populate(r->entries, (size_t)nentries * sizeof(struct ufuse_share_entry));
    r->nframes = nframes;
    if (!shared) {
        r->refs = (_Atomic unsigned char *)(b + h.refs_off);
        return 0;
    }
    /* The referenced bytes: the one part readers write (a hit marks its
     * page), so a memfd of their own, never sealed against writes. */
    r->refs_size = share_align(nframes, UFUSE_SHARE_PAGE);
    r->refs_fd = memfd_create("ufuse-share-refs", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    void *refs = MAP_FAILED;
    if (r->refs_fd >= 0 && ftruncate(r->refs_fd, (off_t)r->refs_size) == 0 &&
        fcntl(r->refs_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0)
        refs = mmap(NULL, r->refs_size, PROT_READ | PROT_WRITE, MAP_SHARED, r->refs_fd, 0);
    if (refs == MAP_FAILED) {
        share_region_destroy(r);
        return -ENOMEM;
    }
    r->refs = refs;
    return 0;
}

void share_region_view(const struct share_region *r, struct ufuse_share_view *v)
{
    v->h = r->h;
    v->frames = r->frames;
    v->index = r->index;
    v->attrs = r->attrs;
    v->entries = r->entries;
    v->refs = r->refs;
    v->data = r->data;
}

void share_region_prefault(const struct share_region *r, size_t first, size_t n)
{
    if (first < r->nframes && n > 0)
        share_populate(r->data + first * UFUSE_SHARE_PAGE,
                       UFUSE_MIN(n, r->nframes - first) * UFUSE_SHARE_PAGE);
}

void share_region_destroy(struct share_region *r)
{
    if (!r->base)
        return; /* never made (or made by someone else) */
    if (r->refs_fd >= 0) {
        if (r->refs)
            munmap((void *)r->refs, r->refs_size);
        close(r->refs_fd);
    }
    if (r->data_size)
        munmap(r->data, r->data_size);
    if (r->base)
        munmap(r->base, r->size);
    if (r->fd >= 0)
        close(r->fd);
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->refs_fd = -1;
}
