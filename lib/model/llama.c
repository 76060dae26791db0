/* llama.c - the forward pass of the Llama family: llama, qwen2, qwen3.
 *
 *   x = embed(tokens)
 *   for each layer:
 *       h = rmsnorm(x) ; q, k, v = Wq h, Wk h, Wv h   (+ biases: qwen2)
 *       q, k = rmsnorm per head                        (qwen3)
 *       q, k = rope(q, k)                              (NeoX pairs: qwen2/3)
 *       x += Wo attention(q, k, v)
 *       h = rmsnorm(x) ; x += Wdown (silu(Wgate h) * Wup h)
 *   logits = Woutput rmsnorm(x_last)
 */
#include "config.h"

#include "model/blocks.h"
#include "model/context_impl.h"

void ech_forward_llama(ech_ctx *c, const ech_batch *b, const int32_t *tokens)
{
    const uint32_t n = b->n;
    const ech_model *m = c->m;
    const ech_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd, hd = hp->head_dim;
    const int64_t Q = hp->n_head * hd, KV = hp->n_head_kv * hd, F = hp->n_ff;

    ech_ctx_embed(c, tokens, n);
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        const ech_layer *L = &m->layers[il];

        ech_rmsnorm(c->xb, c->x, L->attn_norm.data, E, n, hp->rms_eps);
        ech_ctx_matmul_many(c, 3, (const ech_weight *[]){&L->wq, &L->wk, &L->wv}, c->xb,
                            (float *[]){c->q, c->kc, c->vc}, n);
        ech_ctx_add_bias(&L->bq, c->q, n);
        ech_ctx_add_bias(&L->bk, c->kc, n);
        ech_ctx_add_bias(&L->bv, c->vc, n);
        if (L->q_norm.data) {
            ech_rmsnorm(c->q, c->q, L->q_norm.data, hd, n * hp->n_head, hp->rms_eps);
            ech_rmsnorm(c->kc, c->kc, L->k_norm.data, hd, n * hp->n_head_kv, hp->rms_eps);
        }
        for (uint32_t t = 0; t < n; t++) {
            const int32_t pos = b->pos[t];
            ech_rope(c->q + t * Q, (int)hp->n_head, (int)hd, (int)hp->n_rot, pos, hp->rope_base,
                     hp->rope_freq_scale, m->rope_freqs, hp->rope_neox);
            ech_rope(c->kc + t * KV, (int)hp->n_head_kv, (int)hd, (int)hp->n_rot, pos, hp->rope_base,
                     hp->rope_freq_scale, m->rope_freqs, hp->rope_neox);
        }
        ech_ctx_attention(c, b, il, 0);
        ech_ctx_matmul(c, &L->wo, c->att_out, c->xb, n);
        ech_add(c->x, c->xb, n * E);

        ech_rmsnorm(c->xb, c->x, L->ffn_norm.data, E, n, hp->rms_eps);
        ech_ctx_matmul_many(c, 2, (const ech_weight *[]){&L->w_gate, &L->w_up}, c->xb, (float *[]){c->hb, c->hb2}, n);
        ech_swiglu(c->hb, c->hb2, F, n);
        ech_ctx_matmul(c, &L->w_down, c->hb, c->xb, n);
        ech_add(c->x, c->xb, n * E);
    }
    ech_ctx_output(c, b);
}
