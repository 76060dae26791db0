/* sampler.h - choose the next token from the logits.
 *
 * The chain, in llama.cpp's default order: repetition/presence/frequency
 * penalties over the recent history, then top-k, top-p, min-p, temperature,
 * and a draw from what is left.  Temperature 0 (or below) is greedy: the
 * highest logit after penalties, the lowest id on ties.  The generator is
 * seeded, so the same seed on the same logits gives the same tokens.
 */
#ifndef ECH_GEN_SAMPLER_H
#define ECH_GEN_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"
#include "gguf/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ech_sampler_params {
    float temp;               /* 0.8; <= 0: greedy */
    int32_t top_k;            /* 40; <= 0: off */
    float top_p;              /* 0.95; >= 1: off */
    float min_p;              /* 0.05; <= 0: off */
    float repeat_penalty;     /* 1.0 (off): divide positive logits, multiply negative */
    int32_t penalty_last_n;   /* 64 recent tokens the penalties look at */
    float presence_penalty;   /* 0: subtracted once from every seen token */
    float frequency_penalty;  /* 0: subtracted per occurrence */
    uint64_t seed;            /* same seed, same draws */
} ech_sampler_params;

/* llama.cpp's defaults, with a fresh random seed. */
ech_sampler_params ech_sampler_default_params(void);

/* Replace defaults with the model's recommendations where it has them
 * (general.sampling.temp, .top_k, .top_p, .min_p, .penalty_repeat,
 * .penalty_last_n).  Call before applying the user's own choices. */
void ech_sampler_params_from_gguf(ech_sampler_params *p, const ech_gguf *g);

typedef struct ech_token_logprob {
    int32_t token;
    float logprob;
} ech_token_logprob;

typedef struct ech_sampler ech_sampler;

ech_status ech_sampler_new(const ech_sampler_params *p, uint32_t n_vocab, ech_sampler **out, ech_error *err);
void ech_sampler_free(ech_sampler *s);

/* Add a token to the history the penalties see (prompt and output). */
void ech_sampler_accept(ech_sampler *s, int32_t token);

/* Pick a token from `logits` (n_vocab, not modified).  If `logprob` is not
 * NULL it receives the token's log-probability under the model's
 * distribution (log-softmax of the raw logits, before any sampling filter);
 * `top` (n_top entries, may be 0) receives the most likely tokens of that
 * distribution, best first. */
int32_t ech_sampler_sample(ech_sampler *s, const float *logits, float *logprob,
                           ech_token_logprob *top, uint32_t n_top);

#ifdef __cplusplus
}
#endif
#endif
