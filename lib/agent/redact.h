/* redact.h - keep secrets out of logs, events and tool results.
 *
 * The values of environment variables whose names contain KEY, TOKEN,
 * SECRET or PASSWORD (in any case), plus values the program adds (an API key
 * given as an option), are replaced by "[REDACTED]" wherever they occur in a
 * text.  Values shorter than 6 bytes, and values that are only digits or
 * "true"/"false", are not taken as secrets: they would blank out ordinary text.
 */
#ifndef ECH_AGENT_REDACT_H
#define ECH_AGENT_REDACT_H

#include <stddef.h>

#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ech_secrets {
    char **v;       /* longest first, so a secret inside another is not half-replaced */
    size_t n;
} ech_secrets;

/* 1 if an environment variable of this name holds a secret. */
int ech_secret_name(const char *name, size_t len);

/* Add one value (copied); too-short values are ignored. */
ech_status ech_secrets_add(ech_secrets *s, const char *value);

/* Add the secret values of the current environment. */
ech_status ech_secrets_from_env(ech_secrets *s);

/* `text` (n bytes) with every secret replaced: a malloc'ed, NUL-terminated
 * string (its length in *out_len when not NULL), or NULL when out of memory. */
char *ech_secrets_redact(const ech_secrets *s, const char *text, size_t n, size_t *out_len);

void ech_secrets_free(ech_secrets *s);

#ifdef __cplusplus
}
#endif
#endif
