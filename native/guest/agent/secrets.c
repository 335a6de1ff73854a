#include "secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define MAX_SECRETS 1024
#define MAX_SECRET_BYTES (1u << 20)

static char *vars[MAX_SECRETS];
static size_t count, total;

char *const *secrets_vars(size_t *n)
{
	*n = count;
	return vars;
}

static bool valid_key(const char *k)
{
	if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || *k == '_'))
		return false;
	for (k++; *k; k++)
		if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
		      (*k >= '0' && *k <= '9') || *k == '_'))
			return false;
	return true;
}

/* Adds or replaces KEY; false when the store is full. */
static bool store(const char *key, const char *value)
{
	size_t klen = strlen(key), vlen = strlen(value), i;
	char *var;

	for (i = 0; i < count; i++)
		if (strncmp(vars[i], key, klen) == 0 && vars[i][klen] == '=')
			break;
	if ((i == count && count == MAX_SECRETS) || total + klen + vlen + 2 > MAX_SECRET_BYTES)
		return false;
	if (!(var = malloc(klen + vlen + 2)))
		return false;
	memcpy(var, key, klen);
	var[klen] = '=';
	memcpy(var + klen + 1, value, vlen + 1);
	total += klen + vlen + 2;
	if (i < count) {
		total -= strlen(vars[i]) + 1;
		free(vars[i]);
	} else {
		count++;
	}
	vars[i] = var;
	return true;
}

/* Writes every pair to <run dir>/secrets through a temporary file and a
 * rename. 0 or an errno; *what names the step that failed. */
static int save(const char **what)
{
	static char path[4096], tmp[4096 + 8];
	char *text, *w;
	int fd, err = 0;

	*what = opts.run_dir;
	if (strlen(opts.run_dir) + 16 > sizeof path)
		return ENAMETOOLONG;
	stpcpy(stpcpy(path, opts.run_dir), "/secrets");
	stpcpy(stpcpy(tmp, path), ".tmp");
	if (!make_parents(path))
		return errno;
	if (!(w = text = malloc(total + 1)))
		return ENOMEM;
	for (size_t i = 0; i < count; i++) {
		w = stpcpy(w, vars[i]);
		*w++ = '\n';
	}
	*what = tmp;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(text);
		return errno;
	}
	if (fchmod(fd, 0600) != 0 || !write_all(fd, text, (size_t)(w - text)))
		err = errno ? errno : EIO;
	if (close(fd) != 0 && !err)
		err = errno;
	free(text);
	if (!err && rename(tmp, path) != 0) {
		*what = path;
		err = errno;
	}
	if (err)
		unlink(tmp);
	return err;
}

void secrets_request(struct session *s, const struct request *r)
{
	struct jw w = { .len = 0 };
	size_t accepted = 0;
	const char *what;
	int err;

	for (size_t i = 0; i < r->secret_keys.n; i++) {
		const char *k = r->secret_keys.v[i], *v = r->secret_values.v[i];

		if (valid_key(k) && !strchr(v, '\n') && store(k, v))
			accepted++;
	}
	if (accepted && (err = save(&what)) != 0) {
		send_fail(s, err, what);
		return;
	}
	jw_raw(&w, "{\"code\":0,\"accepted\":");
	jw_int(&w, (long long)accepted);
	jw_raw(&w, "}");
	send_json(s, 'X', &w);
	s->phase = PH_DONE;
}
