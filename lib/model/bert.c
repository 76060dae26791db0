/* bert.c - the forward pass of the BERT family: bert and nomic-bert.
 *
 *   x = layernorm(embed(tokens) + type_embd[0] + pos_embd[pos])   (no pos_embd: nomic-bert)
 *   for each layer (post-norm):
 *       q, k, v = Wq x + bq, Wk x + bk, Wv x + bv    (nomic-bert: rows of the fused Wqkv)
 *       q, k = rope(q, k)                             (nomic-bert, NeoX pairs)
 *       x = layernorm(x + Wo attention(q, k, v) + bo) (every token sees every token)
 *       h = gelu(Wup x + bup)                         (nomic-bert: silu(Wgate x) * Wup x)
 *       x = layernorm(x + Wdown h + bdown)
 *   hidden = x
 * GELU goes through llama.cpp's F16 table, as the golden embeddings do.
 */
#include "config.h"

#include <string.h>

#include "model/blocks.h"
#include "model/context_impl.h"

void ech_forward_bert(ech_ctx *c, const ech_batch *b, const int32_t *tokens)
{
    const uint32_t n = b->n;
    const ech_model *m = c->m;
    const ech_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd, hd = hp->head_dim, F = hp->n_ff;
    const bool rope = hp->arch == ECH_ARCH_NOMIC_BERT;

    ech_ctx_embed(c, tokens, n);
    ech_layernorm(c->x, c->x, m->tok_norm.data, m->tok_norm_b.data, E, n, hp->norm_eps);
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        const ech_layer *L = &m->layers[il];

        ech_ctx_matmul(c, &L->wq, c->x, c->q, n);
        ech_ctx_matmul(c, &L->wk, c->x, c->kc, n);
        ech_ctx_matmul(c, &L->wv, c->x, c->vc, n);
        ech_ctx_add_bias(&L->bq, c->q, n);
        ech_ctx_add_bias(&L->bk, c->kc, n);
        ech_ctx_add_bias(&L->bv, c->vc, n);
        if (rope)
            for (uint32_t t = 0; t < n; t++) {
                ech_rope(c->q + t * E, (int)hp->n_head, (int)hd, (int)hp->n_rot, b->pos[t], hp->rope_base,
                         hp->rope_freq_scale, NULL, true);
                ech_rope(c->kc + t * E, (int)hp->n_head_kv, (int)hd, (int)hp->n_rot, b->pos[t], hp->rope_base,
                         hp->rope_freq_scale, NULL, true);
            }
        ech_ctx_attention(c, b, il, 0);
        ech_ctx_matmul(c, &L->wo, c->att_out, c->xb, n);
        ech_ctx_add_bias(&L->bo, c->xb, n);
        ech_add(c->xb, c->x, n * E);
        ech_layernorm(c->x, c->xb, L->attn_out_norm.data, L->attn_out_norm_b.data, E, n, hp->norm_eps);

        float *h = c->hb;
        ech_ctx_matmul(c, &L->w_up, c->x, c->hb, n);
        ech_ctx_add_bias(&L->b_up, c->hb, n);
        if (L->w_gate.data) {
            ech_ctx_matmul(c, &L->w_gate, c->x, c->hb2, n);
            ech_swiglu(c->hb2, c->hb, F, n);
            h = c->hb2;
        } else {
            ech_gelu(c->hb, n * F);
        }
        ech_ctx_matmul(c, &L->w_down, h, c->xb, n);
        ech_ctx_add_bias(&L->b_down, c->xb, n);
        ech_add(c->xb, c->x, n * E);
        ech_layernorm(c->x, c->xb, L->out_norm.data, L->out_norm_b.data, E, n, hp->norm_eps);
    }
    memcpy(c->enc_out, c->x, sizeof(float) * (size_t)n * E);
}
