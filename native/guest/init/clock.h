/* The guest has no RTC: the runtime writes the host's time at boot (whole
 * seconds) to /etc/stasis-boot-epoch in the initramfs, and /init sets the
 * clock from it. */
#ifndef STASIS_INIT_CLOCK_H
#define STASIS_INIT_CLOCK_H

#define BOOT_EPOCH_PATH "/etc/stasis-boot-epoch"

/* Sets CLOCK_REALTIME from BOOT_EPOCH_PATH when the clock is behind it. A
 * missing or malformed file leaves the clock alone (not worth failing a
 * boot over). Must run before the root switch. */
void clock_set_from_boot_epoch(void);

#endif
