#include "serial.h"

#include <errno.h>
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include "util.h"

/* Opens path as file descriptor `want`. */
static int open_as(const char *path, int flags, int want)
{
	int fd = open(path, flags);

	if (fd < 0)
		die_errno(errno, "open ", path, NULL);
	if (fd != want) {
		if (dup2(fd, want) < 0)
			die_errno(errno, "dup2 ", path, NULL);
		close(fd);
	}
	return want;
}

/* Raw mode: no echo, no line discipline, no output translation (\n stays
 * \n). CLOCAL so that nothing waits for a modem carrier. */
static void make_raw(int fd, const char *path)
{
	struct termios t;

	if (tcgetattr(fd, &t) != 0)
		die_errno(errno, "tcgetattr ", path, NULL);
	cfmakeraw(&t);
	t.c_cflag |= CLOCAL | CREAD;
	if (tcsetattr(fd, TCSANOW, &t) != 0)
		die_errno(errno, "tcsetattr ", path, NULL);
}

/* A serial port opened without O_NONBLOCK would wait for carrier detect
 * until CLOCAL is set, so open non-blocking, set raw mode (with CLOCAL),
 * then make the descriptor blocking again for the command. */
static void open_port(const char *path, int want)
{
	int fd = open_as(path, O_RDWR | O_NOCTTY | O_NONBLOCK, want);

	make_raw(fd, path);
	if (fcntl(fd, F_SETFL, 0) != 0)
		die_errno(errno, "fcntl ", path, NULL);
}

void serial_setup(void)
{
	/* ttyS0 first: from then on our own errors reach the right place. */
	open_port("/dev/ttyS0", 2);
	open_port("/dev/ttyS1", 1);
	open_as("/dev/null", O_RDONLY, 0);
}

void serial_drain(void)
{
	tcdrain(1);
	tcdrain(2);
}
