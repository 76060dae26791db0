/* fp16.c - IEEE half and bfloat16 conversions in portable C.
 *
 * Bit-exact with F16C's vcvtph2ps / vcvtps2ph (round to nearest even) so the
 * scalar and SIMD paths round activations identically, as ggml does.
 */
#include "config.h"

#include <string.h>

#include "kernels/fp16.h"
#include "kernels/kernels.h"

static inline uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float ech_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    if (exp == 0x1F)                      /* inf / nan: keep the payload */
        return u2f(sign | 0x7F800000u | (man << 13));
    if (exp == 0) {                       /* zero or subnormal: man * 2^-24 exactly */
        float v = (float)man * u2f(0x33800000u);
        return u2f(sign | f2u(v));
    }
    return u2f(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t ech_fp32_to_fp16(float f)
{
    uint32_t u = f2u(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u)                  /* nan: quiet it, keep the top payload bits */
        return (uint16_t)(sign | 0x7E00 | ((a >> 13) & 0x3FF));
    if (a >= 0x477FF000u)                 /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7C00);
    if (a < 0x38800000u) {                /* below the smallest normal half: subnormal */
        /* adding 0.5 (2^-1) aligns the ulp of the sum to 2^-24 so the FPU rounds
         * to nearest even for us */
        float v = u2f(a) + 0.5f;
        return (uint16_t)(sign | (uint16_t)(f2u(v) - f2u(0.5f)));
    }
    /* normal: rebias and round the 13 dropped bits to nearest even */
    uint32_t r = a + 0xC8000FFFu + ((a >> 13) & 1);   /* 0xC8000000 = -(112 << 23) */
    return (uint16_t)(sign | (r >> 13));
}

float ech_bf16_to_fp32(uint16_t h)
{
    return u2f((uint32_t)h << 16);
}

uint16_t ech_fp32_to_bf16(float f)
{
    uint32_t u = f2u(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)  /* nan: force a quiet nan */
        return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
}

void ech_fp16_row_to_fp32(const uint16_t *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = ech_fp16_to_fp32(src[i]);
}

void ech_fp32_row_to_fp16(const float *src, uint16_t *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = ech_fp32_to_fp16(src[i]);
}

void ech_bf16_row_to_fp32(const uint16_t *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = ech_bf16_to_fp32(src[i]);
}

void ech_fp32_row_to_bf16(const float *src, uint16_t *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = ech_fp32_to_bf16(src[i]);
}
