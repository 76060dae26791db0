/* sched.h - slots, a bounded queue and continuous batching.
 *
 * The scheduler owns `n_slots` contexts over one model and a thread that
 * runs them.  Each step it admits queued requests into free slots, then
 * runs one forward pass over every busy slot: a chunk of prompt for slots
 * still reading their prompt, one token for slots generating.  New requests
 * join between steps, so a long prompt costs others one chunk per step, not
 * its whole length.
 *
 * A slot keeps the tokens in its KV cache after a request ends; a request
 * is given the free slot whose cache shares the longest prefix with its
 * prompt, and only the rest of the prompt is evaluated (cached tokens).
 *
 * Requests are shared between the HTTP thread that made them and the
 * scheduler (reference counted).  The HTTP side waits for tokens with
 * ech_sreq_take and cancels with ech_sched_cancel; the slot is freed before
 * the next step.
 */
#ifndef ECH_SERVE_SCHED_H
#define ECH_SERVE_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/status.h"
#include "gen/generate.h"
#include "model/context.h"
#include "tok/tokenizer.h"

typedef struct ech_sreq ech_sreq;
typedef struct ech_sched ech_sched;

/* One generated token as the HTTP side sees it. */
typedef struct ech_sreq_tok {
    int32_t token;                 /* -1: held-back text released at the end */
    float logprob;
    uint32_t text_off, text_len;   /* into the batch's text */
    uint32_t top_off, n_top;       /* into the batch's top */
} ech_sreq_tok;

/* Tokens handed over by one ech_sreq_take (the caller's; reused across calls). */
typedef struct ech_sreq_batch {
    ech_sreq_tok *v;
    size_t n, cap;
    ech_buf text;
    ech_token_logprob *top;
    size_t n_top, cap_top;
} ech_sreq_batch;

void ech_sreq_batch_free(ech_sreq_batch *b);

typedef struct ech_sreq_result {
    bool done;
    ech_stop_reason stop;
    ech_status status;             /* ECH_OK unless the model failed */
    char error[320];
    uint32_t n_prompt, n_cached, n_generated;
    double queue_ms, prompt_ms, gen_ms;
} ech_sreq_result;

/* A request for `prompt` (copied) generating with `gp` (copied, stop strings
 * too).  One reference for the caller: ech_sreq_unref. */
ech_status ech_sreq_new(const int32_t *prompt, size_t n, const ech_gen_params *gp, ech_sreq **out,
                        ech_error *err);
void ech_sreq_unref(ech_sreq *r);

/* Wait at most timeout_ms for tokens or the end; move what arrived into
 * *batch (cleared first) and the state into *res.  True when there is
 * something new (tokens, or the end). */
bool ech_sreq_take(ech_sreq *r, ech_sreq_batch *batch, ech_sreq_result *res, int timeout_ms);

typedef struct ech_sched_opts {
    const ech_model *model;        /* NULL: replay mode (no model, see `replay`) */
    const ech_tokenizer *tk;
    ech_ctx_params cp;             /* per slot */
    uint32_t n_slots;              /* 1.. */
    uint32_t max_queue;            /* requests waiting for a slot; beyond it submit fails */
    uint32_t chunk;                /* prompt tokens per slot per step; 0: 128 */
    const char *const *replay;     /* replay mode: request k produces the tokens of replay[k % n] */
    size_t n_replay;
    uint32_t replay_delay_ms;      /* replay mode: each step takes this long (a slow model) */
} ech_sched_opts;

/* Create the contexts and start the scheduler thread. */
ech_status ech_sched_new(const ech_sched_opts *o, ech_sched **out, ech_error *err);
/* Cancel everything, stop the thread, free the contexts. */
void ech_sched_free(ech_sched *s);

/* Positions each slot holds. */
uint32_t ech_sched_n_ctx(const ech_sched *s);

/* Queue a request (the scheduler takes its own reference).  ECH_ERR_RANGE
 * when the queue is full, ECH_ERR_CANCELED when shutting down. */
ech_status ech_sched_submit(ech_sched *s, ech_sreq *r, ech_error *err);

/* Stop a request (the client went away): it leaves the queue, or its slot
 * is freed before the next step.  Harmless when it has ended. */
void ech_sched_cancel(ech_sched *s, ech_sreq *r);

/* Refuse new requests, let running and queued ones finish for at most
 * grace_ms, then cancel what is left.  Returns once nothing runs. */
void ech_sched_drain(ech_sched *s, int grace_ms);

typedef struct ech_sched_stats {
    uint32_t n_slots, busy, queued;
    uint64_t prompt_tokens, cached_tokens, gen_tokens, steps, requests_done, requests_canceled;
    double tokens_per_s;           /* generated tokens per second over the last 10 s */
} ech_sched_stats;

void ech_sched_stats_get(ech_sched *s, ech_sched_stats *st);

#endif
