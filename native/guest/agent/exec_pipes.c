#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "exec.h"

/* Output pipes hold 1 MiB (the default is 64 KiB): a command writing a
 * lot blocks, and the agent wakes, that much less often (measured: `dd
 * bs=64K` ~20% and `head -c` ~30% faster than with 64 KiB). Best effort.
 * Pages are taken only for what is buffered; a slow host leaves at most
 * this much per stream in the guest kernel. */
#define OUTPUT_PIPE_SIZE (1 << 20)

/* pipe2 without O_NONBLOCK: the command's end must block. */
static int make_pipe(int p[2], int agent_end)
{
	if (pipe2(p, O_CLOEXEC) != 0)
		return errno;
	if (agent_end == 0)
		(void)fcntl(p[0], F_SETPIPE_SZ, OUTPUT_PIPE_SIZE);
	if (fcntl(p[agent_end], F_SETFL, O_NONBLOCK) != 0) {
		int err = errno;

		close(p[0]);
		close(p[1]);
		return err;
	}
	return 0;
}

int pipes_open(struct session *s, bool with_stdin, struct spawn *sp)
{
	int out[2], err[2], in[2] = { -1, -1 }, e;

	if ((e = make_pipe(out, 0)) != 0)
		return e;
	if ((e = make_pipe(err, 0)) != 0)
		goto close_out;
	if (with_stdin && (e = make_pipe(in, 1)) != 0)
		goto close_err;
	s->fd[WT_OUT] = out[0];
	s->fd[WT_ERR] = err[0];
	s->fd[WT_IN] = in[1];
	sp->fd[0] = with_stdin ? in[0] : opts.devnull;
	sp->fd[1] = out[1];
	sp->fd[2] = err[1];
	sp->ctty = -1;
	return 0;

close_err:
	close(err[0]);
	close(err[1]);
close_out:
	close(out[0]);
	close(out[1]);
	return e;
}

void pipes_close_child_ends(struct spawn *sp)
{
	if (sp->fd[0] != opts.devnull)
		close(sp->fd[0]);
	close(sp->fd[1]);
	close(sp->fd[2]);
}
