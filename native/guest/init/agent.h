/* The guest agent (docs/agent-protocol.md §2): /init starts it from the
 * initramfs, in the switched root, before the command, and keeps it
 * running. A boot without /stasis-agent simply has no agent. */
#ifndef STASIS_INIT_AGENT_H
#define STASIS_INIT_AGENT_H

#include <stdbool.h>
#include <sys/types.h>

#define AGENT_PATH "/stasis-agent"
/* Await mode: the agent's descriptors for the workload pipe (it writes)
 * and the answer pipe (it reads); see workload.h. */
#define AGENT_WORKLOAD_FD 3
#define AGENT_ANSWER_FD 4

/* Opens AGENT_PATH. Must run before the root switch hides the initramfs;
 * a missing file is not an error. */
void agent_open(void);

/* Starts the agent (if opened) in a session of its own with envp, its
 * stdout and stderr on /dev/console. envp must stay valid: a restart uses
 * it again (whatever it holds by then). */
void agent_start(char *const envp[]);

/* agent_start in await mode: with --await-workload, workload_fd as its
 * descriptor AGENT_WORKLOAD_FD and answer_fd as AGENT_ANSWER_FD (both must
 * be above them). Only this first start: a restart gets neither. False
 * when there is no agent to start. */
bool agent_start_awaiting(char *const envp[], int workload_fd, int answer_fd);

/* Tells the agent module that a child exited (every reaped pid comes
 * here). If it was the agent, it is restarted, unless it lived less than a
 * second (then it stays down, with a message). */
void agent_child_exited(pid_t pid, int status);

#endif
