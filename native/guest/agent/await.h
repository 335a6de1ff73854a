/* Await mode (docs/guest-contract.md, "Two halves"): /init started the
 * agent with --await-workload, the workload pipe on descriptor 3 (the agent
 * writes) and the answer pipe on descriptor 4 (it reads). `start` hands
 * the workload over once; /init answers with the environment it built or
 * why it cannot run the workload. */
#ifndef STASIS_AGENT_AWAIT_H
#define STASIS_AGENT_AWAIT_H

#include <stdbool.h>
#include <stddef.h>

#define AWAIT_WORKLOAD_FD 3
#define AWAIT_ANSWER_FD 4
/* /init answers right after parsing and chdir: this only bounds how long
 * a misbehaving /init can stall the agent's loop. */
#define AWAIT_TIMEOUT_MS 10000
#define AWAIT_ANSWER_MAX (4u << 20)

/* At startup, with --await-workload: checks that descriptors 3 and 4 are
 * open and makes them close-on-exec (no command may inherit them) and
 * non-blocking (every wait on them is bounded). False, with a message,
 * when they are missing. */
bool await_setup(void);

/* True until a workload was handed over (or the attempt failed). */
bool await_pending(void);

/* Writes the workload (len bytes) to /init and closes the workload pipe,
 * then reads the answer to end of file and closes the answer pipe; all
 * within AWAIT_TIMEOUT_MS. Only once. 0 with *answer (malloc'd,
 * NUL-terminated past *answer_len) or an errno, *what saying what failed
 * (EIO when /init took too long). */
int await_handoff(const char *workload, size_t len, char **answer, size_t *answer_len,
		  const char **what);

#endif
