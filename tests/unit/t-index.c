/* t-index.c - unit tests for lib/index: distance kernels, HNSW against
 * brute force, persistence, tombstones, append, bad input and hostile files,
 * and (with $ECH_SHARED/ann) recall@10 on a GloVe subset.
 *
 * Brute force here is the test's own double-precision loop, not the
 * library's ech_index_search_exact (which is checked against it too).
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ech.h"
#include "tap.h"

uint32_t ech_index_crc32c(uint32_t crc, const void *data, size_t n);  /* store.c, for forging files */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static float frand(void) { return (float)((double)rnd() / 2147483648.0 - 1.0); }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The test's own distance, in double: smaller is nearer. */
static double ref_dist(ech_metric m, const float *a, const float *b, size_t d)
{
    double s = 0, na = 0, nb = 0;
    for (size_t i = 0; i < d; i++) {
        if (m == ECH_METRIC_L2)
            s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        else
            s += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    if (m == ECH_METRIC_L2)
        return s;
    if (m == ECH_METRIC_COSINE)
        return 1 - s / sqrt(na * nb);
    return 1 - s;
}

/* ids of the k nearest of base[0..n) to q, by the test's distance */
static void brute(ech_metric m, const float *base, size_t n, size_t d, const float *q, size_t k, uint32_t *out,
                  const unsigned char *skip)
{
    double *bd = malloc(k * sizeof *bd);
    size_t got = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i])
            continue;
        double x = ref_dist(m, q, base + i * d, d);
        if (got == k && x >= bd[k - 1])
            continue;
        size_t j = got < k ? got++ : k - 1;
        while (j > 0 && bd[j - 1] > x) {
            bd[j] = bd[j - 1];
            out[j] = out[j - 1];
            j--;
        }
        bd[j] = x;
        out[j] = (uint32_t)i;
    }
    free(bd);
}

static ech_index *build(ech_metric m, const float *base, size_t n, size_t d, size_t first, int threads,
                        const char *payload_prefix)
{
    ech_index_params p;
    ech_index_params_default(&p);
    p.metric = m;
    p.dim = (uint32_t)d;
    ech_index *idx;
    ech_error err;
    if (ech_index_new(&p, &idx, &err))
        return NULL;
    ech_index_item *items = calloc(n, sizeof *items);
    char (*pay)[32] = calloc(n, sizeof *pay);
    for (size_t i = 0; i < n; i++) {
        items[i].key = (ech_index_key){.kind = ECH_KEY_U64, .num = first + i};
        items[i].vec = base + (first + i) * d;
        if (payload_prefix) {
            snprintf(pay[i], sizeof pay[i], "{\"text\":\"%s%zu\"}", payload_prefix, first + i);
            items[i].payload = pay[i];
            items[i].payload_len = strlen(pay[i]);
        }
    }
    ech_status st = ech_index_add(idx, items, n, threads, &err);
    if (st)
        printf("# add: %s\n", err.msg);
    free(items);
    free(pay);
    if (st) {
        ech_index_free(idx);
        return NULL;
    }
    return idx;
}

static size_t search_keys(ech_index *idx, ech_index_searcher *s, const float *q, size_t k, uint32_t ef,
                          uint64_t *keys)
{
    ech_index_hit hits[64];
    size_t nh = 0;
    ech_error err;
    if (ech_index_search(s, q, k, ef, NULL, NULL, hits, &nh, &err))
        return 0;
    for (size_t i = 0; i < nh; i++) {
        ech_index_key key;
        ech_index_key_at(idx, hits[i].elem, &key);
        keys[i] = key.num;
    }
    return nh;
}

static void test_distance(void)
{
    float a[80], b[80];
    int worst_ok = 1;
    for (int m = 0; m < 3; m++)
        for (size_t n = 1; n <= 80; n++) {
            for (size_t i = 0; i < n; i++)
                a[i] = frand(), b[i] = frand();
            double want = m == ECH_METRIC_L2 ? ref_dist(ECH_METRIC_L2, a, b, n) : ref_dist(ECH_METRIC_IP, a, b, n);
            double scale = 0;
            for (size_t i = 0; i < n; i++)
                scale += fabs((double)a[i] * b[i]) + (double)(a[i] - b[i]) * (a[i] - b[i]);
            for (int isa = 0; isa <= 2; isa++) {
                float got = ech_dist_at((ech_metric)m, (ech_isa)isa)(a, b, n);
                if (fabs(got - want) > 1e-5 * (scale + 1)) {
                    worst_ok = 0;
                    printf("# metric %d n %zu isa %d: got %g want %g\n", m, n, isa, got, want);
                }
            }
        }
    ok(worst_ok, "l2 and ip kernels (scalar, AVX2, AVX-512 where the CPU has them) agree with double, n=1..80");
    is_int(ech_metric_parse("cosine"), ECH_METRIC_COSINE, "metric names parse");
    is_int(ech_metric_parse("l2x"), -1, "an unknown metric is -1");
    is_int(ech_index_crc32c(0, "123456789", 9), 0xE3069283u, "CRC-32C check value");
}

/* Exact agreement with brute force when ef covers the whole set. */
static void test_tiny(void)
{
    enum { N = 300, D = 13, K = 10, Q = 40 };
    float *base = malloc(sizeof(float) * N * D), *qs = malloc(sizeof(float) * Q * D);
    for (size_t i = 0; i < N * D; i++)
        base[i] = frand();
    for (size_t i = 0; i < Q * D; i++)
        qs[i] = frand();
    for (int m = 0; m < 3; m++) {
        ech_index *idx = build((ech_metric)m, base, N, D, 0, 1, NULL);
        ech_index_searcher *s;
        ech_error err;
        ok(idx && ech_index_searcher_new(idx, &s, &err) == ECH_OK, "%s: built %d elements",
           ech_metric_name((ech_metric)m), N);
        if (!idx)
            continue;
        int same = 1, same_exact = 1;
        for (size_t q = 0; q < Q; q++) {
            uint32_t want[K];
            uint64_t got[K];
            brute((ech_metric)m, base, N, D, qs + q * D, K, want, NULL);
            size_t nh = search_keys(idx, s, qs + q * D, K, N, got);
            for (size_t i = 0; i < K; i++)
                same &= nh == K && got[i] == want[i];
            ech_index_hit hits[K];
            ech_index_search_exact(idx, qs + q * D, K, NULL, NULL, hits, &nh, &err);
            for (size_t i = 0; i < K; i++)
                same_exact &= nh == K && hits[i].elem == want[i];
        }
        ok(same, "%s: HNSW with ef=n returns exactly the brute-force top %d for %d queries",
           ech_metric_name((ech_metric)m), K, Q);
        ok(same_exact, "%s: ech_index_search_exact agrees too", ech_metric_name((ech_metric)m));
        ech_index_searcher_free(s);
        ech_index_free(idx);
    }
    free(base);
    free(qs);
}

static int files_equal(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
    return na == nb && memcmp(a, b, na) == 0;
}

static void test_persist_and_delete(void)
{
    enum { N = 2000, D = 24, K = 10 };
    float *base = malloc(sizeof(float) * N * D);
    for (size_t i = 0; i < N * D; i++)
        base[i] = frand();
    ech_index *idx = build(ECH_METRIC_L2, base, N, D, 0, 1, "doc");
    ech_error err;
    uint8_t *img, *img2;
    size_t size, size2;
    ok(idx && ech_index_save_mem(idx, &img, &size, &err) == ECH_OK, "saved %d elements to memory", N);

    /* one thread: the same graph every time */
    ech_index *again = build(ECH_METRIC_L2, base, N, D, 0, 1, "doc");
    ech_index_save_mem(again, &img2, &size2, &err);
    ok(files_equal(img, size, img2, size2), "two one-thread builds write identical files (%zu bytes)", size);
    ech_index_free(again);
    free(img2);
    /* two threads: the same levels */
    again = build(ECH_METRIC_L2, base, N, D, 0, 2, "doc");
    int same_levels = again && ech_index_max_level(again) == ech_index_max_level(idx);
    ok(same_levels, "a two-thread build draws the same levels (top level %d)", ech_index_max_level(idx));
    ech_index_free(again);

    ech_index *back;
    ok(ech_index_open_mem(img, size, &back, &err) == ECH_OK, "the image opens");
    ech_index_searcher *s1, *s2;
    ech_index_searcher_new(idx, &s1, &err);
    ech_index_searcher_new(back, &s2, &err);
    int same = 1;
    for (int q = 0; q < 50; q++) {
        float v[D];
        for (int i = 0; i < D; i++)
            v[i] = frand();
        uint64_t a[K], b[K];
        size_t na = search_keys(idx, s1, v, K, 50, a), nb = search_keys(back, s2, v, K, 50, b);
        same &= na == K && nb == K && memcmp(a, b, sizeof a) == 0;
    }
    ok(same, "the opened image answers 50 queries exactly as the built index");
    size_t pl;
    const char *pay = ech_index_payload(back, 1234, &pl);
    ok(pay && pl == strlen("{\"text\":\"doc1234\"}") && memcmp(pay, "{\"text\":\"doc1234\"}", pl) == 0,
       "payloads survive the round trip");
    ech_index_searcher_free(s2);

    /* to a file and back: the same bytes */
    const char *path = "t-index.tmp.idx";
    ok(ech_index_save(back, path, &err) == ECH_OK, "saved to a file");
    ech_index *f;
    ok(ech_index_open(path, &f, &err) == ECH_OK, "the file opens");
    ech_index_save_mem(f, &img2, &size2, &err);
    ok(files_equal(img, size, img2, size2), "and writes the same bytes again");
    free(img2);

    /* delete */
    ech_index_key k42 = {.kind = ECH_KEY_U64, .num = 42};
    ok(ech_index_delete(f, &k42, &err) == ECH_OK, "delete id 42 of a mapped index");
    is_int(ech_index_delete(f, &k42, &err), ECH_ERR_NOT_FOUND, "deleting it again: not found");
    is_int(ech_index_live(f), N - 1, "one element fewer is live");
    ech_index_searcher_new(f, &s2, &err);
    int never = 1;
    for (int q = 0; q < 20; q++) {
        uint64_t got[K];
        size_t nh = search_keys(f, s2, base + 42 * D, K, 100, got);
        never &= nh == K;
        for (size_t i = 0; i < nh; i++)
            never &= got[i] != 42;
        ech_index_key kq = {.kind = ECH_KEY_U64, .num = got[0]};
        if (q < 19)
            never &= ech_index_delete(f, &kq, &err) == ECH_OK;  /* and its nearest, repeatedly */
        ech_index_searcher_free(s2);
        ech_index_searcher_new(f, &s2, &err);
    }
    ok(never, "searching for a deleted element's own vector never returns it (20 rounds of deletes)");
    ech_index_save(f, path, &err);
    ech_index *g;
    ok(ech_index_open(path, &g, &err) == ECH_OK && ech_index_live(g) == N - 20, "tombstones persist");
    ech_index_item again_item = {.key = k42, .vec = base + 42 * D};
    ok(ech_index_add(g, &again_item, 1, 1, &err) == ECH_OK, "a deleted id can be added again");
    ech_index *c;
    ok(ech_index_compact(g, 2, &c, &err) == ECH_OK && ech_index_size(c) == N - 19 && ech_index_live(c) == N - 19,
       "compaction keeps the %d live elements only", N - 19);
    pay = ech_index_payload(c, 0, &pl);
    ok(pay && pl == strlen("{\"text\":\"doc0\"}"), "compaction keeps payloads");
    ech_index_searcher_free(s2);
    ech_index_free(c);
    ech_index_free(g);
    ech_index_free(f);
    ech_index_searcher_free(s1);
    ech_index_free(back);
    ech_index_free(idx);
    remove(path);
    free(img);
    free(base);
}

static void forge_crc(uint8_t *img, size_t size)
{
    uint32_t crc = ech_index_crc32c(ech_index_crc32c(0, img + 256, size - 256), img, 252);
    memcpy(img + 252, &crc, 4);
}

static void test_bad_input(void)
{
    enum { N = 500, D = 8 };
    float *base = malloc(sizeof(float) * N * D);
    for (size_t i = 0; i < N * D; i++)
        base[i] = frand();
    ech_index *idx = build(ECH_METRIC_COSINE, base, N, D, 0, 1, NULL);
    ech_error err;
    float nanv[D] = {1, 2, NAN, 4, 5, 6, 7, 8}, zero[D] = {0};
    ech_index_item it[3] = {
        {.key = {.kind = ECH_KEY_U64, .num = 1000}, .vec = base},
        {.key = {.kind = ECH_KEY_U64, .num = 1001}, .vec = nanv},
    };
    is_int(ech_index_add(idx, it, 2, 1, &err), ECH_ERR_INVALID, "NaN refused: %s", err.msg);
    is_int(ech_index_size(idx), N, "and nothing was added");
    it[1].vec = zero;
    is_int(ech_index_add(idx, it, 2, 1, &err), ECH_ERR_INVALID, "a zero vector refused for cosine: %s", err.msg);
    it[1] = (ech_index_item){.key = {.kind = ECH_KEY_U64, .num = 7}, .vec = base};
    is_int(ech_index_add(idx, it, 2, 1, &err), ECH_ERR_INVALID, "a duplicate of an indexed id: %s", err.msg);
    it[1] = (ech_index_item){.key = {.kind = ECH_KEY_U64, .num = 1000}, .vec = base};
    is_int(ech_index_add(idx, it, 2, 1, &err), ECH_ERR_INVALID, "a duplicate within the batch: %s", err.msg);
    it[1] = (ech_index_item){.key = {.kind = ECH_KEY_STRING, .str = "x", .len = 1}, .vec = base};
    is_int(ech_index_add(idx, it, 2, 1, &err), ECH_ERR_INVALID, "a string id among numbers: %s", err.msg);
    is_int(ech_index_size(idx), N, "the index is as it was");
    ech_index_searcher *s;
    ech_index_searcher_new(idx, &s, &err);
    ech_index_hit hits[4];
    size_t nh;
    is_int(ech_index_search(s, nanv, 4, 0, NULL, NULL, hits, &nh, &err), ECH_ERR_INVALID, "a NaN query: %s",
           err.msg);
    ech_index_searcher_free(s);

    uint8_t *img;
    size_t size;
    ech_index_save_mem(idx, &img, &size, &err);
    uint8_t *cp = malloc(size);
    ech_index *bad;
    int all_refused = 1;
    /* every truncation refused */
    for (size_t cut = 0; cut < size; cut += cut < 300 ? 1 : 97) {
        memcpy(cp, img, cut);
        all_refused &= ech_index_open_mem(cp, cut, &bad, &err) != ECH_OK && err.msg[0];
    }
    ok(all_refused, "every truncated image is refused");
    /* every flipped byte refused (by the checksum, or the magic/version checks) */
    all_refused = 1;
    for (size_t at = 0; at < size; at += at < 300 ? 1 : 61) {
        memcpy(cp, img, size);
        cp[at] ^= 0x40;
        all_refused &= ech_index_open_mem(cp, size, &bad, &err) != ECH_OK;
    }
    ok(all_refused, "every flipped byte is refused");
    memcpy(cp, img, size);
    cp[1000] ^= 1;
    is_int(ech_index_open_mem(cp, size, &bad, &err), ECH_ERR_CHECKSUM, "checksum error: %s", err.msg);
    /* hostile files with a correct checksum */
    uint64_t l0off;
    memcpy(&l0off, img + 88, 8);
    uint32_t huge = 0xFFFFFFF0u;
    memcpy(cp, img, size);
    memcpy(cp + l0off + 4, &huge, 4);  /* element 0's first link */
    forge_crc(cp, size);
    is_int(ech_index_open_mem(cp, size, &bad, &err), ECH_ERR_FORMAT, "a link out of range: %s", err.msg);
    memcpy(cp, img, size);
    uint64_t big = (uint64_t)1 << 40;
    memcpy(cp + 96, &big, 8);  /* level-0 section size */
    forge_crc(cp, size);
    is_int(ech_index_open_mem(cp, size, &bad, &err), ECH_ERR_FORMAT, "a section past the end: %s", err.msg);
    memcpy(cp, img, size);
    uint32_t dim0 = 0;
    memcpy(cp + 16, &dim0, 4);
    forge_crc(cp, size);
    is_int(ech_index_open_mem(cp, size, &bad, &err), ECH_ERR_FORMAT, "dimension 0: %s", err.msg);
    free(cp);
    free(img);
    ech_index_free(idx);
    free(base);

    /* readers */
    ech_vec_scratch sc = {0};
    ech_vec_record r;
    const char *good = "{\"id\":\"a\",\"embedding\":[1,2.5,-3e-2],\"text\":\"hi\",\"source\":\"f.txt\",\"chunk\":2,\"x\":1}";
    ok(ech_vec_parse_line(good, strlen(good), &sc, &r, &err) == ECH_OK && r.dim == 3 && r.vec[1] == 2.5f &&
           r.key.kind == ECH_KEY_STRING && r.key.len == 1 && r.payload &&
           strcmp(r.payload, "{\"text\":\"hi\",\"source\":\"f.txt\",\"chunk\":2}") == 0,
       "an ech-embed record: id, embedding, payload of text/source/chunk");
    static const char *const bads[] = {
        "{\"id\":1}", "{\"id\":1,\"embedding\":[]}", "{\"id\":-1,\"embedding\":[1]}", "{\"id\":1.5,\"embedding\":[1]}",
        "{\"embedding\":[1,\"a\"]}", "{\"embedding\":[1,NaN]}", "{\"embedding\":[1e39]}", "[1,2", "{\"embedding\":[1]} x",
        "\"str\"",
    };
    int refused = 1;
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        ech_status st = ech_vec_parse_line(bads[i], strlen(bads[i]), &sc, &r, &err);
        if (st != ECH_ERR_FORMAT)
            printf("# accepted: %s\n", bads[i]);
        refused &= st == ECH_ERR_FORMAT;
    }
    ok(refused, "bad records refused (no embedding, empty, negative or fractional id, NaN, overflow, junk)");
    ech_vec_scratch_free(&sc);
    uint8_t fv[4 + 8 + 4 + 8] = {2, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 2, 0, 0, 0};
    uint32_t dim;
    size_t count;
    ok(ech_fvecs_check(fv, 24, &dim, &count, &err) == ECH_OK && dim == 2 && count == 2 &&
           ech_fvecs_at(fv, dim, 0)[0] == 1.0f,
       ".fvecs: two records of 2");
    is_int(ech_fvecs_check(fv, 23, &dim, &count, &err), ECH_ERR_FORMAT, "truncated .fvecs: %s", err.msg);
    fv[12] = 3;
    is_int(ech_fvecs_check(fv, 24, &dim, &count, &err), ECH_ERR_FORMAT, "mixed dimensions: %s", err.msg);
}

/* fvecs file from $ECH_SHARED, mapped */
static const float *load_fvecs(const char *dir, const char *name, ech_mapfile *mf, uint32_t *dim, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ech_error err;
    if (ech_mapfile_open(mf, path, NULL) || ech_fvecs_check(mf->data, mf->size, dim, n, &err))
        return NULL;
    /* repack without the dimension words */
    float *v = malloc(sizeof(float) * *dim * *n);
    for (size_t i = 0; i < *n; i++)
        memcpy(v + i * *dim, ech_fvecs_at(mf->data, *dim, i), sizeof(float) * *dim);
    ech_mapfile_close(mf);
    return v;
}

static double recall(ech_index *idx, const float *qs, size_t nq, uint32_t d, const uint32_t *gt, uint32_t ef)
{
    ech_index_searcher *s;
    ech_error err;
    ech_index_searcher_new(idx, &s, &err);
    size_t hit = 0;
    for (size_t q = 0; q < nq; q++) {
        uint64_t got[10];
        size_t nh = search_keys(idx, s, qs + q * d, 10, ef, got);
        for (size_t i = 0; i < nh; i++)
            for (size_t j = 0; j < 10; j++)
                hit += got[i] == gt[q * 10 + j];
    }
    ech_index_searcher_free(s);
    return (double)hit / (double)(nq * 10);
}

static void test_glove(void)
{
    const char *shared = getenv("ECH_SHARED");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/ann/glove6b-100d-100k", shared ? shared : "");
    ech_mapfile mf;
    uint32_t d = 0, dq = 0;
    size_t n = 0, nq = 0;
    const float *base = shared ? load_fvecs(dir, "base.fvecs", &mf, &d, &n) : NULL;
    const float *qs = base ? load_fvecs(dir, "query.fvecs", &mf, &dq, &nq) : NULL;
    if (!base || !qs || d != dq) {
        tap_skip(3, "$ECH_SHARED/ann/glove6b-100d-100k absent");
        free((void *)base);
        return;
    }
    /* a subset keeps the test short (and the sanitizer build bearable) */
    size_t sub = 20000, nqs = 300, half = sub / 2;
    uint32_t *gt = malloc(sizeof *gt * nqs * 10);
    for (size_t q = 0; q < nqs; q++)
        brute(ECH_METRIC_COSINE, base, sub, d, qs + q * d, 10, gt + q * 10, NULL);
    double t0 = now();
    ech_index *idx = build(ECH_METRIC_COSINE, base, sub, d, 0, 2, NULL);
    double t1 = now();
    double r = idx ? recall(idx, qs, nqs, d, gt, 128) : 0;
    ok(r >= 0.95, "GloVe %zu x %u, cosine: recall@10 %.4f >= 0.95 at efSearch 128 (built in %.1f s, 2 threads)",
       sub, d, r, t1 - t0);
    /* append: the same elements in two batches, through a file */
    ech_index *a = build(ECH_METRIC_COSINE, base, half, d, 0, 2, NULL);
    ech_error err;
    int appended = a && ech_index_save(a, "t-index-glove.tmp.idx", &err) == ECH_OK;
    ech_index_free(a);
    appended = appended && ech_index_open("t-index-glove.tmp.idx", &a, &err) == ECH_OK;
    if (appended) {
        ech_index_item *items = calloc(sub - half, sizeof *items);
        for (size_t i = 0; i < sub - half; i++)
            items[i] = (ech_index_item){.key = {.kind = ECH_KEY_U64, .num = half + i}, .vec = base + (half + i) * d};
        appended = ech_index_add(a, items, sub - half, 2, &err) == ECH_OK;
        free(items);
    }
    double ra = appended ? recall(a, qs, nqs, d, gt, 128) : 0;
    ok(appended && ra >= 0.95 && fabs(ra - r) <= 0.02,
       "append (two halves, the second to a reopened file): recall %.4f, one-shot %.4f", ra, r);
    ech_index_free(a);
    remove("t-index-glove.tmp.idx");
    /* a low ef must lose recall, or the test above proves nothing about the graph */
    double low = idx ? recall(idx, qs, nqs, d, gt, 10) : 1;
    ok(low < r, "efSearch 10 gives lower recall (%.4f) than 128", low);
    ech_index_free(idx);
    free(gt);
    free((void *)base);
    free((void *)qs);
}

int main(void)
{
    test_distance();
    test_tiny();
    test_persist_and_delete();
    test_bad_input();
    test_glove();
    return done_testing();
}
