/* The shutdown op: answer `X {"code":0}`, then SIGTERM to PID 1 (which
 * forwards it to the boot command's process group). */
#ifndef STASIS_AGENT_SHUTDOWN_H
#define STASIS_AGENT_SHUTDOWN_H

#include "session.h"

void shutdown_request(struct session *s);

/* Sends the SIGTERM (to opts.init_pid; none when 0). Called when the
 * session that asked ends, so that the answer went out first. */
void shutdown_signal(void);

#endif
