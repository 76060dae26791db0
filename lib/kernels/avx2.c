/* avx2.c - AVX2 + FMA + F16C kernels.
 *
 * Every function carries its own target attribute, so this file builds
 * with the library's generic x86-64 flags and only runs when dispatch.c has
 * seen the features in CPUID.
 *
 * Same tiling as avx512.c (4 rows x 1..4 tokens).  Without VNNI, products
 * go through vpmaddubsw (u8 x s8 -> s16 pairs, saturating) and vpmaddwd:
 * 4- and 6-bit quants times |a| <= 127 cannot saturate; signed 8-bit
 * weights (Q8_0, IQ4_NL) use |w| x sign(a, w) so neither can they.  Integer
 * block sums are exact; scaling is in float.
 */
#include "config.h"

#include <immintrin.h>
#include <string.h>

#include "kernels/dispatch.h"
#include "kernels/entry.h"
#include "kernels/quants.h"
#include "kernels/ref.h"

#define T2 __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))
#define MR 4
#define UNROLL _Pragma("GCC unroll 16")

T2 INLINE float h2f(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

T2 INLINE float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* sum of u8 x s8 products, in 8 int32 lanes */
T2 INLINE __m256i dot_u8s8(__m256i u, __m256i s)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* ---- 32-element blocks: Q4_0 Q5_0 Q8_0 IQ4_NL x Q8_0, Q4_1 Q5_1 x Q8_1 ------------- */

enum { K_Q4_0, K_Q8_0, K_IQ4_NL, K_Q4_1, K_Q5_0, K_Q5_1 };

/* byte j of the result is 0x10 if bit j of the 32-bit qh is set */
T2 INLINE __m256i fifth_bits(const uint8_t *qh4)
{
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    const __m256i sel = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                         2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), sel);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

T2 INLINE void q32_tile(int kind, int mr, int NT, int64_t nb, const uint8_t *const *wr, const uint8_t *const *at,
                        float out[MR][4])
{
    static const size_t bszs[] = {18, 34, 18, 20, 22, 24};
    static const int qoffs[] = {2, 2, 2, 4, 6, 8};
    const size_t bsz = bszs[kind];
    const int qoff = qoffs[kind];
    const int q81 = kind == K_Q4_1 || kind == K_Q5_1;   /* Q8_1 activations, x = d*q + m */
    const size_t asz = q81 ? 36 : 34, aoff = q81 ? 4 : 2;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i nl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)ech_iq4nl_values));
    __m256 acc[MR][4];
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            acc[r][t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        __m256i av[4], corr[4];
        float da[4], sa[4];
        UNROLL for (int t = 0; t < NT; t++) {
            const uint8_t *ab = at[t] + i * asz;
            da[t] = h2f(ab);
            sa[t] = q81 ? h2f(ab + 2) : 0.0f;
            av[t] = _mm256_loadu_si256((const __m256i *)(const void *)(ab + aoff));
            if (kind == K_Q4_0 || kind == K_Q5_0) /* 8 or 16 times sum(a) */
                corr[t] = dot_u8s8(_mm256_set1_epi8(kind == K_Q4_0 ? 8 : 16), av[t]);
        }
        UNROLL for (int r = 0; r < mr; r++) {
            const uint8_t *b = wr[r] + i * bsz;
            if (mr > 1) _mm_prefetch((const char *)b + 8 * bsz, _MM_HINT_T0);
            const float dw = h2f(b);
            const float mw = q81 ? h2f(b + 2) : 0.0f;
            __m256i w;
            if (kind == K_Q8_0) {
                w = _mm256_loadu_si256((const __m256i *)(const void *)(b + 2));
            } else {
                __m128i q = _mm_loadu_si128((const __m128i *)(const void *)(b + qoff));
                w = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), m4);
                if (kind == K_IQ4_NL)
                    w = _mm256_shuffle_epi8(nl, w);
                if (kind == K_Q5_0 || kind == K_Q5_1)
                    w = _mm256_or_si256(w, fifth_bits(b + qoff - 4));
            }
            const int sgn = kind == K_Q8_0 || kind == K_IQ4_NL; /* signed weights */
            const __m256i wabs = sgn ? _mm256_sign_epi8(w, w) : w;
            UNROLL for (int t = 0; t < NT; t++) {
                __m256i s;
                if (sgn)
                    s = dot_u8s8(wabs, _mm256_sign_epi8(av[t], w));
                else if (kind == K_Q4_0 || kind == K_Q5_0)
                    s = _mm256_sub_epi32(dot_u8s8(w, av[t]), corr[t]);
                else
                    s = dot_u8s8(w, av[t]);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(dw * da[t]), acc[r][t]);
                if (q81) /* + m * s: one lane carries it */
                    acc[r][t] = _mm256_add_ps(acc[r][t], _mm256_setr_ps(mw * sa[t], 0, 0, 0, 0, 0, 0, 0));
            }
        }
    }
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            out[r][t] = hsum8(acc[r][t]);
}

/* ---- Q4_K x Q8_K ----------------------------------------------------------- */

T2 INLINE void q4k_tile(int mr, int NT, int64_t nb, const uint8_t *const *wr, const uint8_t *const *at, float out[MR][4])
{
    const size_t bsz = sizeof(ech_block_q4_K), asz = sizeof(ech_block_q8_K);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[MR][4];
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            acc[r][t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        UNROLL for (int r = 0; r < mr; r++) {
            const ech_block_q4_K *b = (const ech_block_q4_K *)(const void *)(wr[r] + i * bsz);
            if (mr > 1) _mm_prefetch((const char *)b + 4 * bsz, _MM_HINT_T0);
            if (mr > 1) _mm_prefetch((const char *)b + 4 * bsz + 64, _MM_HINT_T0);
            if (mr > 1) _mm_prefetch((const char *)b + 4 * bsz + 128, _MM_HINT_T0);
            uint64_t sc64, mn64;
            ech_k4_scales_mins(b->scales, &sc64, &mn64);
            uint8_t sc[8];
            memcpy(sc, &sc64, 8);
            const __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn64));
            const __m256i mnp = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
            __m256i lo[4], hi[4];
            UNROLL for (int c = 0; c < 4; c++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)(b->qs + 32 * c));
                lo[c] = _mm256_and_si256(q, m4);
                hi[c] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            }
            const float d = _cvtsh_ss(b->d), dmin = _cvtsh_ss(b->dmin);
            UNROLL for (int t = 0; t < NT; t++) {
                const ech_block_q8_K *y = (const ech_block_q8_K *)(const void *)(at[t] + i * asz);
                __m256i isum = _mm256_setzero_si256();
                UNROLL for (int c = 0; c < 4; c++) {
                    __m256i pl = _mm256_maddubs_epi16(lo[c], _mm256_loadu_si256((const __m256i *)(const void *)(y->qs + 64 * c)));
                    __m256i ph = _mm256_maddubs_epi16(hi[c], _mm256_loadu_si256((const __m256i *)(const void *)(y->qs + 64 * c + 32)));
                    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(pl, _mm256_set1_epi16(sc[2 * c])));
                    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(ph, _mm256_set1_epi16(sc[2 * c + 1])));
                }
                __m256i msum = _mm256_madd_epi16(mnp, _mm256_loadu_si256((const __m256i *)(const void *)y->bsums));
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * y->d), acc[r][t]);
                acc[r][t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(dmin * y->d), acc[r][t]);
            }
        }
    }
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            out[r][t] = hsum8(acc[r][t]);
}

/* ---- Q5_K, Q2_K, Q3_K x Q8_K ------------------------------------------------ */

/* int16 [v x 8 | u x 8] */
T2 INLINE __m256i two_scales(int v, int u)
{
    return _mm256_set_m128i(_mm_set1_epi16((short)u), _mm_set1_epi16((short)v));
}

T2 INLINE void q5k_tile(int mr, int NT, int64_t nb, const uint8_t *const *wr, const uint8_t *const *at, float out[MR][4])
{
    const size_t bsz = sizeof(ech_block_q5_K), asz = sizeof(ech_block_q8_K);
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    __m256 acc[MR][4];
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            acc[r][t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        UNROLL for (int r = 0; r < mr; r++) {
            const ech_block_q5_K *b = (const ech_block_q5_K *)(const void *)(wr[r] + i * bsz);
            UNROLL for (int k = 0; k < 3; k++)
                if (mr > 1) _mm_prefetch((const char *)b + 4 * bsz + 64 * k, _MM_HINT_T0);
            uint64_t sc64, mn64;
            ech_k4_scales_mins(b->scales, &sc64, &mn64);
            uint8_t sc[8];
            memcpy(sc, &sc64, 8);
            const __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn64));
            const __m256i mnp = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(const void *)b->qh);
            __m256i lo[4], hi[4];
            UNROLL for (int c = 0; c < 4; c++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)(b->qs + 32 * c));
                /* bit 2c of qh[l] is bit 4 of element 64c+l, bit 2c+1 of element 64c+32+l */
                __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4);
                __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4);
                lo[c] = _mm256_or_si256(_mm256_and_si256(q, m4), h0);
                hi[c] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1);
            }
            const float d = _cvtsh_ss(b->d), dmin = _cvtsh_ss(b->dmin);
            UNROLL for (int t = 0; t < NT; t++) {
                const ech_block_q8_K *y = (const ech_block_q8_K *)(const void *)(at[t] + i * asz);
                __m256i isum = _mm256_setzero_si256();
                UNROLL for (int c = 0; c < 4; c++) {
                    /* q <= 31: 31 * 127 * 2 fits int16 */
                    __m256i pl = _mm256_maddubs_epi16(lo[c], _mm256_loadu_si256((const __m256i *)(const void *)(y->qs + 64 * c)));
                    __m256i ph = _mm256_maddubs_epi16(hi[c], _mm256_loadu_si256((const __m256i *)(const void *)(y->qs + 64 * c + 32)));
                    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(pl, _mm256_set1_epi16(sc[2 * c])));
                    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(ph, _mm256_set1_epi16(sc[2 * c + 1])));
                }
                __m256i msum = _mm256_madd_epi16(mnp, _mm256_loadu_si256((const __m256i *)(const void *)y->bsums));
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * y->d), acc[r][t]);
                acc[r][t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(dmin * y->d), acc[r][t]);
            }
        }
    }
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            out[r][t] = hsum8(acc[r][t]);
}

/* Q2_K and Q3_K: 2-bit fields (Q3_K: plus a high bit) in 4 shifts per 32
 * bytes; element 128c + 32j + l is field j of byte 32c + l, and its
 * sub-block of 16 is 8c + 2j + l/16.  Q3_K's quants are biased to 0..7 for
 * vpmaddubsw; the -4 comes back as -4 * sum(scale * bsum). */
T2 INLINE void q23k_tile(int q3, int mr, int NT, int64_t nb, const uint8_t *const *wr, const uint8_t *const *at,
                         float out[MR][4])
{
    const size_t bsz = q3 ? sizeof(ech_block_q3_K) : sizeof(ech_block_q2_K), asz = sizeof(ech_block_q8_K);
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256 acc[MR][4];
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            acc[r][t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        UNROLL for (int r = 0; r < mr; r++) {
            const uint8_t *b = wr[r] + i * bsz;
            UNROLL for (int k = 0; k < 2; k++)
                if (mr > 1) _mm_prefetch((const char *)b + 4 * bsz + 64 * k, _MM_HINT_T0);
            const uint8_t *qs = q3 ? ((const ech_block_q3_K *)(const void *)b)->qs : ((const ech_block_q2_K *)(const void *)b)->qs;
            int8_t sc[16];
            __m256i mn16; /* Q2_K: mins; Q3_K: the scales, for the -4 correction */
            float d, dmin = 0.0f;
            if (q3) {
                const ech_block_q3_K *b3 = (const ech_block_q3_K *)(const void *)b;
                ech_q3k_scales(b3->scales, sc);
                mn16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)sc));
                d = _cvtsh_ss(b3->d);
            } else {
                const ech_block_q2_K *b2 = (const ech_block_q2_K *)(const void *)b;
                __m128i s8 = _mm_loadu_si128((const __m128i *)(const void *)b2->scales);
                _mm_storeu_si128((__m128i *)(void *)sc, _mm_and_si128(s8, _mm_set1_epi8(0x0F)));
                mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s8, 4), _mm_set1_epi8(0x0F)));
                d = _cvtsh_ss(b2->d);
                dmin = _cvtsh_ss(b2->dmin);
            }
            __m256i z[8], sv[8];
            UNROLL for (int c = 0; c < 2; c++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 32 * c));
                const __m256i hm = q3 ? _mm256_loadu_si256((const __m256i *)(const void *)b) : _mm256_setzero_si256();
                UNROLL for (int j = 0; j < 4; j++) {
                    __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
                    if (q3) /* + 4 where the high bit (bit 4c+j of hmask[l]) is set */
                        v = _mm256_or_si256(v, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, 4 * c + j), one), 2));
                    z[4 * c + j] = v;
                    sv[4 * c + j] = two_scales(sc[8 * c + 2 * j], sc[8 * c + 2 * j + 1]);
                }
            }
            UNROLL for (int t = 0; t < NT; t++) {
                const ech_block_q8_K *y = (const ech_block_q8_K *)(const void *)(at[t] + i * asz);
                __m256i isum = _mm256_setzero_si256();
                UNROLL for (int k = 0; k < 8; k++) {
                    __m256i p = _mm256_maddubs_epi16(z[k], _mm256_loadu_si256((const __m256i *)(const void *)(y->qs + 32 * k)));
                    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, sv[k]));
                }
                __m256i msum = _mm256_madd_epi16(mn16, _mm256_loadu_si256((const __m256i *)(const void *)y->bsums));
                if (q3) {
                    isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(msum, 2));
                    acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * y->d), acc[r][t]);
                } else {
                    acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(y->d * d), acc[r][t]);
                    acc[r][t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(y->d * dmin), acc[r][t]);
                }
            }
        }
    }
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            out[r][t] = hsum8(acc[r][t]);
}

/* ---- Q6_K x Q8_K ----------------------------------------------------------- */

T2 INLINE void q6k_tile(int mr, int NT, int64_t nb, const uint8_t *const *wr, const uint8_t *const *at, float out[MR][4])
{
    const size_t bsz = sizeof(ech_block_q6_K), asz = sizeof(ech_block_q8_K);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    __m256 acc[MR][4];
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            acc[r][t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        UNROLL for (int r = 0; r < mr; r++) {
            const ech_block_q6_K *b = (const ech_block_q6_K *)(const void *)(wr[r] + i * bsz);
            UNROLL for (int k = 0; k < 4; k++)
                if (mr > 1) _mm_prefetch((const char *)b + 4 * bsz + 64 * k, _MM_HINT_T0);
            /* z[j]: quants 0..63 of elements 32j..32j+31; sv[j]: their two scales */
            __m256i z[8], sv[8];
            UNROLL for (int c = 0; c < 2; c++) {
                const __m256i l0 = _mm256_loadu_si256((const __m256i *)(const void *)(b->ql + 64 * c));
                const __m256i l1 = _mm256_loadu_si256((const __m256i *)(const void *)(b->ql + 64 * c + 32));
                const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(b->qh + 32 * c));
                z[4 * c + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
                z[4 * c + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4));
                z[4 * c + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4));
                z[4 * c + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4));
            }
            UNROLL for (int j = 0; j < 8; j++)
                sv[j] = _mm256_set_m128i(_mm_set1_epi16(b->scales[2 * j + 1]), _mm_set1_epi16(b->scales[2 * j]));
            const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)b->scales));
            const float d = _cvtsh_ss(b->d);
            UNROLL for (int t = 0; t < NT; t++) {
                const ech_block_q8_K *y = (const ech_block_q8_K *)(const void *)(at[t] + i * asz);
                __m256i isum = _mm256_setzero_si256();
                UNROLL for (int j = 0; j < 8; j++) {
                    __m256i p = _mm256_maddubs_epi16(z[j], _mm256_loadu_si256((const __m256i *)(const void *)(y->qs + 32 * j)));
                    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, sv[j]));
                }
                __m256i corr = _mm256_slli_epi32(
                    _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)(const void *)y->bsums)), 5);
                isum = _mm256_sub_epi32(isum, corr);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * y->d), acc[r][t]);
            }
        }
    }
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            out[r][t] = hsum8(acc[r][t]);
}

/* ---- float types (activations packed as f32) ---------------------------------- */

enum { K_F32, K_F16, K_BF16 };

T2 INLINE __m256 load8(int kind, const uint8_t *p)
{
    if (kind == K_F32)
        return _mm256_loadu_ps((const float *)(const void *)p);
    __m128i h = _mm_loadu_si128((const __m128i *)(const void *)p);
    if (kind == K_F16)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

T2 INLINE void float_tile(int kind, int mr, int NT, int64_t n, const uint8_t *const *wr, const uint8_t *const *at,
                          float out[MR][4])
{
    const int es = kind == K_F32 ? 4 : 2;
    __m256 acc[MR][4];
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            acc[r][t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 a[4];
        UNROLL for (int t = 0; t < NT; t++)
            a[t] = _mm256_loadu_ps((const float *)(const void *)at[t] + i);
        UNROLL for (int r = 0; r < mr; r++) {
            if ((i & 31) == 0)
                _mm_prefetch((const char *)(wr[r] + (i + 256) * es), _MM_HINT_T0);
            const __m256 w = load8(kind, wr[r] + i * es);
            UNROLL for (int t = 0; t < NT; t++)
                acc[r][t] = _mm256_fmadd_ps(w, a[t], acc[r][t]);
        }
    }
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++) {
            float s = hsum8(acc[r][t]);
            for (int64_t j = i; j < n; j++) {
                float w;
                uint16_t h;
                if (kind == K_F32) {
                    memcpy(&w, wr[r] + j * 4, 4);
                } else {
                    memcpy(&h, wr[r] + j * 2, 2);
                    w = kind == K_F16 ? _cvtsh_ss(h) : ech_bf16_to_fp32(h);
                }
                s += w * ((const float *)(const void *)at[t])[j];
            }
            out[r][t] = s;
        }
}

/* F16 or BF16 rows x one activation row of the same type (the dot type as
 * is, no pack into floats): half the cache of floats, and four FMA chains
 * where float_tile's one-row tile had one (11 GB/s from DRAM on Zen 4, the
 * FMA latency, not the memory) */
T2 INLINE void half_rows(int kind, int64_t n, const void *w, size_t ws, int64_t nr, const void *a, float *y)
{
    const uint8_t *x = a;
    for (int64_t r = 0; r < nr; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * ws;
        __m256 acc[4];
        UNROLL for (int k = 0; k < 4; k++)
            acc[k] = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 32 <= n; i += 32)
            UNROLL for (int k = 0; k < 4; k++)
                acc[k] = _mm256_fmadd_ps(load8(kind, row + 2 * (i + 8 * k)), load8(kind, x + 2 * (i + 8 * k)), acc[k]);
        for (; i + 8 <= n; i += 8)
            acc[0] = _mm256_fmadd_ps(load8(kind, row + 2 * i), load8(kind, x + 2 * i), acc[0]);
        float s = hsum8(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
        for (; i < n; i++) {
            uint16_t hw, hx;
            memcpy(&hw, row + 2 * i, 2);
            memcpy(&hx, x + 2 * i, 2);
            s += kind == K_F16 ? _cvtsh_ss(hw) * _cvtsh_ss(hx) : ech_bf16_to_fp32(hw) * ech_bf16_to_fp32(hx);
        }
        y[r] = s;
    }
}

T2 static void gemv_f16_rows(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, float *y)
{
    half_rows(K_F16, n, w, ws, nr, a, y);
}

T2 static void gemv_bf16_rows(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, float *y)
{
    half_rows(K_BF16, n, w, ws, nr, a, y);
}

/* ---- activation quantisers ------------------------------------------------------
 * Bit-identical to ref.c: the same IEEE operations (|x| max, amax / 127,
 * 127 / amax, one multiply, round to nearest even), only eight at a time. */

T2 INLINE float hmax8(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* 32 floats -> 32 int8 (already in range), returning sum(q) */
T2 INLINE int quant32(const float *x, float id, int8_t *q)
{
    const __m256 mul = _mm256_set1_ps(id);
    __m256i v[4];
    UNROLL for (int k = 0; k < 4; k++)
        v[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), mul),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i sum = _mm256_add_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]));
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)(void *)q, p);
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    return _mm_cvtsi128_si32(s4);
}

T2 INLINE float absmax32(const float *x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
    UNROLL for (int k = 1; k < 4; k++)
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)));
    return hmax8(m);
}

T2 static void from_float_q8_0(const float *src, void *dst, int64_t n)
{
    ech_block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        const float amax = absmax32(src + 32 * i);
        y[i].d = (uint16_t)_cvtss_sh(amax / 127.0f, 0);
        quant32(src + 32 * i, amax != 0.0f ? 127.0f / amax : 0.0f, y[i].qs);
    }
}

T2 static void from_float_q8_1(const float *src, void *dst, int64_t n)
{
    ech_block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        const float amax = absmax32(src + 32 * i), d = amax / 127.0f;
        int sum = quant32(src + 32 * i, amax != 0.0f ? 127.0f / amax : 0.0f, y[i].qs);
        y[i].d = (uint16_t)_cvtss_sh(d, 0);
        y[i].s = (uint16_t)_cvtss_sh(d * (float)sum, 0);
    }
}

/* |iscale * x| <= 127 up to one rounding, so the packs never saturate and
 * ggml's clamp at +127 has nothing to do. */
T2 static void from_float_q8_K(const float *src, void *dst, int64_t n)
{
    ech_block_q8_K *y = dst;
    for (int64_t i = 0; i < n / 256; i++) {
        const float *x = src + 256 * i;
        float amax = 0.0f;
        for (int k = 0; k < 8; k++) {
            float m = absmax32(x + 32 * k);
            amax = m > amax ? m : amax;
        }
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float max = 0.0f; /* the first element of largest magnitude, with its sign */
        for (int j = 0; j < 256; j++)
            if (x[j] == amax || x[j] == -amax) {
                max = x[j];
                break;
            }
        const float iscale = -127.0f / max;
        for (int k = 0; k < 8; k++)
            quant32(x + 32 * k, iscale, y[i].qs + 32 * k);
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++)
                sum += y[i].qs[16 * g + j];
            y[i].bsums[g] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

/* round to nearest even on the top 16 bits; nan -> quiet nan (as ref.c) */
T2 static void from_float_bf16(const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    int64_t i = 0;
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7FFF);
    const __m256i absm = _mm256_set1_epi32(0x7FFFFFFF), inf = _mm256_set1_epi32(0x7F800000);
    for (; i + 16 <= n; i += 16) {
        __m256i h[2];
        UNROLL for (int k = 0; k < 2; k++) {
            __m256i u = _mm256_castps_si256(_mm256_loadu_ps(src + i + 8 * k));
            __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(u, 16), one)));
            r = _mm256_srli_epi32(r, 16);
            __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absm), inf);
            __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
            h[k] = _mm256_blendv_epi8(r, q, nan);
        }
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(h[0], h[1]), 0xD8);
        _mm256_storeu_si256((__m256i *)(void *)(p + 2 * i), packed);
    }
    ech_ref_from_float_bf16(src + i, p + 2 * i, n - i);
}

T2 static void from_float_f16(const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(p + 2 * i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    ech_ref_from_float_f16(src + i, p + 2 * i, n - i);
}

#define GEMM_ENTRY(name, CALL) ECH_GEMM_ENTRY(T2, name, CALL)

#define CALL_Q4_0(MRr, NT) q32_tile(K_Q4_0, MRr, NT, n / 32, wr, at, out)
#define CALL_Q8_0(MRr, NT) q32_tile(K_Q8_0, MRr, NT, n / 32, wr, at, out)
#define CALL_IQ4_NL(MRr, NT) q32_tile(K_IQ4_NL, MRr, NT, n / 32, wr, at, out)
#define CALL_Q4_1(MRr, NT) q32_tile(K_Q4_1, MRr, NT, n / 32, wr, at, out)
#define CALL_Q5_0(MRr, NT) q32_tile(K_Q5_0, MRr, NT, n / 32, wr, at, out)
#define CALL_Q5_1(MRr, NT) q32_tile(K_Q5_1, MRr, NT, n / 32, wr, at, out)
#define CALL_Q4_K(MRr, NT) q4k_tile(MRr, NT, n / 256, wr, at, out)
#define CALL_Q6_K(MRr, NT) q6k_tile(MRr, NT, n / 256, wr, at, out)
#define CALL_Q5_K(MRr, NT) q5k_tile(MRr, NT, n / 256, wr, at, out)
#define CALL_Q2_K(MRr, NT) q23k_tile(0, MRr, NT, n / 256, wr, at, out)
#define CALL_Q3_K(MRr, NT) q23k_tile(1, MRr, NT, n / 256, wr, at, out)
#define CALL_F32(MRr, NT) float_tile(K_F32, MRr, NT, n, wr, at, out)
#define CALL_F16(MRr, NT) float_tile(K_F16, MRr, NT, n, wr, at, out)
#define CALL_BF16(MRr, NT) float_tile(K_BF16, MRr, NT, n, wr, at, out)

#define GEMV_ENTRY(name, CALL) ECH_GEMV_ENTRY(T2, name, CALL)

GEMM_ENTRY(gemm_q4_0, CALL_Q4_0)
GEMM_ENTRY(gemm_q8_0, CALL_Q8_0)
GEMM_ENTRY(gemm_iq4_nl, CALL_IQ4_NL)
GEMM_ENTRY(gemm_q4_1, CALL_Q4_1)
GEMM_ENTRY(gemm_q5_0, CALL_Q5_0)
GEMM_ENTRY(gemm_q5_1, CALL_Q5_1)
GEMM_ENTRY(gemm_q4_K, CALL_Q4_K)
GEMM_ENTRY(gemm_q6_K, CALL_Q6_K)
GEMM_ENTRY(gemm_q5_K, CALL_Q5_K)
GEMM_ENTRY(gemm_q2_K, CALL_Q2_K)
GEMM_ENTRY(gemm_q3_K, CALL_Q3_K)
GEMM_ENTRY(gemm_f32, CALL_F32)
GEMM_ENTRY(gemm_f16, CALL_F16)
GEMM_ENTRY(gemm_bf16, CALL_BF16)

GEMV_ENTRY(gemv_q4_0, CALL_Q4_0)
GEMV_ENTRY(gemv_q8_0, CALL_Q8_0)
GEMV_ENTRY(gemv_iq4_nl, CALL_IQ4_NL)
GEMV_ENTRY(gemv_q4_1, CALL_Q4_1)
GEMV_ENTRY(gemv_q5_0, CALL_Q5_0)
GEMV_ENTRY(gemv_q5_1, CALL_Q5_1)
GEMV_ENTRY(gemv_q4_K, CALL_Q4_K)
GEMV_ENTRY(gemv_q6_K, CALL_Q6_K)
GEMV_ENTRY(gemv_q5_K, CALL_Q5_K)
GEMV_ENTRY(gemv_q2_K, CALL_Q2_K)
GEMV_ENTRY(gemv_q3_K, CALL_Q3_K)
GEMV_ENTRY(gemv_f32, CALL_F32)

static size_t pack_size_f32(int64_t n)
{
    return (size_t)n * sizeof(float);
}

T2 static void pack_f16(const void *src, void *dst, int64_t n)
{
    const uint8_t *p = src;
    float *f = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(f + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p + 2 * i))));
    for (; i < n; i++)
        f[i] = h2f(p + 2 * i);
}

T2 static void pack_bf16(const void *src, void *dst, int64_t n)
{
    const uint8_t *p = src;
    float *f = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(f + i, load8(K_BF16, p + 2 * i));
    ech_ref_to_float_bf16(p + 2 * i, f + i, n - i);
}

#define VEC_DOT(name, gemm)                                                          \
    static void name(int64_t n, float *s, const void *w, const void *a)            \
    {                                                                                \
        gemm(n, w, 0, 1, a, 0, 1, s, 1);                                             \
    }
VEC_DOT(dot_q4_0, gemm_q4_0)
VEC_DOT(dot_q8_0, gemm_q8_0)
VEC_DOT(dot_iq4_nl, gemm_iq4_nl)
VEC_DOT(dot_q4_1, gemm_q4_1)
VEC_DOT(dot_q5_0, gemm_q5_0)
VEC_DOT(dot_q5_1, gemm_q5_1)
VEC_DOT(dot_q4_K, gemm_q4_K)
VEC_DOT(dot_q6_K, gemm_q6_K)
VEC_DOT(dot_q5_K, gemm_q5_K)
VEC_DOT(dot_q2_K, gemm_q2_K)
VEC_DOT(dot_q3_K, gemm_q3_K)
VEC_DOT(dot_f32, gemm_f32)

#define FLOAT_DOT(name, gemm, pack)                                                  \
    static void name(int64_t n, float *s, const void *w, const void *a)            \
    {                                                                                \
        float buf[1024];                                                             \
        const uint8_t *pw = w, *pa = a;                                              \
        float sum = 0;                                                               \
        for (int64_t i = 0; i < n; i += 1024) {                                      \
            int64_t m = n - i < 1024 ? n - i : 1024;                                 \
            float part;                                                              \
            pack(pa + 2 * i, buf, m);                                                \
            gemm(m, pw + 2 * i, 0, 1, buf, 0, 1, &part, 1);                          \
            sum += part;                                                             \
        }                                                                            \
        *s = sum;                                                                    \
    }
FLOAT_DOT(dot_f16, gemm_f16, pack_f16)
FLOAT_DOT(dot_bf16, gemm_bf16, pack_bf16)

void ech_avx2_fill(ech_type_kernels *k, ech_kset *g)
{
#define SET(T, dot, gm, gv, ps, pk)                                                                    \
    do {                                                                                           \
        k[ECH_TYPE_##T].vec_dot = dot;                                                             \
        g[ECH_TYPE_##T] = (ech_kset){.gemm = gm, .mr = MR, .nt = 4, .pack_size = ps, .pack = pk, \
                                     .gemv = gv, .gemv_pack_size = ps, .gemv_pack = pk};   \
    } while (0)
    k[ECH_TYPE_Q8_0].from_float = from_float_q8_0;
    k[ECH_TYPE_Q8_1].from_float = from_float_q8_1;
    k[ECH_TYPE_Q8_K].from_float = from_float_q8_K;
    k[ECH_TYPE_F16].from_float = from_float_f16;
    k[ECH_TYPE_BF16].from_float = from_float_bf16;
    SET(Q4_0, dot_q4_0, gemm_q4_0, gemv_q4_0, NULL, NULL);
    SET(Q8_0, dot_q8_0, gemm_q8_0, gemv_q8_0, NULL, NULL);
    SET(IQ4_NL, dot_iq4_nl, gemm_iq4_nl, gemv_iq4_nl, NULL, NULL);
    SET(Q4_1, dot_q4_1, gemm_q4_1, gemv_q4_1, NULL, NULL);
    SET(Q5_0, dot_q5_0, gemm_q5_0, gemv_q5_0, NULL, NULL);
    SET(Q5_1, dot_q5_1, gemm_q5_1, gemv_q5_1, NULL, NULL);
    SET(Q4_K, dot_q4_K, gemm_q4_K, gemv_q4_K, NULL, NULL);
    SET(Q6_K, dot_q6_K, gemm_q6_K, gemv_q6_K, NULL, NULL);
    SET(Q5_K, dot_q5_K, gemm_q5_K, gemv_q5_K, NULL, NULL);
    SET(Q2_K, dot_q2_K, gemm_q2_K, gemv_q2_K, NULL, NULL);
    SET(Q3_K, dot_q3_K, gemm_q3_K, gemv_q3_K, NULL, NULL);
    SET(F32, dot_f32, gemm_f32, gemv_f32, NULL, NULL);
    SET(F16, dot_f16, gemm_f16, NULL, pack_size_f32, pack_f16);
    SET(BF16, dot_bf16, gemm_bf16, NULL, pack_size_f32, pack_bf16);
#undef SET
    /* F16 and BF16 decode reads the activations in their own type */
    g[ECH_TYPE_F16].gemv = gemv_f16_rows;
    g[ECH_TYPE_BF16].gemv = gemv_bf16_rows;
    g[ECH_TYPE_F16].gemv_pack = g[ECH_TYPE_BF16].gemv_pack = NULL;
    g[ECH_TYPE_F16].gemv_pack_size = g[ECH_TYPE_BF16].gemv_pack_size = NULL;
}
