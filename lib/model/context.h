/* context.h - one running sequence over a model: KV cache, scratch, logits.
 *
 * A context feeds tokens through the model and keeps their keys and values,
 * so each new token only costs its own forward pass.  Tokens given together
 * to ech_ctx_decode are processed as a batch (matrix x matrix); one token at
 * a time is the decode step (matrix x vector).  Memory is allocated once, at
 * creation, for the whole context length.
 */
#ifndef ECH_MODEL_CONTEXT_H
#define ECH_MODEL_CONTEXT_H

#include <stdint.h>

#include "core/status.h"
#include "gguf/types.h"
#include "model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ech_ctx_params {
    uint32_t n_ctx;      /* positions to keep; 0: the model's training length (at most 8192 by default) */
    uint32_t n_batch;    /* tokens per forward pass when decoding many; 0: 256 */
    ech_type kv_type;    /* ECH_TYPE_F16 (default) or ECH_TYPE_F32 */
    int n_threads;       /* 0: the number of cores */
    int encode;          /* 1: no KV cache, whole texts through ech_ctx_encode (embeddings);
                            always so for encoder models.  n_batch is then at least n_ctx. */
} ech_ctx_params;

/* Defaults: n_ctx from the model, n_batch 256, F16 KV cache, all cores. */
ech_ctx_params ech_ctx_default_params(void);

typedef struct ech_ctx ech_ctx;

/* A context over `m` (borrowed: it must outlive the context). */
ech_status ech_ctx_new(const ech_model *m, const ech_ctx_params *p, ech_ctx **out, ech_error *err);
void ech_ctx_free(ech_ctx *c);

/* Feed `n` tokens at positions n_past, n_past+1, ...; afterwards the logits
 * are those of the last of them.  ECH_ERR_RANGE (nothing changed) if they do
 * not fit in the context; ECH_ERR_INVALID for a token id outside the vocab. */
ech_status ech_ctx_decode(ech_ctx *c, const int32_t *tokens, uint32_t n, ech_error *err);

/* One forward pass over several contexts of the same model (same n_ctx and
 * KV type): context i gets tokens[i][0..n[i]) at its n_past; afterwards each
 * context's logits are those of its last token.  The matrix products run
 * once over all the tokens (in passes of the first context's n_batch), so a
 * decode step of many sequences reads the weights once: continuous batching.
 * Attention runs on each context's own cache.  Checks as ech_ctx_decode, for
 * every context, before anything changes; the first context's threads and
 * buffers do the work. */
ech_status ech_ctx_decode_batch(ech_ctx *const *ctxs, const int32_t *const *tokens, const uint32_t *n,
                                size_t n_seq, ech_error *err);

/* Encode whole texts (a context made with `encode`): sequence i is
 * tokens[i][0..n[i]) at positions 0, 1, ...; several go into one pass
 * while they fit n_batch, so their matrix products share one read of the
 * weights, and attention stays within each sequence (causal for decoders,
 * all tokens for encoders).  hidden gets, for every token of every
 * sequence in order, its final hidden state: n_embd floats (after the
 * output norm for decoders).  ECH_ERR_RANGE if a sequence is empty or
 * longer than n_ctx, ECH_ERR_INVALID for a token outside the vocab or a
 * context that keeps a KV cache. */
ech_status ech_ctx_encode(ech_ctx *c, const int32_t *const *tokens, const uint32_t *n, size_t n_seq,
                          float *hidden, ech_error *err);

/* n_vocab logits of the last decoded token; owned by the context, valid
 * until the next decode. */
const float *ech_ctx_logits(const ech_ctx *c);

uint32_t ech_ctx_n_past(const ech_ctx *c);
int ech_ctx_n_threads(const ech_ctx *c);
uint32_t ech_ctx_n_ctx(const ech_ctx *c);
const ech_model *ech_ctx_model(const ech_ctx *c);

/* Forget every position from `n_past` on (keep a shared prompt prefix). */
void ech_ctx_truncate(ech_ctx *c, uint32_t n_past);

/* Bytes allocated by the context (KV cache and scratch). */
uint64_t ech_ctx_memory(const ech_ctx *c);

#ifdef __cplusplus
}
#endif
#endif
