/* The exec op: a command with pipes or under a pty, its frames, its
 * output, its end. exec_pipes.c and exec_pty.c set up the descriptors. */
#ifndef STASIS_AGENT_EXEC_H
#define STASIS_AGENT_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#include "request.h"
#include "session.h"
#include "spawn.h"

/* Starts the command: `A {"pid":n}`, or `F` when it cannot start. */
void exec_request(struct session *s, const struct request *r);

/* An I, W or K frame for the running command. */
enum fr exec_frame(struct session *s, char type, const unsigned char *p, size_t len);

/* Output descriptor k (WT_OUT / WT_ERR) is ready: reads once. */
void exec_output_ready(struct session *s, enum watch k);

/* After the exit: drains what the command left and queues `X`. True when
 * it made progress. */
bool exec_step(struct session *s);

/* The command exited (its waitpid status). */
void exec_reaped(struct session *s, int wstatus);

/* The host went away: SIGKILL (pipes) or SIGHUP (pty) to the command's
 * process group, unless it has been reaped already. */
void exec_abort(struct session *s);

/* exec_pipes.c: stdout and stderr pipes, a stdin pipe when with_stdin
 * (else /dev/null). The agent's ends (non-blocking) go to s->fd[], the
 * command's to sp->fd[]. 0 or an errno. */
int pipes_open(struct session *s, bool with_stdin, struct spawn *sp);
void pipes_close_child_ends(struct spawn *sp);

/* exec_pty.c: a pty of cols x rows; the master (non-blocking) becomes
 * s->fd[WT_OUT], the slave the command's 0, 1, 2 and controlling tty.
 * 0 or an errno. */
int pty_open(struct session *s, unsigned cols, unsigned rows, struct spawn *sp);
void pty_close_child_end(struct spawn *sp);

#endif
