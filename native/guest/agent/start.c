#include "start.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "await.h"
#include "envp.h"
#include "machineid.h"
#include "opts.h"
#include "steps.h"
#include "thaw.h"

/* NULL when the request is valid (t filled in), else why not. */
static const char *validate(const struct request *r, struct thaw *t)
{
	const char *bad = thaw_validate(r, t);

	if (bad)
		return bad;
	if (r->machine_id && !machine_id_valid(r->machine_id))
		return "\"machineId\" must be 32 lowercase hex digits, not all zero";
	if (!r->has_cmd_list || r->cmd_list.n == 0)
		return "\"cmd\" must be a non-empty array of strings";
	return NULL;
}

/* {"cmd":[…],"env":{…},"cwd":"…"} as /init reads it (its config parser,
 * the rules of /stasis-config.json). NULL when out of memory. */
static char *workload_json(const struct request *r, size_t *len)
{
	size_t cap = 32;
	char *buf, *p;

	for (size_t i = 0; i < r->cmd_list.n; i++)
		cap += JW_ESCAPED_MAX(strlen(r->cmd_list.v[i])) + 1;
	for (size_t i = 0; i < r->env_keys.n; i++)
		cap += JW_ESCAPED_MAX(strlen(r->env_keys.v[i])) + JW_ESCAPED_MAX(strlen(r->env_values.v[i])) + 2;
	if (r->cwd)
		cap += JW_ESCAPED_MAX(strlen(r->cwd));
	if (!(p = buf = malloc(cap)))
		return NULL;
	p = stpcpy(p, "{\"cmd\":[");
	for (size_t i = 0; i < r->cmd_list.n; i++) {
		if (i)
			*p++ = ',';
		p = jw_escape(p, r->cmd_list.v[i]);
	}
	*p++ = ']';
	if (r->env_keys.n) {
		p = stpcpy(p, ",\"env\":{");
		for (size_t i = 0; i < r->env_keys.n; i++) {
			if (i)
				*p++ = ',';
			p = jw_escape(p, r->env_keys.v[i]);
			*p++ = ':';
			p = jw_escape(p, r->env_values.v[i]);
		}
		*p++ = '}';
	}
	if (r->cwd)
		p = jw_escape(stpcpy(p, ",\"cwd\":"), r->cwd);
	*p++ = '}';
	*len = (size_t)(p - buf);
	return buf;
}

/* `V` + "KEY=VALUE\0"…: the entries become the base environment (the
 * answer is kept for good, environ points into it). False when the answer
 * is not that. */
static bool take_environment(char *answer, size_t len)
{
	size_t n = 0;
	char **vars, *p, *end = answer + len;

	if (len > 1 && end[-1] != '\0')
		return false;
	for (p = answer + 1; p < end; p += strlen(p) + 1) {
		if (p[0] == '\0' || p[0] == '=' || !strchr(p, '='))
			return false;
		n++;
	}
	if (!(vars = malloc((n + 1) * sizeof *vars)))
		return false;
	n = 0;
	for (p = answer + 1; p < end; p += strlen(p) + 1)
		vars[n++] = p;
	vars[n] = NULL;
	envp_set_base(vars);
	return true;
}

/* /init's answer: `V` + environment or `E` + why it refused. */
static void answered(struct session *s, char *answer, size_t len, int64_t step, const struct steps *st)
{
	if (len > 0 && answer[0] == 'E') {
		send_fail(s, EINVAL, len > 1 ? answer + 1 : "/init refused the workload");
	} else if (len == 0) {
		send_fail(s, EIO, "/init closed the answer pipe without answering");
	} else if (answer[0] != 'V' || !take_environment(answer, len)) {
		send_fail(s, EIO, "malformed answer from /init");
	} else {
		thaw_send_done(s, step, st);
		return; /* the environment lives on in the answer */
	}
	free(answer);
}

void start_request(struct session *s, const struct request *r)
{
	struct thaw t;
	const char *bad, *what;
	char *workload, *answer = NULL;
	size_t len, answer_len = 0;
	struct steps st;
	int64_t step;
	int err;

	steps_begin(&st);
	if (!opts.await_workload) {
		send_fail(s, ENOTSUP, "start: the agent is not in await mode (/init had the workload)");
		return;
	}
	if (!await_pending()) {
		send_fail(s, EALREADY, "start: the workload was handed over already");
		return;
	}
	if ((bad = validate(r, &t)) != NULL) {
		thaw_forget(&t);
		send_fail(s, EINVAL, bad);
		return;
	}
	if (!(workload = workload_json(r, &len))) {
		thaw_forget(&t);
		send_fail(s, ENOMEM, "start");
		return;
	}
	steps_mark(&st, "validate");
	err = thaw_apply(&t, &step, &what);
	thaw_forget(&t);
	steps_mark(&st, "thaw");
	if (!err && r->machine_id) {
		err = machine_id_write(r->machine_id, &what);
		steps_mark(&st, "machine-id");
	}
	if (!err) {
		err = await_handoff(workload, len, &answer, &answer_len, &what);
		steps_mark(&st, "handoff");
	}
	free(workload);
	if (err)
		send_fail(s, err, what);
	else
		answered(s, answer, answer_len, step, &st);
}
