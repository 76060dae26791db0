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
 * integer sum of each block is exact, as in ref.c.  Q4_0, Q5_0, Q8_0 and
 * IQ4_NL take Q8_0 tiles; Q4_1 and Q5_1 take Q8_1 tiles, which add each
 * token's s for the min term.
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

/* Q4_1 and Q5_1 (x = d*q + m) against Q8_1 activations: the block's dot
 * product is d_w * d_a * sum(q * a) + m * s_a, so the prepared block also
 * carries m and the tile each token's s. */
typedef struct prep_block1 {
    prep_block b;
    float m;
} prep_block1;

typedef struct tile_block1 {
    tile_block b;
    float s[LANES];         /* each token's s = d * sum(q) of this block */
} tile_block1;

static size_t prep_size1(int64_t n)
{
    return (size_t)(n / 32) * sizeof(prep_block1);
}

static size_t tile_size1(int64_t n)
{
    return (size_t)(n / 32) * sizeof(tile_block1);
}

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

/* 5-bit quants: bit j of qh is the fifth bit of element j */
T512 INLINE __m256i nibbles5(const uint8_t *qs, const uint8_t *qh)
{
    uint32_t h;
    memcpy(&h, qh, 4);
    const __m256i v = nibbles(qs);
    return _mm256_mask_add_epi8(v, _cvtu32_mask32(h), v, _mm256_set1_epi8(16));
}

T512 static void prep_q5_0(const void *row, void *out, int64_t n)
{
    const ech_block_q5_0 *b = row;
    prep_block *p = out;
    for (int64_t i = 0; i < n / 32; i++)
        prep_finish(&p[i], _mm256_sub_epi8(nibbles5(b[i].qs, b[i].qh), _mm256_set1_epi8(16)), b[i].d);
}

T512 static void prep_q4_1(const void *row, void *out, int64_t n)
{
    const ech_block_q4_1 *b = row;
    prep_block1 *p = out;
    for (int64_t i = 0; i < n / 32; i++) {
        prep_finish(&p[i].b, nibbles(b[i].qs), b[i].d);
        p[i].m = _cvtsh_ss(b[i].m);
    }
}

T512 static void prep_q5_1(const void *row, void *out, int64_t n)
{
    const ech_block_q5_1 *b = row;
    prep_block1 *p = out;
    for (int64_t i = 0; i < n / 32; i++) {
        prep_finish(&p[i].b, nibbles5(b[i].qs, b[i].qh), b[i].d);
        p[i].m = _cvtsh_ss(b[i].m);
    }
}

T512 static void prep_q8_0(const void *row, void *out, int64_t n)
{
    const ech_block_q8_0 *b = row;
    prep_block *p = out;
    for (int64_t i = 0; i < n / 32; i++)
        prep_finish(&p[i], _mm256_loadu_si256((const __m256i *)(const void *)b[i].qs), b[i].d);
}

/* ---- activation tiles ---------------------------------------------------- */

/* Interleave the Q8_0 (q81: Q8_1) rows of nt <= 16 tokens (rows `as`
 * bytes apart) into tile_blocks (q81: tile_block1s). */
T512 INLINE void tile_q8(int q81, const void *a, size_t as, int nt, void *out, int64_t n)
{
    const size_t bsz = q81 ? sizeof(ech_block_q8_1) : sizeof(ech_block_q8_0), qoff = q81 ? 4 : 2;
    const size_t tsz = q81 ? sizeof(tile_block1) : sizeof(tile_block);
    const int64_t nb = n / 32;
    for (int64_t i = 0; i < nb; i++) {
        tile_block *tb = (tile_block *)(void *)((uint8_t *)out + (size_t)i * tsz);
        uint32_t g[LANES][8];
        float d[LANES], s[LANES];
        for (int t = 0; t < LANES; t++) {
            if (t < nt) {
                const uint8_t *b = (const uint8_t *)a + (size_t)t * as + (size_t)i * bsz;
                const __m256i q = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(b + qoff)),
                                                   _mm256_set1_epi8((char)0x80));
                _mm256_storeu_si256((__m256i *)(void *)g[t], q);
                uint16_t h[2];
                memcpy(h, b, sizeof h);
                d[t] = _cvtsh_ss(h[0]);
                s[t] = q81 ? _cvtsh_ss(h[1]) : 0.0f;
            } else {
                memset(g[t], 0x80, sizeof g[t]); /* a' = 128: a = 0 */
                d[t] = s[t] = 0.0f;
            }
        }
        /* transpose 16 tokens x 8 dwords into 8 vectors of 16 tokens */
        const __m512i idx = _mm512_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120);
        for (int j = 0; j < 8; j++)
            _mm512_storeu_si512(tb->a[j], _mm512_i32gather_epi32(_mm512_add_epi32(idx, _mm512_set1_epi32(j)),
                                                                 (const void *)g, 4));
        memcpy(tb->d, d, sizeof d);
        if (q81)
            memcpy(((tile_block1 *)(void *)tb)->s, s, sizeof s);
    }
}

T512 static void tile_q8_0(const void *a, size_t as, int nt, void *out, int64_t n)
{
    tile_q8(0, a, as, nt, out, n);
}

T512 static void tile_q8_1(const void *a, size_t as, int nt, void *out, int64_t n)
{
    tile_q8(1, a, as, nt, out, n);
}

/* ---- the kernel ------------------------------------------------------------ */

/* y[t * ys + r] = row r . token t for r < nr (MR at most), t < nt; with
 * `m1`, prep_block1 rows against tile_block1s (the m * s term) */
T512 INLINE void lanes_tile(int m1, int nrow, int64_t nb, const uint8_t *const *pr, const uint8_t *tiles, int nt,
                            float *y, size_t ys)
{
    const size_t psz = m1 ? sizeof(prep_block1) : sizeof(prep_block);
    const size_t tsz = m1 ? sizeof(tile_block1) : sizeof(tile_block);
    __m512 acc[MR];
    UNROLL for (int r = 0; r < nrow; r++)
        acc[r] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const tile_block *tb = (const tile_block *)(const void *)(tiles + (size_t)i * tsz);
        const prep_block *pb[MR];
        __m512i s[MR];
        UNROLL for (int r = 0; r < nrow; r++) {
            pb[r] = (const prep_block *)(const void *)(pr[r] + (size_t)i * psz);
            s[r] = _mm512_set1_epi32(pb[r]->corr);
        }
        UNROLL for (int j = 0; j < 8; j++) {
            const __m512i a = _mm512_loadu_si512(tb->a[j]);
            UNROLL for (int r = 0; r < nrow; r++) {
                int32_t w4;
                memcpy(&w4, pb[r]->w + 4 * j, 4);
                s[r] = _mm512_dpbusd_epi32(s[r], a, _mm512_set1_epi32(w4));
            }
        }
        const __m512 da = _mm512_loadu_ps(tb->d);
        UNROLL for (int r = 0; r < nrow; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r]), _mm512_mul_ps(_mm512_set1_ps(pb[r]->d), da), acc[r]);
        if (m1) {
            const __m512 sa = _mm512_loadu_ps(((const tile_block1 *)(const void *)tb)->s);
            UNROLL for (int r = 0; r < nrow; r++)
                acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(((const prep_block1 *)(const void *)pb[r])->m), sa, acc[r]);
        }
    }
    UNROLL for (int r = 0; r < nrow; r++) {
        float out[LANES];
        _mm512_storeu_ps(out, acc[r]);
        for (int t = 0; t < nt; t++)
            y[(size_t)t * ys + (size_t)r] = out[t];
    }
}

T512 INLINE void lanes_gemm_g(int m1, int64_t n, const void *prep, size_t ps, int nr, const void *tile, int nt,
                              float *y, size_t ys)
{
    const int64_t nb = n / 32;
    int r = 0;
    for (; r + MR <= nr; r += MR) {
        const uint8_t *pr[MR];
        for (int k = 0; k < MR; k++)
            pr[k] = (const uint8_t *)prep + (size_t)(r + k) * ps;
        lanes_tile(m1, MR, nb, pr, tile, nt, y + r, ys);
    }
    for (; r < nr; r++) {
        const uint8_t *pr[1] = {(const uint8_t *)prep + (size_t)r * ps};
        lanes_tile(m1, 1, nb, pr, tile, nt, y + r, ys);
    }
}

T512 static void lanes_gemm(int64_t n, const void *prep, size_t ps, int nr, const void *tile, int nt, float *y,
                            size_t ys)
{
    lanes_gemm_g(0, n, prep, ps, nr, tile, nt, y, ys);
}

T512 static void lanes_gemm1(int64_t n, const void *prep, size_t ps, int nr, const void *tile, int nt, float *y,
                             size_t ys)
{
    lanes_gemm_g(1, n, prep, ps, nr, tile, nt, y, ys);
}

/* ---- K-quants ---------------------------------------------------------------
 *
 * The K-quants' activations (Q8_K) have one scale per 256 elements, so a
 * super-block can be summed in integers: each sub-block's vpdpbusd chain
 * (32 or 16 elements) is multiplied by the sub-block's integer scale
 * (vpmulld) and added up, and only the super-block's total is converted
 * and scaled.  The mins of Q4_K/Q5_K/Q2_K (w = d*sc*q - dmin*m) need the
 * sums of the activations per sub-block: the tile carries Q8_K's bsums as
 * int16 pairs, and a few vpdpwssd with the mins (also int16 pairs) give
 * sum(m * bsum) per token, again an exact integer.  Worst cases stay
 * inside int32: |sc * chain| < 2^24 per sub-block, 16 sub-blocks. */

typedef struct prep_kblock {
    int8_t w[256];    /* the quants as signed bytes, element order (Q6_K: q-32) */
    int32_t sc[16];   /* the sub-blocks' integer scales (first 8 for 32-element ones) */
    int32_t mn[8];    /* mins of elements 32k..32k+15 and 32k+16..32k+31 as int16 pair k */
    int32_t corr;     /* -128 * sum_s sc_s * sum(w of sub-block s) */
    float d, dmin;
    int32_t pad[5];   /* 384 bytes: six cache lines */
} prep_kblock;

typedef struct tile_kblock {
    uint8_t a[64][LANES][4]; /* a[j][t] = elements 4j..4j+3 of token t, + 128 */
    int32_t bs[8][LANES];    /* bs[k][t] = bsums 2k and 2k+1 of token t (int16 pair) */
    float d[LANES];          /* each token's super-block scale (0: no token) */
} tile_kblock;

_Static_assert(sizeof(prep_kblock) == 384, "prep_kblock size");
_Static_assert(sizeof(tile_kblock) % 64 == 0, "tile_kblock size");

static size_t prep_size_k(int64_t n)
{
    return (size_t)(n / 256) * sizeof(prep_kblock);
}

static size_t tile_size_k(int64_t n)
{
    return (size_t)(n / 256) * sizeof(tile_kblock);
}

/* the sums of bytes 0..15 and 16..31 of w, as signed bytes */
T512 INLINE void sums16(__m256i w, int32_t *s0, int32_t *s1)
{
    const __m256i s = _mm256_sad_epu8(_mm256_xor_si256(w, _mm256_set1_epi8((char)0x80)), _mm256_setzero_si256());
    const __m128i lo = _mm256_castsi256_si128(s), hi = _mm256_extracti128_si256(s, 1);
    *s0 = (int32_t)(_mm_cvtsi128_si64(lo) + _mm_extract_epi64(lo, 1)) - 16 * 128;
    *s1 = (int32_t)(_mm_cvtsi128_si64(hi) + _mm_extract_epi64(hi, 1)) - 16 * 128;
}

/* Stores 32 quants starting at element e (in 16-element sub-blocks e/16 and
 * e/16 + 1, or one 32-element sub-block e/32 if len is 32); returns their
 * contribution sum_s sc_s * sum(w_s) to the correction. */
T512 INLINE int32_t kstore(prep_kblock *p, int e, int len, __m256i w)
{
    _mm256_storeu_si256((__m256i *)(void *)(p->w + e), w);
    int32_t s0, s1;
    sums16(w, &s0, &s1);
    if (len == 32)
        return p->sc[e / 32] * (s0 + s1);
    return p->sc[e / 16] * s0 + p->sc[e / 16 + 1] * s1;
}

T512 INLINE void kfinish(prep_kblock *p, int32_t sum, uint16_t d, uint16_t dmin)
{
    p->corr = -128 * sum;
    p->d = _cvtsh_ss(d);
    p->dmin = _cvtsh_ss(dmin);
    memset(p->pad, 0, sizeof p->pad);
}

/* Q4_K and Q5_K (qh != NULL): 32-byte group c of qs holds sub-block 2c in
 * its low nibbles and 2c+1 in its high ones; bit 2c (2c+1) of qh[l] is the
 * fifth bit of element l of sub-block 2c (2c+1). */
T512 INLINE void prep_q45_k(prep_kblock *p, const uint8_t *scales, const uint8_t *qs, const uint8_t *qh,
                            uint16_t d, uint16_t dmin)
{
    uint64_t sc8, mn8;
    ech_k4_scales_mins(scales, &sc8, &mn8);
    uint8_t sc[8], mn[8];
    memcpy(sc, &sc8, 8);
    memcpy(mn, &mn8, 8);
    for (int s = 0; s < 16; s++)
        p->sc[s] = s < 8 ? sc[s] : 0;
    for (int k = 0; k < 8; k++)
        p->mn[k] = (int32_t)((uint32_t)mn[k] * 0x10001u);
    const __m256i m4 = _mm256_set1_epi8(0x0F), b5 = _mm256_set1_epi8(16);
    const __m256i h = qh ? _mm256_loadu_si256((const __m256i *)(const void *)qh) : _mm256_setzero_si256();
    int32_t sum = 0;
    for (int c = 0; c < 4; c++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 32 * c));
        __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if (qh) {
            lo = _mm256_mask_add_epi8(lo, _mm256_test_epi8_mask(h, _mm256_set1_epi8((char)(1 << (2 * c)))), lo, b5);
            hi = _mm256_mask_add_epi8(hi, _mm256_test_epi8_mask(h, _mm256_set1_epi8((char)(2 << (2 * c)))), hi, b5);
        }
        sum += kstore(p, 64 * c, 32, lo) + kstore(p, 64 * c + 32, 32, hi);
    }
    kfinish(p, sum, d, dmin);
}

T512 static void prep_q4_k(const void *row, void *out, int64_t n)
{
    const ech_block_q4_K *b = row;
    prep_kblock *p = out;
    for (int64_t i = 0; i < n / 256; i++)
        prep_q45_k(&p[i], b[i].scales, b[i].qs, NULL, b[i].d, b[i].dmin);
}

T512 static void prep_q5_k(const void *row, void *out, int64_t n)
{
    const ech_block_q5_K *b = row;
    prep_kblock *p = out;
    for (int64_t i = 0; i < n / 256; i++)
        prep_q45_k(&p[i], b[i].scales, b[i].qs, b[i].qh, b[i].d, b[i].dmin);
}

/* Q6_K: element 128c + 32k + l has its low 4 bits in the low (k < 2) or
 * high nibble of ql[64c + 32(k&1) + l] and its high 2 bits at bit 2k of
 * qh[32c + l]. */
T512 static void prep_q6_k(const void *row, void *out, int64_t n)
{
    const ech_block_q6_K *b = row;
    prep_kblock *p = out;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3), b32 = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < n / 256; i++) {
        for (int s = 0; s < 16; s++)
            p[i].sc[s] = b[i].scales[s];
        memset(p[i].mn, 0, sizeof p[i].mn);
        int32_t sum = 0;
        for (int c = 0; c < 2; c++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(const void *)(b[i].ql + 64 * c));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(const void *)(b[i].ql + 64 * c + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(b[i].qh + 32 * c));
            for (int k = 0; k < 4; k++) {
                const __m256i l = k & 1 ? l1 : l0;
                const __m256i lo = _mm256_and_si256(k < 2 ? l : _mm256_srli_epi16(l, 4), m4);
                const __m256i hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * k), m2), 4);
                sum += kstore(&p[i], 128 * c + 32 * k, 16, _mm256_sub_epi8(_mm256_or_si256(lo, hi), b32));
            }
        }
        kfinish(&p[i], sum, b[i].d, 0);
    }
}

/* Q3_K: element 128c + 32j + l has its low 2 bits at bit 2j of
 * qs[32c + l]; a clear bit 4c + j of hmask[l] subtracts 4. */
T512 static void prep_q3_k(const void *row, void *out, int64_t n)
{
    const ech_block_q3_K *b = row;
    prep_kblock *p = out;
    const __m256i m2 = _mm256_set1_epi8(3), b4 = _mm256_set1_epi8(4);
    for (int64_t i = 0; i < n / 256; i++) {
        int8_t sc[16];
        ech_q3k_scales(b[i].scales, sc);
        for (int s = 0; s < 16; s++)
            p[i].sc[s] = sc[s];
        memset(p[i].mn, 0, sizeof p[i].mn);
        const __m256i hm = _mm256_loadu_si256((const __m256i *)(const void *)b[i].hmask);
        int32_t sum = 0;
        for (int c = 0; c < 2; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)(b[i].qs + 32 * c));
            for (int j = 0; j < 4; j++) {
                const __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m2);
                const __mmask32 set = _mm256_test_epi8_mask(hm, _mm256_set1_epi8((char)(1 << (4 * c + j))));
                sum += kstore(&p[i], 128 * c + 32 * j, 16, _mm256_mask_sub_epi8(v, (__mmask32)~set, v, b4));
            }
        }
        kfinish(&p[i], sum, b[i].d, 0);
    }
}

/* Q2_K: element 128c + 32j + l is bits 2j of qs[32c + l]; scale and min
 * per 16 in the low and high nibble of scales[]. */
T512 static void prep_q2_k(const void *row, void *out, int64_t n)
{
    const ech_block_q2_K *b = row;
    prep_kblock *p = out;
    const __m256i m2 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < n / 256; i++) {
        for (int s = 0; s < 16; s++)
            p[i].sc[s] = b[i].scales[s] & 0xF;
        for (int k = 0; k < 8; k++)
            p[i].mn[k] = (int32_t)((uint32_t)(b[i].scales[2 * k] >> 4) | (uint32_t)(b[i].scales[2 * k + 1] >> 4) << 16);
        int32_t sum = 0;
        for (int c = 0; c < 2; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)(b[i].qs + 32 * c));
            for (int j = 0; j < 4; j++)
                sum += kstore(&p[i], 128 * c + 32 * j, 16, _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m2));
        }
        kfinish(&p[i], sum, b[i].d, b[i].dmin);
    }
}

/* Interleave the Q8_K rows of nt <= 16 tokens (rows `as` bytes apart). */
T512 static void tile_q8_k(const void *a, size_t as, int nt, void *out, int64_t n)
{
    tile_kblock *tb = out;
    const __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int64_t i = 0; i < n / 256; i++) {
        uint32_t g[LANES][64];
        int32_t bs[LANES][8];
        float d[LANES];
        for (int t = 0; t < LANES; t++) {
            if (t < nt) {
                const ech_block_q8_K *b = (const ech_block_q8_K *)(const void *)((const uint8_t *)a + (size_t)t * as) + i;
                for (int k = 0; k < 8; k++) {
                    const __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)(b->qs + 32 * k));
                    _mm256_storeu_si256((__m256i *)(void *)(g[t] + 8 * k),
                                        _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)));
                }
                memcpy(bs[t], b->bsums, sizeof bs[t]);
                memcpy(&d[t], &b->d, sizeof d[t]);
            } else {
                memset(g[t], 0x80, sizeof g[t]); /* a' = 128: a = 0 */
                memset(bs[t], 0, sizeof bs[t]);
                d[t] = 0.0f;
            }
        }
        /* transpose 16 tokens x 64 (8) dwords into vectors of 16 tokens */
        const __m512i ia = _mm512_mullo_epi32(idx, _mm512_set1_epi32(64)), ib = _mm512_slli_epi32(idx, 3);
        for (int j = 0; j < 64; j++)
            _mm512_storeu_si512(tb[i].a[j], _mm512_i32gather_epi32(_mm512_add_epi32(ia, _mm512_set1_epi32(j)),
                                                                   (const void *)g, 4));
        for (int k = 0; k < 8; k++)
            _mm512_storeu_si512(tb[i].bs[k], _mm512_i32gather_epi32(_mm512_add_epi32(ib, _mm512_set1_epi32(k)),
                                                                    (const void *)bs, 4));
        memcpy(tb[i].d, d, sizeof d);
    }
}

/* y[t * ys + r] = row r . token t for r < nrow (MR at most), t < nt, with
 * sub-blocks of `len` (32 or 16) elements and, if `mins`, a min term. */
T512 INLINE void klanes_tile(int len, int mins, int nrow, int64_t nb, const prep_kblock *const *pr,
                             const tile_kblock *tb, int nt, float *y, size_t ys)
{
    __m512 acc[MR];
    UNROLL for (int r = 0; r < nrow; r++)
        acc[r] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        __m512i s[MR];
        UNROLL for (int r = 0; r < nrow; r++)
            s[r] = _mm512_set1_epi32(pr[r][i].corr);
        /* two sub-blocks per iteration: fully unrolled, GCC hoists loads
         * across sub-blocks and spills (no measurable speed difference) */
        for (int sb2 = 0; sb2 < 256 / len; sb2 += 2) {
            UNROLL for (int sb = sb2; sb < sb2 + 2; sb++) {
                __m512i p[MR];
                UNROLL for (int r = 0; r < nrow; r++)
                    p[r] = _mm512_setzero_si512();
                UNROLL for (int j = 0; j < len / 4; j++) {
                    const __m512i a = _mm512_loadu_si512(tb[i].a[sb * (len / 4) + j]);
                    UNROLL for (int r = 0; r < nrow; r++) {
                        int32_t w4;
                        memcpy(&w4, pr[r][i].w + sb * len + 4 * j, 4);
                        p[r] = _mm512_dpbusd_epi32(p[r], a, _mm512_set1_epi32(w4));
                    }
                }
                UNROLL for (int r = 0; r < nrow; r++)
                    s[r] = _mm512_add_epi32(s[r], _mm512_mullo_epi32(p[r], _mm512_set1_epi32(pr[r][i].sc[sb])));
            }
        }
        const __m512 da = _mm512_loadu_ps(tb[i].d);
        UNROLL for (int r = 0; r < nrow; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r]), _mm512_mul_ps(_mm512_set1_ps(pr[r][i].d), da), acc[r]);
        if (mins) {
            __m512i m[MR];
            UNROLL for (int r = 0; r < nrow; r++)
                m[r] = _mm512_setzero_si512();
            UNROLL for (int k = 0; k < 8; k++) {
                const __m512i b = _mm512_loadu_si512(tb[i].bs[k]);
                UNROLL for (int r = 0; r < nrow; r++)
                    m[r] = _mm512_dpwssd_epi32(m[r], b, _mm512_set1_epi32(pr[r][i].mn[k]));
            }
            UNROLL for (int r = 0; r < nrow; r++)
                acc[r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m[r]), _mm512_mul_ps(_mm512_set1_ps(pr[r][i].dmin), da),
                                          acc[r]);
        }
    }
    UNROLL for (int r = 0; r < nrow; r++) {
        float o[LANES];
        _mm512_storeu_ps(o, acc[r]);
        for (int t = 0; t < nt; t++)
            y[(size_t)t * ys + (size_t)r] = o[t];
    }
}

T512 INLINE void klanes_gemm(int len, int mins, int64_t n, const void *prep, size_t ps, int nr, const void *tile,
                             int nt, float *y, size_t ys)
{
    const int64_t nb = n / 256;
    int r = 0;
    for (; r + MR <= nr; r += MR) {
        const prep_kblock *pr[MR];
        for (int k = 0; k < MR; k++)
            pr[k] = (const prep_kblock *)(const void *)((const uint8_t *)prep + (size_t)(r + k) * ps);
        klanes_tile(len, mins, MR, nb, pr, tile, nt, y + r, ys);
    }
    for (; r < nr; r++) {
        const prep_kblock *pr[1] = {(const prep_kblock *)(const void *)((const uint8_t *)prep + (size_t)r * ps)};
        klanes_tile(len, mins, 1, nb, pr, tile, nt, y + r, ys);
    }
}

/* Q4_K, Q5_K: 32-element sub-blocks with mins */
T512 static void lanes_gemm_k32m(int64_t n, const void *prep, size_t ps, int nr, const void *tile, int nt, float *y,
                                 size_t ys)
{
    klanes_gemm(32, 1, n, prep, ps, nr, tile, nt, y, ys);
}

/* Q6_K, Q3_K: 16-element sub-blocks, no mins */
T512 static void lanes_gemm_k16(int64_t n, const void *prep, size_t ps, int nr, const void *tile, int nt, float *y,
                                size_t ys)
{
    klanes_gemm(16, 0, n, prep, ps, nr, tile, nt, y, ys);
}

/* Q2_K: 16-element sub-blocks with mins */
T512 static void lanes_gemm_k16m(int64_t n, const void *prep, size_t ps, int nr, const void *tile, int nt, float *y,
                                 size_t ys)
{
    klanes_gemm(16, 1, n, prep, ps, nr, tile, nt, y, ys);
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
    g[ECH_TYPE_Q5_0].lanes = base;
    g[ECH_TYPE_Q5_0].lanes.prep = prep_q5_0;
    const ech_lanes base1 = {.lanes = LANES, .prep_size = prep_size1, .tile_size = tile_size1,
                             .tile = tile_q8_1, .gemm = lanes_gemm1};
    g[ECH_TYPE_Q4_1].lanes = base1;
    g[ECH_TYPE_Q4_1].lanes.prep = prep_q4_1;
    g[ECH_TYPE_Q5_1].lanes = base1;
    g[ECH_TYPE_Q5_1].lanes.prep = prep_q5_1;

    const ech_lanes kbase = {.lanes = LANES, .prep_size = prep_size_k, .tile_size = tile_size_k,
                             .tile = tile_q8_k};
#define KSET(T, p, gm)                      \
    do {                                    \
        g[ECH_TYPE_##T].lanes = kbase;      \
        g[ECH_TYPE_##T].lanes.prep = p;     \
        g[ECH_TYPE_##T].lanes.gemm = gm;    \
    } while (0)
    KSET(Q4_K, prep_q4_k, lanes_gemm_k32m);
    KSET(Q5_K, prep_q5_k, lanes_gemm_k32m);
    KSET(Q6_K, prep_q6_k, lanes_gemm_k16);
    KSET(Q3_K, prep_q3_k, lanes_gemm_k16);
    KSET(Q2_K, prep_q2_k, lanes_gemm_k16m);
#undef KSET
}
