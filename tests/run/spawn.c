/*
 * spawn.c - posix_spawn file actions that open mount paths (the preload
 * library carries them out in the parent at spawn time, preload_exec.c):
 *
 *   run-spawn IN OUT MISSING   `cat <IN >>OUT` by posix_spawnp with two
 *                              addopen actions, twice with one actions
 *                              object; then an addopen of MISSING must fail
 *                              the spawn with ENOENT; then `cat` of IN's
 *                              name and `pwd` in a shell spawned with an
 *                              addchdir_np, then an addfchdir_np, to IN's
 *                              directory (on the mount), and an addchdir_np
 *                              to a missing directory must fail the spawn
 *                              with ENOENT.  Prints "spawn: ok".
 */
#include <libgen.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: run-spawn IN OUT MISSING\n");
        return 2;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, argv[1], O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, argv[2], O_WRONLY | O_CREAT | O_APPEND, 0644);
    char *cat[] = { "cat", NULL };
    for (int i = 0; i < 2; i++) {
        pid_t pid;
        int r = posix_spawnp(&pid, "cat", &fa, NULL, cat, environ);
        int st = 0;
        if (r || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "spawn %d: %s, status %d\n", i, strerror(r), st);
            return 1;
        }
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, argv[3], O_RDONLY, 0);
    pid_t pid;
    int r = posix_spawnp(&pid, "cat", &fa, NULL, cat, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != ENOENT) {
        fprintf(stderr, "missing file: %s\n", r ? strerror(r) : "spawned");
        return 1;
    }

    char path[4096], name[4096], cmd[8300];
    snprintf(path, sizeof path, "%s", argv[1]);
    snprintf(name, sizeof name, "%s", argv[1]);
    const char *dir = dirname(path);
    snprintf(cmd, sizeof cmd, "cat '%s'; pwd", basename(name));
    char *sh[] = { "sh", "-c", cmd, NULL };
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    for (int i = 0; i < 2; i++) {
        posix_spawn_file_actions_init(&fa);
        if (i == 0)
            posix_spawn_file_actions_addchdir_np(&fa, dir);
        else
            posix_spawn_file_actions_addfchdir_np(&fa, dfd);
        fflush(stdout);
        int st = 0;
        r = posix_spawnp(&pid, "sh", &fa, NULL, sh, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "spawn in %s: %s, status %d\n", dir, strerror(r), st);
            return 1;
        }
    }
    close(dfd);
    posix_spawn_file_actions_init(&fa);
    snprintf(cmd, sizeof cmd, "%s/no-such-dir", dir);
    posix_spawn_file_actions_addchdir_np(&fa, cmd);
    r = posix_spawnp(&pid, "sh", &fa, NULL, sh, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != ENOENT) {
        fprintf(stderr, "missing directory: %s\n", r ? strerror(r) : "spawned");
        return 1;
    }
    printf("spawn: ok\n");
    return 0;
}
