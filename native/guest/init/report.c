#include "report.h"

#include <fcntl.h>
#include <sys/reboot.h>
#include <unistd.h>

#include "serial.h"

#ifndef STASIS_PORT_DEVICE
#define STASIS_PORT_DEVICE "/dev/port"
#endif

#define EXIT_PORT 0xf4
#define MILESTONE_PORT 0xf5

static int port_fd = -1;

void report_open(void)
{
	port_fd = open(STASIS_PORT_DEVICE, O_WRONLY | O_CLOEXEC);
}

/* /dev/port turns a write at offset N into outb to port N. */
static void out_byte(unsigned port, unsigned char value)
{
	if (port_fd >= 0)
		(void)!pwrite(port_fd, &value, 1, port);
}

void report_milestone(enum milestone id)
{
	out_byte(MILESTONE_PORT, (unsigned char)id);
}

void report_exit(int status)
{
	serial_drain();
	sync();
	out_byte(EXIT_PORT, (unsigned char)status);
	/* Still here: not our VMM (or no /dev/port). */
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}
