/* One connection = one session (docs/agent-protocol.md §2): its buffers,
 * the descriptors it watches, and how it ends. Up to MAX_SESSIONS at once.
 *
 * Memory is bounded per session: `in` holds at most one whole frame, `out`
 * at most two data frames plus room for the short control frames. A
 * command's output is read only while `out` has room, so a slow host
 * stalls the command (the pipe fills) instead of growing the agent. */
#ifndef STASIS_AGENT_SESSION_H
#define STASIS_AGENT_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "frame.h"
#include "jsonw.h"
#include "opts.h"

#define MAX_SESSIONS 256
/* Extra slots for connections over the limit: they get `F EBUSY` and
 * linger like any other session. */
#define SPARE_SLOTS 16
#define ALL_SLOTS (MAX_SESSIONS + SPARE_SLOTS)
/* A lingering session is closed after this long or this much input. */
#define LINGER_MS 5000
#define LINGER_MAX_BYTES (16u << 20)
#define IN_CAP (FRAME_HDR + FRAME_MAX)
/* `out` holds two whole data frames: one readv fills both (out_read). */
#define OUT_DATA_CAP (2 * (FRAME_HDR + FRAME_MAX))
#define OUT_CAP (OUT_DATA_CAP + 2 * JW_CAP)
/* Output is not read into less room than this (fewer, fuller frames). */
#define MIN_READ 4096

enum phase {
	PH_REQUEST, /* waiting for `R` */
	PH_EXEC,    /* a command runs (until `X`) */
	PH_WRITE,   /* `I` frames go to a file */
	PH_READ,    /* a file goes out as `O` frames */
	PH_WINSIZE, /* `W` frames resize the serial terminals */
	PH_DONE,    /* the last frame is queued; close once it is out */
	PH_LINGER,  /* it is out and our side shut: input is discarded until
		     * the host closes (closing on unread input would reset
		     * the connection, and the host could lose the answer) */
};

/* The descriptors a session watches (the low byte of its epoll tag). */
enum watch { WT_CONN, WT_OUT, WT_ERR, WT_IN, WT_COUNT };

/* What a frame handler tells the frame loop. */
enum fr {
	FR_OK,      /* frame consumed */
	FR_BLOCKED, /* keep it: the command's input is full (see in_off) */
	FR_DROP,    /* protocol error: drop the session */
};

struct session {
	bool used;
	bool doomed;  /* drop it once the current event is handled */
	bool dirty;   /* due a session_step this round */
	unsigned slot;
	uint32_t gen; /* tells a reused slot from its predecessor */
	enum phase phase;

	int fd[WT_COUNT];        /* -1 = none; fd[WT_OUT] is the pty master */
	uint32_t have[WT_COUNT]; /* events registered with epoll */

	unsigned char *in, *out;
	size_t in_len, in_pos;   /* bytes buffered; start of the next frame */
	size_t in_off;           /* payload of that frame already consumed */
	bool in_blocked;         /* that frame waits for the input to drain */
	size_t out_off, out_len; /* bytes sent; bytes queued */

	/* exec */
	pid_t pid;         /* 0 = no command */
	bool reaped;
	int wstatus;
	bool pty;
	bool out_done;     /* pty: no more output (the master stays open) */
	bool input_dead;   /* pty: writing to the master failed */
	size_t drained[2]; /* out/err bytes read after the exit */
	bool more[2];      /* out/err: the last read filled all its room */

	/* write, read */
	int file;
	long mode;

	/* winsize */
	int tty[MAX_TTYS];

	bool shutdown_after; /* `shutdown`: signal init once the answer is out */
	bool refused;        /* over the limit: only `F EBUSY` */

	uint64_t linger_since; /* ms (CLOCK_MONOTONIC) */
	size_t discarded;
};

/* A session for a new connection. Over MAX_SESSIONS it is a refused one
 * (`F EBUSY` queued); NULL when not even a spare slot is left. */
struct session *session_new(int conn);

/* The live session in slot with generation gen, or NULL. */
struct session *session_get(unsigned slot, uint32_t gen);

/* The live session in slot, or NULL. */
struct session *session_at(unsigned slot);

/* The live session running command pid, or NULL. */
struct session *session_by_pid(pid_t pid);

/* Ends the session at once: the command (if still running) is signalled,
 * every descriptor closed. */
void session_drop(struct session *s);

/* The last frame is out: shut our side of the connection, release the
 * op's descriptors, discard input until the host closes. */
void session_linger(struct session *s);

/* Ends the sessions that have lingered LINGER_MS by `now`. */
void session_sweep(uint64_t now);

/* How many sessions linger. */
size_t session_lingering(void);

/* Writes queued output to the connection; dooms the session if the host
 * is gone. */
void session_flush(struct session *s);

/* Registers with epoll what the session now waits for. */
void session_sync(struct session *s);

/* Reads fd into the room `out` has (out_has_room must be true), in one
 * readv spread over as many data frames as fit, and queues what came as
 * `type` frames. The readv's result; *full tells that it filled all the
 * room it was given (so more may be waiting). */
ssize_t out_read(struct session *s, int fd, char type, bool *full);

/* Queues a JSON frame (A, X or F). */
void send_json(struct session *s, char type, const struct jw *w);

/* Queues `F {"error":<errno name>,"message":"<what>: <strerror>"}` and
 * ends the session's work (PH_DONE). */
void send_fail(struct session *s, int err, const char *what);

/* Queues `X {"code":0}` and moves to PH_DONE. */
void send_ok(struct session *s);

/* True when `out` has room for another data read. */
bool out_has_room(const struct session *s);

#endif
