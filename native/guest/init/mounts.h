/* Filesystems: /dev, the API filesystems, and the root the command runs in
 * (read-only image + writable layer joined by overlayfs). */
#ifndef STASIS_INIT_MOUNTS_H
#define STASIS_INIT_MOUNTS_H

#include "config.h"

/* devtmpfs on /dev: the initramfs holds only /dev/console. */
void mount_dev(void);

/* proc on /proc, sysfs on /sys, tmpfs (1777) on /tmp, under `prefix`
 * ("" for the current root). Missing mount points are created. */
void mount_api(const char *prefix);

/* devpts on /dev/pts (a private instance; ptys for the agent) and a
 * /dev/ptmx that reaches it. A failure is reported but not fatal: the
 * command itself does not need ptys. */
void mount_devpts(void);

/* Mounts cfg->root read-only and the writable layer (cfg->upper or a
 * tmpfs), joins them with overlayfs, moves /dev into the result, mounts the
 * API filesystems there and makes it the root. Dies on failure. */
void root_switch(const struct config *cfg);

#endif
