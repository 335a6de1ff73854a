/* A minimal agent client for the QEMU checks (test/qemu-test.sh): inside
 * the guest there is no vsock peer, so the agent runs there with
 * --listen unix:<path> and this client drives it; or it reaches PID 1's
 * agent over vsock loopback (vsock:1:1978; the await-mode cases).
 *
 *   agent-client <socket path | vsock:<cid>:<port>> <request json> [input]
 *
 * Sends the request, then (with an input argument) the input as one `I`
 * frame and an empty `I`. Prints every frame as "<type> <payload>\n", the
 * payload escaped (\r, \n, \\, \xHH); consecutive O (or E) frames make
 * one line, as where output is cut into frames varies. The input argument understands the
 * same escapes. Exits 0 once an `X` or `F` frame arrived. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static unsigned char buf[5 + 65536];

/* <linux/vm_sockets.h>, which musl's headers do not carry. */
struct sockaddr_vm {
	sa_family_t svm_family;
	unsigned short svm_reserved1;
	unsigned int svm_port;
	unsigned int svm_cid;
	unsigned char svm_flags;
	unsigned char svm_zero[3];
};

/* A connected socket, or -1 (with a message). */
static int connect_to(const char *where)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct sockaddr_vm vm = { .svm_family = AF_VSOCK };
	unsigned cid, port;
	int fd;

	if (sscanf(where, "vsock:%u:%u", &cid, &port) == 2) {
		vm.svm_cid = cid;
		vm.svm_port = port;
		fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&vm, sizeof vm) == 0)
			return fd;
	} else {
		strcpy(un.sun_path, where);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&un, sizeof un) == 0)
			return fd;
	}
	perror("agent-client: connect");
	return -1;
}

static int write_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			return -1;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);

		if (r <= 0)
			return -1;
		p = (char *)p + r;
		n -= (size_t)r;
	}
	return 0;
}

static int send_frame(int fd, char type, const void *p, size_t n)
{
	unsigned char h[5] = { (unsigned char)type, (unsigned char)n, (unsigned char)(n >> 8),
			       (unsigned char)(n >> 16), (unsigned char)(n >> 24) };

	return write_all(fd, h, 5) || write_all(fd, p, n) ? -1 : 0;
}

/* Decodes \r \n \\ \xHH in place; returns the length. */
static size_t unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] != '\\' || !r[1]) {
			*w++ = *r;
			continue;
		}
		r++;
		if (*r == 'r')
			*w++ = '\r';
		else if (*r == 'n')
			*w++ = '\n';
		else if (*r == 'x' && r[1] && r[2]) {
			char hex[3] = { r[1], r[2], 0 };

			*w++ = (char)strtol(hex, NULL, 16);
			r += 2;
		} else
			*w++ = *r;
	}
	return (size_t)(w - s);
}

static void print_escaped(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];

		if (c == '\r')
			fputs("\\r", stdout);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\\')
			fputs("\\\\", stdout);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

int main(int argc, char **argv)
{
	int fd, done = 0, last = 0;

	if (argc < 3 || argc > 4 || strlen(argv[1]) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
		fprintf(stderr, "usage: agent-client <socket path | vsock:<cid>:<port>> <request json> [input]\n");
		return 2;
	}
	if ((fd = connect_to(argv[1])) < 0)
		return 1;
	if (send_frame(fd, 'R', argv[2], strlen(argv[2])) != 0 ||
	    (argc == 4 && (send_frame(fd, 'I', argv[3], unescape(argv[3])) != 0 ||
			   send_frame(fd, 'I', "", 0) != 0))) {
		perror("agent-client: send");
		return 1;
	}
	for (;;) {
		size_t n;

		if (read_all(fd, buf, 5) != 0)
			break;
		n = (size_t)buf[1] | (size_t)buf[2] << 8 | (size_t)buf[3] << 16 | (size_t)buf[4] << 24;
		if (n > 65536 || read_all(fd, buf + 5, n) != 0) {
			fprintf(stderr, "agent-client: bad frame\n");
			return 1;
		}
		if (buf[0] != last || (last != 'O' && last != 'E')) {
			if (last)
				putchar('\n');
			printf("%c ", buf[0]);
		}
		print_escaped(buf + 5, n);
		last = buf[0];
		done |= buf[0] == 'X' || buf[0] == 'F';
	}
	if (last)
		putchar('\n');
	fflush(stdout);
	return done ? 0 : 1;
}
