/* arena.h - a bump allocator for memory that dies all at once.
 *
 * Per-request scratch, parse results and other short-lived graphs of small
 * objects are allocated from an arena and released together with
 * ech_arena_free() (or recycled with ech_arena_reset()).  Individual objects
 * are never freed.  Memory comes from malloc in blocks; a request larger than
 * the block size gets a block of its own.
 */
#ifndef ECH_CORE_ARENA_H
#define ECH_CORE_ARENA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ech_arena_block ech_arena_block;

typedef struct ech_arena {
    ech_arena_block *head;   /* current block; older blocks chain behind it */
    size_t block_size;       /* default size of a new block */
    size_t allocated;        /* bytes obtained from malloc, for accounting */
} ech_arena;

/* Initialise an empty arena.  No memory is taken until the first alloc.
 * `block_size` 0 picks a default (64 KiB). */
void ech_arena_init(ech_arena *a, size_t block_size);

/* `size` bytes aligned to `align` (a power of two, at most 4096; 0 means
 * max_align_t).  Returns NULL when out of memory or when size would
 * overflow.  The memory is owned by the arena. */
void *ech_arena_alloc(ech_arena *a, size_t size, size_t align);

/* Like ech_arena_alloc for `n` objects of `size` bytes, zero-filled; NULL on
 * overflow of n * size. */
void *ech_arena_calloc(ech_arena *a, size_t n, size_t size, size_t align);

/* A NUL-terminated copy of the `n` bytes at `s` (which need not be
 * NUL-terminated), owned by the arena. */
char *ech_arena_strndup(ech_arena *a, const char *s, size_t n);

/* Forget every allocation but keep the first block for reuse. */
void ech_arena_reset(ech_arena *a);

/* Release all memory; the arena is empty and may be used again. */
void ech_arena_free(ech_arena *a);

#ifdef __cplusplus
}
#endif
#endif
