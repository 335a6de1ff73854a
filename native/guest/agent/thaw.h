/* The `thaw` op, sent once by the host after a restore or a fork: the
 * guest's wall clock jumps to the host's time (the monotonic clock is left
 * alone), the kernel RNG is reseeded with host entropy (so forks of one
 * snapshot do not draw the same numbers) and, when asked, the hostname
 * changes. With --thaw-log the three effects become lines appended to a
 * file instead (host-side tests cannot set the host's clock). */
#ifndef STASIS_AGENT_THAW_H
#define STASIS_AGENT_THAW_H

#include "request.h"
#include "session.h"

/* Validates every field first (F EINVAL, nothing changed, when one is
 * bad), then sets the clock, the seed and the hostname in that order.
 * Queues `X {"code":0,"clockStepNs":"<new - old>"}`, or `F` naming the
 * step that failed (the steps before it stay done). */
void thaw_request(struct session *s, const struct request *r);

#endif
