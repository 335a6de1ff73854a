/* A session's side of the loop: reading frames from the connection and
 * routing them by phase (the request itself by op), and the step that
 * follows every round it was touched in. */
#ifndef STASIS_AGENT_DISPATCH_H
#define STASIS_AGENT_DISPATCH_H

#include <stdint.h>

#include "session.h"

/* The connection is readable (or hung up). */
void dispatch_conn(struct session *s, uint32_t events);

/* The command's input can take more: the held frame goes on. */
void dispatch_input_ready(struct session *s);

/* Flushes output, lets the op make progress, closes the session when its
 * last frame is out, and re-registers what it waits for. */
void dispatch_step(struct session *s);

#endif
