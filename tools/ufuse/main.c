/*
 * main.c - the `ufuse` command-line tool: argument parsing, the session
 * (mount, run commands, unmount) and the command table.
 *
 *   ufuse [-s SERVER] [-o OPT[,OPT...]]... [--stats] [-c CMD]... [CMD [ARG...]]
 *
 * Flow: parse the options; split every -c string into words and check each
 * command against the table (name, options, operand count) BEFORE mounting,
 * so a typo costs no server start; mount; run the -c commands in order, then
 * the trailing CMD ARG... (already split by the caller's shell); with
 * neither, read commands from standard input.  At the end the open file is
 * closed, --stats prints its table and the session is unmounted.
 *
 * Exit status: 0; 1 when the mount, a command or the unmount failed; 2 for
 * usage errors (of ufuse itself or of a command).  Outside an interactive
 * session the first failing command ends it (after a clean unmount); at a
 * terminal errors are reported and the session goes on (status 1 at exit).
 *
 * Locks: none (single-threaded tool).
 *
 * Invariants:
 *   1. Commands are looked up by exact name; every row's opts letters are
 *      ASCII (they index cmd_args.flag[] and optval[]).
 *   2. c.fs is non-NULL from a successful mount to the unmount; no command
 *      runs outside that window.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static int cmd_help(struct cli *c, struct cmd_args *a);
static int cmd_quit(struct cli *c, struct cmd_args *a);

static const struct cmd commands[] = {
    /* sftp-like */
    { "ls", "la", 0, -1, cmd_ls, "ls [-l] [-a] [PATH...]",
      "list directories or files (-l long format, -a dot files too)" },
    { "cd", "", 0, 1, cmd_cd, "cd [PATH]",
      "change the session's directory (default /)" },
    { "pwd", "", 0, 0, cmd_pwd, "pwd", "print the session's directory" },
    { "stat", "", 1, -1, cmd_stat, "stat PATH...",
      "show a file's status (like stat(1); symlinks not followed)" },
    { "cat", "", 1, -1, cmd_cat, "cat PATH...", "write files to stdout" },
    { "get", "r", 1, 2, cmd_get, "get [-r] REMOTE [LOCAL]",
      "copy a file (-r: a tree) out of the server" },
    { "put", "r", 1, 2, cmd_put, "put [-r] LOCAL [REMOTE]",
      "copy a file (-r: a tree) into the server" },
    { "mkdir", "p", 1, -1, cmd_mkdir, "mkdir [-p] PATH...",
      "make directories (-p: with parents, no error if existing)" },
    { "rmdir", "", 1, -1, cmd_rmdir, "rmdir PATH...",
      "remove empty directories" },
    { "rm", "r", 1, -1, cmd_rm, "rm [-r] PATH...",
      "remove files (-r: and directories, recursively)" },
    { "mv", "", 2, 2, cmd_mv, "mv FROM TO",
      "rename (into TO if it is a directory)" },
    { "ln", "s", 2, 2, cmd_ln, "ln [-s] TARGET LINK",
      "make a hard link (-s: a symbolic link)" },
    { "readlink", "", 1, -1, cmd_readlink, "readlink PATH...",
      "print symbolic links' targets" },
    { "chmod", "", 2, -1, cmd_chmod, "chmod MODE PATH...",
      "change permissions (MODE in octal)" },
    { "truncate", "", 2, 2, cmd_truncate, "truncate SIZE PATH",
      "set a file's size" },
    { "df", "", 0, 1, cmd_df, "df [PATH]", "show file-system totals" },
    { "info", "", 0, 0, cmd_info, "info",
      "show the server and what it granted at INIT" },
    /* xfs_io-like */
    { "open", "rctad", 1, 1, cmd_open, "open [-r] [-c] [-t] [-a] [-d] PATH",
      "open the file (read-only, create, trunc, append, direct)" },
    { "pread", "v", 2, 2, cmd_pread, "pread [-v] OFF LEN",
      "read from the open file (-v: dump the bytes)" },
    { "pwrite", "S:", 2, 2, cmd_pwrite, "pwrite [-S BYTE] OFF LEN",
      "write BYTE (default 0xcd) to the open file" },
    { "fsync", "", 0, 0, cmd_fsync, "fsync", "fsync the open file" },
    { "fdatasync", "", 0, 0, cmd_fdatasync, "fdatasync",
      "fdatasync the open file" },
    { "ftruncate", "", 1, 1, cmd_ftruncate, "ftruncate SIZE",
      "set the open file's size" },
    { "fstat", "", 0, 0, cmd_fstat, "fstat",
      "show the open file's status" },
    { "close", "", 0, 0, cmd_close, "close", "close the open file" },
    /* session */
    { "help", "", 0, 1, cmd_help, "help [COMMAND]", "list the commands" },
    { "exit", "", 0, 0, cmd_quit, "exit", "end the session" },
    { "quit", "", 0, 0, cmd_quit, "quit", "end the session" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void print_commands(FILE *f)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-34s %s\n", commands[i].usage, commands[i].help);
}

static int cmd_help(struct cli *c, struct cmd_args *a)
{
    if (a->argc == 0) {
        print_commands(stdout);
        printf("Numbers (OFF, LEN, SIZE, BYTE): decimal or 0x hex, with an "
               "optional k, m or g\nsuffix (powers of 1024).\n");
        return CMD_OK;
    }
    const struct cmd *k = find_cmd(a->argv[0]);
    if (!k)
        return fail_msg(c, CMD_USAGE, a->argv[0], "unknown command");
    printf("%s\n    %s\n", k->usage, k->help);
    return CMD_OK;
}

static int cmd_quit(struct cli *c, struct cmd_args *a)
{
    return CMD_QUIT;
}

/*
 * Look words[0] up and parse its options: leading words "-xyz" (letters
 * from the row's opts; "x:" takes the rest of the word or the next word),
 * "--" ends them.  CMD_OK, or CMD_USAGE after printing why.
 */
static int parse_cmd(struct cli *c, char **words, int n,
                     const struct cmd **out, struct cmd_args *a)
{
    const struct cmd *k = find_cmd(words[0]);
    int i = 1;

    *out = NULL;
    c->cmd = words[0];
    if (!k)
        return fail_msg(c, CMD_USAGE, NULL, "unknown command (try: help)");
    memset(a, 0, sizeof(*a));
    for (; i < n && words[i][0] == '-' && words[i][1]; i++) {
        if (strcmp(words[i], "--") == 0) {
            i++;
            break;
        }
        for (const char *p = words[i] + 1; *p; p++) {
            const char *o = *p != ':' ? strchr(k->opts, *p) : NULL;
            if (!o) {
                char bad[3] = { '-', *p, '\0' };
                fail_msg(c, CMD_USAGE, bad, "unknown option");
                return fail_msg(c, CMD_USAGE, "usage", k->usage);
            }
            unsigned char ch = (unsigned char)*p;  /* ASCII: invariant 1 */
            if (o[1] == ':') {
                if (p[1]) {
                    a->optval[ch] = p + 1;
                } else if (i + 1 < n) {
                    a->optval[ch] = words[++i];
                } else {
                    char bad[3] = { '-', *p, '\0' };
                    return fail_msg(c, CMD_USAGE, bad, "option needs a value");
                }
                break;
            }
            a->flag[ch] = true;
        }
    }
    a->argc = n - i;
    a->argv = words + i;
    if (a->argc < k->min_args || (k->max_args >= 0 && a->argc > k->max_args))
        return fail_msg(c, CMD_USAGE, "usage", k->usage);
    *out = k;
    return CMD_OK;
}

/* Run one command (words already split).  CMD_* */
static int run_words(struct cli *c, char **words, int n)
{
    const struct cmd *k;
    struct cmd_args a;
    int rc = parse_cmd(c, words, n, &k, &a);

    if (rc == CMD_OK && k) {
        c->cmd = k->name;
        rc = k->fn(c, &a);
    }
    fflush(stdout);
    c->cmd = "ufuse";
    return rc;
}

/* Commands read from standard input, one per line.  Returns the status. */
static int run_stdin(struct cli *c)
{
    bool tty = isatty(STDIN_FILENO);
    char *line = NULL;
    size_t cap = 0;
    int status = 0;

    for (;;) {
        if (tty) {
            fputs("ufuse> ", stdout);
            fflush(stdout);
        }
        if (getline(&line, &cap, stdin) < 0) {
            if (tty)
                putchar('\n');
            break;
        }
        char **words;
        int n;
        const char *err = split_words(line, &words, &n);
        int rc;
        if (err) {
            fprintf(stderr, "ufuse: %s\n", err);
            rc = CMD_USAGE;
        } else if (n == 0) {                /* blank line or comment */
            words_free(words);
            continue;
        } else {
            rc = run_words(c, words, n);
            words_free(words);
        }
        if (rc == CMD_QUIT)
            break;
        if (rc != CMD_OK) {
            if (!status)
                status = rc;
            if (!tty)
                break;
        }
    }
    free(line);
    return tty && status ? 1 : status;
}

/* ---- --stats ----------------------------------------------------------- */

/* A byte count as "256 MiB", "4 KiB" or "100 B". */
static const char *human_bytes(unsigned long long n, char *b, size_t size)
{
    static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int u = 0;
    while (u < 4 && n >= 1024 && n % 1024 == 0) {
        n /= 1024;
        u++;
    }
    snprintf(b, size, "%llu %s", n, unit[u]);
    return b;
}

/* The page cache's counters, unless the session runs without it
 * (cache=direct: ufuse_cacheinfo() reports a zero budget).  Every line
 * starts "cache WORD:", so the second field is never a number and the
 * opcode table's columns stay the only numeric rows. */
static void print_cache_stats(ufuse_t *fs)
{
    struct ufuse_cacheinfo c;
    if (ufuse_cacheinfo(fs, &c) != 0 || c.budget == 0)
        return;
    unsigned long long page = c.page_size ? c.page_size : 4096;
    unsigned long long budget_pages = c.budget / page;
    unsigned long long looked = c.hits + c.misses;
    char b[3][32], ratio[32] = "no reads";
    if (looked)
        snprintf(ratio, sizeof(ratio), "%.1f%% hit ratio", 100.0 * (double)c.hits / (double)looked);
    fprintf(stderr, "cache budget: %s (%llu pages of %s), %s blocks\n",
            human_bytes(c.budget, b[0], sizeof(b[0])), budget_pages,
            human_bytes(page, b[1], sizeof(b[1])),
            human_bytes(c.block_size, b[2], sizeof(b[2])));
    fprintf(stderr, "cache reads: %llu pages hit, %llu missed (%s), %llu read ahead\n",
            (unsigned long long)c.hits, (unsigned long long)c.misses, ratio,
            (unsigned long long)c.readahead);
    fprintf(stderr, "cache writes: %llu pages written back in %llu WRITEs, "
                    "%llu writers throttled\n",
            (unsigned long long)c.written_back, (unsigned long long)c.writebacks,
            (unsigned long long)c.throttled);
    fprintf(stderr, "cache memory: at most %llu of %llu pages held, %llu evicted; "
                    "now %llu held, %llu dirty, %llu under write-back\n",
            (unsigned long long)c.pages_max, budget_pages, (unsigned long long)c.evictions,
            (unsigned long long)c.pages, (unsigned long long)c.dirty,
            (unsigned long long)c.writeback);
}

static void print_stats(ufuse_t *fs)
{
    struct ufuse_opstat st[256];
    int n = ufuse_stats(fs, st, sizeof(st) / sizeof(st[0]));
    unsigned long long count = 0, errors = 0, bytes = 0;

    fprintf(stderr, "%-16s %10s %8s %14s %10s %10s %10s\n", "opcode", "count",
            "errors", "bytes", "mean(us)", "p99(us)", "max(us)");
    for (int i = 0; i < n; i++) {
        char mean[32] = "-", p99[32] = "-", max[32] = "-";
        if (st[i].total_ns) {
            snprintf(mean, sizeof(mean), "%.1f",
                     st[i].total_ns / 1e3 / (double)st[i].count);
            snprintf(p99, sizeof(p99), "%.1f", st[i].p99_ns / 1e3);
            snprintf(max, sizeof(max), "%.1f", st[i].max_ns / 1e3);
        }
        fprintf(stderr, "%-16s %10llu %8llu %14llu %10s %10s %10s\n",
                st[i].name ? st[i].name : "?",
                (unsigned long long)st[i].count,
                (unsigned long long)st[i].errors,
                (unsigned long long)st[i].bytes, mean, p99, max);
        count += st[i].count;
        errors += st[i].errors;
        bytes += st[i].bytes;
    }
    fprintf(stderr, "%-16s %10llu %8llu %14llu\n", "total", count, errors,
            bytes);
    struct ufuse_conninfo ci;
    if (ufuse_conninfo(fs, &ci) == 0 && ci.requests)
        fprintf(stderr, "thread wake-ups: %llu (%.2f per request)\n",
                (unsigned long long)ci.wakeups, (double)ci.wakeups / (double)ci.requests);
    print_cache_stats(fs);
}

/* ---- ufuse's own arguments --------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
"Usage: ufuse [-s SERVER] [-o OPT[,OPT...]]... [--stats] [-c CMD]... [CMD [ARG...]]\n"
"\n"
"Attach to a FUSE server over a socket (no kernel mount) and run file-system\n"
"commands on it: each -c in order, then CMD ARG... if given; with neither,\n"
"commands are read from standard input, one per line (# starts a comment).\n"
"\n"
"Options:\n"
"  -s SERVER      the server's command line, split like a shell does (quotes,\n"
"                 backslashes; no expansion); the mountpoint argument is put\n"
"                 where a {} word stands, or appended.  Default: the built-in\n"
"                 server, ufuse-memfs (an in-memory file system).\n"
"  -o OPT[,OPT]   mount options, see -o help (several -o are joined)\n"
"  -c CMD         a command line to run (may be repeated)\n"
"  --stats        at exit, print per-opcode request statistics (and the page\n"
"                 cache's counters) to stderr\n"
"  -h, --help     print this help\n"
"  -V, --version  print the version\n"
"\n"
"Commands:\n");
    print_commands(f);
    fprintf(f,
"\n"
"Paths are relative to the session's directory (cd).  Numbers (OFF, LEN,\n"
"SIZE, BYTE) are decimal or 0x hex with an optional k, m or g suffix (powers\n"
"of 1024).  Errors print \"ufuse: CMD: ARG: reason\".\n"
"\n"
"Exit status: 0 success; 1 the mount or a command failed (the first failing\n"
"command ends a non-interactive session); 2 usage error.\n");
}

static void option_help(void)
{
    printf(
"Mount options (-o OPT[,OPT...]; defaults in brackets):\n"
"  cache=direct|writethrough|writeback|auto\n"
"                     caching mode [auto]: auto is writeback when the server\n"
"                     grants FUSE_WRITEBACK_CACHE, else writethrough; direct\n"
"                     uses no page cache\n"
"  cache_size=SIZE    memory budget of the page cache (k/m/g), at least 1m\n"
"                     [256m]\n"
"  block_size=SIZE    unit a cache miss is read in: a power of two from 4k\n"
"                     to max_read [4k]\n"
"  readahead=SIZE     largest sequential readahead window, capped by the\n"
"                     server's max_readahead and cache_size/8; 0 = none [4m]\n"
"  dirty_expire=SECONDS\n"
"                     writeback: dirty data older than this is written\n"
"                     back [30]\n"
"  timeout=SECONDS    time limit of each request, 0 = none [0]\n"
"  spin=MICROSECONDS  a thread waiting for a reply polls this long before it\n"
"                     sleeps, 0 = never [30]\n"
"  max_read=SIZE      cap on the size of READ requests (k/m/g) [128k]\n"
"  max_write=SIZE     cap on the size of WRITE requests (k/m/g) [1m]\n"
"  splice, nosplice   let the server splice its READ replies (READs are then\n"
"                     capped at 56k unless max_read= is given), or not; the\n"
"                     library's default is nosplice, this command's splice\n"
"  default_permissions\n"
"                     check permissions in the client, from cached attributes\n"
"                     and the caller's ids and groups, as the kernel does [off]\n"
"  outside_links      absolute symbolic links and .. above the root lead out of\n"
"                     the file system: path calls meeting one fail with EXDEV\n"
"                     (ufuse run turns it on and follows them) [off]\n"
"  share              the page cache and cached attributes in shared memory\n"
"                     other processes read (ufuse run turns it on) [off]\n"
"  log=FILE           the server's stderr and ufuse's messages go to FILE\n"
"                     [stderr]\n"
"  attach=auto|devfd|hook\n"
"                     how the server gets its socket: devfd passes /dev/fd/N\n"
"                     as the mountpoint (libfuse >= 3.3, go-fuse), hook\n"
"                     preloads ufuse's libfuse-2 hook; auto picks devfd, and\n"
"                     hook for a server that refuses /dev/fd/N (tried\n"
"                     again) or is linked against libfuse.so.2 [auto]\n"
"  server_name=NAME   the server's name in messages [its program name]\n");
}

/* Does a comma-separated option list contain the item "help"? */
static bool wants_help(const char *opts)
{
    for (const char *p = opts; *p;) {
        size_t len = strcspn(p, ",");
        if (len == 4 && strncmp(p, "help", 4) == 0)
            return true;
        p += len;
        if (*p)
            p++;
    }
    return false;
}

struct cmdline {
    char **words;
    int n;
    bool owned;            /* words came from split_words */
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "stats", no_argument, NULL, 1 },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *server = NULL;
    char *opts = NULL;
    bool stats = false;
    struct cmdline *cmds = NULL;
    int ncmds = 0, opt, status = 0;
    struct cli c = { .cmd = "ufuse" };

    /* `ufuse run`, `ufuse mount`, `ufuse umount`: the broker (run.h). */
    if (argc > 1 && (strcmp(argv[1], "run") == 0 || strcmp(argv[1], "mount") == 0 ||
                     strcmp(argv[1], "umount") == 0))
        return run_main(argc - 1, argv + 1);

    while ((opt = getopt_long(argc, argv, "+s:o:c:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            if (server) {
                fprintf(stderr, "ufuse: -s given twice\n");
                goto usage_error;
            }
            server = optarg;
            break;
        case 'o': {
            char *joined = opts ? xasprintf("%s,%s", opts, optarg)
                                : xstrdup(optarg);
            free(opts);
            opts = joined;
            break;
        }
        case 'c': {
            cmds = xrealloc(cmds, (ncmds + 1) * sizeof(*cmds));
            struct cmdline *cl = &cmds[ncmds];
            const char *err = split_words(optarg, &cl->words, &cl->n);
            if (err) {
                fprintf(stderr, "ufuse: -c: %s: %s\n", optarg, err);
                goto usage_error;
            }
            cl->owned = true;
            ncmds++;
            break;
        }
        case 1:
            stats = true;
            break;
        case 'h':
            usage(stdout);
            goto out;
        case 'V':
            printf("ufuse %s\n", UFUSE_VERSION_STRING);
            goto out;
        default:
            goto usage_error;
        }
    }
    if (opts && wants_help(opts)) {
        option_help();
        goto out;
    }
    if (optind < argc) {
        cmds = xrealloc(cmds, (ncmds + 1) * sizeof(*cmds));
        cmds[ncmds++] = (struct cmdline){ argv + optind, argc - optind, false };
    }
    /* Check every command before starting a server. */
    for (int i = 0; i < ncmds; i++) {
        const struct cmd *k;
        struct cmd_args a;
        if (cmds[i].n == 0)                 /* -c "" or -c "# comment" */
            continue;
        if (parse_cmd(&c, cmds[i].words, cmds[i].n, &k, &a) != CMD_OK) {
            status = 2;
            goto out;
        }
    }

    char **sargv = NULL;
    int sargc = 0;
    if (server) {
        const char *err = split_words(server, &sargv, &sargc);
        if (err) {
            fprintf(stderr, "ufuse: -s: %s: %s\n", server, err);
            goto usage_error;
        }
    }
    c.server = server;
    c.umask = umask(0);
    umask(c.umask);
    c.progress = isatty(STDERR_FILENO);
    c.cwd = xstrdup("/");
    int r = cli_mount(&c.fs, sargc ? sargv : NULL, opts);
    words_free(sargv);
    if (r < 0) {
        status = 1;
        goto out;
    }
    /* A reader that goes away makes writes fail with EPIPE; the session is
     * still unmounted cleanly.  (Set after the server is started, so the
     * server keeps its default disposition.) */
    signal(SIGPIPE, SIG_IGN);

    if (ncmds == 0) {
        status = run_stdin(&c);
    } else {
        for (int i = 0; i < ncmds; i++) {
            if (cmds[i].n == 0)
                continue;
            int rc = run_words(&c, cmds[i].words, cmds[i].n);
            if (rc == CMD_QUIT)
                break;
            if (rc != CMD_OK) {
                status = rc;
                break;
            }
        }
    }

    c.cmd = "close";
    if (cli_close_file(&c) != CMD_OK && !status)
        status = 1;
    if (stats) {
        fflush(stdout);
        print_stats(c.fs);
    }
    r = ufuse_unmount(c.fs);
    c.fs = NULL;
    if (r < 0) {
        fprintf(stderr, "ufuse: unmount: %s\n", strerror(-r));
        if (!status)
            status = 1;
    }
    goto out;

usage_error:
    fprintf(stderr, "Try 'ufuse --help' for more information.\n");
    status = 2;
out:
    for (int i = 0; i < ncmds; i++)
        if (cmds[i].owned)
            words_free(cmds[i].words);
    free(cmds);
    free(opts);
    free(c.cwd);
    if (fflush(stdout) != 0 && !status)
        status = 1;
    return status;
}
