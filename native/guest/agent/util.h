/* Small helpers: diagnostics, errno names for F frames, making parents. */
#ifndef STASIS_AGENT_UTIL_H
#define STASIS_AGENT_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes "stasis-agent: <parts...>\n" to fd 2 in one write. The list of
 * string parts ends with NULL. */
void say(const char *first, ...) __attribute__((sentinel));

/* "ENOENT" for ENOENT, ...; "EIO" for anything unlisted. EOPNOTSUPP is
 * the same number as ENOTSUP on Linux and named "ENOTSUP". */
const char *errno_name(int err);

/* Creates the missing parent directories of path (mode 0755). False with
 * errno set when one cannot be made. */
bool make_parents(const char *path);

/* Writes all n bytes of p to a blocking fd (retrying EINTR and short
 * writes); false with errno set on failure. */
bool write_all(int fd, const char *p, size_t n);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t now_ms(void);

#endif
