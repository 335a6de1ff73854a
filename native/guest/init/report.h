/* Talking to the VMM through /dev/port: boot milestones (port 0xf5) and the
 * final status (port 0xf4), after which the VMM stops the VM at once. */
#ifndef STASIS_INIT_REPORT_H
#define STASIS_INIT_REPORT_H

enum milestone {
	MILESTONE_INIT_STARTED = 1,
	MILESTONE_COMMAND_STARTED = 2,
	MILESTONE_COMMAND_EXITED = 3,
	/* 4 is the agent's ("listening") */
	MILESTONE_AWAITING_WORKLOAD = 5,
};

/* Opens /dev/port (needs /dev). Without it, milestones are skipped and the
 * exit falls back to a power-off. */
void report_open(void);

void report_milestone(enum milestone id);

/* Drains the serial ports, syncs filesystems, writes status to the exit
 * port; if the VM is still running after that, powers off. */
_Noreturn void report_exit(int status);

#endif
