#include "frame.h"

static bool host_type(char t)
{
	return t == 'R' || t == 'I' || t == 'W' || t == 'K';
}

enum frame_check frame_check(const unsigned char *p, size_t avail, char *type, uint32_t *len)
{
	uint32_t n;

	if (avail < 1)
		return FRAME_NEED_MORE;
	if (!host_type((char)p[0]))
		return FRAME_BAD;
	if (avail < FRAME_HDR)
		return FRAME_NEED_MORE;
	n = (uint32_t)p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 24;
	if (n > FRAME_MAX)
		return FRAME_BAD;
	if (avail - FRAME_HDR < n)
		return FRAME_NEED_MORE;
	*type = (char)p[0];
	*len = n;
	return FRAME_READY;
}

void frame_header(unsigned char *p, char type, uint32_t len)
{
	p[0] = (unsigned char)type;
	p[1] = (unsigned char)len;
	p[2] = (unsigned char)(len >> 8);
	p[3] = (unsigned char)(len >> 16);
	p[4] = (unsigned char)(len >> 24);
}
