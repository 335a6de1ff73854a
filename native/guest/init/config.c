#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "json.h"
#include "util.h"

enum {
	SEEN_CMD = 1, SEEN_ENV = 2, SEEN_CWD = 4, SEEN_ROOT = 8, SEEN_UPPER = 16,
	KEYS_WORKLOAD = SEEN_CMD | SEEN_ENV | SEEN_CWD,
	KEYS_FILE = KEYS_WORKLOAD | SEEN_ROOT | SEEN_UPPER,
};

/* What a parse found: keys seen, and those with a value other than null. */
struct found {
	unsigned seen, given;
};

static bool parse_cmd(struct json *j, struct config *cfg)
{
	size_t n = 0;
	bool first = true;

	if (!json_eat(j, '['))
		return false;
	while (json_more(j, ']', &first)) {
		char *arg = json_str(j);

		if (!arg)
			return false;
		if (n == CONFIG_MAX_ARGS) {
			json_fail(j, "\"cmd\" has too many arguments");
			return false;
		}
		cfg->cmd[n++] = arg;
	}
	if (j->err)
		return false;
	if (n == 0) {
		json_fail(j, "\"cmd\" must not be empty");
		return false;
	}
	cfg->cmd[n] = NULL;
	return true;
}

static bool parse_env(struct json *j, struct config *cfg)
{
	bool first = true;

	if (json_null(j))
		return true;
	if (!json_eat(j, '{'))
		return false;
	while (json_more(j, '}', &first)) {
		char *key = json_str(j), *value;

		if (!key)
			return false;
		if (key[0] == '\0' || strchr(key, '=')) {
			json_fail(j, "\"env\" names must be non-empty and without '='");
			return false;
		}
		if (!json_eat(j, ':') || !(value = json_str(j)))
			return false;
		if (cfg->env_count == CONFIG_MAX_ENV) {
			json_fail(j, "\"env\" has too many entries");
			return false;
		}
		cfg->env_key[cfg->env_count] = key;
		cfg->env_value[cfg->env_count++] = value;
	}
	return !j->err;
}

/* A non-empty string or null (leaves *out untouched). */
static bool parse_opt_str(struct json *j, const char **out, const char *empty_msg)
{
	char *s;

	if (json_null(j))
		return true;
	if (!(s = json_str(j)))
		return false;
	if (s[0] == '\0') {
		json_fail(j, empty_msg);
		return false;
	}
	*out = s;
	return true;
}

static bool parse_member(struct json *j, struct config *cfg, const char *key,
			 unsigned allowed, struct found *f)
{
	static const struct { const char *name; unsigned bit; } keys[] = {
		{ "cmd", SEEN_CMD }, { "env", SEEN_ENV }, { "cwd", SEEN_CWD },
		{ "root", SEEN_ROOT }, { "upper", SEEN_UPPER },
	};
	unsigned bit = 0;

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strcmp(key, keys[i].name) == 0)
			bit = keys[i].bit & allowed;
	if (!bit) {
		static char msg[80];
		size_t n = strlen(key);

		if (n > 48)
			n = 48;
		memcpy(msg, "unknown key \"", 13);
		memcpy(msg + 13, key, n);
		memcpy(msg + 13 + n, "\"", 2);
		json_fail(j, msg);
		return false;
	}
	if (f->seen & bit) {
		json_fail(j, "duplicate key");
		return false;
	}
	f->seen |= bit;
	if (!json_eat(j, ':'))
		return false;
	/* A value that starts with 'n' is null (or an error all the same). */
	if (json_peek(j) != 'n')
		f->given |= bit;
	switch (bit) {
	case SEEN_CMD: return parse_cmd(j, cfg);
	case SEEN_ENV: return parse_env(j, cfg);
	case SEEN_CWD: return parse_opt_str(j, &cfg->cwd, "\"cwd\" must not be empty");
	case SEEN_ROOT: return parse_opt_str(j, &cfg->root, "\"root\" must not be empty");
	default: return parse_opt_str(j, &cfg->upper, "\"upper\" must not be empty");
	}
}

/* The object's members, restricted to the `allowed` keys. */
static const char *parse(char *text, struct config *cfg, long *where,
			 unsigned allowed, struct found *f)
{
	struct json j;
	bool first = true;

	memset(cfg, 0, sizeof *cfg);
	cfg->cwd = "/";
	json_init(&j, text);
	*where = -1;
	if (json_eat(&j, '{')) {
		while (json_more(&j, '}', &first)) {
			char *key = json_str(&j);

			if (!key || !parse_member(&j, cfg, key, allowed, f))
				break;
		}
		json_end(&j);
	}
	if (j.err) {
		*where = j.p - j.base;
		return j.err;
	}
	return NULL;
}

const char *config_parse(char *text, struct config *cfg, long *where)
{
	struct found f = { 0, 0 };
	const char *msg = parse(text, cfg, where, KEYS_FILE, &f);

	if (msg)
		return msg;
	/* Half a workload in the file and the rest from `start` would be two
	 * sources for one thing: the workload comes whole from one of them. */
	if (!(f.seen & SEEN_CMD) && (f.given & (SEEN_ENV | SEEN_CWD)))
		return "\"env\" and \"cwd\" need \"cmd\" (without it the workload brings them)";
	if (cfg->upper && !cfg->root)
		return "\"upper\" needs \"root\"";
	return NULL;
}

const char *config_parse_workload(char *text, struct config *cfg, long *where)
{
	struct found f = { 0, 0 };
	const char *msg = parse(text, cfg, where, KEYS_WORKLOAD, &f);

	if (msg)
		return msg;
	if (!(f.seen & SEEN_CMD))
		return "\"cmd\" is required";
	return NULL;
}

void config_load(struct config *cfg)
{
	static char text[CONFIG_MAX_BYTES];
	long len = read_file(CONFIG_PATH, text, sizeof text), where;
	const char *msg;
	char num[24];

	if (len < 0)
		die_errno(errno, "read " CONFIG_PATH, NULL);
	if (strlen(text) != (size_t)len)
		die(CONFIG_PATH ": NUL byte in the file", NULL);
	msg = config_parse(text, cfg, &where);
	if (msg && where >= 0)
		die(CONFIG_PATH " (byte ", fmt_uint(num, (unsigned long)where), "): ", msg, NULL);
	if (msg)
		die(CONFIG_PATH ": ", msg, NULL);
}
