/* quants.h - the GGUF block formats of the quantised types, as C structs.
 *
 * Each struct is laid out byte for byte as the file stores a block (ggml's
 * layout), so a weight row in a mapped file is read as an array of these.
 * Blocks sit at any byte offset inside a file (an 18-byte Q4_0 block after
 * another), so every struct has alignment 1 or 2 and SIMD code loads them
 * with unaligned loads.  Half-precision fields are raw uint16_t bits.
 */
#ifndef ECH_KERNELS_QUANTS_H
#define ECH_KERNELS_QUANTS_H

#include <stdint.h>
#include <string.h>

#define ECH_QK32 32      /* elements per block of the small-block types */
#define ECH_QK_K 256     /* elements per K-quant super-block */

typedef struct { uint16_t d; uint8_t qs[16]; } ech_block_q4_0;               /* x = d*(q-8) */
typedef struct { uint16_t d, m; uint8_t qs[16]; } ech_block_q4_1;            /* x = d*q + m */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } ech_block_q5_0;    /* x = d*(q-16) */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } ech_block_q5_1; /* x = d*q + m */
typedef struct { uint16_t d; int8_t qs[32]; } ech_block_q8_0;                /* x = d*q */
typedef struct { uint16_t d, s; int8_t qs[32]; } ech_block_q8_1;             /* s = d*sum(q) */
typedef struct { uint16_t d; uint8_t qs[16]; } ech_block_iq4_nl;             /* x = d*table[q] */

/* K-quants: 256 elements in sub-blocks of 16 or 32 with quantised scales. */
typedef struct {
    uint8_t scales[16];  /* low nibble: scale, high nibble: min, per 16 */
    uint8_t qs[64];      /* 2-bit quants */
    uint16_t d, dmin;
} ech_block_q2_K;
typedef struct {
    uint8_t hmask[32];   /* high bit of each quant */
    uint8_t qs[64];      /* low 2 bits */
    uint8_t scales[12];  /* 16 6-bit scales, biased by 32 */
    uint16_t d;
} ech_block_q3_K;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];  /* 8 6-bit scales and 8 6-bit mins */
    uint8_t qs[128];     /* 4-bit quants */
} ech_block_q4_K;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[32];      /* fifth bit of each quant */
    uint8_t qs[128];
} ech_block_q5_K;
typedef struct {
    uint8_t ql[128];     /* low 4 bits */
    uint8_t qh[64];      /* high 2 bits */
    int8_t scales[16];   /* one signed 8-bit scale per 16 */
    uint16_t d;
} ech_block_q6_K;
/* The activation type of the K-quants: float scale, sums per 16 quants. */
typedef struct {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
} ech_block_q8_K;

_Static_assert(sizeof(ech_block_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(ech_block_q4_1) == 20, "q4_1 block");
_Static_assert(sizeof(ech_block_q5_0) == 22, "q5_0 block");
_Static_assert(sizeof(ech_block_q5_1) == 24, "q5_1 block");
_Static_assert(sizeof(ech_block_q8_0) == 34, "q8_0 block");
_Static_assert(sizeof(ech_block_q8_1) == 36, "q8_1 block");
_Static_assert(sizeof(ech_block_iq4_nl) == 18, "iq4_nl block");
_Static_assert(sizeof(ech_block_q2_K) == 2 + 2 + 256 / 16 + 256 / 4, "q2_K block");
_Static_assert(sizeof(ech_block_q3_K) == 2 + 256 / 4 + 256 / 8 + 12, "q3_K block");
_Static_assert(sizeof(ech_block_q4_K) == 2 + 2 + 12 + 256 / 2, "q4_K block");
_Static_assert(sizeof(ech_block_q5_K) == 2 + 2 + 12 + 256 / 2 + 256 / 8, "q5_K block");
_Static_assert(sizeof(ech_block_q6_K) == 2 + 256 / 16 + 3 * 256 / 4, "q6_K block");
_Static_assert(sizeof(ech_block_q8_K) == 4 + 256 + 256 / 16 * 2, "q8_K block");

/* IQ4_NL's 16 non-linear levels (ggml's table: these are format constants). */
extern const int8_t ech_iq4nl_values[16];

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block. */
static inline void ech_k4_scale_min(int j, const uint8_t *s, uint8_t *sc, uint8_t *mn)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        *mn = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

/* All 8 scales and 8 mins of a Q4_K/Q5_K block, one byte each (the same
 * values as ech_k4_scale_min, from three 32-bit words). */
static inline void ech_k4_scales_mins(const uint8_t *s, uint64_t *sc, uint64_t *mn)
{
    uint32_t u0, u1, u2;
    memcpy(&u0, s, 4);
    memcpy(&u1, s + 4, 4);
    memcpy(&u2, s + 8, 4);
    const uint32_t lo6 = 0x3F3F3F3Fu, lo4 = 0x0F0F0F0Fu, lo2 = 0x03030303u;
    uint32_t sc_hi = (u2 & lo4) | (((u0 >> 6) & lo2) << 4);
    uint32_t mn_hi = ((u2 >> 4) & lo4) | (((u1 >> 6) & lo2) << 4);
    *sc = (u0 & lo6) | ((uint64_t)sc_hi << 32);
    *mn = (u1 & lo6) | ((uint64_t)mn_hi << 32);
}

/* The 16 signed scales (-32..31) of a Q3_K block: the low 4 bits of
 * scales 0..7 and 8..15 are the low and high nibbles of bytes 0..7, the top
 * 2 bits of scale j are bits 2*(j/4) of byte 8 + j%4.  Done a word at a time. */
static inline void ech_q3k_scales(const uint8_t *s, int8_t out[16])
{
    uint32_t u0, u1, u2, w[4];
    memcpy(&u0, s, 4);
    memcpy(&u1, s + 4, 4);
    memcpy(&u2, s + 8, 4);
    const uint32_t m4 = 0x0F0F0F0Fu, m2 = 0x03030303u;
    w[0] = (u0 & m4) | ((u2 & m2) << 4);
    w[1] = (u1 & m4) | (((u2 >> 2) & m2) << 4);
    w[2] = ((u0 >> 4) & m4) | (((u2 >> 4) & m2) << 4);
    w[3] = ((u1 >> 4) & m4) | (((u2 >> 6) & m2) << 4);
    uint8_t b[16];
    memcpy(b, w, 16);
    for (int j = 0; j < 16; j++)
        out[j] = (int8_t)(b[j] - 32);
}

#endif
