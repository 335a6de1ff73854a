#include "envp.h"

#include <stdlib.h>
#include <string.h>

#include "secrets.h"

extern char **environ;

/* Length of the name part of "NAME=VALUE". */
static size_t name_len(const char *var)
{
	const char *eq = strchr(var, '=');

	return eq ? (size_t)(eq - var) : strlen(var);
}

/* Puts var into v[0..*n), replacing the entry with the same name. */
static void put(char **v, size_t *n, char *var)
{
	size_t len = name_len(var);

	for (size_t i = 0; i < *n; i++)
		if (strncmp(v[i], var, len) == 0 && v[i][len] == '=') {
			v[i] = var;
			return;
		}
	v[(*n)++] = var;
}

char **envp_build(const char *term, char *const *keys, char *const *values, size_t n)
{
	size_t nsecrets, nenv = 0, bytes = 0, count = 0;
	char *const *secrets = secrets_vars(&nsecrets);
	char **v, *w;

	while (environ && environ[nenv])
		nenv++;
	if (term)
		bytes += strlen(term) + 6;
	for (size_t i = 0; i < n; i++)
		bytes += strlen(keys[i]) + strlen(values[i]) + 2;
	v = malloc((nenv + nsecrets + n + 2) * sizeof *v + bytes);
	if (!v)
		return NULL;
	w = (char *)(v + nenv + nsecrets + n + 2);
	/* The agent's own names are unique already. */
	memcpy(v, environ, nenv * sizeof *v);
	count = nenv;
	for (size_t i = 0; i < nsecrets; i++)
		put(v, &count, secrets[i]);
	if (term) {
		char *var = w;

		w = stpcpy(stpcpy(w, "TERM="), term) + 1;
		put(v, &count, var);
	}
	for (size_t i = 0; i < n; i++) {
		char *var = w;

		w = stpcpy(stpcpy(stpcpy(w, keys[i]), "="), values[i]) + 1;
		put(v, &count, var);
	}
	v[count] = NULL;
	return v;
}

void envp_set_base(char **vars)
{
	environ = vars;
}

const char *envp_get(char *const *envp, const char *name)
{
	size_t len = strlen(name);

	for (; *envp; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			return *envp + len + 1;
	return NULL;
}
