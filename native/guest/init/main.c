/* stasis-init: PID 1 of a stasis guest. The steps, in order; each lives in
 * its own file. The contract is docs/guest-contract.md. */
#include <errno.h>
#include <unistd.h>

#include "agent.h"
#include "clock.h"
#include "config.h"
#include "env.h"
#include "mounts.h"
#include "report.h"
#include "run.h"
#include "serial.h"
#include "term.h"
#include "util.h"
#include "workload.h"

int main(void)
{
	static struct config cfg;
	static struct env env;
	const struct config *work = &cfg;
	pid_t pid;
	int status;

	mount_dev();
	report_open();
	report_milestone(MILESTONE_INIT_STARTED);
	serial_setup();

	config_load(&cfg);
	clock_set_from_boot_epoch();
	agent_open(); /* the initramfs is out of sight after the switch */
	if (cfg.root)
		root_switch(&cfg);
	else
		mount_api("");
	mount_devpts();

	/* Without a workload in the file, the machine half's environment:
	 * what the agent serves requests with until `start`. */
	env_build(&env, &cfg);
	term_install();
	if (cfg.cmd[0]) {
		agent_start(env.vars);
		if (chdir(cfg.cwd) != 0)
			die_errno(errno, "chdir ", cfg.cwd, NULL);
	} else {
		work = workload_await(&env);
	}

	report_milestone(MILESTONE_COMMAND_STARTED);
	pid = run_start(work->cmd, env.vars, env_get(&env, "PATH"));
	term_forward_to(pid);
	status = run_wait(pid, agent_child_exited);
	report_milestone(MILESTONE_COMMAND_EXITED);
	report_exit(status);
}
