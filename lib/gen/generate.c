/* generate.c - prompt, sample, stream, repeat. */
#include "config.h"
#include "gen/generate.h"

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
    ech_sampler *smp;
    ech_status st = ech_sampler_new(&p->sampling, m->hp.n_vocab, &smp, err);
    if (st != ECH_OK)
        return st;
    for (uint32_t i = 0; i < n_prompt; i++)
        ech_sampler_accept(smp, prompt[i]);

    double t0 = now_ms();
    st = ech_ctx_decode(ctx, prompt, n_prompt, err);
    double t1 = now_ms();
    stats->prompt_ms = t1 - t0;

    ech_buf text = {0};       /* everything generated so far */
    size_t emitted = 0;       /* bytes of it already handed out */
    ech_detok_stream ds;
    /* the output continues the prompt: a leading "▁" is a real space */
    ech_detok_stream_init(&ds, tk, ECH_DETOK_KEEP_SPACE);
    ech_token_logprob top[20];
    uint32_t n_top = p->top_logprobs > 20 ? 20 : p->top_logprobs;
    stats->stop = ECH_STOP_LENGTH;
    uint32_t limit = p->n_predict < 0 ? UINT32_MAX : (uint32_t)p->n_predict;
    for (uint32_t i = 0; st == ECH_OK && i < limit; i++) {
        if (ech_ctx_n_past(ctx) >= n_ctx) {
            stats->stop = ECH_STOP_CONTEXT;
            break;
        }
        ech_gen_token ev = {.top = top, .n_top = n_top};
        ev.token = ech_sampler_sample(smp, ech_ctx_logits(ctx), &ev.logprob, top, n_top);
        ech_sampler_accept(smp, ev.token);
        stats->n_generated++;
        if (!p->ignore_eos && ech_tokenizer_is_eog(tk, ev.token)) {
            stats->stop = ECH_STOP_EOS;
            break;
        }
        size_t before = text.len;
        if ((st = ech_detok_stream_push(&ds, ev.token, &text)) != ECH_OK) {
            ech_error_set(err, st, "detokenizing token %d failed", ev.token);
            break;
        }
        size_t stop_at = p->n_stop ? find_stop(p, text.data ? text.data : "", text.len, before) : SIZE_MAX;
        size_t upto = stop_at != SIZE_MAX ? stop_at : text.len - held_back(p, text.data ? text.data : "", text.len);
        if (upto < emitted)
            upto = emitted;
        ev.text = text.data ? text.data + emitted : "";
        ev.text_len = upto - emitted;
        emitted = upto;
        if (fn && fn(user, &ev)) {
            stats->stop = ECH_STOP_CANCELED;
            break;
        }
        if (stop_at != SIZE_MAX) {
            stats->stop = ECH_STOP_STRING;
            break;
        }
        if (i + 1 < limit && (st = ech_ctx_decode(ctx, &ev.token, 1, err)) != ECH_OK)
            break;
    }
    stats->gen_ms = now_ms() - t1;
    /* what is still held back is real text unless a stop string ended it */
    if (st == ECH_OK && stats->stop != ECH_STOP_STRING && stats->stop != ECH_STOP_CANCELED) {
        ech_detok_stream_flush(&ds, &text);
        if (text.len > emitted && fn) {
            ech_gen_token ev = {.token = -1, .text = text.data + emitted, .text_len = text.len - emitted};
            fn(user, &ev);
        }
    }
    ech_buf_free(&text);
    ech_sampler_free(smp);
    return st;
}
