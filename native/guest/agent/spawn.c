#include "spawn.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "priority.h"

#define MAX_CANDIDATES 256
#define STATUS_NOT_EXECUTABLE 126
#define STATUS_NOT_FOUND 127
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

char **spawn_candidates(const char *name, const char *path, size_t *n)
{
	size_t count = 1, bytes = 0, name_len = strlen(name), i = 0;
	const char *p;
	char **out, *w;

	if (!path)
		path = DEFAULT_PATH;
	if (name[0] == '\0' || strchr(name, '/')) {
		out = malloc(2 * sizeof *out + name_len + 1);
		if (!out)
			return NULL;
		out[0] = memcpy((char *)(out + 2), name, name_len + 1);
		out[1] = NULL;
		*n = 1;
		return out;
	}
	for (p = path; *p; p++)
		count += *p == ':';
	if (count > MAX_CANDIDATES)
		count = MAX_CANDIDATES;
	bytes = strlen(path) + count * (name_len + 3);
	out = malloc((count + 1) * sizeof *out + bytes);
	if (!out)
		return NULL;
	w = (char *)(out + count + 1);
	for (p = path; i < count; i++) {
		const char *end = strchrnul(p, ':');
		size_t dir_len = (size_t)(end - p);

		out[i] = w;
		if (dir_len == 0) /* an empty entry means "." */
			*w++ = '.';
		memcpy(w, p, dir_len);
		w += dir_len;
		*w++ = '/';
		memcpy(w, name, name_len + 1);
		w += name_len + 1;
		if (*end == '\0') {
			i++;
			break;
		}
		p = end + 1;
	}
	out[i] = NULL;
	*n = i;
	return out;
}

static void child_say(const char *name, int err)
{
	const char *msg = strerror(err);
	struct iovec iov[] = {
		{ "stasis-agent: ", 14 }, { (void *)name, strlen(name) },
		{ ": ", 2 }, { (void *)msg, strlen(msg) }, { "\n", 1 },
	};

	(void)!writev(2, iov, 5);
}

/* Runs in the vfork child, on the parent's memory: syscalls, writes to
 * *sp and _exit only. */
static _Noreturn void child(struct spawn *sp)
{
	sigset_t none;
	int err = ENOENT;
	bool denied = false;

	setsid();
	if (sp->ctty >= 0 && ioctl(sp->ctty, TIOCSCTTY, 0) != 0) {
		sp->failed = "make the pty the controlling terminal";
		goto setup_failed;
	}
	if (sp->cwd && chdir(sp->cwd) != 0) {
		sp->failed = "cwd";
		goto setup_failed;
	}
	for (int i = 0; i < 3; i++)
		if (sp->fd[i] != i && dup2(sp->fd[i], i) < 0) {
			sp->failed = "set up the standard streams";
			goto setup_failed;
		}
	/* The agent blocks SIGCHLD and ignores SIGPIPE; the command must not. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	/* Nor run at the agent's priority. */
	priority_reset_child();

	for (size_t i = 0; i < sp->npaths; i++) {
		if (sp->shell)
			sp->argv[0] = sp->paths[i];
		execve(sp->paths[i], sp->argv, sp->envp);
		err = errno;
		/* Like execvp: keep looking past entries that do not hold it. */
		if (err == EACCES)
			denied = true;
		else if (err != ENOENT && err != ENOTDIR && err != ELOOP &&
			 err != ENAMETOOLONG && err != ESTALE)
			break;
		err = denied ? EACCES : ENOENT;
	}
	child_say(sp->shell ? sp->paths[sp->npaths - 1] : sp->argv[0], err);
	_exit(err == ENOENT ? STATUS_NOT_FOUND : STATUS_NOT_EXECUTABLE);

setup_failed:
	sp->err = errno ? errno : EIO;
	_exit(125);
}

/* Kept apart so that nothing live across the vfork changes afterwards. */
static __attribute__((noinline)) pid_t fork_child(struct spawn *sp)
{
	pid_t pid = vfork();

	if (pid == 0)
		child(sp);
	return pid;
}

pid_t spawn_run(struct spawn *sp)
{
	pid_t pid;

	sp->err = 0;
	sp->failed = NULL;
	pid = fork_child(sp);
	if (pid > 0 && sp->err) {
		/* It has exited already: reap it here, not as a command. */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	return pid;
}
