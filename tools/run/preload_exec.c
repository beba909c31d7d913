/*
 * preload_exec.c - exec and spawn.
 *
 * Every exec entry point goes through pl_execve, which
 *  - puts LD_PRELOAD (with this library), $UFUSE_RUN and $UFUSE_CWD back
 *    into the new environment if the program dropped them (env -i, a
 *    rebuilt envp), so the new image sees the mounts too;
 *  - runs programs stored on a mount: a "#!" script by running its
 *    interpreter with the script's path (the interpreter then opens it
 *    through this library); an ELF file by copying it into a memfd and
 *    executing that (execveat AT_EMPTY_PATH);
 *  - puts a statically linked program (which this library cannot reach)
 *    under the seccomp filter whose calls the broker serves
 *    (preload_seccomp.c), or says on stderr that it will not see the
 *    mounts when that cannot be done (posix_spawn, no seccomp).
 * execvp and friends search PATH here (glibc's own search would call its
 * internal execve).  posix_spawn(p) fixes the environment and, for a
 * program on a mount, spawns the memfd copy through /proc/self/fd; file
 * actions that open a mount path are carried out by the parent at spawn
 * time (see "posix_spawn file actions" below).
 *
 * Locks: spawn_mu guards the recorded file actions and is held across a
 * spawn that uses them; the saved entries are written once at start-up.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

extern char **environ;

static char *saved_preload;    /* "LD_PRELOAD=..." as we were started */
static char *saved_run;        /* "UFUSE_RUN=..." */

void pl_exec_init(void)
{
    const char *lp = getenv("LD_PRELOAD");
    const char *run = getenv(RUN_ENV);
    if (lp && asprintf(&saved_preload, "LD_PRELOAD=%s", lp) < 0)
        saved_preload = NULL;
    if (run && asprintf(&saved_run, "%s=%s", RUN_ENV, run) < 0)
        saved_run = NULL;
}

static bool has_var(char *const env[], const char *name, size_t n)
{
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
            return true;
    return false;
}

/* A copy of @envp with our entries added where missing (freed with free()). */
static char **fix_envp(char *const envp[], char *cwd_entry)
{
    size_t n = 0;
    while (envp && envp[n])
        n++;
    char **out = malloc((n + 4) * sizeof *out);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        /* A stale working directory must not outlive the process's own. */
        if (strncmp(envp[i], RUN_ENV_CWD "=", sizeof RUN_ENV_CWD) == 0)
            continue;
        out[o++] = envp[i];
    }
    if (saved_preload && !has_var(envp, "LD_PRELOAD", 10))
        out[o++] = saved_preload;
    if (saved_run && !has_var(envp, RUN_ENV, strlen(RUN_ENV)))
        out[o++] = saved_run;
    if (cwd_entry)
        out[o++] = cwd_entry;
    out[o] = NULL;
    return out;
}

/* The "UFUSE_CWD=..." entry for the current virtual cwd, or NULL. */
static char *cwd_entry(void)
{
    char rel[PATH_MAX], abs[PATH_MAX];
    int m = pl_cwd(rel);
    if (m < 0)
        return NULL;
    pl_abs_path(m, rel, abs);
    char *e;
    return asprintf(&e, "%s=%s", RUN_ENV_CWD, abs) < 0 ? NULL : e;
}

/* Statically linked ELF (no PT_INTERP)?  Reads through @fd's start. */
static bool is_static_elf(const unsigned char *head, size_t n)
{
    if (n < sizeof(Elf64_Ehdr) || memcmp(head, ELFMAG, SELFMAG) != 0 ||
        head[EI_CLASS] != ELFCLASS64)
        return false;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)head;
    if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)
        return false;
    if (eh->e_phoff > n || eh->e_phnum > (n - eh->e_phoff) / sizeof(Elf64_Phdr))
        return false;        /* headers beyond what we read: assume dynamic */
    for (int i = 0; i < eh->e_phnum; i++) {
        const Elf64_Phdr *ph = (const Elf64_Phdr *)(head + eh->e_phoff) + i;
        if (ph->p_type == PT_INTERP)
            return false;
    }
    return true;
}

static void warn_static(const char *path, const char *why)
{
    char msg[PATH_MAX + 160];
    int n = snprintf(msg, sizeof msg,
                     "ufuse: %s is statically linked and %s: it does not see the ufuse mounts\n",
                     path, why);
    if (n > 0)
        (void)!write(2, msg, (size_t)(n < (int)sizeof msg ? n : (int)sizeof msg - 1));
}

/* Copy mount file @fd into a memfd; returns the memfd or -errno. */
static int copy_to_memfd(int fd)
{
    int m = memfd_create("ufuse-exec", MFD_CLOEXEC);
    if (m < 0)
        return -errno;
    char *buf = malloc(RUN_MAX_DATA);
    if (!buf) {
        syscall(SYS_close, m);
        return -ENOMEM;
    }
    off_t off = 0;
    for (;;) {
        ssize_t r = pread(fd, buf, RUN_MAX_DATA, off);
        if (r < 0) {
            int e = -errno;
            free(buf);
            syscall(SYS_close, m);
            return e;
        }
        if (r == 0)
            break;
        if (REAL(pwrite)(m, buf, (size_t)r, off) != r) {
            free(buf);
            syscall(SYS_close, m);
            return -EIO;
        }
        off += r;
    }
    free(buf);
    return m;
}

/*
 * Prepare running @path: for a mount file, *memfd receives an executable
 * copy (ELF) or *interp the "#!" line (script); for a real file nothing.
 * *is_static says whether it is a statically linked ELF program.
 * Returns 0 or -errno.
 */
static int prepare(const char *path, int *memfd, char *interp, size_t icap, bool *is_static)
{
    unsigned char head[4096];
    int mnt;
    char rel[PATH_MAX];
    *memfd = -1;
    interp[0] = '\0';
    *is_static = false;
    int k = pl_classify(AT_FDCWD, path, &mnt, rel);
    if (k < 0)
        return k;
    if (k != 1) {
        int fd = REAL(openat)(AT_FDCWD, k == 2 ? rel : path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = REAL(read)(fd, head, sizeof head);
            REAL(close)(fd);
            *is_static = n > 0 && is_static_elf(head, (size_t)n);
        }
        return 0;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EACCES;
    if (access(path, X_OK) != 0)
        return -errno;
    int fd = pl_open_at_mount(mnt, rel, O_RDONLY | O_CLOEXEC, 0, false);
    if (fd < 0)
        return fd;
    ssize_t n = pread(fd, head, sizeof head - 1, 0);
    if (n < 0) {
        int e = -errno;
        pl_close_mount_fd(fd);
        return e;
    }
    if (n >= 2 && head[0] == '#' && head[1] == '!') {
        head[n] = '\0';
        char *nl = strchr((char *)head, '\n');
        if (nl)
            *nl = '\0';
        snprintf(interp, icap, "%s", (char *)head + 2);
        pl_close_mount_fd(fd);
        return 0;
    }
    *is_static = is_static_elf(head, (size_t)n);
    int m = copy_to_memfd(fd);
    pl_close_mount_fd(fd);
    if (m < 0)
        return m;
    *memfd = m;
    return 0;
}

/* Split a "#!" line into interpreter and its one optional argument. */
static int split_interp(char *line, char **prog, char **arg)
{
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p)
        return -ENOEXEC;
    *prog = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    *arg = NULL;
    if (*p) {
        *p++ = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p) {
            *arg = p;
            char *e = p + strlen(p);
            while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                *--e = '\0';
        }
    }
    return 0;
}

/* argv for running script @path with its "#!" interpreter @prog (and its
 * one argument @arg, or NULL): prog [arg] path argv[1...].  free() it. */
static char **script_argv(char *prog, char *arg, const char *path, char *const argv[])
{
    size_t n = 0;
    while (argv && argv[n])
        n++;
    char **nargv = malloc((n + 3) * sizeof *nargv);
    if (!nargv)
        return NULL;
    size_t o = 0;
    nargv[o++] = prog;
    if (arg)
        nargv[o++] = arg;
    nargv[o++] = (char *)path;
    for (size_t i = 1; i < n; i++)
        nargv[o++] = argv[i];
    nargv[o] = NULL;
    return nargv;
}

static int exec_depth;

static int do_execve(const char *path, char *const argv[], char *const envp[])
{
    int memfd;
    char line[PATH_MAX];
    bool is_static;
    int r = prepare(path, &memfd, line, sizeof line, &is_static);
    if (r < 0)
        return r;
    if (line[0]) {
        char *prog, *arg;
        if (split_interp(line, &prog, &arg) < 0 || ++exec_depth > 4)
            return -ENOEXEC;
        char **nargv = script_argv(prog, arg, path, argv);
        if (!nargv)
            return -ENOMEM;
        r = do_execve(prog, nargv, envp);
        free(nargv);
        exec_depth--;
        return r;
    }
    char *cwd = cwd_entry();
    char **env = fix_envp(envp, cwd);
    if (!env) {
        free(cwd);
        return -ENOMEM;
    }
    if (is_static) {
        r = pl_supervise(path);
        if (r < 0) {
            char why[96];
            snprintf(why, sizeof why, "cannot be put under seccomp (%s)", strerror(-r));
            warn_static(path, why);
        }
    }
    if (memfd >= 0) {
        syscall(SYS_execveat, memfd, "", argv, env, AT_EMPTY_PATH);
        r = -errno;
        syscall(SYS_close, memfd);
    } else {
        REAL(execve)(path, argv, env);
        r = -errno;
    }
    free(env);
    free(cwd);
    return r;
}

PL_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    return (int)pl_ret(do_execve(path, argv, envp));
}

PL_EXPORT int execv(const char *path, char *const argv[])
{
    return execve(path, argv, environ);
}

PL_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL)) {
        char *cwd = cwd_entry();
        char **env = fix_envp(envp, cwd);
        int r = env ? REAL(fexecve)(fd, argv, env) : -1;
        free(env);
        free(cwd);
        return r;
    }
    int m = copy_to_memfd(fd);
    if (m < 0)
        return (int)pl_ret(m);
    char *cwd = cwd_entry();
    char **env = fix_envp(envp, cwd);
    if (env)
        syscall(SYS_execveat, m, "", argv, env, AT_EMPTY_PATH);
    int e = env ? -errno : -ENOMEM;
    syscall(SYS_close, m);
    free(env);
    free(cwd);
    return (int)pl_ret(e);
}

/* execvpe's search: each PATH entry in turn; ENOEXEC runs /bin/sh. */
static int search_exec(const char *file, char *const argv[], char *const envp[])
{
    if (strchr(file, '/')) {
        int r = do_execve(file, argv, envp);
        if (r == -ENOEXEC) {
            size_t n = 0;
            while (argv[n])
                n++;
            char **sargv = malloc((n + 2) * sizeof *sargv);
            if (!sargv)
                return -ENOMEM;
            sargv[0] = "/bin/sh";
            sargv[1] = (char *)file;
            for (size_t i = 1; i <= n; i++)
                sargv[i + 1] = argv[i];
            r = do_execve("/bin/sh", sargv, envp);
            free(sargv);
        }
        return r;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin";
    int err = -ENOENT;
    for (const char *p = path;; ) {
        const char *end = strchrnul(p, ':');
        char cand[PATH_MAX];
        int n = end == p ? snprintf(cand, sizeof cand, "%s", file)
                         : snprintf(cand, sizeof cand, "%.*s/%s", (int)(end - p), p, file);
        if (n > 0 && n < (int)sizeof cand) {
            int r = do_execve(cand, argv, envp);
            if (r == -EACCES)
                err = r;
            else if (r != -ENOENT && r != -ENOTDIR && r != -ESTALE)
                return r;
        }
        if (!*end)
            break;
        p = end + 1;
    }
    return err;
}

PL_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    return (int)pl_ret(search_exec(file, argv, envp));
}

PL_EXPORT int execvp(const char *file, char *const argv[])
{
    return execvpe(file, argv, environ);
}

/* The list forms: collect the arguments (and envp for execle). */
#define COLLECT_ARGS(first, ap, argv)                                          \
    size_t n_ = 1;                                                             \
    va_start(ap, first);                                                       \
    while (va_arg(ap, char *))                                                 \
        n_++;                                                                  \
    va_end(ap);                                                                \
    char **argv = alloca((n_ + 1) * sizeof(char *));                           \
    va_start(ap, first);                                                       \
    argv[0] = (char *)first;                                                   \
    for (size_t i_ = 1; i_ <= n_; i_++)                                        \
        argv[i_] = va_arg(ap, char *);

PL_EXPORT int execl(const char *path, const char *arg, ...)
{
    va_list ap;
    COLLECT_ARGS(arg, ap, argv);
    va_end(ap);
    return execve(path, argv, environ);
}

PL_EXPORT int execlp(const char *file, const char *arg, ...)
{
    va_list ap;
    COLLECT_ARGS(arg, ap, argv);
    va_end(ap);
    return execvpe(file, argv, environ);
}

PL_EXPORT int execle(const char *path, const char *arg, ...)
{
    va_list ap;
    COLLECT_ARGS(arg, ap, argv);
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    return execve(path, argv, envp);
}

/*
 * posix_spawn file actions that open a mount path.  glibc's child carries
 * out the actions with its internal open, which this library never sees,
 * so such an open is recorded here instead: the action list gets a dup2
 * from a reserved slot fd (a /dev/null placeholder, close-on-exec, kept
 * while the actions object lives so that nothing else takes the number),
 * and at each spawn the parent opens the path through the broker, puts
 * the new description in the slot for the child to dup2, spawns, and puts
 * the placeholder back.  The open happens at spawn time, as POSIX says
 * (O_TRUNC, O_CREAT then), in the parent, with the same identity and
 * working directory the child would have had.  spawn_mu serializes spawns
 * that use recorded actions (one slot per action, shared by every spawn).
 */
struct spawn_open {
    const posix_spawn_file_actions_t *fa;
    int slot;                   /* the reserved fd the child dup2s from */
    int flags;
    mode_t mode;
    char *path;                 /* as given (the child's view) */
    struct spawn_open *next;
};
static struct spawn_open *spawn_opens;
static pthread_mutex_t spawn_mu = PTHREAD_MUTEX_INITIALIZER;

PL_EXPORT int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *fa, int fd,
                                               const char *path, int flags, mode_t mode)
{
    int mnt;
    char rel[PATH_MAX];
    if (fd < 0 || pl_classify(AT_FDCWD, path, &mnt, rel) != 1)
        return REAL(posix_spawn_file_actions_addopen)(fa, fd, path, flags, mode);
    struct spawn_open *o = calloc(1, sizeof *o);
    char *copy = strdup(path);
    int slot = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC);
    if (slot >= 0) {
        /* Out of the way of the low numbers programs use. */
        int high = REAL(fcntl)(slot, F_DUPFD_CLOEXEC, 512);
        syscall(SYS_close, slot);
        slot = high;
    }
    int r = !o || !copy || slot < 0 ? ENOMEM
                                    : REAL(posix_spawn_file_actions_adddup2)(fa, slot, fd);
    if (r) {
        if (slot >= 0)
            syscall(SYS_close, slot);
        free(copy);
        free(o);
        return r;
    }
    *o = (struct spawn_open){ .fa = fa, .slot = slot, .flags = flags, .mode = mode,
                              .path = copy };
    pthread_mutex_lock(&spawn_mu);
    struct spawn_open **tail = &spawn_opens;
    while (*tail)
        tail = &(*tail)->next;
    *tail = o; /* in the order the actions were added */
    pthread_mutex_unlock(&spawn_mu);
    return 0;
}

/*
 * posix_spawn_file_actions_addchdir_np / addfchdir_np to a mount
 * directory.  The child changes directory with glibc's internal call, so
 * it gets a placeholder instead: an action to chdir into a directory of
 * our own (/tmp/.ufuse-cwd-XXXXXX), made before each spawn and removed
 * after it, and UFUSE_CWD naming the mount directory in its environment:
 * the child's library then takes that as its working directory (as after
 * an exec from inside a mount, inherit_cwd).  The last chdir action of an
 * actions object counts; a later one to a real directory undoes ours.
 * spawn_mu guards the list.
 */
struct spawn_chdir {
    const posix_spawn_file_actions_t *fa;
    char *cwd;                  /* "UFUSE_CWD=/mount/dir", or NULL once undone */
    char tmp[32];               /* the placeholder directory */
    struct spawn_chdir *next;
};
static struct spawn_chdir *spawn_chdirs;

/* Before a spawn (spawn_mu held): the child's chdir fails as it would
 * have (a missing directory, not one), else its placeholder is made.  0 or
 * an errno. */
static int spawn_chdir_begin(const struct spawn_chdir *c)
{
    struct stat st;
    if (stat(c->cwd + sizeof RUN_ENV_CWD, &st) != 0)
        return errno;
    if (!S_ISDIR(st.st_mode))
        return ENOTDIR;
    return mkdir(c->tmp, 0700) == 0 ? 0 : errno;
}

/* fa's record (spawn_mu held), or NULL. */
static struct spawn_chdir *spawn_chdir_of(const posix_spawn_file_actions_t *fa)
{
    struct spawn_chdir *c = spawn_chdirs;
    while (c && c->fa != fa)
        c = c->next;
    return c;
}

/* Record a chdir of @fa's child to mount directory @abs (NULL: to a real
 * one, which undoes a recorded one).  0 or an errno. */
static int spawn_chdir_record(posix_spawn_file_actions_t *fa, const char *abs)
{
    pthread_mutex_lock(&spawn_mu);
    struct spawn_chdir *c = spawn_chdir_of(fa);
    int r = 0;
    if (!abs) {
        if (c) {
            free(c->cwd);
            c->cwd = NULL;
        }
    } else {
        if (!c && (c = calloc(1, sizeof *c)) != NULL) {
            c->fa = fa;
            snprintf(c->tmp, sizeof c->tmp, "/tmp/.ufuse-cwd-XXXXXX");
            if (mkdtemp(c->tmp) && rmdir(c->tmp) == 0) {
                c->next = spawn_chdirs;
                spawn_chdirs = c;
            } else {
                free(c);
                c = NULL;
            }
        }
        char *e = NULL;
        if (!c || asprintf(&e, "%s=%s", RUN_ENV_CWD, abs) < 0)
            r = ENOMEM;
        else if ((r = REAL(posix_spawn_file_actions_addchdir_np)(fa, c->tmp)) != 0)
            free(e);
        else {
            free(c->cwd);
            c->cwd = e;
        }
    }
    pthread_mutex_unlock(&spawn_mu);
    return r;
}

PL_EXPORT int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *fa,
                                                   const char *path)
{
    int mnt;
    char rel[PATH_MAX], abs[PATH_MAX];
    if (pl_classify(AT_FDCWD, path, &mnt, rel) != 1) {
        int r = REAL(posix_spawn_file_actions_addchdir_np)(fa, path);
        return r ? r : spawn_chdir_record(fa, NULL);
    }
    pl_abs_path(mnt, rel, abs);
    return spawn_chdir_record(fa, abs);
}

PL_EXPORT int posix_spawn_file_actions_addfchdir_np(posix_spawn_file_actions_t *fa, int fd)
{
    struct pl_fd f;
    char rel[PATH_MAX], abs[PATH_MAX];
    if (!pl_fd_get(fd, &f, rel)) {
        int r = REAL(posix_spawn_file_actions_addfchdir_np)(fa, fd);
        return r ? r : spawn_chdir_record(fa, NULL);
    }
    pl_abs_path(f.mnt, rel, abs);
    return spawn_chdir_record(fa, abs);
}

PL_EXPORT int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *fa)
{
    pthread_mutex_lock(&spawn_mu);
    for (struct spawn_chdir **p = &spawn_chdirs; *p;) {
        struct spawn_chdir *c = *p;
        if (c->fa != fa) {
            p = &c->next;
            continue;
        }
        *p = c->next;
        free(c->cwd);
        free(c);
    }
    for (struct spawn_open **p = &spawn_opens; *p;) {
        struct spawn_open *o = *p;
        if (o->fa != fa) {
            p = &o->next;
            continue;
        }
        *p = o->next;
        syscall(SYS_close, o->slot);
        free(o->path);
        free(o);
    }
    pthread_mutex_unlock(&spawn_mu);
    return REAL(posix_spawn_file_actions_destroy)(fa);
}

/* Before a spawn with @fa (spawn_mu held): open each recorded mount path
 * into its slot.  0, or the first open's errno (the spawn is not made). */
static int spawn_opens_begin(const posix_spawn_file_actions_t *fa)
{
    for (struct spawn_open *o = spawn_opens; o; o = o->next) {
        if (o->fa != fa)
            continue;
        int fd = open(o->path, o->flags | O_CLOEXEC, o->mode);
        if (fd < 0)
            return errno; /* spawn_opens_end puts every slot back */
        /* dup3 copies our table entry too: the slot is a mount fd now. */
        int r = dup3(fd, o->slot, O_CLOEXEC);
        close(fd);
        if (r < 0)
            return errno;
    }
    return 0;
}

/* After the spawn: the slots hold /dev/null again (the descriptions go
 * when the child's copies do). */
static void spawn_opens_end(const posix_spawn_file_actions_t *fa)
{
    for (struct spawn_open *o = spawn_opens; o; o = o->next) {
        if (o->fa != fa)
            continue;
        int null = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0) {
            (void)dup3(null, o->slot, O_CLOEXEC);
            syscall(SYS_close, null);
        }
    }
}

/* posix_spawn(p): fix the environment; a program on a mount is spawned
 * from a memfd copy by its /proc/self/fd path. */
static int spawn_common(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[],
                        bool search)
{
    char found[PATH_MAX];
    const char *path = file;
    if (search && !strchr(file, '/')) {
        /* Only a PATH entry on a mount needs us; let glibc search the rest. */
        const char *sp = getenv("PATH");
        for (const char *p = sp ? sp : ""; *p;) {
            const char *end = strchrnul(p, ':');
            int mnt;
            char rel[PATH_MAX], cand[PATH_MAX];
            snprintf(cand, sizeof cand, "%.*s/%s", (int)(end - p), p, file);
            if (pl_classify(AT_FDCWD, cand, &mnt, rel) == 1 && access(cand, X_OK) == 0) {
                snprintf(found, sizeof found, "%s", cand);
                path = found;
                break;
            }
            if (!*end)
                break;
            p = end + 1;
        }
    }
    int memfd = -1;
    char line[PATH_MAX];
    char fdpath[64];
    bool is_static = false;
    line[0] = '\0';
    int r = strchr(path, '/') ? prepare(path, &memfd, line, sizeof line, &is_static) : 0;
    if (r < 0)
        return -r;
    if (is_static)
        warn_static(path, "started by posix_spawn (whose child cannot install a filter)");
    if (line[0] && strchr(path, '/')) {
        /* Scripts on a mount: spawn the interpreter with the script path. */
        char *prog, *arg;
        if (split_interp(line, &prog, &arg) < 0)
            return ENOEXEC;
        char **nargv = script_argv(prog, arg, path, argv);
        if (!nargv)
            return ENOMEM;
        r = spawn_common(pid, prog, fa, attr, nargv, envp, false);
        free(nargv);
        return r;
    }
    if (memfd >= 0) {
        /* The child needs the fd to exec it: clear close-on-exec here. */
        (void)REAL(fcntl)(memfd, F_SETFD, 0);
        snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", memfd);
        path = fdpath;
        search = false;
    }
    char *cwd = NULL;
    struct spawn_chdir *cd = NULL;
    bool recorded = false;
    if (fa) {
        pthread_mutex_lock(&spawn_mu);
        for (struct spawn_open *o = spawn_opens; o && !recorded; o = o->next)
            recorded = o->fa == fa;
        if ((cd = spawn_chdir_of(fa)) != NULL && cd->cwd) {
            recorded = true;
            cwd = strdup(cd->cwd);
        }
        if (!recorded)
            pthread_mutex_unlock(&spawn_mu);
    }
    if (!cwd)
        cwd = cwd_entry();
    char **env = fix_envp(envp, cwd);
    if (!env)
        r = ENOMEM;
    else if (cd && cd->cwd && (r = spawn_chdir_begin(cd)) != 0)
        ;
    else if (recorded && (r = spawn_opens_begin(fa)) != 0)
        ;
    else if (search)
        r = REAL(posix_spawnp)(pid, path, fa, attr, argv, env);
    else
        r = REAL(posix_spawn)(pid, path, fa, attr, argv, env);
    if (recorded) {
        spawn_opens_end(fa);
        if (cd && cd->cwd)
            (void)rmdir(cd->tmp); /* the child's working directory, deleted */
        pthread_mutex_unlock(&spawn_mu);
    }
    free(env);
    free(cwd);
    if (memfd >= 0)
        syscall(SYS_close, memfd);
    return r;
}

PL_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                          const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    return spawn_common(pid, path, fa, attr, argv, envp, false);
}

PL_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                           const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    return spawn_common(pid, file, fa, attr, argv, envp, true);
}
