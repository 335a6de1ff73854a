/* A command's environment: the agent's own (the boot environment /init
 * gave it), then the accepted secrets, then TERM for a pty, then the
 * request's `env`; later entries replace earlier ones of the same name. */
#ifndef STASIS_AGENT_ENVP_H
#define STASIS_AGENT_ENVP_H

#include <stddef.h>

/* One malloc'd block (free() it), NULL-terminated; NULL when out of
 * memory. term may be NULL; keys/values are the request's env. */
char **envp_build(const char *term, char *const *keys, char *const *values, size_t n);

/* Replaces the agent's own environment, the base of every command's (await
 * mode: the workload's, from /init). vars is NULL-terminated and kept. */
void envp_set_base(char **vars);

/* The value of name in envp, or NULL. */
const char *envp_get(char *const *envp, const char *name);

#endif
