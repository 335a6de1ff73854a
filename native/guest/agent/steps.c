#include "steps.h"

static int64_t since_us(const struct timespec *a, const struct timespec *b)
{
	return (int64_t)(b->tv_sec - a->tv_sec) * 1000000 + (b->tv_nsec - a->tv_nsec) / 1000;
}

void steps_begin(struct steps *st)
{
	st->n = 0;
	clock_gettime(CLOCK_MONOTONIC, &st->last);
}

void steps_mark(struct steps *st, const char *name)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (st->n < STEPS_MAX) {
		st->name[st->n] = name;
		st->us[st->n] = since_us(&st->last, &now);
		st->n++;
	}
	st->last = now;
}

void steps_json(struct jw *w, const struct steps *st)
{
	if (!st || st->n == 0)
		return;
	jw_raw(w, ",\"guestUs\":{");
	for (int i = 0; i < st->n; i++) {
		if (i)
			jw_raw(w, ",");
		jw_str(w, st->name[i]);
		jw_raw(w, ":");
		jw_int(w, st->us[i]);
	}
	jw_raw(w, "}");
}
