/* Small helpers shared by every part of /init: error reporting, whole-file
 * reads and a bump allocator (PID 1 never frees anything). */
#ifndef STASIS_INIT_UTIL_H
#define STASIS_INIT_UTIL_H

#include <stddef.h>

/* Status reported when /init itself fails before the command runs. */
#define STATUS_SETUP_ERROR 125

/* Writes "stasis-init: error: <parts...>\n" to fd 2 in one write.
 * The list of string parts ends with NULL. */
void say_error(const char *first, ...) __attribute__((sentinel));

/* Prints "stasis-init: error: <parts...>: <strerror(err)>", reports
 * STATUS_SETUP_ERROR and never returns. The list ends with NULL. */
_Noreturn void die_errno(int err, const char *first, ...) __attribute__((sentinel));

/* Prints "stasis-init: error: <parts...>", reports STATUS_SETUP_ERROR and
 * never returns. The list ends with NULL. */
_Noreturn void die(const char *first, ...) __attribute__((sentinel));

/* Reads the whole file into buf and NUL-terminates it. Returns its length,
 * or -1 with errno set (EFBIG when it does not fit in cap - 1 bytes). */
long read_file(const char *path, char *buf, size_t cap);

/* Allocates n bytes that live for the rest of the run; dies when the
 * arena is exhausted. */
void *arena_alloc(size_t n);

/* Moves fd (close-on-exec) to the lowest free descriptor >= min, closing
 * the original; returns the new one, or -1 with errno set (fd closed). An
 * fd already >= min (or < 0) is returned as it is. */
int fd_move_above(int fd, int min);

/* Formats n in decimal into buf (at least 21 bytes); returns buf. */
char *fmt_uint(char *buf, unsigned long n);

#endif
