/* The event loop: one epoll set holding the listening socket, a signalfd
 * for SIGCHLD and every session's descriptors (level-triggered). Each
 * round handles the ready descriptors, then steps every session that was
 * touched (flush output, make progress, re-register interest). */
#ifndef STASIS_AGENT_LOOP_H
#define STASIS_AGENT_LOOP_H

#include <stdint.h>

#include "session.h"

/* Serves connections on listen_fd forever. */
_Noreturn void loop_run(int listen_fd);

/* Makes epoll watch fd for `want` (0 = remove it), given what it has. */
void loop_watch(int fd, uint64_t tag, uint32_t *have, uint32_t want);

/* The epoll tag of a session's descriptor. */
uint64_t loop_tag(const struct session *s, enum watch w);

/* Schedules a session_step for the end of this round. */
void loop_mark(struct session *s);

/* A session ended: a listener paused for lack of descriptors resumes. */
void loop_session_ended(void);

#endif
