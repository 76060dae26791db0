/* writer.c - serialise metadata and tensors as GGUF v3. */
#include "config.h"
#include "gguf/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/buf.h"

typedef struct wkv {
    const char *key;
    ech_gguf_value value;
} wkv;

typedef struct wtensor {
    const char *name;
    uint32_t type, n_dims;
    uint64_t ne[ECH_GGUF_MAX_DIMS];
    uint64_t nbytes, offset;
    const void *data;
} wtensor;

struct ech_gguf_writer {
    ech_arena arena;      /* copies of keys, names and values */
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
};

ech_gguf_writer *ech_gguf_writer_new(void)
{
    ech_gguf_writer *w = calloc(1, sizeof *w);
    if (w)
        ech_arena_init(&w->arena, 0);
    return w;
}

void ech_gguf_writer_free(ech_gguf_writer *w)
{
    if (!w)
        return;
    ech_arena_free(&w->arena);
    free(w->kvs);
    free(w->tensors);
    free(w);
}

static bool grow(void **p, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 16;
    void *np = realloc(*p, nc * elem);
    if (!np)
        return false;
    *p = np;
    *cap = nc;
    return true;
}

static bool copy_str(ech_arena *a, ech_str *dst, ech_str src)
{
    char *p = ech_arena_strndup(a, src.ptr ? src.ptr : "", src.len);
    if (!p)
        return false;
    dst->ptr = p;
    dst->len = src.len;
    return true;
}

static ech_status copy_value(ech_arena *a, ech_gguf_value *dst, const ech_gguf_value *src, int depth)
{
    if ((unsigned)src->type >= ECH_GGUF_TYPE_COUNT)
        return ECH_ERR_INVALID;
    *dst = *src;
    if (src->type == ECH_GGUF_STR)
        return copy_str(a, &dst->s, src->s) ? ECH_OK : ECH_ERR_NOMEM;
    if (src->type != ECH_GGUF_ARR)
        return ECH_OK;
    const ech_gguf_array *sa = &src->a;
    ech_gguf_array *da = &dst->a;
    if ((unsigned)sa->type >= ECH_GGUF_TYPE_COUNT || depth >= ECH_GGUF_MAX_NESTING)
        return ECH_ERR_INVALID;
    da->raw = NULL;
    da->strs = NULL;
    da->items = NULL;
    size_t esz = ech_gguf_type_size(sa->type);
    if (esz) {
        if (sa->n > SIZE_MAX / esz || (sa->n && !sa->raw))
            return ECH_ERR_INVALID;
        void *p = ech_arena_alloc(a, (size_t)(sa->n * esz), 1);
        if (!p)
            return ECH_ERR_NOMEM;
        if (sa->n)
            memcpy(p, sa->raw, (size_t)(sa->n * esz));
        da->raw = p;
    } else if (sa->type == ECH_GGUF_STR) {
        if (sa->n && !sa->strs)
            return ECH_ERR_INVALID;
        ech_str *s = ech_arena_calloc(a, (size_t)sa->n, sizeof *s, 0);
        if (!s)
            return ECH_ERR_NOMEM;
        for (uint64_t i = 0; i < sa->n; i++)
            if (!copy_str(a, &s[i], sa->strs[i]))
                return ECH_ERR_NOMEM;
        da->strs = s;
    } else {
        if (sa->n && !sa->items)
            return ECH_ERR_INVALID;
        ech_gguf_value *items = ech_arena_calloc(a, (size_t)sa->n, sizeof *items, 0);
        if (!items)
            return ECH_ERR_NOMEM;
        for (uint64_t i = 0; i < sa->n; i++) {
            if (sa->items[i].type != ECH_GGUF_ARR)
                return ECH_ERR_INVALID;
            ech_status st = copy_value(a, &items[i], &sa->items[i], depth + 1);
            if (st != ECH_OK)
                return st;
        }
        da->items = items;
    }
    return ECH_OK;
}

ech_status ech_gguf_writer_set(ech_gguf_writer *w, const char *key, const ech_gguf_value *v)
{
    ech_gguf_value copy;
    ech_status st = copy_value(&w->arena, &copy, v, 0);
    if (st != ECH_OK)
        return st;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            w->kvs[i].value = copy;
            return ECH_OK;
        }
    }
    if (!grow((void **)&w->kvs, &w->cap_kv, w->n_kv, sizeof *w->kvs))
        return ECH_ERR_NOMEM;
    const char *k = ech_arena_strndup(&w->arena, key, strlen(key));
    if (!k)
        return ECH_ERR_NOMEM;
    w->kvs[w->n_kv].key = k;
    w->kvs[w->n_kv].value = copy;
    w->n_kv++;
    return ECH_OK;
}

ech_status ech_gguf_writer_set_u32(ech_gguf_writer *w, const char *key, uint32_t v)
{
    ech_gguf_value val = {.type = ECH_GGUF_U32, .u = v};
    return ech_gguf_writer_set(w, key, &val);
}

ech_status ech_gguf_writer_set_i32(ech_gguf_writer *w, const char *key, int32_t v)
{
    ech_gguf_value val = {.type = ECH_GGUF_I32, .i = v};
    return ech_gguf_writer_set(w, key, &val);
}

ech_status ech_gguf_writer_set_u64(ech_gguf_writer *w, const char *key, uint64_t v)
{
    ech_gguf_value val = {.type = ECH_GGUF_U64, .u = v};
    return ech_gguf_writer_set(w, key, &val);
}

ech_status ech_gguf_writer_set_f32(ech_gguf_writer *w, const char *key, float v)
{
    ech_gguf_value val = {.type = ECH_GGUF_F32, .f32 = v};
    return ech_gguf_writer_set(w, key, &val);
}

ech_status ech_gguf_writer_set_bool(ech_gguf_writer *w, const char *key, bool v)
{
    ech_gguf_value val = {.type = ECH_GGUF_BOOL, .b = v};
    return ech_gguf_writer_set(w, key, &val);
}

ech_status ech_gguf_writer_set_str(ech_gguf_writer *w, const char *key, const char *s)
{
    ech_gguf_value val = {.type = ECH_GGUF_STR, .s = {s, strlen(s)}};
    return ech_gguf_writer_set(w, key, &val);
}

ech_status ech_gguf_writer_set_array(ech_gguf_writer *w, const char *key, ech_gguf_type type,
                                     const void *elems, uint64_t n)
{
    if (ech_gguf_type_size(type) == 0)
        return ECH_ERR_INVALID;
    ech_gguf_value val = {.type = ECH_GGUF_ARR, .a = {.type = type, .n = n, .raw = elems}};
    return ech_gguf_writer_set(w, key, &val);
}

ech_status ech_gguf_writer_set_str_array(ech_gguf_writer *w, const char *key,
                                         const char *const *strs, uint64_t n)
{
    if (n > SIZE_MAX / sizeof(ech_str))
        return ECH_ERR_RANGE;
    ech_str *tmp = malloc((size_t)n * sizeof *tmp + 1);
    if (!tmp)
        return ECH_ERR_NOMEM;
    for (uint64_t i = 0; i < n; i++)
        tmp[i] = (ech_str){strs[i], strlen(strs[i])};
    ech_gguf_value val = {.type = ECH_GGUF_ARR, .a = {.type = ECH_GGUF_STR, .n = n, .strs = tmp}};
    ech_status st = ech_gguf_writer_set(w, key, &val);
    free(tmp);
    return st;
}

ech_status ech_gguf_writer_add_tensor(ech_gguf_writer *w, const char *name, uint32_t type,
                                      uint32_t n_dims, const uint64_t *ne, const void *data)
{
    if (n_dims > ECH_GGUF_MAX_DIMS)
        return ECH_ERR_INVALID;
    wtensor t = {.type = type, .n_dims = n_dims, .data = data};
    uint64_t n = 1;
    for (int d = 0; d < ECH_GGUF_MAX_DIMS; d++)
        t.ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] > (uint64_t)INT64_MAX || (ne[d] && n > (uint64_t)INT64_MAX / ne[d]))
            return ECH_ERR_RANGE;
        t.ne[d] = ne[d];
        n *= ne[d];
    }
    const ech_type_info *ti = ech_type_info_get(type);
    if (!ti)
        return ECH_ERR_UNSUPPORTED;
    if (t.ne[0] % ti->block_size)
        return ECH_ERR_INVALID;
    ech_status st = ech_type_nbytes(type, n, &t.nbytes);
    if (st != ECH_OK)
        return st;
    if (t.nbytes && !data)
        return ECH_ERR_INVALID;
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return ECH_ERR_INVALID;
    if (!grow((void **)&w->tensors, &w->cap_tensors, w->n_tensors, sizeof *w->tensors))
        return ECH_ERR_NOMEM;
    t.name = ech_arena_strndup(&w->arena, name, strlen(name));
    if (!t.name)
        return ECH_ERR_NOMEM;
    w->tensors[w->n_tensors++] = t;
    return ECH_OK;
}

/* ---- output ---- */

typedef struct sink {
    ech_status (*write)(struct sink *s, const void *p, size_t n);
    uint64_t pos;
    FILE *fp;             /* file sink */
    ech_buf mem;          /* memory sink */
} sink;

static ech_status out(sink *s, const void *p, size_t n)
{
    ech_status st = s->write(s, p, n);
    if (st == ECH_OK)
        s->pos += n;
    return st;
}

static ech_status out_u32(sink *s, uint32_t v) { return out(s, &v, 4); }
static ech_status out_u64(sink *s, uint64_t v) { return out(s, &v, 8); }

static ech_status out_str(sink *s, ech_str str)
{
    ech_status st = out_u64(s, str.len);
    return st != ECH_OK || !str.len ? st : out(s, str.ptr, str.len);
}

static ech_status out_value(sink *s, const ech_gguf_value *v)
{
    uint8_t b[8];
    size_t esz = ech_gguf_type_size(v->type);
    switch (v->type) {
    case ECH_GGUF_STR:
        return out_str(s, v->s);
    case ECH_GGUF_ARR: {
        const ech_gguf_array *a = &v->a;
        ech_status st = out_u32(s, a->type);
        if (st == ECH_OK)
            st = out_u64(s, a->n);
        size_t ae = ech_gguf_type_size(a->type);
        if (st == ECH_OK && ae && a->n)
            st = out(s, a->raw, (size_t)(a->n * ae));
        for (uint64_t i = 0; st == ECH_OK && a->type == ECH_GGUF_STR && i < a->n; i++)
            st = out_str(s, a->strs[i]);
        for (uint64_t i = 0; st == ECH_OK && a->type == ECH_GGUF_ARR && i < a->n; i++)
            st = out_value(s, &a->items[i]);
        return st;
    }
    case ECH_GGUF_F32: memcpy(b, &v->f32, 4); break;
    case ECH_GGUF_F64: memcpy(b, &v->f64, 8); break;
    case ECH_GGUF_BOOL: b[0] = v->b ? 1 : 0; break;
    case ECH_GGUF_I8: case ECH_GGUF_I16: case ECH_GGUF_I32: case ECH_GGUF_I64:
        memcpy(b, &v->i, 8); break;   /* little-endian: the low bytes come first */
    default:
        memcpy(b, &v->u, 8); break;
    }
    return out(s, b, esz);
}

static ech_status out_pad(sink *s, uint32_t align)
{
    static const uint8_t zeros[64];
    uint64_t pad = (align - s->pos % align) % align;
    while (pad) {
        size_t n = pad > sizeof zeros ? sizeof zeros : (size_t)pad;
        ech_status st = out(s, zeros, n);
        if (st != ECH_OK)
            return st;
        pad -= n;
    }
    return ECH_OK;
}

static uint32_t writer_alignment(const ech_gguf_writer *w)
{
    for (size_t i = 0; i < w->n_kv; i++) {
        const ech_gguf_value *v = &w->kvs[i].value;
        if (strcmp(w->kvs[i].key, "general.alignment") == 0 && v->type == ECH_GGUF_U32 &&
            v->u && (v->u & (v->u - 1)) == 0 && v->u <= 1u << 20)
            return (uint32_t)v->u;
    }
    return ECH_GGUF_DEFAULT_ALIGNMENT;
}

static ech_status write_all(ech_gguf_writer *w, sink *s)
{
    uint32_t align = writer_alignment(w);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        w->tensors[i].offset = off;
        off += (w->tensors[i].nbytes + align - 1) / align * align;
    }
    ech_status st = out(s, "GGUF", 4);
    if (st == ECH_OK) st = out_u32(s, 3);
    if (st == ECH_OK) st = out_u64(s, w->n_tensors);
    if (st == ECH_OK) st = out_u64(s, w->n_kv);
    for (size_t i = 0; st == ECH_OK && i < w->n_kv; i++) {
        st = out_str(s, (ech_str){w->kvs[i].key, strlen(w->kvs[i].key)});
        if (st == ECH_OK) st = out_u32(s, w->kvs[i].value.type);
        if (st == ECH_OK) st = out_value(s, &w->kvs[i].value);
    }
    for (size_t i = 0; st == ECH_OK && i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        st = out_str(s, (ech_str){t->name, strlen(t->name)});
        if (st == ECH_OK) st = out_u32(s, t->n_dims);
        for (uint32_t d = 0; st == ECH_OK && d < t->n_dims; d++)
            st = out_u64(s, t->ne[d]);
        if (st == ECH_OK) st = out_u32(s, t->type);
        if (st == ECH_OK) st = out_u64(s, t->offset);
    }
    if (st == ECH_OK && w->n_tensors)
        st = out_pad(s, align);
    for (size_t i = 0; st == ECH_OK && i < w->n_tensors; i++) {
        if (w->tensors[i].nbytes)
            st = out(s, w->tensors[i].data, (size_t)w->tensors[i].nbytes);
        if (st == ECH_OK)
            st = out_pad(s, align);
    }
    return st;
}

static ech_status file_write(sink *s, const void *p, size_t n)
{
    return fwrite(p, 1, n, s->fp) == n ? ECH_OK : ECH_ERR_IO;
}

static ech_status mem_write(sink *s, const void *p, size_t n)
{
    return ech_buf_append(&s->mem, p, n);
}

ech_status ech_gguf_writer_write_mem(ech_gguf_writer *w, uint8_t **buf, size_t *size, ech_error *err)
{
    sink s = {.write = mem_write};
    ech_status st = write_all(w, &s);
    if (st != ECH_OK) {
        ech_buf_free(&s.mem);
        return ech_error_set(err, st, "writing GGUF to memory: %s", ech_strerror(st));
    }
    *size = s.mem.len;
    *buf = (uint8_t *)ech_buf_steal(&s.mem);
    return ECH_OK;
}

ech_status ech_gguf_writer_write_file(ech_gguf_writer *w, const char *path, ech_error *err)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    if (!tmp)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    snprintf(tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        ech_status st = ech_error_set(err, ECH_ERR_IO, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    fchmod(fd, 0644);   /* mkstemp makes 0600; a model file is for everyone to read */
    sink s = {.write = file_write, .fp = fdopen(fd, "wb")};
    if (!s.fp) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return ech_error_set(err, ECH_ERR_IO, "%s: %s", path, strerror(errno));
    }
    ech_status st = write_all(w, &s);
    if (fflush(s.fp) != 0 || fsync(fd) != 0)
        st = st == ECH_OK ? ECH_ERR_IO : st;
    int e = errno;
    if (fclose(s.fp) != 0 && st == ECH_OK)
        st = ECH_ERR_IO, e = errno;
    if (st == ECH_OK && rename(tmp, path) != 0)
        st = ECH_ERR_IO, e = errno;
    if (st != ECH_OK) {
        unlink(tmp);
        ech_error_set(err, st, "%s: %s", path, st == ECH_ERR_IO ? strerror(e) : ech_strerror(st));
    }
    free(tmp);
    return st;
}
