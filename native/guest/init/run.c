#include "run.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define MAX_CANDIDATES 256

/* The full paths to try, in order: the name itself if it has a '/',
 * else each PATH entry joined with it (an empty entry means "."). Built
 * before the fork so that the child only has to call execve. */
static __attribute__((noinline)) size_t candidates(const char *name, const char *path, char **out)
{
	size_t n = 0, name_len = strlen(name);

	if (strchr(name, '/') || name[0] == '\0') {
		out[0] = (char *)name;
		return 1;
	}
	if (!path)
		path = "";
	for (;;) {
		const char *end = strchrnul(path, ':');
		size_t dir_len = (size_t)(end - path);
		char *full;

		if (dir_len == 0) {
			path = ".";
			dir_len = 1;
		}
		if (n == MAX_CANDIDATES)
			break;
		full = arena_alloc(dir_len + name_len + 2);
		memcpy(full, path, dir_len);
		full[dir_len] = '/';
		memcpy(full + dir_len + 1, name, name_len + 1);
		out[n++] = full;
		if (*end == '\0')
			break;
		path = end + 1;
	}
	return n;
}

/* Runs in the vfork child, on the parent's memory: only execve, write and
 * _exit from here on. */
static _Noreturn void exec_child(char *const argv[], char *const envp[],
				 char *const *cands, size_t n)
{
	int err = ENOENT;
	bool denied = false, search = argv[0][0] != '\0' && !strchr(argv[0], '/');

	setsid();
	for (size_t i = 0; i < n; i++) {
		execve(cands[i], argv, envp);
		err = errno;
		if (!search)
			break;
		/* Like execvpe: keep looking past entries that do not hold it. */
		if (err == EACCES)
			denied = true;
		else if (err != ENOENT && err != ENOTDIR && err != ELOOP &&
			 err != ENAMETOOLONG && err != ESTALE)
			break;
		err = denied ? EACCES : ENOENT;
	}
	say_error("exec ", argv[0], ": ", strerror(err), NULL);
	_exit(err == ENOENT ? STATUS_NOT_FOUND : STATUS_NOT_EXECUTABLE);
}

/* vfork: the parent sleeps until the child has exec'd or exited, and no
 * page tables are copied (spawning is slow enough in the guest). Kept apart
 * so that nothing live across the vfork is modified afterwards. */
static __attribute__((noinline)) pid_t spawn(char *const argv[], char *const envp[],
					     char *const *cands, size_t n)
{
	pid_t pid = vfork();

	if (pid == 0)
		exec_child(argv, envp, cands, n);
	return pid;
}

pid_t run_start(char *const argv[], char *const envp[], const char *path)
{
	static char *cands[MAX_CANDIDATES];
	pid_t pid = spawn(argv, envp, cands, candidates(argv[0], path, cands));

	if (pid < 0)
		die_errno(errno, "fork", NULL);
	return pid;
}

int run_wait(pid_t pid, void (*other)(pid_t pid, int status))
{
	for (;;) {
		int st;
		pid_t got = waitpid(-1, &st, __WALL);

		if (got > 0) {
			int status = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);

			if (got == pid)
				return status;
			if (other)
				other(got, status);
		} else if (errno != EINTR) {
			die_errno(errno, "wait", NULL);
		}
	}
}
