/* The `start` op (docs/agent-protocol.md §2): the host's per-VM
 * configuration, sent once per boot to an agent that /init started in
 * await mode. The thaw steps (clock, seed, hostname), /etc/machine-id, then
 * the workload goes to /init, whose answer gives the agent its base
 * environment for every later command. */
#ifndef STASIS_AGENT_START_H
#define STASIS_AGENT_START_H

#include "request.h"
#include "session.h"

/* F ENOTSUP outside await mode, F EALREADY after a handover; then every
 * field is checked first (F EINVAL, nothing done, when one is bad). Queues
 * `X {"code":0,"clockStepNs":…}` once /init accepted the workload, `F
 * EINVAL` with its message when it refused it, or `F` naming the step that
 * failed (the steps before it stay done). */
void start_request(struct session *s, const struct request *r);

#endif
