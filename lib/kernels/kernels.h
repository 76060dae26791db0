/* kernels.h - the numeric kernels every forward pass is built from.
 *
 * Weights stay in their GGUF block format.  A matrix product W x multiplies
 * each weight row with the activations after the activations were converted
 * to the weight type's "dot type" (the way llama.cpp does it, so results
 * agree with it): Q4_0/Q5_0/Q8_0/IQ4_NL weights dot Q8_0 activations,
 * Q4_1/Q5_1 dot Q8_1, the K-quants dot Q8_K, F16 dots F16, BF16 dots BF16 and
 * F32 dots F32.
 *
 * Every type has a scalar reference implementation; SIMD variants (AVX2+FMA,
 * AVX-512 with VNNI) are picked at run time from CPUID, so one binary runs
 * on any x86-64.  ech_kernels_use() forces a level, for tests and benchmarks.
 * A SIMD dot product sums the integer products of each block exactly, as the
 * reference does, and differs from it only in float rounding and summation
 * order: |simd - ref| <= 1e-5 * sum |w_i * a_i| (tests/unit/t-kernels.c).
 */
#ifndef ECH_KERNELS_KERNELS_H
#define ECH_KERNELS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "gguf/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ech_isa {
    ECH_ISA_SCALAR = 0,
    ECH_ISA_AVX2 = 1,      /* AVX2 + FMA + F16C */
    ECH_ISA_AVX512 = 2,    /* AVX-512 F/BW/VL/DQ + VNNI + VBMI (Ice Lake, Zen 4
                              and later); older AVX-512 CPUs use ECH_ISA_AVX2 */
} ech_isa;

/* The best level this CPU supports. */
ech_isa ech_isa_detect(void);
/* Use `isa` (capped at what the CPU supports) from now on; returns the level
 * actually in use.  Call before other threads use the kernels. */
ech_isa ech_kernels_use(ech_isa isa);
ech_isa ech_kernels_isa(void);
const char *ech_isa_name(ech_isa isa);

/* Row conversion: n is a multiple of the type's block size. */
typedef void (*ech_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*ech_from_float_fn)(const float *src, void *dst, int64_t n);
/* *s = dot(w[0..n), a[0..n)), w in the weight type, a in its dot type. */
typedef void (*ech_vec_dot_fn)(int64_t n, float *s, const void *w, const void *a);

typedef struct ech_type_kernels {
    ech_type dot_type;           /* what activations are converted to */
    ech_to_float_fn to_float;    /* dequantize a row of this type */
    ech_from_float_fn from_float;/* quantize a row into this type (NULL if none) */
    ech_vec_dot_fn vec_dot;      /* row of this type . row of dot_type */
} ech_type_kernels;

/* The kernels for type `t` at the current ISA level, or NULL if the type is
 * not supported.  The activation-only types Q8_1 and Q8_K have conversions
 * but no vec_dot.  from_float of the activation types (Q8_0, Q8_1, Q8_K, F16,
 * BF16) rounds exactly as llama.cpp's x86 build rounds activations before a
 * matrix product (Q8_0/Q8_1: scale amax/127, quants rint(x * 127/amax) with
 * ties to even; Q8_K: scale -max/127 of the signed largest value; F16, BF16:
 * round to nearest even); it gives the same bytes at every ISA level.
 * from_float of the other weight types (Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K,
 * IQ4_NL) is the weight quantiser of ech_quantizer_for. */
const ech_type_kernels *ech_kernels_for(ech_type t);
/* The scalar reference kernels, whatever the ISA level. */
const ech_type_kernels *ech_kernels_ref(ech_type t);

/* Quantise a row of weights as llama-quantize does without an importance
 * matrix (its *_ref functions; for IQ4_NL its quantize_iq4_nl, which tries
 * more scales than quantize_row_iq4_nl_ref).  It differs from from_float
 * only for Q8_0, whose file quantiser rounds with roundf(x / d).  NULL for
 * the activation-only types (Q8_1, Q8_K) and unsupported ones. */
ech_from_float_fn ech_quantizer_for(ech_type t);

/* Bytes of scratch ech_matmul needs for `n_tok` activation rows of `cols`
 * against weights of type `wt` (at any ISA level; no alignment needed). */
size_t ech_matmul_scratch(ech_type wt, int64_t cols, int64_t n_tok);

/* y[t*rows + r] = sum_k W[r][k] * x[t*cols + k] for r < rows, t < n_tok.
 * W is `rows` rows of `cols` elements of type `wt`, each row
 * ech_type_nbytes(wt, cols) bytes, rows contiguous (GGUF layout: ne0 = cols).
 * `scratch` holds ech_matmul_scratch() bytes.  Runs on the OpenMP threads of
 * the enclosing parallel region if there is one (then every thread of the
 * team must call it, with the same arguments: it shares the work with
 * worksharing loops and ends with a barrier), else on `n_threads` (<= 0: the
 * OpenMP default).  Results do not depend on the number of threads.  For a
 * type without a vec_dot (see ech_kernels_for) it does nothing. */
void ech_matmul(const void *W, ech_type wt, int64_t rows, int64_t cols,
                const float *x, int64_t n_tok, float *y, void *scratch, int n_threads);

/* y[i] = W[i] x for n_mat <= ECH_MATMUL_MANY matrices of one type and width
 * that read the same input (q, k and v; gate and up): the input is converted
 * once and a decode step runs all of them in one meeting of the threads
 * instead of one each.  Called outside a parallel region.  Same results as
 * ech_matmul on each. */
#define ECH_MATMUL_MANY 3
void ech_matmul_many(int n_mat, const void *const *W, ech_type wt, const int64_t *rows, int64_t cols,
                     const float *x, int64_t n_tok, float *const *y, void *scratch, int n_threads);

/* The same on the calling thread alone (inside a parallel region or not),
 * with rows `row_stride` bytes apart (at least a row's bytes): for small
 * products run side by side, such as attention over one kv head's window of
 * the cache.  Same results as ech_matmul. */
void ech_matmul_local(const void *W, ech_type wt, int64_t rows, int64_t cols, size_t row_stride,
                      const float *x, int64_t n_tok, float *y, void *scratch);

/* Half-precision helpers. */
float ech_fp16_to_fp32(uint16_t h);
uint16_t ech_fp32_to_fp16(float f);
float ech_bf16_to_fp32(uint16_t h);
uint16_t ech_fp32_to_bf16(float f);   /* round to nearest even, as ggml does */

#ifdef __cplusplus
}
#endif
#endif
