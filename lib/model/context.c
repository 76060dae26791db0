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
    ech_ctx_params p = {.n_ctx = 0, .n_batch = 256, .kv_type = ECH_TYPE_F16, .n_threads = 0, .encode = 0};
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
    if (ech_model_is_encoder(m))
        p.encode = 1;
    if (p.encode) {
        /* a pass holds whole texts */
        if (p.n_batch < p.n_ctx)
            p.n_batch = p.n_ctx;
        if (p.n_batch > (1u << 20))
            return ech_error_set(err, ECH_ERR_RANGE, "a batch of %u tokens is too large", p.n_batch);
        if (m->pos_embd.data && p.n_ctx > hp->n_ctx_train)
            return ech_error_set(err, ECH_ERR_RANGE, "%s has position embeddings for %u tokens, not %u",
                                 ech_arch_name(hp->arch), hp->n_ctx_train, p.n_ctx);
    } else if (p.n_batch > p.n_ctx) {
        p.n_batch = p.n_ctx;
    }
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
    size_t kv_per_layer = p.encode ? 0 : (size_t)p.n_ctx * KV;
    int fail = 0;
    if (!p.encode) {
        c->kcache = xalloc(c, kv_per_layer * hp->n_layer, c->kv_elem, &fail);
        c->vcache = xalloc(c, kv_per_layer * hp->n_layer, c->kv_elem, &fail);
    }
    c->x = xalloc(c, nb * E, sizeof(float), &fail);
    c->xb = xalloc(c, nb * (E > Q ? E : Q), sizeof(float), &fail);
    c->q = xalloc(c, nb * Q, sizeof(float), &fail);
    c->kc = xalloc(c, nb * KV, sizeof(float), &fail);
    c->vc = xalloc(c, nb * KV, sizeof(float), &fail);
    c->att_out = xalloc(c, nb * Q, sizeof(float), &fail);
    c->hb = xalloc(c, nb * F, sizeof(float), &fail);
    c->hb2 = xalloc(c, nb * F, sizeof(float), &fail);
    /* attention works in units of at most att_rows query rows, each thread
     * with its own buffers: about 1 MiB of scores */
    uint32_t rows = (1u << 18) / p.n_ctx;
    const uint32_t max_rows = p.n_batch * (hp->n_head / hp->n_head_kv);
    c->att_rows = rows < 1 ? 1 : rows > max_rows ? max_rows : rows;
    const ech_type at = p.encode ? ECH_TYPE_F32 : p.kv_type;   /* encode attends in F32 */
    size_t att_scratch = ech_matmul_scratch(at, hp->head_dim, c->att_rows);
    size_t sv = ech_matmul_scratch(at, p.n_ctx, c->att_rows);
    att_scratch = sv > att_scratch ? sv : att_scratch;
    c->att = xalloc(c, (size_t)p.n_threads, sizeof(float *), &fail);
    c->attq = xalloc(c, (size_t)p.n_threads, sizeof(float *), &fail);
    c->atto = xalloc(c, (size_t)p.n_threads, sizeof(float *), &fail);
    c->att_scratch = xalloc(c, (size_t)p.n_threads, sizeof(void *), &fail);
    c->attv = xalloc(c, (size_t)p.n_threads, sizeof(float *), &fail);
    for (int i = 0; !fail && i < p.n_threads; i++) {
        if (p.encode)
            c->attv[i] = xalloc(c, (size_t)hp->head_dim * p.n_ctx, sizeof(float), &fail);
        c->att[i] = xalloc(c, (size_t)c->att_rows * p.n_ctx, sizeof(float), &fail);
        c->attq[i] = xalloc(c, (size_t)c->att_rows * hp->head_dim, sizeof(float), &fail);
        c->atto[i] = xalloc(c, (size_t)c->att_rows * hp->head_dim, sizeof(float), &fail);
        c->att_scratch[i] = xalloc(c, att_scratch, 1, &fail);
    }
    c->logits = xalloc(c, hp->n_vocab, sizeof(float), &fail);
    c->bpos = xalloc(c, nb, sizeof(int32_t), &fail);
    c->bstart = xalloc(c, nb + 1, sizeof(uint32_t), &fail);
    c->unit_off = xalloc(c, nb + 1, sizeof(int64_t), &fail);
    c->btok = xalloc(c, nb, sizeof(int32_t), &fail);
    c->bseq = xalloc(c, nb, sizeof(ech_ctx *), &fail);
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
    for (int i = 0; i < c->p.n_threads; i++) {
        if (c->att)
            free(c->att[i]);
        if (c->attq)
            free(c->attq[i]);
        if (c->atto)
            free(c->atto[i]);
        if (c->att_scratch)
            free(c->att_scratch[i]);
        if (c->attv)
            free(c->attv[i]);
    }
    void *ps[] = {c->kcache, c->vcache, c->x, c->xb, c->q, c->kc, c->vc, c->att_out, c->hb, c->hb2,
                  c->att, c->attq, c->atto, c->att_scratch, c->attv, c->logits, c->mm_scratch,
                  c->bpos, c->bstart, c->unit_off, c->blogits, c->btok, c->bseq};
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

void ech_ctx_matmul_many(ech_ctx *c, int n_mat, const ech_weight *const *W, const float *x, float *const *y,
                         uint32_t n)
{
    const void *data[ECH_MATMUL_MANY];
    int64_t rows[ECH_MATMUL_MANY];
    int same = n_mat <= ECH_MATMUL_MANY;
    for (int i = 0; same && i < n_mat; i++) {
        same = W[i]->type == W[0]->type && W[i]->cols == W[0]->cols;
        data[i] = W[i]->data;
        rows[i] = W[i]->rows;
    }
    if (!same) {  /* mixed types (Q4_K_M's v, say): one product each */
        for (int i = 0; i < n_mat; i++)
            ech_ctx_matmul(c, W[i], x, y[i], n);
        return;
    }
    ech_matmul_many(n_mat, data, (ech_type)W[0]->type, rows, W[0]->cols, x, n, y, c->mm_scratch, c->p.n_threads);
}

void ech_ctx_add_bias(const ech_weight *b, float *x, uint32_t n)
{
    if (!b->data)
        return;
    for (uint32_t t = 0; t < n; t++)
        ech_add(x + (int64_t)t * b->cols, b->data, b->cols);
}

/* row `r` of `w` added to (or, with add 0, stored in) out */
static void weight_row(const ech_weight *w, int64_t r, float *out, float *tmp, int add)
{
    const ech_type_kernels *k = ech_kernels_for((ech_type)w->type);
    k->to_float((const uint8_t *)w->data + (uint64_t)r * w->row_bytes, add ? tmp : out, w->cols);
    if (add)
        ech_add(out, tmp, w->cols);
}

void ech_ctx_embed(ech_ctx *c, const int32_t *tokens, uint32_t n)
{
    const ech_model *m = c->m;
    const ech_weight *e = &m->tok_embd;
    const float scale = m->hp.embd_scale;
    for (uint32_t t = 0; t < n; t++) {
        float *row = c->x + (int64_t)t * e->cols;
        weight_row(e, tokens[t], row, NULL, 0);
        if (scale != 1.0f)
            for (int64_t i = 0; i < e->cols; i++)
                row[i] *= scale;
        /* encoders: token type 0 ("sentence A"), then the position */
        float *tmp = c->xb + (int64_t)t * e->cols;
        if (m->type_embd.data)
            weight_row(&m->type_embd, 0, row, tmp, 1);
        if (m->pos_embd.data)
            weight_row(&m->pos_embd, c->bpos[t], row, tmp, 1);
    }
}

#define KV_PIECE 64   /* value elements converted at a time */

/* n floats into the cache's element type at dst (F16: the kernels' vector
 * conversion; element by element the cache writes were about 1 % of a
 * 4-sequence decode step) */
static void kv_row(const ech_ctx *c, void *dst, const float *src, int64_t n)
{
    if (c->kv_elem == 4)
        memcpy(dst, src, (size_t)n * sizeof(float));
    else
        ech_kernels_for(ECH_TYPE_F16)->from_float(src, dst, n);
}

/* Attention is two matrix products per kv head, on the weights' kernels (an
 * F16 cache is an F16 matrix): scores = K q for the queries of the heads that
 * share the kv head, a masked softmax, then out = V^T p over the transposed
 * values.  That is llama.cpp's computation without flash attention, with its
 * rounding: an F16 cache sees queries and probabilities rounded to F16 (the
 * matrix product's activation conversion).
 *
 * The work is split into units of one kv head and a range of query rows
 * (row r is token r / group, head h * group + r % group), each done by one
 * thread start to finish: one parallel loop per layer, no barriers inside.
 * A unit scores the positions up to its last token and masks later ones. */
static void attend_unit(ech_ctx *c, ech_ctx *sq, uint32_t tok0, int tid, uint32_t il, int h, int64_t r0,
                        int64_t r1, int swa)
{
    const ech_hparams *hp = &c->m->hp;
    const int hd = (int)hp->head_dim, nh = (int)hp->n_head, nkv = (int)hp->n_head_kv, group = nh / nkv;
    const size_t n_ctx = sq->p.n_ctx, es = sq->kv_elem;
    const ech_type kt = sq->p.kv_type;
    const size_t layer_off = (size_t)il * nkv * n_ctx * hd;
    const uint8_t *Kh = (const uint8_t *)sq->kcache + (layer_off + (size_t)h * n_ctx * hd) * es;
    const uint8_t *Vh = (const uint8_t *)sq->vcache + (layer_off + (size_t)h * hd * n_ctx) * es;
    float *att = c->att[tid], *q = c->attq[tid], *o = c->atto[tid];
    const int64_t rows = r1 - r0;
    const uint32_t len = sq->n_past + (uint32_t)((r1 - 1) / group) + 1;
    for (int64_t r = r0; r < r1; r++) {
        const size_t head = (size_t)(tok0 + r / group) * nh + (size_t)h * group + (size_t)(r % group);
        memcpy(q + (r - r0) * hd, c->q + head * hd, sizeof(float) * hd);
    }
    ech_matmul_local(Kh, kt, len, hd, hd * es, q, rows, att, c->att_scratch[tid]);
    for (int64_t r = r0; r < r1; r++) {
        float *s = att + (size_t)(r - r0) * len;
        const uint32_t pos = sq->n_past + (uint32_t)(r / group);
        /* positions outside a sliding window or after the query's own are
         * masked: exact zeros after the softmax */
        const uint32_t first = (swa && hp->n_swa && pos + 1 > hp->n_swa) ? pos + 1 - hp->n_swa : 0;
        for (uint32_t i = 0; i < first; i++)
            s[i] = -INFINITY;
        for (uint32_t i = first; i <= pos; i++)
            s[i] *= hp->attn_scale;
        for (uint32_t i = pos + 1; i < len; i++)
            s[i] = -INFINITY;
        ech_softmax(s, len);
    }
    ech_matmul_local(Vh, kt, hd, len, n_ctx * es, att, rows, o, c->att_scratch[tid]);
    for (int64_t r = r0; r < r1; r++) {
        const size_t head = (size_t)(tok0 + r / group) * nh + (size_t)h * group + (size_t)(r % group);
        memcpy(c->att_out + head * hd, o + (r - r0) * hd, sizeof(float) * hd);
    }
}

/* The same for an encode pass: sequence of `len` tokens from tok0, keys and
 * values straight from kc/vc in F32 (llama.cpp's attention without a
 * cache); a causal model masks later positions, an encoder none. */
static void attend_unit_encode(ech_ctx *c, uint32_t tok0, uint32_t n_tok, int tid, int h, int64_t r0, int64_t r1,
                               int swa)
{
    const ech_hparams *hp = &c->m->hp;
    const int hd = (int)hp->head_dim, nh = (int)hp->n_head, nkv = (int)hp->n_head_kv, group = nh / nkv;
    const size_t KV = (size_t)nkv * hd;
    float *att = c->att[tid], *q = c->attq[tid], *o = c->atto[tid], *vt = c->attv[tid];
    const int64_t rows = r1 - r0;
    const uint32_t len = hp->causal ? (uint32_t)((r1 - 1) / group) + 1 : n_tok;
    for (int64_t r = r0; r < r1; r++) {
        const size_t head = (size_t)(tok0 + r / group) * nh + (size_t)h * group + (size_t)(r % group);
        memcpy(q + (r - r0) * hd, c->q + head * hd, sizeof(float) * hd);
    }
    const float *K = c->kc + (size_t)tok0 * KV + (size_t)h * hd;
    ech_matmul_local(K, ECH_TYPE_F32, len, hd, KV * sizeof(float), q, rows, att, c->att_scratch[tid]);
    for (int64_t r = r0; r < r1; r++) {
        float *s = att + (size_t)(r - r0) * len;
        const uint32_t pos = (uint32_t)(r / group);
        uint32_t first = 0, end = len;
        if (hp->causal) {
            first = (swa && hp->n_swa && pos + 1 > hp->n_swa) ? pos + 1 - hp->n_swa : 0;
            end = pos + 1;
        }
        for (uint32_t i = 0; i < first; i++)
            s[i] = -INFINITY;
        for (uint32_t i = first; i < end; i++)
            s[i] *= hp->attn_scale;
        for (uint32_t i = end; i < len; i++)
            s[i] = -INFINITY;
        ech_softmax(s, len);
    }
    const float *V = c->vc + (size_t)tok0 * KV + (size_t)h * hd;
    for (uint32_t i = 0; i < len; i++)
        for (int d = 0; d < hd; d++)
            vt[(size_t)d * len + i] = V[(size_t)i * KV + d];
    ech_matmul_local(vt, ECH_TYPE_F32, hd, len, len * sizeof(float), att, rows, o, c->att_scratch[tid]);
    for (int64_t r = r0; r < r1; r++) {
        const size_t head = (size_t)(tok0 + r / group) * nh + (size_t)h * group + (size_t)(r % group);
        memcpy(c->att_out + head * hd, o + (r - r0) * hd, sizeof(float) * hd);
    }
}

void ech_ctx_attention(ech_ctx *c, const ech_batch *b, uint32_t il, int swa)
{
    const ech_hparams *hp = &c->m->hp;
    const int hd = (int)hp->head_dim, nkv = (int)hp->n_head_kv, group = (int)(hp->n_head / hp->n_head_kv);
    for (size_t s = 0; b->seq && s < b->n_seq; s++) {
        ech_ctx *sq = b->seq[s];
        const size_t n_ctx = sq->p.n_ctx, layer_off = (size_t)il * nkv * n_ctx * hd;
        uint8_t *K = (uint8_t *)sq->kcache + layer_off * sq->kv_elem;
        uint8_t *V = (uint8_t *)sq->vcache + layer_off * sq->kv_elem;
        for (uint32_t t = b->start[s]; t < b->start[s + 1]; t++)
            for (int h = 0; h < nkv; h++) {
                const size_t src = ((size_t)t * nkv + h) * hd, pos = sq->n_past + (t - b->start[s]);
                kv_row(sq, K + ((size_t)h * n_ctx + pos) * hd * sq->kv_elem, c->kc + src, hd);
                /* values are stored transposed, down a column; F16 ones
                 * are converted a piece at a time, then spread */
                const size_t at = (size_t)h * hd * n_ctx + pos;
                if (sq->kv_elem == 4) {
                    for (int d = 0; d < hd; d++)
                        ((float *)(void *)V)[at + (size_t)d * n_ctx] = c->vc[src + (size_t)d];
                    continue;
                }
                for (int d0 = 0; d0 < hd; d0 += KV_PIECE) {
                    const int m = hd - d0 < KV_PIECE ? hd - d0 : KV_PIECE;
                    uint16_t piece[KV_PIECE];
                    kv_row(sq, piece, c->vc + src + d0, m);
                    for (int d = 0; d < m; d++)
                        ((uint16_t *)(void *)V)[at + (size_t)(d0 + d) * n_ctx] = piece[d];
                }
            }
    }
    /* units: per sequence and kv head, its rows in pieces of at most
     * att_rows, and at least as many units as threads where rows allow */
    const int nth = c->p.n_threads;
    const int64_t min_per_head = ((int64_t)nth + nkv * (int64_t)b->n_seq - 1) / (nkv * (int64_t)b->n_seq);
    c->unit_off[0] = 0;
    for (size_t s = 0; s < b->n_seq; s++) {
        const int64_t R = (int64_t)(b->start[s + 1] - b->start[s]) * group;
        int64_t per_head = (R + c->att_rows - 1) / c->att_rows;
        if (per_head < min_per_head)
            per_head = min_per_head < R ? min_per_head : R;
        c->unit_off[s + 1] = c->unit_off[s] + per_head * nkv;
    }
    const int64_t n_units = c->unit_off[b->n_seq];
#pragma omp parallel for num_threads(nth) schedule(static)
    for (int64_t u = 0; u < n_units; u++) {
        size_t s = 0;
        while (c->unit_off[s + 1] <= u)
            s++;
        const int64_t per_head = (c->unit_off[s + 1] - c->unit_off[s]) / nkv, k = u - c->unit_off[s];
        const int64_t R = (int64_t)(b->start[s + 1] - b->start[s]) * group;
        const int h = (int)(k / per_head);
        const int64_t r0 = R * (k % per_head) / per_head, r1 = R * (k % per_head + 1) / per_head;
        if (r1 <= r0)
            continue;
        if (b->seq)
            attend_unit(c, b->seq[s], b->start[s], omp_get_thread_num(), il, h, r0, r1, swa);
        else
            attend_unit_encode(c, b->start[s], b->start[s + 1] - b->start[s], omp_get_thread_num(), h, r0, r1, swa);
    }
}

void ech_ctx_output(ech_ctx *c, const ech_batch *b)
{
    const ech_model *m = c->m;
    const int64_t E = m->hp.n_embd, V = m->hp.n_vocab;
    if (!b->seq) {
        ech_rmsnorm(c->enc_out, c->x, m->output_norm.data, E, b->n, m->hp.rms_eps);
        return;
    }
    /* the last token of each sequence, side by side in xb */
    for (size_t s = 0; s < b->n_seq; s++)
        ech_rmsnorm(c->xb + (int64_t)s * E, c->x + (int64_t)(b->start[s + 1] - 1) * E, m->output_norm.data, E, 1,
                    m->hp.rms_eps);
    if (b->n_seq == 1) {
        ech_ctx_matmul(c, &m->output, c->xb, b->seq[0]->logits, 1);
        return;
    }
    ech_ctx_matmul(c, &m->output, c->xb, c->blogits, (uint32_t)b->n_seq);
    for (size_t s = 0; s < b->n_seq; s++)
        memcpy(b->seq[s]->logits, c->blogits + (int64_t)s * V, sizeof(float) * (size_t)V);
}

static void forward(ech_ctx *c, const ech_batch *b, const int32_t *tokens)
{
    if (c->m->hp.arch == ECH_ARCH_GEMMA3)
        ech_forward_gemma3(c, b, tokens);
    else if (ech_model_is_encoder(c->m))
        ech_forward_bert(c, b, tokens);
    else
        ech_forward_llama(c, b, tokens);
}

static ech_status check_tokens(const ech_ctx *c, const int32_t *tokens, uint32_t n, ech_error *err)
{
    if (n > c->p.n_ctx - c->n_past)
        return ech_error_set(err, ECH_ERR_RANGE,
                             "%u tokens do not fit: %u of the context's %u positions are used",
                             n, c->n_past, c->p.n_ctx);
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= c->m->hp.n_vocab)
            return ech_error_set(err, ECH_ERR_INVALID, "token id %d is outside the vocabulary (%u)",
                                 tokens[i], c->m->hp.n_vocab);
    return ECH_OK;
}

ech_status ech_ctx_decode(ech_ctx *c, const int32_t *tokens, uint32_t n, ech_error *err)
{
    if (c->p.encode)
        return ech_model_is_encoder(c->m)
                   ? ech_error_set(err, ECH_ERR_INVALID, "%s is an embedding model (an encoder): it cannot generate",
                                   ech_arch_name(c->m->hp.arch))
                   : ech_error_set(err, ECH_ERR_INVALID, "this context only encodes (embeddings): it has no KV cache");
    if (n == 0)
        return ech_error_set(err, ECH_ERR_INVALID, "no tokens to decode");
    ech_status st = check_tokens(c, tokens, n, err);
    if (st != ECH_OK)
        return st;
    while (n) {
        uint32_t k = n < c->p.n_batch ? n : c->p.n_batch;
        for (uint32_t t = 0; t < k; t++)
            c->bpos[t] = (int32_t)(c->n_past + t);
        c->bstart[0] = 0;
        c->bstart[1] = k;
        ech_ctx *seq[1] = {c};
        const ech_batch b = {.n = k, .n_seq = 1, .seq = seq, .start = c->bstart, .pos = c->bpos};
        forward(c, &b, tokens);
        c->n_past += k;
        tokens += k;
        n -= k;
    }
    return ECH_OK;
}

ech_status ech_ctx_decode_batch(ech_ctx *const *ctxs, const int32_t *const *tokens, const uint32_t *n, size_t n_seq,
                                ech_error *err)
{
    if (n_seq == 0)
        return ech_error_set(err, ECH_ERR_INVALID, "no sequences to decode");
    ech_ctx *c = ctxs[0];
    for (size_t i = 0; i < n_seq; i++) {
        const ech_ctx *q = ctxs[i];
        if (q->p.encode)
            return ech_error_set(err, ECH_ERR_INVALID, "sequence %zu: this context only encodes (embeddings)", i);
        if (q->m != c->m || q->p.n_ctx != c->p.n_ctx || q->p.kv_type != c->p.kv_type)
            return ech_error_set(err, ECH_ERR_INVALID,
                                 "sequence %zu: a batch needs contexts of one model with the same size and KV type", i);
        for (size_t r = 0; r < i; r++)
            if (ctxs[r] == q)
                return ech_error_set(err, ECH_ERR_INVALID, "sequence %zu: the same context twice in a batch", i);
        if (n[i] == 0)
            return ech_error_set(err, ECH_ERR_INVALID, "sequence %zu: no tokens to decode", i);
        ech_status st = check_tokens(q, tokens[i], n[i], err);
        if (st != ECH_OK)
            return st;
    }
    if (n_seq > c->blogits_rows && n_seq > 1) {
        float *p = realloc(c->blogits, sizeof(float) * n_seq * c->m->hp.n_vocab);
        if (!p)
            return ech_error_set(err, ECH_ERR_NOMEM, "out of memory for the logits of %zu sequences", n_seq);
        c->bytes += sizeof(float) * (n_seq - c->blogits_rows) * c->m->hp.n_vocab;
        c->blogits = p;
        c->blogits_rows = (uint32_t)n_seq;
    }
    /* passes of at most n_batch tokens: whole sequences while they fit, the
     * rest of a longer one in the passes after */
    const uint32_t nb = c->p.n_batch;
    size_t s = 0;
    uint32_t off = 0; /* tokens of sequence s already done */
    while (s < n_seq) {
        uint32_t k = 0;
        size_t ns = 0;
        c->bstart[0] = 0;
        while (s < n_seq && k < nb) {
            ech_ctx *q = ctxs[s];
            const uint32_t take = n[s] - off < nb - k ? n[s] - off : nb - k;
            for (uint32_t t = 0; t < take; t++) {
                c->btok[k + t] = tokens[s][off + t];
                c->bpos[k + t] = (int32_t)(q->n_past + t);
            }
            c->bseq[ns++] = q;
            k += take;
            c->bstart[ns] = k;
            off += take;
            if (off < n[s])
                break; /* the pass is full */
            s++;
            off = 0;
        }
        const ech_batch b = {.n = k, .n_seq = ns, .seq = c->bseq, .start = c->bstart, .pos = c->bpos};
        forward(c, &b, c->btok);
        for (size_t i = 0; i < ns; i++)
            c->bseq[i]->n_past += c->bstart[i + 1] - c->bstart[i];
    }
    return ECH_OK;
}

ech_status ech_ctx_encode(ech_ctx *c, const int32_t *const *tokens, const uint32_t *n, size_t n_seq, float *hidden,
                          ech_error *err)
{
    if (!c->p.encode)
        return ech_error_set(err, ECH_ERR_INVALID, "this context keeps a KV cache; encoding needs one made with encode");
    for (size_t i = 0; i < n_seq; i++) {
        if (n[i] == 0 || n[i] > c->p.n_ctx)
            return ech_error_set(err, ECH_ERR_RANGE, "text %zu has %u tokens; a text needs 1 to %u", i, n[i],
                                 c->p.n_ctx);
        for (uint32_t t = 0; t < n[i]; t++)
            if (tokens[i][t] < 0 || (uint32_t)tokens[i][t] >= c->m->hp.n_vocab)
                return ech_error_set(err, ECH_ERR_INVALID, "token id %d is outside the vocabulary (%u)",
                                     tokens[i][t], c->m->hp.n_vocab);
    }
    const int64_t E = c->m->hp.n_embd;
    size_t s = 0;
    while (s < n_seq) {
        /* whole sequences while they fit the pass */
        uint32_t k = 0;
        size_t ns = 0;
        c->bstart[0] = 0;
        while (s + ns < n_seq && k + n[s + ns] <= c->p.n_batch) {
            const uint32_t len = n[s + ns];
            memcpy(c->btok + k, tokens[s + ns], sizeof(int32_t) * len);
            for (uint32_t t = 0; t < len; t++)
                c->bpos[k + t] = (int32_t)t;
            k += len;
            c->bstart[++ns] = k;
        }
        c->enc_out = hidden;
        const ech_batch b = {.n = k, .n_seq = ns, .seq = NULL, .start = c->bstart, .pos = c->bpos};
        forward(c, &b, c->btok);
        c->enc_out = NULL;
        hidden += (int64_t)k * E;
        s += ns;
    }
    return ECH_OK;
}
