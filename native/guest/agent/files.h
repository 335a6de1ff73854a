/* The write and read ops: a file from `I` frames, a file as `O` frames. */
#ifndef STASIS_AGENT_FILES_H
#define STASIS_AGENT_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "request.h"
#include "session.h"

/* Opens the file for writing (creating parents unless mkdirs is false);
 * `F` when it cannot. */
void write_request(struct session *s, const struct request *r);

/* `I` frames are appended; the empty one applies the mode and answers
 * `X {"code":0}` (or `F`). */
enum fr write_frame(struct session *s, char type, const unsigned char *p, size_t len);

/* Opens the file: `A {"size":n}`, or `F`. */
void read_request(struct session *s, const struct request *r);

/* Reads the next chunk into `O` frames while there is room; `X` at the
 * end. True when it made progress. */
bool read_step(struct session *s);

#endif
