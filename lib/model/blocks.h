/* blocks.h - the pieces every forward pass is assembled from.
 *
 * Each works on `n` rows (tokens) at once.  Numerics follow llama.cpp where
 * it matters for agreement: RMS norm sums squares in double, softmax sums in
 * double, GELU goes through an F16 lookup table, RoPE angles advance by
 * repeated multiplication.
 */
#ifndef ECH_MODEL_BLOCKS_H
#define ECH_MODEL_BLOCKS_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out[i] = x[i] / rms(x) * w[i] over rows of `dim`; out may be x. w may be NULL. */
void ech_rmsnorm(float *out, const float *x, const float *w, int64_t dim, int64_t n, float eps);

/* LayerNorm over rows of `dim`: (x - mean) / sqrt(var + eps) * w + b, the
 * sums in double as llama.cpp's ggml_norm takes them; out may be x. */
void ech_layernorm(float *out, const float *x, const float *w, const float *b, int64_t dim, int64_t n, float eps);

/* Rotate the first n_rot dims of each of n_heads heads (head_dim apart) of
 * one token at position `pos`.  `freq_factors` (n_rot/2, may be NULL)
 * divide the frequencies (Llama 3 scaling). */
void ech_rope(float *x, int n_heads, int head_dim, int n_rot, int32_t pos, float base,
              float freq_scale, const float *freq_factors, bool neox);

/* gate[i] = silu(gate[i]) * up[i] over `rows` rows of n. */
void ech_swiglu(float *gate, const float *up, int64_t n, int64_t rows);
/* gate[i] = gelu_tanh(gate[i]) * up[i], GELU through llama.cpp's F16 table. */
void ech_geglu(float *gate, const float *up, int64_t n);

/* x[i] = gelu_tanh(x[i]) through the same F16 table. */
void ech_gelu(float *x, int64_t n);

/* In-place softmax of x[0..n): max-subtracted, exp as llama.cpp's vector
 * code computes it, sums per 16 in its order, accumulated in double. */
void ech_softmax(float *x, int64_t n);

/* log(sum(exp(x[0..n)))), max-subtracted; x is not changed.  The sampler's
 * log-probabilities over the whole vocabulary, every token. */
double ech_log_sum_exp(const float *x, int64_t n);

/* x[i] += y[i] */
void ech_add(float *x, const float *y, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
