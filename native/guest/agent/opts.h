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
	int devnull;                 /* stdin of commands without input */
	bool batch;                  /* the agent runs SCHED_BATCH (main.c) */
};

extern struct opts opts;

/* The agent's nice value (main.c). Measured on real VMs: 0 leaves the
 * 4 KiB writes of `head -c 2M` in ~8 KiB reads (the tick still switches
 * to the agent), 2 halfway, 5 to 19 alike in 64 KiB reads and ~2x faster. */
#define AGENT_NICE 5

/* <linux/sched/types.h> (SCHED_ATTR_SIZE_VER0), which musl lacks. */
struct sched_attr {
	unsigned int size, policy;
	unsigned long long flags;
	int nice;
	unsigned int priority;
	unsigned long long runtime, deadline, period;
};

#endif
