/*
 * spawn.c - posix_spawn file actions that open mount paths (the preload
 * library carries them out in the parent at spawn time, preload_exec.c):
 *
 *   run-spawn IN OUT MISSING   `cat <IN >>OUT` by posix_spawnp with two
 *                              addopen actions, twice with one actions
 *                              object; then an addopen of MISSING must fail
 *                              the spawn with ENOENT.  Prints "spawn: ok".
 */
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
    printf("spawn: ok\n");
    return 0;
}
