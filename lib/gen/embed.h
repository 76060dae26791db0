/* embed.h - text embeddings: whole texts in, one pooled vector per text out.
 *
 * An embedder runs texts through a model without a KV cache (several short
 * texts share one forward pass), pools the final hidden states of each text
 * into one vector (mean, first token or last token) and scales it to unit
 * length.  It works with the encoders (bert, nomic-bert) and, as llama.cpp's
 * llama-embedding does, with the decoders llama, qwen2 and qwen3 (the hidden
 * states after the output norm, causal attention).
 *
 * Texts longer than the model's context are never cut silently: the
 * embedding functions refuse them, and ech_embed_chunks splits a long text
 * into pieces that fit, for the caller to embed one by one.
 */
#ifndef ECH_GEN_EMBED_H
#define ECH_GEN_EMBED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "model/model.h"
#include "tok/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Numbered as llama.cpp numbers {arch}.pooling_type. */
typedef enum ech_pooling {
    ECH_POOLING_MODEL = -1,  /* the model's pooling_type; mean if it has none */
    ECH_POOLING_MEAN = 1,    /* the average over every token (with [CLS], [SEP], BOS) */
    ECH_POOLING_CLS = 2,     /* the first token */
    ECH_POOLING_LAST = 3     /* the last token */
} ech_pooling;

/* "mean", "cls", "last" ("model" for ECH_POOLING_MODEL). */
const char *ech_pooling_name(ech_pooling p);
/* The pooling named `name`; ECH_ERR_INVALID for another name. */
ech_status ech_pooling_parse(const char *name, ech_pooling *out, ech_error *err);

typedef struct ech_embed_params {
    ech_pooling pooling;  /* ECH_POOLING_MODEL by default */
    bool normalize;       /* scale to unit L2 length (default true) */
    uint32_t n_ctx;       /* longest text in tokens; 0: the model's (at most 8192) */
    uint32_t n_batch;     /* tokens per forward pass (several texts); 0: at least n_ctx and 2048 */
    int n_threads;        /* 0: the number of cores */
} ech_embed_params;

ech_embed_params ech_embed_default_params(void);

typedef struct ech_embedder ech_embedder;

/* An embedder over `m` (borrowed: it must outlive the embedder).
 * ECH_ERR_UNSUPPORTED for a model that cannot embed (gemma3); ECH_ERR_RANGE
 * for an n_ctx beyond what the model has positions for.  One embedder runs
 * one call at a time; free with ech_embedder_free(). */
ech_status ech_embedder_new(const ech_model *m, const ech_embed_params *p, ech_embedder **out, ech_error *err);
void ech_embedder_free(ech_embedder *e);

uint32_t ech_embedder_dim(const ech_embedder *e);     /* floats per embedding (n_embd) */
uint32_t ech_embedder_n_ctx(const ech_embedder *e);   /* the most tokens a text may have */
ech_pooling ech_embedder_pooling(const ech_embedder *e);  /* the pooling in use, never MODEL */

/* Embed n_seq token sequences (each 1 to n_ctx tokens, specials included):
 * out gets n_seq rows of ech_embedder_dim() floats. */
ech_status ech_embed_tokens(ech_embedder *e, const ech_token *const *tokens, const uint32_t *n, size_t n_seq,
                            float *out, ech_error *err);

/* Tokenize texts[i][0..lens[i]) with the specials the vocabulary adds
 * ([CLS] ... [SEP], BOS) and embed them; *n_tokens (may be NULL) gets the
 * number of tokens embedded.  ECH_ERR_RANGE naming the text when one has
 * more than n_ctx tokens. */
ech_status ech_embed_texts(ech_embedder *e, const ech_tokenizer *tk, const char *const *texts, const size_t *lens,
                           size_t n, float *out, uint64_t *n_tokens, ech_error *err);

/* Tokens the vocabulary adds around every text (0, 1 or 2). */
uint32_t ech_embed_n_special(const ech_tokenizer *tk);

/* Split text[0..len) into chunks of at most max_tokens tokens each (not
 * counting the specials), cut between words (a word longer than a chunk is
 * cut between characters), consecutive chunks sharing about `overlap`
 * tokens of words (less when words do not fall that way; overlap <
 * max_tokens).  Each chunk is a span of the text from the start of its first
 * word to the end of its last, so its tokens are those the text has there.
 * *out (the caller frees it with free()) gets *n_out spans in order; a text
 * of whitespace only has none, and text that gives no tokens (control
 * characters) is in none.  ECH_ERR_RANGE if a single character needs
 * more than max_tokens tokens. */
ech_status ech_embed_chunks(const ech_tokenizer *tk, const char *text, size_t len, uint32_t max_tokens,
                            uint32_t overlap, ech_span **out, size_t *n_out, ech_error *err);

#ifdef __cplusplus
}
#endif
#endif
