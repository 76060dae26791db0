/* gguf.c - parse and validate a GGUF image.
 *
 * Layout (all little-endian):
 *   "GGUF" u32 version  u64 n_tensors  u64 n_kv
 *   n_kv x { str key, u32 type, value }
 *   n_tensors x { str name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }
 *   padding to `general.alignment`, then the tensor data section.
 * where str = u64 length + bytes, and an array value = u32 type, u64 n, items.
 *
 * Every read goes through the cursor, which refuses to step past the end.
 * Counts are checked against the bytes left *before* anything is allocated
 * for them, so memory use is bounded by a small multiple of the file size.
 */
#include "config.h"
#include "gguf/gguf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/mapfile.h"

struct ech_gguf {
    ech_arena arena;
    ech_mapfile map;           /* owned mapping (ech_gguf_open), else empty */
    const uint8_t *base;
    size_t size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    ech_gguf_kv *kvs;
    size_t n_kv;
    ech_gguf_tensor *tensors;
    size_t n_tensors;
    uint32_t *kv_hash;         /* open addressing: index + 1, 0 = empty */
    uint32_t *tensor_hash;
    size_t kv_hash_cap, tensor_hash_cap;
};

typedef struct cursor {
    const uint8_t *base;
    size_t size;
    size_t pos;
    ech_error *err;
    ech_arena *arena;
} cursor;

static const uint8_t gguf_type_sizes[ECH_GGUF_TYPE_COUNT] = {
    [ECH_GGUF_U8] = 1, [ECH_GGUF_I8] = 1, [ECH_GGUF_U16] = 2, [ECH_GGUF_I16] = 2,
    [ECH_GGUF_U32] = 4, [ECH_GGUF_I32] = 4, [ECH_GGUF_F32] = 4, [ECH_GGUF_BOOL] = 1,
    [ECH_GGUF_STR] = 0, [ECH_GGUF_ARR] = 0, [ECH_GGUF_U64] = 8, [ECH_GGUF_I64] = 8,
    [ECH_GGUF_F64] = 8,
};

static const char *const gguf_type_names[ECH_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64",
};

const char *ech_gguf_type_name(uint32_t t)
{
    return t < ECH_GGUF_TYPE_COUNT ? gguf_type_names[t] : "unknown";
}

size_t ech_gguf_type_size(uint32_t t)
{
    return t < ECH_GGUF_TYPE_COUNT ? gguf_type_sizes[t] : 0;
}

/* ---- little-endian loads (the host is little-endian; configure checks) ---- */

static uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static size_t remaining(const cursor *c) { return c->size - c->pos; }

static bool need(cursor *c, uint64_t n, const char *what)
{
    if (n > remaining(c)) {
        ech_error_set(c->err, ECH_ERR_FORMAT,
                      "truncated at offset %zu: %s needs %" PRIu64 " bytes, only %zu left",
                      c->pos, what, n, remaining(c));
        return false;
    }
    return true;
}

static bool rd_u32(cursor *c, uint32_t *v, const char *what)
{
    if (!need(c, 4, what))
        return false;
    *v = ld32(c->base + c->pos);
    c->pos += 4;
    return true;
}

static bool rd_u64(cursor *c, uint64_t *v, const char *what)
{
    if (!need(c, 8, what))
        return false;
    *v = ld64(c->base + c->pos);
    c->pos += 8;
    return true;
}

static bool fail(cursor *c, ech_status code, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool fail(cursor *c, ech_status code, size_t at, const char *fmt, ...)
{
    char detail[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    ech_error_set(c->err, code, "at offset %zu: %s", at, detail);
    return false;
}

static bool rd_str(cursor *c, ech_str *s, const char *what)
{
    size_t at = c->pos;
    uint64_t len;
    if (!rd_u64(c, &len, what))
        return false;
    if (len > remaining(c)) {
        ech_error_set(c->err, ECH_ERR_FORMAT,
                      "at offset %zu: %s has length %" PRIu64 " but only %zu bytes follow",
                      at, what, len, remaining(c));
        return false;
    }
    s->ptr = (const char *)c->base + c->pos;
    s->len = (size_t)len;
    c->pos += (size_t)len;
    return true;
}

/* A name (key or tensor name) becomes a NUL-terminated arena copy; an
 * embedded NUL would make it unaddressable by name, so it is refused. */
static bool rd_name(cursor *c, const char **out, const char *what)
{
    size_t at = c->pos;
    ech_str s;
    if (!rd_str(c, &s, what))
        return false;
    if (memchr(s.ptr, '\0', s.len))
        return fail(c, ECH_ERR_FORMAT, at, "%s contains a NUL byte", what);
    char *p = ech_arena_strndup(c->arena, s.ptr, s.len);
    if (!p) {
        ech_error_set(c->err, ECH_ERR_NOMEM, "out of memory reading %s", what);
        return false;
    }
    *out = p;
    return true;
}

static bool rd_scalar(cursor *c, ech_gguf_type t, const uint8_t *p, ech_gguf_value *v)
{
    v->type = t;
    switch (t) {
    case ECH_GGUF_U8: v->u = p[0]; break;
    case ECH_GGUF_I8: v->i = (int8_t)p[0]; break;
    case ECH_GGUF_U16: v->u = ld16(p); break;
    case ECH_GGUF_I16: v->i = (int16_t)ld16(p); break;
    case ECH_GGUF_U32: v->u = ld32(p); break;
    case ECH_GGUF_I32: v->i = (int32_t)ld32(p); break;
    case ECH_GGUF_U64: v->u = ld64(p); break;
    case ECH_GGUF_I64: v->i = (int64_t)ld64(p); break;
    case ECH_GGUF_F32: memcpy(&v->f32, p, 4); break;
    case ECH_GGUF_F64: memcpy(&v->f64, p, 8); break;
    case ECH_GGUF_BOOL:
        /* Only 0 and 1 are booleans; anything else is a corrupt byte. */
        if (p[0] > 1)
            return fail(c, ECH_ERR_FORMAT, (size_t)(p - c->base),
                        "invalid bool value %u", p[0]);
        v->b = p[0] != 0;
        break;
    default:
        return false;
    }
    return true;
}

static bool rd_value(cursor *c, ech_gguf_type t, ech_gguf_value *v, int depth);

static bool rd_array(cursor *c, ech_gguf_value *v, int depth)
{
    size_t at = c->pos;
    uint32_t et;
    uint64_t n;
    if (!rd_u32(c, &et, "array element type") || !rd_u64(c, &n, "array length"))
        return false;
    if (et >= ECH_GGUF_TYPE_COUNT)
        return fail(c, ECH_ERR_FORMAT, at, "unknown array element type %" PRIu32, et);
    ech_gguf_array *a = &v->a;
    v->type = ECH_GGUF_ARR;
    a->type = (ech_gguf_type)et;
    a->n = n;
    a->raw = NULL;
    a->strs = NULL;
    a->items = NULL;
    size_t esz = gguf_type_sizes[et];
    if (esz) {
        if (n > remaining(c) / esz)
            return fail(c, ECH_ERR_FORMAT, at,
                        "array of %s with %" PRIu64 " elements runs past the end of the file",
                        gguf_type_names[et], n);
        a->raw = c->base + c->pos;
        if (et == ECH_GGUF_BOOL) {
            for (uint64_t i = 0; i < n; i++)
                if (c->base[c->pos + i] > 1)
                    return fail(c, ECH_ERR_FORMAT, c->pos + (size_t)i,
                                "invalid bool value in array (element %" PRIu64 ")", i);
        }
        c->pos += (size_t)(n * esz);
        return true;
    }
    if (et == ECH_GGUF_STR) {
        /* each string costs at least its 8-byte length */
        if (n > remaining(c) / 8)
            return fail(c, ECH_ERR_FORMAT, at,
                        "array of %s with %" PRIu64 " elements runs past the end of the file",
                        "str", n);
        ech_str *s = ech_arena_calloc(c->arena, (size_t)n, sizeof *s, 0);
        if (!s && n) {
            ech_error_set(c->err, ECH_ERR_NOMEM, "out of memory for %" PRIu64 " strings", n);
            return false;
        }
        for (uint64_t i = 0; i < n; i++)
            if (!rd_str(c, &s[i], "array string"))
                return false;
        a->strs = s;
        return true;
    }
    /* nested arrays: each costs at least 12 bytes (type + length) */
    if (depth >= ECH_GGUF_MAX_NESTING)
        return fail(c, ECH_ERR_UNSUPPORTED, at, "arrays nested deeper than %d levels",
                    ECH_GGUF_MAX_NESTING);
    if (n > remaining(c) / 12)
        return fail(c, ECH_ERR_FORMAT, at,
                    "array of %s with %" PRIu64 " elements runs past the end of the file", "arr", n);
    ech_gguf_value *items = ech_arena_calloc(c->arena, (size_t)n, sizeof *items, 0);
    if (!items && n) {
        ech_error_set(c->err, ECH_ERR_NOMEM, "out of memory for %" PRIu64 " nested arrays", n);
        return false;
    }
    for (uint64_t i = 0; i < n; i++)
        if (!rd_value(c, ECH_GGUF_ARR, &items[i], depth + 1))
            return false;
    a->items = items;
    return true;
}

static bool rd_value(cursor *c, ech_gguf_type t, ech_gguf_value *v, int depth)
{
    if (t == ECH_GGUF_STR) {
        v->type = t;
        return rd_str(c, &v->s, "string value");
    }
    if (t == ECH_GGUF_ARR)
        return rd_array(c, v, depth);
    size_t esz = gguf_type_sizes[t];
    if (!need(c, esz, gguf_type_names[t]))
        return false;
    if (!rd_scalar(c, t, c->base + c->pos, v))
        return false;
    c->pos += esz;
    return true;
}

/* ---- name hash (FNV-1a), used for duplicate detection and lookup ---- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static size_t hash_cap_for(size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    return cap;
}

/* Insert name #idx; returns the index of an earlier equal name, or SIZE_MAX. */
static size_t hash_insert(uint32_t *tab, size_t cap, const char *name, size_t idx,
                          const char *(*name_of)(const ech_gguf *, size_t), const ech_gguf *g)
{
    size_t m = cap - 1, i = (size_t)hash_name(name) & m;
    while (tab[i]) {
        size_t other = tab[i] - 1;
        if (strcmp(name_of(g, other), name) == 0)
            return other;
        i = (i + 1) & m;
    }
    tab[i] = (uint32_t)(idx + 1);
    return SIZE_MAX;
}

static size_t hash_find(const uint32_t *tab, size_t cap, const char *name,
                        const char *(*name_of)(const ech_gguf *, size_t), const ech_gguf *g)
{
    if (!tab)
        return SIZE_MAX;
    size_t m = cap - 1, i = (size_t)hash_name(name) & m;
    while (tab[i]) {
        size_t idx = tab[i] - 1;
        if (strcmp(name_of(g, idx), name) == 0)
            return idx;
        i = (i + 1) & m;
    }
    return SIZE_MAX;
}

static const char *kv_name(const ech_gguf *g, size_t i) { return g->kvs[i].key; }
static const char *tensor_name(const ech_gguf *g, size_t i) { return g->tensors[i].name; }

/* ---- header sections ---- */

static ech_status parse_header(ech_gguf *g, cursor *c, uint64_t *n_tensors, uint64_t *n_kv)
{
    if (c->size < 4 || memcmp(c->base, "GGUF", 4) != 0) {
        if (c->size >= 4 && memcmp(c->base, "FUGG", 4) == 0)
            return ech_error_set(c->err, ECH_ERR_UNSUPPORTED,
                                 "big-endian GGUF files are not supported");
        return ech_error_set(c->err, ECH_ERR_FORMAT,
                             "not a GGUF file (the first 4 bytes are not \"GGUF\")");
    }
    c->pos = 4;
    uint32_t version;
    if (!rd_u32(c, &version, "version"))
        return c->err ? c->err->code : ECH_ERR_FORMAT;
    /* A big-endian file stores small versions as 0x0N000000. */
    if ((version & 0xFFFF) == 0 && version != 0)
        return ech_error_set(c->err, ECH_ERR_UNSUPPORTED,
                             "big-endian GGUF files are not supported (version field 0x%08" PRIx32 ")",
                             version);
    if (version == 1)
        return ech_error_set(c->err, ECH_ERR_UNSUPPORTED,
                             "GGUF version 1 is not supported (a 2023 pre-release format); "
                             "re-convert the model with a current converter");
    if (version != 2 && version != 3)
        return ech_error_set(c->err, ECH_ERR_UNSUPPORTED,
                             "GGUF version %" PRIu32 " is not supported (only 2 and 3)", version);
    g->version = version;
    if (!rd_u64(c, n_tensors, "tensor count") || !rd_u64(c, n_kv, "metadata count"))
        return c->err ? c->err->code : ECH_ERR_FORMAT;
    /* A key/value needs >= 13 bytes (key length, type, smallest value); a
     * tensor info >= 28 (name length, n_dims, one dim, type, offset). */
    if (*n_kv > remaining(c) / 13 || *n_kv > UINT32_MAX - 1)
        return ech_error_set(c->err, ECH_ERR_FORMAT,
                             "at offset 16: metadata count %" PRIu64 " cannot fit in the %zu bytes left",
                             *n_kv, remaining(c));
    if (*n_tensors > remaining(c) / 28 || *n_tensors > UINT32_MAX - 1)
        return ech_error_set(c->err, ECH_ERR_FORMAT,
                             "at offset 8: tensor count %" PRIu64 " cannot fit in the %zu bytes left",
                             *n_tensors, remaining(c));
    return ECH_OK;
}

static ech_status parse_kvs(ech_gguf *g, cursor *c, uint64_t n_kv)
{
    g->n_kv = (size_t)n_kv;
    g->kvs = ech_arena_calloc(&g->arena, g->n_kv, sizeof *g->kvs, 0);
    g->kv_hash_cap = hash_cap_for(g->n_kv);
    g->kv_hash = ech_arena_calloc(&g->arena, g->kv_hash_cap, sizeof *g->kv_hash, 0);
    if (!g->kvs || !g->kv_hash)
        return ech_error_set(c->err, ECH_ERR_NOMEM, "out of memory for %zu metadata entries", g->n_kv);
    for (size_t i = 0; i < g->n_kv; i++) {
        ech_gguf_kv *kv = &g->kvs[i];
        kv->offset = c->pos;
        if (!rd_name(c, &kv->key, "metadata key"))
            return c->err ? c->err->code : ECH_ERR_FORMAT;
        size_t at = c->pos;
        uint32_t t;
        if (!rd_u32(c, &t, "metadata value type"))
            return c->err ? c->err->code : ECH_ERR_FORMAT;
        if (t >= ECH_GGUF_TYPE_COUNT)
            return ech_error_set(c->err, ECH_ERR_FORMAT,
                                 "at offset %zu: key '%.80s' has unknown value type %" PRIu32,
                                 at, kv->key, t);
        if (!rd_value(c, (ech_gguf_type)t, &kv->value, 0)) {
            if (c->err) {
                /* prefix the key so the message says where in terms a user knows */
                char inner[sizeof c->err->msg];
                memcpy(inner, c->err->msg, sizeof inner);
                ech_error_set(c->err, c->err->code, "key '%.80s': %s", kv->key, inner);
                return c->err->code;
            }
            return ECH_ERR_FORMAT;
        }
        size_t dup = hash_insert(g->kv_hash, g->kv_hash_cap, kv->key, i, kv_name, g);
        if (dup != SIZE_MAX)
            return ech_error_set(c->err, ECH_ERR_FORMAT,
                                 "at offset %" PRIu64 ": duplicate metadata key '%.80s'",
                                 kv->offset, kv->key);
    }
    return ECH_OK;
}

static ech_status parse_alignment(ech_gguf *g, ech_error *err)
{
    g->alignment = ECH_GGUF_DEFAULT_ALIGNMENT;
    const ech_gguf_kv *kv = ech_gguf_find(g, "general.alignment");
    if (!kv)
        return ECH_OK;
    if (kv->value.type != ECH_GGUF_U32)
        return ech_error_set(err, ECH_ERR_FORMAT,
                             "at offset %" PRIu64 ": general.alignment must be u32, not %s",
                             kv->offset, ech_gguf_type_name(kv->value.type));
    uint64_t a = kv->value.u;
    if (a == 0 || (a & (a - 1)) != 0)
        return ech_error_set(err, ECH_ERR_FORMAT,
                             "at offset %" PRIu64 ": general.alignment %" PRIu64 " is not a power of two",
                             kv->offset, a);
    g->alignment = (uint32_t)a;
    return ECH_OK;
}

static ech_status parse_tensor_infos(ech_gguf *g, cursor *c, uint64_t n_tensors)
{
    g->n_tensors = (size_t)n_tensors;
    g->tensors = ech_arena_calloc(&g->arena, g->n_tensors, sizeof *g->tensors, 0);
    g->tensor_hash_cap = hash_cap_for(g->n_tensors);
    g->tensor_hash = ech_arena_calloc(&g->arena, g->tensor_hash_cap, sizeof *g->tensor_hash, 0);
    if (!g->tensors || !g->tensor_hash)
        return ech_error_set(c->err, ECH_ERR_NOMEM, "out of memory for %zu tensors", g->n_tensors);
    for (size_t i = 0; i < g->n_tensors; i++) {
        ech_gguf_tensor *t = &g->tensors[i];
        size_t at = c->pos;
        if (!rd_name(c, &t->name, "tensor name"))
            return c->err ? c->err->code : ECH_ERR_FORMAT;
        size_t dims_at = c->pos;
        if (!rd_u32(c, &t->n_dims, "tensor dimension count"))
            return c->err ? c->err->code : ECH_ERR_FORMAT;
        if (t->n_dims > ECH_GGUF_MAX_DIMS)
            return ech_error_set(c->err, ECH_ERR_FORMAT,
                                 "at offset %zu: tensor '%.80s' has %" PRIu32 " dimensions (at most %d)",
                                 dims_at, t->name, t->n_dims, ECH_GGUF_MAX_DIMS);
        uint64_t n_el = 1;
        for (int d = 0; d < ECH_GGUF_MAX_DIMS; d++)
            t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            size_t dat = c->pos;
            if (!rd_u64(c, &t->ne[d], "tensor dimension"))
                return c->err ? c->err->code : ECH_ERR_FORMAT;
            if (t->ne[d] > (uint64_t)INT64_MAX || (t->ne[d] && n_el > (uint64_t)INT64_MAX / t->ne[d]))
                return ech_error_set(c->err, ECH_ERR_FORMAT,
                                     "at offset %zu: tensor '%.80s' dimension %" PRIu32
                                     " (%" PRIu64 ") makes the element count overflow",
                                     dat, t->name, d, t->ne[d]);
            n_el *= t->ne[d];
        }
        t->n_elements = n_el;
        size_t type_at = c->pos;
        if (!rd_u32(c, &t->type, "tensor type") || !rd_u64(c, &t->offset, "tensor offset"))
            return c->err ? c->err->code : ECH_ERR_FORMAT;
        const ech_type_info *ti = ech_type_info_get(t->type);
        if (!ti)
            return ech_error_set(c->err, ECH_ERR_UNSUPPORTED,
                                 "at offset %zu: tensor '%.80s' has unknown type %" PRIu32,
                                 type_at, t->name, t->type);
        if (t->ne[0] % ti->block_size != 0)
            return ech_error_set(c->err, ECH_ERR_FORMAT,
                                 "at offset %zu: tensor '%.80s' has rows of %" PRIu64
                                 " elements, not a multiple of %s's block size %" PRIu32,
                                 dims_at, t->name, t->ne[0], ti->name, ti->block_size);
        if (ech_type_nbytes(t->type, n_el, &t->nbytes) != ECH_OK)
            return ech_error_set(c->err, ECH_ERR_FORMAT,
                                 "at offset %zu: tensor '%.80s' byte size overflows", at, t->name);
        size_t dup = hash_insert(g->tensor_hash, g->tensor_hash_cap, t->name, i, tensor_name, g);
        if (dup != SIZE_MAX)
            return ech_error_set(c->err, ECH_ERR_FORMAT,
                                 "at offset %zu: duplicate tensor name '%.80s'", at, t->name);
    }
    return ECH_OK;
}

static int cmp_by_offset(const void *a, const void *b, void *ctx)
{
    const ech_gguf_tensor *ts = ctx;
    const ech_gguf_tensor *x = &ts[*(const uint32_t *)a], *y = &ts[*(const uint32_t *)b];
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* Tensor data must lie inside the file, aligned, and not overlap. */
static ech_status place_tensors(ech_gguf *g, cursor *c)
{
    uint64_t a = g->alignment;
    uint64_t off = c->pos;
    if (off > UINT64_MAX - (a - 1))
        return ech_error_set(c->err, ECH_ERR_FORMAT, "data offset overflows");
    g->data_offset = (off + a - 1) / a * a;
    if (g->n_tensors == 0)
        return ECH_OK;
    if (g->data_offset > g->size)
        return ech_error_set(c->err, ECH_ERR_FORMAT,
                             "truncated: tensor data should start at offset %" PRIu64
                             " but the file has %zu bytes", g->data_offset, g->size);
    uint64_t avail = g->size - g->data_offset;
    for (size_t i = 0; i < g->n_tensors; i++) {
        ech_gguf_tensor *t = &g->tensors[i];
        if (t->offset % a != 0)
            return ech_error_set(c->err, ECH_ERR_FORMAT,
                                 "tensor '%.80s': data offset %" PRIu64 " is not aligned to %" PRIu64,
                                 t->name, t->offset, a);
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return ech_error_set(c->err, ECH_ERR_FORMAT,
                                 "truncated: tensor '%.80s' needs bytes %" PRIu64 "..%" PRIu64
                                 " of the file, which has %zu",
                                 t->name, g->data_offset + t->offset,
                                 g->data_offset + t->offset + t->nbytes, g->size);
        t->data = g->base + g->data_offset + t->offset;
    }
    /* Overlap check: sort indices by offset and compare neighbours. */
    uint32_t *order = malloc(g->n_tensors * sizeof *order);
    if (!order)
        return ech_error_set(c->err, ECH_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < g->n_tensors; i++)
        order[i] = (uint32_t)i;
    qsort_r(order, g->n_tensors, sizeof *order, cmp_by_offset, g->tensors);
    ech_status st = ECH_OK;
    for (size_t i = 1; i < g->n_tensors; i++) {
        const ech_gguf_tensor *p = &g->tensors[order[i - 1]], *q = &g->tensors[order[i]];
        if (p->nbytes && q->nbytes && p->offset + p->nbytes > q->offset) {
            st = ech_error_set(c->err, ECH_ERR_FORMAT, "tensors '%.80s' and '%.80s' overlap",
                               p->name, q->name);
            break;
        }
    }
    free(order);
    return st;
}

ech_status ech_gguf_parse(const void *data, size_t size, ech_gguf **out, ech_error *err)
{
    *out = NULL;
    if (!data && size)
        return ech_error_set(err, ECH_ERR_INVALID, "NULL buffer");
    ech_gguf *g = calloc(1, sizeof *g);
    if (!g)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    ech_arena_init(&g->arena, 0);
    g->base = data;
    g->size = size;
    ech_error local;
    cursor c = {.base = data, .size = size, .pos = 0, .err = err ? err : &local, .arena = &g->arena};
    uint64_t n_tensors = 0, n_kv = 0;
    ech_status st = parse_header(g, &c, &n_tensors, &n_kv);
    if (st == ECH_OK)
        st = parse_kvs(g, &c, n_kv);
    if (st == ECH_OK)
        st = parse_alignment(g, c.err);
    if (st == ECH_OK)
        st = parse_tensor_infos(g, &c, n_tensors);
    if (st == ECH_OK)
        st = place_tensors(g, &c);
    if (st != ECH_OK) {
        ech_gguf_close(g);
        return st;
    }
    *out = g;
    return ECH_OK;
}

static ech_status parse_owned(ech_mapfile *mf, const char *name, ech_gguf **out, ech_error *err)
{
    ech_status st = ech_gguf_parse(mf->data, mf->size, out, err);
    if (st != ECH_OK) {
        ech_mapfile_close(mf);
        if (err) {
            char inner[sizeof err->msg];
            memcpy(inner, err->msg, sizeof inner);
            ech_error_set(err, st, "%s: %s", name, inner);
        }
        return st;
    }
    (*out)->map = *mf;
    return ECH_OK;
}

ech_status ech_gguf_open(const char *path, ech_gguf **out, ech_error *err)
{
    ech_mapfile mf;
    *out = NULL;
    ech_status st = ech_mapfile_open(&mf, path, err);
    if (st != ECH_OK)
        return st;
    return parse_owned(&mf, path, out, err);
}

ech_status ech_gguf_open_fd(int fd, const char *name, ech_gguf **out, ech_error *err)
{
    ech_mapfile mf;
    *out = NULL;
    ech_status st = ech_mapfile_open_fd(&mf, fd, name, 1, err);
    if (st != ECH_OK)
        return st;
    return parse_owned(&mf, name, out, err);
}

void ech_gguf_close(ech_gguf *g)
{
    if (!g)
        return;
    ech_arena_free(&g->arena);
    ech_mapfile_close(&g->map);
    free(g);
}

uint32_t ech_gguf_version(const ech_gguf *g) { return g->version; }
uint32_t ech_gguf_alignment(const ech_gguf *g) { return g->alignment; }
uint64_t ech_gguf_data_offset(const ech_gguf *g) { return g->data_offset; }
const uint8_t *ech_gguf_bytes(const ech_gguf *g) { return g->base; }
size_t ech_gguf_size(const ech_gguf *g) { return g->size; }
size_t ech_gguf_n_kv(const ech_gguf *g) { return g->n_kv; }
size_t ech_gguf_n_tensors(const ech_gguf *g) { return g->n_tensors; }

const ech_gguf_kv *ech_gguf_kv_at(const ech_gguf *g, size_t i)
{
    return i < g->n_kv ? &g->kvs[i] : NULL;
}

const ech_gguf_tensor *ech_gguf_tensor_at(const ech_gguf *g, size_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const ech_gguf_kv *ech_gguf_find(const ech_gguf *g, const char *key)
{
    size_t i = hash_find(g->kv_hash, g->kv_hash_cap, key, kv_name, g);
    return i == SIZE_MAX ? NULL : &g->kvs[i];
}

const ech_gguf_tensor *ech_gguf_find_tensor(const ech_gguf *g, const char *name)
{
    size_t i = hash_find(g->tensor_hash, g->tensor_hash_cap, name, tensor_name, g);
    return i == SIZE_MAX ? NULL : &g->tensors[i];
}

/* ---- typed access ---- */

bool ech_gguf_value_u64(const ech_gguf_value *v, uint64_t *out)
{
    switch (v->type) {
    case ECH_GGUF_U8: case ECH_GGUF_U16: case ECH_GGUF_U32: case ECH_GGUF_U64:
        *out = v->u;
        return true;
    case ECH_GGUF_I8: case ECH_GGUF_I16: case ECH_GGUF_I32: case ECH_GGUF_I64:
        if (v->i < 0)
            return false;
        *out = (uint64_t)v->i;
        return true;
    default:
        return false;
    }
}

bool ech_gguf_value_i64(const ech_gguf_value *v, int64_t *out)
{
    switch (v->type) {
    case ECH_GGUF_U8: case ECH_GGUF_U16: case ECH_GGUF_U32: case ECH_GGUF_U64:
        if (v->u > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v->u;
        return true;
    case ECH_GGUF_I8: case ECH_GGUF_I16: case ECH_GGUF_I32: case ECH_GGUF_I64:
        *out = v->i;
        return true;
    default:
        return false;
    }
}

bool ech_gguf_value_f64(const ech_gguf_value *v, double *out)
{
    if (v->type == ECH_GGUF_F32)
        *out = v->f32;
    else if (v->type == ECH_GGUF_F64)
        *out = v->f64;
    else
        return false;
    return true;
}

static bool is_int_type(ech_gguf_type t)
{
    return t <= ECH_GGUF_I32 ? t != ECH_GGUF_F32 : (t == ECH_GGUF_U64 || t == ECH_GGUF_I64);
}

ech_status ech_gguf_get_u64(const ech_gguf *g, const char *key, uint64_t *out)
{
    const ech_gguf_kv *kv = ech_gguf_find(g, key);
    if (!kv)
        return ECH_ERR_NOT_FOUND;
    if (!is_int_type(kv->value.type))
        return ECH_ERR_FORMAT;
    return ech_gguf_value_u64(&kv->value, out) ? ECH_OK : ECH_ERR_RANGE;
}

ech_status ech_gguf_get_i64(const ech_gguf *g, const char *key, int64_t *out)
{
    const ech_gguf_kv *kv = ech_gguf_find(g, key);
    if (!kv)
        return ECH_ERR_NOT_FOUND;
    if (!is_int_type(kv->value.type))
        return ECH_ERR_FORMAT;
    return ech_gguf_value_i64(&kv->value, out) ? ECH_OK : ECH_ERR_RANGE;
}

ech_status ech_gguf_get_u32(const ech_gguf *g, const char *key, uint32_t *out)
{
    uint64_t v;
    ech_status st = ech_gguf_get_u64(g, key, &v);
    if (st != ECH_OK)
        return st;
    if (v > UINT32_MAX)
        return ECH_ERR_RANGE;
    *out = (uint32_t)v;
    return ECH_OK;
}

ech_status ech_gguf_get_f64(const ech_gguf *g, const char *key, double *out)
{
    const ech_gguf_kv *kv = ech_gguf_find(g, key);
    if (!kv)
        return ECH_ERR_NOT_FOUND;
    return ech_gguf_value_f64(&kv->value, out) ? ECH_OK : ECH_ERR_FORMAT;
}

ech_status ech_gguf_get_bool(const ech_gguf *g, const char *key, bool *out)
{
    const ech_gguf_kv *kv = ech_gguf_find(g, key);
    if (!kv)
        return ECH_ERR_NOT_FOUND;
    if (kv->value.type != ECH_GGUF_BOOL)
        return ECH_ERR_FORMAT;
    *out = kv->value.b;
    return ECH_OK;
}

ech_status ech_gguf_get_str(const ech_gguf *g, const char *key, ech_str *out)
{
    const ech_gguf_kv *kv = ech_gguf_find(g, key);
    if (!kv)
        return ECH_ERR_NOT_FOUND;
    if (kv->value.type != ECH_GGUF_STR)
        return ECH_ERR_FORMAT;
    *out = kv->value.s;
    return ECH_OK;
}

ech_status ech_gguf_get_array(const ech_gguf *g, const char *key, const ech_gguf_array **out)
{
    const ech_gguf_kv *kv = ech_gguf_find(g, key);
    if (!kv)
        return ECH_ERR_NOT_FOUND;
    if (kv->value.type != ECH_GGUF_ARR)
        return ECH_ERR_FORMAT;
    *out = &kv->value.a;
    return ECH_OK;
}

static ech_gguf_value array_elem(const ech_gguf_array *a, uint64_t i)
{
    ech_gguf_value v = {.type = ECH_GGUF_U8};
    size_t esz = gguf_type_sizes[a->type];
    if (esz && a->raw && i < a->n) {
        cursor c = {.base = a->raw, .size = (size_t)(a->n * esz), .pos = 0};
        if (!rd_scalar(&c, a->type, (const uint8_t *)a->raw + i * esz, &v))
            v.type = ECH_GGUF_U8, v.u = 0;
    }
    return v;
}

int64_t ech_gguf_array_i64(const ech_gguf_array *a, uint64_t i)
{
    ech_gguf_value v = array_elem(a, i);
    switch (v.type) {
    case ECH_GGUF_U8: case ECH_GGUF_U16: case ECH_GGUF_U32: case ECH_GGUF_U64: return (int64_t)v.u;
    case ECH_GGUF_BOOL: return v.b;
    case ECH_GGUF_F32: case ECH_GGUF_F64: return 0;   /* not an integer array */
    default: return v.i;
    }
}

uint64_t ech_gguf_array_u64(const ech_gguf_array *a, uint64_t i)
{
    return (uint64_t)ech_gguf_array_i64(a, i);
}

double ech_gguf_array_f64(const ech_gguf_array *a, uint64_t i)
{
    ech_gguf_value v = array_elem(a, i);
    switch (v.type) {
    case ECH_GGUF_F32: return v.f32;
    case ECH_GGUF_F64: return v.f64;
    case ECH_GGUF_U8: case ECH_GGUF_U16: case ECH_GGUF_U32: case ECH_GGUF_U64: return (double)v.u;
    case ECH_GGUF_BOOL: return v.b;
    default: return (double)v.i;
    }
}
