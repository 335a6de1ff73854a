/* The command's environment: defaults, then the root's /etc/environment,
 * then the config's "env"; later layers win. */
#ifndef STASIS_INIT_ENV_H
#define STASIS_INIT_ENV_H

#include <stddef.h>

#include "config.h"

#define ENV_MAX 2048
#define ENV_FILE "/etc/environment"

struct env {
	char *vars[ENV_MAX + 1]; /* "KEY=VALUE", NULL-terminated */
	size_t count;
};

/* Sets key (key_len bytes) to value, replacing an earlier value. */
void env_set(struct env *env, const char *key, size_t key_len, const char *value);

/* The value of key, or NULL. */
const char *env_get(const struct env *env, const char *key);

/* Applies the KEY=VALUE lines of /etc/environment-style text (modified in
 * place): blank lines and # comments are skipped, an `export ` prefix and
 * one pair of surrounding quotes are dropped, malformed lines ignored. */
void env_apply_text(struct env *env, char *text);

/* Builds the full environment for the command, reading ENV_FILE from the
 * current root (a missing file is fine). */
void env_build(struct env *env, const struct config *cfg);

#endif
