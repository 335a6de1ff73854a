/* A tiny JSON writer for the agent's replies, into a fixed buffer. Text
 * that would not fit is cut (strings stay quoted), never overflowed. */
#ifndef STASIS_AGENT_JSONW_H
#define STASIS_AGENT_JSONW_H

#include <stddef.h>

#define JW_CAP 1024

struct jw {
	char buf[JW_CAP];
	size_t len;
};

/* Appends text as is. */
void jw_raw(struct jw *w, const char *s);

/* Appends s as a quoted, escaped JSON string. */
void jw_str(struct jw *w, const char *s);

/* Writes s at out as a quoted, escaped JSON string, without limit: out
 * needs JW_ESCAPED_MAX(strlen(s)) bytes. Returns the end. */
#define JW_ESCAPED_MAX(n) (6 * (n) + 2)
char *jw_escape(char *out, const char *s);

/* Appends a decimal integer. */
void jw_int(struct jw *w, long long n);

#endif
