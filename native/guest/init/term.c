#include "term.h"

#include <signal.h>
#include <stddef.h>

static volatile sig_atomic_t target;
static volatile sig_atomic_t pending;

static void on_term(int sig)
{
	(void)sig;
	pending = 1;
	if (target > 0)
		kill(-target, SIGTERM);
}

void term_install(void)
{
	struct sigaction sa = { .sa_handler = on_term, .sa_flags = SA_RESTART };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
}

void term_forward_to(pid_t pid)
{
	target = pid;
	/* Arrived before the command ran (a signal landing right here is
	 * forwarded twice, which is harmless). */
	if (pending)
		kill(-pid, SIGTERM);
}

void term_interrupt_reads(void)
{
	struct sigaction sa = { .sa_handler = on_term };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
}

int term_requested(void)
{
	return pending;
}
