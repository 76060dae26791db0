/* sampler.c - penalties, top-k/top-p/min-p, temperature and a seeded draw. */
#include "config.h"
#include "gen/sampler.h"
#include "model/blocks.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct cand {
    int32_t id;
    float logit;
    float p;
} cand;

struct ech_sampler {
    ech_sampler_params p;
    uint32_t n_vocab;
    uint64_t rng[4];          /* xoshiro256** state */
    int32_t *history;         /* ring of the last penalty_last_n tokens */
    uint32_t hist_len, hist_pos, hist_cap;
    uint32_t *counts;         /* occurrences in the history, per token */
    cand *cands;              /* n_vocab */
    float *work;              /* n_vocab */
};

ech_sampler_params ech_sampler_default_params(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ech_sampler_params p = {
        .temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
        .repeat_penalty = 1.0f, .penalty_last_n = 64,
        .presence_penalty = 0.0f, .frequency_penalty = 0.0f,
        .seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40),
    };
    return p;
}

void ech_sampler_params_from_gguf(ech_sampler_params *p, const ech_gguf *g)
{
    double f;
    int64_t i;
    if (ech_gguf_get_f64(g, "general.sampling.temp", &f) == ECH_OK) p->temp = (float)f;
    if (ech_gguf_get_f64(g, "general.sampling.top_p", &f) == ECH_OK) p->top_p = (float)f;
    if (ech_gguf_get_f64(g, "general.sampling.min_p", &f) == ECH_OK) p->min_p = (float)f;
    if (ech_gguf_get_f64(g, "general.sampling.penalty_repeat", &f) == ECH_OK) p->repeat_penalty = (float)f;
    if (ech_gguf_get_i64(g, "general.sampling.top_k", &i) == ECH_OK && i >= 0 && i <= INT32_MAX)
        p->top_k = (int32_t)i;
    if (ech_gguf_get_i64(g, "general.sampling.penalty_last_n", &i) == ECH_OK && i >= 0 && i <= 1 << 20)
        p->penalty_last_n = (int32_t)i;
}

/* splitmix64 seeds xoshiro256**; both are public-domain designs */
static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* uniform in [0, 1) with 53 bits */
static double next_unit(uint64_t s[4]) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

ech_status ech_sampler_new(const ech_sampler_params *p, uint32_t n_vocab, ech_sampler **out, ech_error *err)
{
    *out = NULL;
    if (n_vocab == 0)
        return ech_error_set(err, ECH_ERR_INVALID, "empty vocabulary");
    ech_sampler *s = calloc(1, sizeof *s);
    if (!s)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    uint64_t seed = p->seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix(&seed);
    s->hist_cap = p->penalty_last_n > 0 ? (uint32_t)p->penalty_last_n : 0;
    s->history = calloc(s->hist_cap ? s->hist_cap : 1, sizeof *s->history);
    s->counts = calloc(n_vocab, sizeof *s->counts);
    s->cands = malloc(n_vocab * sizeof *s->cands);
    s->work = malloc(n_vocab * sizeof *s->work);
    if (!s->history || !s->counts || !s->cands || !s->work) {
        ech_sampler_free(s);
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    }
    *out = s;
    return ECH_OK;
}

void ech_sampler_free(ech_sampler *s)
{
    if (!s)
        return;
    free(s->history);
    free(s->counts);
    free(s->cands);
    free(s->work);
    free(s);
}

void ech_sampler_accept(ech_sampler *s, int32_t token)
{
    if (!s->hist_cap || token < 0 || (uint32_t)token >= s->n_vocab)
        return;
    if (s->hist_len == s->hist_cap) {
        s->counts[s->history[s->hist_pos]]--;
    } else {
        s->hist_len++;
    }
    s->history[s->hist_pos] = token;
    s->counts[token]++;
    s->hist_pos = (s->hist_pos + 1) % s->hist_cap;
}

static int by_logit_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Put the k highest logits (k < n) in c[0..k), in no particular order:
 * quickselect around the median of three. */
static void select_top(cand *c, uint32_t n, uint32_t k)
{
    uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        float a = c[lo].logit, b = c[mid].logit, d = c[hi].logit;
        float pivot = a < b ? (b < d ? b : (a < d ? d : a)) : (a < d ? a : (b < d ? d : b));
        uint32_t i = lo, j = hi;
        while (i <= j) {
            while (c[i].logit > pivot)
                i++;
            while (c[j].logit < pivot)
                j--;
            if (i <= j) {
                cand t = c[i];
                c[i] = c[j];
                c[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            break;
    }
}

/* The k best of l[0..n) (0 < k < n) into c[0..k), in no particular order,
 * in about one pass over l: what beats the k-th best seen so far goes into
 * a buffer, cut back to its k best whenever it fills.  For logits in any
 * order few beyond the first buffer qualify (about k ln(n/k)), where a
 * quickselect over all n candidates took 300 us for 32000 of them. */
static void gather_top(cand *c, const float *l, uint32_t n, uint32_t k)
{
    uint32_t cap = 8 * k > 1024 ? 8 * k : 1024;   /* the buffer: min(max(8k, 1024), n) */
    if (cap > n)
        cap = n;
    uint32_t m = 0;
    float kth = -INFINITY;   /* the k-th best logit of the last cut */
    for (uint32_t i = 0; i < n; i++) {
        if (m >= k && !(l[i] > kth))
            continue;
        c[m++] = (cand){(int32_t)i, l[i], 0.0f};
        if (m == cap && i + 1 < n) {
            select_top(c, m, k);
            m = k;
            kth = c[0].logit;
            for (uint32_t j = 1; j < k; j++)
                if (c[j].logit < kth)
                    kth = c[j].logit;
        }
    }
    if (m > k)
        select_top(c, m, k);
}

/* log-softmax of the raw logits, and the n_top best */
static void model_logprobs(ech_sampler *s, const float *logits, int32_t chosen, float *logprob,
                           ech_token_logprob *top, uint32_t n_top)
{
    const double lse = ech_log_sum_exp(logits, s->n_vocab);
    if (logprob)
        *logprob = (float)(logits[chosen] - lse);
    if (n_top > s->n_vocab)
        n_top = s->n_vocab;
    /* one pass keeping a small sorted list of the best n_top */
    uint32_t have = 0;
    for (uint32_t i = 0; i < s->n_vocab && n_top; i++) {
        if (have == n_top && logits[i] <= logits[top[have - 1].token])
            continue;
        uint32_t at = have < n_top ? have++ : n_top - 1;
        while (at > 0 && logits[top[at - 1].token] < logits[i]) {
            top[at] = top[at - 1];
            at--;
        }
        top[at].token = (int32_t)i;
    }
    for (uint32_t k = 0; k < have; k++)
        top[k].logprob = (float)(logits[top[k].token] - lse);
}

int32_t ech_sampler_sample(ech_sampler *s, const float *logits, float *logprob,
                           ech_token_logprob *top, uint32_t n_top)
{
    const ech_sampler_params *p = &s->p;
    const float *l = logits;
    /* penalties over the tokens seen recently, once per distinct token
     * (the history is short: a quadratic scan beats any bookkeeping), on a
     * copy of the logits */
    if (p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f) {
        float *w = s->work;
        memcpy(w, logits, s->n_vocab * sizeof *w);
        l = w;
        for (uint32_t i = 0; i < s->hist_len; i++) {
            int32_t t = s->history[i];
            int seen = 0;
            for (uint32_t j = 0; j < i && !seen; j++)
                seen = s->history[j] == t;
            if (seen)
                continue;
            if (p->repeat_penalty != 1.0f)
                w[t] = w[t] > 0 ? w[t] / p->repeat_penalty : w[t] * p->repeat_penalty;
            w[t] -= (float)s->counts[t] * p->frequency_penalty + p->presence_penalty;
        }
    }
    int32_t chosen;
    if (p->temp <= 0.0f) {
        chosen = 0;
        for (uint32_t i = 1; i < s->n_vocab; i++)
            if (l[i] > l[chosen])
                chosen = (int32_t)i;
    } else {
        uint32_t n = s->n_vocab;
        cand *c = s->cands;
        if (p->top_k > 0 && (uint32_t)p->top_k < n) {
            n = (uint32_t)p->top_k;
            gather_top(c, l, s->n_vocab, n);
        } else {
            for (uint32_t i = 0; i < n; i++)
                c[i] = (cand){(int32_t)i, l[i], 0.0f};
        }
        float max = c[0].logit;
        for (uint32_t i = 1; i < n; i++)
            if (c[i].logit > max)
                max = c[i].logit;
        /* the (untempered) probabilities top-p and min-p judge by are
         * normalised over the top-k set, as in llama.cpp's chain */
        double sum = 0.0;
        for (uint32_t i = 0; i < n; i++)
            sum += expf(c[i].logit - max);
        /* min-p keeps p >= min_p * p_max, i.e. logit >= max + log(min_p):
         * filtering first leaves a short list to sort */
        if (p->min_p > 0.0f) {
            float cut = max + logf(p->min_p);
            uint32_t k = 0;
            for (uint32_t i = 0; i < n; i++)
                if (c[i].logit >= cut)
                    c[k++] = c[i];
            n = k;
        }
        qsort(c, n, sizeof *c, by_logit_desc);
        if (p->top_p < 1.0f) {
            double cum = 0.0;
            for (uint32_t i = 0; i < n; i++) {
                cum += expf(c[i].logit - max) / sum;
                if (cum >= p->top_p) {
                    n = i + 1;
                    break;
                }
            }
        }
        /* temperature, then draw */
        sum = 0.0;
        for (uint32_t i = 0; i < n; i++) {
            c[i].p = expf((c[i].logit - c[0].logit) / p->temp);
            sum += c[i].p;
        }
        double r = next_unit(s->rng) * sum, acc = 0.0;
        chosen = c[n - 1].id;
        for (uint32_t i = 0; i < n; i++) {
            acc += c[i].p;
            if (r < acc) {
                chosen = c[i].id;
                break;
            }
        }
    }
    if (logprob || n_top)
        model_logprobs(s, logits, chosen, logprob, top, n_top);
    return chosen;
}
