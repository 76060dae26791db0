/* context_impl.h - what the forward passes see of a context (not public). */
#ifndef ECH_MODEL_CONTEXT_IMPL_H
#define ECH_MODEL_CONTEXT_IMPL_H

#include "model/context.h"

struct ech_ctx {
    const ech_model *m;
    ech_ctx_params p;
    uint32_t n_past;
    /* KV cache, per layer and kv head (kv_type): keys as n_ctx rows of
     * head_dim, values transposed, head_dim rows of n_ctx positions, so that
     * both attention products are plain matrix products */
    void *kcache, *vcache;
    size_t kv_elem;           /* bytes per element: 2 or 4 */
    /* activations for up to n_batch tokens */
    float *x;                 /* residual stream  [n][n_embd] */
    float *xb;                /* normed input     [n][n_embd] */
    float *q;                 /* queries          [n][n_head*head_dim] */
    float *kc, *vc;           /* new keys/values  [n][n_head_kv*head_dim] */
    float *att_out;           /* attention output [n][n_head*head_dim] */
    float *hb, *hb2;          /* FFN hidden       [n][n_ff] */
    /* attention, per thread: scores [att_rows][n_ctx], queries and outputs
     * [att_rows][head_dim], matmul scratch */
    float **att, **attq, **atto;
    float **attv;             /* encode: one head's values transposed [head_dim][n_ctx] */
    float *enc_out;           /* encode: where the hidden states of the pass go */
    void **att_scratch;
    uint32_t att_rows;        /* query rows per attention unit of work */
    float *logits;            /* [n_vocab] */
    /* a batch over several contexts runs in the first one's buffers */
    int32_t *bpos;            /* position of each token [n_batch] */
    uint32_t *bstart;         /* first token of each sequence [n_batch + 1] */
    int64_t *unit_off;        /* attention units before each sequence [n_batch + 1] */
    int32_t *btok;            /* the token ids of a pass [n_batch] */
    ech_ctx **bseq;           /* the sequences of a pass [n_batch] */
    float *blogits;           /* logits of several sequences [blogits_rows][n_vocab] */
    uint32_t blogits_rows;
    void *mm_scratch;
    uint64_t bytes;
};

/* The tokens of one forward pass: n tokens of n_seq sequences, each with
 * its own context (KV cache, n_past); sequence s is tokens
 * [start[s], start[s + 1]).  Activations live in the buffers of the context
 * that runs the pass.  An encode pass has no caches (seq NULL): each
 * sequence is whole, and attention reads its keys and values from kc/vc. */
typedef struct ech_batch {
    uint32_t n;
    size_t n_seq;
    ech_ctx *const *seq;
    const uint32_t *start;
    const int32_t *pos;       /* position of each token */
} ech_batch;

/* y = W x for n tokens (x: n rows of W->cols, y: n rows of W->rows). */
void ech_ctx_matmul(ech_ctx *c, const ech_weight *W, const float *x, float *y, uint32_t n);
/* y[i] = W[i] x for up to ECH_MATMUL_MANY weights that read the same x: one
 * pass of the threads when their types match, else one product each. */
void ech_ctx_matmul_many(ech_ctx *c, int n_mat, const ech_weight *const *W, const float *x, float *const *y,
                         uint32_t n);

/* x[t] += b for n rows of b->cols */
void ech_ctx_add_bias(const ech_weight *b, float *x, uint32_t n);

/* Embed tokens into c->x (times the model's embedding scale); encoders add
 * the token-type row 0 and the position row of each token (c->bpos). */
void ech_ctx_embed(ech_ctx *c, const int32_t *tokens, uint32_t n);

/* Store c->kc / c->vc of the batch's tokens into each sequence's cache of
 * layer il, then attend with c->q into c->att_out.  Sliding-window layers
 * see only the last n_swa positions. */
void ech_ctx_attention(ech_ctx *c, const ech_batch *b, uint32_t il, int swa);

/* Final norm on each sequence's last token, then its logits = output x;
 * in an encode pass the final norm of every token into enc_out instead. */
void ech_ctx_output(ech_ctx *c, const ech_batch *b);

/* The forward passes, one per architecture family: run the batch's tokens
 * (b->n <= n_batch) in c's buffers and leave each sequence's logits of its
 * last token. */
void ech_forward_llama(ech_ctx *c, const ech_batch *b, const int32_t *tokens);
void ech_forward_gemma3(ech_ctx *c, const ech_batch *b, const int32_t *tokens);
/* bert and nomic-bert (encode passes only): hidden states into enc_out */
void ech_forward_bert(ech_ctx *c, const ech_batch *b, const int32_t *tokens);

#endif
