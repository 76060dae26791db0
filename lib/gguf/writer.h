/* writer.h - build a GGUF v3 file from metadata and tensors.
 *
 * Collect key/values and tensors, then write them out in one go.  Values are
 * deep-copied into the writer; tensor data is borrowed and must stay valid
 * until the write call returns.  Used by tests (fixtures, round trips) and by
 * quantisation.
 */
#ifndef ECH_GGUF_WRITER_H
#define ECH_GGUF_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "gguf/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ech_gguf_writer ech_gguf_writer;

/* A new, empty writer (NULL when out of memory); free with _free. */
ech_gguf_writer *ech_gguf_writer_new(void);
void ech_gguf_writer_free(ech_gguf_writer *w);

/* Set `key` to a deep copy of `v` (any type, nested arrays included).  A key
 * set twice keeps its first position and takes the new value.  Setting
 * general.alignment (u32, a power of two) changes the data alignment. */
ech_status ech_gguf_writer_set(ech_gguf_writer *w, const char *key, const ech_gguf_value *v);

/* Shorthands for common scalar types. */
ech_status ech_gguf_writer_set_u32(ech_gguf_writer *w, const char *key, uint32_t v);
ech_status ech_gguf_writer_set_i32(ech_gguf_writer *w, const char *key, int32_t v);
ech_status ech_gguf_writer_set_u64(ech_gguf_writer *w, const char *key, uint64_t v);
ech_status ech_gguf_writer_set_f32(ech_gguf_writer *w, const char *key, float v);
ech_status ech_gguf_writer_set_bool(ech_gguf_writer *w, const char *key, bool v);
ech_status ech_gguf_writer_set_str(ech_gguf_writer *w, const char *key, const char *s);
/* An array of `n` fixed-size elements of `type`, packed little-endian. */
ech_status ech_gguf_writer_set_array(ech_gguf_writer *w, const char *key, ech_gguf_type type,
                                     const void *elems, uint64_t n);
/* An array of `n` NUL-terminated strings. */
ech_status ech_gguf_writer_set_str_array(ech_gguf_writer *w, const char *key,
                                         const char *const *strs, uint64_t n);

/* Add a tensor of `type` with `n_dims` dimensions `ne` (innermost first).
 * `data` holds its ech_type_nbytes() bytes and is borrowed until the file is
 * written.  Names must be unique. */
ech_status ech_gguf_writer_add_tensor(ech_gguf_writer *w, const char *name, uint32_t type,
                                      uint32_t n_dims, const uint64_t *ne, const void *data);

/* Write the file: to `path` through a temporary file renamed into place, so
 * a reader never sees half a file and a failure leaves no file behind. */
ech_status ech_gguf_writer_write_file(ech_gguf_writer *w, const char *path, ech_error *err);

/* Write into a malloc'ed buffer returned in *buf (caller frees) / *size. */
ech_status ech_gguf_writer_write_mem(ech_gguf_writer *w, uint8_t **buf, size_t *size,
                                     ech_error *err);

#ifdef __cplusplus
}
#endif
#endif
