#include "session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "exec.h"
#include "loop.h"
#include "shutdown.h"
#include "util.h"

/* Slots below this keep their buffers when a session ends: reused pages
 * are already mapped (page faults are dear in the guest). */
#define KEEP_BUFFERS 8

static struct session sessions[ALL_SLOTS];
static size_t live;    /* sessions not refused */
static size_t lingering;

struct session *session_new(int conn)
{
	struct session *s = NULL;
	bool refused = live >= MAX_SESSIONS;
	unsigned slot;

	for (slot = 0; slot < ALL_SLOTS; slot++)
		if (!sessions[slot].used) {
			s = &sessions[slot];
			break;
		}
	if (!s)
		return NULL;
	if (!s->in) {
		s->in = malloc(IN_CAP + OUT_CAP);
		if (!s->in)
			return NULL;
		s->out = s->in + IN_CAP;
	}
	unsigned char *in = s->in, *out = s->out;
	uint32_t gen = s->gen + 1;

	memset(s, 0, sizeof *s);
	s->used = true;
	s->slot = slot;
	s->gen = gen;
	s->in = in;
	s->out = out;
	s->phase = PH_REQUEST;
	for (int i = 0; i < WT_COUNT; i++)
		s->fd[i] = -1;
	s->fd[WT_CONN] = conn;
	s->file = -1;
	s->mode = -1;
	for (int i = 0; i < MAX_TTYS; i++)
		s->tty[i] = -1;
	s->refused = refused;
	if (refused) {
		struct jw w = { .len = 0 };

		jw_raw(&w, "{\"error\":\"EBUSY\",\"message\":\"the agent serves 256 sessions at most\"}");
		send_json(s, 'F', &w);
		s->phase = PH_DONE;
	} else {
		live++;
	}
	return s;
}

struct session *session_get(unsigned slot, uint32_t gen)
{
	if (slot >= ALL_SLOTS || !sessions[slot].used || sessions[slot].gen != gen)
		return NULL;
	return &sessions[slot];
}

struct session *session_at(unsigned slot)
{
	return slot < ALL_SLOTS && sessions[slot].used ? &sessions[slot] : NULL;
}

struct session *session_by_pid(pid_t pid)
{
	for (unsigned i = 0; i < ALL_SLOTS; i++)
		if (sessions[i].used && sessions[i].pid == pid && !sessions[i].reaped)
			return &sessions[i];
	return NULL;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Closes everything but the connection. Closing a descriptor takes it out
 * of the epoll set: none is shared with another process (all are
 * close-on-exec, and a command's setup has exec'd before vfork returns). */
static void release(struct session *s)
{
	exec_abort(s);
	if (s->shutdown_after) {
		s->shutdown_after = false;
		shutdown_signal();
	}
	for (int i = WT_CONN + 1; i < WT_COUNT; i++) {
		close_fd(&s->fd[i]);
		s->have[i] = 0;
	}
	close_fd(&s->file);
	for (int i = 0; i < MAX_TTYS; i++)
		close_fd(&s->tty[i]);
}

void session_linger(struct session *s)
{
	if (shutdown(s->fd[WT_CONN], SHUT_WR) != 0) {
		s->doomed = true;
		return;
	}
	release(s);
	s->phase = PH_LINGER;
	s->linger_since = now_ms();
	lingering++;
}

size_t session_lingering(void)
{
	return lingering;
}

void session_sweep(uint64_t now)
{
	for (unsigned i = 0; i < ALL_SLOTS && lingering; i++) {
		struct session *s = &sessions[i];

		if (s->used && s->phase == PH_LINGER && now - s->linger_since >= LINGER_MS)
			session_drop(s);
	}
}

void session_drop(struct session *s)
{
	release(s);
	close_fd(&s->fd[WT_CONN]);
	if (s->phase == PH_LINGER)
		lingering--;
	if (!s->refused)
		live--;
	if (s->slot >= KEEP_BUFFERS) {
		free(s->in);
		s->in = s->out = NULL;
	}
	s->used = false;
	s->gen++;
	loop_session_ended();
}

void session_flush(struct session *s)
{
	while (s->out_off < s->out_len) {
		ssize_t n = write(s->fd[WT_CONN], s->out + s->out_off, s->out_len - s->out_off);

		if (n > 0) {
			s->out_off += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			if (n == 0 || errno != EAGAIN)
				s->doomed = true;
			return;
		}
	}
	s->out_off = s->out_len = 0;
}

bool out_has_room(const struct session *s)
{
	return s->out_len - s->out_off + FRAME_HDR + MIN_READ <= OUT_DATA_CAP;
}

/* Moves what is still queued to the start of `out`. */
static void out_compact(struct session *s)
{
	if (s->out_off == 0)
		return;
	memmove(s->out, s->out + s->out_off, s->out_len - s->out_off);
	s->out_len -= s->out_off;
	s->out_off = 0;
}

ssize_t out_read(struct session *s, int fd, char type, bool *full)
{
	struct iovec iov[OUT_DATA_CAP / (FRAME_HDR + FRAME_MAX)];
	unsigned char *p;
	size_t room, total = 0;
	int cnt = 0;
	ssize_t n;

	/* Whole frames rather than a short one at the end. */
	if (OUT_DATA_CAP - s->out_len < FRAME_HDR + FRAME_MAX)
		out_compact(s);
	room = OUT_DATA_CAP - s->out_len;
	p = s->out + s->out_len;
	/* Payload areas with a header's room before each: the headers are
	 * written once the length is known. */
	while (cnt < (int)(sizeof iov / sizeof iov[0]) && room >= FRAME_HDR + MIN_READ) {
		size_t len = room - FRAME_HDR < FRAME_MAX ? room - FRAME_HDR : FRAME_MAX;

		iov[cnt].iov_base = p + FRAME_HDR;
		iov[cnt++].iov_len = len;
		p += FRAME_HDR + len;
		room -= FRAME_HDR + len;
		total += len;
	}
	do
		n = readv(fd, iov, cnt);
	while (n < 0 && errno == EINTR);
	*full = n > 0 && (size_t)n == total;
	for (size_t left = n > 0 ? (size_t)n : 0, i = 0; left > 0; i++) {
		size_t len = left < iov[i].iov_len ? left : iov[i].iov_len;

		frame_header(s->out + s->out_len, type, (uint32_t)len);
		s->out_len += FRAME_HDR + len;
		left -= len;
	}
	return n;
}

void send_json(struct session *s, char type, const struct jw *w)
{
	if (s->out_len + FRAME_HDR + w->len > OUT_CAP)
		out_compact(s);
	if (s->out_len + FRAME_HDR + w->len > OUT_CAP) {
		s->doomed = true; /* cannot happen: control frames fit the slack */
		return;
	}
	frame_header(s->out + s->out_len, type, (uint32_t)w->len);
	memcpy(s->out + s->out_len + FRAME_HDR, w->buf, w->len);
	s->out_len += FRAME_HDR + w->len;
}

void send_fail(struct session *s, int err, const char *what)
{
	struct jw w = { .len = 0 };
	char msg[512];
	size_t n = strlen(what);
	const char *detail = strerror(err);

	if (n > 400)
		n = 400;
	memcpy(msg, what, n);
	msg[n] = '\0';
	if (n + strlen(detail) + 3 < sizeof msg) {
		strcat(msg, ": ");
		strcat(msg, detail);
	}
	jw_raw(&w, "{\"error\":");
	jw_str(&w, errno_name(err));
	jw_raw(&w, ",\"message\":");
	jw_str(&w, msg);
	jw_raw(&w, "}");
	send_json(s, 'F', &w);
	s->phase = PH_DONE;
	s->in_blocked = false;
}

void send_ok(struct session *s)
{
	struct jw w = { .len = 0 };

	jw_raw(&w, "{\"code\":0}");
	send_json(s, 'X', &w);
	s->phase = PH_DONE;
	s->in_blocked = false;
}

/* What the session waits for on descriptor k. */
static uint32_t wanted(const struct session *s, enum watch k)
{
	bool room = out_has_room(s), exec = s->phase == PH_EXEC;
	uint32_t e = 0;

	switch (k) {
	case WT_CONN:
		if (s->phase != PH_DONE && !s->in_blocked)
			e |= EPOLLIN;
		if (s->out_len > s->out_off || (s->phase == PH_READ && room))
			e |= EPOLLOUT;
		return e;
	case WT_OUT:
		if (exec && room && !s->out_done)
			e |= EPOLLIN;
		if (exec && s->pty && s->in_blocked)
			e |= EPOLLOUT;
		return e;
	case WT_ERR:
		return exec && room ? EPOLLIN : 0;
	default:
		return exec && s->in_blocked ? EPOLLOUT : 0;
	}
}

void session_sync(struct session *s)
{
	for (int k = 0; k < WT_COUNT; k++)
		if (s->fd[k] >= 0)
			loop_watch(s->fd[k], loop_tag(s, (enum watch)k), &s->have[k],
				   wanted(s, (enum watch)k));
}
