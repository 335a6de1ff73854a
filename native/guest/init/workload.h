/* Await mode (docs/guest-contract.md, "Two halves"): a config without
 * "cmd" brings up only the machine; the workload arrives later from the
 * host's `start` request, which the agent hands to /init over a pipe.
 * /init answers on a second pipe with the environment it built (`V`) or
 * why the workload is unusable (`E`). */
#ifndef STASIS_INIT_WORKLOAD_H
#define STASIS_INIT_WORKLOAD_H

#include "config.h"
#include "env.h"

/* Starts the agent in await mode with env (the machine half's
 * environment), reports milestone 5 and blocks until the workload is in.
 * Then parses it, rebuilds env in place for it (the agent's restarts get
 * that one, as they use the same array) and chdirs to its cwd, answers the
 * agent and returns the workload. Every problem is a setup error (125),
 * after an `E` answer when the agent is still there to take it. */
const struct config *workload_await(struct env *env);

#endif
