/* The agent's own scheduling. Every context switch and syscall is dear in
 * the guest, so while a command streams output through a pipe the agent
 * should take it in big reads rather than wake for each small write: it
 * then runs SCHED_BATCH at nice 5. A woken batch task does not preempt
 * the running one, and the lower weight keeps the timer tick from handing
 * the CPU to the agent as soon as the writer has used its slice, so the
 * command runs until its (1 MiB) pipe is full or its share is used.
 * Otherwise the agent runs SCHED_OTHER at nice 0, as quick to answer as
 * any process (a busy guest would otherwise slow every exec and every
 * keystroke of a pty session). */
#ifndef STASIS_AGENT_PRIORITY_H
#define STASIS_AGENT_PRIORITY_H

#include <stdbool.h>

/* A running command's pipe gave a read of at least this many bytes. */
#define STREAM_READ 4096

/* A pipe read of a running command brought STREAM_READ bytes or more. */
void priority_streaming(void);

/* The end of a loop round: batch if the round streamed, else normal. */
void priority_round_end(void);

/* Run in a command's vfork child: back to SCHED_OTHER, nice 0, if the
 * agent is batch now (SCHED_RESET_ON_FORK would not do it: it resets only
 * RT and deadline policies and a negative nice). */
void priority_reset_child(void);

#endif
