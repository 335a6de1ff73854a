/* Agent-wide settings, from the command line (main.c). */
#ifndef STASIS_AGENT_OPTS_H
#define STASIS_AGENT_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define AGENT_PORT 1978
#define MAX_TTYS 4

struct opts {
	const char *listen_unix;     /* --listen unix:<path>; NULL = vsock */
	const char *run_dir;         /* secrets file lives here */
	const char *ttys[MAX_TTYS];  /* the winsize op's terminals */
	size_t ntty;
	pid_t init_pid;              /* `shutdown` sends SIGTERM here; 0 = nobody */
	const char *thaw_log;        /* `thaw` appends lines here instead of acting */
	bool await_workload;         /* /init waits for `start` (await.h) */
	int devnull;                 /* stdin of commands without input */
};

extern struct opts opts;

#endif
