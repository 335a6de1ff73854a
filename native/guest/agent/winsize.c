#include "winsize.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>

void winsize_set(int fd, const unsigned char *p)
{
	struct winsize ws = {
		.ws_col = (unsigned short)(p[0] | p[1] << 8),
		.ws_row = (unsigned short)(p[2] | p[3] << 8),
	};

	ioctl(fd, TIOCSWINSZ, &ws);
}

void winsize_request(struct session *s)
{
	/* O_NONBLOCK: a serial port would otherwise wait for carrier. */
	for (size_t i = 0; i < opts.ntty; i++)
		s->tty[i] = open(opts.ttys[i], O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	s->phase = PH_WINSIZE;
}

enum fr winsize_frame(struct session *s, char type, const unsigned char *p, size_t len)
{
	if (type == 'R' || (type == 'W' && len != 4))
		return FR_DROP;
	if (type == 'W')
		for (size_t i = 0; i < MAX_TTYS; i++)
			if (s->tty[i] >= 0)
				winsize_set(s->tty[i], p);
	return FR_OK;
}
