#include "request.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"

static bool push(struct strlist *l, char *s)
{
	if (l->n + 2 > l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		char **v = realloc(l->v, cap * sizeof *v);

		if (!v)
			return false;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = s;
	l->v[l->n] = NULL;
	return true;
}

static bool push_or_fail(struct json *j, struct strlist *l, char *s)
{
	if (push(l, s))
		return true;
	json_fail(j, "out of memory");
	return false;
}

/* ["a", "b", ...] */
static bool parse_list(struct json *j, struct strlist *l)
{
	bool first = true;

	l->n = 0;
	if (!json_eat(j, '['))
		return false;
	while (json_more(j, ']', &first)) {
		char *s = json_str(j);

		if (!s || !push_or_fail(j, l, s))
			return false;
	}
	return !j->err;
}

/* {"K": "V", ...} or null */
static bool parse_map(struct json *j, struct strlist *keys, struct strlist *values)
{
	bool first = true;

	keys->n = values->n = 0;
	if (json_null(j))
		return true;
	if (!json_eat(j, '{'))
		return false;
	while (json_more(j, '}', &first)) {
		char *k = json_str(j), *v;

		if (!k || !json_eat(j, ':') || !(v = json_str(j)))
			return false;
		if (!push_or_fail(j, keys, k) || !push_or_fail(j, values, v))
			return false;
	}
	return !j->err;
}

/* A string or null (*out stays NULL). */
static bool opt_str(struct json *j, const char **out)
{
	*out = NULL;
	if (json_null(j))
		return true;
	return (*out = json_str(j)) != NULL;
}

static bool opt_bool(struct json *j, bool *out, bool dflt)
{
	*out = dflt;
	if (json_null(j))
		return true;
	return json_bool(j, out);
}

/* {"cols": c, "rows": r, "term": t} or null */
static bool parse_pty(struct json *j, struct request *r)
{
	bool first = true;

	r->pty = false;
	if (json_null(j))
		return true;
	if (!json_eat(j, '{'))
		return false;
	r->pty = true;
	while (json_more(j, '}', &first)) {
		char *k = json_str(j);
		unsigned long n;

		if (!k || !json_eat(j, ':'))
			return false;
		if (strcmp(k, "cols") == 0 || strcmp(k, "rows") == 0) {
			if (!json_uint(j, 65535, &n))
				return false;
			*(k[0] == 'c' ? &r->cols : &r->rows) = (unsigned)n;
		} else if (strcmp(k, "term") == 0) {
			if (!opt_str(j, &r->term))
				return false;
		} else if (!json_skip(j)) {
			return false;
		}
	}
	return !j->err;
}

static enum op op_named(const char *s)
{
	static const struct { const char *name; enum op op; } ops[] = {
		{ "ping", OP_PING }, { "exec", OP_EXEC }, { "write", OP_WRITE },
		{ "read", OP_READ }, { "secrets", OP_SECRETS },
		{ "winsize", OP_WINSIZE }, { "shutdown", OP_SHUTDOWN },
		{ "thaw", OP_THAW }, { "start", OP_START },
	};

	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if (strcmp(s, ops[i].name) == 0)
			return ops[i].op;
	return OP_UNKNOWN;
}

static bool parse_member(struct json *j, struct request *r, const char *k)
{
	const char *s;
	unsigned long n;

	if (strcmp(k, "op") == 0) {
		if (!(s = json_str(j)))
			return false;
		r->op = op_named(s);
		return true;
	}
	if (strcmp(k, "cmd") == 0) {
		r->has_cmd_list = json_peek(j) == '[';
		return r->has_cmd_list ? parse_list(j, &r->cmd_list) : opt_str(j, &r->cmd);
	}
	if (strcmp(k, "argv") == 0) {
		r->has_argv = !json_null(j);
		return !r->has_argv || parse_list(j, &r->argv);
	}
	if (strcmp(k, "env") == 0)
		return parse_map(j, &r->env_keys, &r->env_values);
	if (strcmp(k, "cwd") == 0)
		return opt_str(j, &r->cwd);
	if (strcmp(k, "stdin") == 0)
		return opt_bool(j, &r->stdin, false);
	if (strcmp(k, "pty") == 0)
		return parse_pty(j, r);
	if (strcmp(k, "path") == 0)
		return opt_str(j, &r->path);
	if (strcmp(k, "mode") == 0) {
		r->mode = -1;
		if (json_null(j))
			return true;
		if (!json_uint(j, 07777, &n))
			return false;
		r->mode = (long)n;
		return true;
	}
	if (strcmp(k, "append") == 0)
		return opt_bool(j, &r->append, false);
	if (strcmp(k, "mkdirs") == 0)
		return opt_bool(j, &r->mkdirs, true);
	if (strcmp(k, "secrets") == 0)
		return parse_map(j, &r->secret_keys, &r->secret_values);
	if (strcmp(k, "realtimeNs") == 0)
		return opt_str(j, &r->realtime_ns);
	if (strcmp(k, "seed") == 0)
		return opt_str(j, &r->seed);
	if (strcmp(k, "hostname") == 0)
		return opt_str(j, &r->hostname);
	if (strcmp(k, "machineId") == 0)
		return opt_str(j, &r->machine_id);
	return json_skip(j);
}

bool request_parse(char *text, struct request *r)
{
	struct json j;
	bool first = true, have_op = false;

	memset(r, 0, sizeof *r);
	r->mode = -1;
	r->mkdirs = true;
	json_init(&j, text);
	if (!json_eat(&j, '{'))
		return false;
	while (json_more(&j, '}', &first)) {
		char *k = json_str(&j);

		if (!k || !json_eat(&j, ':') || !parse_member(&j, r, k))
			return false;
		have_op |= strcmp(k, "op") == 0;
	}
	return json_end(&j) && have_op;
}

bool request_types_ok(const struct request *r)
{
	return r->op == OP_START ? !r->cmd : !r->has_cmd_list;
}

void request_free(struct request *r)
{
	free(r->cmd_list.v);
	free(r->argv.v);
	free(r->env_keys.v);
	free(r->env_values.v);
	free(r->secret_keys.v);
	free(r->secret_values.v);
}
