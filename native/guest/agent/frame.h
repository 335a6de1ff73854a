/* Frames (docs/agent-protocol.md §2): type u8, length u32 LE, payload. */
#ifndef STASIS_AGENT_FRAME_H
#define STASIS_AGENT_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR 5
#define FRAME_MAX 65536u

enum frame_check { FRAME_NEED_MORE, FRAME_READY, FRAME_BAD };

/* Looks at the avail bytes at p: FRAME_BAD for a type the host may not
 * send or a length over FRAME_MAX (decided from the header alone),
 * FRAME_READY when the whole frame is there (*type, *len set). */
enum frame_check frame_check(const unsigned char *p, size_t avail, char *type, uint32_t *len);

/* Writes a header for a payload of len bytes at p. */
void frame_header(unsigned char *p, char type, uint32_t len);

#endif
