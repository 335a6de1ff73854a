#include "jsonw.h"

#include <stdbool.h>
#include <string.h>

/* Room kept back so that closing quotes and braces always fit. */
#define RESERVE 16

static bool put(struct jw *w, char c, size_t limit)
{
	if (w->len + 1 > limit)
		return false;
	w->buf[w->len++] = c;
	return true;
}

void jw_raw(struct jw *w, const char *s)
{
	while (*s && put(w, *s, JW_CAP))
		s++;
}

void jw_str(struct jw *w, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const size_t limit = JW_CAP - RESERVE;

	put(w, '"', JW_CAP);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (w->len + 6 > limit)
			break;
		if (c == '"' || c == '\\') {
			put(w, '\\', limit);
			put(w, (char)c, limit);
		} else if (c < 0x20) {
			put(w, '\\', limit);
			put(w, 'u', limit);
			put(w, '0', limit);
			put(w, '0', limit);
			put(w, hex[c >> 4], limit);
			put(w, hex[c & 15], limit);
		} else {
			put(w, (char)c, limit);
		}
	}
	put(w, '"', JW_CAP);
}

void jw_int(struct jw *w, long long n)
{
	char tmp[24];
	size_t i = 0;
	unsigned long long u = n < 0 ? 0 - (unsigned long long)n : (unsigned long long)n;

	do
		tmp[i++] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (n < 0)
		put(w, '-', JW_CAP);
	while (i)
		put(w, tmp[--i], JW_CAP);
}
