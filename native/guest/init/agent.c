#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static int agent_fd = -1;
static int console_fd = -1;
static pid_t agent_pid;
static char *const *agent_env;
static struct timespec started;
/* The pipe ends for an agent started in await mode; -1 otherwise. */
static int await_fds[2] = { -1, -1 };

void agent_open(void)
{
	/* O_PATH: execveat needs no more; CLOEXEC: the command never sees it.
	 * Above the await-mode descriptors, which the child's dup2 would
	 * otherwise replace before the execveat that needs it. */
	agent_fd = fd_move_above(open(AGENT_PATH, O_PATH | O_CLOEXEC), AGENT_ANSWER_FD + 1);
}

/* Runs in the vfork child: only syscalls and _exit from here on. */
static _Noreturn void exec_agent(void)
{
	static char *const argv[] = { "stasis-agent", NULL };
	static char *const await_argv[] = { "stasis-agent", "--await-workload", NULL };
	bool await = await_fds[0] >= 0;

	setsid();
	if (console_fd >= 0) {
		dup2(console_fd, 1);
		dup2(console_fd, 2);
	}
	/* dup2 clears close-on-exec on the copies only: the agent keeps 3
	 * and 4, the originals (and /init's own ends) close at the exec. */
	if (await && (dup2(await_fds[0], AGENT_WORKLOAD_FD) < 0 || dup2(await_fds[1], AGENT_ANSWER_FD) < 0)) {
		say_error("pass the workload pipes to the agent: ", strerror(errno), NULL);
		_exit(127);
	}
	syscall(SYS_execveat, agent_fd, "", await ? await_argv : argv, agent_env, AT_EMPTY_PATH);
	say_error("exec " AGENT_PATH ": ", strerror(errno), NULL);
	_exit(127);
}

static __attribute__((noinline)) pid_t spawn_agent(void)
{
	pid_t pid = vfork();

	if (pid == 0)
		exec_agent();
	return pid;
}

void agent_start(char *const envp[])
{
	if (agent_fd < 0)
		return;
	if (console_fd < 0)
		console_fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
	agent_env = envp;
	agent_pid = spawn_agent();
	if (agent_pid < 0) {
		say_error("start the agent: ", strerror(errno), NULL);
		agent_pid = 0;
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &started);
}

bool agent_start_awaiting(char *const envp[], int workload_fd, int answer_fd)
{
	if (agent_fd < 0)
		return false;
	await_fds[0] = workload_fd;
	await_fds[1] = answer_fd;
	agent_start(envp);
	await_fds[0] = await_fds[1] = -1;
	return true;
}

void agent_child_exited(pid_t pid, int status)
{
	struct timespec now;
	char num[24];

	if (agent_pid <= 0 || pid != agent_pid)
		return;
	agent_pid = 0;
	fmt_uint(num, (unsigned long)status);
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - started.tv_sec >= 2 ||
	    (now.tv_sec - started.tv_sec == 1 && now.tv_nsec >= started.tv_nsec)) {
		say_error("the agent exited (status ", num, "); restarting it", NULL);
		agent_start(agent_env);
	} else {
		say_error("the agent exited (status ", num, ") within a second of its start; not restarting it", NULL);
	}
}
