/*
 * share.h - the memory a session's page cache and attribute records live
 * in: one region laid out as include/ufuse_share.h says, either private
 * (anonymous memory, the default) or shared (a memfd other processes map,
 * -o share).  The cache takes its frames, index, referenced bytes and page
 * data from it, the node table its attribute records.
 *
 * The region is made before the tables that use it and freed after them;
 * it takes no lock (its users' locks guard what they write in it).
 */
#ifndef UFUSE_UTIL_SHARE_H
#define UFUSE_UTIL_SHARE_H

#include <stddef.h>
#include <stdint.h>

#include "ufuse_share.h"

struct share_region {
    int fd;                      /* the memfd, or -1 when private */
    void *base;                  /* header, frames, index, attrs, refs */
    size_t size;                 /* bytes mapped at base */
    char *data;                  /* page data: in the memfd, or its own mapping */
    size_t data_size;
    struct ufuse_share_header *h;
    struct ufuse_share_frame *frames;
    _Atomic uint32_t *index;     /* index_mask + 1 slots */
    uint32_t index_mask;
    struct ufuse_share_attr *attrs; /* nattrs records, 0 unused */
    uint32_t nattrs;
    struct ufuse_share_entry *entries; /* entries_mask + 1 records, or NULL */
    uint32_t entries_mask;
    _Atomic unsigned char *refs;  /* in the meta mapping, or the refs memfd */
    int refs_fd;                  /* shared: the referenced bytes' memfd, else -1 */
    size_t refs_size;
    size_t nframes;
};

/* Lay out and map a region of @nframes page frames, @nattrs attribute
 * records and @nentries entry records (a power of two; 0: none), shared
 * (a memfd) or not.  0, or -ENOMEM / -EINVAL / memfd_create's error. */
int share_region_init(struct share_region *r, size_t nframes, uint32_t nattrs,
                      uint32_t nentries, int shared);
/* The region as this process reads it lock-free (its data may be a
 * mapping of its own). */
void share_region_view(const struct share_region *r, struct ufuse_share_view *v);
/* Fault in the page data of frames [@first, @first + @n) before they are
 * written: one madvise(MADV_POPULATE_WRITE) costs ~2 us a page here where
 * a fault per page costs ~13 (invariant 2 still holds: only frames about
 * to be used are touched).  Best effort: on an older kernel the pages
 * fault as they are written. */
void share_region_prefault(const struct share_region *r, size_t first, size_t n);
/* Unmap and close; nothing if @r was never made. */
void share_region_destroy(struct share_region *r);

#endif /* UFUSE_UTIL_SHARE_H */
