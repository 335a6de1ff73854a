#include "env.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "util.h"

#define ENV_FILE_MAX_BYTES (64u * 1024)

static const char default_path[] =
	"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

static bool same_key(const char *var, const char *key, size_t key_len)
{
	return strncmp(var, key, key_len) == 0 && var[key_len] == '=';
}

void env_set(struct env *env, const char *key, size_t key_len, const char *value)
{
	size_t value_len = strlen(value), i;
	char *var = arena_alloc(key_len + value_len + 2);

	memcpy(var, key, key_len);
	var[key_len] = '=';
	memcpy(var + key_len + 1, value, value_len + 1);
	for (i = 0; i < env->count; i++)
		if (same_key(env->vars[i], key, key_len))
			break;
	if (i == env->count) {
		if (env->count == ENV_MAX)
			die_errno(E2BIG, "environment", NULL);
		env->count++;
	}
	env->vars[i] = var;
	env->vars[env->count] = NULL;
}

const char *env_get(const struct env *env, const char *key)
{
	size_t key_len = strlen(key);

	for (size_t i = 0; i < env->count; i++)
		if (same_key(env->vars[i], key, key_len))
			return env->vars[i] + key_len + 1;
	return NULL;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool is_name_char(char c, bool first)
{
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (!first && c >= '0' && c <= '9');
}

/* One line, already cut at its newline. */
static void apply_line(struct env *env, char *line)
{
	char *key, *value, *end;
	size_t key_len = 0, len;

	while (is_space(*line))
		line++;
	if (*line == '\0' || *line == '#')
		return;
	if (strncmp(line, "export", 6) == 0 && (line[6] == ' ' || line[6] == '\t'))
		for (line += 6; is_space(*line); line++)
			;
	key = line;
	while (is_name_char(key[key_len], key_len == 0))
		key_len++;
	if (key_len == 0 || key[key_len] != '=')
		return;
	value = key + key_len + 1;
	len = strlen(value);
	while (len > 0 && is_space(value[len - 1]))
		len--;
	end = value + len;
	if (len >= 2 && (value[0] == '"' || value[0] == '\'') && end[-1] == value[0]) {
		value++;
		end--;
	}
	*end = '\0';
	env_set(env, key, key_len, value);
}

void env_apply_text(struct env *env, char *text)
{
	while (*text) {
		char *nl = strchr(text, '\n');

		if (nl)
			*nl = '\0';
		apply_line(env, text);
		if (!nl)
			break;
		text = nl + 1;
	}
}

void env_build(struct env *env, const struct config *cfg)
{
	static char text[ENV_FILE_MAX_BYTES];

	env->count = 0;
	env->vars[0] = NULL;
	env_set(env, "PATH", 4, default_path);
	env_set(env, "HOME", 4, "/root");
	env_set(env, "TERM", 4, "linux");

	if (read_file(ENV_FILE, text, sizeof text) >= 0)
		env_apply_text(env, text);
	else if (errno != ENOENT)
		die_errno(errno, "read " ENV_FILE, NULL);

	for (size_t i = 0; i < cfg->env_count; i++)
		env_set(env, cfg->env_key[i], strlen(cfg->env_key[i]), cfg->env_value[i]);
}
