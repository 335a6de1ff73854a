/* The `R` frame: one JSON object, read into a struct. Every field any op
 * uses is read whatever the op; unknown keys are skipped; a value of the
 * wrong type (or text that is not JSON) makes the request malformed. */
#ifndef STASIS_AGENT_REQUEST_H
#define STASIS_AGENT_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

enum op {
	OP_UNKNOWN, OP_PING, OP_EXEC, OP_WRITE, OP_READ, OP_SECRETS, OP_WINSIZE, OP_SHUTDOWN,
	OP_THAW, OP_START,
};

/* A growable list of strings, NULL-terminated once it holds any. */
struct strlist {
	char **v;
	size_t n, cap;
};

struct request {
	enum op op;
	/* exec (a string), start (an array) */
	const char *cmd;           /* NULL if absent or an array */
	bool has_cmd_list;         /* "cmd" was an array: */
	struct strlist cmd_list;
	bool has_argv;
	struct strlist argv;
	struct strlist env_keys, env_values;
	const char *cwd;           /* NULL = "/" */
	bool stdin;
	bool pty;
	unsigned cols, rows;       /* 0 = default */
	const char *term;          /* NULL = default */
	/* write, read */
	const char *path;
	long mode;                 /* -1 = not given */
	bool append, mkdirs;
	/* secrets */
	struct strlist secret_keys, secret_values;
	/* thaw, start: the strings as sent (thaw.c validates them); NULL if absent */
	const char *realtime_ns, *seed, *hostname;
	/* start */
	const char *machine_id;
};

/* Parses text (modified in place; the request points into it). False when
 * the request is malformed (a protocol error). */
bool request_parse(char *text, struct request *r);

/* False when a field has the wrong type for the op after all: "cmd" is a
 * string for exec and an array for start (the parser reads it before it
 * may know the op). */
bool request_types_ok(const struct request *r);

/* Frees the lists (not the text). */
void request_free(struct request *r);

#endif
