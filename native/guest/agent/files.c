#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static bool absolute(struct session *s, const char *path)
{
	if (path && path[0] == '/')
		return true;
	send_fail(s, EINVAL, "\"path\" must be an absolute path");
	return false;
}

static void close_file(struct session *s)
{
	if (s->file >= 0) {
		close(s->file);
		s->file = -1;
	}
}

void write_request(struct session *s, const struct request *r)
{
	/* O_NONBLOCK: a FIFO without a reader must not stall the agent. */
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
		    (r->append ? O_APPEND : O_TRUNC);
	int fd;

	if (!absolute(s, r->path))
		return;
	/* Parents are made only when the first try says they are missing. */
	fd = open(r->path, flags, 0644);
	if (fd < 0 && errno == ENOENT && r->mkdirs) {
		if (!make_parents(r->path)) {
			send_fail(s, errno, r->path);
			return;
		}
		fd = open(r->path, flags, 0644);
	}
	if (fd < 0) {
		send_fail(s, errno, r->path);
		return;
	}
	s->file = fd;
	s->mode = r->mode;
	s->phase = PH_WRITE;
}

enum fr write_frame(struct session *s, char type, const unsigned char *p, size_t len)
{
	if (type == 'R')
		return FR_DROP;
	if (type != 'I')
		return FR_OK;
	if (len == 0) {
		int err = 0;

		if (s->mode >= 0 && fchmod(s->file, (mode_t)s->mode) != 0)
			err = errno;
		if (close(s->file) != 0 && !err)
			err = errno;
		s->file = -1;
		if (err)
			send_fail(s, err, "write");
		else
			send_ok(s);
		return FR_OK;
	}
	while (len) {
		ssize_t n = write(s->file, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			send_fail(s, n < 0 ? errno : EIO, "write");
			close_file(s);
			return FR_OK;
		}
		p += n;
		len -= (size_t)n;
	}
	return FR_OK;
}

void read_request(struct session *s, const struct request *r)
{
	struct jw w = { .len = 0 };
	struct stat st;
	int fd;

	if (!absolute(s, r->path))
		return;
	/* O_NONBLOCK: a FIFO or device that has nothing must not stall the
	 * agent (it ends the read with F EAGAIN instead). */
	fd = open(r->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) != 0) {
		send_fail(s, errno, r->path);
		if (fd >= 0)
			close(fd);
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		send_fail(s, EISDIR, r->path);
		return;
	}
	s->file = fd;
	s->phase = PH_READ;
	jw_raw(&w, "{\"size\":");
	jw_int(&w, (long long)st.st_size);
	jw_raw(&w, "}");
	send_json(s, 'A', &w);
}

bool read_step(struct session *s)
{
	bool full;
	ssize_t n;

	if (s->phase != PH_READ || !out_has_room(s))
		return false;
	n = out_read(s, s->file, 'O', &full);
	if (n > 0)
		return true;
	close_file(s);
	if (n == 0)
		send_ok(s);
	else
		send_fail(s, errno, "read");
	return true;
}
