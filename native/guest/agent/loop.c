#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <stdbool.h>
#include <unistd.h>

#include "dispatch.h"
#include "exec.h"
#include "frame.h"
#include "priority.h"
#include "session.h"
#include "util.h"

#define MAX_EVENTS 64
/* Tags of the loop's own descriptors (a slot no session has). */
#define SLOT_LOOP 0xffffffu
#define TAG_LISTEN (((uint64_t)SLOT_LOOP << 8) | 0)
#define TAG_SIGNAL (((uint64_t)SLOT_LOOP << 8) | 1)

static int ep = -1, listen_fd = -1, signal_fd = -1;
static uint32_t listen_have;
static bool listen_paused;
/* Sessions to step this round. A slot is listed once per session in it,
 * and a round makes at most MAX_EVENTS new sessions. */
static unsigned marked[ALL_SLOTS + MAX_EVENTS];
static size_t nmarked;

void loop_watch(int fd, uint64_t tag, uint32_t *have, uint32_t want)
{
	struct epoll_event ev = { .events = want, .data.u64 = tag };
	int op;

	if (want == *have)
		return;
	op = !*have ? EPOLL_CTL_ADD : want ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
	if (epoll_ctl(ep, op, fd, &ev) == 0 || (op == EPOLL_CTL_DEL && errno == ENOENT))
		*have = want;
	else
		say("epoll_ctl failed", NULL);
}

uint64_t loop_tag(const struct session *s, enum watch w)
{
	return (uint64_t)s->gen << 32 | (uint64_t)s->slot << 8 | (uint64_t)w;
}

void loop_mark(struct session *s)
{
	if (!s->dirty && nmarked < sizeof marked / sizeof marked[0]) {
		s->dirty = true;
		marked[nmarked++] = s->slot;
	}
}

void loop_session_ended(void)
{
	if (listen_paused) {
		listen_paused = false;
		loop_watch(listen_fd, TAG_LISTEN, &listen_have, EPOLLIN);
	}
}

/* Not even a spare slot: `F EBUSY` straight away (the frame is tiny, a
 * fresh socket takes it whole) and close. */
static void refuse(int fd)
{
	static const char json[] = "{\"error\":\"EBUSY\",\"message\":\"the agent serves 256 sessions at most\"}";
	unsigned char buf[FRAME_HDR + sizeof json];

	frame_header(buf, 'F', sizeof json - 1);
	for (size_t i = 0; i < sizeof json - 1; i++)
		buf[FRAME_HDR + i] = (unsigned char)json[i];
	(void)!write(fd, buf, sizeof buf - 1);
	close(fd);
}

static void accept_all(void)
{
	for (int i = 0; i < MAX_EVENTS; i++) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct session *s;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Wait for a session to end rather than spin. */
				listen_paused = true;
				loop_watch(listen_fd, TAG_LISTEN, &listen_have, 0);
			}
			return;
		}
		if (!(s = session_new(fd))) {
			refuse(fd);
			continue;
		}
		if (s->phase == PH_DONE)
			loop_mark(s); /* refused: the answer goes out in the step */
		else
			session_sync(s);
	}
}

/* SIGCHLD: reap every exited child, telling its session. */
static void reap(void)
{
	struct signalfd_siginfo si[8];
	int st;
	pid_t pid;

	(void)!read(signal_fd, si, sizeof si);
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		struct session *s = session_by_pid(pid);

		if (s) {
			exec_reaped(s, st);
			loop_mark(s);
		}
	}
}

static void session_event(uint64_t tag, uint32_t events)
{
	struct session *s = session_get((unsigned)(tag >> 8) & SLOT_LOOP, (uint32_t)(tag >> 32));
	enum watch w = (enum watch)(tag & 0xff);

	if (!s)
		return; /* ended earlier this round */
	switch (w) {
	case WT_CONN:
		dispatch_conn(s, events);
		break;
	case WT_OUT:
		if (s->pty && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
			dispatch_input_ready(s);
		if (!s->doomed && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			exec_output_ready(s, w);
		break;
	case WT_ERR:
		exec_output_ready(s, w);
		break;
	default:
		dispatch_input_ready(s);
		break;
	}
	if (s->doomed)
		session_drop(s);
	else
		loop_mark(s);
}

_Noreturn void loop_run(int fd)
{
	struct epoll_event events[MAX_EVENTS];
	uint32_t signal_have = 0;
	uint64_t last_sweep = 0;
	sigset_t chld;

	listen_fd = fd;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	ep = epoll_create1(EPOLL_CLOEXEC);
	signal_fd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (ep < 0 || signal_fd < 0) {
		say("epoll/signalfd: cannot set up the loop", NULL);
		exit(1);
	}
	loop_watch(signal_fd, TAG_SIGNAL, &signal_have, EPOLLIN);
	loop_watch(listen_fd, TAG_LISTEN, &listen_have, EPOLLIN);

	for (;;) {
		/* Lingering sessions are swept about once a second. */
		int n = epoll_wait(ep, events, MAX_EVENTS, session_lingering() ? 1000 : -1);

		for (int i = 0; i < n; i++) {
			uint64_t tag = events[i].data.u64;

			if (tag == TAG_LISTEN)
				accept_all();
			else if (tag == TAG_SIGNAL)
				reap();
			else
				session_event(tag, events[i].events);
		}
		for (size_t i = 0; i < nmarked; i++) {
			struct session *s = session_at(marked[i]);

			if (s && s->dirty) {
				s->dirty = false;
				dispatch_step(s);
			}
		}
		nmarked = 0;
		priority_round_end();
		if (session_lingering() && now_ms() - last_sweep >= 1000) {
			last_sweep = now_ms();
			session_sweep(last_sweep);
		}
	}
}
