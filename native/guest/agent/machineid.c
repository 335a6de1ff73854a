#include "machineid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "opts.h"
#include "thaw.h"
#include "util.h"

#define ID_LEN 32
#define TMP_PATH MACHINE_ID_PATH ".tmp"

bool machine_id_valid(const char *id)
{
	bool nonzero = false;
	size_t n = 0;

	for (; id[n]; n++) {
		if (n == ID_LEN || !((id[n] >= '0' && id[n] <= '9') || (id[n] >= 'a' && id[n] <= 'f')))
			return false;
		nonzero |= id[n] != '0';
	}
	return n == ID_LEN && nonzero;
}

int machine_id_write(const char *id, const char **what)
{
	char text[sizeof "machine-id \n" + ID_LEN];
	int fd, err = 0;

	if (opts.thaw_log) {
		*what = opts.thaw_log;
		stpcpy(stpcpy(stpcpy(text, "machine-id "), id), "\n");
		return thaw_log_append(text, strlen(text));
	}
	/* Through a temporary file and a rename: a reader sees the old id or
	 * the new one, never a partial file. */
	*what = TMP_PATH;
	fd = open(TMP_PATH, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0444);
	if (fd < 0)
		return errno;
	stpcpy(stpcpy(text, id), "\n");
	errno = 0;
	if (fchmod(fd, 0444) != 0 || !write_all(fd, text, ID_LEN + 1))
		err = errno ? errno : EIO;
	if (close(fd) != 0 && !err)
		err = errno;
	if (!err && rename(TMP_PATH, MACHINE_ID_PATH) != 0) {
		*what = MACHINE_ID_PATH;
		err = errno;
	}
	if (err)
		unlink(TMP_PATH);
	return err;
}
