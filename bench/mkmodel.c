/* mkmodel - write a random-weight llama GGUF at real sizes, for benchmarks.
 *
 *   bench/mkmodel [--preset tinyllama|110m] --type F16|Q8_0|Q4_0|Q4_K_M|TYPE \
 *                 --vocab VOCAB.gguf -o OUT.gguf
 *
 * Shapes: tinyllama = TinyLlama-1.1B (dim 2048, 22 layers, 32 heads, 4 kv
 * heads, ffn 5632, vocab 32000); 110m = dim 768, 12 layers, 12 heads, ffn
 * 2048, vocab 32000.  Weights are N(0, 0.02^2), norms 1.  Quantisation uses
 * libech's own quantisers (byte-exact with llama-quantize without an
 * importance matrix); Q4_K_M follows llama-quantize's mix: Q6_K for output
 * and for attn_v / ffn_down of the "more bits" layers, Q4_K elsewhere.
 * The tokenizer keys are copied from VOCAB (a 32000-token SPM vocab).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ech.h"

typedef struct shape { int dim, layers, heads, kv_heads, ffn, vocab; } shape;

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static double uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((rng_state >> 11) + 0.5) * 0x1.0p-53;
}

static void fill_normal(float *x, size_t n, float std)
{
    for (size_t i = 0; i < n; i += 2) {
        double u = uniform(), v = uniform();
        double r = sqrt(-2.0 * log(u)) * std;
        x[i] = (float)(r * cos(2 * M_PI * v));
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(2 * M_PI * v));
    }
}

/* ne[0] = cols (contiguous), ne[1] = rows */
static void *make_tensor(ech_type t, int64_t cols, int64_t rows, float std, int ones)
{
    size_t n = (size_t)cols * rows;
    float *f = malloc(n * sizeof *f);
    if (!f)
        return NULL;
    if (ones)
        for (size_t i = 0; i < n; i++)
            f[i] = 1.0f;
    else
        fill_normal(f, n, std);
    if (t == ECH_TYPE_F32)
        return f;
    uint64_t row_bytes;
    ech_type_nbytes(t, (uint64_t)cols, &row_bytes);
    uint8_t *q = malloc(row_bytes * rows);
    if (t == ECH_TYPE_F16) {
        for (size_t i = 0; i < n; i++)
            ((uint16_t *)q)[i] = ech_fp32_to_fp16(f[i]);
    } else {
        ech_from_float_fn quant = ech_quantizer_for(t);
#pragma omp parallel for schedule(dynamic, 16)
        for (int64_t r = 0; r < rows; r++)
            quant(f + r * cols, q + r * row_bytes, cols);
    }
    free(f);
    return q;
}

int main(int argc, char **argv)
{
    shape s = {2048, 22, 32, 4, 5632, 32000};
    const char *type = "Q4_0", *vocab = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--preset") && i + 1 < argc) {
            const char *p = argv[++i];
            if (!strcmp(p, "110m"))
                s = (shape){768, 12, 12, 12, 2048, 32000};
        } else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            type = argv[++i];
        } else if (!strcmp(argv[i], "--vocab") && i + 1 < argc) {
            vocab = argv[++i];
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
            out = argv[++i];
        }
    }
    if (!vocab || !out) {
        fprintf(stderr, "usage: mkmodel [--preset tinyllama|110m] --type F16|Q8_0|Q4_0|Q4_K_M --vocab V.gguf -o OUT.gguf\n");
        return 2;
    }
    int k_m = !strcmp(type, "Q4_K_M");
    ech_type base;
    if (k_m)
        base = ECH_TYPE_Q4_K;
    else if (ech_type_from_name(type, &base) != ECH_OK) {
        fprintf(stderr, "mkmodel: unknown type %s\n", type);
        return 2;
    }
    if ((unsigned)base >= ECH_TYPE_COUNT || (base != ECH_TYPE_F16 && !ech_quantizer_for(base))) {
        fprintf(stderr, "mkmodel: no quantiser for %s\n", type);
        return 2;
    }
    ech_gguf *vg;
    ech_error err;
    if (ech_gguf_open(vocab, &vg, &err) != ECH_OK) {
        fprintf(stderr, "mkmodel: %s\n", err.msg);
        return 1;
    }
    ech_gguf_writer *w = ech_gguf_writer_new();
    ech_gguf_writer_set_str(w, "general.architecture", "llama");
    ech_gguf_writer_set_str(w, "general.name", "random-weight benchmark model");
    /* llama.cpp's file types (the pure "_S" ones where a type has several) */
    static const int ftypes[ECH_TYPE_COUNT] = {
        [ECH_TYPE_F16] = 1, [ECH_TYPE_BF16] = 32, [ECH_TYPE_Q4_0] = 2, [ECH_TYPE_Q4_1] = 3, [ECH_TYPE_Q8_0] = 7, [ECH_TYPE_Q5_0] = 8,
        [ECH_TYPE_Q5_1] = 9, [ECH_TYPE_Q2_K] = 10, [ECH_TYPE_Q3_K] = 11, [ECH_TYPE_Q4_K] = 15,
        [ECH_TYPE_Q5_K] = 16, [ECH_TYPE_Q6_K] = 18, [ECH_TYPE_IQ4_NL] = 25};
    ech_gguf_writer_set_u32(w, "general.file_type", (uint32_t)ftypes[base]);
    ech_gguf_writer_set_u32(w, "llama.context_length", 2048);
    ech_gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)s.dim);
    ech_gguf_writer_set_u32(w, "llama.block_count", (uint32_t)s.layers);
    ech_gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)s.ffn);
    ech_gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)s.heads);
    ech_gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)s.kv_heads);
    ech_gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)(s.dim / s.heads));
    ech_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    ech_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    for (size_t i = 0; i < ech_gguf_n_kv(vg); i++) {
        const ech_gguf_kv *kv = ech_gguf_kv_at(vg, i);
        if (!strncmp(kv->key, "tokenizer.", 10))
            ech_gguf_writer_set(w, kv->key, &kv->value);
    }
    void **bufs = calloc(16 + (size_t)s.layers * 16, sizeof *bufs);
    size_t nb = 0;
    int hd = s.dim / s.heads, kv = s.kv_heads * hd;
#define ADD(name, t, cols, rows, ones)                                                 \
    do {                                                                           \
        void *d_ = make_tensor(t, cols, rows, 0.02f, ones);                        \
        uint64_t ne_[2] = {(uint64_t)(cols), (uint64_t)(rows)};                    \
        if (!d_ || ech_gguf_writer_add_tensor(w, name, t, (rows) > 1 ? 2 : 1, ne_, d_) != ECH_OK) { \
            fprintf(stderr, "mkmodel: cannot make %s\n", name);                    \
            return 1;                                                              \
        }                                                                          \
        bufs[nb++] = d_;                                                           \
    } while (0)
    ADD("token_embd.weight", base, s.dim, s.vocab, 0);
    ADD("output_norm.weight", ECH_TYPE_F32, s.dim, 1, 1);
    ADD("output.weight", k_m ? ECH_TYPE_Q6_K : base, s.dim, s.vocab, 0);
    for (int l = 0; l < s.layers; l++) {
        char n[64];
        int more = l < s.layers / 8 || l >= 7 * s.layers / 8 || (l - s.layers / 8) % 3 == 2;
        ech_type hi = k_m && more ? ECH_TYPE_Q6_K : base;
#define L(suffix, t, cols, rows, ones) snprintf(n, sizeof n, "blk.%d.%s", l, suffix); ADD(n, t, cols, rows, ones)
        L("attn_norm.weight", ECH_TYPE_F32, s.dim, 1, 1);
        L("attn_q.weight", base, s.dim, s.dim, 0);
        L("attn_k.weight", base, s.dim, kv, 0);
        L("attn_v.weight", hi, s.dim, kv, 0);
        L("attn_output.weight", base, s.dim, s.dim, 0);
        L("ffn_norm.weight", ECH_TYPE_F32, s.dim, 1, 1);
        L("ffn_gate.weight", base, s.dim, s.ffn, 0);
        L("ffn_up.weight", base, s.dim, s.ffn, 0);
        L("ffn_down.weight", hi, s.ffn, s.dim, 0);
#undef L
    }
    int rc = ech_gguf_writer_write_file(w, out, &err) == ECH_OK ? 0 : 1;
    if (rc)
        fprintf(stderr, "mkmodel: %s\n", err.msg);
    for (size_t i = 0; i < nb; i++)
        free(bufs[i]);
    free(bufs);
    ech_gguf_writer_free(w);
    ech_gguf_close(vg);
    return rc;
}
