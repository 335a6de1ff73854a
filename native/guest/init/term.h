/* SIGTERM to /init (the agent's `shutdown`, or anyone in the guest) is
 * forwarded to the command's process group: the command was started with
 * setsid, so its pgid is its pid. The VM ends when the command exits, as
 * always. */
#ifndef STASIS_INIT_TERM_H
#define STASIS_INIT_TERM_H

#include <sys/types.h>

/* Installs the handler (PID 1 gets no signal it does not handle). A
 * SIGTERM that arrives before the command runs is kept for it. */
void term_install(void);

/* From now on SIGTERM goes to the process group `pid`. */
void term_forward_to(pid_t pid);

/* While /init waits for its workload there is no command to keep a
 * SIGTERM for: from now on a SIGTERM interrupts blocking reads (EINTR),
 * and term_requested() tells the reader it was a stop request. */
void term_interrupt_reads(void);

/* A SIGTERM has arrived. */
int term_requested(void);

#endif
