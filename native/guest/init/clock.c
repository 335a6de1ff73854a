#include "clock.h"

#include <time.h>

#include "util.h"

void clock_set_from_boot_epoch(void)
{
	char text[32];
	struct timespec now;
	time_t epoch = 0;
	const char *p = text;

	if (read_file(BOOT_EPOCH_PATH, text, sizeof text) <= 0)
		return;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (epoch > (time_t)1 << 40)
			return;
		epoch = epoch * 10 + (*p - '0');
	}
	if (p == text || (*p != '\0' && *p != '\n'))
		return;
	if (clock_gettime(CLOCK_REALTIME, &now) == 0 && now.tv_sec >= epoch)
		return;
	now.tv_sec = epoch;
	now.tv_nsec = 0;
	clock_settime(CLOCK_REALTIME, &now);
}
