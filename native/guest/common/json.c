#include "json.h"

#include <stddef.h>
#include <string.h>

void json_init(struct json *j, char *text)
{
	j->p = text;
	j->base = text;
	j->err = NULL;
}

void json_fail(struct json *j, const char *msg)
{
	if (!j->err)
		j->err = msg;
}

char json_peek(struct json *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
	return *j->p;
}

bool json_eat(struct json *j, char c)
{
	static char msg[] = "expected '?'";

	if (j->err)
		return false;
	if (json_peek(j) != c) {
		msg[10] = c;
		json_fail(j, msg);
		return false;
	}
	j->p++;
	return true;
}

bool json_null(struct json *j)
{
	if (j->err || json_peek(j) != 'n')
		return false;
	if (strncmp(j->p, "null", 4) != 0) {
		json_fail(j, "invalid literal");
		return false;
	}
	j->p += 4;
	return true;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads the four hex digits of a \u escape at s; -1 if malformed. */
static long hex4(const char *s)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		int d = hex_digit(s[i]);

		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static char *put_utf8(char *w, unsigned long cp)
{
	if (cp < 0x80) {
		*w++ = (char)cp;
	} else if (cp < 0x800) {
		*w++ = (char)(0xc0 | (cp >> 6));
		*w++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*w++ = (char)(0xe0 | (cp >> 12));
		*w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*w++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*w++ = (char)(0xf0 | (cp >> 18));
		*w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*w++ = (char)(0x80 | (cp & 0x3f));
	}
	return w;
}

/* Decodes the \u escape whose 'u' is at r (a surrogate pair takes a second
 * escape). Writes UTF-8 at w; returns the byte after the escape, or NULL. */
static char *unicode_escape(struct json *j, char *r, char **w)
{
	long cp = hex4(r + 1), lo;

	if (cp < 0) {
		json_fail(j, "bad \\u escape");
		return NULL;
	}
	r += 5;
	if (cp >= 0xdc00 && cp <= 0xdfff) {
		json_fail(j, "unpaired surrogate in \\u escape");
		return NULL;
	}
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (r[0] != '\\' || r[1] != 'u' || (lo = hex4(r + 2)) < 0xdc00 || lo > 0xdfff) {
			json_fail(j, "unpaired surrogate in \\u escape");
			return NULL;
		}
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		r += 6;
	}
	if (cp == 0) {
		json_fail(j, "NUL character in string");
		return NULL;
	}
	*w = put_utf8(*w, (unsigned long)cp);
	return r;
}

char *json_str(struct json *j)
{
	char *start, *r, *w;

	if (j->err)
		return NULL;
	if (json_peek(j) != '"') {
		json_fail(j, "expected a string");
		return NULL;
	}
	start = w = r = j->p + 1;
	for (;;) {
		unsigned char c = (unsigned char)*r;

		if (c == '"')
			break;
		if (c == '\0') {
			j->p = r;
			json_fail(j, "unterminated string");
			return NULL;
		}
		if (c < 0x20) {
			j->p = r;
			json_fail(j, "control character in string");
			return NULL;
		}
		if (c != '\\') {
			*w++ = *r++;
			continue;
		}
		switch (r[1]) {
		case '"': *w++ = '"'; break;
		case '\\': *w++ = '\\'; break;
		case '/': *w++ = '/'; break;
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 't': *w++ = '\t'; break;
		case 'u':
			j->p = r;
			r = unicode_escape(j, r + 1, &w);
			if (!r)
				return NULL;
			continue;
		default:
			j->p = r;
			json_fail(j, "bad escape in string");
			return NULL;
		}
		r += 2;
	}
	/* The decoded text never outgrows the source, so the terminator lands
	 * at or before the closing quote, which has been read already. */
	j->p = r + 1;
	*w = '\0';
	return start;
}

bool json_more(struct json *j, char close, bool *first)
{
	static char msg[] = "expected ',' or '?'";
	char c;

	if (j->err)
		return false;
	c = json_peek(j);
	if (c == close) {
		j->p++;
		return false;
	}
	if (*first) {
		*first = false;
		return true;
	}
	if (c == ',') {
		j->p++;
		return true;
	}
	msg[17] = close;
	json_fail(j, c ? msg : "unexpected end of text");
	return false;
}

bool json_end(struct json *j)
{
	if (j->err)
		return false;
	if (json_peek(j) != '\0') {
		json_fail(j, "unexpected text after the value");
		return false;
	}
	return true;
}

/* Consumes the literal word (after whitespace) if it comes next. */
static bool literal(struct json *j, const char *word)
{
	size_t n = strlen(word);

	if (strncmp(j->p, word, n) != 0)
		return false;
	j->p += n;
	return true;
}

bool json_bool(struct json *j, bool *out)
{
	if (j->err)
		return false;
	json_peek(j);
	if (literal(j, "true")) {
		*out = true;
		return true;
	}
	if (literal(j, "false")) {
		*out = false;
		return true;
	}
	json_fail(j, "expected true or false");
	return false;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool json_uint(struct json *j, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	char *p;

	if (j->err)
		return false;
	if (!is_digit(json_peek(j))) {
		json_fail(j, "expected a non-negative integer");
		return false;
	}
	for (p = j->p; is_digit(*p); p++) {
		unsigned long d = (unsigned long)(*p - '0');

		if (v > max / 10 || d > max - v * 10) {
			json_fail(j, "number out of range");
			return false;
		}
		v = v * 10 + d;
	}
	if ((p - j->p > 1 && j->p[0] == '0') || *p == '.' || *p == 'e' || *p == 'E') {
		json_fail(j, "expected a non-negative integer");
		return false;
	}
	j->p = p;
	*out = v;
	return true;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool skip_number(struct json *j)
{
	char *p = j->p;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (is_digit(*p))
		while (is_digit(*p))
			p++;
	else
		goto bad;
	if (*p == '.') {
		if (!is_digit(*++p))
			goto bad;
		while (is_digit(*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		if (*++p == '+' || *p == '-')
			p++;
		if (!is_digit(*p))
			goto bad;
		while (is_digit(*p))
			p++;
	}
	j->p = p;
	return true;
bad:
	j->p = p;
	json_fail(j, "bad number");
	return false;
}

static bool skip_value(struct json *j, int depth)
{
	char c = json_peek(j);
	bool first = true;

	if (j->err)
		return false;
	if (depth > 32) {
		json_fail(j, "nested too deeply");
		return false;
	}
	switch (c) {
	case '"':
		return json_str(j) != NULL;
	case '[':
		j->p++;
		while (json_more(j, ']', &first))
			if (!skip_value(j, depth + 1))
				return false;
		return !j->err;
	case '{':
		j->p++;
		while (json_more(j, '}', &first))
			if (!json_str(j) || !json_eat(j, ':') || !skip_value(j, depth + 1))
				return false;
		return !j->err;
	case 't':
	case 'f': {
		bool b;

		return json_bool(j, &b);
	}
	case 'n':
		if (json_null(j))
			return true;
		json_fail(j, "invalid literal");
		return false;
	default:
		if (c == '-' || is_digit(c))
			return skip_number(j);
		json_fail(j, c ? "expected a value" : "unexpected end of text");
		return false;
	}
}

bool json_skip(struct json *j)
{
	return skip_value(j, 0);
}
