#include "workload.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "report.h"
#include "term.h"
#include "util.h"

#define MSG_MAX 1024

/* Both pipes, close-on-exec, every end above the agent's descriptors 3 and
 * 4 so that moving its ends there in the child clobbers none of them. */
static void open_pipes(int workload[2], int answer[2])
{
	if (pipe2(workload, O_CLOEXEC) != 0 || pipe2(answer, O_CLOEXEC) != 0)
		die_errno(errno, "pipe", NULL);
	for (int i = 0; i < 2; i++)
		if ((workload[i] = fd_move_above(workload[i], AGENT_ANSWER_FD + 1)) < 0 ||
		    (answer[i] = fd_move_above(answer[i], AGENT_ANSWER_FD + 1)) < 0)
			die_errno(errno, "pipe", NULL);
}

/* Asked to stop (the host's `shutdown`, a stop) before any workload came:
 * end the VM as a command killed by SIGTERM would, instead of holding the
 * signal for a command that may never come. */
static _Noreturn void stop_idle(void)
{
	say_error("stopped before a workload arrived", NULL);
	report_exit(128 + SIGTERM);
}

/* Reads fd to end of file into buf (cap bytes, NUL-terminated). The
 * length, or -1 with errno set (EFBIG when it does not fit). */
static long read_to_eof(int fd, char *buf, size_t cap)
{
	size_t len = 0;

	for (;;) {
		ssize_t got;

		if (len + 1 >= cap) {
			errno = EFBIG;
			return -1;
		}
		got = read(fd, buf + len, cap - 1 - len);
		if (got == 0)
			break;
		if (got < 0 && errno == EINTR && term_requested())
			stop_idle();
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -1;
		len += (size_t)got;
	}
	buf[len] = '\0';
	return (long)len;
}

/* False with errno set when the agent is gone (EPIPE) or the write fails. */
static bool write_full(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Answers `E` + the message (the parts joined), then dies with it. The
 * agent may be gone already: the message still goes to the console. */
static _Noreturn void refuse(int answer_fd, const char *first, ...)
{
	static char msg[MSG_MAX];
	size_t len = 1;
	va_list ap;

	msg[0] = 'E';
	va_start(ap, first);
	for (const char *s = first; s; s = va_arg(ap, const char *)) {
		size_t n = strlen(s);

		if (n > sizeof msg - 1 - len)
			n = sizeof msg - 1 - len;
		memcpy(msg + len, s, n);
		len += n;
	}
	va_end(ap);
	msg[len] = '\0';
	(void)write_full(answer_fd, msg, len);
	close(answer_fd);
	die(msg + 1, NULL);
}

/* `V`, then every variable with its terminating NUL. */
static void accept_workload(int answer_fd, const struct env *env)
{
	bool ok = write_full(answer_fd, "V", 1);

	for (size_t i = 0; ok && i < env->count; i++)
		ok = write_full(answer_fd, env->vars[i], strlen(env->vars[i]) + 1);
	/* The workload is good either way: run it. The agent, if it died
	 * meanwhile, is restarted with this environment. */
	if (!ok)
		say_error("answer the agent: ", strerror(errno), NULL);
	close(answer_fd);
}

const struct config *workload_await(struct env *env)
{
	static char text[CONFIG_MAX_BYTES];
	static struct config cfg;
	int workload[2], answer[2];
	long len, where;
	const char *msg;

	open_pipes(workload, answer);
	if (!agent_start_awaiting(env->vars, workload[1], answer[0]))
		die("/stasis-config.json has no \"cmd\" and there is no " AGENT_PATH
		    " to receive the workload", NULL);
	/* The agent has its copies: with ours open, the workload pipe would
	 * never reach end of file should the agent die. */
	close(workload[1]);
	close(answer[0]);
	term_interrupt_reads();
	if (term_requested())
		stop_idle();
	report_milestone(MILESTONE_AWAITING_WORKLOAD);

	len = read_to_eof(workload[0], text, sizeof text);
	close(workload[0]);
	term_install(); /* a workload is here: SIGTERM is kept for its command again */
	if (len < 0 && errno == EFBIG)
		refuse(answer[1], "workload: larger than 256 KiB", NULL);
	if (len < 0)
		die_errno(errno, "read the workload", NULL);
	if (len == 0)
		die("the agent ended without handing over a workload", NULL);
	if (strlen(text) != (size_t)len)
		refuse(answer[1], "workload: NUL byte", NULL);
	/* No byte offset: the agent wrote this JSON, not the host, so a
	 * position in it would tell the host nothing. */
	if ((msg = config_parse_workload(text, &cfg, &where)) != NULL)
		refuse(answer[1], "workload: ", msg, NULL);
	env_build(env, &cfg);
	if (chdir(cfg.cwd) != 0)
		refuse(answer[1], "workload: chdir ", cfg.cwd, ": ", strerror(errno), NULL);
	accept_workload(answer[1], env);
	return &cfg;
}
