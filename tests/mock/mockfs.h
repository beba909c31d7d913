/*
 * mockfs.h - a scripted FUSE server for tests.
 *
 * The mock owns one end of a socketpair(AF_UNIX, SOCK_SEQPACKET) and serves
 * it from its own thread; the test hands the other end to the client
 * (ufuse_mount_fd) or writes raw requests into it.  The mock answers
 * FUSE_INIT itself (struct mock_init_cfg) and every later request from a
 * script the test writes BEFORE making the call:
 *
 *     struct mock *m = mock_new(NULL);
 *     ufuse_mount_fd(&s, mock_client_fd(m), "");
 *     struct mock_exp *e = mock_expect_lookup(m, FUSE_ROOT_ID, "a");
 *     mock_reply_entry(e, &(struct fuse_entry_out){...});
 *     ... the call ...
 *     ufuse_unmount(s);
 *     mock_verify(m);            (cmocka-fails on any problem)
 *     mock_free(m);
 *
 * Expectations ("exp") are consumed in the order they were added; the ones
 * added between mock_unordered_begin() and mock_unordered_end() form a set
 * whose members may arrive in any order (concurrent calls).  Each exp
 * matches opcode, nodeid (MOCK_ANY_NODE: any) and any number of body
 * matchers, and runs a chain of actions when a request matches it (once, or
 * mock_times() times): replies, raw datagrams, split replies, delays,
 * notifications, death.  An exp without actions never answers.
 *
 * A request that matches no exp is answered by the "allow" table
 * (mock_allow; FORGET, BATCH_FORGET, NOTIFY_REPLY are allowed without a
 * reply and DESTROY with 0 by default) or else recorded as a problem, dumped
 * on stderr and answered -EIO (no answer for INTERRUPT).  Requests whose
 * layout is wrong for the negotiated protocol (body size, WRITE size above
 * max_write, GETATTR_FH before 7.9...) are recorded as problems too.
 *
 * Errors are given as negative errno values (-ENOENT), as on the wire.
 * All functions may be called from any thread; scripting an exp while the
 * client may already be sending the request it matches is a test bug.
 */
#ifndef UFUSE_TESTS_MOCKFS_H
#define UFUSE_TESTS_MOCKFS_H

#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Any nodeid (for mock_expect). */
#define MOCK_ANY_NODE UINT64_MAX
/** No reply (for mock_allow). */
#define MOCK_NOREPLY INT32_MIN
/** The bit an INTERRUPT's own unique carries (Linux's FUSE_INT_REQ_BIT). */
#define MOCK_INT_REQ_BIT 1ULL
/** Bound on every wait of the mock (verify, wait helpers), milliseconds. */
#define MOCK_WAIT_MS 10000

struct mock;
struct mock_exp;

/** One request as the mock received it (the log keeps every one). */
struct mock_req {
    struct fuse_in_header h;
    const unsigned char *body;  /* after the header; valid until mock_free */
    size_t bodylen;
    uint64_t t_ns;              /* CLOCK_MONOTONIC at receipt */
    size_t seq;                 /* position in the log, from 0 */
};

/* ---------------------------------------------------------------------
 * Life cycle and INIT
 * ------------------------------------------------------------------ */

enum mock_init_action {
    MOCK_INIT_REPLY = 0,   /* answer per the config (default) */
    MOCK_INIT_NOREPLY,     /* never answer INIT */
    MOCK_INIT_DIE,         /* close the socket on INIT */
};

struct mock_init_cfg {
    uint32_t major, minor;       /* what the mock claims (7, 38) */
    uint64_t flags;              /* granted; bits 32..63 go to flags2 */
    bool raw_flags;              /* grant @flags as is, not ANDed with the
                                    client's offer */
    uint32_t max_write;          /* 131072 */
    uint32_t max_readahead;      /* 0: echo the client's */
    uint16_t max_pages;          /* 32 */
    uint16_t max_background;     /* 12 */
    uint16_t congestion_threshold; /* 9 */
    uint32_t time_gran;          /* 1 */
    int error;                   /* non-zero: answer INIT with this error */
    size_t reply_len;            /* 0: by minor (8 < 7.5, 24 < 7.23, 64) */
    enum mock_init_action action;
};

/** Fill @cfg with the defaults above (flags: ASYNC_READ, BIG_WRITES,
 *  ATOMIC_O_TRUNC, MAX_PAGES, PARALLEL_DIROPS, INIT_EXT). */
void mock_init_defaults(struct mock_init_cfg *cfg);

/** Make the socketpair and start the server thread (@cfg NULL: defaults). */
struct mock *mock_new(const struct mock_init_cfg *cfg);
/** The client end; ownership passes to the caller (mock_free closes it only
 *  if it was never taken). */
int mock_client_fd(struct mock *m);
/** Stop the thread (shutting the socket down if the client has not closed
 *  it), join it and free everything.  Does not assert. */
void mock_free(struct mock *m);

/** Copy the INIT request the client sent.  @return false if none yet. */
bool mock_init_request(struct mock *m, struct fuse_init_in *out,
                       size_t *bodylen);
/** The minor the session runs at (min of the client's and the config's). */
uint32_t mock_minor(struct mock *m);
/** The flags granted at INIT (64 bits). */
uint64_t mock_granted(struct mock *m);

/* ---------------------------------------------------------------------
 * Expectations and matchers
 * ------------------------------------------------------------------ */

struct mock_exp *mock_expect(struct mock *m, uint32_t opcode,
                             uint64_t nodeid);
/** The exp matches @n requests (default 1), running its actions each time. */
void mock_times(struct mock_exp *e, unsigned n);
/** Match an integer field of the body: @width bytes at @off. */
void mock_match_field(struct mock_exp *e, size_t off, size_t width,
                      uint64_t value, const char *what);
#define MOCK_MATCH(e, type, member, value)                                  \
    mock_match_field((e), offsetof(type, member),                          \
                     sizeof(((type *)0)->member), (uint64_t)(value),        \
                     #type "." #member)
/** Match the first (@which 0) or second (1) NUL-terminated name of the
 *  body, placed per opcode and protocol minor (RENAME's new name, SYMLINK's
 *  target, SETXATTR's...). */
void mock_match_name(struct mock_exp *e, int which, const char *name);
/** Match the data of WRITE / SETXATTR / NOTIFY_REPLY exactly. */
void mock_match_data(struct mock_exp *e, const void *data, size_t len);
/** Match the body length exactly. */
void mock_match_bodylen(struct mock_exp *e, size_t len);
/** Match an INTERRUPT aimed at the request @target matched last:
 *  body.unique == its unique and header unique == its unique|INT_REQ_BIT. */
void mock_match_interrupt_of(struct mock_exp *e, struct mock_exp *target);
/** A custom matcher. */
typedef bool (*mock_match_fn)(const struct mock_req *r, void *arg);
void mock_match_custom(struct mock_exp *e, mock_match_fn fn, void *arg,
                       const char *what);

/** Requests added between begin and end may arrive in any order. */
void mock_unordered_begin(struct mock *m);
void mock_unordered_end(struct mock *m);

/** Unscripted requests of @opcode are answered with @error (0, -E..., or
 *  MOCK_NOREPLY) instead of being a problem; MOCK_DISALLOW undoes it. */
void mock_allow(struct mock *m, uint32_t opcode, int error);
#define MOCK_DISALLOW (-1 - 0x7fff)

/* Shorthands: mock_expect plus the usual matchers. */
struct mock_exp *mock_expect_lookup(struct mock *m, uint64_t parent,
                                    const char *name);
struct mock_exp *mock_expect_getattr(struct mock *m, uint64_t nodeid);
struct mock_exp *mock_expect_open(struct mock *m, uint64_t nodeid,
                                  uint32_t flags);
struct mock_exp *mock_expect_create(struct mock *m, uint64_t parent,
                                    const char *name, uint32_t flags,
                                    uint32_t mode);
struct mock_exp *mock_expect_read(struct mock *m, uint64_t nodeid,
                                  uint64_t fh, uint64_t off, uint32_t size);
struct mock_exp *mock_expect_write(struct mock *m, uint64_t nodeid,
                                   uint64_t fh, uint64_t off,
                                   const void *data, uint32_t len);
struct mock_exp *mock_expect_flush(struct mock *m, uint64_t nodeid,
                                   uint64_t fh);
struct mock_exp *mock_expect_release(struct mock *m, uint64_t nodeid,
                                     uint64_t fh);
struct mock_exp *mock_expect_fsync(struct mock *m, uint64_t nodeid,
                                   uint64_t fh, uint32_t fsync_flags);
struct mock_exp *mock_expect_setattr(struct mock *m, uint64_t nodeid,
                                     uint32_t valid);

/* ---------------------------------------------------------------------
 * Actions, run in order by the mock thread when the exp matches
 * ------------------------------------------------------------------ */

/** A well-formed reply: header (len, error 0, the request's unique) plus
 *  @payload. */
void mock_reply(struct mock_exp *e, const void *payload, size_t len);
/** An error reply without payload (@err = -ENOENT...). */
void mock_reply_err(struct mock_exp *e, int err);
/** The helpers size the structures for the negotiated minor (compat sizes
 *  for entry/attr before 7.9, statfs before 7.4) as libfuse does. */
void mock_reply_entry(struct mock_exp *e, const struct fuse_entry_out *eo);
void mock_reply_attr(struct mock_exp *e, const struct fuse_attr_out *ao);
void mock_reply_open(struct mock_exp *e, uint64_t fh, uint32_t open_flags);
void mock_reply_create(struct mock_exp *e, const struct fuse_entry_out *eo,
                       uint64_t fh, uint32_t open_flags);
void mock_reply_write(struct mock_exp *e, uint32_t size);
void mock_reply_statfs(struct mock_exp *e, const struct fuse_kstatfs *st);
void mock_reply_xattr_size(struct mock_exp *e, uint32_t size);
/** READ data: @len bytes of mock_pattern() at file offset @off. */
void mock_reply_pattern(struct mock_exp *e, uint64_t off, size_t len);

#define MOCK_RAW_FILL_UNIQUE 1u  /* write the request's unique at [8,16) */
#define MOCK_RAW_FILL_LEN    2u  /* write @len at [0,4) */
/** Send @bytes as one datagram, as is (except the fills asked). */
void mock_reply_raw(struct mock_exp *e, const void *bytes, size_t len,
                    unsigned fill);
/** A reply (header len = 16 + @len) cut into datagrams of the given
 *  @sizes (which must add up to 16 + @len), as a splicing server does. */
void mock_reply_split(struct mock_exp *e, int error, const void *payload,
                      size_t len, const size_t *sizes, size_t nsizes);
/** Reply to the request @target matched last (an earlier exp). */
void mock_act_reply_to(struct mock_exp *e, struct mock_exp *target,
                       int error, const void *payload, size_t len);
/** Sleep (blocks the mock thread: later requests wait too). */
void mock_act_delay(struct mock_exp *e, unsigned ms);
/** Close the server's end: the client sees EOF; later actions are skipped. */
void mock_act_die(struct mock_exp *e);
/** Send a notification (unique 0, error = @code). */
void mock_act_notify(struct mock_exp *e, int code, const void *payload,
                     size_t len);
/** Call @fn in the mock thread (it may use mock_send_raw etc.). */
typedef void (*mock_action_fn)(struct mock *m, const struct mock_req *r,
                               void *arg);
void mock_act_call(struct mock_exp *e, mock_action_fn fn, void *arg);
/** Explicitly: never answer (an exp without actions does the same). */
void mock_no_reply(struct mock_exp *e);

/* ---------------------------------------------------------------------
 * From the test thread
 * ------------------------------------------------------------------ */

/** Send one datagram now.  @return 0 or -errno. */
int mock_send_raw(struct mock *m, const void *bytes, size_t len);
/** Send a notification now. */
int mock_notify(struct mock *m, int code, const void *payload, size_t len);
/** Reply now to the request @e matched last. */
int mock_respond(struct mock *m, struct mock_exp *e, int error,
                 const void *payload, size_t len);
/** Close the server's end now (server death). */
void mock_kill(struct mock *m);
/** Wait (bounded by @ms) until @e has matched all its times. */
bool mock_wait(struct mock *m, struct mock_exp *e, unsigned ms);
/** Wait until the log holds @n requests of @opcode (0: of any). */
bool mock_wait_log(struct mock *m, uint32_t opcode, size_t n, unsigned ms);
/** The unique of the request @e matched last (0 if none). */
uint64_t mock_exp_unique(struct mock *m, struct mock_exp *e);
/** How many requests @e matched so far. */
unsigned mock_exp_count(struct mock *m, struct mock_exp *e);

/* Notification payload builders: write into @buf, @return the length. */
size_t mock_build_inval_entry(void *buf, size_t cap, uint64_t parent,
                              const char *name);
size_t mock_build_delete(void *buf, size_t cap, uint64_t parent,
                         uint64_t child, const char *name);
size_t mock_build_store(void *buf, size_t cap, uint64_t nodeid,
                        uint64_t off, const void *data, uint32_t len);

/* ---------------------------------------------------------------------
 * Log and verdict
 * ------------------------------------------------------------------ */

/** Number of logged requests of @opcode (0: all). INIT included. */
size_t mock_log_count(struct mock *m, uint32_t opcode);
/** Copy log entry @i.  @return false past the end. */
bool mock_log_get(struct mock *m, size_t i, struct mock_req *out);
/** Find the first request of @opcode at or after position @from.
 *  @return its position, or (size_t)-1. */
size_t mock_log_find(struct mock *m, uint32_t opcode, size_t from,
                     struct mock_req *out);
/** Print the whole log, one line per request. */
void mock_log_dump(struct mock *m, FILE *fp);
/** Describe a request in one line (opcode name, nodeid, key fields). */
void mock_req_describe(struct mock *m, const struct mock_req *r, char *buf,
                       size_t n);
/** The @which-th name in a request body (see mock_match_name), or NULL. */
const char *mock_req_name(struct mock *m, const struct mock_req *r,
                          int which);

/** Non-asserting verdict: wait (bounded) for every exp to be met or the
 *  thread to end, then @return the number of problems (unexpected or
 *  malformed requests, unmet exps, failed actions), described in @buf. */
int mock_check(struct mock *m, char *buf, size_t n);
/** cmocka-fail with the description when mock_check finds problems. */
void mock_verify(struct mock *m);
/** Drop the problems recorded so far (for tests that provoke them). */
void mock_clear_problems(struct mock *m);

/* ---------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------ */

const char *mock_opname(uint32_t opcode);
/** Attributes: ino, mode, size; nlink 1, blksize 4096, blocks rounded up. */
struct fuse_attr mock_attr(uint64_t ino, uint32_t mode, uint64_t size);
struct fuse_entry_out mock_entry(uint64_t nodeid, uint32_t mode,
                                 uint64_t size, uint64_t entry_valid,
                                 uint64_t attr_valid);
struct fuse_attr_out mock_attr_out(uint64_t ino, uint32_t mode,
                                   uint64_t size, uint64_t attr_valid);
/** Deterministic bytes of a file, by absolute offset. */
void mock_pattern(void *buf, size_t len, uint64_t off);

/** A growing READDIR(PLUS) reply body. */
struct mock_dirbuf {
    unsigned char *buf;
    size_t len, cap;
};
void mock_dirbuf_add(struct mock_dirbuf *b, uint64_t ino, uint64_t off,
                     uint32_t type, const char *name);
void mock_dirbuf_addplus(struct mock_dirbuf *b,
                         const struct fuse_entry_out *eo, uint64_t off,
                         uint32_t type, const char *name);
void mock_dirbuf_free(struct mock_dirbuf *b);

#ifdef __cplusplus
}
#endif
#endif /* UFUSE_TESTS_MOCKFS_H */
