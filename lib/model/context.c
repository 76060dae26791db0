/* context.c - KV cache, scratch buffers and the shared steps of a forward pass. */
#include "config.h"
#include "model/context_impl.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/kernels.h"
#include "model/blocks.h"

ech_ctx_params ech_ctx_default_params(void)
{
    ech_ctx_params p = {.n_ctx = 0, .n_batch = 256, .kv_type = ECH_TYPE_F16, .n_threads = 0};
    return p;
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 1024 ? (int)n : 1;
}

static void *xalloc(ech_ctx *c, size_t n, size_t size, int *fail)
{
    if (size && n > SIZE_MAX / size) {
        *fail = 1;
        return NULL;
    }
    void *p = NULL;
    /* 64-byte alignment suits every SIMD load and keeps rows on cache lines */
    size_t bytes = n * size;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
        *fail = 1;
        return NULL;
    }
    memset(p, 0, n * size);
    c->bytes += n * size;
    return p;
}

ech_status ech_ctx_new(const ech_model *m, const ech_ctx_params *params, ech_ctx **out, ech_error *err)
{
    *out = NULL;
    ech_ctx_params p = params ? *params : ech_ctx_default_params();
    const ech_hparams *hp = &m->hp;
    if (p.n_ctx == 0)
        p.n_ctx = hp->n_ctx_train && hp->n_ctx_train < 8192 ? hp->n_ctx_train : 8192;
    if (p.n_batch == 0)
        p.n_batch = 256;
    if (p.n_batch > p.n_ctx)
        p.n_batch = p.n_ctx;
    if (p.n_threads <= 0)
        p.n_threads = default_threads();
    if (p.kv_type != ECH_TYPE_F16 && p.kv_type != ECH_TYPE_F32)
        return ech_error_set(err, ECH_ERR_UNSUPPORTED, "KV cache type %s is not supported (f16, f32)",
                             ech_type_name(p.kv_type));
    if (p.n_ctx > (1u << 24))
        return ech_error_set(err, ECH_ERR_RANGE, "context of %u tokens is too large", p.n_ctx);
    ech_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    c->m = m;
    c->p = p;
    c->kv_elem = p.kv_type == ECH_TYPE_F16 ? 2 : 4;
    size_t nb = p.n_batch, E = hp->n_embd, Q = (size_t)hp->n_head * hp->head_dim;
    size_t KV = (size_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    size_t kv_per_layer = (size_t)p.n_ctx * KV;
    int fail = 0;
    c->kcache = xalloc(c, kv_per_layer * hp->n_layer, c->kv_elem, &fail);
    c->vcache = xalloc(c, kv_per_layer * hp->n_layer, c->kv_elem, &fail);
    c->x = xalloc(c, nb * E, sizeof(float), &fail);
    c->xb = xalloc(c, nb * (E > Q ? E : Q), sizeof(float), &fail);
    c->q = xalloc(c, nb * Q, sizeof(float), &fail);
    c->kc = xalloc(c, nb * KV, sizeof(float), &fail);
    c->vc = xalloc(c, nb * KV, sizeof(float), &fail);
    c->att_out = xalloc(c, nb * Q, sizeof(float), &fail);
    c->hb = xalloc(c, nb * F, sizeof(float), &fail);
    c->hb2 = xalloc(c, nb * F, sizeof(float), &fail);
    c->att = xalloc(c, (size_t)p.n_threads * p.n_ctx, sizeof(float), &fail);
    c->logits = xalloc(c, hp->n_vocab, sizeof(float), &fail);
    /* the largest activation conversion any matmul of this model needs */
    size_t scratch = 0;
    const ech_weight *ws[] = {&m->output, &m->layers[0].wq, &m->layers[0].wo, &m->layers[0].w_gate,
                              &m->layers[0].w_down};
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        const ech_layer *L = &m->layers[il];
        const ech_weight *lw[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < 7; i++) {
            size_t s = ech_matmul_scratch((ech_type)lw[i]->type, lw[i]->cols, (int64_t)nb);
            if (s > scratch)
                scratch = s;
        }
    }
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
        size_t s = ech_matmul_scratch((ech_type)ws[i]->type, ws[i]->cols, (int64_t)nb);
        if (s > scratch)
            scratch = s;
    }
    c->mm_scratch = xalloc(c, scratch ? scratch : 1, 1, &fail);
    if (fail) {
        ech_ctx_free(c);
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory for a context of %u tokens", p.n_ctx);
    }
    *out = c;
    return ECH_OK;
}

void ech_ctx_free(ech_ctx *c)
{
    if (!c)
        return;
    void *ps[] = {c->kcache, c->vcache, c->x, c->xb, c->q, c->kc, c->vc, c->att_out,
                  c->hb, c->hb2, c->att, c->logits, c->mm_scratch};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        free(ps[i]);
    free(c);
}

const float *ech_ctx_logits(const ech_ctx *c) { return c->logits; }
uint32_t ech_ctx_n_past(const ech_ctx *c) { return c->n_past; }
int ech_ctx_n_threads(const ech_ctx *c) { return c->p.n_threads; }
uint32_t ech_ctx_n_ctx(const ech_ctx *c) { return c->p.n_ctx; }
const ech_model *ech_ctx_model(const ech_ctx *c) { return c->m; }
uint64_t ech_ctx_memory(const ech_ctx *c) { return c->bytes; }

void ech_ctx_truncate(ech_ctx *c, uint32_t n_past)
{
    if (n_past < c->n_past)
        c->n_past = n_past;
}

void ech_ctx_matmul(ech_ctx *c, const ech_weight *W, const float *x, float *y, uint32_t n)
{
    ech_matmul(W->data, (ech_type)W->type, W->rows, W->cols, x, n, y, c->mm_scratch, c->p.n_threads);
}

void ech_ctx_add_bias(const ech_weight *b, float *x, uint32_t n)
{
    if (!b->data)
        return;
    for (uint32_t t = 0; t < n; t++)
        ech_add(x + (int64_t)t * b->cols, b->data, b->cols);
}

void ech_ctx_embed(ech_ctx *c, const int32_t *tokens, uint32_t n)
{
    const ech_weight *e = &c->m->tok_embd;
    const ech_type_kernels *k = ech_kernels_for((ech_type)e->type);
    const float scale = c->m->hp.embd_scale;
    for (uint32_t t = 0; t < n; t++) {
        float *row = c->x + (int64_t)t * e->cols;
        k->to_float((const uint8_t *)e->data + (uint64_t)tokens[t] * e->row_bytes, row, e->cols);
        if (scale != 1.0f)
            for (int64_t i = 0; i < e->cols; i++)
                row[i] *= scale;
    }
}

/* Every F16 value as a float: attention reads the F16 cache element by
 * element, and a table lookup beats a conversion call there. */
static float f16_table[1 << 16];
static pthread_once_t f16_once = PTHREAD_ONCE_INIT;

static void f16_init(void)
{
    for (uint32_t i = 0; i < 1u << 16; i++)
        f16_table[i] = ech_fp16_to_fp32((uint16_t)i);
}

static inline float kv_get(const ech_ctx *c, const void *base, size_t i)
{
    if (c->kv_elem == 4)
        return ((const float *)base)[i];
    return f16_table[((const uint16_t *)base)[i]];
}

static inline void kv_put(const ech_ctx *c, void *base, size_t i, float v)
{
    if (c->kv_elem == 4)
        ((float *)base)[i] = v;
    else
        ((uint16_t *)base)[i] = ech_fp32_to_fp16(v);
}

void ech_ctx_attention(ech_ctx *c, uint32_t il, uint32_t n, int swa)
{
    const ech_hparams *hp = &c->m->hp;
    const int hd = (int)hp->head_dim, nh = (int)hp->n_head, nkv = (int)hp->n_head_kv;
    const int group = nh / nkv;
    const size_t n_ctx = c->p.n_ctx;
    const size_t layer_off = (size_t)il * nkv * n_ctx * hd;
    uint8_t *K = (uint8_t *)c->kcache + layer_off * c->kv_elem;
    uint8_t *V = (uint8_t *)c->vcache + layer_off * c->kv_elem;
    /* append the new keys and values: layout [kv head][position][dim] */
    for (uint32_t t = 0; t < n; t++)
        for (int h = 0; h < nkv; h++)
            for (int d = 0; d < hd; d++) {
                size_t dst = ((size_t)h * n_ctx + c->n_past + t) * hd + d;
                size_t src = ((size_t)t * nkv + h) * hd + d;
                kv_put(c, K, dst, c->kc[src]);
                kv_put(c, V, dst, c->vc[src]);
            }
    const float scale = hp->attn_scale;
    const int f16 = c->kv_elem == 2;
    if (f16)
        pthread_once(&f16_once, f16_init);
#pragma omp parallel for collapse(2) num_threads(c->p.n_threads) schedule(static)
    for (uint32_t t = 0; t < n; t++) {
        for (int h = 0; h < nh; h++) {
            const uint32_t pos = c->n_past + t;
            /* positions before `first` fall outside a sliding window; they
             * stay in the row as exact zeros, as llama.cpp's mask leaves them */
            const uint32_t first = (swa && hp->n_swa && pos + 1 > hp->n_swa) ? pos + 1 - hp->n_swa : 0;
            const uint32_t len = pos + 1;
            float *att = c->att + (size_t)omp_get_thread_num() * n_ctx;
            float q[1024];
            const float *qs = c->q + ((size_t)t * nh + h) * hd;
            /* an F16 cache sees the query rounded to F16, as llama.cpp does */
            for (int d = 0; d < hd; d++)
                q[d] = f16 ? ech_fp16_to_fp32(ech_fp32_to_fp16(qs[d])) : qs[d];
            const int kvh = h / group;
            const uint8_t *Kh = K + (size_t)kvh * n_ctx * hd * c->kv_elem;
            const uint8_t *Vh = V + (size_t)kvh * n_ctx * hd * c->kv_elem;
            for (uint32_t i = 0; i < first; i++)
                att[i] = -INFINITY;
            for (uint32_t i = first; i < len; i++) {
                size_t row = (size_t)i * hd;
                float s = 0.0f;
                if (f16) {
                    const uint16_t *kr = (const uint16_t *)Kh + row;
                    for (int d = 0; d < hd; d++)
                        s += q[d] * f16_table[kr[d]];
                } else {
                    const float *kr = (const float *)Kh + row;
                    for (int d = 0; d < hd; d++)
                        s += q[d] * kr[d];
                }
                att[i] = s * scale;
            }
            ech_softmax(att, len);
            float *o = c->att_out + ((size_t)t * nh + h) * hd;
            for (int d = 0; d < hd; d++)
                o[d] = 0.0f;
            for (uint32_t i = first; i < len; i++) {
                size_t row = (size_t)i * hd;
                float a = f16 ? f16_table[ech_fp32_to_fp16(att[i])] : att[i];
                for (int d = 0; d < hd; d++)
                    o[d] += a * kv_get(c, Vh, row + d);
            }
        }
    }
}

void ech_ctx_output(ech_ctx *c, uint32_t n)
{
    const ech_model *m = c->m;
    const int64_t E = m->hp.n_embd;
    float *last = c->xb;
    ech_rmsnorm(last, c->x + (int64_t)(n - 1) * E, m->output_norm.data, E, 1, m->hp.rms_eps);
    ech_ctx_matmul(c, &m->output, last, c->logits, 1);
}

ech_status ech_ctx_decode(ech_ctx *c, const int32_t *tokens, uint32_t n, ech_error *err)
{
    if (n == 0)
        return ech_error_set(err, ECH_ERR_INVALID, "no tokens to decode");
    if (n > c->p.n_ctx - c->n_past)
        return ech_error_set(err, ECH_ERR_RANGE,
                             "%u tokens do not fit: %u of the context's %u positions are used",
                             n, c->n_past, c->p.n_ctx);
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= c->m->hp.n_vocab)
            return ech_error_set(err, ECH_ERR_INVALID, "token id %d is outside the vocabulary (%u)",
                                 tokens[i], c->m->hp.n_vocab);
    while (n) {
        uint32_t k = n < c->p.n_batch ? n : c->p.n_batch;
        if (c->m->hp.arch == ECH_ARCH_GEMMA3)
            ech_forward_gemma3(c, tokens, k);
        else
            ech_forward_llama(c, tokens, k);
        c->n_past += k;
        tokens += k;
        n -= k;
    }
    return ECH_OK;
}
