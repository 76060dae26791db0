/* generate.h - the generation loop: prompt in, tokens and text out.
 *
 * Feeds the prompt as one batch, then samples, streams and feeds back one
 * token at a time.  Text is handed out only in complete UTF-8 sequences, and
 * text that might be the start of a stop string is held back until it is
 * clear it is not, so a stop string never reaches the caller.
 */
#ifndef ECH_GEN_GENERATE_H
#define ECH_GEN_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "gen/sampler.h"
#include "model/context.h"
#include "tok/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ech_stop_reason {
    ECH_STOP_LENGTH = 0,   /* n_predict tokens were produced */
    ECH_STOP_EOS,          /* the model produced an end-of-generation token */
    ECH_STOP_STRING,       /* a stop string appeared */
    ECH_STOP_CONTEXT,      /* the context is full */
    ECH_STOP_CANCELED      /* the callback asked to stop */
} ech_stop_reason;

/* "length", "eos", "stop", "context", "canceled" */
const char *ech_stop_reason_name(ech_stop_reason r);

typedef struct ech_gen_params {
    int32_t n_predict;             /* new tokens at most; < 0: until the context is full */
    bool ignore_eos;               /* keep going past end-of-generation tokens */
    const char *const *stop;       /* stop strings (n_stop), borrowed */
    size_t n_stop;
    uint32_t top_logprobs;         /* alternatives to report per token (at most 20) */
    ech_sampler_params sampling;
} ech_gen_params;

/* One generated token.  Pointers are valid during the callback only.  When
 * generation ends with text still held back (a possible stop-string prefix
 * that turned out not to be one, or an incomplete UTF-8 tail), one last call
 * carries it with token -1. */
typedef struct ech_gen_token {
    int32_t token;
    const char *text;              /* text this token releases (may be empty) */
    size_t text_len;
    float logprob;                 /* under the model's distribution */
    const ech_token_logprob *top;  /* top_logprobs alternatives, best first */
    uint32_t n_top;
} ech_gen_token;

/* Return nonzero to stop (ECH_STOP_CANCELED). */
typedef int (*ech_gen_fn)(void *user, const ech_gen_token *t);

typedef struct ech_gen_stats {
    uint32_t n_prompt, n_generated;
    ech_stop_reason stop;
    double prompt_ms, gen_ms;      /* wall time of prompt processing / generation */
} ech_gen_stats;

/* Run `prompt` (n_prompt >= 1 tokens, appended at the context's n_past) and
 * generate.  ECH_ERR_RANGE if the prompt does not fit in the context. */
ech_status ech_generate(ech_ctx *ctx, const ech_tokenizer *tk, const int32_t *prompt, uint32_t n_prompt,
                        const ech_gen_params *p, ech_gen_fn fn, void *user, ech_gen_stats *stats,
                        ech_error *err);

#ifdef __cplusplus
}
#endif
#endif
