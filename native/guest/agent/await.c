#include "await.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

static bool pending;

bool await_setup(void)
{
	for (int fd = AWAIT_WORKLOAD_FD; fd <= AWAIT_ANSWER_FD; fd++) {
		int flags = fcntl(fd, F_GETFL);

		if (flags < 0) {
			say("--await-workload needs the workload pipe on descriptor 3 and the "
			    "answer pipe on descriptor 4", NULL);
			return false;
		}
		/* Before anything could start a command. */
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	}
	pending = true;
	return true;
}

bool await_pending(void)
{
	return pending;
}

/* Waits for events on fd until the deadline: 0, or ETIMEDOUT. */
static int wait_for(int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		uint64_t now = now_ms();
		int n;

		if (now >= deadline)
			return ETIMEDOUT;
		n = poll(&p, 1, (int)(deadline - now));
		if (n > 0)
			return 0; /* ready, or hung up: the read or write tells */
		if (n < 0 && errno != EINTR)
			return errno;
	}
}

static int send_workload(const char *p, size_t n, uint64_t deadline)
{
	while (n) {
		ssize_t w = write(AWAIT_WORKLOAD_FD, p, n);
		int err;

		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
			return errno;
		} else if ((err = wait_for(AWAIT_WORKLOAD_FD, POLLOUT, deadline)) != 0) {
			return err;
		}
	}
	return 0;
}

static int read_answer(char **answer, size_t *len, uint64_t deadline)
{
	size_t cap = 4096;
	char *buf = malloc(cap);

	*len = 0;
	if (!buf)
		return ENOMEM;
	for (;;) {
		ssize_t r;
		int err;

		if (*len + 1 == cap) {
			char *more = cap < AWAIT_ANSWER_MAX ? realloc(buf, cap * 2) : NULL;

			if (!more) {
				free(buf);
				return cap < AWAIT_ANSWER_MAX ? ENOMEM : E2BIG;
			}
			buf = more;
			cap *= 2;
		}
		r = read(AWAIT_ANSWER_FD, buf + *len, cap - 1 - *len);
		if (r > 0) {
			*len += (size_t)r;
			continue;
		}
		if (r == 0)
			break;
		if (errno != EAGAIN && errno != EINTR)
			err = errno;
		else
			err = wait_for(AWAIT_ANSWER_FD, POLLIN, deadline);
		if (err) {
			free(buf);
			return err;
		}
	}
	buf[*len] = '\0';
	*answer = buf;
	return 0;
}

int await_handoff(const char *workload, size_t len, char **answer, size_t *answer_len,
		  const char **what)
{
	uint64_t deadline = now_ms() + AWAIT_TIMEOUT_MS;
	int err;

	pending = false;
	err = send_workload(workload, len, deadline);
	/* Closing is what tells /init the workload is complete. */
	close(AWAIT_WORKLOAD_FD);
	if (err) {
		*what = err == ETIMEDOUT ? "/init did not take the workload within 10 s"
					 : "hand the workload to /init";
	} else if ((err = read_answer(answer, answer_len, deadline)) != 0) {
		*what = err == ETIMEDOUT ? "/init did not answer within 10 s"
					 : "read the answer of /init";
	}
	close(AWAIT_ANSWER_FD);
	return err == ETIMEDOUT ? EIO : err;
}
