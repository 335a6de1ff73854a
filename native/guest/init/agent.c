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

void agent_open(void)
{
	/* O_PATH: execveat needs no more; CLOEXEC: the command never sees it. */
	agent_fd = open(AGENT_PATH, O_PATH | O_CLOEXEC);
}

/* Runs in the vfork child: only syscalls and _exit from here on. */
static _Noreturn void exec_agent(void)
{
	static char *const argv[] = { "stasis-agent", NULL };

	setsid();
	if (console_fd >= 0) {
		dup2(console_fd, 1);
		dup2(console_fd, 2);
	}
	syscall(SYS_execveat, agent_fd, "", argv, agent_env, AT_EMPTY_PATH);
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
