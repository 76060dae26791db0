/* index_impl.h - the inside of an ech_index, shared by index.c and store.c
 * (internal, not installed).
 *
 * Level 0 is one array of fixed-size blocks, one per element, so that a
 * node's links and its vector are adjacent (one stream of cache lines per
 * visited node):
 *     u32 head (bits 0-15: link count, bit 16: deleted) | u32 links[M0] | float vec[dim]
 * The upper levels of element i are (M+1)-word lists (count, then M links),
 * one per level above 0, at upper[upper_off[i] .. upper_off[i+1]); the
 * element's level is that length / (M+1).  Keys and payloads live in
 * offset arrays over byte blobs.  A mapped index points all of these into
 * the file; thaw() copies them into owned memory before the first change.
 */
#ifndef ECH_INDEX_INDEX_IMPL_H
#define ECH_INDEX_INDEX_IMPL_H

#include <pthread.h>
#include <stdint.h>

#include "core/mapfile.h"
#include "index/index.h"

#define ECH_HEAD_COUNT 0xFFFFu
#define ECH_HEAD_DELETED 0x10000u
#define ECH_NO_ELEM UINT32_MAX
#define ECH_INDEX_MAX_LEVEL 30

struct ech_index {
    ech_index_params p;
    ech_dist_fn dist;
    uint32_t M0;
    size_t vec_off;        /* bytes from a block's start to its vector */
    size_t block;          /* bytes per level-0 block */
    size_t n, cap;
    uint8_t *level0;
    uint32_t *upper_off;   /* n + 1 entries */
    uint32_t *upper;
    size_t upper_cap;      /* words */
    ech_key_kind key_kind;
    uint64_t *keys;        /* ECH_KEY_U64; NULL when a file said key i == i */
    uint64_t *key_off;     /* ECH_KEY_STRING: n + 1 offsets into key_blob */
    char *key_blob;
    size_t key_blob_cap;
    uint64_t *pay_off;     /* n + 1 offsets into pay_blob */
    char *pay_blob;
    size_t pay_blob_cap;
    uint32_t entry;        /* ECH_NO_ELEM when empty */
    int max_level;
    size_t n_deleted;
    uint64_t rng;          /* the level generator's state */
    int mapped;            /* arrays point into `map` / caller memory */
    ech_mapfile map;
    /* key -> element of the live elements, built on first need */
    uint32_t *tab;
    size_t tab_cap, tab_used;
    int tab_valid;
    /* construction with several threads */
    pthread_mutex_t *locks;
    pthread_mutex_t global;
    int locking;
};

static inline uint32_t *ech_idx_links0(const ech_index *idx, uint32_t i)
{
    return (uint32_t *)(void *)(idx->level0 + (size_t)i * idx->block);
}

static inline const float *ech_idx_vec(const ech_index *idx, uint32_t i)
{
    return (const float *)(const void *)(idx->level0 + (size_t)i * idx->block + idx->vec_off);
}

static inline int ech_idx_level(const ech_index *idx, uint32_t i)
{
    return (int)((idx->upper_off[i + 1] - idx->upper_off[i]) / (idx->p.M + 1));
}

/* The list (count word first) of element i at level l >= 0. */
static inline uint32_t *ech_idx_links(const ech_index *idx, uint32_t i, int l)
{
    if (l == 0)
        return ech_idx_links0(idx, i);
    return idx->upper + idx->upper_off[i] + (size_t)(l - 1) * (idx->p.M + 1);
}

ech_status ech_index_check_params(const ech_index_params *p, ech_error *err);

/* Fill the derived fields (dist, M0, vec_off, block) from idx->p. */
void ech_index_layout(ech_index *idx);

#endif
