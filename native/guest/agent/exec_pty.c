#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "exec.h"

#define DEFAULT_COLS 80
#define DEFAULT_ROWS 24

/* The slave of master: TIOCGPTPEER opens it without a path lookup (Linux
 * 4.13+); otherwise through /dev/pts/<n> (formatted here: ptsname_r would
 * pull printf into the binary). */
static int open_slave(int master)
{
	char name[32] = "/dev/pts/", digits[12];
	unsigned n;
	size_t i = 0, len = 9;
	int fd = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd >= 0 || (errno != EINVAL && errno != ENOTTY))
		return fd;
	if (ioctl(master, TIOCGPTN, &n) != 0)
		return -1;
	do
		digits[i++] = (char)('0' + n % 10);
	while ((n /= 10) != 0);
	while (i)
		name[len++] = digits[--i];
	name[len] = '\0';
	return open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
}

int pty_open(struct session *s, unsigned cols, unsigned rows, struct spawn *sp)
{
	struct winsize ws = {
		.ws_row = (unsigned short)(rows ? rows : DEFAULT_ROWS),
		.ws_col = (unsigned short)(cols ? cols : DEFAULT_COLS),
	};
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK), slave, err;

	if (master < 0)
		return errno;
	if (grantpt(master) != 0 || unlockpt(master) != 0 ||
	    ioctl(master, TIOCSWINSZ, &ws) != 0 || (slave = open_slave(master)) < 0) {
		err = errno;
		close(master);
		return err;
	}
	s->pty = true;
	s->fd[WT_OUT] = master;
	sp->fd[0] = sp->fd[1] = sp->fd[2] = slave;
	sp->ctty = slave;
	return 0;
}

void pty_close_child_end(struct spawn *sp)
{
	close(sp->fd[0]);
}
