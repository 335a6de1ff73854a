#include "listen.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

#define BACKLOG 128
#define PORT_DEVICE "/dev/port"
#define MILESTONE_PORT 0xf5
#define MILESTONE_AGENT_READY 4

/* <linux/vm_sockets.h>, which musl's headers do not carry. */
struct sockaddr_vm {
	sa_family_t svm_family;
	unsigned short svm_reserved1;
	unsigned int svm_port;
	unsigned int svm_cid;
	unsigned char svm_flags;
	unsigned char svm_zero[3];
};
#define VMADDR_CID_ANY (-1U)

static int bound(int family, const struct sockaddr *addr, socklen_t len, const char *what)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, addr, len) != 0 || listen(fd, BACKLOG) != 0) {
		say("listen on ", what, ": ", strerror(errno), NULL);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int listen_vsock(unsigned port)
{
	struct sockaddr_vm addr = {
		.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY,
	};

	return bound(AF_VSOCK, (const struct sockaddr *)&addr, sizeof addr, "vsock");
}

int listen_unix(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof addr.sun_path) {
		say("listen on ", path, ": path too long", NULL);
		return -1;
	}
	strcpy(addr.sun_path, path);
	unlink(path);
	return bound(AF_UNIX, (const struct sockaddr *)&addr, sizeof addr, path);
}

void milestone_agent_ready(void)
{
	unsigned char id = MILESTONE_AGENT_READY;
	int fd = open(PORT_DEVICE, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	(void)!pwrite(fd, &id, 1, MILESTONE_PORT);
	close(fd);
}
