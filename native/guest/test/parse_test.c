/* Host-side checks of the config and /etc/environment readers and of the
 * shared JSON reader (common/json.c).
 * Built and run by `make -C native/guest/init test`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json.h"
#include "../init/config.h"
#include "../init/env.h"

static int failures;

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
			failures++; \
		} \
	} while (0)

/* util.c reports setup errors through report_exit; here that ends the test. */
_Noreturn void report_exit(int status)
{
	fprintf(stderr, "unexpected report_exit(%d)\n", status);
	exit(2);
}

static struct config cfg;

static const char *parse(const char *text, long *where)
{
	static char buf[4096];

	snprintf(buf, sizeof buf, "%s", text);
	return config_parse(buf, &cfg, where);
}

static void accepts_full_config(void)
{
	long where;
	const char *err = parse(
		"{ \"cmd\": [\"/bin/sh\", \"-c\", \"echo \\\"hi\\\"\\n\"], \"env\": {\"A\": \"1\", \"B\": \"x=y\"},\n"
		"  \"cwd\": \"/tmp\", \"root\": \"/dev/vda\", \"upper\": \"/dev/vdb\" }\n", &where);

	CHECK(err == NULL);
	CHECK(strcmp(cfg.cmd[0], "/bin/sh") == 0);
	CHECK(strcmp(cfg.cmd[2], "echo \"hi\"\n") == 0);
	CHECK(cfg.cmd[3] == NULL);
	CHECK(cfg.env_count == 2 && strcmp(cfg.env_value[1], "x=y") == 0);
	CHECK(strcmp(cfg.cwd, "/tmp") == 0);
	CHECK(strcmp(cfg.root, "/dev/vda") == 0 && strcmp(cfg.upper, "/dev/vdb") == 0);
}

static void applies_defaults(void)
{
	long where;

	CHECK(parse("{\"cmd\":[\"true\"]}", &where) == NULL);
	CHECK(strcmp(cfg.cwd, "/") == 0 && !cfg.root && !cfg.upper && cfg.env_count == 0);
	CHECK(parse("{\"cmd\":[\"true\"],\"root\":null,\"env\":null,\"cwd\":null}", &where) == NULL);
	CHECK(strcmp(cfg.cwd, "/") == 0 && !cfg.root);
}

static void decodes_unicode(void)
{
	long where;

	CHECK(parse("{\"cmd\":[\"\\u00e9\\u20ac\\ud83d\\ude00\\/\"]}", &where) == NULL);
	CHECK(strcmp(cfg.cmd[0], "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80/") == 0);
}

static void rejects(const char *text, const char *want)
{
	long where;
	const char *err = parse(text, &where);

	if (!err || !strstr(err, want)) {
		fprintf(stderr, "FAILED: %s -> %s (wanted %s)\n", text, err ? err : "ok", want);
		failures++;
	}
}

static void rejects_bad_configs(void)
{
	rejects("", "expected '{'");
	rejects("{\"cmd\":[]}", "must not be empty");
	rejects("{\"cmd\":[\"a\",]}", "expected a string");
	rejects("{\"cmd\":[\"a\"],}", "expected a string");
	rejects("{\"cmd\":[\"a\"]} x", "unexpected text");
	rejects("{\"cmd\":[\"a\"]", "unexpected end");
	rejects("{\"cmd\":\"a\"}", "expected '['");
	rejects("{\"cmd\":[1]}", "expected a string");
	rejects("{\"cmd\":[\"a\"],\"cmd\":[\"b\"]}", "duplicate key");
	rejects("{\"cmd\":[\"a\"],\"nope\":1}", "unknown key \"nope\"");
	rejects("{\"cmd\":[\"a\\x\"]}", "bad escape");
	rejects("{\"cmd\":[\"a\\u12\"]}", "bad \\u escape");
	rejects("{\"cmd\":[\"\\ud800\"]}", "unpaired surrogate");
	rejects("{\"cmd\":[\"\\u0000\"]}", "NUL");
	rejects("{\"cmd\":[\"a\tb\"]}", "control character");
	rejects("{\"cmd\":[\"a\"],\"env\":{\"A=B\":\"1\"}}", "without '='");
	rejects("{\"cmd\":[\"a\"],\"env\":{\"A\":1}}", "expected a string");
	rejects("{\"cmd\":[\"a\"],\"cwd\":\"\"}", "must not be empty");
	rejects("{\"cmd\":[\"a\"],\"root\":nul}", "invalid literal");
	rejects("{\"cmd\":[\"a\" \"b\"]}", "expected ',' or ']'");
	rejects("{\"cmd\":[\"a\"],\"upper\":\"/dev/vdb\"}", "\"upper\" needs \"root\"");
}

/* Without "cmd" the file holds only the machine: await mode. */
static void accepts_machine_only_configs(void)
{
	long where;

	CHECK(parse("{}", &where) == NULL && cfg.cmd[0] == NULL);
	CHECK(parse("{\"root\":\"/dev/vda\",\"upper\":\"/dev/vdb\",\"env\":null,\"cwd\":null}", &where) == NULL);
	CHECK(cfg.cmd[0] == NULL && strcmp(cfg.root, "/dev/vda") == 0 && strcmp(cfg.cwd, "/") == 0);
	rejects("{\"env\":{}}", "\"env\" and \"cwd\" need \"cmd\"");
	rejects("{\"root\":\"/dev/vda\",\"cwd\":\"/tmp\"}", "\"env\" and \"cwd\" need \"cmd\"");
	rejects("{\"cmd\":null}", "expected '['");
}

static const char *parse_workload(const char *text, long *where)
{
	static char buf[4096];

	snprintf(buf, sizeof buf, "%s", text);
	return config_parse_workload(buf, &cfg, where);
}

static void workload_rejects(const char *text, const char *want)
{
	long where;
	const char *err = parse_workload(text, &where);

	if (!err || !strstr(err, want)) {
		fprintf(stderr, "FAILED: workload %s -> %s (wanted %s)\n", text, err ? err : "ok", want);
		failures++;
	}
}

/* The workload of `start`: the file's rules, cmd/env/cwd only. */
static void parses_workloads(void)
{
	long where;

	CHECK(parse_workload("{\"cmd\":[\"sh\",\"-c\",\"x\"],\"env\":{\"A\":\"1\"},\"cwd\":\"/tmp\"}", &where) == NULL);
	CHECK(strcmp(cfg.cmd[2], "x") == 0 && cfg.cmd[3] == NULL);
	CHECK(cfg.env_count == 1 && strcmp(cfg.env_key[0], "A") == 0 && strcmp(cfg.cwd, "/tmp") == 0);
	CHECK(parse_workload("{\"cmd\":[\"true\"]}", &where) == NULL);
	CHECK(strcmp(cfg.cwd, "/") == 0 && cfg.env_count == 0 && !cfg.root);
	workload_rejects("{}", "\"cmd\" is required");
	workload_rejects("{\"env\":{}}", "\"cmd\" is required");
	workload_rejects("{\"cmd\":[\"a\"],\"root\":\"/dev/vda\"}", "unknown key \"root\"");
	workload_rejects("{\"cmd\":[\"a\"],\"upper\":\"/dev/vdb\"}", "unknown key \"upper\"");
	workload_rejects("{\"cmd\":[]}", "must not be empty");
	workload_rejects("{\"cmd\":[\"a\"],\"cwd\":\"\"}", "must not be empty");
	workload_rejects("{\"cmd\":[\"a\"],\"env\":{\"\":\"1\"}}", "without '='");
	workload_rejects("{\"cmd\":[\"a\"]", "unexpected end");
}

static void reads_environment_files(void)
{
	static struct env env;
	char text[] =
		"# comment\n"
		"\n"
		"  PATH=\"/opt/bin:/bin\"\n"
		"export LANG='C.UTF-8'\r\n"
		"EMPTY=\n"
		"bad line\n"
		"1BAD=x\n"
		"SPACED=a b  \n"
		"PATH2=x";

	env_set(&env, "PATH", 4, "/default");
	env_set(&env, "HOME", 4, "/root");
	env_apply_text(&env, text);
	CHECK(strcmp(env_get(&env, "PATH"), "/opt/bin:/bin") == 0);
	CHECK(strcmp(env_get(&env, "LANG"), "C.UTF-8") == 0);
	CHECK(strcmp(env_get(&env, "EMPTY"), "") == 0);
	CHECK(strcmp(env_get(&env, "SPACED"), "a b") == 0);
	CHECK(strcmp(env_get(&env, "PATH2"), "x") == 0);
	CHECK(env_get(&env, "1BAD") == NULL && env_get(&env, "bad line") == NULL);
	CHECK(env.count == 6 && env.vars[6] == NULL);
	CHECK(strcmp(env.vars[0], "PATH=/opt/bin:/bin") == 0);
}

/* The reader's extras the agent uses: booleans, integers, skipping. */
static void reads_json_values(void)
{
	char text[] = "{\"a\": true, \"b\": false, \"n\": 493, \"skip\": [1, -2.5e3, {\"x\": [null, \"s\\u00e9\"]}, 0.25], \"z\": 65535}";
	struct json j;
	bool first = true, b;
	unsigned long n;
	int seen = 0;

	json_init(&j, text);
	CHECK(json_eat(&j, '{'));
	while (json_more(&j, '}', &first)) {
		char *k = json_str(&j);

		CHECK(k && json_eat(&j, ':'));
		if (strcmp(k, "a") == 0)
			CHECK(json_bool(&j, &b) && b && ++seen);
		else if (strcmp(k, "b") == 0)
			CHECK(json_bool(&j, &b) && !b && ++seen);
		else if (strcmp(k, "n") == 0)
			CHECK(json_uint(&j, 07777, &n) && n == 493 && ++seen);
		else if (strcmp(k, "z") == 0)
			CHECK(json_uint(&j, 65535, &n) && n == 65535 && ++seen);
		else
			CHECK(json_skip(&j) && ++seen);
	}
	CHECK(json_end(&j) && seen == 5 && !j.err);

	static const char *const bad_uint[] = { "65536", "-1", "1.5", "1e3", "01", "\"1\"", "99999999999999999999999" };
	for (size_t i = 0; i < sizeof bad_uint / sizeof bad_uint[0]; i++) {
		char buf[64];

		snprintf(buf, sizeof buf, "%s", bad_uint[i]);
		json_init(&j, buf);
		CHECK(!json_uint(&j, 65535, &n) && j.err);
	}
	static const char *const bad_skip[] = { "[1,]", "{\"a\"}", "01", "-", "1.", "tru", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "" };
	for (size_t i = 0; i < sizeof bad_skip / sizeof bad_skip[0]; i++) {
		char buf[128];

		snprintf(buf, sizeof buf, "%s", bad_skip[i]);
		json_init(&j, buf);
		CHECK(!(json_skip(&j) && json_end(&j)));
	}
}

int main(void)
{
	accepts_full_config();
	applies_defaults();
	decodes_unicode();
	rejects_bad_configs();
	accepts_machine_only_configs();
	parses_workloads();
	reads_environment_files();
	reads_json_values();
	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	puts("parse_test: ok");
	return 0;
}
