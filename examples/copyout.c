/*
 * copyout.c - copy one file out of a FUSE server with the ufuse API.
 *
 *   copyout [-s 'SERVER CMD'] [-o OPTIONS] REMOTE LOCAL
 *
 * Starts the server (the built-in ufuse-memfs by default; -s names any FUSE
 * server's command line, split at blanks, with "{}" standing for the
 * mountpoint if the server needs it elsewhere than last), opens REMOTE on
 * it, writes its contents to LOCAL (created or truncated, mode 0644) and
 * detaches.  Build against an installed ufuse:
 *
 *   cc -o copyout copyout.c $(pkg-config --cflags --libs ufuse)
 *
 * Single-threaded; every ufuse call returns 0, a count, or -errno.
 * Exit status: 0 copied, 1 an error (reported on stderr), 2 usage.
 */
#include <ufuse.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ARGS 64

static void usage(void)
{
    fprintf(stderr, "usage: copyout [-s 'SERVER CMD'] [-o OPTIONS] REMOTE LOCAL\n");
    exit(2);
}

/* Split @cmd at blanks into @argv (at most MAX_ARGS words, NULL-terminated). */
static int split_words(char *cmd, char *argv[])
{
    int n = 0;
    for (char *w = strtok(cmd, " \t"); w; w = strtok(NULL, " \t")) {
        if (n == MAX_ARGS)
            return -1;
        argv[n++] = w;
    }
    argv[n] = NULL;
    return n;
}

/* Write all @n bytes of @buf to @fd. */
static int write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv)
{
    char *server = NULL, *options = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "s:o:h")) != -1) {
        switch (opt) {
        case 's': server = optarg; break;
        case 'o': options = optarg; break;
        default: usage();
        }
    }
    if (argc - optind != 2)
        usage();
    const char *remote = argv[optind], *local = argv[optind + 1];

    char *sargv[MAX_ARGS + 1] = {NULL};
    if (server && split_words(server, sargv) < 0) {
        fprintf(stderr, "copyout: too many words in the server command\n");
        return 2;
    }

    ufuse_t *s;
    int rc = ufuse_mount(&s, server ? sargv : NULL, options);
    if (rc < 0) {
        fprintf(stderr, "copyout: cannot attach to %s: %s\n",
                server ? sargv[0] : "the built-in server", strerror(-rc));
        return 1;
    }

    int status = 1, fd = -1;
    ufuse_file_t *f = NULL;
    static char buf[1 << 17];
    rc = ufuse_open(s, remote, O_RDONLY, 0, &f);
    if (rc < 0) {
        fprintf(stderr, "copyout: %s: %s\n", remote, strerror(-rc));
        goto out;
    }
    fd = open(local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror(local);
        goto out;
    }
    for (off_t off = 0;;) {
        ssize_t n = ufuse_pread(f, buf, sizeof buf, off);
        if (n < 0) {
            fprintf(stderr, "copyout: %s: read: %s\n", remote, strerror((int)-n));
            goto out;
        }
        if (n == 0)
            break;
        if (write_all(fd, buf, (size_t)n) < 0) {
            perror(local);
            goto out;
        }
        off += n;
    }
    status = 0;
out:
    if (fd >= 0 && close(fd) < 0 && status == 0) {
        perror(local);
        status = 1;
    }
    if (f && (rc = ufuse_close(f)) < 0 && status == 0) {
        fprintf(stderr, "copyout: %s: close: %s\n", remote, strerror(-rc));
        status = 1;
    }
    if ((rc = ufuse_unmount(s)) < 0 && status == 0) {
        fprintf(stderr, "copyout: unmount: %s\n", strerror(-rc));
        status = 1;
    }
    return status;
}
