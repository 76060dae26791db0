/* t-model.c - the forward pass against llama.cpp's goldens.
 *
 * For every decoder model listed in $ECH_SHARED/golden/index.json: our
 * tokenizer must give the golden prompt ids; the last-prompt logits must
 * match within the suggested tolerance ("tight" for F32/F16/BF16 weights;
 * for quantised weights "loose", since a last-bit difference in an F32 sum
 * upstream can flip one rounding of llama.cpp's per-block activation
 * quantisation; the diff is printed and the count within "tight" reported);
 * 32 greedy tokens must match, where a
 * first mismatch is accepted only at a near-tie (golden top-1 minus top-2
 * margin below twice the tolerance); after 32 matching tokens the final
 * logits must match within twice the tolerance.  Settings as the goldens:
 * F32 KV cache, whole prompt in one batch.  Run once per ISA level.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ech.h"
#include "model/context.h"
#include "model/model.h"
#include "model/blocks.h"
#include "kernels/kernels.h"
#include "tap.h"

static double max_abs_diff(const float *a, json_object *golden, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double g = json_object_get_double(json_object_array_get_idx(golden, i));
        double e = fabs((double)a[i] - g);
        if (e > d || isnan(e))
            d = isnan(e) ? INFINITY : e;
    }
    return d;
}

static int32_t argmax(const float *x, size_t n)
{
    int32_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[b])
            b = (int32_t)i;
    return b;
}

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    json_object_object_get_ex(o, k, &v);
    return v;
}

static int n_cases, n_tight;

/* softmax and SwiGLU give the same bits at every ISA level (they follow
 * llama.cpp's vector exp), masked entries and odd lengths included */
static void test_blocks_levels(void)
{
    ech_isa best = ech_isa_detect();
    int bad = 0;
    uint32_t rng = 12345;
    for (int it = 0; it < 500; it++) {
        float a[300], b[300], g1[300], g2[300], u[300];
        int n = 1 + (int)((rng = rng * 1103515245u + 12345u) >> 8) % 300;
        for (int i = 0; i < n; i++) {
            rng = rng * 1103515245u + 12345u;
            float r = (float)(rng >> 8) / 16777216.0f - 0.5f;
            a[i] = b[i] = (rng & 7) == 0 ? -INFINITY : r * (it % 3 ? 20.0f : 200.0f);
            g1[i] = g2[i] = r * 30.0f;
            u[i] = r + 1.0f;
        }
        a[0] = b[0] = 1.0f;
        ech_kernels_use(ECH_ISA_SCALAR);
        ech_softmax(a, n);
        ech_swiglu(g1, u, n, 1);
        ech_kernels_use(best);
        ech_softmax(b, n);
        ech_swiglu(g2, u, n, 1);
        bad += memcmp(a, b, sizeof(float) * n) != 0 || memcmp(g1, g2, sizeof(float) * n) != 0;
    }
    ok(bad == 0, "softmax and swiglu: %s gives the scalar bits (%d of 500 differ)", ech_isa_name(best), bad);
}

static void check_model(const char *shared, json_object *entry, int threads)
{
    const char *name = json_object_get_string(get(entry, "name"));
    char path[4096], gpath[4096];
    snprintf(path, sizeof path, "%s/%s", shared, json_object_get_string(get(entry, "model_file")));
    snprintf(gpath, sizeof gpath, "%s/%s", shared, json_object_get_string(get(entry, "golden_file")));
    json_object *tols = get(entry, "suggested_tolerance"), *types = get(entry, "tensor_type_counts");
    int quantized = 0;
    json_object_object_foreach(types, tname, tcount) {
        (void)tcount;
        quantized |= strcmp(tname, "F32") && strcmp(tname, "F16") && strcmp(tname, "BF16");
    }
    double tight = json_object_get_double(get(tols, "logits_max_abs_tight"));
    double tol = quantized ? json_object_get_double(get(tols, "logits_max_abs_loose")) : tight;
    json_object *golden = json_object_from_file(gpath);
    ech_model *m = NULL;
    ech_tokenizer *tk = NULL;
    ech_error err;
    if (!golden || ech_model_open(path, &m, &err) != ECH_OK || ech_tokenizer_load(m->gguf, &tk, &err) != ECH_OK) {
        ok(0, "%s: load (%s)", name, golden ? err.msg : "golden unreadable");
        json_object_put(golden);
        ech_model_close(m);
        return;
    }
    json_object *cases = get(golden, "cases");
    for (size_t ci = 0; ci < json_object_array_length(cases); ci++) {
        json_object *c = json_object_array_get_idx(cases, ci);
        const char *prompt = json_object_get_string(get(c, "prompt"));
        json_object *pid = get(c, "prompt_token_ids");
        ech_tokens toks = {0};
        ech_tokenize(tk, prompt, strlen(prompt), ECH_TOKENIZE_ADD_SPECIAL | ECH_TOKENIZE_PARSE_SPECIAL, &toks, &err);
        int same = toks.n == json_object_array_length(pid);
        for (size_t i = 0; same && i < toks.n; i++)
            same = toks.ids[i] == json_object_get_int(json_object_array_get_idx(pid, i));
        ok(same, "%s [%s]: prompt ids", name, prompt);
        ech_ctx_params cp = ech_ctx_default_params();
        cp.n_ctx = 256;
        cp.kv_type = ECH_TYPE_F32;
        cp.n_threads = threads;
        ech_ctx *ctx;
        if (ech_ctx_new(m, &cp, &ctx, &err) != ECH_OK) {
            ok(0, "%s: context: %s", name, err.msg);
            ech_tokens_free(&toks);
            continue;
        }
        int32_t ids[512];
        size_t np = json_object_array_length(pid);
        for (size_t i = 0; i < np && i < 512; i++)
            ids[i] = json_object_get_int(json_object_array_get_idx(pid, i));
        ech_ctx_decode(ctx, ids, (uint32_t)np, &err);
        size_t nv = m->hp.n_vocab;
        double d = max_abs_diff(ech_ctx_logits(ctx), get(c, "last_prompt_logits"), nv);
        if (!ok(d <= tol, "%s [%s]: last-prompt logits within %g (max diff %.3g)", name, prompt, tol, d))
            printf("#   max abs diff %.6g\n", d);
        n_cases++;
        n_tight += d <= tight;
        json_object *gen = get(c, "generated_token_ids"), *margin = get(c, "top1_minus_top2_per_step");
        size_t ng = json_object_array_length(gen), step = 0;
        int all = 1;
        for (; step < ng; step++) {
            int32_t t = argmax(ech_ctx_logits(ctx), nv);
            int32_t want = json_object_get_int(json_object_array_get_idx(gen, step));
            if (t != want) {
                double mg = json_object_get_double(json_object_array_get_idx(margin, step));
                all = 0;
                ok(mg < 2 * tol, "%s [%s]: greedy step %zu differs (got %d, want %d) at a near-tie (margin %.3g)",
                   name, prompt, step, t, want, mg);
                break;
            }
            ech_ctx_decode(ctx, &want, 1, &err);
        }
        if (all) {
            ok(1, "%s [%s]: %zu greedy tokens match", name, prompt, ng);
            double df = max_abs_diff(ech_ctx_logits(ctx), get(c, "final_logits"), nv);
            ok(df <= 2 * tol, "%s [%s]: final logits within %g (max diff %.3g)", name, prompt, 2 * tol, df);
        }
        ech_ctx_free(ctx);
        ech_tokens_free(&toks);
    }
    ech_tokenizer_free(tk);
    ech_model_close(m);
    json_object_put(golden);
}

/* ech_ctx_decode_batch gives each context the logits ech_ctx_decode gives
 * it alone: prompts of different lengths split over passes (n_batch 8),
 * then decode steps of all sequences at once */
static void test_batch(const char *shared, const char *model)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/models/%s", shared, model);
    ech_model *m = NULL;
    ech_error err = {0};
    if (ech_model_open(path, &m, &err) != ECH_OK) {
        tap_skip(1, "a model of $ECH_SHARED is absent");
        return;
    }
    enum { NS = 3 };
    const int32_t p0[] = {1, 9038, 2501, 263, 931}, p1[] = {1, 450, 2217, 11203, 6350, 297, 278, 9881, 29889},
                  p2[] = {1, 15043, 29892};
    const int32_t *src[NS] = {p0, p1, p2};
    const uint32_t lens[NS] = {5, 9, 3};
    const uint32_t nv = m->hp.n_vocab;
    int32_t prompts[NS][9];
    for (int i = 0; i < NS; i++)
        for (uint32_t t = 0; t < lens[i]; t++)
            prompts[i][t] = src[i][t] % (int32_t)nv; /* small vocabularies */
    ech_ctx_params cp = ech_ctx_default_params();
    cp.n_ctx = 64;
    cp.n_batch = 8;
    cp.n_threads = 2;
    ech_ctx *a[NS], *b[NS];
    for (int i = 0; i < NS; i++) {
        ech_ctx_new(m, &cp, &a[i], &err);
        ech_ctx_new(m, &cp, &b[i], &err);
    }
    double worst = 0;
    int st = 0;
    for (int step = 0; step < 4; step++) {
        int32_t next[NS];
        const int32_t *tk[NS];
        uint32_t n[NS];
        for (int i = 0; i < NS; i++) {
            next[i] = (int32_t)((100 + 37 * i + step) % (int)nv);
            tk[i] = step ? &next[i] : prompts[i];
            n[i] = step ? 1 : lens[i];
            st |= ech_ctx_decode(a[i], tk[i], n[i], &err);
        }
        st |= ech_ctx_decode_batch(b, tk, n, NS, &err);
        for (int i = 0; i < NS; i++) {
            const float *x = ech_ctx_logits(a[i]), *y = ech_ctx_logits(b[i]);
            for (uint32_t v = 0; v < nv; v++) {
                double d = fabs((double)x[v] - y[v]) / (1.0 + fabs((double)x[v]));
                if (d > worst || isnan(d))
                    worst = isnan(d) ? INFINITY : d;
            }
            st |= ech_ctx_n_past(a[i]) != ech_ctx_n_past(b[i]);
        }
    }
    ok(st == 0 && worst < 1e-3, "%s: batched decode of 3 sequences = one at a time (worst relative diff %.2g)",
       model, worst);
    ech_ctx *dup[2] = {b[0], b[0]};
    const int32_t one = 5, *tk2[2] = {&one, &one};
    const uint32_t n2[2] = {1, 1};
    ok(ech_ctx_decode_batch(dup, tk2, n2, 2, &err) == ECH_ERR_INVALID, "the same context twice is refused");
    for (int i = 0; i < NS; i++) {
        ech_ctx_free(a[i]);
        ech_ctx_free(b[i]);
    }
    ech_model_close(m);
}

int main(void)
{
    test_blocks_levels();
    if (getenv("ECH_SHARED")) {
        test_batch(getenv("ECH_SHARED"), "stories260K.gguf");
        test_batch(getenv("ECH_SHARED"), "ref/mini-gemma3-Q8_0.gguf");
        test_batch(getenv("ECH_SHARED"), "ref/mini-qwen2-Q4_K_M.gguf");
    }
    const char *shared = getenv("ECH_SHARED");
    char ipath[4096];
    json_object *index = NULL;
    if (shared) {
        snprintf(ipath, sizeof ipath, "%s/golden/index.json", shared);
        index = json_object_from_file(ipath);
    }
    if (!index) {
        tap_skip(1, "ECH_SHARED golden data absent");
        return done_testing();
    }
    json_object *models = get(index, "models");
    ech_isa best = ech_isa_detect();
    for (int isa = ECH_ISA_SCALAR; isa <= (int)best; isa++) {
        ech_kernels_use((ech_isa)isa);
        printf("# kernels: %s\n", ech_isa_name((ech_isa)isa));
        for (size_t i = 0; i < json_object_array_length(models); i++) {
            json_object *e = json_object_array_get_idx(models, i);
            if (strcmp(json_object_get_string(get(e, "kind")), "generation") != 0)
                continue;
            check_model(shared, e, isa == (int)best ? 2 : 1);
        }
    }
    json_object_put(index);
    printf("# %d of %d prompt logits within the tight tolerance\n", n_tight, n_cases);
    return done_testing();
}
