/*
 * runpath.h - path normalisation shared by libufuse-preload.so (which
 * classifies a program's paths) and the broker's seccomp supervisor (which
 * classifies the paths of programs that bypass the library), so that both
 * agree on what lies on a mount.  Header-only: the two are linked into
 * different binaries.
 */
#ifndef UFUSE_RUNPATH_H
#define UFUSE_RUNPATH_H

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

/*
 * Normalise absolute @in into @out (PATH_MAX bytes) lexically: no ".",
 * "..", "//" or trailing "/".  (".." after a symbolic link is taken
 * lexically too; see docs/run.md.)  -ENAMETOOLONG if it does not fit.
 */
static inline int run_normalise(const char *in, char *out)
{
    size_t o = 0;
    out[o++] = '/';
    const char *p = in;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchrnul(p, '/');
        size_t n = (size_t)(e - p);
        if (n == 1 && p[0] == '.') {
            /* skip */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 1 && out[o - 1] != '/')
                o--;
            if (o > 1)
                o--;
        } else {
            if (o + (o > 1) + n >= PATH_MAX)
                return -ENAMETOOLONG;
            if (o > 1)
                out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p = e;
    }
    out[o] = '\0';
    return 0;
}

/*
 * Normalised absolute @abs lies under mount prefix @prefix (@len bytes,
 * normalised): its path relative to the mount root ("/" or "/a/b") into
 * @out (PATH_MAX bytes), and true.
 */
static inline bool run_under(const char *abs, const char *prefix, size_t len, char *out)
{
    if (strncmp(abs, prefix, len) != 0 || (abs[len] != '/' && abs[len] != '\0'))
        return false;
    size_t n = strlen(abs + len);
    if (n == 0) {
        out[0] = '/';
        out[1] = '\0';
    } else {
        memcpy(out, abs + len, n + 1);
    }
    return true;
}

#endif /* UFUSE_RUNPATH_H */
