/* t-sampler.c - unit tests for lib/gen/sampler. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ech.h"
#include "gen/sampler.h"
#include "tap.h"

enum { NV = 1000 };

static void fill(float *l, unsigned seed)
{
    srand(seed);
    for (int i = 0; i < NV; i++)
        l[i] = (float)rand() / RAND_MAX * 10.0f - 5.0f;
}

static int by_value_desc(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

static ech_sampler *make(ech_sampler_params p)
{
    ech_sampler *s;
    ech_error e;
    return ech_sampler_new(&p, NV, &s, &e) == ECH_OK ? s : NULL;
}

int main(void)
{
    float l[NV];
    ech_error e;
    fill(l, 1);
    int best = 0;
    for (int i = 1; i < NV; i++)
        if (l[i] > l[best])
            best = i;
    ech_sampler_params p = ech_sampler_default_params();
    p.temp = 0;
    ech_sampler *s = make(p);
    float lp;
    ech_token_logprob top[5];
    is_int(ech_sampler_sample(s, l, &lp, top, 5), best, "greedy picks the argmax");
    is_int(top[0].token, best, "top logprob 0 is the argmax");
    ok(top[0].logprob >= top[1].logprob && top[1].logprob >= top[4].logprob, "top logprobs sorted");
    ok(fabsf(lp - top[0].logprob) < 1e-6f && lp < 0, "chosen logprob");
    double sum = 0;
    for (int i = 0; i < NV; i++)
        sum += exp((double)l[i] - l[best]);
    ok(fabs(lp + log(sum)) < 1e-4, "logprob is the log-softmax");
    ech_sampler_free(s);

    float ties[NV];
    for (int i = 0; i < NV; i++)
        ties[i] = 1.0f;
    s = make(p);
    is_int(ech_sampler_sample(s, ties, NULL, NULL, 0), 0, "greedy ties go to the lowest id");
    ech_sampler_free(s);

    /* same seed, same draws; another seed, other draws */
    p = ech_sampler_default_params();
    p.seed = 42;
    p.top_k = 0;
    p.top_p = 1;
    p.min_p = 0;
    p.temp = 1.5f;
    int32_t a[50], b[50], c[50];
    s = make(p);
    for (int i = 0; i < 50; i++) a[i] = ech_sampler_sample(s, l, NULL, NULL, 0);
    ech_sampler_free(s);
    s = make(p);
    for (int i = 0; i < 50; i++) b[i] = ech_sampler_sample(s, l, NULL, NULL, 0);
    ech_sampler_free(s);
    p.seed = 43;
    s = make(p);
    for (int i = 0; i < 50; i++) c[i] = ech_sampler_sample(s, l, NULL, NULL, 0);
    ech_sampler_free(s);
    ok(memcmp(a, b, sizeof a) == 0, "same seed gives the same tokens");
    ok(memcmp(a, c, sizeof a) != 0, "another seed gives other tokens");

    /* top-k 1 is greedy, whatever the temperature */
    p.top_k = 1;
    s = make(p);
    int all = 1;
    for (int i = 0; i < 100; i++) all &= ech_sampler_sample(s, l, NULL, NULL, 0) == best;
    ok(all, "top-k 1 always picks the argmax");
    ech_sampler_free(s);

    /* top-k K: draws only among the K best (checks the linear-time selection) */
    for (unsigned seed = 1; seed <= 20; seed++) {
        fill(l, seed);
        float sorted[NV];
        memcpy(sorted, l, sizeof l);
        for (int i = 0; i < NV; i++)     /* selection of the 10th largest */
            for (int j = i + 1; j < NV; j++)
                if (sorted[j] > sorted[i]) { float t = sorted[i]; sorted[i] = sorted[j]; sorted[j] = t; }
        p.top_k = 10;
        p.temp = 100.0f;
        p.seed = seed;
        s = make(p);
        int inside = 1;
        for (int i = 0; i < 200; i++) inside &= l[ech_sampler_sample(s, l, NULL, NULL, 0)] >= sorted[9];
        ech_sampler_free(s);
        if (!inside) { ok(0, "top-k 10 stays in the 10 best (seed %u)", seed); break; }
        if (seed == 20) ok(1, "top-k 10 stays in the 10 best (20 seeds x 200 draws)");
    }

    /* min-p: nothing below min_p x the best probability */
    fill(l, 7);
    best = 0;
    for (int i = 1; i < NV; i++) if (l[i] > l[best]) best = i;
    p = ech_sampler_default_params();
    p.top_k = 0; p.top_p = 1; p.min_p = 0.5f; p.temp = 5.0f; p.seed = 9;
    s = make(p);
    all = 1;
    for (int i = 0; i < 300; i++) all &= l[ech_sampler_sample(s, l, NULL, NULL, 0)] >= l[best] + logf(0.5f);
    ok(all, "min-p 0.5 keeps only tokens with p >= p_max / 2");
    ech_sampler_free(s);

    /* top-p tiny keeps only the best */
    p.min_p = 0; p.top_p = 1e-6f;
    s = make(p);
    all = 1;
    for (int i = 0; i < 100; i++) all &= ech_sampler_sample(s, l, NULL, NULL, 0) == best;
    ok(all, "top-p near 0 keeps only the best token");
    ech_sampler_free(s);

    /* penalties steer greedy away from the history */
    p = ech_sampler_default_params();
    p.temp = 0; p.repeat_penalty = 1000.0f;
    s = make(p);
    int first = ech_sampler_sample(s, l, NULL, NULL, 0);
    ech_sampler_accept(s, first);
    int second = ech_sampler_sample(s, l, NULL, NULL, 0);
    ok(first == best && second != first, "repeat penalty moves greedy off a seen token");
    ech_sampler_free(s);
    p.repeat_penalty = 1.0f; p.presence_penalty = 100.0f;
    s = make(p);
    ech_sampler_accept(s, best);
    ok(ech_sampler_sample(s, l, NULL, NULL, 0) != best, "presence penalty moves greedy off a seen token");
    ech_sampler_free(s);
    p.presence_penalty = 0; p.frequency_penalty = 1.0f; p.penalty_last_n = 4;
    s = make(p);
    for (int i = 0; i < 8; i++) ech_sampler_accept(s, 3);
    for (int i = 0; i < 4; i++) ech_sampler_accept(s, 5);
    ok(ech_sampler_sample(s, l, NULL, NULL, 0) == best || best == 5, "history window forgets old tokens");
    ech_sampler_free(s);

    /* top-k over a real vocabulary's size, where the k best are gathered in
     * one pass through a buffer cut back as it fills: logits in random,
     * rising and falling order; near-uniform draws must reach all 40 of the
     * 40 best and nothing else */
    enum { BIG = 32000, K = 40 };
    float *big = malloc(BIG * sizeof *big);
    for (int order = 0; order < 3; order++) {
        srand(11);
        for (int i = 0; i < BIG; i++)
            big[i] = order == 0 ? (float)rand() / RAND_MAX * 20.0f - 10.0f
                                : (order == 1 ? 1.0f : -1.0f) * (float)i / 1000.0f;
        float *sorted = malloc(BIG * sizeof *sorted);
        memcpy(sorted, big, BIG * sizeof *big);
        qsort(sorted, BIG, sizeof *sorted, by_value_desc);
        const float kth = sorted[K - 1];
        free(sorted);
        p = ech_sampler_default_params();
        p.top_k = K; p.top_p = 1; p.min_p = 0; p.temp = 1e6f; p.seed = 5;
        ech_sampler *sb;
        ech_sampler_new(&p, BIG, &sb, &e);
        int *hit = calloc(BIG, sizeof *hit), inside = 1, distinct = 0;
        for (int i = 0; i < 4000; i++) {
            int32_t t = ech_sampler_sample(sb, big, NULL, NULL, 0);
            inside &= big[t] >= kth;
            distinct += !hit[t]++;
        }
        ech_sampler_free(sb);
        free(hit);
        ok(inside && distinct == K, "top-k 40 of 32000 (%s order): draws reach all 40 best and no other (%d)",
           order == 0 ? "random" : order == 1 ? "rising" : "falling", distinct);
    }
    free(big);

    /* GGUF recommendations */
    ech_gguf_writer *w = ech_gguf_writer_new();
    ech_gguf_writer_set_f32(w, "general.sampling.temp", 0.6f);
    ech_gguf_writer_set_i32(w, "general.sampling.top_k", 20);
    uint8_t *buf; size_t n; ech_gguf *g;
    ech_gguf_writer_write_mem(w, &buf, &n, &e);
    ech_gguf_parse(buf, n, &g, &e);
    p = ech_sampler_default_params();
    ech_sampler_params_from_gguf(&p, g);
    ok(fabsf(p.temp - 0.6f) < 1e-6f && p.top_k == 20 && fabsf(p.top_p - 0.95f) < 1e-6f,
       "general.sampling.* keys override the defaults");
    ech_gguf_close(g);
    free(buf);
    ech_gguf_writer_free(w);
    return done_testing();
}
