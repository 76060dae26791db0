/* buf.h - a growable byte buffer (in the spirit of Redis's sds).
 *
 * The data is always NUL-terminated so it can be used as a C string, but may
 * also contain NUL bytes; `len` is authoritative.  A zeroed ech_buf is empty
 * and valid.  The buffer owns `data`; ech_buf_free() releases it, or
 * ech_buf_steal() hands it to the caller.
 */
#ifndef ECH_CORE_BUF_H
#define ECH_CORE_BUF_H

#include <stddef.h>

#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ech_buf {
    char *data;
    size_t len;
    size_t cap;
} ech_buf;

/* Make room for `extra` more bytes (plus the NUL). */
ech_status ech_buf_reserve(ech_buf *b, size_t extra);
ech_status ech_buf_append(ech_buf *b, const void *p, size_t n);
ech_status ech_buf_puts(ech_buf *b, const char *s);
ech_status ech_buf_putc(ech_buf *b, char c);
ech_status ech_buf_printf(ech_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drop the contents, keep the memory. */
void ech_buf_clear(ech_buf *b);
/* Release the memory; the buffer is empty again. */
void ech_buf_free(ech_buf *b);
/* Return the malloc'ed, NUL-terminated data (never NULL; caller frees) and
 * leave the buffer empty. */
char *ech_buf_steal(ech_buf *b);

#ifdef __cplusplus
}
#endif
#endif
