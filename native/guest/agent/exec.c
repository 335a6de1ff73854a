#include "exec.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "envp.h"
#include "priority.h"
#include "winsize.h"

/* What is read after the exit, per stream, at most: grandchildren that
 * keep writing must not hold the exit frame back for ever. */
#define DRAIN_MAX (1u << 20)
#define DEFAULT_TERM "xterm-256color"

enum { R_DATA, R_AGAIN, R_FULL, R_END };

static char *const shells[] = { "/bin/bash", "/bin/sh" };

static const char *bad_request(const struct request *r)
{
	if (r->has_argv && r->argv.n == 0)
		return "\"argv\" must not be empty";
	if (r->cwd && r->cwd[0] != '/')
		return "\"cwd\" must be an absolute path";
	for (size_t i = 0; i < r->env_keys.n; i++)
		if (r->env_keys.v[i][0] == '\0' || strchr(r->env_keys.v[i], '='))
			return "\"env\" names must be non-empty and without '='";
	return NULL;
}

static void close_fd(struct session *s, enum watch k)
{
	if (s->fd[k] >= 0) {
		close(s->fd[k]);
		s->fd[k] = -1;
		s->have[k] = 0;
	}
}

static void close_command_fds(struct session *s)
{
	close_fd(s, WT_OUT);
	close_fd(s, WT_ERR);
	close_fd(s, WT_IN);
	s->pty = false;
}

/* Why the child could not start: "<step> <cwd>" for the cwd. */
static void fail_setup(struct session *s, const struct spawn *sp, int err)
{
	char msg[300];
	const char *cwd = sp->cwd ? sp->cwd : "/";

	if (strcmp(sp->failed, "cwd") == 0 && strlen(cwd) < sizeof msg - 5)
		stpcpy(stpcpy(msg, "cwd "), cwd);
	else
		stpcpy(msg, sp->failed);
	send_fail(s, err, msg);
}

void exec_request(struct session *s, const struct request *r)
{
	struct spawn sp = { .cwd = r->cwd, .ctty = -1 };
	char *shell_argv[5] = { NULL, "-l", "-i", NULL, NULL };
	char **envp, **paths = NULL;
	const char *bad = bad_request(r);
	struct jw w = { .len = 0 };
	pid_t pid;
	int err;

	if (bad) {
		send_fail(s, EINVAL, bad);
		return;
	}
	envp = envp_build(r->pty ? (r->term ? r->term : DEFAULT_TERM) : NULL,
			  r->env_keys.v, r->env_values.v, r->env_keys.n);
	if (!envp) {
		send_fail(s, ENOMEM, "exec");
		return;
	}
	sp.envp = envp;
	if (r->has_argv) {
		paths = spawn_candidates(r->argv.v[0], envp_get(envp, "PATH"), &sp.npaths);
		sp.paths = paths;
		sp.argv = r->argv.v;
	} else {
		if (r->cmd) {
			shell_argv[2] = "-c";
			shell_argv[3] = (char *)r->cmd;
		}
		sp.paths = shells;
		sp.npaths = 2;
		sp.shell = true;
		sp.argv = shell_argv;
	}
	if (!sp.paths)
		err = ENOMEM;
	else
		err = r->pty ? pty_open(s, r->cols, r->rows, &sp) : pipes_open(s, r->stdin, &sp);
	if (err) {
		free(envp);
		free(paths);
		send_fail(s, err, r->pty ? "open a pty" : "make pipes");
		return;
	}
	pid = spawn_run(&sp);
	err = errno;
	if (s->pty)
		pty_close_child_end(&sp);
	else
		pipes_close_child_ends(&sp);
	free(envp);
	free(paths);
	if (pid < 0 || sp.err) {
		close_command_fds(s);
		if (pid < 0)
			send_fail(s, err, "fork");
		else
			fail_setup(s, &sp, sp.err);
		return;
	}
	s->pid = pid;
	s->phase = PH_EXEC;
	jw_raw(&w, "{\"pid\":");
	jw_int(&w, pid);
	jw_raw(&w, "}");
	send_json(s, 'A', &w);
}

/* Writes (the rest of) an I frame to the command's input. */
static enum fr input(struct session *s, const unsigned char *p, size_t len)
{
	int fd = s->pty ? (s->input_dead ? -1 : s->fd[WT_OUT]) : s->fd[WT_IN];

	if (fd < 0)
		return FR_OK; /* no input wanted, or it has ended: dropped */
	if (len == 0) {
		if (!s->pty)
			close_fd(s, WT_IN); /* end of input */
		return FR_OK;
	}
	while (s->in_off < len) {
		ssize_t n = write(fd, p + s->in_off, len - s->in_off);

		if (n > 0) {
			s->in_off += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && errno == EAGAIN) {
			return FR_BLOCKED;
		} else {
			/* The command no longer reads it: drop the rest. */
			if (s->pty)
				s->input_dead = true;
			else
				close_fd(s, WT_IN);
			return FR_OK;
		}
	}
	return FR_OK;
}

enum fr exec_frame(struct session *s, char type, const unsigned char *p, size_t len)
{
	switch (type) {
	case 'I':
		return input(s, p, len);
	case 'W':
		if (len != 4)
			return FR_DROP;
		if (s->pty)
			winsize_set(s->fd[WT_OUT], p);
		return FR_OK;
	case 'K':
		if (len != 1)
			return FR_DROP;
		if (!s->reaped)
			kill(-s->pid, p[0]);
		return FR_OK;
	default:
		return FR_DROP; /* a second R */
	}
}

static bool output_open(const struct session *s, enum watch k)
{
	return s->fd[k] >= 0 && !(s->pty && s->out_done);
}

/* No more output on k. The pty master stays open (it is the input too). */
static void output_end(struct session *s, enum watch k)
{
	if (s->pty)
		s->out_done = true;
	else
		close_fd(s, k);
}

static int read_output(struct session *s, enum watch k)
{
	bool *more = &s->more[k == WT_ERR];
	ssize_t n;

	if (!out_has_room(s))
		return R_FULL;
	n = out_read(s, s->fd[k], k == WT_ERR ? 'E' : 'O', more);
	if (n > 0) {
		if (s->reaped)
			s->drained[k == WT_ERR] += (size_t)n;
		else if (!s->pty && n >= STREAM_READ)
			priority_streaming();
		return R_DATA;
	}
	if (n < 0 && errno == EAGAIN)
		return R_AGAIN;
	return R_END; /* EOF, or EIO: every holder of the pty slave is gone */
}

void exec_output_ready(struct session *s, enum watch k)
{
	if (s->phase == PH_EXEC && output_open(s, k) && read_output(s, k) == R_END)
		output_end(s, k);
}

static void finish(struct session *s)
{
	struct jw w = { .len = 0 };

	close_fd(s, WT_IN);
	jw_raw(&w, "{\"code\":");
	if (WIFSIGNALED(s->wstatus)) {
		jw_int(&w, 128 + WTERMSIG(s->wstatus));
		jw_raw(&w, ",\"signal\":");
		jw_int(&w, WTERMSIG(s->wstatus));
	} else {
		jw_int(&w, WEXITSTATUS(s->wstatus));
	}
	jw_raw(&w, "}");
	send_json(s, 'X', &w);
	s->phase = PH_DONE;
	s->in_blocked = false;
}

/* While the command runs: reads again what filled the room last time
 * (more is likely waiting) once the flush has made room, rather than
 * going through epoll_wait for it. */
static bool pump(struct session *s)
{
	bool progress = false;

	for (enum watch k = WT_OUT; k <= WT_ERR; k++) {
		int r;

		if (!s->more[k == WT_ERR] || !output_open(s, k))
			continue;
		r = read_output(s, k);
		if (r == R_DATA)
			progress = true;
		else if (r == R_END)
			output_end(s, k);
		if (r == R_FULL)
			break;
	}
	return progress;
}

bool exec_step(struct session *s)
{
	bool progress = false;

	if (s->phase != PH_EXEC)
		return false;
	if (!s->reaped)
		return pump(s);
	/* Read what is there until it would block (or ends): the command has
	 * exited, so its own output is all in the pipe or pty already. */
	for (enum watch k = WT_OUT; k <= WT_ERR; k++) {
		while (output_open(s, k)) {
			int r = s->drained[k == WT_ERR] >= DRAIN_MAX ? R_END : read_output(s, k);

			if (r == R_DATA) {
				progress = true;
				continue;
			}
			if (r == R_FULL)
				return progress;
			output_end(s, k);
		}
	}
	finish(s);
	return true;
}

void exec_reaped(struct session *s, int wstatus)
{
	s->reaped = true;
	s->wstatus = wstatus;
}

void exec_abort(struct session *s)
{
	if (s->pid <= 0 || s->reaped)
		return;
	if (s->pty) {
		kill(-s->pid, SIGHUP);
		kill(-s->pid, SIGCONT);
	} else {
		kill(-s->pid, SIGKILL);
	}
}
