/* A small strict JSON reader shared by /init (/stasis-config.json) and the
 * agent (request frames): objects, arrays, strings, `null`, booleans and
 * non-negative integers, plus skipping any value. It works in place on a
 * NUL-terminated buffer;
 * strings are decoded into the buffer itself, so the returned pointers stay
 * valid as long as the buffer does. The first error stops everything and is
 * kept in `err` (with `p` at the offending byte). */
#ifndef STASIS_GUEST_JSON_H
#define STASIS_GUEST_JSON_H

#include <stdbool.h>

struct json {
	char *p;          /* next unread byte */
	const char *base; /* start of the text, for error offsets */
	const char *err;  /* first error; NULL while all is well */
};

void json_init(struct json *j, char *text);

/* Skips whitespace and returns the next byte without consuming it
 * ('\0' at the end of the text). */
char json_peek(struct json *j);

/* Consumes the byte c (after whitespace) or records an error. */
bool json_eat(struct json *j, char c);

/* Consumes a `null` literal if one comes next; false otherwise. */
bool json_null(struct json *j);

/* Reads a string, decoding escapes in place. NULL on error. Strings that
 * contain U+0000 are refused (they cannot become C strings). */
char *json_str(struct json *j);

/* Reads `true` or `false` into *out; false (and an error) otherwise. */
bool json_bool(struct json *j, bool *out);

/* Reads a non-negative integer no larger than max (no sign, fraction or
 * exponent) into *out; false (and an error) otherwise. */
bool json_uint(struct json *j, unsigned long max, unsigned long *out);

/* Skips one value of any kind (nesting depth at most 32). */
bool json_skip(struct json *j);

/* Walks the items of an array or object whose opening byte was consumed.
 * Call it before each item with *first initially true: it returns true when
 * an item follows (after consuming the separating comma) and false at the
 * closing byte `close` (consumed) or on error (see j->err). */
bool json_more(struct json *j, char close, bool *first);

/* True when only whitespace is left; records an error otherwise. */
bool json_end(struct json *j);

/* Records an error at the current position (keeps the first one). */
void json_fail(struct json *j, const char *msg);

#endif
