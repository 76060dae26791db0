/* model.c - read hyperparameters and point at the weights of a GGUF model. */
#include "config.h"
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/summary.h"
#include "kernels/kernels.h"

static const char *const arch_names[ECH_ARCH_COUNT] = {
    [ECH_ARCH_LLAMA] = "llama",
    [ECH_ARCH_QWEN2] = "qwen2",
    [ECH_ARCH_QWEN3] = "qwen3",
    [ECH_ARCH_GEMMA3] = "gemma3",
    [ECH_ARCH_BERT] = "bert",
    [ECH_ARCH_NOMIC_BERT] = "nomic-bert",
};

const char *ech_arch_name(ech_arch a)
{
    return (unsigned)a < ECH_ARCH_COUNT ? arch_names[a] : "unknown";
}

/* "{arch}.{suffix}" as u32 (first element of a per-layer array), or `def`. */
static uint32_t arch_u32(const ech_gguf *g, const char *suffix, uint32_t def)
{
    uint64_t v;
    if (ech_gguf_get_arch_u64(g, suffix, &v) != ECH_OK || v > UINT32_MAX)
        return def;
    return (uint32_t)v;
}

static float arch_f32(const ech_gguf *g, const char *arch, const char *suffix, float def)
{
    char key[160];
    double v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return ech_gguf_get_f64(g, key, &v) == ECH_OK ? (float)v : def;
}

/* Look up a tensor and check its shape: cols x rows (rows 1 for vectors).
 * `required` false lets it be absent (data stays NULL). */
static ech_status weight(const ech_gguf *g, const char *name, int64_t cols, int64_t rows, bool matrix,
                         bool required, ech_weight *w, ech_error *err)
{
    memset(w, 0, sizeof *w);
    const ech_gguf_tensor *t = ech_gguf_find_tensor(g, name);
    if (!t)
        return required ? ech_error_set(err, ECH_ERR_FORMAT, "tensor '%s' is missing", name) : ECH_OK;
    if ((int64_t)t->ne[0] != cols || (int64_t)t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1)
        return ech_error_set(err, ECH_ERR_FORMAT,
                             "tensor '%s' has shape %llu x %llu, expected %lld x %lld", name,
                             (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                             (long long)cols, (long long)rows);
    const ech_type_kernels *k = ech_kernels_for((ech_type)t->type);
    if (matrix ? (!k || !k->vec_dot) : t->type != ECH_TYPE_F32)
        return ech_error_set(err, ECH_ERR_UNSUPPORTED, "tensor '%s' has type %s, which is not supported%s",
                             name, ech_type_name(t->type), matrix ? "" : " for norms and biases (F32 only)");
    w->data = t->data;
    w->type = t->type;
    w->cols = cols;
    w->rows = rows;
    w->row_bytes = t->nbytes / (uint64_t)rows;
    return ECH_OK;
}

static ech_status load_hparams(const ech_gguf *g, ech_hparams *hp, ech_error *err)
{
    ech_str arch;
    if (ech_gguf_get_str(g, "general.architecture", &arch) != ECH_OK)
        return ech_error_set(err, ECH_ERR_FORMAT, "general.architecture is missing");
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(arch.len < 63 ? arch.len : 63), arch.ptr);
    int found = -1;
    for (int a = 0; a < ECH_ARCH_COUNT; a++)
        if (strcmp(name, arch_names[a]) == 0 && arch.len == strlen(arch_names[a]))
            found = a;
    if (found < 0)
        return ech_error_set(err, ECH_ERR_UNSUPPORTED,
                             "architecture '%s' is not supported (llama, qwen2, qwen3, gemma3, bert, nomic-bert)",
                             name);
    memset(hp, 0, sizeof *hp);
    hp->arch = (ech_arch)found;
    hp->n_ctx_train = arch_u32(g, "context_length", 0);
    hp->n_embd = arch_u32(g, "embedding_length", 0);
    hp->n_layer = arch_u32(g, "block_count", 0);
    hp->n_ff = arch_u32(g, "feed_forward_length", 0);
    hp->n_head = arch_u32(g, "attention.head_count", 0);
    hp->n_head_kv = arch_u32(g, "attention.head_count_kv", hp->n_head);
    if (!hp->n_embd || !hp->n_layer || !hp->n_head || !hp->n_ff || !hp->n_head_kv)
        return ech_error_set(err, ECH_ERR_FORMAT,
                             "%s: embedding_length, block_count, feed_forward_length and "
                             "attention.head_count must be present and non-zero", name);
    if (hp->n_layer > 4096 || hp->n_head > 4096 || hp->n_head % hp->n_head_kv != 0)
        return ech_error_set(err, ECH_ERR_FORMAT, "%s: %u heads cannot be shared by %u kv heads", name,
                             hp->n_head, hp->n_head_kv);
    hp->head_dim = arch_u32(g, "attention.key_length", hp->n_embd / hp->n_head);
    if (arch_u32(g, "attention.value_length", hp->head_dim) != hp->head_dim || hp->head_dim == 0 ||
        hp->head_dim > 1024 || hp->head_dim % 2)
        return ech_error_set(err, ECH_ERR_UNSUPPORTED, "%s: head size %u (key and value must be equal and even)",
                             name, hp->head_dim);
    hp->n_rot = arch_u32(g, "rope.dimension_count", hp->head_dim);
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return ech_error_set(err, ECH_ERR_FORMAT, "%s: rope.dimension_count %u does not fit head size %u",
                             name, hp->n_rot, hp->head_dim);
    hp->rope_neox = hp->arch != ECH_ARCH_LLAMA;
    hp->rope_base = arch_f32(g, name, "rope.freq_base", 10000.0f);
    hp->rope_base_swa = arch_f32(g, name, "rope.freq_base_swa", 10000.0f);
    hp->rope_freq_scale = 1.0f;
    ech_str stype;
    char key[160];
    snprintf(key, sizeof key, "%s.rope.scaling.type", name);
    if (ech_gguf_get_str(g, key, &stype) == ECH_OK && stype.len == 6 && memcmp(stype.ptr, "linear", 6) == 0) {
        float f = arch_f32(g, name, "rope.scaling.factor", 1.0f);
        if (f > 0)
            hp->rope_freq_scale = 1.0f / f;
    }
    hp->rms_eps = arch_f32(g, name, "attention.layer_norm_rms_epsilon", 1e-5f);
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->embd_scale = 1.0f;
    if (hp->arch == ECH_ARCH_GEMMA3) {
        hp->embd_scale = sqrtf((float)hp->n_embd);
        hp->n_swa = arch_u32(g, "attention.sliding_window", 0);
        hp->swa_pattern = hp->n_swa ? arch_u32(g, "attention.sliding_window_pattern", 6) : 0;
    }
    const bool encoder = hp->arch == ECH_ARCH_BERT || hp->arch == ECH_ARCH_NOMIC_BERT;
    snprintf(key, sizeof key, "%s.attention.causal", name);
    if (ech_gguf_get_bool(g, key, &hp->causal) != ECH_OK)
        hp->causal = !encoder;
    if (encoder && hp->causal)
        return ech_error_set(err, ECH_ERR_UNSUPPORTED, "%s: causal attention in an encoder is not supported", name);
    if (encoder && hp->n_head_kv != hp->n_head)
        return ech_error_set(err, ECH_ERR_FORMAT, "%s: encoders have as many kv heads as heads", name);
    hp->norm_eps = arch_f32(g, name, "attention.layer_norm_epsilon", 1e-12f);
    uint32_t pool = arch_u32(g, "pooling_type", UINT32_MAX);
    hp->pooling = pool <= 3 ? (int32_t)pool : -1;
    return ECH_OK;
}

static ech_status load_encoder_weights(ech_model *m, ech_error *err);

static ech_status load_weights(ech_model *m, ech_error *err)
{
    if (ech_model_is_encoder(m))
        return load_encoder_weights(m, err);
    const ech_gguf *g = m->gguf;
    ech_hparams *hp = &m->hp;
    const ech_gguf_tensor *te = ech_gguf_find_tensor(g, "token_embd.weight");
    if (!te)
        return ech_error_set(err, ECH_ERR_FORMAT, "tensor 'token_embd.weight' is missing");
    if (te->ne[1] == 0 || te->ne[1] > INT32_MAX)
        return ech_error_set(err, ECH_ERR_FORMAT, "token_embd.weight has %llu rows",
                             (unsigned long long)te->ne[1]);
    hp->n_vocab = (uint32_t)te->ne[1];
    int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim;
    int64_t F = hp->n_ff, V = hp->n_vocab;
    ech_status st;
    if ((st = weight(g, "token_embd.weight", E, V, true, true, &m->tok_embd, err)) ||
        (st = weight(g, "output_norm.weight", E, 1, false, true, &m->output_norm, err)) ||
        (st = weight(g, "output.weight", E, V, true, false, &m->output, err)))
        return st;
    if (!m->output.data)
        m->output = m->tok_embd;   /* tied embeddings */
    const ech_gguf_tensor *rf = ech_gguf_find_tensor(g, "rope_freqs.weight");
    if (rf) {
        if (rf->type != ECH_TYPE_F32 || rf->n_elements != hp->n_rot / 2)
            return ech_error_set(err, ECH_ERR_FORMAT, "rope_freqs.weight must be F32 with %u elements", hp->n_rot / 2);
        m->rope_freqs = rf->data;
    }
    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->layers)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    bool qk_norm = hp->arch == ECH_ARCH_QWEN3 || hp->arch == ECH_ARCH_GEMMA3;
    bool gemma = hp->arch == ECH_ARCH_GEMMA3;
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        ech_layer *L = &m->layers[il];
        char n[96];
#define W(field, suffix, cols, rows, matrix, req)                                   \
    do {                                                                            \
        snprintf(n, sizeof n, "blk.%u.%s", il, suffix);                             \
        if ((st = weight(g, n, cols, rows, matrix, req, &L->field, err)) != ECH_OK) \
            return st;                                                              \
    } while (0)
        W(attn_norm, "attn_norm.weight", E, 1, false, true);
        W(wq, "attn_q.weight", E, Q, true, true);
        W(wk, "attn_k.weight", E, KV, true, true);
        W(wv, "attn_v.weight", E, KV, true, true);
        W(wo, "attn_output.weight", Q, E, true, true);
        W(bq, "attn_q.bias", Q, 1, false, false);
        W(bk, "attn_k.bias", KV, 1, false, false);
        W(bv, "attn_v.bias", KV, 1, false, false);
        W(q_norm, "attn_q_norm.weight", hp->head_dim, 1, false, qk_norm);
        W(k_norm, "attn_k_norm.weight", hp->head_dim, 1, false, qk_norm);
        W(attn_post_norm, "post_attention_norm.weight", E, 1, false, gemma);
        W(ffn_norm, "ffn_norm.weight", E, 1, false, true);
        W(w_gate, "ffn_gate.weight", E, F, true, true);
        W(w_up, "ffn_up.weight", E, F, true, true);
        W(w_down, "ffn_down.weight", F, E, true, true);
        W(ffn_post_norm, "post_ffw_norm.weight", E, 1, false, gemma);
#undef W
        /* gemma3: the last layer of each group of swa_pattern is global */
        L->is_swa = hp->swa_pattern && (il % hp->swa_pattern) < hp->swa_pattern - 1;
    }
    return ECH_OK;
}

/* bert and nomic-bert, as llama.cpp's converter names their tensors */
static ech_status load_encoder_weights(ech_model *m, ech_error *err)
{
    const ech_gguf *g = m->gguf;
    ech_hparams *hp = &m->hp;
    const ech_gguf_tensor *te = ech_gguf_find_tensor(g, "token_embd.weight");
    if (!te || te->ne[1] == 0 || te->ne[1] > INT32_MAX)
        return ech_error_set(err, ECH_ERR_FORMAT, "tensor 'token_embd.weight' is missing or empty");
    hp->n_vocab = (uint32_t)te->ne[1];
    const int64_t E = hp->n_embd, F = hp->n_ff, V = hp->n_vocab;
    const bool bert = hp->arch == ECH_ARCH_BERT;
    const ech_gguf_tensor *tt = ech_gguf_find_tensor(g, "token_types.weight");
    const int64_t n_types = tt ? (int64_t)tt->ne[1] : 1;
    ech_status st;
    if ((st = weight(g, "token_embd.weight", E, V, true, true, &m->tok_embd, err)) ||
        (st = weight(g, "token_types.weight", E, n_types, true, false, &m->type_embd, err)) ||
        (st = weight(g, "position_embd.weight", E, hp->n_ctx_train, true, bert, &m->pos_embd, err)) ||
        (st = weight(g, "token_embd_norm.weight", E, 1, false, true, &m->tok_norm, err)) ||
        (st = weight(g, "token_embd_norm.bias", E, 1, false, true, &m->tok_norm_b, err)))
        return st;
    if (bert && !hp->n_ctx_train)
        return ech_error_set(err, ECH_ERR_FORMAT, "bert: context_length must be present (it sizes position_embd)");
    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->layers)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        ech_layer *L = &m->layers[il];
        char n[96];
#define W(field, suffix, cols, rows, matrix, req)                                   \
    do {                                                                            \
        snprintf(n, sizeof n, "blk.%u.%s", il, suffix);                             \
        if ((st = weight(g, n, cols, rows, matrix, req, &L->field, err)) != ECH_OK) \
            return st;                                                              \
    } while (0)
        snprintf(n, sizeof n, "blk.%u.attn_qkv.weight", il);
        if (ech_gguf_find_tensor(g, n)) {
            /* fused: rows [0, E) are q, [E, 2E) k, [2E, 3E) v */
            W(wq, "attn_qkv.weight", E, 3 * E, true, true);
            L->wk = L->wv = L->wq;
            L->wq.rows = L->wk.rows = L->wv.rows = E;
            L->wk.data = (const uint8_t *)L->wq.data + (uint64_t)E * L->wq.row_bytes;
            L->wv.data = (const uint8_t *)L->wq.data + 2 * (uint64_t)E * L->wq.row_bytes;
        } else {
            W(wq, "attn_q.weight", E, E, true, true);
            W(wk, "attn_k.weight", E, E, true, true);
            W(wv, "attn_v.weight", E, E, true, true);
            W(bq, "attn_q.bias", E, 1, false, false);
            W(bk, "attn_k.bias", E, 1, false, false);
            W(bv, "attn_v.bias", E, 1, false, false);
        }
        W(wo, "attn_output.weight", E, E, true, true);
        W(bo, "attn_output.bias", E, 1, false, false);
        W(attn_out_norm, "attn_output_norm.weight", E, 1, false, true);
        W(attn_out_norm_b, "attn_output_norm.bias", E, 1, false, true);
        W(w_up, "ffn_up.weight", E, F, true, true);
        W(b_up, "ffn_up.bias", F, 1, false, false);
        W(w_gate, "ffn_gate.weight", E, F, true, !bert);
        W(w_down, "ffn_down.weight", F, E, true, true);
        W(b_down, "ffn_down.bias", E, 1, false, false);
        W(out_norm, "layer_output_norm.weight", E, 1, false, true);
        W(out_norm_b, "layer_output_norm.bias", E, 1, false, true);
#undef W
    }
    return ECH_OK;
}

ech_status ech_model_from_gguf(ech_gguf *g, ech_model **out, ech_error *err)
{
    *out = NULL;
    ech_model *m = calloc(1, sizeof *m);
    if (!m) {
        ech_gguf_close(g);
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    }
    m->gguf = g;
    ech_status st = load_hparams(g, &m->hp, err);
    if (st == ECH_OK)
        st = load_weights(m, err);
    if (st != ECH_OK) {
        ech_model_close(m);
        return st;
    }
    *out = m;
    return ECH_OK;
}

ech_status ech_model_open(const char *path, ech_model **out, ech_error *err)
{
    ech_gguf *g;
    *out = NULL;
    ech_status st = ech_gguf_open(path, &g, err);
    if (st != ECH_OK)
        return st;
    st = ech_model_from_gguf(g, out, err);
    if (st != ECH_OK && err) {
        char inner[sizeof err->msg];
        memcpy(inner, err->msg, sizeof inner);
        ech_error_set(err, st, "%s: %s", path, inner);
    }
    return st;
}

void ech_model_close(ech_model *m)
{
    if (!m)
        return;
    free(m->layers);
    ech_gguf_close(m->gguf);
    free(m);
}

bool ech_model_is_encoder(const ech_model *m)
{
    return m->hp.arch == ECH_ARCH_BERT || m->hp.arch == ECH_ARCH_NOMIC_BERT;
}

uint64_t ech_model_weight_bytes(const ech_model *m)
{
    uint64_t b = m->output.row_bytes * (uint64_t)m->output.rows;
    for (uint32_t il = 0; il < m->hp.n_layer; il++) {
        const ech_layer *L = &m->layers[il];
        const ech_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            b += ws[i]->row_bytes * (uint64_t)ws[i]->rows;
    }
    return b;
}
