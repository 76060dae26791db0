/* model.h - a model: hyperparameters and views of its weights.
 *
 * Loading maps the GGUF file and points at every tensor in place: weights
 * stay in their file format and are never copied.  Supported architectures:
 * the decoders llama (Llama 2/3, Mistral, TinyLlama, SmolLM), qwen2, qwen3
 * and gemma3, and the encoders bert (BERT, MiniLM, bge, e5, gte) and
 * nomic-bert; anything else is refused with a clear error.
 */
#ifndef ECH_MODEL_MODEL_H
#define ECH_MODEL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"
#include "gguf/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ech_arch {
    ECH_ARCH_LLAMA = 0,
    ECH_ARCH_QWEN2,
    ECH_ARCH_QWEN3,
    ECH_ARCH_GEMMA3,
    ECH_ARCH_BERT,
    ECH_ARCH_NOMIC_BERT,
    ECH_ARCH_COUNT
} ech_arch;

/* "llama", "qwen2", ... */
const char *ech_arch_name(ech_arch a);

typedef struct ech_hparams {
    ech_arch arch;
    uint32_t n_vocab;
    uint32_t n_ctx_train;   /* context length the model was trained for */
    uint32_t n_embd;
    uint32_t n_layer;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t head_dim;      /* per-head size of q, k and v */
    uint32_t n_ff;
    uint32_t n_rot;         /* rotated dimensions per head */
    bool rope_neox;         /* rotate (i, i + n_rot/2) pairs instead of (2i, 2i+1) */
    float rope_base;
    float rope_base_swa;    /* for sliding-window layers (gemma3) */
    float rope_freq_scale;  /* 1 / linear scaling factor */
    float rms_eps;
    float attn_scale;       /* multiplies q.k */
    float embd_scale;       /* multiplies the token embedding (gemma3: sqrt(n_embd)) */
    uint32_t n_swa;         /* sliding window length, 0 = none */
    uint32_t swa_pattern;   /* every swa_pattern-th layer (the last of each group) is global */
    bool causal;            /* false for encoders: every token sees the whole text */
    float norm_eps;         /* LayerNorm epsilon (encoders) */
    int32_t pooling;        /* {arch}.pooling_type (0 none, 1 mean, 2 cls, 3 last), -1 if absent */
} ech_hparams;

/* A weight tensor as stored: `rows` rows of `cols` elements of `type`. */
typedef struct ech_weight {
    const void *data;       /* NULL when the tensor is absent */
    uint32_t type;          /* an ech_type */
    int64_t cols, rows;
    uint64_t row_bytes;
} ech_weight;

typedef struct ech_layer {
    ech_weight attn_norm, wq, wk, wv, wo;
    ech_weight bq, bk, bv;              /* qwen2 */
    ech_weight q_norm, k_norm;          /* qwen3, gemma3 */
    ech_weight attn_post_norm;          /* gemma3 */
    ech_weight ffn_norm, w_gate, w_up, w_down;
    ech_weight ffn_post_norm;           /* gemma3 */
    /* encoders (post-norm, LayerNorm with biases); a fused attn_qkv is
     * pointed at as three row ranges in wq, wk, wv */
    ech_weight bo, attn_out_norm, attn_out_norm_b, b_up, b_down, out_norm, out_norm_b;
    bool is_swa;                        /* sliding-window attention layer */
} ech_layer;

typedef struct ech_model {
    ech_gguf *gguf;                     /* owned: the mapped file */
    ech_hparams hp;
    ech_weight tok_embd, output_norm, output;  /* output = tok_embd when tied */
    const float *rope_freqs;            /* Llama 3 rope scaling factors (n_rot/2) or NULL */
    ech_weight type_embd, pos_embd;     /* encoders: token types (row 0 is used), positions (bert) */
    ech_weight tok_norm, tok_norm_b;    /* encoders: LayerNorm after the embeddings */
    ech_layer *layers;                  /* hp.n_layer entries, owned */
} ech_model;

/* Open and validate the model at `path`.  Every tensor the architecture
 * needs must be present with the right shape and a supported type. */
ech_status ech_model_open(const char *path, ech_model **out, ech_error *err);

/* The same from an already opened file; the model takes ownership of `g`
 * (also on failure, when it is closed). */
ech_status ech_model_from_gguf(ech_gguf *g, ech_model **out, ech_error *err);

void ech_model_close(ech_model *m);

/* True for the encoder architectures (bert, nomic-bert): they have no
 * logits and no causal mask, and only compute embeddings. */
bool ech_model_is_encoder(const ech_model *m);

/* Bytes of weights one decode step streams (every matrix once). */
uint64_t ech_model_weight_bytes(const ech_model *m);

#ifdef __cplusplus
}
#endif
#endif
