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

/* One byte of a string, escaped, at out (6 bytes at most); the end. */
static char *escape_byte(char *out, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";

	if (c == '"' || c == '\\') {
		*out++ = '\\';
		*out++ = (char)c;
	} else if (c < 0x20) {
		out = stpcpy(out, "\\u00");
		*out++ = hex[c >> 4];
		*out++ = hex[c & 15];
	} else {
		*out++ = (char)c;
	}
	return out;
}

void jw_str(struct jw *w, const char *s)
{
	const size_t limit = JW_CAP - RESERVE;

	put(w, '"', JW_CAP);
	for (; *s && w->len + 6 <= limit; s++)
		w->len = (size_t)(escape_byte(w->buf + w->len, (unsigned char)*s) - w->buf);
	put(w, '"', JW_CAP);
}

char *jw_escape(char *out, const char *s)
{
	*out++ = '"';
	for (; *s; s++)
		out = escape_byte(out, (unsigned char)*s);
	*out++ = '"';
	return out;
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
