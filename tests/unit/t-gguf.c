/* t-gguf.c - unit tests for the GGUF type table, reader and writer.
 *
 * Hostile inputs are assembled byte by byte so each check names exactly one
 * defect; real models from $ECH_SHARED go through a read -> write -> read
 * round trip.
 */
#include "config.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ech.h"
#include "tap.h"

/* ---- a byte builder for hand-made files ---- */
typedef struct bb {
    uint8_t b[4096];
    size_t n;
} bb;
static void put(bb *x, const void *p, size_t n) { memcpy(x->b + x->n, p, n); x->n += n; }
static void u32(bb *x, uint32_t v) { put(x, &v, 4); }
static void u64(bb *x, uint64_t v) { put(x, &v, 8); }
static void str(bb *x, const char *s) { u64(x, strlen(s)); put(x, s, strlen(s)); }
static void header(bb *x, uint32_t version, uint64_t nt, uint64_t nkv)
{
    x->n = 0;
    put(x, "GGUF", 4);
    u32(x, version);
    u64(x, nt);
    u64(x, nkv);
}
static void pad_to(bb *x, size_t a) { while (x->n % a) x->b[x->n++] = 0; }

static ech_status parse_bb(bb *x, ech_error *e)
{
    ech_gguf *g = NULL;
    ech_status st = ech_gguf_parse(x->b, x->n, &g, e);
    ech_gguf_close(g);
    return st;
}

#define EXPECT_FAIL(x, code, needle, what)                                                  \
    do {                                                                                    \
        ech_error e_;                                                                       \
        ech_status st_ = parse_bb(x, &e_);                                                  \
        is_int(st_, code, "%s: status", what);                                              \
        if (!ok(st_ != ECH_OK && strstr(e_.msg, needle) != NULL, "%s: message names it", what)) \
            printf("#   message: %s\n", st_ != ECH_OK ? e_.msg : "(none)");               \
    } while (0)

static void test_types(void)
{
    struct { uint32_t t; uint32_t bs, ts; } want[] = {
        {ECH_TYPE_F32, 1, 4}, {ECH_TYPE_F16, 1, 2}, {ECH_TYPE_BF16, 1, 2},
        {ECH_TYPE_Q4_0, 32, 18}, {ECH_TYPE_Q4_1, 32, 20}, {ECH_TYPE_Q5_0, 32, 22},
        {ECH_TYPE_Q5_1, 32, 24}, {ECH_TYPE_Q8_0, 32, 34}, {ECH_TYPE_Q8_1, 32, 36},
        {ECH_TYPE_Q2_K, 256, 84}, {ECH_TYPE_Q3_K, 256, 110}, {ECH_TYPE_Q4_K, 256, 144},
        {ECH_TYPE_Q5_K, 256, 176}, {ECH_TYPE_Q6_K, 256, 210}, {ECH_TYPE_Q8_K, 256, 292},
        {ECH_TYPE_IQ2_XXS, 256, 66}, {ECH_TYPE_IQ2_XS, 256, 74}, {ECH_TYPE_IQ3_XXS, 256, 98},
        {ECH_TYPE_IQ1_S, 256, 50}, {ECH_TYPE_IQ4_NL, 32, 18}, {ECH_TYPE_IQ3_S, 256, 110},
        {ECH_TYPE_IQ2_S, 256, 82}, {ECH_TYPE_IQ4_XS, 256, 136}, {ECH_TYPE_I8, 1, 1},
        {ECH_TYPE_I16, 1, 2}, {ECH_TYPE_I32, 1, 4}, {ECH_TYPE_I64, 1, 8}, {ECH_TYPE_F64, 1, 8},
        {ECH_TYPE_IQ1_M, 256, 56}, {ECH_TYPE_TQ1_0, 256, 54}, {ECH_TYPE_TQ2_0, 256, 66},
        {ECH_TYPE_MXFP4, 32, 17},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const ech_type_info *ti = ech_type_info_get(want[i].t);
        if (!ok(ti && ti->block_size == want[i].bs && ti->type_size == want[i].ts,
                "type %u (%s): block %u, %u bytes", want[i].t, ti ? ti->name : "?", want[i].bs, want[i].ts))
            printf("#   got block %u, size %u\n", ti ? ti->block_size : 0, ti ? ti->type_size : 0);
    }
    for (uint32_t t = 0; t < ECH_TYPE_COUNT + 5; t++)
        n += ech_type_info_get(t) != NULL;
    is_int(n, 32, "32 known types, removed ids unknown");
    ok(ech_type_info_get(4) == NULL && ech_type_info_get(31) == NULL && ech_type_info_get(36) == NULL,
       "removed ids 4, 31, 36 are unknown");
    uint64_t b;
    is_int(ech_type_nbytes(ECH_TYPE_Q4_K, 512, &b), ECH_OK, "nbytes Q4_K");
    is_int(b, 288, "512 Q4_K elements = 288 bytes");
    is_int(ech_type_nbytes(ECH_TYPE_Q4_0, 33, &b), ECH_ERR_FORMAT, "partial block refused");
    is_int(ech_type_nbytes(ECH_TYPE_F32, UINT64_MAX / 2, &b), ECH_ERR_RANGE, "overflow refused");
    is_int(ech_type_nbytes(99, 1, &b), ECH_ERR_UNSUPPORTED, "unknown type refused");
    ech_type t;
    is_int(ech_type_from_name("q4_k", &t), ECH_OK, "type by name");
    is_int(t, ECH_TYPE_Q4_K, "q4_k -> Q4_K");
    is_str(ech_file_type_name(15), "Q4_K_M", "file type 15 is Q4_K_M");
    ok(ech_file_type_name(5) == NULL && ech_file_type_name(1000) == NULL, "unknown file types");
}

/* deep equality of two values */
static int value_eq(const ech_gguf_value *a, const ech_gguf_value *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case ECH_GGUF_STR:
        return a->s.len == b->s.len && memcmp(a->s.ptr, b->s.ptr, a->s.len) == 0;
    case ECH_GGUF_ARR: {
        const ech_gguf_array *x = &a->a, *y = &b->a;
        if (x->type != y->type || x->n != y->n)
            return 0;
        size_t es = ech_gguf_type_size(x->type);
        if (es)
            return x->n == 0 || memcmp(x->raw, y->raw, x->n * es) == 0;
        for (uint64_t i = 0; i < x->n; i++) {
            if (x->type == ECH_GGUF_STR) {
                if (x->strs[i].len != y->strs[i].len ||
                    memcmp(x->strs[i].ptr, y->strs[i].ptr, x->strs[i].len) != 0)
                    return 0;
            } else if (!value_eq(&x->items[i], &y->items[i])) {
                return 0;
            }
        }
        return 1;
    }
    case ECH_GGUF_F32: return memcmp(&a->f32, &b->f32, 4) == 0;
    case ECH_GGUF_F64: return memcmp(&a->f64, &b->f64, 8) == 0;
    case ECH_GGUF_BOOL: return a->b == b->b;
    case ECH_GGUF_I8: case ECH_GGUF_I16: case ECH_GGUF_I32: case ECH_GGUF_I64: return a->i == b->i;
    default: return a->u == b->u;
    }
}

/* write(g) into memory and parse it back */
static ech_gguf *rewrite(const ech_gguf *g, uint8_t **buf, size_t *size)
{
    ech_gguf_writer *w = ech_gguf_writer_new();
    for (size_t i = 0; i < ech_gguf_n_kv(g); i++)
        if (ech_gguf_writer_set(w, ech_gguf_kv_at(g, i)->key, &ech_gguf_kv_at(g, i)->value) != ECH_OK)
            return NULL;
    for (size_t i = 0; i < ech_gguf_n_tensors(g); i++) {
        const ech_gguf_tensor *t = ech_gguf_tensor_at(g, i);
        if (ech_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data) != ECH_OK)
            return NULL;
    }
    ech_error e;
    ech_gguf *back = NULL;
    if (ech_gguf_writer_write_mem(w, buf, size, &e) != ECH_OK ||
        ech_gguf_parse(*buf, *size, &back, &e) != ECH_OK) {
        printf("#   %s\n", e.msg);
        back = NULL;
    }
    ech_gguf_writer_free(w);
    return back;
}

/* read -> write -> read: same metadata (in order) and tensor bytes; a second
 * write is byte-identical to the first. */
static void round_trip(const char *path)
{
    ech_gguf *g;
    ech_error e;
    if (ech_gguf_open(path, &g, &e) != ECH_OK) {
        ok(0, "open %s: %s", path, e.msg);
        return;
    }
    uint8_t *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    ech_gguf *r = rewrite(g, &b1, &n1);
    int same = r && ech_gguf_n_kv(r) == ech_gguf_n_kv(g) && ech_gguf_n_tensors(r) == ech_gguf_n_tensors(g);
    for (size_t i = 0; same && i < ech_gguf_n_kv(g); i++)
        same = strcmp(ech_gguf_kv_at(g, i)->key, ech_gguf_kv_at(r, i)->key) == 0 &&
               value_eq(&ech_gguf_kv_at(g, i)->value, &ech_gguf_kv_at(r, i)->value);
    for (size_t i = 0; same && i < ech_gguf_n_tensors(g); i++) {
        const ech_gguf_tensor *a = ech_gguf_tensor_at(g, i), *b = ech_gguf_tensor_at(r, i);
        same = strcmp(a->name, b->name) == 0 && a->type == b->type && a->n_dims == b->n_dims &&
               memcmp(a->ne, b->ne, sizeof a->ne) == 0 && a->nbytes == b->nbytes &&
               memcmp(a->data, b->data, a->nbytes) == 0;
    }
    ok(same, "round trip keeps metadata and tensors: %s", path);
    ech_gguf *r2 = r ? rewrite(r, &b2, &n2) : NULL;
    ok(r2 && n1 == n2 && memcmp(b1, b2, n1) == 0, "second write is byte-identical: %s", path);
    ech_gguf_close(r2);
    ech_gguf_close(r);
    free(b1);
    free(b2);
    ech_gguf_close(g);
}

static void test_writer_reader(void)
{
    ech_gguf_writer *w = ech_gguf_writer_new();
    ech_gguf_writer_set_str(w, "general.architecture", "llama");
    ech_gguf_writer_set_u32(w, "llama.context_length", 2048);
    ech_gguf_writer_set_u32(w, "general.alignment", 64);
    ech_gguf_writer_set_f32(w, "f", 0.25f);
    ech_gguf_writer_set_bool(w, "b", false);
    ech_gguf_writer_set_u32(w, "llama.context_length", 4096);   /* replaces, keeps position */
    const char *toks[3] = {"a", "", "c\0d"};
    ech_gguf_writer_set_str_array(w, "toks", toks, 3);
    float data[64];
    for (int i = 0; i < 64; i++)
        data[i] = (float)i;
    uint64_t ne[2] = {8, 8};
    is_int(ech_gguf_writer_add_tensor(w, "t0", ECH_TYPE_F32, 2, ne, data), ECH_OK, "add tensor");
    is_int(ech_gguf_writer_add_tensor(w, "t0", ECH_TYPE_F32, 2, ne, data), ECH_ERR_INVALID, "duplicate tensor refused");
    uint64_t bad[1] = {33};
    is_int(ech_gguf_writer_add_tensor(w, "q", ECH_TYPE_Q4_0, 1, bad, data), ECH_ERR_INVALID, "partial block refused");
    uint64_t ne1[1] = {3};
    is_int(ech_gguf_writer_add_tensor(w, "t1", ECH_TYPE_F32, 1, ne1, data), ECH_OK, "add small tensor");
    uint8_t *buf;
    size_t n;
    ech_error e;
    is_int(ech_gguf_writer_write_mem(w, &buf, &n, &e), ECH_OK, "write to memory");
    ech_gguf_writer_free(w);
    ech_gguf *g;
    is_int(ech_gguf_parse(buf, n, &g, &e), ECH_OK, "parse what we wrote");
    is_int(ech_gguf_version(g), 3, "version 3");
    is_int(ech_gguf_alignment(g), 64, "alignment 64");
    is_int(ech_gguf_data_offset(g) % 64, 0, "data section aligned");
    is_int(ech_gguf_n_kv(g), 6, "six keys");
    is_str(ech_gguf_kv_at(g, 1)->key, "llama.context_length", "replaced key keeps its place");
    uint32_t ctx;
    is_int(ech_gguf_get_u32(g, "llama.context_length", &ctx), ECH_OK, "get_u32");
    is_int(ctx, 4096, "replaced value");
    int64_t i64;
    is_int(ech_gguf_get_i64(g, "llama.context_length", &i64), ECH_OK, "u32 reads as i64");
    double f;
    is_int(ech_gguf_get_f64(g, "f", &f), ECH_OK, "get_f64 of f32");
    ok(f == 0.25, "f32 value");
    is_int(ech_gguf_get_f64(g, "b", &f), ECH_ERR_FORMAT, "bool is not a float");
    is_int(ech_gguf_get_u32(g, "nope", &ctx), ECH_ERR_NOT_FOUND, "missing key");
    ech_str s;
    is_int(ech_gguf_get_str(g, "general.architecture", &s), ECH_OK, "get_str");
    ok(s.len == 5 && memcmp(s.ptr, "llama", 5) == 0, "string value");
    const ech_gguf_array *a;
    is_int(ech_gguf_get_array(g, "toks", &a), ECH_OK, "get_array");
    ok(a->n == 3 && a->strs[1].len == 0 && a->strs[2].len == 1, "string array (C strings stop at NUL)");
    const ech_gguf_tensor *t = ech_gguf_find_tensor(g, "t1");
    ok(t && t->nbytes == 12 && memcmp(t->data, data, 12) == 0, "tensor bytes");
    ok(t && t->offset % 64 == 0, "tensor offset aligned");
    ok(ech_gguf_find_tensor(g, "t2") == NULL, "missing tensor");
    ech_gguf_close(g);
    free(buf);
}

static void test_hostile(void)
{
    bb x;
    ech_error e;
    x.n = 0;
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "not a GGUF", "empty file");
    put(&x, "GGML....", 8);
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "not a GGUF", "bad magic");
    header(&x, 1, 0, 0);
    EXPECT_FAIL(&x, ECH_ERR_UNSUPPORTED, "version 1", "GGUF v1");
    x.n = 0;
    put(&x, "GGUF", 4);
    u32(&x, 0x03000000);
    EXPECT_FAIL(&x, ECH_ERR_UNSUPPORTED, "big-endian", "big-endian file");
    header(&x, 4, 0, 0);
    EXPECT_FAIL(&x, ECH_ERR_UNSUPPORTED, "version 4", "future version");
    x.n = 0;
    put(&x, "GGUF\3\0\0\0\0\0", 10);
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "truncated at offset 8", "truncated counts");
    header(&x, 3, 0, UINT64_MAX);
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "metadata count", "huge kv count");
    header(&x, 3, UINT64_MAX / 2, 0);
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "tensor count", "huge tensor count");
    header(&x, 3, 0, 1);
    u64(&x, UINT64_MAX);
    u32(&x, 4);
    u64(&x, 0);
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "at offset 24", "key length overflow");
    header(&x, 3, 0, 1);
    str(&x, "k");
    u32(&x, 99);
    u32(&x, 0);
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "unknown value type 99", "unknown value type");
    header(&x, 3, 0, 1);
    str(&x, "k");
    u32(&x, ECH_GGUF_BOOL);
    x.b[x.n++] = 7;
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "invalid bool", "bool byte 7");
    header(&x, 3, 0, 1);
    str(&x, "k");
    u32(&x, ECH_GGUF_ARR);
    u32(&x, ECH_GGUF_U32);
    u64(&x, 1ull << 62);
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "runs past the end", "array length overflow");
    header(&x, 3, 0, 1);
    str(&x, "k");
    u32(&x, ECH_GGUF_ARR);
    u32(&x, ECH_GGUF_STR);
    u64(&x, 3);
    str(&x, "a");
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "key 'k'", "truncated string array");
    header(&x, 3, 0, 1);
    str(&x, "k");
    u32(&x, ECH_GGUF_ARR);
    for (int d = 0; d < 20; d++) {
        u32(&x, ECH_GGUF_ARR);
        u64(&x, 1);
    }
    u32(&x, 0);
    EXPECT_FAIL(&x, ECH_ERR_UNSUPPORTED, "nested deeper", "nesting bomb");
    header(&x, 3, 0, 2);
    str(&x, "k");
    u32(&x, ECH_GGUF_U8);
    x.b[x.n++] = 1;
    str(&x, "k");
    u32(&x, ECH_GGUF_U8);
    x.b[x.n++] = 2;
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "duplicate metadata key 'k'", "duplicate key");
    header(&x, 3, 0, 1);
    u64(&x, 3);
    put(&x, "a\0b", 3);
    u32(&x, ECH_GGUF_U8);
    x.b[x.n++] = 1;
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "NUL byte", "NUL in key");
    header(&x, 3, 0, 1);
    str(&x, "general.alignment");
    u32(&x, ECH_GGUF_U32);
    u32(&x, 48);
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "power of two", "alignment 48");
    header(&x, 3, 0, 1);
    str(&x, "general.alignment");
    u32(&x, ECH_GGUF_U64);
    u64(&x, 32);
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "must be u32", "alignment as u64");

    /* tensor infos */
    header(&x, 3, 1, 0);
    str(&x, "t");
    u32(&x, 5);
    u64(&x, 0);
    u64(&x, 0);
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "5 dimensions", "too many dims");
    header(&x, 3, 1, 0);
    str(&x, "t");
    u32(&x, 2);
    u64(&x, 1ull << 40);
    u64(&x, 1ull << 40);
    u32(&x, 0);
    u64(&x, 0);
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "overflow", "element count overflow");
    header(&x, 3, 1, 0);
    str(&x, "t");
    u32(&x, 1);
    u64(&x, 4);
    u32(&x, 4);   /* removed Q4_2 */
    u64(&x, 0);
    EXPECT_FAIL(&x, ECH_ERR_UNSUPPORTED, "unknown type 4", "removed tensor type");
    header(&x, 3, 1, 0);
    str(&x, "t");
    u32(&x, 1);
    u64(&x, 33);
    u32(&x, ECH_TYPE_Q4_0);
    u64(&x, 0);
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "block size", "row not a multiple of the block");
    header(&x, 3, 1, 0);
    str(&x, "t");
    u32(&x, 1);
    u64(&x, 4);
    u32(&x, ECH_TYPE_F32);
    u64(&x, 0);
    pad_to(&x, 32);
    put(&x, "12345678", 8);
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "truncated: tensor 't'", "tensor data past the end");
    header(&x, 3, 1, 0);
    str(&x, "t");
    u32(&x, 1);
    u64(&x, 4);
    u32(&x, ECH_TYPE_F32);
    u64(&x, 4);
    pad_to(&x, 32);
    memset(x.b + x.n, 0, 64);
    x.n += 64;
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "not aligned", "unaligned tensor offset");
    header(&x, 3, 2, 0);
    str(&x, "a");
    u32(&x, 1);
    u64(&x, 16);
    u32(&x, ECH_TYPE_F32);
    u64(&x, 0);
    str(&x, "b");
    u32(&x, 1);
    u64(&x, 16);
    u32(&x, ECH_TYPE_F32);
    u64(&x, 32);
    pad_to(&x, 32);
    memset(x.b + x.n, 0, 128);
    x.n += 128;
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "overlap", "overlapping tensors");
    header(&x, 3, 2, 0);
    str(&x, "a");
    u32(&x, 1);
    u64(&x, 8);
    u32(&x, ECH_TYPE_F32);
    u64(&x, 0);
    str(&x, "a");
    u32(&x, 1);
    u64(&x, 8);
    u32(&x, ECH_TYPE_F32);
    u64(&x, 32);
    pad_to(&x, 32);
    memset(x.b + x.n, 0, 64);
    x.n += 64;
    EXPECT_FAIL(&x, ECH_ERR_FORMAT, "duplicate tensor name 'a'", "duplicate tensor");
    /* and the same file with distinct names is fine */
    memcpy(x.b + 24 + 8 + 1 + 4 + 8 + 4 + 8 + 8, "b", 1);
    is_int(parse_bb(&x, &e), ECH_OK, "two valid tensors parse");
    /* a zero-tensor file may end right after its metadata */
    header(&x, 3, 0, 1);
    str(&x, "k");
    u32(&x, ECH_GGUF_STR);
    str(&x, "v");
    is_int(parse_bb(&x, &e), ECH_OK, "vocab-only file without padding");
    /* v2 reads like v3 */
    header(&x, 2, 0, 0);
    is_int(parse_bb(&x, &e), ECH_OK, "empty v2 file");
}

static void test_shared(void)
{
    const char *shared = getenv("ECH_SHARED");
    const char *dirs[] = {"models", "models/ref", "vocab"};
    if (!shared) {
        tap_skip(1, "ECH_SHARED not set");
        return;
    }
    int seen = 0;
    for (size_t d = 0; d < 3; d++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", shared, dirs[d]);
        DIR *dp = opendir(dir);
        if (!dp)
            continue;
        struct dirent *de;
        while ((de = readdir(dp))) {
            size_t l = strlen(de->d_name);
            if (l < 5 || strcmp(de->d_name + l - 5, ".gguf") != 0 || strstr(de->d_name, ".v1."))
                continue;
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            round_trip(path);
            seen++;
        }
        closedir(dp);
    }
    if (!seen)
        tap_skip(1, "no GGUF files under ECH_SHARED");
}

/* Walk every value and tensor of a parsed file the way a consumer would. */
static void walk(const ech_gguf *g)
{
    for (size_t i = 0; i < ech_gguf_n_kv(g); i++) {
        json_object *j = ech_gguf_kv_to_json(ech_gguf_kv_at(g, i), 16);
        json_object_put(j);
        char *t = ech_gguf_value_to_text(&ech_gguf_kv_at(g, i)->value, 8, 60);
        free(t);
    }
    ech_model_summary s;
    ech_gguf_summarize(g, &s);
    for (size_t i = 0; i < ech_gguf_n_tensors(g); i++) {
        const ech_gguf_tensor *t = ech_gguf_tensor_at(g, i);
        volatile uint8_t sink = 0;
        if (t->nbytes)
            sink ^= ((const uint8_t *)t->data)[0] ^ ((const uint8_t *)t->data)[t->nbytes - 1];
        (void)sink;
    }
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Truncate at every offset of the header region (and a sample of the data):
 * each prefix must be refused with a message.  Then flip random bytes in the
 * header (fixed seed): parsing may succeed or fail, but never misbehaves
 * (the sanitizer build turns misbehaviour into a crash). */
static void robust_file(const char *path, size_t max_every)
{
    ech_mapfile mf;
    ech_error e;
    ech_gguf *g;
    if (ech_mapfile_open(&mf, path, &e) != ECH_OK || ech_gguf_parse(mf.data, mf.size, &g, &e) != ECH_OK) {
        ok(0, "open %s", path);
        return;
    }
    size_t header = (size_t)ech_gguf_data_offset(g);
    ech_gguf_close(g);
    if (header > mf.size)
        header = mf.size;
    uint8_t *copy = malloc(mf.size);
    int bad = 0, tried = 0;
    size_t step = header > max_every ? header / max_every : 1;
    for (size_t n = 0; n < mf.size; n += (n < header ? step : (mf.size - header) / 64 + 1)) {
        /* a private copy of exactly n bytes, so ASan sees any overread */
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, mf.data, n);
        ech_status st = ech_gguf_parse(p, n, &g, &e);
        tried++;
        if (st == ECH_OK || e.msg[0] == 0) {
            if (bad++ < 3)
                printf("#   prefix %zu of %s: %s\n", n, path, st == ECH_OK ? "accepted" : "no message");
            ech_gguf_close(g);
        }
        free(p);
    }
    ok(bad == 0, "%d truncations of %s refused with a message", tried, path);
    int accepted = 0;
    memcpy(copy, mf.data, mf.size);
    for (int i = 0; i < 3000 && header; i++) {
        size_t at[4];
        uint8_t was[4];
        int flips = 1 + (int)(rng() % 4);
        for (int f = 0; f < flips; f++) {
            at[f] = rng() % header;
            was[f] = copy[at[f]];
            copy[at[f]] ^= (uint8_t)(1u << (rng() % 8));
        }
        if (ech_gguf_parse(copy, mf.size, &g, &e) == ECH_OK) {
            accepted++;
            walk(g);
            ech_gguf_close(g);
        }
        for (int f = flips - 1; f >= 0; f--)
            copy[at[f]] = was[f];
    }
    ok(1, "3000 random header corruptions of %s survived (%d still valid)", path, accepted);
    free(copy);
    ech_mapfile_close(&mf);
}

static void test_robust(void)
{
    const char *shared = getenv("ECH_SHARED");
    if (!shared) {
        tap_skip(1, "ECH_SHARED not set");
        return;
    }
    const char *files[] = {"models/stories260K.gguf", "models/llama-2-tiny-random.gguf",
                           "models/ref/mini-llama-Q4_K_M.gguf", "vocab/ggml-vocab-bert-bge.gguf"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", shared, files[i]);
        if (access(path, R_OK) == 0)
            robust_file(path, i == 0 ? SIZE_MAX : 3000);
        else
            tap_skip(2, files[i]);
    }
}

int main(void)
{
    test_types();
    test_writer_reader();
    test_hostile();
    test_shared();
    test_robust();
    return done_testing();
}
