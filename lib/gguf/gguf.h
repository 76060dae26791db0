/* gguf.h - a validating reader for GGUF model files (versions 2 and 3).
 *
 * The reader checks the whole header against the file size before anyone
 * uses it: every count, length, dimension, offset and byte size, including
 * integer overflow.  A file that passes can be walked without further checks;
 * one that fails yields an ech_error naming the problem and its file offset.
 *
 * Nothing is copied that need not be: string values, scalar arrays and tensor
 * data point into the caller's buffer (or the mapping ech_gguf_open made).
 * Parsed structures live in one arena owned by the ech_gguf handle, so every
 * pointer handed out below is valid until ech_gguf_close() and must not be
 * freed by the caller.
 */
#ifndef ECH_GGUF_GGUF_H
#define ECH_GGUF_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "gguf/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ECH_GGUF_MAX_DIMS 4
#define ECH_GGUF_DEFAULT_ALIGNMENT 32
#define ECH_GGUF_MAX_NESTING 8   /* arrays of arrays deeper than this are refused */

/* Metadata value types, numbered as in the file format. */
typedef enum ech_gguf_type {
    ECH_GGUF_U8 = 0,
    ECH_GGUF_I8 = 1,
    ECH_GGUF_U16 = 2,
    ECH_GGUF_I16 = 3,
    ECH_GGUF_U32 = 4,
    ECH_GGUF_I32 = 5,
    ECH_GGUF_F32 = 6,
    ECH_GGUF_BOOL = 7,
    ECH_GGUF_STR = 8,
    ECH_GGUF_ARR = 9,
    ECH_GGUF_U64 = 10,
    ECH_GGUF_I64 = 11,
    ECH_GGUF_F64 = 12,
    ECH_GGUF_TYPE_COUNT
} ech_gguf_type;

/* A byte string that is not NUL-terminated and need not be valid UTF-8. */
typedef struct ech_str {
    const char *ptr;
    size_t len;
} ech_str;

typedef struct ech_gguf_value ech_gguf_value;

typedef struct ech_gguf_array {
    ech_gguf_type type;            /* element type */
    uint64_t n;                    /* element count */
    const void *raw;               /* fixed-size types: n packed little-endian
                                      elements, possibly unaligned; read them
                                      with the ech_gguf_array_* accessors */
    const ech_str *strs;           /* ECH_GGUF_STR: n strings */
    const ech_gguf_value *items;   /* ECH_GGUF_ARR: n nested array values */
} ech_gguf_array;

struct ech_gguf_value {
    ech_gguf_type type;
    union {
        uint64_t u;       /* U8, U16, U32, U64 */
        int64_t i;        /* I8, I16, I32, I64 */
        float f32;        /* F32 */
        double f64;       /* F64 */
        bool b;           /* BOOL */
        ech_str s;        /* STR */
        ech_gguf_array a; /* ARR */
    };
};

typedef struct ech_gguf_kv {
    const char *key;       /* NUL-terminated copy */
    uint64_t offset;       /* file offset of the key's length field */
    ech_gguf_value value;
} ech_gguf_kv;

typedef struct ech_gguf_tensor {
    const char *name;      /* NUL-terminated copy */
    uint32_t n_dims;       /* 1..ECH_GGUF_MAX_DIMS (0 is read as a scalar) */
    uint64_t ne[ECH_GGUF_MAX_DIMS]; /* elements per dimension, innermost first; unused = 1 */
    uint32_t type;         /* an ech_type */
    uint64_t offset;       /* data offset relative to the data section */
    uint64_t n_elements;
    uint64_t nbytes;
    const void *data;      /* the tensor's bytes inside the file */
} ech_gguf_tensor;

typedef struct ech_gguf ech_gguf;

/* Parse a GGUF image of `size` bytes at `data`.  The buffer is borrowed: it
 * must outlive the returned handle.  On failure *out is NULL. */
ech_status ech_gguf_parse(const void *data, size_t size, ech_gguf **out, ech_error *err);

/* Map the file at `path` read-only and parse it; the handle owns the mapping. */
ech_status ech_gguf_open(const char *path, ech_gguf **out, ech_error *err);

/* Like ech_gguf_open for an open descriptor (a pipe is read into memory);
 * `name` is used in messages.  The caller keeps ownership of `fd`. */
ech_status ech_gguf_open_fd(int fd, const char *name, ech_gguf **out, ech_error *err);

/* Release the handle, its arena and any mapping it owns.  NULL is a no-op. */
void ech_gguf_close(ech_gguf *g);

/* File-level facts. */
uint32_t ech_gguf_version(const ech_gguf *g);
uint32_t ech_gguf_alignment(const ech_gguf *g);
uint64_t ech_gguf_data_offset(const ech_gguf *g);    /* start of the tensor data section */
const uint8_t *ech_gguf_bytes(const ech_gguf *g);    /* the whole file image */
size_t ech_gguf_size(const ech_gguf *g);

/* Metadata, in file order.  Index out of range returns NULL. */
size_t ech_gguf_n_kv(const ech_gguf *g);
const ech_gguf_kv *ech_gguf_kv_at(const ech_gguf *g, size_t i);
const ech_gguf_kv *ech_gguf_find(const ech_gguf *g, const char *key);   /* NULL if absent */

/* Tensors, in file order. */
size_t ech_gguf_n_tensors(const ech_gguf *g);
const ech_gguf_tensor *ech_gguf_tensor_at(const ech_gguf *g, size_t i);
const ech_gguf_tensor *ech_gguf_find_tensor(const ech_gguf *g, const char *name);

/* Typed getters.  ECH_ERR_NOT_FOUND if the key is absent, ECH_ERR_FORMAT if
 * it has an incompatible type, ECH_ERR_RANGE if the value does not fit.
 * Integers of any width and signedness convert when the value fits; floats
 * accept F32 and F64. */
ech_status ech_gguf_get_u64(const ech_gguf *g, const char *key, uint64_t *out);
ech_status ech_gguf_get_i64(const ech_gguf *g, const char *key, int64_t *out);
ech_status ech_gguf_get_u32(const ech_gguf *g, const char *key, uint32_t *out);
ech_status ech_gguf_get_f64(const ech_gguf *g, const char *key, double *out);
ech_status ech_gguf_get_bool(const ech_gguf *g, const char *key, bool *out);
ech_status ech_gguf_get_str(const ech_gguf *g, const char *key, ech_str *out);
/* `*out` points into the handle. */
ech_status ech_gguf_get_array(const ech_gguf *g, const char *key, const ech_gguf_array **out);

/* Value conversions used by the getters; false if the type or range is wrong. */
bool ech_gguf_value_u64(const ech_gguf_value *v, uint64_t *out);
bool ech_gguf_value_i64(const ech_gguf_value *v, int64_t *out);
bool ech_gguf_value_f64(const ech_gguf_value *v, double *out);

/* Element i (< a->n) of a fixed-size array, read as the requested kind.  The
 * integer readers convert any integer or bool element type (u64 values above
 * INT64_MAX wrap in _i64); _f64 also reads integers. */
int64_t ech_gguf_array_i64(const ech_gguf_array *a, uint64_t i);
uint64_t ech_gguf_array_u64(const ech_gguf_array *a, uint64_t i);
double ech_gguf_array_f64(const ech_gguf_array *a, uint64_t i);

/* "u32", "str", ... ; "unknown" out of range. */
const char *ech_gguf_type_name(uint32_t t);
/* Bytes per element of a fixed-size type; 0 for STR, ARR and unknown types. */
size_t ech_gguf_type_size(uint32_t t);

#ifdef __cplusplus
}
#endif
#endif
