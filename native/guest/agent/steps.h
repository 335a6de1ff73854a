/* Guest-side timings of an op made of steps (thaw, start): each step's
 * monotonic duration goes back to the host in the exit frame, so a slow
 * step shows in the host's phase log instead of being guessed at. */
#ifndef STASIS_AGENT_STEPS_H
#define STASIS_AGENT_STEPS_H

#include <stdint.h>
#include <time.h>

#include "jsonw.h"

#define STEPS_MAX 8

struct steps {
	struct timespec last;
	int n;
	const char *name[STEPS_MAX]; /* static strings: [a-z-]+ */
	int64_t us[STEPS_MAX];
};

/* Starts the clock. */
void steps_begin(struct steps *st);

/* Records the time since the previous mark (or the begin) as step `name`. */
void steps_mark(struct steps *st, const char *name);

/* Appends `,"guestUs":{"<name>":<µs>,…}` (nothing without steps). */
void steps_json(struct jw *w, const struct steps *st);

#endif
