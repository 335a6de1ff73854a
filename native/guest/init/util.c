#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "report.h"

#define MAX_PARTS 16
#define ARENA_SIZE (1u << 20)

static void write_error(const char *first, va_list ap, const char *detail)
{
	static const char prefix[] = "stasis-init: error: ";
	struct iovec iov[MAX_PARTS + 4];
	int n = 0;

	iov[n++] = (struct iovec){ (void *)prefix, sizeof prefix - 1 };
	for (const char *s = first; s && n < MAX_PARTS + 1; s = va_arg(ap, const char *))
		iov[n++] = (struct iovec){ (void *)s, strlen(s) };
	if (detail) {
		iov[n++] = (struct iovec){ ": ", 2 };
		iov[n++] = (struct iovec){ (void *)detail, strlen(detail) };
	}
	iov[n++] = (struct iovec){ "\n", 1 };
	/* Nothing sensible to do if the error channel itself fails. */
	(void)!writev(2, iov, n);
}

void say_error(const char *first, ...)
{
	va_list ap;

	va_start(ap, first);
	write_error(first, ap, NULL);
	va_end(ap);
}

void die_errno(int err, const char *first, ...)
{
	va_list ap;

	va_start(ap, first);
	write_error(first, ap, strerror(err));
	va_end(ap);
	report_exit(STATUS_SETUP_ERROR);
}

void die(const char *first, ...)
{
	va_list ap;

	va_start(ap, first);
	write_error(first, ap, NULL);
	va_end(ap);
	report_exit(STATUS_SETUP_ERROR);
}

long read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;

	if (fd < 0)
		return -1;
	for (;;) {
		ssize_t got;

		if (len + 1 >= cap) {
			close(fd);
			errno = EFBIG;
			return -1;
		}
		got = read(fd, buf + len, cap - 1 - len);
		if (got == 0)
			break;
		if (got < 0) {
			int err = errno;

			if (err == EINTR)
				continue;
			close(fd);
			errno = err;
			return -1;
		}
		len += (size_t)got;
	}
	close(fd);
	buf[len] = '\0';
	return (long)len;
}

void *arena_alloc(size_t n)
{
	static _Alignas(16) unsigned char arena[ARENA_SIZE];
	static size_t used;
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (n > ARENA_SIZE - used)
		die_errno(ENOMEM, "arena", NULL);
	p = arena + used;
	used += n;
	return p;
}

int fd_move_above(int fd, int min)
{
	int moved, err;

	if (fd < 0 || fd >= min)
		return fd;
	moved = fcntl(fd, F_DUPFD_CLOEXEC, min);
	err = errno;
	close(fd);
	errno = err;
	return moved;
}

char *fmt_uint(char *buf, unsigned long n)
{
	char tmp[21];
	size_t i = 0, j = 0;

	do
		tmp[i++] = (char)('0' + n % 10);
	while ((n /= 10) != 0);
	while (i)
		buf[j++] = tmp[--i];
	buf[j] = '\0';
	return buf;
}
