/* generate.c - prompt, sample, stream, repeat. */
#include "config.h"
#include "gen/generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"

static const char *const stop_names[] = {"length", "eos", "stop", "context", "canceled"};

const char *ech_stop_reason_name(ech_stop_reason r)
{
    return (unsigned)r < sizeof stop_names / sizeof stop_names[0] ? stop_names[r] : "unknown";
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Where the first stop string starts in text[from..len), or SIZE_MAX. */
static size_t find_stop(const ech_gen_params *p, const char *text, size_t len, size_t from)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < p->n_stop; i++) {
        size_t sl = strlen(p->stop[i]);
        if (!sl || sl > len)
            continue;
        size_t start = from >= sl - 1 ? from - (sl - 1) : 0;
        for (size_t at = start; at + sl <= len && at < best; at++)
            if (memcmp(text + at, p->stop[i], sl) == 0) {
                best = at;
                break;
            }
    }
    return best;
}

/* Bytes at the end of text that could still grow into a stop string. */
static size_t held_back(const ech_gen_params *p, const char *text, size_t len)
{
    size_t hold = 0;
    for (size_t i = 0; i < p->n_stop; i++) {
        size_t sl = strlen(p->stop[i]);
        for (size_t k = sl > 1 ? sl - 1 : 0; k > hold; k--)
            if (k <= len && memcmp(text + len - k, p->stop[i], k) == 0) {
                hold = k;
                break;
            }
    }
    return hold;
}

struct ech_gen_seq {
    ech_gen_params p;          /* stop points at stop_copy */
    char **stop_copy;
    const ech_tokenizer *tk;
    ech_sampler *smp;
    ech_buf text;              /* everything generated so far */
    size_t emitted;            /* bytes of it already handed out */
    ech_detok_stream ds;
    ech_token_logprob top[20];
    uint32_t n_top, limit, n_generated;
    ech_stop_reason stop;
    bool done;
};

ech_status ech_gen_seq_new(const ech_tokenizer *tk, uint32_t n_vocab, const ech_gen_params *p,
                           ech_gen_seq **out, ech_error *err)
{
    *out = NULL;
    ech_gen_seq *s = calloc(1, sizeof *s);
    if (!s)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    s->p = *p;
    if (p->n_stop) {
        if (!(s->stop_copy = calloc(p->n_stop, sizeof *s->stop_copy)))
            goto nomem;
        for (size_t i = 0; i < p->n_stop; i++)
            if (!(s->stop_copy[i] = strdup(p->stop[i])))
                goto nomem;
        s->p.stop = (const char *const *)s->stop_copy;
    }
    ech_status st = ech_sampler_new(&p->sampling, n_vocab, &s->smp, err);
    if (st != ECH_OK) {
        ech_gen_seq_free(s);
        return st;
    }
    s->tk = tk;
    /* the output continues the prompt: a leading "▁" is a real space */
    ech_detok_stream_init(&s->ds, tk, ECH_DETOK_KEEP_SPACE);
    s->n_top = p->top_logprobs > 20 ? 20 : p->top_logprobs;
    s->limit = p->n_predict < 0 ? UINT32_MAX : (uint32_t)p->n_predict;
    s->stop = ECH_STOP_LENGTH;
    s->done = s->limit == 0;
    *out = s;
    return ECH_OK;
nomem:
    ech_gen_seq_free(s);
    return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
}

void ech_gen_seq_free(ech_gen_seq *s)
{
    if (!s)
        return;
    if (s->stop_copy)
        for (size_t i = 0; i < s->p.n_stop; i++)
            free(s->stop_copy[i]);
    free(s->stop_copy);
    ech_sampler_free(s->smp);
    ech_buf_free(&s->text);
    free(s);
}

void ech_gen_seq_prompt(ech_gen_seq *s, const int32_t *tokens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ech_sampler_accept(s->smp, tokens[i]);
}

/* Take a chosen token: count it, detect the end, release text. */
static ech_status take(ech_gen_seq *s, ech_gen_token *ev, bool *emit, ech_error *err)
{
    *emit = false;
    ech_sampler_accept(s->smp, ev->token);
    s->n_generated++;
    if (!s->p.ignore_eos && ech_tokenizer_is_eog(s->tk, ev->token)) {
        s->stop = ECH_STOP_EOS;
        s->done = true;
        return ECH_OK;
    }
    size_t before = s->text.len;
    ech_status st = ech_detok_stream_push(&s->ds, ev->token, &s->text);
    if (st != ECH_OK) {
        s->done = true;
        return ech_error_set(err, st, "detokenizing token %d failed", ev->token);
    }
    const char *t = s->text.data ? s->text.data : "";
    size_t stop_at = s->p.n_stop ? find_stop(&s->p, t, s->text.len, before) : SIZE_MAX;
    size_t upto = stop_at != SIZE_MAX ? stop_at : s->text.len - held_back(&s->p, t, s->text.len);
    if (upto < s->emitted)
        upto = s->emitted;
    ev->text = t + s->emitted;
    ev->text_len = upto - s->emitted;
    s->emitted = upto;
    *emit = true;
    if (stop_at != SIZE_MAX) {
        s->stop = ECH_STOP_STRING;
        s->done = true;
    } else if (s->n_generated >= s->limit) {
        s->done = true;
    }
    return ECH_OK;
}

ech_status ech_gen_seq_next(ech_gen_seq *s, const float *logits, ech_gen_token *ev, bool *emit,
                            ech_error *err)
{
    *ev = (ech_gen_token){.top = s->top, .n_top = s->n_top};
    if (s->done) {
        *emit = false;
        return ech_error_set(err, ECH_ERR_INVALID, "generation has ended");
    }
    ev->token = ech_sampler_sample(s->smp, logits, &ev->logprob, s->top, s->n_top);
    return take(s, ev, emit, err);
}

ech_status ech_gen_seq_force(ech_gen_seq *s, int32_t token, ech_gen_token *ev, bool *emit, ech_error *err)
{
    *ev = (ech_gen_token){.token = token, .top = s->top};
    if (s->done) {
        *emit = false;
        return ech_error_set(err, ECH_ERR_INVALID, "generation has ended");
    }
    return take(s, ev, emit, err);
}

bool ech_gen_seq_done(const ech_gen_seq *s) { return s->done; }
ech_stop_reason ech_gen_seq_stop_reason(const ech_gen_seq *s) { return s->stop; }
uint32_t ech_gen_seq_n_generated(const ech_gen_seq *s) { return s->n_generated; }

void ech_gen_seq_end(ech_gen_seq *s, ech_stop_reason why)
{
    s->stop = why;
    s->done = true;
}

bool ech_gen_seq_flush(ech_gen_seq *s, ech_gen_token *ev)
{
    /* what is still held back is real text unless a stop string ended it */
    if (s->stop == ECH_STOP_STRING || s->stop == ECH_STOP_CANCELED)
        return false;
    ech_detok_stream_flush(&s->ds, &s->text);
    if (s->text.len <= s->emitted)
        return false;
    *ev = (ech_gen_token){.token = -1, .text = s->text.data + s->emitted, .text_len = s->text.len - s->emitted};
    s->emitted = s->text.len;
    return true;
}

ech_status ech_generate(ech_ctx *ctx, const ech_tokenizer *tk, const int32_t *prompt, uint32_t n_prompt,
                        const ech_gen_params *p, ech_gen_fn fn, void *user, ech_gen_stats *stats,
                        ech_error *err)
{
    memset(stats, 0, sizeof *stats);
    stats->n_prompt = n_prompt;
    uint32_t n_ctx = ech_ctx_n_ctx(ctx), n_past = ech_ctx_n_past(ctx);
    if (n_prompt == 0)
        return ech_error_set(err, ECH_ERR_INVALID, "the prompt is empty");
    if (n_prompt > n_ctx - n_past)
        return ech_error_set(err, ECH_ERR_RANGE,
                             "the prompt has %u tokens but the context holds %u (%u in use); "
                             "use a larger --ctx or a shorter prompt", n_prompt, n_ctx, n_past);
    const ech_model *m = ech_ctx_model(ctx);
    ech_gen_seq *s;
    ech_status st = ech_gen_seq_new(tk, m->hp.n_vocab, p, &s, err);
    if (st != ECH_OK)
        return st;
    ech_gen_seq_prompt(s, prompt, n_prompt);

    double t0 = now_ms();
    st = ech_ctx_decode(ctx, prompt, n_prompt, err);
    double t1 = now_ms();
    stats->prompt_ms = t1 - t0;

    while (st == ECH_OK && !ech_gen_seq_done(s)) {
        if (ech_ctx_n_past(ctx) >= n_ctx) {
            ech_gen_seq_end(s, ECH_STOP_CONTEXT);
            break;
        }
        ech_gen_token ev;
        bool emit;
        if ((st = ech_gen_seq_next(s, ech_ctx_logits(ctx), &ev, &emit, err)) != ECH_OK)
            break;
        if (emit && fn && fn(user, &ev)) {
            ech_gen_seq_end(s, ECH_STOP_CANCELED);
            break;
        }
        if (!ech_gen_seq_done(s) && (st = ech_ctx_decode(ctx, &ev.token, 1, err)) != ECH_OK)
            break;
    }
    stats->gen_ms = now_ms() - t1;
    stats->n_generated = ech_gen_seq_n_generated(s);
    stats->stop = ech_gen_seq_stop_reason(s);
    ech_gen_token ev;
    if (st == ECH_OK && ech_gen_seq_flush(s, &ev) && fn)
        fn(user, &ev);
    ech_gen_seq_free(s);
    return st;
}
