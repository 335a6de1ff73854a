#include "dispatch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "exec.h"
#include "files.h"
#include "request.h"
#include "secrets.h"
#include "shutdown.h"
#include "start.h"
#include "thaw.h"
#include "winsize.h"

/* Rounds of flush + progress per step before other sessions get a turn. */
#define STEP_ROUNDS 16

static void ping(struct session *s)
{
	struct jw w = { .len = 0 };

	jw_raw(&w, "{\"version\":1}");
	send_json(s, 'A', &w);
	send_ok(s);
}

/* The `R` frame: parse it, start the op. */
static enum fr request(struct session *s, const unsigned char *p, size_t len)
{
	struct request r;
	char *text = malloc(len + 1);

	if (!text)
		return FR_DROP;
	memcpy(text, p, len);
	text[len] = '\0';
	if (strlen(text) != len || !request_parse(text, &r) || !request_types_ok(&r)) {
		if (strlen(text) == len)
			request_free(&r);
		free(text);
		return FR_DROP;
	}
	switch (r.op) {
	case OP_PING: ping(s); break;
	case OP_EXEC: exec_request(s, &r); break;
	case OP_WRITE: write_request(s, &r); break;
	case OP_READ: read_request(s, &r); break;
	case OP_SECRETS: secrets_request(s, &r); break;
	case OP_WINSIZE: winsize_request(s); break;
	case OP_SHUTDOWN: shutdown_request(s); break;
	case OP_THAW: thaw_request(s, &r); break;
	case OP_START: start_request(s, &r); break;
	default: send_fail(s, EINVAL, "unknown op"); break;
	}
	request_free(&r);
	free(text);
	return FR_OK;
}

static enum fr frame(struct session *s, char type, const unsigned char *p, size_t len)
{
	switch (s->phase) {
	case PH_REQUEST:
		return type == 'R' ? request(s, p, len) : FR_DROP;
	case PH_EXEC:
		return exec_frame(s, type, p, len);
	case PH_WRITE:
		return write_frame(s, type, p, len);
	case PH_WINSIZE:
		return winsize_frame(s, type, p, len);
	case PH_READ:
		return type == 'R' ? FR_DROP : FR_OK;
	default:
		return FR_OK; /* the answer is queued: the rest is ignored */
	}
}

/* Handles every whole frame buffered; keeps a partial one (moved to the
 * start of `in`) and one that waits for the command's input. */
static void frames(struct session *s)
{
	while (!s->doomed && !s->in_blocked) {
		char type;
		uint32_t len;
		enum frame_check c = frame_check(s->in + s->in_pos, s->in_len - s->in_pos, &type, &len);
		enum fr r;

		if (c == FRAME_NEED_MORE)
			break;
		if (c == FRAME_BAD) {
			s->doomed = true;
			return;
		}
		r = frame(s, type, s->in + s->in_pos + FRAME_HDR, len);
		if (r == FR_DROP) {
			s->doomed = true;
			return;
		}
		if (r == FR_BLOCKED) {
			s->in_blocked = true;
			break;
		}
		s->in_pos += FRAME_HDR + len;
		s->in_off = 0;
	}
	if (s->in_pos == s->in_len) {
		s->in_pos = s->in_len = 0;
	} else if (!s->in_blocked && s->in_pos > 0) {
		memmove(s->in, s->in + s->in_pos, s->in_len - s->in_pos);
		s->in_len -= s->in_pos;
		s->in_pos = 0;
	}
}

void dispatch_conn(struct session *s, uint32_t events)
{
	ssize_t n;

	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	if (s->phase == PH_LINGER) {
		/* Discard until the host closes. */
		n = read(s->fd[WT_CONN], s->in, IN_CAP);
		if (n > 0)
			s->discarded += (size_t)n;
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
		    s->discarded > LINGER_MAX_BYTES)
			s->doomed = true;
		return;
	}
	if (s->phase == PH_DONE || s->in_blocked || s->in_len == IN_CAP) {
		/* Not reading: only a hangup gets here, and the host is gone.
		 * (A full buffer holds a whole frame, so it is a blocked one.) */
		if (events & (EPOLLHUP | EPOLLERR))
			s->doomed = true;
		return;
	}
	n = read(s->fd[WT_CONN], s->in + s->in_len, IN_CAP - s->in_len);
	if (n > 0) {
		s->in_len += (size_t)n;
		frames(s);
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		/* The host closed (or reset) the connection: whatever runs for
		 * this session is stopped. */
		s->doomed = true;
	}
}

void dispatch_input_ready(struct session *s)
{
	if (!s->in_blocked)
		return;
	s->in_blocked = false;
	frames(s);
}

void dispatch_step(struct session *s)
{
	for (int i = 0; i < STEP_ROUNDS; i++) {
		bool progress;

		session_flush(s);
		if (s->doomed)
			break;
		progress = exec_step(s) || read_step(s);
		if (s->phase == PH_DONE && s->out_off == s->out_len) {
			session_linger(s); /* all said */
			break;
		}
		if (!progress)
			break;
	}
	if (s->doomed) {
		session_drop(s);
		return;
	}
	session_sync(s);
}
