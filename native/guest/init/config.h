/* /stasis-config.json: what to run and on which root (see
 * docs/guest-contract.md). The same rules read the workload the agent hands
 * over in await mode (workload.c). */
#ifndef STASIS_INIT_CONFIG_H
#define STASIS_INIT_CONFIG_H

#include <stddef.h>

#define CONFIG_PATH "/stasis-config.json"
#define CONFIG_MAX_BYTES (256u * 1024)
#define CONFIG_MAX_ARGS 4096
#define CONFIG_MAX_ENV 1024

struct config {
	char *cmd[CONFIG_MAX_ARGS + 1]; /* NULL-terminated; cmd[0] NULL: the
					 * file has no workload (await mode) */
	size_t env_count;
	char *env_key[CONFIG_MAX_ENV];
	char *env_value[CONFIG_MAX_ENV];
	const char *cwd;   /* "/" unless given */
	const char *root;  /* root image device; NULL = stay in the initramfs */
	const char *upper; /* writable layer device; NULL = tmpfs */
};

/* Parses the file's text (modified in place; the config points into it).
 * Without "cmd" the file holds only the machine ("env" and "cwd" then come
 * with the workload and must not be given). On a problem, returns a
 * message and sets *where to the offending byte offset (or -1 when no
 * position applies). Returns NULL on success. */
const char *config_parse(char *text, struct config *cfg, long *where);

/* Parses a workload, {"cmd":[...],"env":{...}?,"cwd":"..."?}, as
 * config_parse does the file: same rules and limits, "cmd" required,
 * "root" and "upper" unknown keys. */
const char *config_parse_workload(char *text, struct config *cfg, long *where);

/* Reads and parses CONFIG_PATH; dies with a setup error on any problem. */
void config_load(struct config *cfg);

#endif
