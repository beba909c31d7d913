/*
 * util.c - parsing, path handling, printing and the progress bar of the
 * ufuse command-line tool.
 *
 * Everything here is a pure function of its arguments except fail*() (which
 * print to stderr) and the progress bar (which draws on stderr).  Memory
 * allocation failure ends the process: a CLI has nothing better to do.
 *
 * Locks: none (single-threaded tool).
 *
 * Invariants of the word splitter (split_words):
 *   1. Outside quotes, blanks (space, tab, newline) separate words; an
 *      unquoted '#' at the start of a word starts a comment to the end.
 *   2. '...' keeps every character literally; "..." keeps every character
 *      except that a backslash escapes \ " $ ` and newline; outside quotes
 *      a backslash escapes any character (backslash-newline vanishes).
 *   3. A word made only of quotes ("" or '') is an empty word, not nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* ---- memory ------------------------------------------------------------ */

static void oom(void)
{
    fputs("ufuse: out of memory\n", stderr);
    exit(1);
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *xaligned(size_t align, size_t n)
{
    void *p = aligned_alloc(align, n);
    if (!p)
        oom();
    return p;
}

char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        oom();
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *p;
    va_start(ap, fmt);
    int r = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (r < 0)
        oom();
    return p;
}

/* ---- word splitting ---------------------------------------------------- */

struct strbuf {
    char *p;
    size_t len, cap;
};

static void sb_put(struct strbuf *b, char ch)
{
    if (b->len + 1 >= b->cap) {
        b->cap = b->cap ? 2 * b->cap : 32;
        b->p = xrealloc(b->p, b->cap);
    }
    b->p[b->len++] = ch;
    b->p[b->len] = '\0';
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

void words_free(char **w)
{
    if (!w)
        return;
    for (char **p = w; *p; p++)
        free(*p);
    free(w);
}

const char *split_words(const char *s, char ***out, int *n)
{
    char **v = xmalloc(sizeof(*v));
    int count = 0;
    const char *err = NULL;
    size_t i = 0;

    v[0] = NULL;
    for (;;) {
        while (is_blank(s[i]))
            i++;
        if (!s[i] || s[i] == '#')          /* invariant 1 */
            break;
        struct strbuf w = {0};
        while (s[i] && !is_blank(s[i])) {
            char ch = s[i];
            if (ch == '\\') {
                if (s[i + 1] == '\n') {
                    i += 2;
                } else if (s[i + 1]) {
                    sb_put(&w, s[i + 1]);
                    i += 2;
                } else {                    /* a final backslash: literal */
                    sb_put(&w, '\\');
                    i++;
                }
            } else if (ch == '\'') {
                i++;
                while (s[i] && s[i] != '\'')
                    sb_put(&w, s[i++]);
                if (!s[i]) {
                    err = "unterminated single quote";
                    break;
                }
                i++;
            } else if (ch == '"') {
                i++;
                while (s[i] && s[i] != '"') {
                    if (s[i] == '\\' && s[i + 1] &&
                        strchr("\\\"$`\n", s[i + 1])) {
                        if (s[i + 1] != '\n')
                            sb_put(&w, s[i + 1]);
                        i += 2;
                    } else {
                        sb_put(&w, s[i++]);
                    }
                }
                if (!s[i]) {
                    err = "unterminated double quote";
                    break;
                }
                i++;
            } else {
                sb_put(&w, ch);
                i++;
            }
        }
        if (err) {
            free(w.p);
            break;
        }
        v = xrealloc(v, (count + 2) * sizeof(*v));
        v[count++] = w.p ? w.p : xstrdup("");   /* invariant 3 */
        v[count] = NULL;
    }
    if (err) {
        words_free(v);
        *out = NULL;
        *n = 0;
        return err;
    }
    *out = v;
    *n = count;
    return NULL;
}

/* ---- numbers ----------------------------------------------------------- */

int parse_num(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    unsigned base = 10;
    const char *p = s;
    int digits = 0;

    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    for (;; p++, digits++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (base == 16 && isxdigit((unsigned char)*p))
            d = (tolower((unsigned char)*p) - 'a') + 10;
        else
            break;
        if (v > (UINT64_MAX - d) / base)
            return -ERANGE;
        v = v * base + d;
    }
    if (digits == 0)
        return -EINVAL;
    unsigned shift = 0;
    switch (*p) {
    case 'k': case 'K': shift = 10; p++; break;
    case 'm': case 'M': shift = 20; p++; break;
    case 'g': case 'G': shift = 30; p++; break;
    default: break;
    }
    if (*p)
        return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift))
        return -ERANGE;
    v <<= shift;
    if (v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int arg_num(struct cli *c, const char *s, uint64_t max, uint64_t *out)
{
    int r = parse_num(s, max, out);
    if (r == -ERANGE)
        return fail_msg(c, CMD_USAGE, s, "number out of range");
    if (r < 0)
        return fail_msg(c, CMD_USAGE, s, "invalid number");
    return CMD_OK;
}

/* ---- paths ------------------------------------------------------------- */

char *path_resolve(const char *cwd, const char *arg)
{
    char *in = arg[0] == '/' ? xstrdup(arg) : xasprintf("%s/%s", cwd, arg);
    size_t len = strlen(in);
    char *out = xmalloc(len + 2);
    size_t o = 0;
    char *save = NULL;

    for (char *comp = strtok_r(in, "/", &save); comp;
         comp = strtok_r(NULL, "/", &save)) {
        if (strcmp(comp, ".") == 0)
            continue;
        if (strcmp(comp, "..") == 0) {      /* lexical: drop one component */
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            continue;
        }
        out[o++] = '/';
        size_t cl = strlen(comp);
        memcpy(out + o, comp, cl);
        o += cl;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    free(in);
    return out;
}

char *path_base(const char *p)
{
    size_t end = strlen(p);
    while (end > 0 && p[end - 1] == '/')
        end--;
    size_t start = end;
    while (start > 0 && p[start - 1] != '/')
        start--;
    size_t n = end - start;
    if ((n == 1 && p[start] == '.') ||
        (n == 2 && p[start] == '.' && p[start + 1] == '.'))
        n = 0;
    char *b = xmalloc(n + 1);
    memcpy(b, p + start, n);
    b[n] = '\0';
    return b;
}

char *path_join(const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    if (dl > 0 && dir[dl - 1] == '/')
        return xasprintf("%s%s", dir, name);
    return xasprintf("%s/%s", dir, name);
}

/* ---- printing ---------------------------------------------------------- */

void mode_string(mode_t m, char out[11])
{
    char t = '?';
    switch (m & S_IFMT) {
    case S_IFREG: t = '-'; break;
    case S_IFDIR: t = 'd'; break;
    case S_IFLNK: t = 'l'; break;
    case S_IFCHR: t = 'c'; break;
    case S_IFBLK: t = 'b'; break;
    case S_IFIFO: t = 'p'; break;
    case S_IFSOCK: t = 's'; break;
    default: break;
    }
    out[0] = t;
    const char *rwx = "rwxrwxrwx";
    for (int i = 0; i < 9; i++)
        out[1 + i] = (m & (0400 >> i)) ? rwx[i] : '-';
    if (m & S_ISUID)
        out[3] = (m & S_IXUSR) ? 's' : 'S';
    if (m & S_ISGID)
        out[6] = (m & S_IXGRP) ? 's' : 'S';
    if (m & S_ISVTX)
        out[9] = (m & S_IXOTH) ? 't' : 'T';
    out[10] = '\0';
}

const char *type_name(const struct stat *st)
{
    switch (st->st_mode & S_IFMT) {
    case S_IFREG: return st->st_size ? "regular file" : "regular empty file";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "symbolic link";
    case S_IFCHR: return "character special file";
    case S_IFBLK: return "block special file";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    default: return "unknown";
    }
}

void time_string(const struct timespec *ts, bool full, char *out,
                 size_t size)
{
    struct tm tm;
    time_t t = ts->tv_sec;
    char date[64], zone[16];

    if (!localtime_r(&t, &tm)) {
        snprintf(out, size, "?");
        return;
    }
    if (!full) {
        strftime(out, size, "%Y-%m-%d %H:%M", &tm);
        return;
    }
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    strftime(zone, sizeof(zone), "%z", &tm);
    snprintf(out, size, "%s.%09ld %s", date, (long)ts->tv_nsec, zone);
}

void hex_dump(FILE *f, const unsigned char *p, size_t n, uint64_t off)
{
    for (size_t i = 0; i < n; i += 16) {
        size_t k = n - i < 16 ? n - i : 16;
        fprintf(f, "%08llx:  ", (unsigned long long)(off + i));
        for (size_t j = 0; j < 16; j++) {
            if (j < k)
                fprintf(f, "%02x ", p[i + j]);
            else
                fputs("   ", f);
        }
        fputc(' ', f);
        for (size_t j = 0; j < k; j++)
            fputc(isalnum(p[i + j]) ? p[i + j] : '.', f);
        fputc('\n', f);
    }
}

int fail_msg(struct cli *c, int rc, const char *arg, const char *msg)
{
    fflush(stdout);
    if (arg)
        fprintf(stderr, "ufuse: %s: %s: %s\n", c->cmd, arg, msg);
    else
        fprintf(stderr, "ufuse: %s: %s\n", c->cmd, msg);
    return rc;
}

/*
 * When the server is at fault (a malformed reply, it died, it did not
 * answer), say so with its name and the request that failed:
 * "ufuse: sshfs: READ /a.bin: Input/output error".  Otherwise the command
 * failed for an ordinary reason: "ufuse: cat: /a.bin: No such file...".
 */
int fail(struct cli *c, const char *arg, int err)
{
    struct ufuse_failure f;
    int e = err < 0 ? -err : err;
    if (c->fs && ufuse_last_failure(c->fs, &f) == 0 && f.server_fault && f.error == -e) {
        fflush(stdout);
        fprintf(stderr, "ufuse: %s: %s%s%s: %s\n", f.server, f.request, arg ? " " : "",
                arg ? arg : "", strerror(e));
        return CMD_FAIL;
    }
    return fail_msg(c, CMD_FAIL, arg, strerror(e));
}

/* ---- progress bar ------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void human(double v, char *out, size_t size)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, size, "%.0f%s", v, unit[u]);
    else
        snprintf(out, size, "%.1f%s", v, unit[u]);
}

static void progress_draw(struct progress *p, bool final)
{
    double t = now_s();
    double el = t - p->start;
    double rate = el > 0 ? p->done / el : 0;
    char done[32], total[32], speed[32], eta[32];
    int pct = p->total ? (int)(p->done * 100 / p->total) : 100;

    human(p->done, done, sizeof(done));
    human(p->total, total, sizeof(total));
    human(rate, speed, sizeof(speed));
    if (final) {
        snprintf(eta, sizeof(eta), "in %.1fs", el);
    } else if (rate > 0 && p->total > p->done) {
        unsigned long s = (unsigned long)((p->total - p->done) / rate);
        snprintf(eta, sizeof(eta), "ETA %lu:%02lu", s / 60, s % 60);
    } else {
        snprintf(eta, sizeof(eta), "ETA --:--");
    }
    const int width = 20;
    char bar[32];
    int fill = pct * width / 100;
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r%-24.24s [%s] %9s/%-9s %3d%% %10s/s %-10s",
            p->label, bar, done, total, pct, speed, eta);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
    p->last = t;
}

void progress_start(struct progress *p, struct cli *c, const char *label,
                    uint64_t total)
{
    memset(p, 0, sizeof(*p));
    p->on = c->progress && total >= CLI_CHUNK;
    if (!p->on)
        return;
    const char *slash = strrchr(label, '/');
    p->label = slash && slash[1] ? slash + 1 : label;
    p->total = total;
    p->start = p->last = now_s();
    progress_draw(p, false);
}

void progress_add(struct progress *p, uint64_t n)
{
    if (!p->on)
        return;
    p->done += n;
    if (p->done > p->total)
        p->total = p->done;
    if (now_s() - p->last >= 0.2)
        progress_draw(p, false);
}

void progress_end(struct progress *p)
{
    if (!p->on)
        return;
    progress_draw(p, true);
    p->on = false;
}

int cli_mount(ufuse_t **out, char **argv, const char *opts)
{
    /* The command offers splice unless told nosplice (a later option wins):
     * libfuse servers serving files then splice their READ replies, which
     * made passthrough_ll's cold reads 4 times faster (src/vfs/mount.c). */
    char *all = NULL;
    if (asprintf(&all, "splice%s%s", opts && *opts ? "," : "", opts ? opts : "") < 0)
        return -ENOMEM;
    char why[UFUSE_MOUNT_ERR_MAX];
    int r = ufuse_mount_err(out, argv, all, why, sizeof(why));
    free(all);
    if (r < 0) {
        /* The library says what and why; we say where the options are. */
        fprintf(stderr, "ufuse: %s%s\n", why,
                strncmp(why, "unknown option ", 15) == 0 ? " (ufuse -o help lists them)" : "");
    }
    return r;
}
