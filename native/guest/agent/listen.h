/* Where the host reaches the agent: vsock port AGENT_PORT (any CID), or a
 * Unix socket for host-side tests; and the "agent ready" milestone. */
#ifndef STASIS_AGENT_LISTEN_H
#define STASIS_AGENT_LISTEN_H

/* A non-blocking listening socket, or -1 (with a message). */
int listen_vsock(unsigned port);
int listen_unix(const char *path);

/* Milestone 4 through /dev/port (port 0xf5), as /init reports its own. */
void milestone_agent_ready(void);

#endif
