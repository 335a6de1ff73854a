/* The `secrets` op: KEY=VALUE pairs that join the environment of every
 * later exec, also written to <run dir>/secrets (0600, replaced
 * atomically). */
#ifndef STASIS_AGENT_SECRETS_H
#define STASIS_AGENT_SECRETS_H

#include <stddef.h>

#include "request.h"
#include "session.h"

/* Handles the request: queues `X {"code":0,"accepted":n}` (or `F` when
 * the file cannot be written). */
void secrets_request(struct session *s, const struct request *r);

/* The accepted pairs as "KEY=VALUE" strings (*n of them). */
char *const *secrets_vars(size_t *n);

#endif
