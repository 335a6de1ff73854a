/* The command's standard streams: stdin = /dev/null, stdout = ttyS1,
 * stderr = ttyS0, both serial ports in raw mode so bytes pass unchanged.
 * /init arranges its own fds 0-2 this way and the command inherits them. */
#ifndef STASIS_INIT_SERIAL_H
#define STASIS_INIT_SERIAL_H

/* Needs /dev (devtmpfs). Dies with a setup error if a port cannot be set up
 * (the message goes to whatever fd 2 is at that moment). */
void serial_setup(void);

/* Waits until both ports have sent everything queued. */
void serial_drain(void);

#endif
