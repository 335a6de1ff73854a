/* /etc/machine-id, written by `start` when the host gives one (each VM its
 * own, even the forks of one snapshot). With --thaw-log it becomes a log
 * line instead (host-side tests must not touch the host's). */
#ifndef STASIS_AGENT_MACHINEID_H
#define STASIS_AGENT_MACHINEID_H

#include <stdbool.h>

#define MACHINE_ID_PATH "/etc/machine-id"

/* 32 lowercase hex digits, not all zero (the file's own format). */
bool machine_id_valid(const char *id);

/* Writes id and a newline to MACHINE_ID_PATH, mode 0444, replaced
 * atomically (or logs `machine-id <id>`). 0 or an errno, *what naming the
 * step that failed. */
int machine_id_write(const char *id, const char **what);

#endif
