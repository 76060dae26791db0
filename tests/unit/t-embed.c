/* t-embed.c - embeddings against llama.cpp.
 *
 * Encoders: for every "embedding" model of $ECH_SHARED/golden/index.json,
 * our WordPiece ids must equal the golden ids and the pooled, normalised
 * embeddings (all sentences in one batched pass) must be within the
 * suggested tolerances (max abs diff and cosine); unnormalised pooling must
 * match the golden pooled_raw; one text at a time must agree with the batch.
 * (The goldens were made with llama.cpp's flash attention, its default: our
 * F32 vectors are 2e-5 from them, and 1e-7 from llama-embedding -fa off.)
 * Decoders: stories260K with mean and last pooling against llama.cpp's
 * llama-embedding (tests/data/embed, see its README).  Run at every ISA
 * level.  Also: chunking, errors.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ech.h"
#include "tap.h"

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    json_object_object_get_ex(o, k, &v);
    return v;
}

/* max abs diff and cosine of a against the JSON array g */
static void compare(const float *a, json_object *g, size_t n, double *max_abs, double *cos)
{
    double d = 0, ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        double x = a[i], y = json_object_get_double(json_object_array_get_idx(g, i));
        double e = fabs(x - y);
        if (e > d || isnan(e))
            d = isnan(e) ? INFINITY : e;
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    *max_abs = d;
    *cos = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

static void check_golden(const char *shared, json_object *entry, int verbose)
{
    char path[4096];
    const char *name = json_object_get_string(get(entry, "name"));
    json_object *tol = get(entry, "suggested_tolerance");
    const double tol_abs = json_object_get_double(get(tol, "embedding_max_abs"));
    const double tol_cos = json_object_get_double(get(tol, "min_cosine"));
    snprintf(path, sizeof path, "%s/%s", shared, json_object_get_string(get(entry, "golden_file")));
    json_object *golden = json_object_from_file(path);
    snprintf(path, sizeof path, "%s/%s", shared, json_object_get_string(get(entry, "model_file")));
    ech_model *m = NULL;
    ech_tokenizer *tk = NULL;
    ech_embedder *e = NULL, *raw = NULL;
    ech_error err;
    if (!golden || ech_model_open(path, &m, &err) != ECH_OK) {
        tap_skip(1, "model or golden absent");
        json_object_put(golden);
        return;
    }
    ech_embed_params p = ech_embed_default_params();
    p.n_threads = 2;
    ok(ech_tokenizer_load(m->gguf, &tk, &err) == ECH_OK, "%s: tokenizer", name);
    ok(ech_embedder_new(m, &p, &e, &err) == ECH_OK, "%s: embedder (%s)", name, err.msg);
    p.normalize = false;
    ok(ech_embedder_new(m, &p, &raw, &err) == ECH_OK, "%s: embedder without normalisation", name);
    is_int(ech_embedder_pooling(e), ECH_POOLING_MEAN, "%s: pooling from the model", name);
    json_object *cases = get(golden, "cases");
    const size_t nc = json_object_array_length(cases), dim = ech_embedder_dim(e);
    const char *texts[16];
    size_t lens[16];
    for (size_t i = 0; i < nc && i < 16; i++) {
        json_object *c = json_object_array_get_idx(cases, i);
        texts[i] = json_object_get_string(get(c, "text"));
        lens[i] = strlen(texts[i]);
        ech_tokens t = {0};
        ech_tokenize(tk, texts[i], lens[i], ECH_TOKENIZE_ADD_SPECIAL, &t, &err);
        json_object *ids = get(c, "token_ids");
        int same = t.n == json_object_array_length(ids);
        for (size_t k = 0; same && k < t.n; k++)
            same = t.ids[k] == json_object_get_int(json_object_array_get_idx(ids, k));
        ok(same, "%s: token ids of \"%s\"", name, texts[i]);
        ech_tokens_free(&t);
    }
    float *all = calloc(nc * dim, sizeof(float)), *one = calloc(dim, sizeof(float));
    float *unnorm = calloc(nc * dim, sizeof(float));
    uint64_t ntok = 0;
    ok(ech_embed_texts(e, tk, texts, lens, nc, all, &ntok, &err) == ECH_OK, "%s: embed %zu texts in one call", name, nc);
    ok(ech_embed_texts(raw, tk, texts, lens, nc, unnorm, NULL, &err) == ECH_OK, "%s: the same unnormalised", name);
    for (size_t i = 0; i < nc; i++) {
        json_object *c = json_object_array_get_idx(cases, i);
        double d, cs, dr, csr;
        compare(all + i * dim, get(c, "embedding"), dim, &d, &cs);
        if (!ok(d <= tol_abs && cs >= tol_cos, "%s: embedding %zu within %g, cos >= %g", name, i, tol_abs, tol_cos) ||
            verbose)
            printf("#   max abs diff %.3g, cosine %.9f\n", d, cs);
        compare(unnorm + i * dim, get(c, "pooled_raw"), dim, &dr, &csr);
        /* the raw vector is not unit length: scale the tolerance by its size */
        double scale = 0;
        for (size_t k = 0; k < dim; k++)
            scale = fmax(scale, fabs(json_object_get_double(json_object_array_get_idx(get(c, "pooled_raw"), k))));
        ok(dr <= tol_abs * fmax(1.0, scale) * 4 && csr >= tol_cos, "%s: pooled_raw %zu (diff %.3g)", name, i, dr);
        ech_embed_texts(e, tk, &texts[i], &lens[i], 1, one, NULL, &err);
        double bd = 0;
        for (size_t k = 0; k < dim; k++)
            bd = fmax(bd, fabs(one[k] - all[i * dim + k]));
        ok(bd <= 1e-6, "%s: text %zu alone agrees with the batch (%.3g)", name, i, bd);
    }
    free(all);
    free(one);
    free(unnorm);
    ech_embedder_free(e);
    ech_embedder_free(raw);
    ech_tokenizer_free(tk);
    ech_model_close(m);
    json_object_put(golden);
}

/* stories260K: vectors recorded with llama-embedding (tests/data/embed) */
static void check_decoder(const char *shared, const char *srcdir, const char *pooling)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/embed/stories260K-%s.json", srcdir, pooling);
    json_object *ref = json_object_from_file(path);
    snprintf(path, sizeof path, "%s/models/stories260K.gguf", shared);
    ech_model *m = NULL;
    ech_tokenizer *tk = NULL;
    ech_embedder *e = NULL;
    ech_error err;
    if (!ref || ech_model_open(path, &m, &err) != ECH_OK) {
        tap_skip(1, "stories260K or its reference vectors absent");
        json_object_put(ref);
        return;
    }
    ech_embed_params p = ech_embed_default_params();
    ech_pooling_parse(pooling, &p.pooling, &err);
    ech_tokenizer_load(m->gguf, &tk, &err);
    ok(ech_embedder_new(m, &p, &e, &err) == ECH_OK, "stories260K: embedder, %s pooling", pooling);
    json_object *texts = get(ref, "texts"), *data = get(ref, "data");
    const double tol = json_object_get_double(get(ref, "tolerance"));
    const size_t n = json_object_array_length(texts), dim = ech_embedder_dim(e);
    const char *tx[16];
    size_t lens[16];
    for (size_t i = 0; i < n && i < 16; i++) {
        tx[i] = json_object_get_string(json_object_array_get_idx(texts, i));
        lens[i] = strlen(tx[i]);
    }
    float *out = calloc(n * dim, sizeof(float));
    ok(ech_embed_texts(e, tk, tx, lens, n, out, NULL, &err) == ECH_OK, "stories260K: embed %zu texts", n);
    for (size_t i = 0; i < n; i++) {
        json_object *g = get(json_object_array_get_idx(data, i), "embedding");
        double d, cs;
        is_int(json_object_array_length(g), dim, "stories260K: dimension");
        compare(out + i * dim, g, dim, &d, &cs);
        ok(d <= tol, "stories260K %s: \"%s\" within %g of llama-embedding", pooling, tx[i], tol);
        printf("#   max abs diff %.3g, cosine %.9f\n", d, cs);
    }
    free(out);
    ech_embedder_free(e);
    ech_tokenizer_free(tk);
    ech_model_close(m);
    json_object_put(ref);
}

static void check_chunks(const char *shared)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/models/ref/mini-bert-F32.gguf", shared);
    ech_tokenizer *tk = NULL;
    ech_error err;
    if (ech_tokenizer_open(path, &tk, &err) != ECH_OK) {
        tap_skip(1, "mini-bert absent");
        return;
    }
    /* words of varied token counts, one very long word, odd spacing */
    ech_buf text = {0};
    const char *words[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog.", "naïve", "café",
                           "unbelievably", "antidisestablishmentarianism", "42", "tokens!"};
    for (int i = 0; i < 300; i++) {
        const char *w = words[(i * 7) % 14];
        ech_buf_append(&text, w, strlen(w));
        ech_buf_append(&text, i % 5 ? " " : " \n\t ", i % 5 ? 1 : 4);
    }
    for (int i = 0; i < 200; i++)
        ech_buf_append(&text, "xq", 2);
    ech_buf_append(&text, " end", 4);
    ech_span *sp = NULL;
    size_t n = 0;
    const uint32_t max = 40, overlap = 8;
    ok(ech_embed_chunks(tk, text.data, text.len, max, overlap, &sp, &n, &err) == ECH_OK, "chunks: split (%s)",
       err.msg);
    int fits = 1, ordered = 1, overlaps = 0;
    for (size_t i = 0; i < n; i++) {
        ech_tokens t = {0};
        ech_tokenize(tk, text.data + sp[i].off, sp[i].len, 0, &t, &err);
        if (t.n > max || t.n == 0)
            fits = 0;
        ech_tokens_free(&t);
        if (i && sp[i].off <= sp[i - 1].off)
            ordered = 0;
        if (i && sp[i].off < sp[i - 1].off + sp[i - 1].len)
            overlaps++;
        if (i && sp[i].off > sp[i - 1].off + sp[i - 1].len + 4)   /* nothing but whitespace is skipped */
            ordered = 0;
    }
    ok(n > 10 && fits, "chunks: %zu chunks of 1 to %u tokens", n, max);
    ok(ordered, "chunks: in order, each after the last one's start, no text skipped");
    ok(sp && sp[0].off == 0 && sp[n - 1].off + sp[n - 1].len == text.len, "chunks: from the first to the last byte");
    ok((size_t)overlaps > n / 2, "chunks: consecutive chunks overlap (%d of %zu)", overlaps, n);
    free(sp);
    ok(ech_embed_chunks(tk, " \n\t ", 4, max, 0, &sp, &n, &err) == ECH_OK && n == 0, "chunks: whitespace has none");
    free(sp);
    ok(ech_embed_chunks(tk, "a b", 3, 4, 4, &sp, &n, &err) == ECH_ERR_INVALID, "chunks: overlap must be smaller");
    ech_buf_free(&text);
    ech_tokenizer_free(tk);
}

static void check_errors(const char *shared)
{
    char path[4096];
    ech_error err;
    ech_model *m = NULL;
    ech_embedder *e = NULL;
    snprintf(path, sizeof path, "%s/models/ref/mini-gemma3-Q8_0.gguf", shared);
    if (ech_model_open(path, &m, &err) == ECH_OK) {
        ok(ech_embedder_new(m, NULL, &e, &err) == ECH_ERR_UNSUPPORTED && strstr(err.msg, "gemma3"),
           "gemma3 cannot embed: %s", err.msg);
        ech_model_close(m);
    }
    snprintf(path, sizeof path, "%s/models/ref/mini-bert-Q8_0.gguf", shared);
    if (ech_model_open(path, &m, &err) != ECH_OK) {
        tap_skip(1, "mini-bert absent");
        return;
    }
    ech_embed_params p = ech_embed_default_params();
    p.n_ctx = 1024;
    ok(ech_embedder_new(m, &p, &e, &err) == ECH_ERR_RANGE, "bert: no positions beyond 512: %s", err.msg);
    p.n_ctx = 16;
    ok(ech_embedder_new(m, &p, &e, &err) == ECH_OK, "bert: a context of 16");
    ech_tokenizer *tk = NULL;
    ech_tokenizer_load(m->gguf, &tk, &err);
    const char *t = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen";
    size_t len = strlen(t);
    float v[128];
    ok(ech_embed_texts(e, tk, &t, &len, 1, v, NULL, &err) == ECH_ERR_RANGE && strstr(err.msg, "more than"),
       "a text longer than the context is refused: %s", err.msg);
    ech_token bad = 999999;
    const ech_token *bp = &bad;
    uint32_t one = 1;
    ok(ech_embed_tokens(e, &bp, &one, 1, v, &err) == ECH_ERR_INVALID, "a token outside the vocab is refused");
    ech_ctx *c = NULL;
    ok(ech_ctx_new(m, NULL, &c, &err) == ECH_OK && ech_ctx_decode(c, &bad, 1, &err) == ECH_ERR_INVALID,
       "an encoder does not decode: %s", err.msg);
    ech_ctx_free(c);
    ech_tokenizer_free(tk);
    ech_embedder_free(e);
    ech_model_close(m);
}

int main(void)
{
    const char *shared = getenv("ECH_SHARED"), *src = getenv("ECH_SRC");
    char ipath[4096];
    json_object *index = NULL;
    if (shared) {
        snprintf(ipath, sizeof ipath, "%s/golden/index.json", shared);
        index = json_object_from_file(ipath);
    }
    ech_pooling pl;
    ok(ech_pooling_parse("cls", &pl, NULL) == ECH_OK && pl == ECH_POOLING_CLS, "pooling names");
    ok(ech_pooling_parse("max", &pl, NULL) == ECH_ERR_INVALID, "an unknown pooling is refused");
    if (!index) {
        tap_skip(1, "ECH_SHARED golden data absent");
        return done_testing();
    }
    json_object *models = get(index, "models");
    ech_isa best = ech_isa_detect();
    for (int isa = ECH_ISA_SCALAR; isa <= (int)best; isa++) {
        ech_kernels_use((ech_isa)isa);
        printf("# kernels: %s\n", ech_isa_name((ech_isa)isa));
        for (size_t i = 0; i < json_object_array_length(models); i++) {
            json_object *e = json_object_array_get_idx(models, i);
            if (strcmp(json_object_get_string(get(e, "kind")), "embedding") == 0)
                check_golden(shared, e, isa == (int)best);
        }
        check_decoder(shared, src ? src : ".", "mean");
        check_decoder(shared, src ? src : ".", "last");
    }
    check_chunks(shared);
    check_errors(shared);
    json_object_put(index);
    return done_testing();
}
