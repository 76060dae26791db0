/* fp16.h - half and bfloat16 conversions of whole rows (internal).
 *
 * The scalar helpers are declared in kernels.h.  The row versions here are
 * the portable ones; avx2.c has F16C/AVX-512 row versions with identical
 * results (IEEE round to nearest even in both directions).
 */
#ifndef ECH_KERNELS_FP16_H
#define ECH_KERNELS_FP16_H

#include <stdint.h>

void ech_fp16_row_to_fp32(const uint16_t *src, float *dst, int64_t n);
void ech_fp32_row_to_fp16(const float *src, uint16_t *dst, int64_t n);
void ech_bf16_row_to_fp32(const uint16_t *src, float *dst, int64_t n);
void ech_fp32_row_to_bf16(const float *src, uint16_t *dst, int64_t n);

#endif
