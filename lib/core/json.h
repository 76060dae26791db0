/* json.h - small helpers over json-c for the output every tool writes.
 *
 * json-c does the parsing and serialising; these add what it lacks for
 * NDJSON output: strings from arbitrary bytes (invalid UTF-8 becomes U+FFFD,
 * since JSON text must be UTF-8), numbers printed in their shortest exact form,
 * and one-line serialisation without "\/" escapes.
 */
#ifndef ECH_CORE_JSON_H
#define ECH_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A new JSON string from `n` bytes; invalid UTF-8 sequences are replaced by
 * U+FFFD.  Returns a new reference (NULL on OOM) the caller must put. */
json_object *ech_json_string(const char *s, size_t n);

/* A new JSON number printed with the fewest digits that read back as exactly
 * `v` (as a float for _float, a double for _double); NaN and infinities,
 * which JSON cannot hold, become null. */
json_object *ech_json_float(float v);
json_object *ech_json_double(double v);

/* Print `v` with the fewest significant digits that read back exactly
 * (e.g. 1e-05 rather than 9.99999975e-06) into buf; returns buf. */
char *ech_format_float(float v, char *buf, size_t n);
char *ech_format_double(double v, char *buf, size_t n);

/* A new JSON number from an unsigned 64-bit value (exact above INT64_MAX). */
json_object *ech_json_u64(uint64_t v);

/* Serialise `obj` on one line (no "\/" escapes).  The string is owned by
 * `obj` and valid until it is modified or put. */
const char *ech_json_line(json_object *obj);

#ifdef __cplusplus
}
#endif
#endif
