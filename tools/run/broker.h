/*
 * broker.h - what the broker's seccomp supervisor (supervise.c) and the
 * broker (broker.c) see of each other.  The supervisor serves programs that
 * bypass libufuse-preload.so by sending the broker the same requests the
 * library sends (runproto.h), so both kinds of program reach one set of
 * handlers and one table of open file descriptions.
 */
#ifndef UFUSE_RUN_BROKER_H
#define UFUSE_RUN_BROKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct broker;
struct supervisor;

/*
 * Serve one request @req (@len bytes, runproto.h framing: struct run_req,
 * paths, data) for process @pid with effective ids @uid/@gid, as if it had
 * come on a connection of that process.  The reply payload goes to @out
 * (RUN_MAX_DATA bytes), its length to *out_len; *fd receives the fd to
 * hand to the process (the caller owns it) or -1.  Returns the reply's res.
 */
int64_t broker_call(struct broker *b, pid_t pid, uid_t uid, gid_t gid, const void *req,
                    size_t len, void *out, size_t *out_len, int *fd);

/* supervise.c: start serving mount @mnt's (normalised) trapped calls. */
struct supervisor *supervise_start(struct broker *b, const char *mnt);
/* Serve listener @fd (taken over: closed on every path).  0 or -errno. */
int supervise_add(struct supervisor *sv, int fd);
/* Listeners being served, calls trapped so far. */
void supervise_counts(struct supervisor *sv, uint32_t *listeners, uint64_t *traps);
/* Stop serving (the programs' trapped calls then fail) and free @sv. */
void supervise_stop(struct supervisor *sv);

#endif /* UFUSE_RUN_BROKER_H */
