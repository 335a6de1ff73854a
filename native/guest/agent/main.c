/* stasis-agent: serves the host's exec, file, secrets, winsize, shutdown,
 * thaw and start requests inside the guest (docs/agent-protocol.md §2).
 * Started by /init; one single-threaded epoll loop serves every session.
 *
 *   stasis-agent [--await-workload] [--listen unix:<path>] [--run-dir <dir>]
 *                [--winsize-tty <path>]... [--init-pid <pid>]
 *                [--thaw-log <path>]
 *
 * Without --listen it listens on vsock port 1978 and reports milestone 4.
 * --await-workload: /init waits for the workload of `start`, over the
 * pipes on descriptors 3 and 4 (await.h). The other flags exist for
 * host-side tests. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "await.h"
#include "listen.h"
#include "loop.h"
#include "opts.h"
#include "util.h"

struct opts opts = {
	.run_dir = "/run/stasis",
	.ttys = { "/dev/ttyS0", "/dev/ttyS1" },
	.ntty = 2,
	.init_pid = 1,
	.devnull = -1,
};

static _Noreturn void usage(const char *bad)
{
	say("bad argument ", bad, "; usage: stasis-agent [--await-workload] [--listen unix:<path>] [--run-dir <dir>] "
	    "[--winsize-tty <path>]... [--init-pid <pid>] [--thaw-log <path>]", NULL);
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	bool ttys_given = false, pid_given = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--await-workload") == 0) {
			opts.await_workload = true;
			continue;
		}
		if (!v)
			usage(a);
		i++;
		if (strcmp(a, "--listen") == 0 && strncmp(v, "unix:", 5) == 0 && v[5]) {
			opts.listen_unix = v + 5;
		} else if (strcmp(a, "--run-dir") == 0) {
			opts.run_dir = v;
		} else if (strcmp(a, "--winsize-tty") == 0) {
			if (!ttys_given)
				opts.ntty = 0;
			ttys_given = true;
			if (opts.ntty == MAX_TTYS)
				usage(v);
			opts.ttys[opts.ntty++] = v;
		} else if (strcmp(a, "--init-pid") == 0) {
			char *end;
			long pid = strtol(v, &end, 10);

			if (*end || pid < 0)
				usage(v);
			opts.init_pid = (pid_t)pid;
			pid_given = true;
		} else if (strcmp(a, "--thaw-log") == 0) {
			opts.thaw_log = v;
		} else {
			usage(a);
		}
	}
	/* Outside the guest, `shutdown` must not signal the real PID 1. */
	if (opts.listen_unix && !pid_given)
		opts.init_pid = 0;
}

/* Descriptors 0-2 must be taken, or a pipe could land there and be
 * clobbered by the dup2 calls in the command's setup. */
static void claim_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			exit(1);
}

/* Signals ignored by whoever started the agent (a shell's `&` ignores
 * SIGINT and SIGQUIT) would stay ignored in every command: set them back
 * to the default. /proc tells which, in 3 syscalls rather than 64. */
static void reset_ignored_signals(void)
{
	char text[2048], *p;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
	unsigned long long ign;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	text[n] = '\0';
	if (!(p = strstr(text, "\nSigIgn:")))
		return;
	ign = strtoull(p + 9, NULL, 16);
	/* The raw syscall: libc refuses signals 32-34 (its own), which may
	 * have been ignored all the same. */
	for (int sig = 1; sig <= 64 && ign; sig++, ign >>= 1)
		if (ign & 1) {
			struct { void (*handler)(int); unsigned long flags, restorer, mask; } dfl = { SIG_DFL, 0, 0, 0 };

			syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
		}
}

/* 256 sessions take over 1024 descriptors. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096 && rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	sigset_t chld;
	int fd;

	parse_args(argc, argv);
	/* Started by execveat on a descriptor, the name would be its number. */
	prctl(PR_SET_NAME, "stasis-agent");
	if (opts.await_workload && !await_setup())
		return 2;
	claim_std_fds();
	raise_fd_limit();
	reset_ignored_signals();
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	opts.devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (opts.devnull < 0) {
		say("open /dev/null: ", strerror(errno), NULL);
		return 1;
	}
	fd = opts.listen_unix ? listen_unix(opts.listen_unix) : listen_vsock(AGENT_PORT);
	if (fd < 0)
		return 1;
	/* Commands without a cwd start in / (and no chdir is needed then). */
	if (chdir("/") != 0) {
		say("chdir /: ", strerror(errno), NULL);
		return 1;
	}
	if (!opts.listen_unix)
		milestone_agent_ready();
	loop_run(fd);
}
