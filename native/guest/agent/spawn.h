/* Starting a command: vfork (no page tables copied: process creation is
 * slow in the guest) and execve, with the child doing only syscalls. */
#ifndef STASIS_AGENT_SPAWN_H
#define STASIS_AGENT_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct spawn {
	char *const *paths;  /* tried in order, like execvp's PATH walk */
	size_t npaths;
	bool shell;          /* paths are the login shells: argv[0] = path */
	char **argv, **envp;
	const char *cwd;     /* NULL = the agent's, "/" */
	int fd[3];           /* become the command's 0, 1, 2 */
	int ctty;            /* made the controlling terminal, or -1 */
	/* Set by the child when it could not get as far as execve (the
	 * command did not start; it has exited and been reaped). */
	volatile int err;
	const char *volatile failed;
};

/* Starts the command in a new session. Returns its pid, or -1 with errno
 * when no process could be made; sp->err tells a failed setup. A program
 * that cannot be executed is the command's exit status (127 not found,
 * 126 otherwise) with a message on its stderr, like a shell. */
pid_t spawn_run(struct spawn *sp);

/* The full paths to try for name on PATH `path` (NULL: a default PATH): the name
 * itself if it has a '/'. One malloc'd block; *n entries. NULL when out of
 * memory. */
char **spawn_candidates(const char *name, const char *path, size_t *n);

#endif
