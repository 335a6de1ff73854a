#include "shutdown.h"

#include <signal.h>

void shutdown_request(struct session *s)
{
	send_ok(s);
	s->shutdown_after = true;
}

void shutdown_signal(void)
{
	if (opts.init_pid > 0)
		kill(opts.init_pid, SIGTERM);
}
