/* log.h - the library's only way to say something unasked.
 *
 * libech never writes to stdout or stderr.  Diagnostics that are not errors
 * (a fallback taken, a slow path chosen) go to a callback the program
 * installs; with none installed they are dropped.
 */
#ifndef ECH_CORE_LOG_H
#define ECH_CORE_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ech_log_level {
    ECH_LOG_ERROR = 0,
    ECH_LOG_WARN,
    ECH_LOG_INFO,
    ECH_LOG_DEBUG
} ech_log_level;

/* `msg` is NUL-terminated, has no trailing newline and is only valid for the
 * duration of the call. */
typedef void (*ech_log_fn)(ech_log_level level, const char *msg, void *user);

/* Install `fn` (NULL silences the library) and the maximum level passed to
 * it.  Set it once, before other threads call into libech. */
void ech_log_set(ech_log_fn fn, void *user, ech_log_level max_level);

/* Emit a message through the installed callback (used by libech itself). */
void ech_log(ech_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
