/* ref.c - scalar reference kernels for every supported type.
 *
 * Dot products sum integer products exactly within a block and scale the
 * block's integer sum by d_w * d_a in float (K-quants: per super-block), so
 * SIMD kernels that keep per-block integer sums exact differ from these only
 * in the order of float additions.  Float types accumulate in double here.
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels/fp16.h"
#include "kernels/quants.h"
#include "kernels/ref.h"

#define H2F(h) ech_fp16_to_fp32(h)
#define F2H(f) ech_fp32_to_fp16(f)

const int8_t ech_iq4nl_values[16] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

/* Round to nearest, ties to even, for |x| < 2^22: adding 1.5 * 2^23 leaves
 * an ulp of exactly 1, so the FPU's own rounding does the work.  (ggml's K
 * quantisers round this way; roundf would round ties away from zero.) */
static inline int round_even(float x)
{
    float v = x + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007FFFFF) - 0x00400000;
}

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* ---- plain float types ------------------------------------------------- */

void ech_ref_to_float_f32(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void ech_ref_to_float_f16(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = ech_fp16_to_fp32(h);
    }
}

void ech_ref_to_float_bf16(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = ech_bf16_to_fp32(h);
    }
}

void ech_ref_from_float_f32(const float *src, void *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void ech_ref_from_float_f16(const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = ech_fp32_to_fp16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

void ech_ref_from_float_bf16(const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = ech_fp32_to_bf16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

void ech_ref_vec_dot_f32(int64_t n, float *s, const void *w, const void *a)
{
    const uint8_t *pw = w, *pa = a;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        float x, y;
        memcpy(&x, pw + 4 * i, 4);
        memcpy(&y, pa + 4 * i, 4);
        sum += (double)x * y;
    }
    *s = (float)sum;
}

/* Products of two halves (or two bfloats) are exact in float. */
void ech_ref_vec_dot_f16(int64_t n, float *s, const void *w, const void *a)
{
    const uint8_t *pw = w, *pa = a;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t x, y;
        memcpy(&x, pw + 2 * i, 2);
        memcpy(&y, pa + 2 * i, 2);
        sum += ech_fp16_to_fp32(x) * ech_fp16_to_fp32(y);
    }
    *s = (float)sum;
}

void ech_ref_vec_dot_bf16(int64_t n, float *s, const void *w, const void *a)
{
    const uint8_t *pw = w, *pa = a;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t x, y;
        memcpy(&x, pw + 2 * i, 2);
        memcpy(&y, pa + 2 * i, 2);
        sum += ech_bf16_to_fp32(x) * ech_bf16_to_fp32(y);
    }
    *s = (float)sum;
}

/* ---- activation types: Q8_0, Q8_1, Q8_K ---------------------------------- */

/* llama.cpp quantises activations to Q8_0/Q8_1 with its x86 SIMD code, not
 * with quantize_row_q8_0_ref: the scale's inverse is 127/amax (not 1/d) and
 * rounding is to nearest even (not roundf).  Both can change a quant, so we
 * do what the x86 build does, at every ISA level. */
static float q8_block(const float *x, int8_t *q, int *sum)
{
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int s = 0;
    for (int j = 0; j < 32; j++) {
        q[j] = (int8_t)round_even(x[j] * id);
        s += q[j];
    }
    *sum = s;
    return d;
}

void ech_ref_from_float_q8_0(const float *src, void *dst, int64_t n)
{
    ech_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        int sum;
        y[i].d = F2H(q8_block(src + 32 * i, y[i].qs, &sum));
    }
}

void ech_ref_from_float_q8_1(const float *src, void *dst, int64_t n)
{
    ech_block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        int sum;
        float d = q8_block(src + 32 * i, y[i].qs, &sum);
        y[i].d = F2H(d);
        y[i].s = F2H(d * (float)sum);
    }
}

/* Q8_K: the scale comes from the signed value of largest magnitude (-127/max),
 * as in ggml's quantize_row_q8_K_ref, which x86 builds use as is. */
void ech_ref_from_float_q8_K(const float *src, void *dst, int64_t n)
{
    ech_block_q8_K *y = dst;
    for (int64_t i = 0; i < n / 256; i++) {
        const float *x = src + 256 * i;
        float amax = 0, max = 0;
        for (int j = 0; j < 256; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < 256; j++)
            y[i].qs[j] = (int8_t)imin(127, round_even(iscale * x[j]));
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++)
                s += y[i].qs[16 * g + j];
            y[i].bsums[g] = (int16_t)s;
        }
        y[i].d = 1 / iscale;
    }
}

void ech_ref_to_float_q8_0(const void *src, float *dst, int64_t n)
{
    const ech_block_q8_0 *x = src;
    for (int64_t i = 0; i < n / 32; i++) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < 32; j++)
            dst[32 * i + j] = x[i].qs[j] * d;
    }
}

void ech_ref_to_float_q8_1(const void *src, float *dst, int64_t n)
{
    const ech_block_q8_1 *x = src;
    for (int64_t i = 0; i < n / 32; i++) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < 32; j++)
            dst[32 * i + j] = x[i].qs[j] * d;
    }
}

void ech_ref_to_float_q8_K(const void *src, float *dst, int64_t n)
{
    const ech_block_q8_K *x = src;
    for (int64_t i = 0; i < n / 256; i++)
        for (int j = 0; j < 256; j++)
            dst[256 * i + j] = x[i].d * x[i].qs[j];
}

/* ---- 32-element block types --------------------------------------------- */

/* The 32 quants of a small block, as stored (no offset applied).  In all of
 * them byte j holds element j in its low nibble and element j+16 in its high
 * nibble; the 5-bit types keep bit 4 of element j in bit j of qh. */
static inline void nibbles(const uint8_t *qs, uint8_t q[32])
{
    for (int j = 0; j < 16; j++) {
        q[j] = qs[j] & 0xF;
        q[j + 16] = qs[j] >> 4;
    }
}

static inline void nibbles5(const uint8_t *qs, const uint8_t qh4[4], uint8_t q[32])
{
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    nibbles(qs, q);
    for (int j = 0; j < 32; j++)
        q[j] |= (uint8_t)(((qh >> j) & 1) << 4);
}

void ech_ref_to_float_q4_0(const void *src, float *dst, int64_t n)
{
    const ech_block_q4_0 *x = src;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8_t q[32];
        nibbles(x[i].qs, q);
        const float d = H2F(x[i].d);
        for (int j = 0; j < 32; j++)
            dst[32 * i + j] = (q[j] - 8) * d;
    }
}

void ech_ref_to_float_q4_1(const void *src, float *dst, int64_t n)
{
    const ech_block_q4_1 *x = src;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8_t q[32];
        nibbles(x[i].qs, q);
        const float d = H2F(x[i].d), m = H2F(x[i].m);
        for (int j = 0; j < 32; j++)
            dst[32 * i + j] = q[j] * d + m;
    }
}

void ech_ref_to_float_q5_0(const void *src, float *dst, int64_t n)
{
    const ech_block_q5_0 *x = src;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8_t q[32];
        nibbles5(x[i].qs, x[i].qh, q);
        const float d = H2F(x[i].d);
        for (int j = 0; j < 32; j++)
            dst[32 * i + j] = (q[j] - 16) * d;
    }
}

void ech_ref_to_float_q5_1(const void *src, float *dst, int64_t n)
{
    const ech_block_q5_1 *x = src;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8_t q[32];
        nibbles5(x[i].qs, x[i].qh, q);
        const float d = H2F(x[i].d), m = H2F(x[i].m);
        for (int j = 0; j < 32; j++)
            dst[32 * i + j] = q[j] * d + m;
    }
}

void ech_ref_to_float_iq4_nl(const void *src, float *dst, int64_t n)
{
    const ech_block_iq4_nl *x = src;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8_t q[32];
        nibbles(x[i].qs, q);
        const float d = H2F(x[i].d);
        for (int j = 0; j < 32; j++)
            dst[32 * i + j] = ech_iq4nl_values[q[j]] * d;
    }
}

static inline int dot32_u8(const uint8_t *q, int off, const int8_t *a)
{
    int s = 0;
    for (int j = 0; j < 32; j++)
        s += (q[j] - off) * a[j];
    return s;
}

void ech_ref_vec_dot_q4_0(int64_t n, float *s, const void *w, const void *a)
{
    const ech_block_q4_0 *x = w;
    const ech_block_q8_0 *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8_t q[32];
        nibbles(x[i].qs, q);
        sum += (H2F(x[i].d) * H2F(y[i].d)) * (float)dot32_u8(q, 8, y[i].qs);
    }
    *s = sum;
}

void ech_ref_vec_dot_q4_1(int64_t n, float *s, const void *w, const void *a)
{
    const ech_block_q4_1 *x = w;
    const ech_block_q8_1 *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8_t q[32];
        nibbles(x[i].qs, q);
        sum += (H2F(x[i].d) * H2F(y[i].d)) * (float)dot32_u8(q, 0, y[i].qs) + H2F(x[i].m) * H2F(y[i].s);
    }
    *s = sum;
}

void ech_ref_vec_dot_q5_0(int64_t n, float *s, const void *w, const void *a)
{
    const ech_block_q5_0 *x = w;
    const ech_block_q8_0 *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8_t q[32];
        nibbles5(x[i].qs, x[i].qh, q);
        sum += (H2F(x[i].d) * H2F(y[i].d)) * (float)dot32_u8(q, 16, y[i].qs);
    }
    *s = sum;
}

void ech_ref_vec_dot_q5_1(int64_t n, float *s, const void *w, const void *a)
{
    const ech_block_q5_1 *x = w;
    const ech_block_q8_1 *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8_t q[32];
        nibbles5(x[i].qs, x[i].qh, q);
        sum += (H2F(x[i].d) * H2F(y[i].d)) * (float)dot32_u8(q, 0, y[i].qs) + H2F(x[i].m) * H2F(y[i].s);
    }
    *s = sum;
}

void ech_ref_vec_dot_q8_0(int64_t n, float *s, const void *w, const void *a)
{
    const ech_block_q8_0 *x = w;
    const ech_block_q8_0 *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int si = 0;
        for (int j = 0; j < 32; j++)
            si += x[i].qs[j] * y[i].qs[j];
        sum += (H2F(x[i].d) * H2F(y[i].d)) * (float)si;
    }
    *s = sum;
}

void ech_ref_vec_dot_iq4_nl(int64_t n, float *s, const void *w, const void *a)
{
    const ech_block_iq4_nl *x = w;
    const ech_block_q8_0 *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8_t q[32];
        nibbles(x[i].qs, q);
        int si = 0;
        for (int j = 0; j < 32; j++)
            si += ech_iq4nl_values[q[j]] * y[i].qs[j];
        sum += (H2F(x[i].d) * H2F(y[i].d)) * (float)si;
    }
    *s = sum;
}

/* ---- K-quants -------------------------------------------------------------
 * Each block is unpacked to 256 small integers plus integer scales (and mins)
 * per sub-block; to_float and vec_dot share the unpacking. */

/* q: 0..3; sc, mn: per 16 */
static void unpack_q2_K(const ech_block_q2_K *b, int8_t q[256], int sc[16], int mn[16])
{
    for (int e = 0; e < 256; e++) {
        int c = e / 128, j = (e % 128) / 32, l = e % 32;
        q[e] = (int8_t)((b->qs[32 * c + l] >> (2 * j)) & 3);
    }
    for (int s = 0; s < 16; s++) {
        sc[s] = b->scales[s] & 0xF;
        mn[s] = b->scales[s] >> 4;
    }
}

/* q: -4..3; sc: -32..31 per 16 */
static void unpack_q3_K(const ech_block_q3_K *b, int8_t q[256], int sc[16])
{
    for (int e = 0; e < 256; e++) {
        int c = e / 128, j = (e % 128) / 32, l = e % 32;
        int lo = (b->qs[32 * c + l] >> (2 * j)) & 3;
        q[e] = (int8_t)(lo - ((b->hmask[l] >> (4 * c + j)) & 1 ? 0 : 4));
    }
    int8_t s8[16];
    ech_q3k_scales(b->scales, s8);
    for (int s = 0; s < 16; s++)
        sc[s] = s8[s];
}

/* q: 0..15 (Q4_K) or 0..31 (Q5_K, qh != NULL); sc, mn: per 32 */
static void unpack_q45_K(const uint8_t *scales, const uint8_t *qs, const uint8_t *qh, int8_t q[256],
                         int sc[8], int mn[8])
{
    for (int e = 0; e < 256; e++) {
        int c = e / 64, hi = (e % 64) / 32, l = e % 32;
        int v = hi ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 0xF;
        if (qh)
            v |= ((qh[l] >> (2 * c + hi)) & 1) << 4;
        q[e] = (int8_t)v;
    }
    for (int s = 0; s < 8; s++) {
        uint8_t a, m;
        ech_k4_scale_min(s, scales, &a, &m);
        sc[s] = a;
        mn[s] = m;
    }
}

/* q: -32..31; sc per 16 */
static void unpack_q6_K(const ech_block_q6_K *b, int8_t q[256], int sc[16])
{
    for (int e = 0; e < 256; e++) {
        int c = e / 128, k = (e % 128) / 32, l = e % 32;
        int lo = b->ql[64 * c + l + 32 * (k & 1)];
        lo = k < 2 ? lo & 0xF : lo >> 4;
        int hi = (b->qh[32 * c + l] >> (2 * k)) & 3;
        q[e] = (int8_t)((lo | (hi << 4)) - 32);
    }
    for (int s = 0; s < 16; s++)
        sc[s] = b->scales[s];
}

void ech_ref_to_float_q2_K(const void *src, float *dst, int64_t n)
{
    const ech_block_q2_K *x = src;
    for (int64_t i = 0; i < n / 256; i++) {
        int8_t q[256];
        int sc[16], mn[16];
        unpack_q2_K(&x[i], q, sc, mn);
        const float d = H2F(x[i].d), dmin = H2F(x[i].dmin);
        for (int e = 0; e < 256; e++)
            dst[256 * i + e] = d * sc[e / 16] * q[e] - dmin * mn[e / 16];
    }
}

void ech_ref_to_float_q3_K(const void *src, float *dst, int64_t n)
{
    const ech_block_q3_K *x = src;
    for (int64_t i = 0; i < n / 256; i++) {
        int8_t q[256];
        int sc[16];
        unpack_q3_K(&x[i], q, sc);
        const float d = H2F(x[i].d);
        for (int e = 0; e < 256; e++)
            dst[256 * i + e] = d * sc[e / 16] * q[e];
    }
}

void ech_ref_to_float_q4_K(const void *src, float *dst, int64_t n)
{
    const ech_block_q4_K *x = src;
    for (int64_t i = 0; i < n / 256; i++) {
        int8_t q[256];
        int sc[8], mn[8];
        unpack_q45_K(x[i].scales, x[i].qs, NULL, q, sc, mn);
        const float d = H2F(x[i].d), dmin = H2F(x[i].dmin);
        for (int e = 0; e < 256; e++)
            dst[256 * i + e] = d * sc[e / 32] * q[e] - dmin * mn[e / 32];
    }
}

void ech_ref_to_float_q5_K(const void *src, float *dst, int64_t n)
{
    const ech_block_q5_K *x = src;
    for (int64_t i = 0; i < n / 256; i++) {
        int8_t q[256];
        int sc[8], mn[8];
        unpack_q45_K(x[i].scales, x[i].qs, x[i].qh, q, sc, mn);
        const float d = H2F(x[i].d), dmin = H2F(x[i].dmin);
        for (int e = 0; e < 256; e++)
            dst[256 * i + e] = d * sc[e / 32] * q[e] - dmin * mn[e / 32];
    }
}

void ech_ref_to_float_q6_K(const void *src, float *dst, int64_t n)
{
    const ech_block_q6_K *x = src;
    for (int64_t i = 0; i < n / 256; i++) {
        int8_t q[256];
        int sc[16];
        unpack_q6_K(&x[i], q, sc);
        const float d = H2F(x[i].d);
        for (int e = 0; e < 256; e++)
            dst[256 * i + e] = d * sc[e / 16] * q[e];
    }
}

/* sum over sub-blocks of `len` elements: sc[s] * sum(q * a) */
static inline int kdot(const int8_t *q, const int8_t *a, const int *sc, int len)
{
    int total = 0;
    for (int s = 0; s < 256 / len; s++) {
        int si = 0;
        for (int j = 0; j < len; j++)
            si += q[len * s + j] * a[len * s + j];
        total += sc[s] * si;
    }
    return total;
}

void ech_ref_vec_dot_q2_K(int64_t n, float *s, const void *w, const void *a)
{
    const ech_block_q2_K *x = w;
    const ech_block_q8_K *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        int8_t q[256];
        int sc[16], mn[16];
        unpack_q2_K(&x[i], q, sc, mn);
        int summ = 0;
        for (int g = 0; g < 16; g++)
            summ += mn[g] * y[i].bsums[g];
        sum += y[i].d * H2F(x[i].d) * (float)kdot(q, y[i].qs, sc, 16) - y[i].d * H2F(x[i].dmin) * (float)summ;
    }
    *s = sum;
}

void ech_ref_vec_dot_q3_K(int64_t n, float *s, const void *w, const void *a)
{
    const ech_block_q3_K *x = w;
    const ech_block_q8_K *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        int8_t q[256];
        int sc[16];
        unpack_q3_K(&x[i], q, sc);
        sum += y[i].d * H2F(x[i].d) * (float)kdot(q, y[i].qs, sc, 16);
    }
    *s = sum;
}

static float dot_q45_K(const int8_t *q, const int sc[8], const int mn[8], uint16_t d, uint16_t dmin,
                       const ech_block_q8_K *y)
{
    int summ = 0;
    for (int g = 0; g < 8; g++)
        summ += mn[g] * (y->bsums[2 * g] + y->bsums[2 * g + 1]);
    return y->d * H2F(d) * (float)kdot(q, y->qs, sc, 32) - y->d * H2F(dmin) * (float)summ;
}

void ech_ref_vec_dot_q4_K(int64_t n, float *s, const void *w, const void *a)
{
    const ech_block_q4_K *x = w;
    const ech_block_q8_K *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        int8_t q[256];
        int sc[8], mn[8];
        unpack_q45_K(x[i].scales, x[i].qs, NULL, q, sc, mn);
        sum += dot_q45_K(q, sc, mn, x[i].d, x[i].dmin, &y[i]);
    }
    *s = sum;
}

void ech_ref_vec_dot_q5_K(int64_t n, float *s, const void *w, const void *a)
{
    const ech_block_q5_K *x = w;
    const ech_block_q8_K *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        int8_t q[256];
        int sc[8], mn[8];
        unpack_q45_K(x[i].scales, x[i].qs, x[i].qh, q, sc, mn);
        sum += dot_q45_K(q, sc, mn, x[i].d, x[i].dmin, &y[i]);
    }
    *s = sum;
}

void ech_ref_vec_dot_q6_K(int64_t n, float *s, const void *w, const void *a)
{
    const ech_block_q6_K *x = w;
    const ech_block_q8_K *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        int8_t q[256];
        int sc[16];
        unpack_q6_K(&x[i], q, sc);
        sum += y[i].d * H2F(x[i].d) * (float)kdot(q, y[i].qs, sc, 16);
    }
    *s = sum;
}

/* ---- weight quantisers -------------------------------------------------
 * The rounding of llama-quantize without an importance matrix, so files we
 * write match its output. */

void ech_ref_quantize_q8_0(const float *src, void *dst, int64_t n)
{
    ech_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        const float *x = src + 32 * i;
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        for (int j = 0; j < 32; j++)
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

/* The signed value of largest magnitude (the first one on ties). */
static float signed_absmax(const float *x, int n)
{
    float amax = 0, max = 0;
    for (int j = 0; j < n; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    return max;
}

static void pack_nibbles(const uint8_t q[32], uint8_t qs[16])
{
    for (int j = 0; j < 16; j++)
        qs[j] = (uint8_t)(q[j] | (q[j + 16] << 4));
}

static void pack_fifth_bits(const uint8_t q[32], uint8_t qh4[4])
{
    uint32_t qh = 0;
    for (int j = 0; j < 32; j++)
        qh |= (uint32_t)((q[j] >> 4) & 1) << j;
    memcpy(qh4, &qh, 4);
}

/* The symmetric 4/5-bit types: d = max / -2^(bits-1), q = trunc(x/d + half + 0.5). */
static float quant_sym(const float *x, int bits, uint8_t q[32])
{
    const int half = 1 << (bits - 1), top = (1 << bits) - 1;
    const float d = signed_absmax(x, 32) / (float)-half;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; j++)
        q[j] = (uint8_t)imin(top, (int8_t)(x[j] * id + ((float)half + 0.5f)));
    return d;
}

/* The 4/5-bit types with a minimum: d = (max - min) / (2^bits - 1). */
static float quant_min(const float *x, int bits, uint8_t q[32], float *min_out)
{
    const int top = (1 << bits) - 1;
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
        min = fminf(min, x[j]);
        max = fmaxf(max, x[j]);
    }
    const float d = (max - min) / (float)top;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; j++)
        q[j] = (uint8_t)imin(top, (int8_t)((x[j] - min) * id + 0.5f));
    *min_out = min;
    return d;
}

void ech_ref_quantize_q4_0(const float *src, void *dst, int64_t n)
{
    ech_block_q4_0 *y = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8_t q[32];
        y[i].d = F2H(quant_sym(src + 32 * i, 4, q));
        pack_nibbles(q, y[i].qs);
    }
}

void ech_ref_quantize_q5_0(const float *src, void *dst, int64_t n)
{
    ech_block_q5_0 *y = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8_t q[32], lo[32];
        y[i].d = F2H(quant_sym(src + 32 * i, 5, q));
        for (int j = 0; j < 32; j++)
            lo[j] = q[j] & 0xF;
        pack_nibbles(lo, y[i].qs);
        pack_fifth_bits(q, y[i].qh);
    }
}

void ech_ref_quantize_q4_1(const float *src, void *dst, int64_t n)
{
    ech_block_q4_1 *y = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8_t q[32];
        float m;
        y[i].d = F2H(quant_min(src + 32 * i, 4, q, &m));
        y[i].m = F2H(m);
        pack_nibbles(q, y[i].qs);
    }
}

void ech_ref_quantize_q5_1(const float *src, void *dst, int64_t n)
{
    ech_block_q5_1 *y = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8_t q[32], lo[32];
        float m;
        y[i].d = F2H(quant_min(src + 32 * i, 5, q, &m));
        y[i].m = F2H(m);
        for (int j = 0; j < 32; j++)
            lo[j] = q[j] & 0xF;
        pack_nibbles(lo, y[i].qs);
        pack_fifth_bits(q, y[i].qh);
    }
}

/* Fit x ~ scale * L - min (L in 0..nmax, min >= 0) minimising the weighted
 * error (squared, or absolute with `abs_err`), trying nstep+1 scales around
 * the range-based one (ggml's make_qkx2_quants search; weighted least
 * squares for each candidate). */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min,
                           float rmin, float rdelta, int nstep, int abs_err)
{
    float min = x[0], max = x[0], sum_w = w[0], sum_x = w[0] * x[0];
    for (int i = 1; i < n; i++) {
        min = fminf(min, x[i]);
        max = fmaxf(max, x[i]);
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.0f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best = 0;
    for (int i = 0; i < n; i++) {
        int l = imax(0, imin(nmax, round_even(iscale * (x[i] - min))));
        L[i] = (uint8_t)l;
        float diff = scale * l + min - x[i];
        best += w[i] * (abs_err ? fabsf(diff) : diff * diff);
    }
    uint8_t Laux[32];
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = imax(0, imin(nmax, round_even(iscale * (x[i] - min))));
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float err = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                err += w[i] * (abs_err ? fabsf(diff) : diff * diff);
            }
            if (err < best) {
                memcpy(L, Laux, (size_t)n);
                best = err;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Q4_K and Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins. */
static void quantize_q45_K(const float *x, int nmax, float rmin, float rdelta, int nstep, uint16_t *dd,
                           uint16_t *dmin, uint8_t scales[12], uint8_t L[256])
{
    float sc[8], mn[8], w[32], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += xs[l] * xs[l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            w[l] = av_x + fabsf(xs[l]);
        sc[j] = fit_scale_min(32, nmax, xs, w, L + 32 * j, &mn[j], rmin, rdelta, nstep, 0);
        if (sc[j] > max_scale)
            max_scale = sc[j];
        if (mn[j] > max_min)
            max_min = mn[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(scales, 0, 12);
    for (int j = 0; j < 8; j++) {
        /* ggml stores the rounded value in a uint8_t before clamping */
        uint8_t ls = (uint8_t)imin(63, (uint8_t)round_even(inv_scale * sc[j]));
        uint8_t lm = (uint8_t)imin(63, (uint8_t)round_even(inv_min * mn[j]));
        if (j < 4) {
            scales[j] = ls;
            scales[j + 4] = lm;
        } else {
            scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *dd = F2H(max_scale / 63.f);
    *dmin = F2H(max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        ech_k4_scale_min(j, scales, &s, &m);
        const float d = H2F(*dd) * s;
        if (d == 0.0f)
            continue;
        const float dm = H2F(*dmin) * m;
        for (int l = 0; l < 32; l++)
            L[32 * j + l] = (uint8_t)imax(0, imin(nmax, round_even((x[32 * j + l] + dm) / d)));
    }
}

void ech_ref_quantize_q4_K(const float *src, void *dst, int64_t n)
{
    ech_block_q4_K *y = dst;
    for (int64_t i = 0; i < n / 256; i++) {
        uint8_t L[256];
        quantize_q45_K(src + 256 * i, 15, -1.f, 0.1f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                y[i].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
    }
}

void ech_ref_quantize_q5_K(const float *src, void *dst, int64_t n)
{
    ech_block_q5_K *y = dst;
    for (int64_t i = 0; i < n / 256; i++) {
        uint8_t L[256];
        quantize_q45_K(src + 256 * i, 31, -0.5f, 0.1f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        memset(y[i].qh, 0, 32);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
                y[i].qh[l] |= (uint8_t)(((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1)));
                y[i].qs[32 * c + l] = (uint8_t)((l1 & 0xF) | ((l2 & 0xF) << 4));
            }
    }
}

/* Signed scale search for Q6_K's 16-element groups (make_qx_quants with
 * weights x^2): L in 0..2*nmax-1 stores l + nmax. */
static float fit_scale_sym(int n, int nmax, const float *x, int8_t *L)
{
    float max = signed_absmax(x, n);
    if (fabsf(max) < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = imax(-nmax, imin(nmax - 1, round_even(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = imax(-nmax, imin(nmax - 1, round_even(iscale * x[i])));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, round_even(iscale * x[i]))));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

void ech_ref_quantize_q6_K(const float *src, void *dst, int64_t n)
{
    ech_block_q6_K *y = dst;
    for (int64_t i = 0; i < n / 256; i++) {
        const float *x = src + 256 * i;
        int8_t L[256];
        float scales[16], max_scale = 0, max_abs = 0;
        for (int g = 0; g < 16; g++) {
            scales[g] = fit_scale_sym(16, 32, x + 16 * g, L + 16 * g);
            if (fabsf(scales[g]) > max_abs) {
                max_abs = fabsf(scales[g]);
                max_scale = scales[g];
            }
        }
        memset(&y[i], 0, sizeof y[i]);
        if (max_abs < 1e-15f)
            continue;
        const float iscale = -128.f / max_scale;
        y[i].d = F2H(1 / iscale);
        for (int g = 0; g < 16; g++)
            y[i].scales[g] = (int8_t)imin(127, round_even(iscale * scales[g]));
        for (int g = 0; g < 16; g++) {
            const float d = H2F(y[i].d) * y[i].scales[g];
            if (d == 0.0f)
                continue;
            for (int l = 0; l < 16; l++)
                L[16 * g + l] = (int8_t)(imax(-32, imin(31, round_even(x[16 * g + l] / d))) + 32);
        }
        for (int c = 0; c < 2; c++)
            for (int l = 0; l < 32; l++) {
                const int8_t *Lc = L + 128 * c;
                y[i].ql[64 * c + l] = (uint8_t)((Lc[l] & 0xF) | ((Lc[l + 64] & 0xF) << 4));
                y[i].ql[64 * c + l + 32] = (uint8_t)((Lc[l + 32] & 0xF) | ((Lc[l + 96] & 0xF) << 4));
                y[i].qh[32 * c + l] = (uint8_t)((Lc[l] >> 4) | ((Lc[l + 32] >> 4) << 2) |
                                                ((Lc[l + 64] >> 4) << 4) | ((Lc[l + 96] >> 4) << 6));
            }
    }
}

/* Pack 256 2-bit values: element 128c + 32j + l goes to bits 2j of
 * qs[32c + l] (the layout unpack_q2_K/unpack_q3_K read). */
static void pack_2bit(const uint8_t L[256], uint8_t qs[64])
{
    for (int c = 0; c < 2; c++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *Lc = L + 128 * c + l;
            qs[32 * c + l] = (uint8_t)(Lc[0] | (Lc[32] << 2) | (Lc[64] << 4) | (Lc[96] << 6));
        }
}

/* Q2_K: 16 groups of 16, each fitted as scale * L - min with L in 0..3 and
 * absolute error weighted by |x| (make_qkx2_quants with use_mad); scales
 * and mins are then quantised to 4 bits against the largest of each. */
void ech_ref_quantize_q2_K(const float *src, void *dst, int64_t n)
{
    ech_block_q2_K *y = dst;
    for (int64_t i = 0; i < n / 256; i++) {
        const float *x = src + 256 * i;
        uint8_t L[256];
        float sc[16], mn[16], w[16], max_scale = 0, max_min = 0;
        for (int g = 0; g < 16; g++) {
            for (int l = 0; l < 16; l++)
                w[l] = fabsf(x[16 * g + l]);
            sc[g] = fit_scale_min(16, 3, x + 16 * g, w, L + 16 * g, &mn[g], -0.5f, 0.1f, 15, 1);
            max_scale = fmaxf(max_scale, sc[g]);
            max_min = fmaxf(max_min, mn[g]);
        }
        memset(y[i].scales, 0, sizeof y[i].scales);
        y[i].d = F2H(0.f);
        y[i].dmin = F2H(0.f);
        if (max_scale > 0) {
            const float iscale = 15.f / max_scale;
            for (int g = 0; g < 16; g++)
                y[i].scales[g] = (uint8_t)round_even(iscale * sc[g]);
            y[i].d = F2H(max_scale / 15.f);
        }
        if (max_min > 0) {
            const float iscale = 15.f / max_min;
            for (int g = 0; g < 16; g++)
                y[i].scales[g] |= (uint8_t)(round_even(iscale * mn[g]) << 4);
            y[i].dmin = F2H(max_min / 15.f);
        }
        /* requantise each group against its stored scale and min */
        for (int g = 0; g < 16; g++) {
            const float d = H2F(y[i].d) * (y[i].scales[g] & 0xF);
            if (d == 0.0f)
                continue;
            const float dm = H2F(y[i].dmin) * (y[i].scales[g] >> 4);
            for (int l = 0; l < 16; l++)
                L[16 * g + l] = (uint8_t)imax(0, imin(3, round_even((x[16 * g + l] + dm) / d)));
        }
        pack_2bit(L, y[i].qs);
    }
}

/* Q3_K's group fit (make_q3_quants with do_rmse): start from the signed
 * max, then up to 5 passes of moving single quants to where the weighted
 * (x^2) least-squares scale improves.  L in -4..3; returns the scale. */
static float fit_q3_group(const float *x, int8_t L[16])
{
    const float max = signed_absmax(x, 16);
    if (fabsf(max) < 1e-15f) {
        for (int i = 0; i < 16; i++)
            L[i] = -4; /* stored as 0, as ggml leaves them */
        return 0.f;
    }
    const float iscale = -4 / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < 16; i++) {
        int l = imax(-4, imin(3, round_even(iscale * x[i])));
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < 16; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (!(slx > 0))
                continue;
            float sl2 = suml2 - w * L[i] * L[i];
            int l = imax(-4, imin(3, round_even(x[i] * sl2 / slx)));
            if (l == L[i])
                continue;
            slx += w * x[i] * l;
            sl2 += w * l * l;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)l;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed)
            break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Q3_K: 16 groups of 16 with 3-bit quants (-4..3) and 6-bit signed scales
 * relative to the scale of largest magnitude. */
void ech_ref_quantize_q3_K(const float *src, void *dst, int64_t n)
{
    ech_block_q3_K *y = dst;
    for (int64_t i = 0; i < n / 256; i++) {
        const float *x = src + 256 * i;
        int8_t L[256];
        float sc[16], max_scale = 0, max_abs = 0;
        for (int g = 0; g < 16; g++) {
            sc[g] = fit_q3_group(x + 16 * g, L + 16 * g);
            if (fabsf(sc[g]) > max_abs) {
                max_abs = fabsf(sc[g]);
                max_scale = sc[g];
            }
        }
        memset(y[i].scales, 0, sizeof y[i].scales);
        y[i].d = F2H(0.f);
        if (max_scale != 0.0f) {
            const float iscale = -32.f / max_scale;
            for (int g = 0; g < 16; g++) {
                const int l = imax(-32, imin(31, round_even(iscale * sc[g]))) + 32;
                y[i].scales[g % 8] |= (uint8_t)((l & 0xF) << (g < 8 ? 0 : 4));
                y[i].scales[8 + g % 4] |= (uint8_t)((l >> 4) << (2 * (g / 4)));
            }
            y[i].d = F2H(1 / iscale);
        }
        int8_t s6[16];
        ech_q3k_scales(y[i].scales, s6);
        for (int g = 0; g < 16; g++) {
            const float d = H2F(y[i].d) * s6[g];
            if (d == 0.0f)
                continue;
            for (int l = 0; l < 16; l++)
                L[16 * g + l] = (int8_t)imax(-4, imin(3, round_even(x[16 * g + l] / d)));
        }
        /* stored as L + 4: the high bit goes to hmask (bit e/32 of hmask[e%32]) */
        uint8_t low[256];
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        for (int e = 0; e < 256; e++) {
            const int v = L[e] + 4;
            if (v > 3)
                y[i].hmask[e % 32] |= (uint8_t)(1 << (e / 32));
            low[e] = (uint8_t)(v & 3);
        }
        pack_2bit(low, y[i].qs);
    }
}

/* The IQ4_NL level nearest to x (the lower one on ties). */
static int iq4nl_nearest(float x)
{
    const int8_t *v = ech_iq4nl_values;
    if (x <= v[0])
        return 0;
    if (x >= v[15])
        return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (x < v[mid])
            hi = mid;
        else
            lo = mid;
    }
    return x - v[hi - 1] < v[hi] - x ? hi - 1 : hi;
}

/* IQ4_NL as llama-quantize writes it without an importance matrix
 * (quantize_iq4_nl: 7 tries each side, weights x^2): the block scale is the
 * best least-squares fit over 16 candidate scales, then every element takes
 * its nearest level at that scale. */
void ech_ref_quantize_iq4_nl(const float *src, void *dst, int64_t n)
{
    const int8_t *v = ech_iq4nl_values;
    ech_block_iq4_nl *y = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        const float *x = src + 32 * i;
        const float max = signed_absmax(x, 32);
        float d = 0;
        if (fabsf(max) >= 1e-15f) {
            float id = 1 / (-max / v[0]);
            float sumqx = 0, sumq2 = 0;
            for (int j = 0; j < 32; j++) {
                float q = v[iq4nl_nearest(id * x[j])], w = x[j] * x[j];
                sumqx += w * q * x[j];
                sumq2 += w * q * q;
            }
            d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
            float best = d * sumqx;
            for (int t = -7; t <= 7; t++) {
                id = (float)(t + v[0]) / max;
                sumqx = sumq2 = 0;
                for (int j = 0; j < 32; j++) {
                    float q = v[iq4nl_nearest(id * x[j])], w = x[j] * x[j];
                    sumqx += w * q * x[j];
                    sumq2 += w * q * q;
                }
                if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                    d = sumqx / sumq2;
                    best = d * sumqx;
                }
            }
        }
        y[i].d = F2H(d);
        const float id = d != 0.0f ? 1 / d : 0.f;
        uint8_t L[32];
        for (int j = 0; j < 32; j++)
            L[j] = (uint8_t)iq4nl_nearest(id * x[j]);
        pack_nibbles(L, y[i].qs);
    }
}
