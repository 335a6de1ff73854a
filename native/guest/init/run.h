/* Starting the command and being PID 1 while it runs. */
#ifndef STASIS_INIT_RUN_H
#define STASIS_INIT_RUN_H

#include <sys/types.h>

#define STATUS_NOT_EXECUTABLE 126
#define STATUS_NOT_FOUND 127

/* Starts argv with envp in a new session. A name without '/' is looked up
 * in `path` (the command's PATH, may be NULL) as execvpe would. If it cannot
 * be executed the child prints why and exits 127 (not found) or 126. */
pid_t run_start(char *const argv[], char *const envp[], const char *path);

/* Reaps every child (orphans included) until `pid` exits; returns its
 * status: the exit code, or 128 + the signal that killed it. Every other
 * reaped child is passed to `other` (may be NULL) with its status. */
int run_wait(pid_t pid, void (*other)(pid_t pid, int status));

#endif
