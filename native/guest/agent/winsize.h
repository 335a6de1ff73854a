/* Window sizes: the winsize op (`W` frames resize the boot command's
 * terminals, the serial ports) and the `W` of a pty exec. */
#ifndef STASIS_AGENT_WINSIZE_H
#define STASIS_AGENT_WINSIZE_H

#include <stddef.h>

#include "session.h"

/* Opens the terminals (opts.ttys; missing ones are skipped) and waits for
 * `W` frames until the host closes the session. */
void winsize_request(struct session *s);

enum fr winsize_frame(struct session *s, char type, const unsigned char *p, size_t len);

/* TIOCSWINSZ on fd from a `W` payload (cols u16 LE, rows u16 LE); the
 * kernel sends SIGWINCH to the terminal's foreground process group. */
void winsize_set(int fd, const unsigned char *p);

#endif
