/* index.h - a vector index: HNSW graph, keys, payloads, one mmap'able file.
 *
 * An ech_index holds float32 vectors of one dimension under one metric
 * (index/distance.h), each with a key (a uint64 or a string; one kind per
 * index) and an optional payload (bytes, by convention a JSON object such as
 * {"text":...,"source":...}).  Search is HNSW (Malkov & Yashunin): a graph
 * with M links per node on the upper levels and 2M on level 0, built with
 * efConstruction candidates; efSearch is stored in the index and can be
 * overridden per query.
 *
 * Elements are numbered 0..n-1 in insertion order; search results name
 * elements, and ech_index_key/ech_index_payload turn them into keys and
 * payloads.  Deleting tombstones an element: it is never returned again but
 * still routes searches; ech_index_compact rebuilds without tombstones.
 *
 * Files: ech_index_save writes one versioned, checksummed file (CRC-32C),
 * through a temporary file in the same directory and a rename, so a failed
 * save leaves an existing file as it was.  ech_index_open maps it, validates
 * the header, every section, offset and link and the checksum, and searches
 * it in place; the first change (add, delete) copies it into memory.
 *
 * Threads: searches may run concurrently, each with its own
 * ech_index_searcher; changes need the index to themselves.
 */
#ifndef ECH_INDEX_INDEX_H
#define ECH_INDEX_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "index/distance.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ech_index ech_index;

typedef enum ech_key_kind {
    ECH_KEY_NONE = 0,   /* an empty index: fixed by the first element added */
    ECH_KEY_U64 = 1,
    ECH_KEY_STRING = 2,
} ech_key_kind;

typedef struct ech_index_key {
    ech_key_kind kind;
    uint64_t num;        /* ECH_KEY_U64 */
    const char *str;     /* ECH_KEY_STRING: len bytes, not NUL-terminated */
    size_t len;
} ech_index_key;

typedef struct ech_index_params {
    ech_metric metric;
    uint32_t dim;
    uint32_t M;                /* links per node on the upper levels (2M on level 0) */
    uint32_t ef_construction;
    uint32_t ef_search;        /* the default for queries */
    uint64_t seed;             /* of the level draws */
} ech_index_params;

#define ECH_INDEX_MAX_DIM 65536u
#define ECH_INDEX_MAX_M 256u
#define ECH_INDEX_MAX_EF 100000u
#define ECH_INDEX_MAX_ELEMENTS 0xFFFFFFF0u
#define ECH_INDEX_MAX_KEY 65535u

/* metric cosine, dim 0 (must be set), M 16, efConstruction 200, efSearch 64, seed 100. */
void ech_index_params_default(ech_index_params *p);

/* A new, empty index. */
ech_status ech_index_new(const ech_index_params *p, ech_index **out, ech_error *err);
void ech_index_free(ech_index *idx);

/* One element to add: `vec` has the index's dim floats (copied; for cosine
 * the copy is normalised); payload may be NULL. */
typedef struct ech_index_item {
    ech_index_key key;
    const float *vec;
    const char *payload;
    size_t payload_len;
} ech_index_item;

/* Add n elements with up to `threads` threads (0: OpenMP's default).
 * Everything is checked before anything changes: a key of the wrong kind, a
 * key already live in the index or repeated in the batch, a NaN or infinite
 * value, or (cosine) a zero vector fails the whole call with the item's
 * number in the message, and the index is as it was.  Levels are drawn from
 * the seeded generator in item order, so they do not depend on `threads`;
 * with one thread the whole graph is reproducible. */
ech_status ech_index_add(ech_index *idx, const ech_index_item *items, size_t n, int threads, ech_error *err);

/* Tombstone the live element with `key`; ECH_ERR_NOT_FOUND if none. */
ech_status ech_index_delete(ech_index *idx, const ech_index_key *key, ech_error *err);

/* The element with `key` (live ones only); -1 if none. */
int64_t ech_index_find(ech_index *idx, const ech_index_key *key);

/* A new index with the live elements only (same parameters, keys, payloads
 * and insertion order), built with `threads` threads. */
ech_status ech_index_compact(const ech_index *idx, int threads, ech_index **out, ech_error *err);

/* Write to `path` (temporary file + rename). */
ech_status ech_index_save(const ech_index *idx, const char *path, ech_error *err);
/* Serialise into a malloc'ed buffer (the caller frees it). */
ech_status ech_index_save_mem(const ech_index *idx, uint8_t **data, size_t *size, ech_error *err);
/* Map and validate the file at `path`. */
ech_status ech_index_open(const char *path, ech_index **out, ech_error *err);
/* Validate and use `size` bytes at `data` in place; `data` must stay valid
 * (and be 8-byte aligned) until ech_index_free. */
ech_status ech_index_open_mem(const void *data, size_t size, ech_index **out, ech_error *err);

/* Facts. */
void ech_index_get_params(const ech_index *idx, ech_index_params *p);
void ech_index_set_ef_search(ech_index *idx, uint32_t ef);
size_t ech_index_size(const ech_index *idx);       /* elements, tombstones included */
size_t ech_index_live(const ech_index *idx);       /* elements not deleted */
ech_key_kind ech_index_key_kind(const ech_index *idx);
int ech_index_max_level(const ech_index *idx);

/* Element accessors (elem < ech_index_size); pointers are borrowed from the
 * index and live until it is changed or freed. */
void ech_index_key_at(const ech_index *idx, uint32_t elem, ech_index_key *key);
const char *ech_index_payload(const ech_index *idx, uint32_t elem, size_t *len);  /* NULL if none */
const float *ech_index_vector(const ech_index *idx, uint32_t elem);
int ech_index_is_deleted(const ech_index *idx, uint32_t elem);

/* Search. */
typedef struct ech_index_hit {
    uint32_t elem;
    float dist;    /* ech_dist_to_score turns it into a score */
} ech_index_hit;

/* Decide whether element `elem` may be returned (nonzero: yes). */
typedef int (*ech_index_filter_fn)(const ech_index *idx, uint32_t elem, void *ctx);

typedef struct ech_index_searcher ech_index_searcher;
ech_status ech_index_searcher_new(const ech_index *idx, ech_index_searcher **out, ech_error *err);
void ech_index_searcher_free(ech_index_searcher *s);

/* The k nearest live elements to `query` (dim floats; normalised here for
 * cosine), nearest first, in hits[0..*n_hits).  ef 0 means the index's
 * efSearch; the search looks at max(ef, k) candidates.  `filter` (may be
 * NULL) excludes elements from the results (not from the routing).  A query
 * with a NaN or infinite value is ECH_ERR_INVALID.  The searcher must have
 * been made for this index after its last change. */
ech_status ech_index_search(ech_index_searcher *s, const float *query, size_t k, uint32_t ef,
                            ech_index_filter_fn filter, void *filter_ctx, ech_index_hit *hits, size_t *n_hits,
                            ech_error *err);

/* The same by exhaustive scan (for tests and small indexes). */
ech_status ech_index_search_exact(const ech_index *idx, const float *query, size_t k,
                                  ech_index_filter_fn filter, void *filter_ctx, ech_index_hit *hits,
                                  size_t *n_hits, ech_error *err);

/* Statistics of the last search with this searcher: distances computed. */
uint64_t ech_index_searcher_ndist(const ech_index_searcher *s);

#ifdef __cplusplus
}
#endif
#endif
