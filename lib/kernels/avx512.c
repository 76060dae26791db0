/* avx512.c - AVX-512 (F/BW/VL/DQ + VNNI + VBMI) kernels.
 *
 * Every function carries its own target attribute, so the file builds with
 * the library's generic x86-64 flags; dispatch.c only installs these after
 * CPUID said yes.
 *
 * The gemm kernels compute a tile of 4 weight rows x NT (1..4) tokens.  Each
 * activation vector is loaded (and its correction terms computed) once for
 * the 4 rows; each weight block is unpacked once for the NT tokens.  Integer
 * types multiply with vpdpbusd (u8 x s8 -> s32), which needs an unsigned
 * operand: 4-bit quants are unsigned already (the -8 offset becomes
 * -8 * sum(a), precomputed per activation block); Q8_0 weights get +128
 * (xor 0x80) and the correction -128 * sum(a).  Integer sums per block are
 * exact; they are scaled by d_w and d_a in float, so results differ from
 * ref.c only in float rounding and summation order.
 * Tiles narrower than 4 rows repeat row 0 and drop the extra results; each
 * row's arithmetic is the same whatever tile it is in.
 */
#include "config.h"

#include <immintrin.h>
#include <string.h>

#include "kernels/dispatch.h"
#include "kernels/entry.h"
#include "kernels/quants.h"
#include "kernels/ref.h"

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi,avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))
#define MR 4
#define PF_GROUPS 4 /* prefetch distance of the Q4_0/Q8_0/IQ4_NL kernels, in 8-block groups */
#define PFN_BYTES 2304 /* of the multi-token decode kernels (see q8_gemvn) */
#define PF1_BYTES 4608 /* of single-token Q4_0/IQ4_NL (q4_gemv) and of 2-4 tokens (prefetch_n) */
#define PF1K_BYTES 9216 /* of the single-token Q4_K (q4k_rows) and F16/BF16 (half_rows) kernels */


#define UNROLL _Pragma("GCC unroll 16")

/* nt (1..8) as a compile-time constant, for the decode kernels' NT */
#define GEMVN_SWITCH(CALL)                                                                                     \
    switch (nt) {                                                                                              \
    case 1: CALL(1); break;                                                                                    \
    case 2: CALL(2); break;                                                                                    \
    case 3: CALL(3); break;                                                                                    \
    case 4: CALL(4); break;                                                                                    \
    case 5: CALL(5); break;                                                                                    \
    case 6: CALL(6); break;                                                                                    \
    case 7: CALL(7); break;                                                                                    \
    default: CALL(8); break;                                                                                   \
    }

/* the sum of the 8 floats of v */
T512 INLINE float hsum_ps256(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)));
}

/* The prefetch of the decode kernels of NT > 1 tokens, `lines` cache lines
 * from p on: 2-4 tokens into L2, PF1_BYTES ahead, more into L1, PFN_BYTES
 * ahead (measurements at q8_gemvn) */
T512 INLINE void prefetch_n(const void *p, int NT, int lines)
{
    UNROLL for (int k = 0; k < lines; k++) {
        if (NT <= 4)
            _mm_prefetch((const char *)p + PF1_BYTES + 64 * k, _MM_HINT_T1);
        else
            _mm_prefetch((const char *)p + PFN_BYTES + 64 * k, _MM_HINT_T0);
    }
}

/* 8 fp16 scales at byte offsets 0, stride, ..., 7*stride from p, as floats */
T512 INLINE __m256 load_d8(const uint8_t *p, __m256i offs)
{
    __m256i g = _mm256_i32gather_epi32((const int *)(const void *)p, offs, 1);
    return _mm256_cvtph_ps(_mm256_cvtepi32_epi16(g));
}

/* [s[2p] x 8, s[2p+1] x 8] from 8 floats */
T512 INLINE __m512 pair_scales(__m256 s8, int p)
{
    const __m512i idx = _mm512_set_epi32(2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1,
                                         2 * p + 1, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p);
    return _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(s8));
}

/* ---- Q4_0 and Q8_0 x Q8_0 -------------------------------------------------- */

enum { K_Q4_0, K_Q8_0, K_IQ4_NL };

/* IQ4_NL's 16 values + 128, unsigned for vpdpbusd; the -128 * sum(a) comes
 * back through the correction */
T512 INLINE __m128i iq4nl_table_u8(void)
{
    return _mm_setr_epi8((char)1, 24, 45, 63, 79, 93, 106, 118, (char)129, (char)141, (char)153, (char)166,
                         (char)181, (char)197, (char)217, (char)241);
}

/* Q8_0: four 34-byte blocks (136 bytes) read as bytes 0..63 (A), 64..127 (B)
 * and 72..135 (C), never past the fourth block; vpermt2b gathers the quants
 * of blocks 0,1 (from A, B) and 2,3 (from B, C) and the four scales (A, B).
 * The quants get +128 (xor 0x80) to be vpdpbusd's unsigned operand.
 * Indices: block 0 is bytes 2..33 of A, block 1 bytes 36..67 (from 64 on,
 * B); block 2 is bytes 70..101 = B[6..37], block 3 bytes 104..135 = C[32..63]
 * (vpermt2b indices 64.. select the second table). */
static const uint8_t q8_idx[2][64] = {
    {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67},
    {6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127},
};

T512 INLINE void w_quad_q8(const uint8_t *blk, __m512i *w01, __m512i *w23, __m128i *d4)
{
    const __m512i A = _mm512_loadu_si512(blk), B = _mm512_loadu_si512(blk + 64), C = _mm512_loadu_si512(blk + 72);
    const __m512i x80 = _mm512_set1_epi8((char)0x80);
    *w01 = _mm512_xor_si512(_mm512_permutex2var_epi8(A, _mm512_loadu_si512(q8_idx[0]), B), x80);
    *w23 = _mm512_xor_si512(_mm512_permutex2var_epi8(B, _mm512_loadu_si512(q8_idx[1]), C), x80);
    /* scales at bytes 0, 34 (A) and 68, 102 (B[4], B[38]) */
    *d4 = _mm512_castsi512_si128(_mm512_permutex2var_epi8(
        A, _mm512_castsi128_si512(_mm_setr_epi8(0, 1, 34, 35, 68, 69, 102, 103, 0, 0, 0, 0, 0, 0, 0, 0)), B));
}

/* 4-bit types: four 18-byte blocks (72 bytes) are read as bytes 0..63 (A)
 * and 8..71 (B), never past the fourth block.  vpermt2b picks each block's
 * 16 quant bytes twice, [b0 b0 b1 b1] and [b2 b2 b3 b3] by 128-bit lanes;
 * shifting the second copy right by 4 and masking gives the quants in
 * activation order (low nibbles are elements 0..15, high nibbles 16..31). */
T512 INLINE void w_quad_4bit(int kind, const uint8_t *blk, __m512i *w01, __m512i *w23, __m128i *d4)
{
    const __m512i A = _mm512_loadu_si512(blk), B = _mm512_loadu_si512(blk + 8);
    const __m512i i01 = _mm512_set_epi8(35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20,
                                        35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20,
                                        17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2,
                                        17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2);
    /* block 2's quants are bytes 38..53 of A; block 3's bytes 48..63 of B (64 + i) */
    const __m512i i23 = _mm512_set_epi8(127, 126, 125, 124, 123, 122, 121, 120, 119, 118, 117, 116, 115, 114, 113, 112,
                                        127, 126, 125, 124, 123, 122, 121, 120, 119, 118, 117, 116, 115, 114, 113, 112,
                                        53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38,
                                        53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512i x = _mm512_permutex2var_epi8(A, i01, B), y = _mm512_permutex2var_epi8(A, i23, B);
    x = _mm512_and_si512(_mm512_mask_srli_epi16(x, 0xFF00FF00u, x, 4), m4);
    y = _mm512_and_si512(_mm512_mask_srli_epi16(y, 0xFF00FF00u, y, 4), m4);
    if (kind == K_IQ4_NL) {
        const __m512i tab = _mm512_broadcast_i32x4(iq4nl_table_u8());
        x = _mm512_shuffle_epi8(tab, x);
        y = _mm512_shuffle_epi8(tab, y);
    }
    *w01 = x;
    *w23 = y;
    /* the four fp16 scales, bytes 0-1, 18-19, 36-37, 54-55 of A */
    *d4 = _mm512_castsi512_si128(_mm512_permutexvar_epi8(
        _mm512_castsi128_si512(_mm_setr_epi8(0, 1, 18, 19, 36, 37, 54, 55, 0, 0, 0, 0, 0, 0, 0, 0)), A));
}

T512 INLINE void q32_tile(int kind, int mr, int NT, int64_t nb, const uint8_t *const *wr, const uint8_t *const *at,
                          float out[MR][4])
{
    const size_t bsz = kind == K_Q8_0 ? 34 : 18;
    const int sh = kind == K_Q4_0 ? 3 : 7; /* correction: -(8 or 128) * sum(a) */
    const __m256i aoffs = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(34));
    const __m512i ones = _mm512_set1_epi8(1);
    __m512 acc[MR][4];
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            acc[r][t] = _mm512_setzero_ps();
    const int64_t ng = nb / 8;
    for (int64_t g = 0; g < ng; g++) {
        __m256 da[4], sc[MR][4];
        __m512i w4[MR][4];
        UNROLL for (int t = 0; t < NT; t++)
            da[t] = load_d8(at[t] + g * 8 * 34, aoffs);
        UNROLL for (int r = 0; r < mr; r++) {
            const uint8_t *gb = wr[r] + g * 8 * bsz;
            UNROLL for (int k = 0; k < (int)(8 * bsz / 64); k++)
                if (mr > 1) _mm_prefetch((const char *)(gb + PF_GROUPS * 8 * bsz + 64 * k), _MM_HINT_T0);
            __m128i d0, d1;
            if (kind == K_Q8_0) {
                w_quad_q8(gb, &w4[r][0], &w4[r][1], &d0);
                w_quad_q8(gb + 4 * bsz, &w4[r][2], &w4[r][3], &d1);
            } else {
                w_quad_4bit(kind, gb, &w4[r][0], &w4[r][1], &d0);
                w_quad_4bit(kind, gb + 4 * bsz, &w4[r][2], &w4[r][3], &d1);
            }
            const __m256 dw = _mm256_cvtph_ps(_mm_unpacklo_epi64(d0, d1));
            UNROLL for (int t = 0; t < NT; t++)
                sc[r][t] = _mm256_mul_ps(dw, da[t]); /* d_w * d_a per block */
        }
        UNROLL for (int p = 0; p < 4; p++) {
            __m512i av[4], corr[4];
            UNROLL for (int t = 0; t < NT; t++) {
                const uint8_t *ab = at[t] + (g * 8 + 2 * p) * 34;
                av[t] = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(ab + 2)));
                av[t] = _mm512_inserti64x4(av[t], _mm256_loadu_si256((const __m256i *)(const void *)(ab + 36)), 1);
                corr[t] = _mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, av[t]), sh);
                corr[t] = _mm512_sub_epi32(_mm512_setzero_si512(), corr[t]);
            }
            UNROLL for (int r = 0; r < mr; r++) {
                const __m512i w = w4[r][p];
                UNROLL for (int t = 0; t < NT; t++) {
                    __m512i s = _mm512_dpbusd_epi32(corr[t], w, av[t]);
                    acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), pair_scales(sc[r][t], p), acc[r][t]);
                }
            }
        }
    }
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++) {
            float s = _mm512_reduce_add_ps(acc[r][t]);
            int64_t done = ng * 8;
            if (done < nb) { /* the last < 8 blocks */
                float tail;
                const uint8_t *wt = wr[r] + done * bsz, *a = at[t] + done * 34;
                if (kind == K_Q4_0)
                    ech_ref_vec_dot_q4_0((nb - done) * 32, &tail, wt, a);
                else if (kind == K_Q8_0)
                    ech_ref_vec_dot_q8_0((nb - done) * 32, &tail, wt, a);
                else
                    ech_ref_vec_dot_iq4_nl((nb - done) * 32, &tail, wt, a);
                s += tail;
            }
            out[r][t] = s;
        }
}

/* ---- decode kernels for Q4_0 and IQ4_NL -------------------------------------
 *
 * 16 blocks (288 bytes) of a row per step, for 1-8 tokens.  The weights are
 * transposed in registers so that lane j of every vector holds 4 quants of
 * block j (q4_gather16); after the nibble split each block's 8 dwords meet
 * the activations in one lane, so a token's 16 block sums come out of 8
 * vpdpbusd with no horizontal adds, already in the lanes of the 16 scales.
 * The activations are rearranged once per product to match (q8_t16), with
 * the quants' offset term (-8 or -128 times the sum of a block's quants)
 * precomputed as the sums' starting value.  2-4 tokens take two rows at a
 * time, each activation vector loaded once for both; one token stays on one
 * row (two rows, two streams, halved TinyLlama decode).
 * Against the previous kernel (8 blocks per step, lanes 8h + k, an add, an
 * extract and an add per token and step, token after token), hot in L2 on
 * one thread (bench/kernels 512 2048, BENCH_CPUTIME, best of 3): 4 tokens
 * 34.2 against 42.3 us, 2 tokens 22.7 against 26.7, 1 token 16.7 against
 * 19.2; ech-serve with 4 streams on TinyLlama Q4_0, 2 threads, 4
 * interleaved rounds: 130.4 against 119.2 tokens/s. */
typedef struct q8_t16 {
    int32_t a[8][16];  /* a[2d + h][j]: the 4 quants of block j at 16h + 4d */
    int32_t corr[16];  /* -(8 or 128) times the sum of block j's quants */
    float d[16];       /* block j's scale */
} q8_t16;              /* per group of 16 blocks; the last group padded with zero blocks */

static size_t pack_size_t16(int64_t n)
{
    return (size_t)((n / 32 + 15) / 16) * sizeof(q8_t16);
}

/* offset: the weight quants' offset, 8 (Q4_0) or 128 (IQ4_NL's shifted table) */
static void pack_t16(const void *src, void *dst, int64_t n, int32_t offset)
{
    const ech_block_q8_0 *a = src;
    const int64_t nb = n / 32;
    q8_t16 *o = dst;
    for (int64_t g = 0; g < (nb + 15) / 16; g++) {
        memset(&o[g], 0, sizeof o[g]);
        for (int j = 0; j < 16 && 16 * g + j < nb; j++) {
            const ech_block_q8_0 *b = a + 16 * g + j;
            for (int d = 0; d < 4; d++)
                for (int h = 0; h < 2; h++)
                    memcpy(&o[g].a[2 * d + h][j], b->qs + 16 * h + 4 * d, 4);
            int32_t sum = 0;
            for (int i = 0; i < 32; i++)
                sum += b->qs[i];
            o[g].corr[j] = -offset * sum;
            o[g].d[j] = ech_fp16_to_fp32(b->d);
        }
    }
}

static void pack_t16_q4_0(const void *src, void *dst, int64_t n)
{
    pack_t16(src, dst, n, 8);
}

static void pack_t16_iq4_nl(const void *src, void *dst, int64_t n)
{
    pack_t16(src, dst, n, 128);
}

/* bytes off..off+63 of p, those from valid on read as zero and not touched */
T512 INLINE __m512i load_valid(const uint8_t *p, int64_t off, int64_t valid)
{
    if (valid >= off + 64)
        return _mm512_loadu_si512(p + off);
    const __mmask64 m = valid <= off ? 0 : ~0ull >> (64 - (valid - off));
    return _mm512_maskz_loadu_epi8(m, p + off);
}

/* The 8 blocks at blk + off, of which blk's first valid bytes exist: two
 * vpermt2b put quant dwords 0, 1 of block k into lanes k, 8 + k (*qa, from
 * bytes 18k + 2 .. 18k + 9) and dwords 2, 3 (*qb); *d gets the 8 fp16
 * scales (bytes 18k, 18k + 1). */
T512 INLINE void q4_gather8(const uint8_t *blk, int64_t off, int64_t valid, __m512i ix, __m512i *qa, __m512i *qb,
                            __m128i *d)
{
    const __m512i didx = _mm512_castsi128_si512(_mm_setr_epi8(0, 1, 18, 19, 36, 37, 54, 55, 72, 73, 90, 91, 108, 109, 126, 127));
    *qa = _mm512_permutex2var_epi8(load_valid(blk, off + 2, valid), ix, load_valid(blk, off + 72, valid));
    *qb = _mm512_permutex2var_epi8(load_valid(blk, off + 10, valid), ix, load_valid(blk, off + 80, valid));
    *d = _mm512_castsi512_si128(
        _mm512_permutex2var_epi8(load_valid(blk, off, valid), didx, load_valid(blk, off + 64, valid)));
}

/* The 16 blocks at blk, of which the first valid bytes exist (288 for a
 * whole group), gathered for vpdpbusd: q[d] holds quant dword d of block j
 * in lane j, *dw gets the scales.  One vshufi64x2 per dword joins the two
 * halves of q4_gather8. */
T512 INLINE void q4_gather16(const uint8_t *blk, int64_t valid, __m512i ix, __m512i q[4], __m512 *dw)
{
    __m512i qa[2], qb[2];
    __m128i d[2];
    UNROLL for (int s = 0; s < 2; s++)
        q4_gather8(blk, 144 * s, valid, ix, &qa[s], &qb[s], &d[s]);
    q[0] = _mm512_shuffle_i64x2(qa[0], qa[1], 0x44);
    q[1] = _mm512_shuffle_i64x2(qa[0], qa[1], 0xEE);
    q[2] = _mm512_shuffle_i64x2(qb[0], qb[1], 0x44);
    q[3] = _mm512_shuffle_i64x2(qb[0], qb[1], 0xEE);
    *dw = _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(d[0]), d[1], 1));
}

/* acc[r][t] += the 16 blocks at blk[r] . o[t], per block, for R (1, 2) rows
 * and NT tokens.  Each weight vector is unpacked once for the tokens (low
 * nibbles of dword d meet a[2d], high ones a[2d + 1]) and each activation
 * vector loaded once for the rows.  The loops run vector by vector, all
 * tokens and rows in turn, so that their vpdpbusd chains interleave: token
 * by token the 8-deep chains left the core waiting on their latency (a
 * loop of just these loads and vpdpbusd, 4 tokens, hot in L1: 20 against
 * 13 cycles per token and 16 blocks).  One token splits its chain in two. */
T512 INLINE void q4_t16(int kind, int R, int NT, const uint8_t *const *blk, int64_t valid, __m512i ix,
                        const q8_t16 *const *o, __m512 acc[2][8])
{
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i tab = _mm512_broadcast_i32x4(iq4nl_table_u8());
    const int C = NT == 1 ? 2 : 1; /* chains per row and token */
    __m512i q[2][4], s[2][8][2];
    __m512 dw[2];
    UNROLL for (int r = 0; r < R; r++)
        q4_gather16(blk[r], valid, ix, q[r], &dw[r]);
    UNROLL for (int t = 0; t < NT; t++)
        UNROLL for (int r = 0; r < R; r++) {
            s[r][t][0] = _mm512_load_si512(o[t]->corr);
            s[r][t][1] = _mm512_setzero_si512();
        }
    UNROLL for (int v = 0; v < 8; v++) {
        __m512i wv[2];
        UNROLL for (int r = 0; r < R; r++) {
            wv[r] = _mm512_and_si512(v % 2 ? _mm512_srli_epi16(q[r][v / 2], 4) : q[r][v / 2], m4);
            if (kind == K_IQ4_NL) /* table + 128: unsigned for vpdpbusd */
                wv[r] = _mm512_shuffle_epi8(tab, wv[r]);
        }
        UNROLL for (int t = 0; t < NT; t++) {
            __m512i av = _mm512_load_si512(o[t]->a[v]);
            if (R > 1) /* one load for both rows, not one folded into each vpdpbusd */
                __asm__("" : "+v"(av));
            UNROLL for (int r = 0; r < R; r++)
                s[r][t][v % C] = _mm512_dpbusd_epi32(s[r][t][v % C], wv[r], av);
        }
    }
    UNROLL for (int t = 0; t < NT; t++) {
        const __m512 da = _mm512_load_ps(o[t]->d);
        UNROLL for (int r = 0; r < R; r++) {
            const __m512i st = C == 2 ? _mm512_add_epi32(s[r][t][0], s[r][t][1]) : s[r][t][0];
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(st), _mm512_mul_ps(dw[r], da), acc[r][t]);
        }
    }
}

/* q4_t16 for a row's last 1-8 blocks (valid bytes, <= 144), at 256 bits:
 * lanes 0-7 of q4_gather8's vectors are these blocks, the rest would be
 * zero padding.  (A 768-wide row, 110M's, is 16 + 8 blocks: padded to 16,
 * its last 8 would cost as much as the first 16.) */
T512 INLINE void q4_t8(int kind, int R, int NT, const uint8_t *const *blk, int64_t valid, __m512i ix,
                       const q8_t16 *const *o, __m512 acc[2][8])
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i tab = _mm256_broadcastsi128_si256(iq4nl_table_u8());
    const int C = NT == 1 ? 2 : 1; /* chains per row and token, as in q4_t16 */
    __m256i q[2][4], s[2][8][2];
    __m256 dw[2];
    UNROLL for (int r = 0; r < R; r++) {
        __m512i qa, qb;
        __m128i d;
        q4_gather8(blk[r], 0, valid, ix, &qa, &qb, &d);
        q[r][0] = _mm512_castsi512_si256(qa);
        q[r][1] = _mm512_extracti64x4_epi64(qa, 1);
        q[r][2] = _mm512_castsi512_si256(qb);
        q[r][3] = _mm512_extracti64x4_epi64(qb, 1);
        dw[r] = _mm256_cvtph_ps(d);
    }
    UNROLL for (int t = 0; t < NT; t++)
        UNROLL for (int r = 0; r < R; r++) {
            s[r][t][0] = _mm256_load_si256((const __m256i *)(const void *)o[t]->corr);
            s[r][t][1] = _mm256_setzero_si256();
        }
    UNROLL for (int v = 0; v < 8; v++) {
        __m256i wv[2];
        UNROLL for (int r = 0; r < R; r++) {
            wv[r] = _mm256_and_si256(v % 2 ? _mm256_srli_epi16(q[r][v / 2], 4) : q[r][v / 2], m4);
            if (kind == K_IQ4_NL)
                wv[r] = _mm256_shuffle_epi8(tab, wv[r]);
        }
        UNROLL for (int t = 0; t < NT; t++) {
            const __m256i av = _mm256_load_si256((const __m256i *)(const void *)o[t]->a[v]);
            UNROLL for (int r = 0; r < R; r++)
                s[r][t][v % C] = _mm256_dpbusd_epi32(s[r][t][v % C], wv[r], av);
        }
    }
    UNROLL for (int t = 0; t < NT; t++) {
        const __m256 da = _mm256_load_ps(o[t]->d);
        UNROLL for (int r = 0; r < R; r++) {
            const __m256i st = C == 2 ? _mm256_add_epi32(s[r][t][0], s[r][t][1]) : s[r][t][0];
            acc[r][t] = _mm512_add_ps(acc[r][t], _mm512_zextps256_ps512(_mm256_mul_ps(_mm256_cvtepi32_ps(st),
                                                                                      _mm256_mul_ps(dw[r], da))));
        }
    }
}

/* rows r .. r + R - 1 (R = 1, 2) of the product, for NT tokens */
T512 INLINE void q4_rows16(int kind, int R, int NT, int64_t nb, const uint8_t *row, size_t ws, __m512i ix,
                           const q8_t16 *const *o0, float *y, size_t ys)
{
    __m512 acc[2][8];
    const uint8_t *blk[2];
    const q8_t16 *o[8];
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int t = 0; t < NT; t++)
            acc[r][t] = _mm512_setzero_ps();
    for (int64_t g = 0; 16 * g < nb; g++) {
        const int64_t left = nb - 16 * g; /* blocks from this group on */
        UNROLL for (int r = 0; r < R; r++) {
            blk[r] = row + (size_t)r * ws + 288 * g;
            /* several tokens are compute bound and the hardware prefetcher
             * falls behind; one token gains from a prefetch further ahead
             * (4.5 KiB: +16 % decode on one thread, +10 % on two, in an
             * interleaved A/B on TinyLlama Q4_0).  Two to four tokens fetch
             * into L2 only, 4.5 KiB ahead: from DRAM on two threads
             * (bench/kernels BENCH_NTOK=2,4,8, three interleaved rounds) 4
             * tokens ran 17-22 GB/s against 14-16 for L1 at PFN_BYTES, 2
             * tokens 26-27 against 18-24; 8 tokens lost 10 % that way.
             * The last group prefetches too: rows of 16 + 8 blocks (110M)
             * otherwise waited on a quarter of their bytes. */
            if (NT == 1)
                UNROLL for (int k = 0; k < 5; k++)
                    _mm_prefetch((const char *)blk[r] + PF1_BYTES + 64 * k, _MM_HINT_T0);
            else
                prefetch_n(blk[r], NT, 5);
        }
        UNROLL for (int t = 0; t < NT; t++)
            o[t] = o0[t] + g;
        if (left >= 16)
            q4_t16(kind, R, NT, blk, 288, ix, o, acc);
        else if (left > 8) /* the last 9-15 blocks, against zero padding */
            q4_t16(kind, R, NT, blk, 18 * left, ix, o, acc);
        else
            q4_t8(kind, R, NT, blk, 18 * left, ix, o, acc);
    }
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int t = 0; t < NT; t++)
            y[(size_t)t * ys + (size_t)r] = _mm512_reduce_add_ps(acc[r][t]);
}

T512 INLINE void q4_gemv(int kind, int NT, int64_t n, const void *w, size_t ws, int64_t nr, const void *a,
                         size_t as, float *y, size_t ys)
{
    /* vpermt2b indices: byte i of lane 8h + k = byte 4h + i of block k's
     * quants (qa; qb the same from 8 bytes further), from the two loads at
     * 2 and 72 bytes (10 and 80) */
    uint8_t ixb[64];
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 8; k++)
            for (int i = 0; i < 4; i++) {
                const int at = 18 * k + 2 + 4 * h + i;
                ixb[4 * (8 * h + k) + i] = (uint8_t)(k < 4 ? at - 2 : 64 + at - 72);
            }
    const __m512i ix = _mm512_loadu_si512(ixb);
    const q8_t16 *o0[8];
    UNROLL for (int t = 0; t < NT; t++)
        o0[t] = (const q8_t16 *)(const void *)((const uint8_t *)a + (size_t)t * as);
    const uint8_t *wb = w;
    /* 2-4 tokens take two rows at a time, sharing the activation loads */
    int64_t r = 0;
    if (NT > 1 && NT <= 4)
        for (; r + 1 < nr; r += 2)
            q4_rows16(kind, 2, NT, n / 32, wb + (size_t)r * ws, ws, ix, o0, y + r, ys);
    for (; r < nr; r++)
        q4_rows16(kind, 1, NT, n / 32, wb + (size_t)r * ws, ws, ix, o0, y + r, ys);
}

T512 static void gemv_q4_0_t16(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, float *y)
{
    q4_gemv(K_Q4_0, 1, n, w, ws, nr, a, 0, y, 0);
}

T512 static void gemv_iq4_nl_t16(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, float *y)
{
    q4_gemv(K_IQ4_NL, 1, n, w, ws, nr, a, 0, y, 0);
}

#define CALLN_Q4(NT) q4_gemv(q4kind, NT, n, w, ws, nr, a, as, y, ys)
#define GEMVN_Q4(name, kind)                                                                                   \
    T512 static void name(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as, int nt,   \
                          float *y, size_t ys)                                                                 \
    {                                                                                                          \
        const int q4kind = kind;                                                                               \
        GEMVN_SWITCH(CALLN_Q4)                                                                                 \
    }
GEMVN_Q4(gemvn_q4_0, K_Q4_0)
GEMVN_Q4(gemvn_iq4_nl, K_IQ4_NL)

/* ---- decode kernels for Q4_1, Q5_0 and Q5_1 ---------------------------------
 *
 * One row at a time with 256-bit loads and no cross-lane shuffle in the
 * inner loop: the activations are rearranged once per product (q8_oct) so
 * that a pair of weight blocks, loaded as-is, lines up with them, and each
 * token's 8 block sums come out of 4 vectors with unpacks and adds.  Q5_0 takes
 * Q8_0 activations (pack_oct; its quants' offset 16 comes back as
 * -16 * sum(a)); Q4_1 and Q5_1 take Q8_1 activations, whose packed form
 * carries s = d * sum(q) for the m * s term instead of the integer sums. */
typedef struct q8_oct {
    int8_t lo[4][32];  /* pair p: elements 0..15 of blocks 2p and 2p+1 */
    int8_t hi[4][32];  /* elements 16..31 of the same blocks */
    int32_t sum[8];    /* each block's sum of quants, in oct_order */
    float d[8];        /* each block's scale, in oct_order */
} q8_oct;              /* per group of 8 blocks; the last nb % 8 blocks follow as Q8_0 */

/* the order in which hsum4_epi32 (as two rounds of vphaddd) leaves the 8 block sums */
static const int oct_order[8] = {0, 2, 4, 6, 1, 3, 5, 7};

static size_t pack_size_oct(int64_t n)
{
    const int64_t nb = n / 32;
    return (size_t)(nb / 8) * sizeof(q8_oct) + (size_t)(nb % 8) * sizeof(ech_block_q8_0);
}

static void pack_oct(const void *src, void *dst, int64_t n)
{
    const ech_block_q8_0 *a = src;
    const int64_t nb = n / 32, ng = nb / 8;
    q8_oct *o = dst;
    for (int64_t g = 0; g < ng; g++) {
        const ech_block_q8_0 *b = a + 8 * g;
        for (int p = 0; p < 4; p++)
            for (int h = 0; h < 2; h++) {
                memcpy(o[g].lo[p] + 16 * h, b[2 * p + h].qs, 16);
                memcpy(o[g].hi[p] + 16 * h, b[2 * p + h].qs + 16, 16);
            }
        for (int i = 0; i < 8; i++) {
            int32_t sum = 0;
            for (int j = 0; j < 32; j++)
                sum += b[oct_order[i]].qs[j];
            o[g].sum[i] = sum;
            o[g].d[i] = ech_fp16_to_fp32(b[oct_order[i]].d);
        }
    }
    memcpy(o + ng, a + 8 * ng, (size_t)(nb % 8) * sizeof(ech_block_q8_0));
}

/* 4 vectors of [2 x 4] partial sums -> the 8 sums in oct_order, as two
 * rounds of vphaddd would leave them; unpacks and adds, because vphaddd
 * runs at one per two cycles on Zen 4 */
T512 INLINE __m256i hsum4_epi32(const __m256i *s)
{
    const __m256i t0 = _mm256_add_epi32(_mm256_unpacklo_epi32(s[0], s[1]), _mm256_unpackhi_epi32(s[0], s[1]));
    const __m256i t1 = _mm256_add_epi32(_mm256_unpacklo_epi32(s[2], s[3]), _mm256_unpackhi_epi32(s[2], s[3]));
    return _mm256_add_epi32(_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1));
}

enum { K_Q4_1 = 3, K_Q5_0, K_Q5_1 };

typedef struct q8_oct1 {
    int8_t lo[4][32];
    int8_t hi[4][32];
    float s[8];        /* each block's s field, in oct_order */
    float d[8];
} q8_oct1;             /* per group of 8 blocks; the last nb % 8 blocks follow as Q8_1 */

_Static_assert(sizeof(q8_oct1) == sizeof(q8_oct), "q8_oct1 keeps q8_oct's size and alignment");

static size_t pack_size_oct1(int64_t n)
{
    const int64_t nb = n / 32;
    return (size_t)(nb / 8) * sizeof(q8_oct1) + (size_t)(nb % 8) * sizeof(ech_block_q8_1);
}

static void pack_oct1(const void *src, void *dst, int64_t n)
{
    const ech_block_q8_1 *a = src;
    const int64_t nb = n / 32, ng = nb / 8;
    q8_oct1 *o = dst;
    for (int64_t g = 0; g < ng; g++) {
        const ech_block_q8_1 *b = a + 8 * g;
        for (int p = 0; p < 4; p++)
            for (int h = 0; h < 2; h++) {
                memcpy(o[g].lo[p] + 16 * h, b[2 * p + h].qs, 16);
                memcpy(o[g].hi[p] + 16 * h, b[2 * p + h].qs + 16, 16);
            }
        for (int i = 0; i < 8; i++) {
            o[g].s[i] = ech_fp16_to_fp32(b[oct_order[i]].s);
            o[g].d[i] = ech_fp16_to_fp32(b[oct_order[i]].d);
        }
    }
    memcpy(o + ng, a + 8 * ng, (size_t)(nb % 8) * sizeof(ech_block_q8_1));
}

/* block size, and offsets of qs and qh in a block */
#define MQ_BSZ(kind) ((kind) == K_Q4_1 ? 20 : (kind) == K_Q5_0 ? 22 : 24)
#define MQ_QOFF(kind) ((kind) == K_Q4_1 ? 4 : (kind) == K_Q5_0 ? 6 : 8)
#define MQ_HOFF(kind) ((kind) == K_Q5_0 ? 2 : 4)

/* acc[t] += the 8 blocks at blk . token t, per block in oct_order */
T512 INLINE void mq_oct(int kind, int NT, const uint8_t *blk, const void *const *o, __m256 *acc)
{
    const int bsz = MQ_BSZ(kind), qoff = MQ_QOFF(kind), q5 = kind != K_Q4_1;
    const __m256i m4 = _mm256_set1_epi8(0x0F), b5 = _mm256_set1_epi8(16);
    __m256i lo[4], hi[4];
    UNROLL for (int p = 0; p < 4; p++) {
        const uint8_t *b0 = blk + 2 * p * bsz, *b1 = b0 + bsz;
        const __m256i v = _mm256_loadu2_m128i((const __m128i *)(const void *)(b1 + qoff),
                                              (const __m128i *)(const void *)(b0 + qoff));
        lo[p] = _mm256_and_si256(v, m4);
        hi[p] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        if (q5) { /* bit j of qh: the fifth bit of element j */
            uint32_t h0, h1;
            memcpy(&h0, b0 + MQ_HOFF(kind), 4);
            memcpy(&h1, b1 + MQ_HOFF(kind), 4);
            lo[p] = _mm256_mask_add_epi8(lo[p], _cvtu32_mask32((h0 & 0xFFFFu) | (h1 << 16)), lo[p], b5);
            hi[p] = _mm256_mask_add_epi8(hi[p], _cvtu32_mask32((h0 >> 16) | (h1 & 0xFFFF0000u)), hi[p], b5);
        }
    }
    /* the first 4 bytes of each block: d, and m for Q4_1/Q5_1 */
    const __m256i dm = _mm256_i32gather_epi32((const int *)(const void *)blk,
                                              _mm256_setr_epi32(0, 2 * bsz, 4 * bsz, 6 * bsz, bsz, 3 * bsz, 5 * bsz,
                                                                7 * bsz), 1);
    const __m256 dw = _mm256_cvtph_ps(_mm256_cvtepi32_epi16(dm));
    const __m256 mw = _mm256_cvtph_ps(_mm256_cvtepi32_epi16(_mm256_srli_epi32(dm, 16)));
    UNROLL for (int t = 0; t < NT; t++) {
        const q8_oct *a = o[t];
        __m256i s[4];
        UNROLL for (int p = 0; p < 4; p++) {
            s[p] = _mm256_dpbusd_epi32(_mm256_setzero_si256(), lo[p],
                                       _mm256_load_si256((const __m256i *)(const void *)a->lo[p]));
            s[p] = _mm256_dpbusd_epi32(s[p], hi[p], _mm256_load_si256((const __m256i *)(const void *)a->hi[p]));
        }
        __m256i h = hsum4_epi32(s);
        if (kind == K_Q5_0) {
            h = _mm256_sub_epi32(h, _mm256_slli_epi32(_mm256_load_si256((const __m256i *)(const void *)a->sum), 4));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(h), _mm256_mul_ps(dw, _mm256_load_ps(a->d)), acc[t]);
        } else {
            const q8_oct1 *a1 = o[t];
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(h), _mm256_mul_ps(dw, _mm256_load_ps(a1->d)), acc[t]);
            acc[t] = _mm256_fmadd_ps(mw, _mm256_load_ps(a1->s), acc[t]);
        }
    }
}

T512 INLINE void mq_gemv(int kind, int NT, int64_t n, const void *w, size_t ws, int64_t nr, const void *a,
                         size_t as, float *y, size_t ys)
{
    const int64_t nb = n / 32, ng = nb / 8;
    const size_t gsz = 8 * (size_t)MQ_BSZ(kind), osz = sizeof(q8_oct);
    for (int64_t r = 0; r < nr; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * ws;
        __m256 acc[8];
        UNROLL for (int t = 0; t < NT; t++)
            acc[t] = _mm256_setzero_ps();
        for (int64_t g = 0; g < ng; g++) {
            const void *o[8];
            UNROLL for (int t = 0; t < NT; t++)
                o[t] = (const uint8_t *)a + (size_t)t * as + (size_t)g * osz;
            mq_oct(kind, NT, row + gsz * (size_t)g, o, acc);
        }
        UNROLL for (int t = 0; t < NT; t++) {
            float sum = hsum_ps256(acc[t]);
            if (nb > 8 * ng) {
                float tail;
                const uint8_t *ta = (const uint8_t *)a + (size_t)t * as + (size_t)ng * osz, *tw = row + gsz * (size_t)ng;
                const int64_t m = (nb - 8 * ng) * 32;
                if (kind == K_Q4_1)
                    ech_ref_vec_dot_q4_1(m, &tail, tw, ta);
                else if (kind == K_Q5_0)
                    ech_ref_vec_dot_q5_0(m, &tail, tw, ta);
                else
                    ech_ref_vec_dot_q5_1(m, &tail, tw, ta);
                sum += tail;
            }
            y[(size_t)t * ys + (size_t)r] = sum;
        }
    }
}

#define GEMV_MQ(name, kind)                                                                                    \
    T512 static void name(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, float *y)            \
    {                                                                                                          \
        mq_gemv(kind, 1, n, w, ws, nr, a, 0, y, 0);                                                            \
    }
#define CALLN_MQ(NT) mq_gemv(mqkind, NT, n, w, ws, nr, a, as, y, ys)
#define GEMVN_MQ(name, kind)                                                                                   \
    T512 static void name(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as, int nt,   \
                          float *y, size_t ys)                                                                 \
    {                                                                                                          \
        const int mqkind = kind;                                                                               \
        GEMVN_SWITCH(CALLN_MQ)                                                                                 \
    }
GEMV_MQ(gemv_q4_1_oct, K_Q4_1)
GEMV_MQ(gemv_q5_0_oct, K_Q5_0)
GEMV_MQ(gemv_q5_1_oct, K_Q5_1)
GEMVN_MQ(gemvn_q4_1, K_Q4_1)
GEMVN_MQ(gemvn_q5_0, K_Q5_0)
GEMVN_MQ(gemvn_q5_1, K_Q5_1)

/* ---- Q4_K x Q8_K ------------------------------------------------------------ */

/* int16 [v[a] x 16, v[b] x 16] from 8 int16 */
T512 INLINE __m512i bcast_pair_i16(__m128i v8, int a, int b)
{
    const __m512i idx = _mm512_inserti64x4(_mm512_set1_epi16((short)a), _mm256_set1_epi16((short)b), 1);
    return _mm512_permutexvar_epi16(idx, _mm512_castsi128_si512(v8));
}

/* Q4_K, and Q5_K (q5 != 0) whose fifth bits come from qh */
T512 INLINE void q4k_tile(int q5, int mr, int NT, int64_t nb, const uint8_t *const *wr, const uint8_t *const *at, float out[MR][4])
{
    const size_t bsz = q5 ? sizeof(ech_block_q5_K) : sizeof(ech_block_q4_K), asz = sizeof(ech_block_q8_K);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[MR][4];
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            acc[r][t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        UNROLL for (int r = 0; r < mr; r++) {
            /* Q4_K and Q5_K share d, dmin and scales; Q5_K has qh before qs */
            const ech_block_q4_K *b = (const ech_block_q4_K *)(const void *)(wr[r] + i * bsz);
            const uint8_t *qs = q5 ? ((const ech_block_q5_K *)(const void *)b)->qs : b->qs;
            if (mr > 1) _mm_prefetch((const char *)b + 4 * bsz, _MM_HINT_T0);
            if (mr > 1) _mm_prefetch((const char *)b + 4 * bsz + 64, _MM_HINT_T0);
            if (mr > 1) _mm_prefetch((const char *)b + 4 * bsz + 128, _MM_HINT_T0);
            __m512i qh = _mm512_setzero_si512();
            if (q5)
                qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)((const ech_block_q5_K *)(const void *)b)->qh));
            uint64_t sc64, mn64;
            ech_k4_scales_mins(b->scales, &sc64, &mn64);
            const __m128i sc16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc64));
            /* w[c]: elements 64c..64c+63 = [low nibbles | high nibbles] of
             * qs[32c..32c+31], matching the activations as stored; its two
             * 256-bit halves are sub-blocks 2c and 2c+1 */
            __m512i w[4], sv[4];
            UNROLL for (int c = 0; c < 4; c++) {
                __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)(qs + 32 * c)));
                w[c] = _mm512_and_si512(_mm512_mask_srli_epi16(q, 0xFFFF0000u, q, 4), m4);
                if (q5) { /* bit 2c of qh[l] for the low half, bit 2c+1 for the high half */
                    __m512i h = _mm512_srli_epi16(qh, 2 * c);
                    h = _mm512_and_si512(_mm512_mask_srli_epi16(h, 0xFFFF0000u, h, 1), _mm512_set1_epi8(1));
                    w[c] = _mm512_or_si512(w[c], _mm512_slli_epi16(h, 4));
                }
                sv[c] = bcast_pair_i16(sc16, 2 * c, 2 * c + 1);
            }
            /* mins as int16 pairs [m0 m0 m1 m1 ...] against bsums */
            const __m128i mn16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn64));
            const __m256i mnp = _mm256_permutexvar_epi16(
                _mm256_setr_epi16(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7), _mm256_castsi128_si256(mn16));
            const float d = _cvtsh_ss(b->d), dmin = _cvtsh_ss(b->dmin);
            UNROLL for (int t = 0; t < NT; t++) {
                const ech_block_q8_K *y = (const ech_block_q8_K *)(const void *)(at[t] + i * asz);
                /* q * a pairs in int16 (31 * 127 * 2 fits), then scale and sum
                 * into int32 with vpdpwssd */
                __m512i isum = _mm512_setzero_si512();
                UNROLL for (int c = 0; c < 4; c++)
                    isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(w[c], _mm512_loadu_si512(y->qs + 64 * c)), sv[c]);
                __m256i bs = _mm256_loadu_si256((const __m256i *)(const void *)y->bsums);
                __m256i msum = _mm256_madd_epi16(mnp, bs); /* 8 x m_j * (bsum_2j + bsum_2j+1) */
                const float dd = d * y->d, dm = dmin * y->d;
                /* sum += dd * isum - dm * msum, both exact integers until here */
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(dd), acc[r][t]);
                acc[r][t] = _mm512_fnmadd_ps(_mm512_zextps256_ps512(_mm256_cvtepi32_ps(msum)), _mm512_set1_ps(dm), acc[r][t]);
            }
        }
    }
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            out[r][t] = _mm512_reduce_add_ps(acc[r][t]);
}

/* ---- Q6_K x Q8_K ------------------------------------------------------------ */

T512 INLINE void q6k_tile(int mr, int NT, int64_t nb, const uint8_t *const *wr, const uint8_t *const *at, float out[MR][4])
{
    const size_t bsz = sizeof(ech_block_q6_K), asz = sizeof(ech_block_q8_K);
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const __m512i shv = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0);
    __m512 acc[MR][4];
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            acc[r][t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        UNROLL for (int r = 0; r < mr; r++) {
            const ech_block_q6_K *b = (const ech_block_q6_K *)(const void *)(wr[r] + i * bsz);
            UNROLL for (int k = 0; k < 4; k++)
                if (mr > 1) _mm_prefetch((const char *)b + 4 * bsz + 64 * k, _MM_HINT_T0);
            /* quants 0..63 (the -32 comes back as -32 * sum(sc * bsum)) in
             * element order: z[0] = elements 0..63, ..., z[3] = 192..255 */
            __m512i z[4];
            UNROLL for (int c = 0; c < 2; c++) {
                const __m512i L = _mm512_loadu_si512(b->ql + 64 * c);
                __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)(b->qh + 32 * c)));
                hb = _mm512_srlv_epi64(hb, shv); /* upper half: bits 2,3 / 6,7 move down */
                const __m512i h01 = _mm512_and_si512(_mm512_slli_epi16(hb, 4), m30);
                const __m512i h23 = _mm512_and_si512(hb, m30);
                z[2 * c] = _mm512_ternarylogic_epi32(L, m4, h01, 0xEA);                        /* (L & m4) | h */
                z[2 * c + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(L, 4), m4, h23, 0xEA);
            }
            /* scales: each 128-bit lane of z[k] is one sub-block of 16 */
            const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)b->scales));
            __m512i s[4];
            UNROLL for (int k = 0; k < 4; k++) {
                const __m512i idx = _mm512_inserti64x4(
                    _mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16((short)(4 * k + 1)), _mm_set1_epi16((short)(4 * k)))),
                    _mm256_set_m128i(_mm_set1_epi16((short)(4 * k + 3)), _mm_set1_epi16((short)(4 * k + 2))), 1);
                s[k] = _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(sc16));
            }
            const float d = _cvtsh_ss(b->d);
            UNROLL for (int t = 0; t < NT; t++) {
                const ech_block_q8_K *y = (const ech_block_q8_K *)(const void *)(at[t] + i * asz);
                __m512i isum = _mm512_setzero_si512();
                UNROLL for (int k = 0; k < 4; k++) {
                    /* q (0..63) * a pairs fit int16; scale and sum with vpdpwssd */
                    __m512i p = _mm512_maddubs_epi16(z[k], _mm512_loadu_si512(y->qs + 64 * k));
                    isum = _mm512_dpwssd_epi32(isum, p, s[k]);
                }
                __m256i bs = _mm256_loadu_si256((const __m256i *)(const void *)y->bsums);
                __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5); /* 32 * sc * bsum */
                isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(corr));
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(d * y->d), acc[r][t]);
            }
        }
    }
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            out[r][t] = _mm512_reduce_add_ps(acc[r][t]);
}

/* ---- decode of 2-8 tokens for Q8_0, Q4_K, Q5_K, Q6_K -------------------------
 *
 * One row at a time, as the single-token kernels, but each weight block is
 * unpacked once for all the tokens.  Q5_K and Q6_K read plain Q8_K rows;
 * their arithmetic per token is the single-token kernels' (q4k_tile,
 * q6k_tile), so a sequence gets the same logits batched or alone.  Q4_K
 * has one kernel for 1-8 tokens (q4k_rows) and its own activation layout.
 *
 * Q8_0 reads the q8_t layout (gemv_pack): the plain Q8_0 row, followed by
 * each group of 8 blocks' sums and scales and the group transposed: dword
 * j of block k in lane k of a vector.  One or two tokens take one 256-bit
 * vpdpbusd per block against the plain row and sum 8 blocks' lanes with
 * unpacks; three or more transpose the weights the same way in registers
 * (once per group of a row, for all tokens), so vpdpbusd leaves the 8
 * blocks' integer sums in 8 lanes with no horizontal adds.  The weights get +128 (xor) to be vpdpbusd's unsigned operand; the
 * 128 * sum(a) this adds is taken off in integers.
 *
 * With several tokens these kernels are compute bound, and the hardware
 * prefetcher then falls behind the slow stream (from DRAM, 4 tokens ran at
 * the speed of 8): they prefetch PFN_BYTES ahead themselves.  2304 bytes
 * beat 1152 on every type at 2 and 4 tokens on two threads (bench/kernels
 * BENCH_NTOK=2,4, from DRAM, two interleaved rounds: Q4_0 at 4 tokens
 * 15-18 against 11-15 GB/s) and by 7 % on TinyLlama Q4_0 at 4 sequences;
 * 3456 and 4608 were no better.  Two to four tokens then did better still
 * with a prefetch into L2 only, PF1_BYTES ahead (prefetch_n): from DRAM on
 * one and two threads, two interleaved rounds, Q8_0 at 4 tokens 14.6-24.8
 * against 7.6-15.1 GB/s, Q6_K 12.2-18.5 against 7.4-14.5 (Q4_0 in
 * q4_gemv); TinyLlama Q8_0 at 4 sequences on two threads 87 against 65
 * tok/s.  Q4_K was within the noise in bench/kernels and 5 % slower in the
 * model, so it and Q5_K keep the L1 prefetch. */
typedef struct q8_tgrp {
    int32_t a[4][16];  /* a[c][8h + k] = dword 2c+h (elements 8c+4h..+3) of block k */
    int32_t sum[8];    /* each block's sum of quants */
    float d[8];        /* each block's scale */
} q8_tgrp;

static size_t q8_t_offset(int64_t n)
{
    return ((size_t)(n / 32) * sizeof(ech_block_q8_0) + 63) & ~(size_t)63;
}

static size_t pack_size_q8_t(int64_t n)
{
    return q8_t_offset(n) + (size_t)(n / 256) * sizeof(q8_tgrp);
}

static void pack_q8_t(const void *src, void *dst, int64_t n)
{
    const ech_block_q8_0 *a = src;
    const int64_t nb = n / 32;
    memcpy(dst, src, (size_t)nb * sizeof *a);
    q8_tgrp *tg = (q8_tgrp *)(void *)((uint8_t *)dst + q8_t_offset(n));
    for (int64_t g = 0; g < nb / 8; g++)
        for (int k = 0; k < 8; k++) {
            const ech_block_q8_0 *b = a + 8 * g + k;
            for (int j = 0; j < 8; j++)
                memcpy(&tg[g].a[j / 2][8 * (j % 2) + k], b->qs + 4 * j, 4);
            int32_t sum = 0;
            for (int j = 0; j < 32; j++)
                sum += b->qs[j];
            tg[g].sum[k] = sum;
            tg[g].d[k] = ech_fp16_to_fp32(b->d);
        }
}

/* 8 vectors of 8 partial sums -> lane k = the sum of vector k */
T512 INLINE __m256i hsum8_epi32(const __m256i *s)
{
    const __m256i h0 = hsum4_epi32(s), h1 = hsum4_epi32(s + 4);
    return _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
}

/* Q8_0 rows x NT <= 8 tokens.  One or two tokens: one 256-bit vpdpbusd per
 * block against the plain row and 8 blocks' lanes summed with unpacks, no
 * cross-lane shuffle per block (q32_tile's 512-bit byte permutes kept one
 * token at 20 GB/s from cache, below memory speed; this runs at 45, and
 * 1.2-1.4x the transposed weights at two tokens).  More: the weights
 * transposed in registers once per group for all the tokens. */
T512 INLINE void q8_gemvn(int NT, int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as,
                          float *y, size_t ys)
{
    const int64_t nb = n / 32, ng = nb / 8;
    const __m256i x80 = _mm256_set1_epi8((char)0x80);
    const __m512i x80z = _mm512_set1_epi8((char)0x80);
    const __m256i doffs = _mm256_setr_epi32(0, 34, 68, 102, 136, 170, 204, 238);
    /* lane 8h + k of output c: dword 2c+h of block k, from [block 0|1]:[block 2|3]
     * (k < 4) or [block 4|5]:[block 6|7] (k >= 4, blended in) */
    __m512i tidx[4];
    UNROLL for (int c = 0; c < 4; c++) {
        int32_t ix[16];
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 8; k++)
                ix[8 * h + k] = ((k & 3) / 2) * 16 + (k & 1) * 8 + 2 * c + h;
        tidx[c] = _mm512_loadu_si512(ix);
    }
    const uint8_t *at[8];
    const q8_tgrp *tg[8];
    UNROLL for (int t = 0; t < NT; t++) {
        at[t] = (const uint8_t *)a + (size_t)t * as;
        tg[t] = (const q8_tgrp *)(const void *)(at[t] + q8_t_offset(n));
    }
    for (int64_t r = 0; r < nr; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * ws;
        __m256 acc[8];
        UNROLL for (int t = 0; t < NT; t++)
            acc[t] = _mm256_setzero_ps();
        for (int64_t g = 0; g < ng; g++) {
            const uint8_t *blk = row + (size_t)g * 272;
            if (NT > 1)
                prefetch_n(blk, NT, 5);
            if (NT <= 2) {
                __m256i q[8];
                uint16_t dh[8];
                UNROLL for (int k = 0; k < 8; k++) {
                    q[k] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(blk + 34 * k + 2)), x80);
                    memcpy(&dh[k], blk + 34 * k, 2);
                }
                const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)dh));
                UNROLL for (int t = 0; t < NT; t++) {
                    const uint8_t *ab = at[t] + (size_t)g * 272;
                    __m256i s[8];
                    UNROLL for (int k = 0; k < 8; k++)
                        s[k] = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q[k],
                                                   _mm256_loadu_si256((const __m256i *)(const void *)(ab + 34 * k + 2)));
                    __m256i h = hsum8_epi32(s);
                    h = _mm256_sub_epi32(h, _mm256_slli_epi32(_mm256_load_si256((const __m256i *)(const void *)tg[t][g].sum), 7));
                    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(h), _mm256_mul_ps(dw, _mm256_load_ps(tg[t][g].d)), acc[t]);
                }
                continue;
            }
            __m512i z[4], wt[4];
            UNROLL for (int p = 0; p < 4; p++) {
                const uint8_t *q = blk + 68 * p + 2;
                z[p] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)q)),
                                          _mm256_loadu_si256((const __m256i *)(const void *)(q + 34)), 1);
                z[p] = _mm512_xor_si512(z[p], x80z);
            }
            UNROLL for (int c = 0; c < 4; c++)
                wt[c] = _mm512_mask_blend_epi32(0xF0F0, _mm512_permutex2var_epi32(z[0], tidx[c], z[1]),
                                                _mm512_permutex2var_epi32(z[2], tidx[c], z[3]));
            const __m256 dw = load_d8(blk, doffs);
            UNROLL for (int t = 0; t < NT; t++) {
                const q8_tgrp *ag = tg[t] + g;
                __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wt[0], _mm512_load_si512(ag->a[0]));
                __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wt[2], _mm512_load_si512(ag->a[2]));
                s0 = _mm512_dpbusd_epi32(s0, wt[1], _mm512_load_si512(ag->a[1]));
                s1 = _mm512_dpbusd_epi32(s1, wt[3], _mm512_load_si512(ag->a[3]));
                s0 = _mm512_add_epi32(s0, s1);
                __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(s0), _mm512_extracti64x4_epi64(s0, 1));
                h = _mm256_sub_epi32(h, _mm256_slli_epi32(_mm256_load_si256((const __m256i *)(const void *)ag->sum), 7));
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(h), _mm256_mul_ps(dw, _mm256_load_ps(ag->d)), acc[t]);
            }
        }
        UNROLL for (int t = 0; t < NT; t++) {
            float sum = hsum_ps256(acc[t]);
            if (nb > 8 * ng) {
                float tail;
                ech_ref_vec_dot_q8_0((nb - 8 * ng) * 32, &tail, row + (size_t)ng * 272, at[t] + (size_t)ng * 272);
                sum += tail;
            }
            y[(size_t)t * ys + (size_t)r] = sum;
        }
    }
}

T512 static void gemv_q8_0_row(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, float *y)
{
    q8_gemvn(1, n, w, ws, nr, a, 0, y, 0);
}

/* Q5_K rows x NT <= 8 Q8_K rows: per block and token the same operations
 * as q4k_tile */
T512 INLINE void q5k_gemvn(int NT, int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as,
                           float *y, size_t ys)
{
    const size_t bsz = sizeof(ech_block_q5_K), asz = sizeof(ech_block_q8_K);
    const int64_t nb = n / 256;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int64_t r = 0; r < nr; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * ws;
        __m512 acc[8];
        UNROLL for (int t = 0; t < NT; t++)
            acc[t] = _mm512_setzero_ps();
        for (int64_t i = 0; i < nb; i++) {
            const ech_block_q5_K *b = (const ech_block_q5_K *)(const void *)(row + i * bsz);
            UNROLL for (int k = 0; k < 3; k++)
                _mm_prefetch((const char *)b + PFN_BYTES + 64 * k, _MM_HINT_T0);
            const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)b->qh));
            uint64_t sc64, mn64;
            ech_k4_scales_mins(b->scales, &sc64, &mn64);
            const __m128i sc16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc64));
            __m512i wv[4], sv[4];
            UNROLL for (int c = 0; c < 4; c++) {
                __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)(b->qs + 32 * c)));
                wv[c] = _mm512_and_si512(_mm512_mask_srli_epi16(q, 0xFFFF0000u, q, 4), m4);
                __m512i h = _mm512_srli_epi16(qh, 2 * c); /* bits 2c and 2c+1 of qh[l], as in q4k_tile */
                h = _mm512_and_si512(_mm512_mask_srli_epi16(h, 0xFFFF0000u, h, 1), _mm512_set1_epi8(1));
                wv[c] = _mm512_or_si512(wv[c], _mm512_slli_epi16(h, 4));
                sv[c] = bcast_pair_i16(sc16, 2 * c, 2 * c + 1);
            }
            const __m128i mn16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn64));
            const __m256i mnp = _mm256_permutexvar_epi16(
                _mm256_setr_epi16(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7), _mm256_castsi128_si256(mn16));
            const float d = _cvtsh_ss(b->d), dmin = _cvtsh_ss(b->dmin);
            UNROLL for (int t = 0; t < NT; t++) {
                const ech_block_q8_K *yb = (const ech_block_q8_K *)(const void *)((const uint8_t *)a + (size_t)t * as + i * asz);
                __m512i isum = _mm512_setzero_si512();
                UNROLL for (int c = 0; c < 4; c++)
                    isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(wv[c], _mm512_loadu_si512(yb->qs + 64 * c)), sv[c]);
                const __m256i msum = _mm256_madd_epi16(mnp, _mm256_loadu_si256((const __m256i *)(const void *)yb->bsums));
                const float dd = d * yb->d, dm = dmin * yb->d;
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(dd), acc[t]);
                acc[t] = _mm512_fnmadd_ps(_mm512_zextps256_ps512(_mm256_cvtepi32_ps(msum)), _mm512_set1_ps(dm), acc[t]);
            }
        }
        UNROLL for (int t = 0; t < NT; t++)
            y[(size_t)t * ys + (size_t)r] = _mm512_reduce_add_ps(acc[t]);
    }
}

/* Q4_K rows x NT <= 8 tokens, 1 included.  Bytes 32c..32c+31 of a block's
 * quants hold sub-block 2c in their low nibbles and 2c+1 in their high
 * ones.  Each 16-byte half of them is broadcast to both 128-bit lanes and
 * masked with 0x0F in the low lane and 0xF0 in the high one: one AND, no
 * shift, gives half of sub-block 2c and 16 x half of 2c+1.  The activations
 * (q8_kh) are Q8_K with each 64 quants reordered to match, so two vpdpbusd
 * leave sub-blocks 2c and 2c+1 in the two lanes of one vector, and four
 * such vectors reduce to the 8 sub-block sums with hsum4_epi32's unpacks and adds;
 * the 16 comes off in the float scale.  Hot in L2 on one thread this takes
 * 16.6 cycles per block where q4k_tile's maddubs + dpwssd took 22.5, which
 * kept Q4_K decode below memory speed.  One token prefetches PF1K_BYTES
 * ahead: from DRAM in 4 KiB pages (bench/kernels 2048 2048, one thread) 20-22
 * GB/s against 17-19 without, and 1152 to 18432 bytes all lost to 9216;
 * the same on Q6_K was slower.  Into L2 only, it ran 22.5-24.3 against
 * 20.5-22.4 GB/s (bench/kernels BENCH_NTOK=1, three interleaved rounds). */
typedef struct q8_kh {
    int8_t qs[256];  /* per 64: elements 0..15, 32..47, 16..31, 48..63 */
    float d;
    int32_t bsum[8]; /* the sum of each sub-block of 32 */
    uint8_t pad[28]; /* 320 bytes, so that qs stays 64-byte aligned */
} q8_kh;

static size_t pack_size_kh(int64_t n)
{
    return (size_t)(n / 256) * sizeof(q8_kh);
}

static void pack_kh(const void *src, void *dst, int64_t n)
{
    const ech_block_q8_K *a = src;
    q8_kh *o = dst;
    for (int64_t i = 0; i < n / 256; i++) {
        static const int from[4] = {0, 32, 16, 48};
        for (int c = 0; c < 4; c++)
            for (int k = 0; k < 4; k++)
                memcpy(o[i].qs + 64 * c + 16 * k, a[i].qs + 64 * c + from[k], 16);
        o[i].d = a[i].d;
        for (int j = 0; j < 8; j++)
            o[i].bsum[j] = a[i].bsums[2 * j] + a[i].bsums[2 * j + 1];
        memset(o[i].pad, 0, sizeof o[i].pad);
    }
}

T512 INLINE void q4k_rows(int NT, int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as, float *y,
                          size_t ys)
{
    const int64_t nb = n / 256;
    const __m256i mask = _mm256_setr_epi64x(0x0F0F0F0F0F0F0F0Fll, 0x0F0F0F0F0F0F0F0Fll, (long long)0xF0F0F0F0F0F0F0F0ull,
                                            (long long)0xF0F0F0F0F0F0F0F0ull);
    /* the scales in the order the sums come out: sub-blocks 0 2 4 6 1 3 5 7 */
    const __m128i sc_order = _mm_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256 unscale = _mm256_setr_ps(1, 1, 1, 1, 1.f / 16, 1.f / 16, 1.f / 16, 1.f / 16);
    for (int64_t r = 0; r < nr; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * ws;
        __m256 acc[8], accm[8];
        UNROLL for (int t = 0; t < NT; t++)
            acc[t] = accm[t] = _mm256_setzero_ps();
        for (int64_t i = 0; i < nb; i++) {
            const ech_block_q4_K *b = (const ech_block_q4_K *)(const void *)(row + i * sizeof(ech_block_q4_K));
            UNROLL for (int k = 0; k < 3; k++)
                _mm_prefetch((const char *)b + (NT > 1 ? PFN_BYTES : PF1K_BYTES) + 64 * k, NT > 1 ? _MM_HINT_T0 : _MM_HINT_T1);
            uint64_t sc64, mn64;
            ech_k4_scales_mins(b->scales, &sc64, &mn64);
            const __m256i sc = _mm256_cvtepu8_epi32(_mm_shuffle_epi8(_mm_cvtsi64_si128((long long)sc64), sc_order));
            const __m256i mn = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)mn64));
            __m256i q[8];
            UNROLL for (int k = 0; k < 8; k++)
                q[k] = _mm256_and_si256(
                    _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(b->qs + 16 * k))), mask);
            const float d = _cvtsh_ss(b->d), dmin = _cvtsh_ss(b->dmin);
            UNROLL for (int t = 0; t < NT; t++) {
                const q8_kh *x = (const q8_kh *)(const void *)((const uint8_t *)a + (size_t)t * as) + i;
                __m256i s[4];
                UNROLL for (int c = 0; c < 4; c++) {
                    s[c] = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q[2 * c],
                                               _mm256_load_si256((const __m256i *)(const void *)(x->qs + 64 * c)));
                    s[c] = _mm256_dpbusd_epi32(s[c], q[2 * c + 1],
                                               _mm256_load_si256((const __m256i *)(const void *)(x->qs + 64 * c + 32)));
                }
                const __m256i isum = _mm256_mullo_epi32(hsum4_epi32(s), sc);
                const __m256i msum = _mm256_mullo_epi32(mn, _mm256_loadu_si256((const __m256i *)(const void *)x->bsum));
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(unscale, _mm256_set1_ps(d * x->d)), acc[t]);
                accm[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(dmin * x->d), accm[t]);
            }
        }
        UNROLL for (int t = 0; t < NT; t++)
            y[(size_t)t * ys + (size_t)r] = hsum_ps256(_mm256_sub_ps(acc[t], accm[t]));
    }
}

T512 static void gemv_q4_K_rows(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, float *y)
{
    q4k_rows(1, n, w, ws, nr, a, 0, y, 0);
}

/* Q6_K rows x NT <= 8 Q8_K rows: per block and token as q6k_tile */
T512 INLINE void q6k_gemvn(int NT, int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as, float *y,
                           size_t ys)
{
    const size_t bsz = sizeof(ech_block_q6_K), asz = sizeof(ech_block_q8_K);
    const int64_t nb = n / 256;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const __m512i shv = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0);
    for (int64_t r = 0; r < nr; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * ws;
        __m512 acc[8];
        UNROLL for (int t = 0; t < NT; t++)
            acc[t] = _mm512_setzero_ps();
        for (int64_t i = 0; i < nb; i++) {
            const ech_block_q6_K *b = (const ech_block_q6_K *)(const void *)(row + i * bsz);
            prefetch_n(b, NT, 4);
            __m512i z[4];
            UNROLL for (int c = 0; c < 2; c++) {
                const __m512i L = _mm512_loadu_si512(b->ql + 64 * c);
                __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)(b->qh + 32 * c)));
                hb = _mm512_srlv_epi64(hb, shv);
                const __m512i h01 = _mm512_and_si512(_mm512_slli_epi16(hb, 4), m30);
                const __m512i h23 = _mm512_and_si512(hb, m30);
                z[2 * c] = _mm512_ternarylogic_epi32(L, m4, h01, 0xEA);
                z[2 * c + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(L, 4), m4, h23, 0xEA);
            }
            const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)b->scales));
            __m512i s[4];
            UNROLL for (int k = 0; k < 4; k++) {
                const __m512i idx = _mm512_inserti64x4(
                    _mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16((short)(4 * k + 1)), _mm_set1_epi16((short)(4 * k)))),
                    _mm256_set_m128i(_mm_set1_epi16((short)(4 * k + 3)), _mm_set1_epi16((short)(4 * k + 2))), 1);
                s[k] = _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(sc16));
            }
            const float d = _cvtsh_ss(b->d);
            UNROLL for (int t = 0; t < NT; t++) {
                const ech_block_q8_K *yb = (const ech_block_q8_K *)(const void *)((const uint8_t *)a + (size_t)t * as + i * asz);
                __m512i isum = _mm512_setzero_si512();
                UNROLL for (int k = 0; k < 4; k++)
                    isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(z[k], _mm512_loadu_si512(yb->qs + 64 * k)), s[k]);
                const __m256i bs = _mm256_loadu_si256((const __m256i *)(const void *)yb->bsums);
                const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5);
                isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(corr));
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(d * yb->d), acc[t]);
            }
        }
        UNROLL for (int t = 0; t < NT; t++)
            y[(size_t)t * ys + (size_t)r] = _mm512_reduce_add_ps(acc[t]);
    }
}

#define GEMVN_FN(name, CALL)                                                                                   \
    T512 static void name(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as, int nt,   \
                          float *y, size_t ys)                                                                 \
    {                                                                                                          \
        GEMVN_SWITCH(CALL)                                                                                     \
    }
#define CALLN_Q8_0(NT) q8_gemvn(NT, n, w, ws, nr, a, as, y, ys)
#define CALLN_Q4_K(NT) q4k_rows(NT, n, w, ws, nr, a, as, y, ys)
#define CALLN_Q5_K(NT) q5k_gemvn(NT, n, w, ws, nr, a, as, y, ys)
#define CALLN_Q6_K(NT) q6k_gemvn(NT, n, w, ws, nr, a, as, y, ys)
GEMVN_FN(gemvn_q8_0, CALLN_Q8_0)
GEMVN_FN(gemvn_q4_K, CALLN_Q4_K)
GEMVN_FN(gemvn_q5_K, CALLN_Q5_K)
GEMVN_FN(gemvn_q6_K, CALLN_Q6_K)

/* ---- float types: activations are packed as f32 ----------------------------- */

enum { K_F32, K_F16, K_BF16 };

/* 16 weights as floats; the first `valid` of them, zeros after (masked
 * loads do not touch the memory they skip) */
T512 INLINE __m512 load16_part(int kind, const uint8_t *p, int valid)
{
    const __mmask16 m = valid >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << valid) - 1);
    if (kind == K_F32)
        return _mm512_maskz_loadu_ps(m, p);
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if (kind == K_F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

T512 INLINE __m512 load16(int kind, const uint8_t *p)
{
    if (kind == K_F32)
        return _mm512_loadu_ps(p);
    __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)p);
    if (kind == K_F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

T512 INLINE void float_tile(int kind, int mr, int NT, int64_t n, const uint8_t *const *wr, const uint8_t *const *at,
                            float out[MR][4])
{
    const int es = kind == K_F32 ? 4 : 2;
    __m512 acc[MR][4][2];
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            acc[r][t][0] = acc[r][t][1] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 a[4][2];
        UNROLL for (int t = 0; t < NT; t++) {
            a[t][0] = _mm512_loadu_ps((const float *)(const void *)at[t] + i);
            a[t][1] = _mm512_loadu_ps((const float *)(const void *)at[t] + i + 16);
        }
        UNROLL for (int r = 0; r < mr; r++) {
            /* the tiles' interleaved rows need it; one row of one token
             * (F32 decode) is left to the hardware prefetcher */
            if (mr > 1 || NT > 1) {
                _mm_prefetch((const char *)(wr[r] + (i + 256) * es), _MM_HINT_T0);
                if (es == 4)
                    _mm_prefetch((const char *)(wr[r] + (i + 256) * es + 64), _MM_HINT_T0);
            }
            const __m512 w0 = load16(kind, wr[r] + i * es), w1 = load16(kind, wr[r] + (i + 16) * es);
            UNROLL for (int t = 0; t < NT; t++) {
                /* one token: two chains per row hide the FMA latency; more
                 * tokens have chains enough, and registers are short */
                acc[r][t][0] = _mm512_fmadd_ps(w0, a[t][0], acc[r][t][0]);
                if (NT == 1)
                    acc[r][t][1] = _mm512_fmadd_ps(w1, a[t][1], acc[r][t][1]);
                else
                    acc[r][t][0] = _mm512_fmadd_ps(w1, a[t][1], acc[r][t][0]);
            }
        }
    }
    /* the last n % 32 elements by masked loads (the attention's rows of
     * context length end in one; element by element it cost 1 % of decode) */
    for (int h = 0; i < n; i += 16, h++) {
        const int valid = n - i < 16 ? (int)(n - i) : 16;
        const __mmask16 m = valid == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << valid) - 1);
        UNROLL for (int r = 0; r < mr; r++) {
            const __m512 wv = load16_part(kind, wr[r] + i * es, valid);
            UNROLL for (int t = 0; t < NT; t++)
                acc[r][t][h] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, (const float *)(const void *)at[t] + i),
                                               acc[r][t][h]);
        }
    }
    UNROLL for (int r = 0; r < mr; r++)
        UNROLL for (int t = 0; t < NT; t++)
            out[r][t] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][t][0], acc[r][t][1]));
}

/* F16 or BF16 rows x one activation row of the same type (the dot type as
 * is, no pack into floats): half the cache of floats, which decides the
 * long rows (ffn_down: 5632 floats are 22 of the 32 KiB of L1).  TinyLlama
 * F16 decode went from 8.8 to 12.6 tok/s on one thread, at the memory
 * bandwidth, in an interleaved A/B against float_tile over packed floats. */
T512 INLINE void half_rows(int kind, int64_t n, const void *w, size_t ws, int64_t nr, const void *a, float *y)
{
    const uint8_t *x = a;
    for (int64_t r = 0; r < nr; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * ws;
        /* two chains hide the FMA latency; more were no faster */
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        int64_t i = 0;
        for (; i + 32 <= n; i += 32) {
            /* the rows are one stream: 9 KiB ahead into L2 ran 20-25 GB/s
             * against 9-18 on the hardware prefetcher alone (bench/kernels,
             * one thread, 5 rounds); TinyLlama F16 +8 % on one thread */
            _mm_prefetch((const char *)(row + 2 * i + PF1K_BYTES), _MM_HINT_T1);
            acc0 = _mm512_fmadd_ps(load16(kind, row + 2 * i), load16(kind, x + 2 * i), acc0);
            acc1 = _mm512_fmadd_ps(load16(kind, row + 2 * i + 32), load16(kind, x + 2 * i + 32), acc1);
        }
        for (; i < n; i += 16) {
            const int valid = n - i < 16 ? (int)(n - i) : 16;
            acc0 = _mm512_fmadd_ps(load16_part(kind, row + 2 * i, valid), load16_part(kind, x + 2 * i, valid), acc0);
        }
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    }
}

T512 static void gemv_f16_rows(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, float *y)
{
    half_rows(K_F16, n, w, ws, nr, a, y);
}

T512 static void gemv_bf16_rows(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, float *y)
{
    half_rows(K_BF16, n, w, ws, nr, a, y);
}

/* ---- tiles -> gemm entry points ------------------------------------------------- */

#define GEMM_ENTRY(name, CALL) ECH_GEMM_ENTRY(T512, name, CALL)

#define CALL_Q4_0(MRr, NT) q32_tile(K_Q4_0, MRr, NT, n / 32, wr, at, out)
#define CALL_Q8_0(MRr, NT) q32_tile(K_Q8_0, MRr, NT, n / 32, wr, at, out)
#define CALL_IQ4_NL(MRr, NT) q32_tile(K_IQ4_NL, MRr, NT, n / 32, wr, at, out)
#define CALL_Q4_K(MRr, NT) q4k_tile(0, MRr, NT, n / 256, wr, at, out)
#define CALL_Q5_K(MRr, NT) q4k_tile(1, MRr, NT, n / 256, wr, at, out)
#define CALL_Q6_K(MRr, NT) q6k_tile(MRr, NT, n / 256, wr, at, out)
#define CALL_F32(MRr, NT) float_tile(K_F32, MRr, NT, n, wr, at, out)
#define CALL_F16(MRr, NT) float_tile(K_F16, MRr, NT, n, wr, at, out)
#define CALL_BF16(MRr, NT) float_tile(K_BF16, MRr, NT, n, wr, at, out)

#define GEMV_ENTRY(name, CALL) ECH_GEMV_ENTRY(T512, name, CALL)

GEMM_ENTRY(gemm_q4_0, CALL_Q4_0)
GEMM_ENTRY(gemm_q8_0, CALL_Q8_0)
GEMM_ENTRY(gemm_iq4_nl, CALL_IQ4_NL)
GEMM_ENTRY(gemm_q4_K, CALL_Q4_K)
GEMM_ENTRY(gemm_q5_K, CALL_Q5_K)
GEMM_ENTRY(gemm_q6_K, CALL_Q6_K)
GEMM_ENTRY(gemm_f32, CALL_F32)
GEMM_ENTRY(gemm_f16, CALL_F16)
GEMM_ENTRY(gemm_bf16, CALL_BF16)

GEMV_ENTRY(gemv_q5_K, CALL_Q5_K)
GEMV_ENTRY(gemv_q6_K, CALL_Q6_K)
GEMV_ENTRY(gemv_f32, CALL_F32)

/* Float types take their activations as f32 (exact for the f16/bf16-rounded
 * values), so the conversion happens once per call, not once per row. */
static size_t pack_size_f32(int64_t n)
{
    return (size_t)n * sizeof(float);
}

T512 static void pack_f16(const void *src, void *dst, int64_t n)
{
    const uint8_t *p = src;
    float *f = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(f + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p + 2 * i))));
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        f[i] = ech_fp16_to_fp32(h);
    }
}

T512 static void pack_bf16(const void *src, void *dst, int64_t n)
{
    const uint8_t *p = src;
    float *f = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(f + i, load16(K_BF16, p + 2 * i));
    ech_ref_to_float_bf16(p + 2 * i, f + i, n - i);
}

/* vec_dot = a 1 x 1 tile; for the float types the activation is converted here */
#define VEC_DOT(name, gemm)                                                          \
    static void name(int64_t n, float *s, const void *w, const void *a)            \
    {                                                                                \
        gemm(n, w, 0, 1, a, 0, 1, s, 1);                                             \
    }
VEC_DOT(dot_q4_0, gemm_q4_0)
VEC_DOT(dot_q8_0, gemm_q8_0)
VEC_DOT(dot_iq4_nl, gemm_iq4_nl)
VEC_DOT(dot_q4_K, gemm_q4_K)
VEC_DOT(dot_q5_K, gemm_q5_K)
VEC_DOT(dot_q6_K, gemm_q6_K)
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

void ech_avx512_fill(ech_type_kernels *k, ech_kset *g)
{
#define SET(T, dot, gm, gv, ps, pk)                                                           \
    do {                                                                                  \
        k[ECH_TYPE_##T].vec_dot = dot;                                                    \
        g[ECH_TYPE_##T] = (ech_kset){.gemm = gm, .mr = MR, .nt = 4, .pack_size = ps, .pack = pk, \
                                     .gemv = gv, .gemv_pack_size = ps, .gemv_pack = pk};      \
    } while (0)
    SET(Q4_0, dot_q4_0, gemm_q4_0, gemv_q4_0_t16, NULL, NULL);
    SET(Q8_0, dot_q8_0, gemm_q8_0, gemv_q8_0_row, NULL, NULL);
    SET(IQ4_NL, dot_iq4_nl, gemm_iq4_nl, gemv_iq4_nl_t16, NULL, NULL);
    SET(Q4_K, dot_q4_K, gemm_q4_K, gemv_q4_K_rows, NULL, NULL);
    SET(Q5_K, dot_q5_K, gemm_q5_K, gemv_q5_K, NULL, NULL);
    SET(Q6_K, dot_q6_K, gemm_q6_K, gemv_q6_K, NULL, NULL);
    SET(F32, dot_f32, gemm_f32, gemv_f32, NULL, NULL);
    SET(F16, dot_f16, gemm_f16, NULL, pack_size_f32, pack_f16);
    SET(BF16, dot_bf16, gemm_bf16, NULL, pack_size_f32, pack_bf16);
    /* F16 and BF16 decode reads the activations in their own type */
    g[ECH_TYPE_F16].gemv = gemv_f16_rows;
    g[ECH_TYPE_BF16].gemv = gemv_bf16_rows;
    g[ECH_TYPE_F16].gemv_pack = g[ECH_TYPE_BF16].gemv_pack = NULL;
    g[ECH_TYPE_F16].gemv_pack_size = g[ECH_TYPE_BF16].gemv_pack_size = NULL;
#undef SET
    /* the 4-bit decode kernels read their own activation layout */
    g[ECH_TYPE_Q4_0].gemv_n = gemvn_q4_0;
    g[ECH_TYPE_IQ4_NL].gemv_n = gemvn_iq4_nl;
    g[ECH_TYPE_Q4_0].gemv_pack_size = g[ECH_TYPE_IQ4_NL].gemv_pack_size = pack_size_t16;
    g[ECH_TYPE_Q4_0].gemv_pack = pack_t16_q4_0;
    g[ECH_TYPE_IQ4_NL].gemv_pack = pack_t16_iq4_nl;
    /* Q4_1, Q5_0, Q5_1: decode kernels of their own; prompts take the lanes
     * kernels, the few-row tiles stay AVX2's */
#define SET_MQ(T, t, ps, pk)                                                                  \
    do {                                                                                      \
        g[ECH_TYPE_##T].gemv = gemv_##t##_oct;                                                \
        g[ECH_TYPE_##T].gemv_n = gemvn_##t;                                                   \
        g[ECH_TYPE_##T].gemv_pack_size = ps;                                                  \
        g[ECH_TYPE_##T].gemv_pack = pk;                                                       \
    } while (0)
    SET_MQ(Q4_1, q4_1, pack_size_oct1, pack_oct1);
    SET_MQ(Q5_0, q5_0, pack_size_oct, pack_oct);
    SET_MQ(Q5_1, q5_1, pack_size_oct1, pack_oct1);
#undef SET_MQ
    /* a few tokens at once: one unpacking of each weight row for all of them */
    g[ECH_TYPE_Q8_0].gemv_n = gemvn_q8_0;
    g[ECH_TYPE_Q8_0].gemv_pack_size = pack_size_q8_t;
    g[ECH_TYPE_Q8_0].gemv_pack = pack_q8_t;
    g[ECH_TYPE_Q4_K].gemv_n = gemvn_q4_K;
    g[ECH_TYPE_Q4_K].gemv_pack_size = pack_size_kh;
    g[ECH_TYPE_Q4_K].gemv_pack = pack_kh;
    g[ECH_TYPE_Q5_K].gemv_n = gemvn_q5_K;
    g[ECH_TYPE_Q6_K].gemv_n = gemvn_q6_K;
}
