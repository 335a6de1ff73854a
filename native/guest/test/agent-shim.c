/* Stands in for /stasis-agent in qemu-test.sh's await-mode cases. QEMU
 * gives the guest no vsock peer, so nothing outside could send `start`:
 * when /init starts the agent in await mode, this also starts
 * /opt/tools/start-driver, which plays the host over vsock loopback
 * (CID 1). Either way it then becomes the real agent from the root image:
 * the same pid (so /init's restarts still apply), argv and fds 3 and 4. */
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--await-workload") == 0 && fork() == 0) {
			/* The pipes are the agent's: held here too, the workload
			 * pipe would not reach end of file when the agent dies. */
			close(3);
			close(4);
			execl("/bin/sh", "sh", "/opt/tools/start-driver", (char *)NULL);
			_exit(127);
		}
	execv("/opt/tools/stasis-agent", argv);
	return 127;
}
