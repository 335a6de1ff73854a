#include "thaw.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define NS_PER_SEC 1000000000LL
#define SEED_MIN 16
#define HOSTNAME_MAX 64
#define RANDOM_DEVICE "/dev/urandom"

/* <linux/random.h>, which musl's headers do not carry. */
#define RNDADDENTROPY _IOW('R', 0x03, int[2])
#define RNDRESEEDCRNG _IO('R', 0x07)

/* "0" or a decimal without sign or leading zeros, at most INT64_MAX. */
static bool parse_ns(const char *p, int64_t *out)
{
	int64_t n = 0;

	if (!*p || (p[0] == '0' && p[1]))
		return false;
	for (; *p; p++) {
		int d = *p - '0';

		if (d < 0 || d > 9 || n > (INT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*out = n;
	return true;
}

static int b64_digit(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Standard base64 (RFC 4648 §4): padded to a multiple of 4, no whitespace,
 * and the bits a final group leaves over are zero, so every value has one
 * spelling. Decodes into out (cap bytes); the length, or -1 when the text
 * is not such base64 or decodes to more than cap bytes. */
static int b64_decode(const char *s, unsigned char *out, size_t cap)
{
	size_t len = strlen(s), pad = 0, n = 0;

	if (len == 0 || len % 4 != 0)
		return -1;
	if (s[len - 1] == '=')
		pad = s[len - 2] == '=' ? 2 : 1;
	if (len / 4 * 3 - pad > cap)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		size_t digits = i + 4 == len ? 4 - pad : 4;
		uint32_t v = 0;

		for (size_t k = 0; k < 4; k++) {
			int d = k < digits ? b64_digit(s[i + k]) : 0;

			if (d < 0)
				return -1; /* also '=' anywhere but the end */
			v = v << 6 | (uint32_t)d;
		}
		if ((digits == 2 && (v & 0xffff)) || (digits == 3 && (v & 0xff)))
			return -1;
		out[n++] = (unsigned char)(v >> 16);
		if (digits > 2)
			out[n++] = (unsigned char)(v >> 8);
		if (digits > 3)
			out[n++] = (unsigned char)v;
	}
	return (int)n;
}

/* 1 to 64 of [A-Za-z0-9.-]. */
static bool valid_hostname(const char *h)
{
	size_t n = 0;

	for (; h[n]; n++)
		if (n == HOSTNAME_MAX ||
		    !((h[n] >= 'A' && h[n] <= 'Z') || (h[n] >= 'a' && h[n] <= 'z') ||
		      (h[n] >= '0' && h[n] <= '9') || h[n] == '.' || h[n] == '-'))
			return false;
	return n > 0;
}

const char *thaw_validate(const struct request *r, struct thaw *t)
{
	int n;

	if (!r->realtime_ns || !parse_ns(r->realtime_ns, &t->realtime_ns))
		return "\"realtimeNs\" must be a decimal string of nanoseconds since the epoch, "
		       "0 to 9223372036854775807";
	t->seed.buf_size = 0;
	if (r->seed) {
		n = b64_decode(r->seed, t->seed.buf, sizeof t->seed.buf);
		if (n < SEED_MIN)
			return "\"seed\" must be padded base64 of 16 to 512 bytes";
		t->seed.buf_size = n;
		t->seed.entropy_count = 8 * n;
	}
	if (r->hostname && !valid_hostname(r->hostname))
		return "\"hostname\" must be 1 to 64 of [A-Za-z0-9.-]";
	t->hostname = r->hostname;
	return NULL;
}

/* ns - (the time in now), saturated. */
static int64_t step_ns(int64_t ns, const struct timespec *now)
{
	int64_t old, step;

	if (__builtin_mul_overflow((int64_t)now->tv_sec, NS_PER_SEC, &old) ||
	    __builtin_add_overflow(old, (int64_t)now->tv_nsec, &old))
		old = now->tv_sec < 0 ? INT64_MIN : INT64_MAX;
	if (__builtin_sub_overflow(ns, old, &step))
		step = INT64_MAX; /* ns >= 0: only a very negative old gets here */
	return step;
}

/* The real thing: 0 or an errno, *what naming the step that failed. */
static int apply_for_real(const struct thaw *t, int64_t *step, const char **what)
{
	struct timespec now, set = {
		.tv_sec = (time_t)(t->realtime_ns / NS_PER_SEC),
		.tv_nsec = (long)(t->realtime_ns % NS_PER_SEC),
	};
	int fd, err = 0;

	/* First, and with nothing between the read and the write, so the step
	 * is exact and the time as fresh as the request. */
	*what = "clock_settime";
	if (clock_gettime(CLOCK_REALTIME, &now) != 0 || clock_settime(CLOCK_REALTIME, &set) != 0)
		return errno;
	*step = step_ns(t->realtime_ns, &now);
	if (t->seed.buf_size) {
		*what = "open " RANDOM_DEVICE;
		if ((fd = open(RANDOM_DEVICE, O_WRONLY | O_CLOEXEC)) < 0)
			return errno;
		/* Kernels before 4.17 have no RNDRESEEDCRNG (ENOTTY or EINVAL):
		 * the entropy added is mixed in all the same. ENODATA means the
		 * CRNG is not ready yet, so it cannot have been reseeded: an
		 * error, as forks would still share its state (32 bytes and more
		 * credit enough to make it ready). */
		*what = "RNDADDENTROPY " RANDOM_DEVICE;
		if (ioctl(fd, RNDADDENTROPY, &t->seed) != 0) {
			err = errno;
		} else if (ioctl(fd, RNDRESEEDCRNG) != 0 && errno != ENOTTY && errno != EINVAL) {
			*what = "RNDRESEEDCRNG " RANDOM_DEVICE;
			err = errno;
		}
		close(fd);
		if (err)
			return err;
	}
	*what = "sethostname";
	if (t->hostname && sethostname(t->hostname, strlen(t->hostname)) != 0)
		return errno;
	return 0;
}

/* Appends s, then the decimal n when n >= 0, then a newline (the caller
 * sized buf). */
static char *line(char *p, const char *s, long long n)
{
	char digits[24];
	size_t i = 0;

	p = stpcpy(p, s);
	if (n >= 0) {
		do
			digits[i++] = (char)('0' + n % 10);
		while ((n /= 10) != 0);
		while (i)
			*p++ = digits[--i];
	}
	*p++ = '\n';
	return p;
}

/* --thaw-log: the same effects as lines appended to the file, the step
 * counted against the current time as if the clock had been set. */
int thaw_log_append(const char *text, size_t n)
{
	int fd = open(opts.thaw_log, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	int err = 0;

	if (fd < 0)
		return errno;
	errno = 0;
	if (!write_all(fd, text, n))
		err = errno ? errno : EIO;
	if (close(fd) != 0 && !err)
		err = errno;
	return err;
}

static int log_effects(const struct thaw *t, int64_t *step, const char **what)
{
	char text[64 + HOSTNAME_MAX], *end = text;
	struct timespec now;

	*what = opts.thaw_log;
	if (clock_gettime(CLOCK_REALTIME, &now) != 0)
		return errno;
	*step = step_ns(t->realtime_ns, &now);
	end = line(end, "clock ", t->realtime_ns);
	if (t->seed.buf_size)
		end = line(end, "seed ", t->seed.buf_size);
	if (t->hostname)
		end = line(stpcpy(end, "hostname "), t->hostname, -1);
	return thaw_log_append(text, (size_t)(end - text));
}

int thaw_apply(const struct thaw *t, int64_t *step_ns, const char **what)
{
	*what = NULL;
	*step_ns = 0;
	return opts.thaw_log ? log_effects(t, step_ns, what) : apply_for_real(t, step_ns, what);
}

void thaw_forget(struct thaw *t)
{
	explicit_bzero(&t->seed, sizeof t->seed);
}

void thaw_send_done(struct session *s, int64_t step_ns, const struct steps *st)
{
	struct jw w = { .len = 0 };

	jw_raw(&w, "{\"code\":0,\"clockStepNs\":\"");
	jw_int(&w, step_ns);
	jw_raw(&w, "\"");
	steps_json(&w, st);
	jw_raw(&w, "}");
	send_json(s, 'X', &w);
	s->phase = PH_DONE;
}

void thaw_request(struct session *s, const struct request *r)
{
	struct thaw t;
	const char *bad = thaw_validate(r, &t), *what;
	struct steps st;
	int64_t step;
	int err;

	steps_begin(&st);
	if (bad) {
		thaw_forget(&t);
		send_fail(s, EINVAL, bad);
		return;
	}
	err = thaw_apply(&t, &step, &what);
	thaw_forget(&t);
	steps_mark(&st, "thaw");
	if (err)
		send_fail(s, err, what);
	else
		thaw_send_done(s, step, &st);
}
