/* embed.c - pooled, normalised text embeddings; splitting long texts. */
#include "config.h"
#include "gen/embed.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/context.h"

struct ech_embedder {
    const ech_model *m;
    ech_ctx *ctx;             /* an encode context: no KV cache */
    ech_pooling pooling;
    bool normalize;
    uint32_t n_ctx, n_batch, dim;
    float *hidden;            /* [n_batch][dim] hidden states of one pass */
    const ech_token **seq;    /* ech_embed_texts: the tokens of each text */
    uint32_t *seq_n;
};

const char *ech_pooling_name(ech_pooling p)
{
    switch (p) {
    case ECH_POOLING_MEAN: return "mean";
    case ECH_POOLING_CLS: return "cls";
    case ECH_POOLING_LAST: return "last";
    case ECH_POOLING_MODEL: return "model";
    }
    return "unknown";
}

ech_status ech_pooling_parse(const char *name, ech_pooling *out, ech_error *err)
{
    static const ech_pooling all[] = {ECH_POOLING_MEAN, ECH_POOLING_CLS, ECH_POOLING_LAST, ECH_POOLING_MODEL};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(name, ech_pooling_name(all[i]))) {
            *out = all[i];
            return ECH_OK;
        }
    return ech_error_set(err, ECH_ERR_INVALID, "pooling '%s' is not one of mean, cls, last", name);
}

ech_embed_params ech_embed_default_params(void)
{
    ech_embed_params p = {.pooling = ECH_POOLING_MODEL, .normalize = true, .n_ctx = 0, .n_batch = 0, .n_threads = 0};
    return p;
}

ech_status ech_embedder_new(const ech_model *m, const ech_embed_params *params, ech_embedder **out, ech_error *err)
{
    *out = NULL;
    ech_embed_params p = params ? *params : ech_embed_default_params();
    const ech_hparams *hp = &m->hp;
    if (hp->arch == ECH_ARCH_GEMMA3)
        return ech_error_set(err, ECH_ERR_UNSUPPORTED,
                             "%s cannot make embeddings (bert, nomic-bert, llama, qwen2 and qwen3 can)",
                             ech_arch_name(hp->arch));
    ech_pooling pool = p.pooling;
    if (pool == ECH_POOLING_MODEL)
        pool = hp->pooling >= 1 && hp->pooling <= 3 ? (ech_pooling)hp->pooling : ECH_POOLING_MEAN;
    if (pool != ECH_POOLING_MEAN && pool != ECH_POOLING_CLS && pool != ECH_POOLING_LAST)
        return ech_error_set(err, ECH_ERR_INVALID, "pooling %d is not mean, cls or last", (int)pool);
    if (p.n_ctx == 0)
        p.n_ctx = hp->n_ctx_train && hp->n_ctx_train < 8192 ? hp->n_ctx_train : 8192;
    if (p.n_batch == 0)
        p.n_batch = p.n_ctx > 2048 ? p.n_ctx : 2048;
    ech_embedder *e = calloc(1, sizeof *e);
    if (!e)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    e->m = m;
    e->pooling = pool;
    e->normalize = p.normalize;
    e->dim = hp->n_embd;
    ech_ctx_params cp = ech_ctx_default_params();
    cp.n_ctx = p.n_ctx;
    cp.n_batch = p.n_batch;
    cp.n_threads = p.n_threads;
    cp.encode = 1;
    ech_status st = ech_ctx_new(m, &cp, &e->ctx, err);
    if (st != ECH_OK) {
        free(e);
        return st;
    }
    e->n_ctx = ech_ctx_n_ctx(e->ctx);
    e->n_batch = p.n_batch > e->n_ctx ? p.n_batch : e->n_ctx;
    e->hidden = malloc(sizeof(float) * (size_t)e->n_batch * e->dim);
    if (!e->hidden) {
        ech_embedder_free(e);
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory for a batch of %u tokens", e->n_batch);
    }
    *out = e;
    return ECH_OK;
}

void ech_embedder_free(ech_embedder *e)
{
    if (!e)
        return;
    ech_ctx_free(e->ctx);
    free(e->hidden);
    free(e->seq);
    free(e->seq_n);
    free(e);
}

uint32_t ech_embedder_dim(const ech_embedder *e) { return e->dim; }
uint32_t ech_embedder_n_ctx(const ech_embedder *e) { return e->n_ctx; }
ech_pooling ech_embedder_pooling(const ech_embedder *e) { return e->pooling; }

/* One text's hidden states h[n][dim] into out[dim]: pooled, then scaled to
 * unit length.  Mean pooling multiplies by 1/n and sums, as llama.cpp's
 * matrix product with its averaging matrix does; the norm sums squares in
 * double as its common_embd_normalize does. */
static void pool(const ech_embedder *e, const float *h, uint32_t n, float *out)
{
    const uint32_t d = e->dim;
    if (e->pooling == ECH_POOLING_MEAN) {
        const float inv = 1.0f / (float)n;
        for (uint32_t i = 0; i < d; i++) {
            double s = 0.0;
            for (uint32_t t = 0; t < n; t++)
                s += (double)(h[(size_t)t * d + i] * inv);
            out[i] = (float)s;
        }
    } else {
        const float *row = h + (size_t)(e->pooling == ECH_POOLING_CLS ? 0 : n - 1) * d;
        memcpy(out, row, sizeof(float) * d);
    }
    if (!e->normalize)
        return;
    double sum = 0.0;
    for (uint32_t i = 0; i < d; i++)
        sum += (double)(out[i] * out[i]);
    const double norm = sqrt(sum);
    const float scale = norm > 0.0 ? (float)(1.0 / norm) : 0.0f;
    for (uint32_t i = 0; i < d; i++)
        out[i] *= scale;
}

ech_status ech_embed_tokens(ech_embedder *e, const ech_token *const *tokens, const uint32_t *n, size_t n_seq,
                            float *out, ech_error *err)
{
    for (size_t i = 0; i < n_seq; i++)
        if (n[i] == 0 || n[i] > e->n_ctx)
            return ech_error_set(err, ECH_ERR_RANGE, "text %zu has %u tokens; the model's context holds 1 to %u",
                                 i, n[i], e->n_ctx);
    size_t s = 0;
    while (s < n_seq) {
        /* as many whole texts as fit one pass */
        size_t ns = 0;
        uint32_t k = 0;
        while (s + ns < n_seq && k + n[s + ns] <= e->n_batch)
            k += n[s + ns++];
        ech_status st = ech_ctx_encode(e->ctx, tokens + s, n + s, ns, e->hidden, err);
        if (st != ECH_OK)
            return st;
        const float *h = e->hidden;
        for (size_t i = 0; i < ns; i++) {
            pool(e, h, n[s + i], out + (s + i) * e->dim);
            h += (size_t)n[s + i] * e->dim;
        }
        s += ns;
    }
    return ECH_OK;
}

uint32_t ech_embed_n_special(const ech_tokenizer *tk)
{
    /* what the vocabulary puts around an empty text ([CLS] [SEP], BOS) */
    ech_tokens t = {0};
    uint32_t n = ech_tokenize(tk, "", 0, ECH_TOKENIZE_ADD_SPECIAL, &t, NULL) == ECH_OK ? (uint32_t)t.n : 2;
    ech_tokens_free(&t);
    return n;
}

ech_status ech_embed_texts(ech_embedder *e, const ech_tokenizer *tk, const char *const *texts, const size_t *lens,
                           size_t n, float *out, uint64_t *n_tokens, ech_error *err)
{
    if (n_tokens)
        *n_tokens = 0;
    if (n == 0)
        return ECH_OK;
    ech_tokens *toks = calloc(n, sizeof *toks);
    const ech_token **seq = calloc(n, sizeof *seq);
    uint32_t *seq_n = calloc(n, sizeof *seq_n);
    ech_status st = ECH_OK;
    if (!toks || !seq || !seq_n)
        st = ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    uint64_t total = 0;
    for (size_t i = 0; st == ECH_OK && i < n; i++) {
        st = ech_tokenize(tk, texts[i], lens[i], ECH_TOKENIZE_ADD_SPECIAL, &toks[i], err);
        if (st == ECH_OK && toks[i].n > e->n_ctx)
            st = ech_error_set(err, ECH_ERR_RANGE, "text %zu has %zu tokens, more than the model's context of %u",
                               i, toks[i].n, e->n_ctx);
        if (st == ECH_OK && toks[i].n == 0)
            st = ech_error_set(err, ECH_ERR_INVALID, "text %zu has no tokens", i);
        if (st == ECH_OK) {
            seq[i] = toks[i].ids;
            seq_n[i] = (uint32_t)toks[i].n;
            total += toks[i].n;
        }
    }
    if (st == ECH_OK)
        st = ech_embed_tokens(e, seq, seq_n, n, out, err);
    if (st == ECH_OK && n_tokens)
        *n_tokens = total;
    for (size_t i = 0; toks && i < n; i++)
        ech_tokens_free(&toks[i]);
    free(toks);
    free(seq);
    free(seq_n);
    return st;
}
