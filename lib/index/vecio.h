/* vecio.h - reading embeddings: NDJSON records and .fvecs files.
 *
 * NDJSON, one record per line, as ech-embed writes it:
 *     {"id": 7 or "doc-7", "embedding": [0.1, ...], "text": "...", "source": "path", "chunk": 0}
 * "embedding" is required; "id" is a non-negative integer or a string
 * (absent: the caller numbers the record); "text", "source" and "chunk" are
 * kept as the record's payload, a JSON object with just those members.
 * A line that is a bare JSON array is an embedding with nothing else.
 *
 * .fvecs: records of an int32 dimension d followed by d float32 values,
 * little-endian; all records of a file have the same d.
 */
#ifndef ECH_INDEX_VECIO_H
#define ECH_INDEX_VECIO_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/status.h"
#include "index/index.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest NDJSON line accepted (bytes). */
#define ECH_VEC_MAX_LINE (256u << 20)

/* Buffers a parse reuses; zero-initialise, release with ech_vec_scratch_free. */
typedef struct ech_vec_scratch {
    float *v;
    size_t cap;
    ech_buf id, payload;
} ech_vec_scratch;

typedef struct ech_vec_record {
    ech_index_key key;       /* kind ECH_KEY_NONE when the record has no "id" */
    const float *vec;        /* dim values, in the scratch */
    size_t dim;
    const char *payload;     /* NULL when none; in the scratch */
    size_t payload_len;
} ech_vec_record;

/* Parse one NDJSON line (len bytes, no newline needed).  Everything the
 * record points to lives in `sc` until the next parse.  Bad JSON, a missing
 * or empty "embedding", a non-number, NaN/Inf, an id that is neither a
 * non-negative integer nor a string, or more than ECH_INDEX_MAX_DIM values
 * is ECH_ERR_FORMAT. */
ech_status ech_vec_parse_line(const char *line, size_t len, ech_vec_scratch *sc, ech_vec_record *rec,
                              ech_error *err);
void ech_vec_scratch_free(ech_vec_scratch *sc);

/* Check a whole .fvecs image: its dimension and record count (0 records for
 * an empty file, *dim 0).  A dimension out of range, a record of another
 * dimension or a truncated record is ECH_ERR_FORMAT with its byte offset. */
ech_status ech_fvecs_check(const void *data, size_t size, uint32_t *dim, size_t *count, ech_error *err);
/* Record i of a checked image (4-byte aligned when data is). */
const float *ech_fvecs_at(const void *data, uint32_t dim, size_t i);

/* Records from a file or stdin, one at a time: .fvecs when `fvecs` is 1, or
 * when it is -1 and the name ends in ".fvecs"; NDJSON otherwise (blank lines
 * are skipped).  `path` NULL or "-" is stdin.  Errors name the file and the
 * line (NDJSON) or record (.fvecs).  A record lives until the next call. */
typedef struct ech_vec_reader ech_vec_reader;
ech_status ech_vec_reader_open(const char *path, int fvecs, ech_vec_reader **out, ech_error *err);
/* The next record (*done = 0), or *done = 1 at the end. */
ech_status ech_vec_reader_next(ech_vec_reader *r, ech_vec_record *rec, int *done, ech_error *err);
void ech_vec_reader_close(ech_vec_reader *r);

#ifdef __cplusplus
}
#endif
#endif
