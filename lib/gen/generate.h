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

/* A generation driven one token at a time, for callers that run the model
 * themselves (a server batching many sequences).  It owns the sampler, the
 * UTF-8-safe detokenizer and the stop-string hold-back; ech_generate is this
 * plus a loop over ech_ctx_decode.  The caller:
 *   ech_gen_seq_new, ech_gen_seq_prompt(prompt tokens, for the penalties),
 *   then while !ech_gen_seq_done: decode, ech_gen_seq_next(logits) (or
 *   ech_gen_seq_force(token)), report the event when *emit is set,
 *   and at the end ech_gen_seq_flush for text still held back. */
typedef struct ech_gen_seq ech_gen_seq;

/* `p` is copied, stop strings included; `tk` is borrowed.  Free with
 * ech_gen_seq_free. */
ech_status ech_gen_seq_new(const ech_tokenizer *tk, uint32_t n_vocab, const ech_gen_params *p,
                           ech_gen_seq **out, ech_error *err);
void ech_gen_seq_free(ech_gen_seq *s);

/* Add prompt tokens to the history the penalties see. */
void ech_gen_seq_prompt(ech_gen_seq *s, const int32_t *tokens, size_t n);

/* Sample the next token from `logits` (n_vocab) and take it: *ev receives
 * the token, its log-probabilities and the text it releases (pointers valid
 * until the next call).  *emit is false when there is nothing to report
 * (an end-of-generation token).  Afterwards ech_gen_seq_done says whether
 * generation ended (end-of-generation token, stop string, n_predict). */
ech_status ech_gen_seq_next(ech_gen_seq *s, const float *logits, ech_gen_token *ev, bool *emit,
                            ech_error *err);

/* Take `token` as if it had been sampled (logprob 0, no alternatives). */
ech_status ech_gen_seq_force(ech_gen_seq *s, int32_t token, ech_gen_token *ev, bool *emit,
                             ech_error *err);

/* Generation ended, and why (ECH_STOP_LENGTH until it has). */
bool ech_gen_seq_done(const ech_gen_seq *s);
ech_stop_reason ech_gen_seq_stop_reason(const ech_gen_seq *s);
uint32_t ech_gen_seq_n_generated(const ech_gen_seq *s);

/* End generation from outside: ECH_STOP_CANCELED or ECH_STOP_CONTEXT. */
void ech_gen_seq_end(ech_gen_seq *s, ech_stop_reason why);

/* Once done: text still held back (an incomplete UTF-8 tail, a stop-string
 * prefix that never completed) as an event with token -1; false when there
 * is none, or when a stop string or cancellation ended generation. */
bool ech_gen_seq_flush(ech_gen_seq *s, ech_gen_token *ev);

/* Run `prompt` (n_prompt >= 1 tokens, appended at the context's n_past) and
 * generate.  ECH_ERR_RANGE if the prompt does not fit in the context. */
ech_status ech_generate(ech_ctx *ctx, const ech_tokenizer *tk, const int32_t *prompt, uint32_t n_prompt,
                        const ech_gen_params *p, ech_gen_fn fn, void *user, ech_gen_stats *stats,
                        ech_error *err);

#ifdef __cplusplus
}
#endif
#endif
