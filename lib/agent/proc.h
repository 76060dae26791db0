/* proc.h - child processes for tools and MCP servers: spawn, feed, reap.
 *
 * A child runs in a process group of its own, so stopping it also stops
 * whatever it started (a shell's pipeline, npx's node).  Its signal
 * dispositions are reset to the defaults (a parent that ignores SIGPIPE must
 * not pass that on).  Writing to a child that has gone away is an error
 * (ECH_ERR_IO), never a SIGPIPE.
 */
#ifndef ECH_AGENT_PROC_H
#define ECH_AGENT_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ech_proc {
    pid_t pid;       /* 0 once reaped */
    int in_fd;       /* our end of the child's stdin; -1 once closed */
    int out_fd;      /* the child's stdout */
    int err_fd;      /* the child's stderr; -1 when it went to a given fd */
    int status;      /* wait status, valid once pid is 0 */
} ech_proc;

/* Start argv[0] (looked up on PATH) with argv.  `env_add` ("NAME=VALUE",
 * NULL-terminated, may be NULL) is added to our environment, replacing
 * variables of the same name.  `stderr_fd` >= 0: the child's stderr is that
 * descriptor; -1: a pipe (p->err_fd).  ECH_ERR_NOT_FOUND when the program
 * does not exist, ECH_ERR_IO for other failures. */
ech_status ech_proc_spawn(const char *const *argv, const char *const *env_add, int stderr_fd,
                          ech_proc *p, ech_error *err);

/* Write all of `data` to the child's stdin (blocking). */
ech_status ech_proc_write(ech_proc *p, const void *data, size_t n, ech_error *err);

/* One write(2) to the child's stdin: the bytes written, or -1 with errno
 * (EAGAIN on a full non-blocking pipe, EPIPE when the child is gone). */
long ech_proc_write_some(ech_proc *p, const void *data, size_t n);

/* Reap the child if it has exited, waiting up to `timeout_ms` (0: just
 * look).  Returns 1 once reaped (p->status is valid), else 0. */
int ech_proc_reap(ech_proc *p, int timeout_ms);

/* Stop the child the polite way: close its stdin, wait `wait_ms` for it to
 * exit, SIGTERM its process group, wait `grace_ms`, SIGKILL the group; reap
 * it and close every descriptor.  Safe to call twice. */
void ech_proc_stop(ech_proc *p, int wait_ms, int grace_ms);

/* "exit status 3", "killed by signal 9 (Killed)": a static or `buf` string. */
const char *ech_proc_describe_status(int status, char *buf, size_t n);

/* The result of running a command to completion. */
typedef struct ech_proc_result {
    ech_buf out;          /* stdout, at most `cap` bytes */
    ech_buf err;          /* stderr, at most `cap` bytes */
    size_t out_dropped;   /* stdout bytes beyond the cap */
    size_t err_dropped;
    int status;           /* wait status (when !timed_out) */
    int timed_out;        /* killed after the timeout */
    double seconds;       /* wall time */
} ech_proc_result;

/* Run argv with `input` on its stdin, collecting stdout and stderr, each
 * capped at `cap` bytes (the rest is read and counted, not kept; past 64 MiB
 * more the child is stopped).  After `timeout_ms` (0: no limit) the process
 * group is stopped and r->timed_out set.  Background processes the command
 * leaves holding its output are stopped shortly after it exits.  Returns
 * ECH_OK whenever the command ran, whatever its exit status; the caller frees
 * r with ech_proc_result_free. */
ech_status ech_proc_run(const char *const *argv, const char *const *env_add, const char *input,
                        size_t input_len, int timeout_ms, size_t cap, ech_proc_result *r,
                        ech_error *err);
void ech_proc_result_free(ech_proc_result *r);

/* Milliseconds on the monotonic clock. */
long long ech_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif
