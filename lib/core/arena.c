/* arena.c - bump allocation in malloc'ed blocks. */
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ech_arena_block {
    ech_arena_block *prev;
    size_t size;   /* usable bytes in data[] */
    size_t used;
    _Alignas(max_align_t) unsigned char data[];
};

enum { ARENA_DEFAULT_BLOCK = 64 * 1024, ARENA_MAX_ALIGN = 4096 };

void ech_arena_init(ech_arena *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : ARENA_DEFAULT_BLOCK;
    a->allocated = 0;
}

static ech_arena_block *arena_grow(ech_arena *a, size_t need)
{
    size_t size = a->block_size;
    if (need > size)
        size = need;
    if (size > SIZE_MAX - sizeof(ech_arena_block))
        return NULL;
    ech_arena_block *b = malloc(sizeof *b + size);
    if (!b)
        return NULL;
    b->prev = a->head;
    b->size = size;
    b->used = 0;
    a->head = b;
    a->allocated += size;
    return b;
}

void *ech_arena_alloc(ech_arena *a, size_t size, size_t align)
{
    if (align == 0)
        align = _Alignof(max_align_t);
    if ((align & (align - 1)) != 0 || align > ARENA_MAX_ALIGN)
        return NULL;
    if (size == 0)
        size = 1;   /* distinct non-NULL pointers for empty objects */
    ech_arena_block *b = a->head;
    if (b) {
        uintptr_t base = (uintptr_t)b->data;
        size_t off = (size_t)(((base + b->used + align - 1) & ~(uintptr_t)(align - 1)) - base);
        if (off <= b->size && size <= b->size - off) {
            b->used = off + size;
            return b->data + off;
        }
    }
    /* Room for the object plus worst-case alignment padding. */
    if (size > SIZE_MAX - align)
        return NULL;
    b = arena_grow(a, size + align);
    if (!b)
        return NULL;
    uintptr_t base = (uintptr_t)b->data;
    size_t off = (size_t)(((base + align - 1) & ~(uintptr_t)(align - 1)) - base);
    b->used = off + size;
    return b->data + off;
}

void *ech_arena_calloc(ech_arena *a, size_t n, size_t size, size_t align)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = ech_arena_alloc(a, n * size, align);
    if (p)
        memset(p, 0, n * size);
    return p;
}

char *ech_arena_strndup(ech_arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *p = ech_arena_alloc(a, n + 1, 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void ech_arena_reset(ech_arena *a)
{
    ech_arena_block *b = a->head;
    if (!b)
        return;
    while (b->prev) {
        ech_arena_block *prev = b->prev;
        a->allocated -= b->size;
        free(b);
        b = prev;
    }
    b->used = 0;
    a->head = b;
}

void ech_arena_free(ech_arena *a)
{
    ech_arena_block *b = a->head;
    while (b) {
        ech_arena_block *prev = b->prev;
        free(b);
        b = prev;
    }
    a->head = NULL;
    a->allocated = 0;
}
