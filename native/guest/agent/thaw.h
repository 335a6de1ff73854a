/* The `thaw` op, sent once by the host after a restore or a fork: the
 * guest's wall clock jumps to the host's time (the monotonic clock is left
 * alone), the kernel RNG is reseeded with host entropy (so forks of one
 * snapshot do not draw the same numbers) and, when asked, the hostname
 * changes. With --thaw-log the three effects become lines appended to a
 * file instead (host-side tests cannot set the host's clock). */
#ifndef STASIS_AGENT_THAW_H
#define STASIS_AGENT_THAW_H

#include <stdint.h>

#include "request.h"
#include "session.h"
#include "steps.h"

#define THAW_SEED_MAX 512

/* <linux/random.h>'s, which musl's headers do not carry. */
struct rand_pool_info {
	int entropy_count; /* bits to credit */
	int buf_size;      /* bytes in buf */
	unsigned char buf[THAW_SEED_MAX];
};

/* What a request asks for, once validated. */
struct thaw {
	int64_t realtime_ns;
	struct rand_pool_info seed; /* buf_size 0: no seed */
	const char *hostname;       /* NULL: keep it */
};

/* Checks realtimeNs, seed and hostname of r into t. NULL when they are
 * valid, else why not (for F EINVAL). Call thaw_forget on t either way. */
const char *thaw_validate(const struct request *r, struct thaw *t);

/* Sets the clock, the seed and the hostname in that order (with
 * --thaw-log: logs them). 0 and *step_ns = new minus old wall clock, or
 * the errno of the step that failed, *what naming it (the steps before it
 * stay done). */
int thaw_apply(const struct thaw *t, int64_t *step_ns, const char **what);

/* Wipes the seed. */
void thaw_forget(struct thaw *t);

/* --thaw-log: appends n bytes of text to the log. 0 or an errno. */
int thaw_log_append(const char *text, size_t n);

/* Queues `X {"code":0,"clockStepNs":"<step>","guestUs":{…}}` (the step
 * timings when st has any) and ends the session's work. */
void thaw_send_done(struct session *s, int64_t step_ns, const struct steps *st);

/* Validates every field first (F EINVAL, nothing changed, when one is
 * bad), then applies them. Queues `X` with the clock step, or `F` naming
 * the step that failed. */
void thaw_request(struct session *s, const struct request *r);

#endif
