/* avx512_lanes.c - prompt processing with tokens in the vector lanes.
 *
 * The tile kernels of avx512.c put the elements of one row in the lanes, so
 * every 32-element block ends in a per-block float conversion and scaling:
 * three float instructions per vpdpbusd, and Zen 4 runs 512-bit operations
 * at one per cycle.  Here the 16 lanes are 16 tokens instead:
 *
 *   - a few weight rows are first "prepared": each 32-element block becomes
 *     32 signed bytes, the integer correction for the activations' offset and
 *     the block's float scale (40 bytes), once per matrix product, in cache;
 *   - the activations of 16 tokens (Q8_0 rows) are interleaved into a tile:
 *     for each block, eight vectors of 16 tokens x 4 consecutive elements,
 *     plus the 16 tokens' scales;
 *   - then each vpdpbusd multiplies one activation vector with 4 weight
 *     bytes broadcast from the prepared row (an embedded-broadcast operand),
 *     and a block costs 8 vpdpbusd and only 3 float operations per row.
 *
 * vpdpbusd multiplies unsigned by signed bytes: the activations get +128
 * (a' = a ^ 0x80) and the prepared block carries -128 * sum(w), so the
 * integer sum of each block is exact, as in ref.c.
 */
#include "config.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dispatch.h"
#include "kernels/quants.h"

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

#define LANES 16
#define MR 4

typedef struct prep_block {
    int8_t w[32];  /* the weights of the block, as signed bytes, element order */
    int32_t corr;  /* -128 * sum(w) */
    float d;       /* the block's scale */
} prep_block;

typedef struct tile_block {
    uint8_t a[8][LANES][4]; /* a[j][t] = elements 4j..4j+3 of token t, + 128 */
    float d[LANES];         /* each token's scale of this block (0: no token) */
} tile_block;

static size_t prep_size(int64_t n)
{
    return (size_t)(n / 32) * sizeof(prep_block);
}

static size_t tile_size(int64_t n)
{
    return (size_t)(n / 32) * sizeof(tile_block);
}

/* ---- weight preparation -------------------------------------------------- */

T512 INLINE void prep_finish(prep_block *p, __m256i w, uint16_t d)
{
    _mm256_storeu_si256((__m256i *)(void *)p->w, w);
    /* sum of the 32 signed bytes: bias to unsigned, sum with psadbw */
    const __m256i s = _mm256_sad_epu8(_mm256_xor_si256(w, _mm256_set1_epi8((char)0x80)), _mm256_setzero_si256());
    const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    const int32_t sum = (int32_t)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 32 * 128;
    p->corr = -128 * sum;
    p->d = _cvtsh_ss(d);
}

/* 4-bit quants -> 32 bytes in element order (low nibbles are 0..15) */
T512 INLINE __m256i nibbles(const uint8_t *qs)
{
    const __m128i q = _mm_loadu_si128((const __m128i *)(const void *)qs);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
}

T512 static void prep_q4_0(const void *row, void *out, int64_t n)
{
    const ech_block_q4_0 *b = row;
    prep_block *p = out;
    for (int64_t i = 0; i < n / 32; i++)
        prep_finish(&p[i], _mm256_sub_epi8(nibbles(b[i].qs), _mm256_set1_epi8(8)), b[i].d);
}

T512 static void prep_iq4_nl(const void *row, void *out, int64_t n)
{
    const ech_block_iq4_nl *b = row;
    prep_block *p = out;
    const __m256i tab = _mm256_broadcastsi128_si256(
        _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113));
    for (int64_t i = 0; i < n / 32; i++)
        prep_finish(&p[i], _mm256_shuffle_epi8(tab, nibbles(b[i].qs)), b[i].d);
}

T512 static void prep_q8_0(const void *row, void *out, int64_t n)
{
    const ech_block_q8_0 *b = row;
    prep_block *p = out;
    for (int64_t i = 0; i < n / 32; i++)
        prep_finish(&p[i], _mm256_loadu_si256((const __m256i *)(const void *)b[i].qs), b[i].d);
}

/* ---- activation tiles ---------------------------------------------------- */

/* Interleave the Q8_0 rows of nt <= 16 tokens (rows `as` bytes apart). */
T512 static void tile_q8_0(const void *a, size_t as, int nt, void *out, int64_t n)
{
    tile_block *tb = out;
    const int64_t nb = n / 32;
    for (int64_t i = 0; i < nb; i++) {
        uint32_t g[LANES][8];
        float d[LANES];
        for (int t = 0; t < LANES; t++) {
            if (t < nt) {
                const ech_block_q8_0 *b = (const ech_block_q8_0 *)(const void *)((const uint8_t *)a + (size_t)t * as) + i;
                const __m256i q = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)b->qs),
                                                   _mm256_set1_epi8((char)0x80));
                _mm256_storeu_si256((__m256i *)(void *)g[t], q);
                d[t] = _cvtsh_ss(b->d);
            } else {
                memset(g[t], 0x80, sizeof g[t]); /* a' = 128: a = 0 */
                d[t] = 0.0f;
            }
        }
        /* transpose 16 tokens x 8 dwords into 8 vectors of 16 tokens */
        const __m512i idx = _mm512_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120);
        for (int j = 0; j < 8; j++)
            _mm512_storeu_si512(tb[i].a[j], _mm512_i32gather_epi32(_mm512_add_epi32(idx, _mm512_set1_epi32(j)),
                                                                   (const void *)g, 4));
        memcpy(tb[i].d, d, sizeof d);
    }
}

/* ---- the kernel ------------------------------------------------------------ */

/* y[t * ys + r] = row r . token t for r < nr (MR at most), t < nt */
T512 INLINE void lanes_tile(int nrow, int64_t nb, const prep_block *const *pr, const tile_block *tb, int nt, float *y,
                            size_t ys)
{
    __m512 acc[MR];
    UNROLL for (int r = 0; r < nrow; r++)
        acc[r] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        __m512i s[MR];
        UNROLL for (int r = 0; r < nrow; r++)
            s[r] = _mm512_set1_epi32(pr[r][i].corr);
        UNROLL for (int j = 0; j < 8; j++) {
            const __m512i a = _mm512_loadu_si512(tb[i].a[j]);
            UNROLL for (int r = 0; r < nrow; r++) {
                int32_t w4;
                memcpy(&w4, pr[r][i].w + 4 * j, 4);
                s[r] = _mm512_dpbusd_epi32(s[r], a, _mm512_set1_epi32(w4));
            }
        }
        const __m512 da = _mm512_loadu_ps(tb[i].d);
        UNROLL for (int r = 0; r < nrow; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r]), _mm512_mul_ps(_mm512_set1_ps(pr[r][i].d), da), acc[r]);
    }
    UNROLL for (int r = 0; r < nrow; r++) {
        float out[LANES];
        _mm512_storeu_ps(out, acc[r]);
        for (int t = 0; t < nt; t++)
            y[(size_t)t * ys + (size_t)r] = out[t];
    }
}

T512 static void lanes_gemm(int64_t n, const void *prep, size_t ps, int nr, const void *tile, int nt, float *y,
                            size_t ys)
{
    const int64_t nb = n / 32;
    int r = 0;
    for (; r + MR <= nr; r += MR) {
        const prep_block *pr[MR];
        for (int k = 0; k < MR; k++)
            pr[k] = (const prep_block *)(const void *)((const uint8_t *)prep + (size_t)(r + k) * ps);
        lanes_tile(MR, nb, pr, tile, nt, y + r, ys);
    }
    for (; r < nr; r++) {
        const prep_block *pr[1] = {(const prep_block *)(const void *)((const uint8_t *)prep + (size_t)r * ps)};
        lanes_tile(1, nb, pr, tile, nt, y + r, ys);
    }
}

void ech_avx512_lanes_fill(ech_kset *g)
{
    const ech_lanes base = {.lanes = LANES, .prep_size = prep_size, .tile_size = tile_size,
                            .tile = tile_q8_0, .gemm = lanes_gemm};
    g[ECH_TYPE_Q4_0].lanes = base;
    g[ECH_TYPE_Q4_0].lanes.prep = prep_q4_0;
    g[ECH_TYPE_IQ4_NL].lanes = base;
    g[ECH_TYPE_IQ4_NL].lanes.prep = prep_iq4_nl;
    g[ECH_TYPE_Q8_0].lanes = base;
    g[ECH_TYPE_Q8_0].lanes.prep = prep_q8_0;
}
