/* ref.h - the scalar reference kernels (internal).
 *
 * These define what every SIMD kernel must compute.  They follow the
 * arithmetic of ggml's reference code: integer products summed exactly per
 * block, then scaled in float.  Activation quantisers reproduce what llama.cpp
 * does at inference time on x86 (see ref.c), weight quantisers what
 * llama-quantize writes without an importance matrix.
 */
#ifndef ECH_KERNELS_REF_H
#define ECH_KERNELS_REF_H

#include <stdint.h>

#include "kernels/kernels.h"

#define ECH_REF_DECL(T)                                                       \
    void ech_ref_to_float_##T(const void *src, float *dst, int64_t n);        \
    void ech_ref_vec_dot_##T(int64_t n, float *s, const void *w, const void *a);

ECH_REF_DECL(f32)
ECH_REF_DECL(f16)
ECH_REF_DECL(bf16)
ECH_REF_DECL(q4_0)
ECH_REF_DECL(q4_1)
ECH_REF_DECL(q5_0)
ECH_REF_DECL(q5_1)
ECH_REF_DECL(q8_0)
ECH_REF_DECL(q2_K)
ECH_REF_DECL(q3_K)
ECH_REF_DECL(q4_K)
ECH_REF_DECL(q5_K)
ECH_REF_DECL(q6_K)
ECH_REF_DECL(iq4_nl)
#undef ECH_REF_DECL

void ech_ref_to_float_q8_1(const void *src, float *dst, int64_t n);
void ech_ref_to_float_q8_K(const void *src, float *dst, int64_t n);

/* Activation quantisers (what matmul converts activations with). */
void ech_ref_from_float_f32(const float *src, void *dst, int64_t n);
void ech_ref_from_float_f16(const float *src, void *dst, int64_t n);
void ech_ref_from_float_bf16(const float *src, void *dst, int64_t n);
void ech_ref_from_float_q8_0(const float *src, void *dst, int64_t n);
void ech_ref_from_float_q8_1(const float *src, void *dst, int64_t n);
void ech_ref_from_float_q8_K(const float *src, void *dst, int64_t n);

/* Weight quantisers (llama-quantize's reference rounding). */
void ech_ref_quantize_q4_0(const float *src, void *dst, int64_t n);
void ech_ref_quantize_q4_1(const float *src, void *dst, int64_t n);
void ech_ref_quantize_q5_0(const float *src, void *dst, int64_t n);
void ech_ref_quantize_q5_1(const float *src, void *dst, int64_t n);
void ech_ref_quantize_q8_0(const float *src, void *dst, int64_t n);
void ech_ref_quantize_q4_K(const float *src, void *dst, int64_t n);
void ech_ref_quantize_q5_K(const float *src, void *dst, int64_t n);
void ech_ref_quantize_q6_K(const float *src, void *dst, int64_t n);
void ech_ref_quantize_q2_K(const float *src, void *dst, int64_t n);
void ech_ref_quantize_q3_K(const float *src, void *dst, int64_t n);
void ech_ref_quantize_iq4_nl(const float *src, void *dst, int64_t n);

#endif
