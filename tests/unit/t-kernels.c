/* t-kernels.c - unit tests for lib/kernels: conversions, reference kernels,
 * SIMD kernels against the reference, ech_matmul, and (with $ECH_SHARED)
 * the block formats against llama.cpp-quantised model files.
 *
 * Bounds used throughout: a dot product may differ from another computation
 * of the same sum only by float rounding, so |got - want| <= 1e-5 * sum|w*a|
 * (+ the fp16 rounding of Q8_1's s field for Q4_1/Q5_1: see dot_bound()).
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ech.h"
#include "tap.h"

static const ech_type weight_types[] = {
    ECH_TYPE_F32,  ECH_TYPE_F16,  ECH_TYPE_BF16, ECH_TYPE_Q8_0, ECH_TYPE_Q4_0,
    ECH_TYPE_Q4_1, ECH_TYPE_Q5_0, ECH_TYPE_Q5_1, ECH_TYPE_Q2_K, ECH_TYPE_Q3_K,
    ECH_TYPE_Q4_K, ECH_TYPE_Q5_K, ECH_TYPE_Q6_K, ECH_TYPE_IQ4_NL,
};
#define N_WEIGHT_TYPES (sizeof weight_types / sizeof weight_types[0])

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static float frand(void) /* uniform in [-1, 1) */
{
    return (float)((double)rnd() / 2147483648.0 - 1.0);
}

static float grand(void) /* roughly normal, unit variance */
{
    float s = 0;
    for (int i = 0; i < 12; i++)
        s += frand();
    return s * 0.5f;
}

static size_t nbytes(ech_type t, int64_t n)
{
    uint64_t b = 0;
    ech_type_nbytes(t, (uint64_t)n, &b);
    return (size_t)b;
}

static int64_t block_size(ech_type t)
{
    return ech_type_info_get(t)->block_size;
}

static void put_half(uint8_t *p, float f)
{
    uint16_t h = ech_fp32_to_fp16(f);
    memcpy(p, &h, 2);
}

/* Random row of type t: random quant bytes with sane fp16 scales (scales
 * near 2^-6 so products stay far from overflow). */
static void random_row(ech_type t, void *dst, int64_t n)
{
    uint8_t *p = dst;
    size_t nb = nbytes(t, n);
    for (size_t i = 0; i < nb; i++)
        p[i] = (uint8_t)rnd();
    const ech_type_info *ti = ech_type_info_get(t);
    int64_t nblk = n / ti->block_size;
    for (int64_t b = 0; b < nblk; b++) {
        uint8_t *q = p + (size_t)b * ti->type_size;
        float d = 0.015625f * (0.5f + 0.5f * fabsf(frand())) * (rnd() & 1 ? 1 : -1);
        float m = 0.01f * frand();
        switch (t) {
        case ECH_TYPE_F32: {
            float f = grand();
            memcpy(q, &f, 4);
            break;
        }
        case ECH_TYPE_F16: put_half(q, grand()); break;
        case ECH_TYPE_BF16: {
            uint16_t h = ech_fp32_to_bf16(grand());
            memcpy(q, &h, 2);
            break;
        }
        case ECH_TYPE_Q4_0: case ECH_TYPE_Q5_0: case ECH_TYPE_Q8_0: case ECH_TYPE_IQ4_NL:
            put_half(q, d);
            break;
        case ECH_TYPE_Q4_1: case ECH_TYPE_Q5_1:
            put_half(q, fabsf(d));
            put_half(q + 2, m);
            break;
        case ECH_TYPE_Q2_K:
            put_half(q + 80, fabsf(d));
            put_half(q + 82, fabsf(m));
            break;
        case ECH_TYPE_Q3_K: put_half(q + 108, d); break;
        case ECH_TYPE_Q4_K: case ECH_TYPE_Q5_K:
            put_half(q, fabsf(d));
            put_half(q + 2, fabsf(m));
            break;
        case ECH_TYPE_Q6_K: put_half(q + 208, d * 0.1f); break;
        default: break;
        }
        if (t == ECH_TYPE_Q8_0) /* llama.cpp never writes -128 */
            for (int j = 0; j < 32; j++)
                if (q[2 + j] == 0x80)
                    q[2 + j] = 0x81;
    }
}

/* Activations converted to the dot type of weight type t. */
static void *to_dot(ech_type t, const float *x, int64_t n)
{
    const ech_type_kernels *k = ech_kernels_ref(t);
    void *a = malloc(nbytes(k->dot_type, n));
    ech_kernels_ref(k->dot_type)->from_float(x, a, n);
    return a;
}

/* sum |w_i a_i| from the dequantised rows, and the extra allowance for the
 * fp16-rounded s = d * sum(q) of Q8_1 (2^-11 relative, per block). */
static double dot_bound(ech_type t, const void *w, const void *a, int64_t n, double *exact)
{
    const ech_type_kernels *k = ech_kernels_ref(t);
    float *fw = malloc((size_t)n * sizeof *fw), *fa = malloc((size_t)n * sizeof *fa);
    k->to_float(w, fw, n);
    ech_kernels_ref(k->dot_type)->to_float(a, fa, n);
    double sabs = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        s += (double)fw[i] * fa[i];
        sabs += fabs((double)fw[i] * fa[i]);
    }
    double extra = 0;
    if (t == ECH_TYPE_Q4_1 || t == ECH_TYPE_Q5_1) {
        /* the exact m * d_a * sum(q_a) vs m * fp16(d_a * sum(q_a)) */
        const uint8_t *pw = w, *pa = a;
        size_t ws = t == ECH_TYPE_Q4_1 ? 20 : 24;
        for (int64_t b = 0; b < n / 32; b++) {
            uint16_t m, sh;
            memcpy(&m, pw + (size_t)b * ws + 2, 2);
            memcpy(&sh, pa + (size_t)b * 36 + 2, 2);
            extra += fabs(ech_fp16_to_fp32(m) * ech_fp16_to_fp32(sh)) * (1.0 / 1024);
        }
    }
    free(fw);
    free(fa);
    *exact = s;
    return 1e-5 * sabs + extra + 1e-30;
}

/* ---- fp16 / bf16 -------------------------------------------------------------- */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("f16c"))) static uint16_t hw_fp32_to_fp16(float f)
{
    return (uint16_t)_cvtss_sh(f, 0);
}
__attribute__((target("f16c"))) static float hw_fp16_to_fp32(uint16_t h)
{
    return _cvtsh_ss(h);
}
#endif

static void test_fp16(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ech_fp16_to_fp32((uint16_t)h);
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF))
            bad += !isnan(f);
        else
            bad += ech_fp32_to_fp16(f) != h;
    }
    is_int(bad, 0, "fp16 -> fp32 -> fp16 is the identity on all non-nan halves");
    ok(ech_fp16_to_fp32(0x3C00) == 1.0f && ech_fp16_to_fp32(0xC000) == -2.0f &&
           ech_fp16_to_fp32(0x7BFF) == 65504.0f && ech_fp16_to_fp32(0x0001) == ldexpf(1, -24),
       "fp16 known values");
    is_int(ech_fp32_to_fp16(1.0f + ldexpf(1, -11)), 0x3C00, "fp16 tie rounds to even (down)");
    is_int(ech_fp32_to_fp16(1.0f + 3 * ldexpf(1, -11)), 0x3C02, "fp16 tie rounds to even (up)");
    is_int(ech_fp32_to_fp16(65519.0f), 0x7BFF, "fp16 65519 -> 65504");
    is_int(ech_fp32_to_fp16(65520.0f), 0x7C00, "fp16 65520 -> inf");
    is_int(ech_fp32_to_fp16(-ldexpf(1, -25)), 0x8000, "fp16 subnormal tie -> -0");
    is_int(ech_fp32_to_fp16(ldexpf(3, -26)), 0x0001, "fp16 0.75 ulp subnormal -> 1 ulp");
    is_int(ech_fp32_to_bf16(1.0f + ldexpf(1, -8)), 0x3F80, "bf16 tie rounds to even (down)");
    is_int(ech_fp32_to_bf16(1.0f + 3 * ldexpf(1, -8)), 0x3F82, "bf16 tie rounds to even (up)");
    ok(ech_bf16_to_fp32(0x4049) == 3.140625f, "bf16 known value");
    ok(isnan(ech_bf16_to_fp32(ech_fp32_to_bf16(NAN))), "bf16 keeps nan");
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("f16c")) {
        int diff = 0;
        for (int i = 0; i < 200000; i++) {
            uint32_t u = rnd() ^ (rnd() << 16);
            float f;
            memcpy(&f, &u, 4);
            if (isnan(f))
                continue;
            diff += hw_fp32_to_fp16(f) != ech_fp32_to_fp16(f);
        }
        for (uint32_t h = 0; h < 65536; h++) {
            float a = hw_fp16_to_fp32((uint16_t)h), b = ech_fp16_to_fp32((uint16_t)h);
            diff += memcmp(&a, &b, 4) != 0 && !(isnan(a) && isnan(b));
        }
        is_int(diff, 0, "software fp16 conversions match F16C bit for bit");
    } else {
        tap_skip(1, "no F16C");
    }
#else
    tap_skip(1, "not x86-64");
#endif
}

/* ---- hand-made blocks ------------------------------------------------------ */

static int check_floats(const float *got, const float *want, int n)
{
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) {
            printf("#   element %d: got %g, want %g\n", i, got[i], want[i]);
            return 0;
        }
    return 1;
}

static void test_known_blocks(void)
{
    float out[256], want[256];
    uint8_t b[300];

    /* Q4_0: d = 0.5, byte j = j | (15-j) << 4 */
    put_half(b, 0.5f);
    for (int j = 0; j < 16; j++)
        b[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    ech_kernels_ref(ECH_TYPE_Q4_0)->to_float(b, out, 32);
    for (int j = 0; j < 16; j++) {
        want[j] = (j - 8) * 0.5f;
        want[j + 16] = (7 - j) * 0.5f;
    }
    ok(check_floats(out, want, 32), "Q4_0 hand-made block");

    /* IQ4_NL: same bytes, values from the table */
    ech_kernels_ref(ECH_TYPE_IQ4_NL)->to_float(b, out, 32);
    static const int8_t nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    for (int j = 0; j < 16; j++) {
        want[j] = nl[j] * 0.5f;
        want[j + 16] = nl[15 - j] * 0.5f;
    }
    ok(check_floats(out, want, 32), "IQ4_NL hand-made block");

    /* Q4_1: d = 2, m = -1 */
    put_half(b, 2.0f);
    put_half(b + 2, -1.0f);
    for (int j = 0; j < 16; j++)
        b[4 + j] = (uint8_t)(j | ((15 - j) << 4));
    ech_kernels_ref(ECH_TYPE_Q4_1)->to_float(b, out, 32);
    for (int j = 0; j < 16; j++) {
        want[j] = 2.0f * j - 1;
        want[j + 16] = 2.0f * (15 - j) - 1;
    }
    ok(check_floats(out, want, 32), "Q4_1 hand-made block");

    /* Q5_0: d = 1, qh = 0xAAAAAAAA (odd elements get bit 4), nibbles 3 */
    put_half(b, 1.0f);
    memcpy(b + 2, (const uint8_t[]){0xAA, 0xAA, 0xAA, 0xAA}, 4);
    memset(b + 6, 0x33, 16);
    ech_kernels_ref(ECH_TYPE_Q5_0)->to_float(b, out, 32);
    for (int j = 0; j < 32; j++)
        want[j] = (float)((3 | ((j & 1) << 4)) - 16);
    ok(check_floats(out, want, 32), "Q5_0 hand-made block");

    /* Q5_1: d = 1, m = 0.5, qh = 0x0000FFFF (first 16 elements get bit 4) */
    put_half(b, 1.0f);
    put_half(b + 2, 0.5f);
    memcpy(b + 4, (const uint8_t[]){0xFF, 0xFF, 0, 0}, 4);
    memset(b + 8, 0x21, 16);
    ech_kernels_ref(ECH_TYPE_Q5_1)->to_float(b, out, 32);
    for (int j = 0; j < 32; j++)
        want[j] = (float)(j < 16 ? 1 + 16 : 2) + 0.5f;
    ok(check_floats(out, want, 32), "Q5_1 hand-made block");

    /* Q8_0: d = 0.25, q = j - 16 */
    put_half(b, 0.25f);
    for (int j = 0; j < 32; j++)
        b[2 + j] = (uint8_t)(int8_t)(j - 16);
    ech_kernels_ref(ECH_TYPE_Q8_0)->to_float(b, out, 32);
    for (int j = 0; j < 32; j++)
        want[j] = (j - 16) * 0.25f;
    ok(check_floats(out, want, 32), "Q8_0 hand-made block");

    /* Q4_K: d = 1, dmin = 0.5; sub-block j has scale j+1 and min j (6-bit
     * packing: j < 4 in the low 6 bits of bytes j and j+4, j >= 4 split) */
    memset(b, 0, sizeof b);
    put_half(b, 1.0f);
    put_half(b + 2, 0.5f);
    uint8_t *sc = b + 4;
    for (int j = 0; j < 8; j++) {
        int s = j + 1 + (j >= 4 ? 32 : 0), m = j + (j >= 4 ? 16 : 0); /* use the high bits too */
        if (j < 4) {
            sc[j] = (uint8_t)s;
            sc[j + 4] = (uint8_t)m;
        } else {
            sc[j + 4] = (uint8_t)((s & 0xF) | ((m & 0xF) << 4));
            sc[j - 4] |= (uint8_t)((s >> 4) << 6);
            sc[j] |= (uint8_t)((m >> 4) << 6);
        }
    }
    for (int i = 0; i < 128; i++)
        b[16 + i] = (uint8_t)((i % 16) | ((15 - i % 16) << 4));
    ech_kernels_ref(ECH_TYPE_Q4_K)->to_float(b, out, 256);
    for (int e = 0; e < 256; e++) {
        int j = e / 32, l = e % 32, c = e / 64;
        int byte = 32 * c + l;
        int q = (j & 1) ? 15 - byte % 16 : byte % 16;
        int s = j + 1 + (j >= 4 ? 32 : 0), m = j + (j >= 4 ? 16 : 0);
        want[e] = 1.0f * s * q - 0.5f * m;
    }
    ok(check_floats(out, want, 256), "Q4_K hand-made block (6-bit scales and mins)");

    /* Q6_K: d = 0.5, scales 1..16; every quant 33 (ql nibbles 1, qh bits 2) */
    memset(b, 0, sizeof b);
    memset(b, 0x11, 128);
    memset(b + 128, 0xAA, 64);
    for (int s = 0; s < 16; s++)
        b[192 + s] = (uint8_t)(s + 1);
    put_half(b + 208, 0.5f);
    ech_kernels_ref(ECH_TYPE_Q6_K)->to_float(b, out, 256);
    for (int e = 0; e < 256; e++)
        want[e] = 0.5f * (e / 16 + 1) * 1;
    ok(check_floats(out, want, 256), "Q6_K hand-made block");

    /* Q2_K: scale nibble 2, min nibble 1, d = 1, dmin = 0.25, quants 0..3 by 2-bit field */
    memset(b, 0, sizeof b);
    memset(b, 0x12, 16);
    memset(b + 16, 0xE4, 64); /* fields 0,1,2,3 for shifts 0,2,4,6 */
    put_half(b + 80, 1.0f);
    put_half(b + 82, 0.25f);
    ech_kernels_ref(ECH_TYPE_Q2_K)->to_float(b, out, 256);
    for (int e = 0; e < 256; e++)
        want[e] = 2.0f * ((e % 128) / 32) - 0.25f;
    ok(check_floats(out, want, 256), "Q2_K hand-made block");

    /* Q3_K: hmask all set (no -4), low bits 1, scales all 32+3 = 35 -> 3 */
    memset(b, 0, sizeof b);
    memset(b, 0xFF, 32);
    memset(b + 32, 0x55, 64);
    for (int j = 0; j < 8; j++)
        b[96 + j] = 0x33;          /* low nibbles 3 */
    for (int j = 0; j < 4; j++)
        b[104 + j] = 0xAA;         /* high 2 bits: 2 -> 3 + 32 = 35 */
    put_half(b + 108, 2.0f);
    ech_kernels_ref(ECH_TYPE_Q3_K)->to_float(b, out, 256);
    for (int e = 0; e < 256; e++)
        want[e] = 2.0f * 3 * 1;
    ok(check_floats(out, want, 256), "Q3_K hand-made block");
    b[0] = 0xFE; /* clear the high bit of element 0 -> q = 1 - 4 */
    ech_kernels_ref(ECH_TYPE_Q3_K)->to_float(b, out, 256);
    ok(out[0] == 2.0f * 3 * -3 && out[128] == 2.0f * 3 * 1, "Q3_K hmask bit clear subtracts 4");

    /* Q5_K: like Q4_K with all quants 0 and qh setting bit 4 of chunk 0's first half */
    memset(b, 0, sizeof b);
    put_half(b, 1.0f);
    for (int j = 0; j < 4; j++)
        b[4 + j] = 1; /* scale 1 for sub-blocks 0..3, mins 0 */
    memset(b + 16, 0x01, 32); /* qh bit 0 -> sub-block 0 gets +16 */
    ech_kernels_ref(ECH_TYPE_Q5_K)->to_float(b, out, 256);
    ok(out[0] == 16.0f && out[31] == 16.0f && out[32] == 0.0f && out[200] == 0.0f, "Q5_K hand-made block");
}

/* Activation rounding as llama.cpp's x86 build does it. */
static void test_activation_rounding(void)
{
    float x[256];
    uint8_t b[300];
    for (int j = 0; j < 32; j++)
        x[j] = 0;
    x[0] = 127.0f; /* amax 127: id = 1 */
    x[1] = 2.5f;
    x[2] = 3.5f;
    x[3] = -2.5f;
    x[4] = 0.5f;
    ech_kernels_for(ECH_TYPE_Q8_0)->from_float(x, b, 32);
    int8_t *q = (int8_t *)(b + 2);
    ok(q[0] == 127 && q[1] == 2 && q[2] == 4 && q[3] == -2 && q[4] == 0, "Q8_0 activations round ties to even");
    ech_kernels_for(ECH_TYPE_Q8_1)->from_float(x, b, 32);
    uint16_t s;
    memcpy(&s, b + 2, 2);
    ok(ech_fp16_to_fp32(s) == 131.0f, "Q8_1 s = d * sum(q)");
    for (int j = 0; j < 256; j++)
        x[j] = 0.25f * (j % 7) - 0.5f;
    x[9] = -127.0f; /* the signed max: iscale = 1 */
    x[10] = 4.5f;
    ech_kernels_for(ECH_TYPE_Q8_K)->from_float(x, b, 256);
    float d;
    memcpy(&d, b, 4);
    q = (int8_t *)(b + 4);
    int16_t bs0;
    memcpy(&bs0, b + 4 + 256, 2);
    int sum0 = 0;
    for (int j = 0; j < 16; j++)
        sum0 += q[j];
    ok(d == 1.0f && q[9] == -127 && q[10] == 4 && bs0 == sum0, "Q8_K: scale from the signed max, ties to even, bsums");
}

/* The activation conversions give the same bytes at every ISA level. */
static void test_activation_levels(void)
{
    static const ech_type act[] = {ECH_TYPE_Q8_0, ECH_TYPE_Q8_1, ECH_TYPE_Q8_K, ECH_TYPE_F16, ECH_TYPE_BF16};
    const int64_t n = 9 * 256;
    float *x = malloc(n * sizeof *x);
    for (int64_t j = 0; j < n; j++)
        x[j] = grand() * (j % 97 == 3 ? 50.0f : 1.0f);
    x[5] = 0.0f; /* a block of zeros, and ties at +-amax */
    for (int j = 256; j < 512; j++)
        x[j] = 0.0f;
    x[600] = 3.0f;
    x[601] = -3.0f;
    x[702] = 1.0f + ldexpf(1, -8); /* bf16 ties */
    x[703] = 1.0f + 3 * ldexpf(1, -8);
    ech_isa best = ech_isa_detect();
    for (size_t i = 0; i < sizeof act / sizeof act[0]; i++) {
        size_t nb = nbytes(act[i], n);
        uint8_t *want = malloc(nb), *got = malloc(nb);
        if (act[i] == ECH_TYPE_F16) { /* nan and inf only for the float types */
            x[700] = NAN;
            x[701] = INFINITY;
        }
        ech_kernels_ref(act[i])->from_float(x, want, n);
        int same = 1;
        for (int level = 1; level <= (int)best; level++) {
            ech_kernels_use((ech_isa)level);
            memset(got, 0xAA, nb);
            ech_kernels_for(act[i])->from_float(x, got, n);
            same &= memcmp(got, want, nb) == 0;
        }
        ech_kernels_use(ECH_ISA_SCALAR);
        ok(same, "%s activation conversion: SIMD levels give the reference's bytes", ech_type_name(act[i]));
        free(want);
        free(got);
    }
    free(x);
    ech_kernels_use(best);
    ech_kernels_use(ECH_ISA_SCALAR);
}

/* ---- random rows: round trips, reference dots --------------------------------- */

static void test_roundtrip(void)
{
    static const struct { ech_type t; double rmse; } bounds[] = {
        {ECH_TYPE_F16, 1e-3}, {ECH_TYPE_BF16, 4e-3}, {ECH_TYPE_Q8_0, 0.01}, {ECH_TYPE_Q8_1, 0.01},
        {ECH_TYPE_Q8_K, 0.015}, {ECH_TYPE_Q4_0, 0.12}, {ECH_TYPE_Q4_1, 0.10}, {ECH_TYPE_Q5_0, 0.065},
        {ECH_TYPE_Q5_1, 0.05}, {ECH_TYPE_Q4_K, 0.10}, {ECH_TYPE_Q5_K, 0.05}, {ECH_TYPE_Q6_K, 0.025},
        /* llama.cpp's quantisers give 0.30, 0.15 and 0.076 on N(0, 1) data */
        {ECH_TYPE_Q2_K, 0.36}, {ECH_TYPE_Q3_K, 0.19}, {ECH_TYPE_IQ4_NL, 0.095},
    };
    const int64_t n = 7 * 256;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    void *q = malloc(nbytes(ECH_TYPE_F32, n));
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        ech_type t = bounds[i].t;
        for (int64_t j = 0; j < n; j++)
            x[j] = grand() * (j % 64 == 5 ? 4 : 1);
        const ech_type_kernels *k = ech_kernels_ref(t);
        k->from_float(x, q, n);
        k->to_float(q, y, n);
        double se = 0, sx = 0;
        for (int64_t j = 0; j < n; j++) {
            se += (double)(x[j] - y[j]) * (x[j] - y[j]);
            sx += (double)x[j] * x[j];
        }
        double r = sqrt(se / sx);
        ok(r < bounds[i].rmse, "%s round trip: relative rms error %.4f < %g", ech_type_name(t), r, bounds[i].rmse);
    }
    /* a block of zeros (and a lone tiny value) comes back as zeros */
    static const ech_type zq[] = {ECH_TYPE_Q2_K, ECH_TYPE_Q3_K, ECH_TYPE_IQ4_NL, ECH_TYPE_Q4_K, ECH_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof zq / sizeof zq[0]; i++) {
        memset(x, 0, 512 * sizeof *x);
        x[300] = 1e-20f;
        ech_quantizer_for(zq[i])(x, q, 512);
        ech_kernels_ref(zq[i])->to_float(q, y, 512);
        int nz = 0;
        for (int j = 0; j < 512; j++)
            nz += y[j] != 0.0f;
        ok(nz == 0, "%s: zero blocks quantise to zeros", ech_type_name(zq[i]));
    }
    free(x);
    free(y);
    free(q);
}

static void test_ref_dots(void)
{
    static const int64_t nblocks[] = {1, 3, 7};
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        ech_type t = weight_types[ti];
        int64_t bs = block_size(t) == 1 ? 32 : block_size(t);
        int fails = 0;
        double worst = 0;
        for (size_t ni = 0; ni < 3; ni++)
            for (int rep = 0; rep < 4; rep++) {
                int64_t n = bs * nblocks[ni];
                void *w = malloc(nbytes(t, n));
                float *x = malloc(n * sizeof *x);
                random_row(t, w, n);
                for (int64_t j = 0; j < n; j++)
                    x[j] = grand();
                void *a = to_dot(t, x, n);
                float got;
                ech_kernels_ref(t)->vec_dot(n, &got, w, a);
                double exact, bound = dot_bound(t, w, a, n, &exact);
                double err = fabs(got - exact);
                if (err > bound)
                    fails++;
                if (err / bound > worst)
                    worst = err / bound;
                free(w);
                free(x);
                free(a);
            }
        ok(fails == 0, "%s reference vec_dot = dot of dequantised rows (1, 3, 7 blocks; worst %.2f of bound)",
           ech_type_name(t), worst);
    }
}

/* ---- SIMD levels against the reference --------------------------------------- */

static void test_simd_dots(void)
{
    ech_isa best = ech_isa_detect();
    static const int64_t nblocks[] = {1, 2, 3, 5, 7, 8, 9, 17, 33};
    for (int level = 1; level <= 2; level++) {
        if (level > (int)best) {
            tap_skip((int)N_WEIGHT_TYPES, "ISA level not available on this CPU");
            continue;
        }
        for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
            ech_type t = weight_types[ti];
            int64_t bs = block_size(t) == 1 ? 16 : block_size(t);
            int fails = 0;
            double worst = 0;
            for (size_t ni = 0; ni < sizeof nblocks / sizeof nblocks[0]; ni++) {
                int64_t n = bs * nblocks[ni] + (block_size(t) == 1 ? (int64_t)ni : 0); /* odd float lengths */
                void *w = malloc(nbytes(t, n));
                float *x = malloc(n * sizeof *x);
                random_row(t, w, n);
                for (int64_t j = 0; j < n; j++)
                    x[j] = grand();
                void *a = to_dot(t, x, n);
                float want, got;
                ech_kernels_ref(t)->vec_dot(n, &want, w, a);
                ech_kernels_use((ech_isa)level);
                ech_kernels_for(t)->vec_dot(n, &got, w, a);
                ech_kernels_use(ECH_ISA_SCALAR);
                double exact, bound = dot_bound(t, w, a, n, &exact);
                double err = fabs((double)got - want);
                if (err > bound) {
                    if (!fails)
                        printf("#   n=%lld got %.9g want %.9g bound %.3g\n", (long long)n, got, want, bound);
                    fails++;
                }
                if (err / bound > worst)
                    worst = err / bound;
                free(w);
                free(x);
                free(a);
            }
            ok(fails == 0, "%s %s vec_dot = reference (worst %.3f of bound)", ech_isa_name((ech_isa)level),
               ech_type_name(t), worst);
        }
    }
    ech_kernels_use(best);
}

/* ech_matmul at every level against a naive loop over the reference vec_dot */
static void test_matmul(void)
{
    ech_isa best = ech_isa_detect();
    static const int64_t toks[] = {1, 3, 6, 17, 40}; /* 3, 6: multi-token gemv; 17, 40: lanes kernels, partial last tile */
    static const int64_t rowsv[] = {1, 5, 37};
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        ech_type t = weight_types[ti];
        /* row lengths per row count: the decode kernels of the 32-element
         * types work in groups of 8 blocks, so 23 blocks end in a tail of 7,
         * 9 in a tail of 1, 16 in none */
        static const int64_t nb32[] = {23, 9, 16}, nbk[] = {1, 3, 5}, nf[] = {80, 93, 33};
        int fails = 0, nondet = 0, runs = 0;
        for (size_t ri = 0; ri < 3; ri++)
            for (size_t tk = 0; tk < 5; tk++) {
                int64_t rows = rowsv[ri], n_tok = toks[tk];
                int64_t cols = block_size(t) == 1 ? nf[ri] : block_size(t) * (block_size(t) == 32 ? nb32[ri] : nbk[ri]);
                size_t wrow = nbytes(t, cols);
                uint8_t *W = malloc(wrow * rows);
                for (int64_t r = 0; r < rows; r++)
                    random_row(t, W + wrow * r, cols);
                float *x = malloc(sizeof(float) * cols * n_tok);
                for (int64_t i = 0; i < cols * n_tok; i++)
                    x[i] = grand();
                float *want = malloc(sizeof(float) * rows * n_tok), *bound = malloc(sizeof(float) * rows * n_tok);
                float *y1 = malloc(sizeof(float) * rows * n_tok), *y2 = malloc(sizeof(float) * rows * n_tok);
                for (int64_t tt = 0; tt < n_tok; tt++) {
                    void *a = to_dot(t, x + tt * cols, cols);
                    for (int64_t r = 0; r < rows; r++) {
                        double exact;
                        ech_kernels_ref(t)->vec_dot(cols, &want[tt * rows + r], W + wrow * r, a);
                        bound[tt * rows + r] = (float)dot_bound(t, W + wrow * r, a, cols, &exact);
                    }
                    free(a);
                }
                for (int level = 0; level <= (int)best; level++) {
                    ech_kernels_use((ech_isa)level);
                    size_t ss = ech_matmul_scratch(t, cols, n_tok);
                    void *scratch = malloc(ss);
                    ech_matmul(W, t, rows, cols, x, n_tok, y1, scratch, 1);
                    ech_matmul(W, t, rows, cols, x, n_tok, y2, scratch, 2);
                    free(scratch);
                    runs++;
                    for (int64_t i = 0; i < rows * n_tok; i++) {
                        if (fabsf(y1[i] - want[i]) > bound[i]) {
                            if (!fails)
                                printf("#   %s rows %lld tok %lld i %lld: got %.9g want %.9g\n",
                                       ech_isa_name((ech_isa)level), (long long)rows, (long long)n_tok,
                                       (long long)i, y1[i], want[i]);
                            fails++;
                        }
                    }
                    nondet += memcmp(y1, y2, sizeof(float) * rows * n_tok) != 0;
                }
                free(W);
                free(x);
                free(want);
                free(bound);
                free(y1);
                free(y2);
            }
        ok(fails == 0, "%s matmul = reference (rows 1/5/37 x tokens 1/3/6/17/40, %d level runs)", ech_type_name(t), runs);
        ok(nondet == 0, "%s matmul: 1 and 2 threads give identical results", ech_type_name(t));
    }
    ech_kernels_use(best);
}

/* A decode step of 2..8 tokens gives each token what it gets alone, bit for
 * bit, where the multi-token kernel does the single-token kernel's
 * arithmetic (all types with one but Q8_0, whose single-token kernel sums
 * in another order; it is checked against the reference in test_matmul). */
static void test_gemvn_same_as_alone(void)
{
    static const ech_type types[] = {ECH_TYPE_Q4_0, ECH_TYPE_Q4_1, ECH_TYPE_Q5_0, ECH_TYPE_Q5_1,
                                     ECH_TYPE_IQ4_NL, ECH_TYPE_Q4_K, ECH_TYPE_Q5_K, ECH_TYPE_Q6_K};
    const int64_t rows = 19;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const ech_type t = types[ti];
        const int64_t cols = block_size(t) == 32 ? 32 * 19 : 256 * 3;
        const size_t wrow = nbytes(t, cols);
        uint8_t *W = malloc(wrow * rows);
        for (int64_t r = 0; r < rows; r++)
            random_row(t, W + wrow * r, cols);
        float *x = malloc(sizeof(float) * cols * 8), *y = malloc(sizeof(float) * rows * 8),
              *y1 = malloc(sizeof(float) * rows);
        for (int64_t i = 0; i < cols * 8; i++)
            x[i] = grand();
        void *scratch = malloc(ech_matmul_scratch(t, cols, 8));
        int diff = 0;
        for (int nt = 2; nt <= 8; nt++) {
            ech_matmul(W, t, rows, cols, x, nt, y, scratch, 1);
            for (int k = 0; k < nt; k++) {
                ech_matmul(W, t, rows, cols, x + k * cols, 1, y1, scratch, 1);
                diff += memcmp(y1, y + k * rows, sizeof(float) * rows) != 0;
            }
        }
        ok(diff == 0, "%s %s: decode of 2..8 tokens = each token alone, bit for bit", ech_isa_name(ech_kernels_isa()),
           ech_type_name(t));
        free(W);
        free(x);
        free(y);
        free(y1);
        free(scratch);
    }
}

/* Every thread of an enclosing parallel region calls ech_matmul; the work
 * is shared and the result is the same as from a plain call. */
static void test_matmul_in_team(void)
{
    const ech_type t = ECH_TYPE_Q4_0;
    const int64_t rows = 67, cols = 256, n_tok = 5;
    size_t wrow = nbytes(t, cols);
    uint8_t *W = malloc(wrow * rows);
    for (int64_t r = 0; r < rows; r++)
        random_row(t, W + wrow * r, cols);
    float *x = malloc(sizeof(float) * cols * n_tok), *y1 = malloc(sizeof(float) * rows * n_tok),
          *y2 = malloc(sizeof(float) * rows * n_tok);
    for (int64_t i = 0; i < cols * n_tok; i++)
        x[i] = grand();
    void *scratch = malloc(ech_matmul_scratch(t, cols, n_tok));
    ech_matmul(W, t, rows, cols, x, n_tok, y1, scratch, 1);
    memset(y2, 0, sizeof(float) * rows * n_tok);
    int team = 0;
#pragma omp parallel num_threads(2)
    {
#pragma omp atomic
        team++;
        ech_matmul(W, t, rows, cols, x, n_tok, y2, scratch, 99);
    }
    ok(memcmp(y1, y2, sizeof(float) * rows * n_tok) == 0, "matmul called by every thread of a team of %d", team);
    free(W);
    free(x);
    free(y1);
    free(y2);
    free(scratch);
}

/* ---- real files: block formats and quantisers against llama.cpp ------------- */

static void test_shared_models(void)
{
    static const char *names[] = {"F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL",
                                  "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"};
    const size_t n_names = sizeof names / sizeof names[0];
    const char *shared = getenv("ECH_SHARED");
    char path[4096];
    ech_gguf *ref = NULL;
    if (shared && *shared) {
        snprintf(path, sizeof path, "%s/models/ref/mini-llama-F32.gguf", shared);
        ech_gguf_open(path, &ref, NULL);
    }
    if (!ref) {
        tap_skip((int)n_names * 3, "ECH_SHARED not set or mini-llama-F32.gguf missing");
        return;
    }
    for (size_t f = 0; f < n_names; f++) {
        snprintf(path, sizeof path, "%s/models/ref/mini-llama-%s.gguf", shared, names[f]);
        ech_gguf *g = NULL;
        if (ech_gguf_open(path, &g, NULL) != ECH_OK) {
            tap_skip(3, "model file missing");
            continue;
        }
        double worst[ECH_TYPE_COUNT] = {0};
        int seen[ECH_TYPE_COUNT] = {0}, missing = 0, mm_bad = 0, mm_runs = 0;
        size_t blocks = 0, same = 0, qtensors = 0;
        for (size_t i = 0; i < ech_gguf_n_tensors(g); i++) {
            const ech_gguf_tensor *tq = ech_gguf_tensor_at(g, i);
            const ech_gguf_tensor *tf = ech_gguf_find_tensor(ref, tq->name);
            if (!tf || tf->n_elements != tq->n_elements || tq->type == ECH_TYPE_F32) {
                missing += !tf;
                continue;
            }
            const ech_type_kernels *k = ech_kernels_ref((ech_type)tq->type);
            if (!k) {
                missing++;
                continue;
            }
            int64_t n = (int64_t)tq->n_elements;
            float *y = malloc(sizeof(float) * n);
            const float *x = tf->data;
            k->to_float(tq->data, y, n);
            /* error relative to the tensor's largest magnitude */
            double amax = 0, emax = 0;
            for (int64_t j = 0; j < n; j++) {
                amax = fmax(amax, fabs(x[j]));
                emax = fmax(emax, fabs((double)x[j] - y[j]));
            }
            double rel = emax / amax;
            seen[tq->type] = 1;
            if (rel > worst[tq->type])
                worst[tq->type] = rel;
            /* our quantiser against llama-quantize's bytes */
            ech_from_float_fn qf = ech_quantizer_for((ech_type)tq->type);
            if (qf && tq->type != ECH_TYPE_F16 && tq->type != ECH_TYPE_BF16) {
                int64_t row = (int64_t)tq->ne[0];
                size_t rb = nbytes((ech_type)tq->type, row);
                const ech_type_info *ti = ech_type_info_get(tq->type);
                uint8_t *buf = malloc(rb);
                for (int64_t r = 0; r < n / row; r++) {
                    qf(x + r * row, buf, row);
                    for (size_t b = 0; b < rb / ti->type_size; b++) {
                        blocks++;
                        same += memcmp(buf + b * ti->type_size,
                                       (const uint8_t *)tq->data + r * rb + b * ti->type_size, ti->type_size) == 0;
                    }
                }
                free(buf);
                qtensors++;
            } else if (tq->type == ECH_TYPE_F16 || tq->type == ECH_TYPE_BF16) {
                const ech_type_kernels *kk = ech_kernels_ref((ech_type)tq->type);
                uint16_t *buf = malloc(2 * (size_t)n);
                kk->from_float(x, buf, n);
                blocks += (size_t)n;
                for (int64_t j = 0; j < n; j++) {
                    uint16_t h;
                    memcpy(&h, (const uint8_t *)tq->data + 2 * j, 2);
                    same += h == buf[j];
                }
                free(buf);
                qtensors++;
            }
            /* SIMD matmul on the file's own rows (up to 8) at every level */
            {
                int64_t cols = (int64_t)tq->ne[0], rows = n / cols < 8 ? n / cols : 8, ntok = 3;
                float *xa = malloc(sizeof(float) * cols * ntok), *ya = malloc(sizeof(float) * rows * ntok);
                for (int64_t j = 0; j < cols * ntok; j++)
                    xa[j] = grand();
                size_t wrow = nbytes((ech_type)tq->type, cols);
                ech_isa best = ech_isa_detect();
                for (int level = 1; level <= (int)best; level++) {
                    ech_kernels_use((ech_isa)level);
                    void *scratch = malloc(ech_matmul_scratch((ech_type)tq->type, cols, ntok));
                    ech_matmul(tq->data, (ech_type)tq->type, rows, cols, xa, ntok, ya, scratch, 1);
                    free(scratch);
                    ech_kernels_use(ECH_ISA_SCALAR);
                    for (int64_t tt = 0; tt < ntok; tt++) {
                        void *a = to_dot((ech_type)tq->type, xa + tt * cols, cols);
                        for (int64_t r = 0; r < rows; r++) {
                            float want;
                            double exact;
                            const uint8_t *wrp = (const uint8_t *)tq->data + wrow * r;
                            k->vec_dot(cols, &want, wrp, a);
                            double bnd = dot_bound((ech_type)tq->type, wrp, a, cols, &exact);
                            mm_bad += fabs((double)ya[tt * rows + r] - want) > bnd;
                        }
                        free(a);
                    }
                    mm_runs++;
                }
                free(xa);
                free(ya);
            }
            free(y);
        }
        ok(mm_bad == 0, "mini-llama-%s: SIMD matmul on the file's tensors = reference (%d level x tensor runs)",
           names[f], mm_runs);
        /* bounds: the quantisation error a type allows, as a fraction of amax */
        char msg[512] = "";
        int okk = missing == 0;
        for (int t = 0; t < ECH_TYPE_COUNT; t++) {
            if (!seen[t])
                continue;
            double lim = t == ECH_TYPE_F16 ? 1e-3 : t == ECH_TYPE_BF16 ? 4e-3 : t == ECH_TYPE_Q8_0 ? 0.01
                       : t == ECH_TYPE_Q6_K ? 0.04 : t == ECH_TYPE_Q5_0 || t == ECH_TYPE_Q5_1 || t == ECH_TYPE_Q5_K ? 0.07
                       : t == ECH_TYPE_Q2_K ? 0.5 : t == ECH_TYPE_Q3_K ? 0.3 : 0.15;
            okk &= worst[t] <= lim;
            size_t len = strlen(msg);
            snprintf(msg + len, sizeof msg - len, " %s %.2e (<= %g)", ech_type_name((uint32_t)t), worst[t], lim);
        }
        ok(okk, "mini-llama-%s: dequantised vs F32 file, max |err|/amax:%s", names[f], msg);
        if (qtensors)
            ok(same == blocks, "mini-llama-%s: our quantisers reproduce llama-quantize: %zu of %zu blocks identical",
               names[f], same, blocks);
        else
            tap_skip(1, "no type we quantise");
        ech_gguf_close(g);
    }
    ech_gguf_close(ref);
}

int main(void)
{
    printf("# cpu: best ISA level %s\n", ech_isa_name(ech_isa_detect()));
    ok(ech_kernels_for(ECH_TYPE_F32) != NULL && ech_kernels_for(ECH_TYPE_IQ2_XXS) == NULL &&
           ech_kernels_for((ech_type)999) == NULL,
       "kernel lookup: supported, unsupported and bad ids");
    ok(ech_kernels_use(ECH_ISA_SCALAR) == ECH_ISA_SCALAR && ech_kernels_isa() == ECH_ISA_SCALAR, "use scalar");
    ok(ech_kernels_use(ECH_ISA_AVX512) == ech_isa_detect(), "use is capped at the CPU's level");
    ech_kernels_use(ECH_ISA_SCALAR);
    test_fp16();
    test_known_blocks();
    test_activation_rounding();
    test_activation_levels();
    test_roundtrip();
    test_ref_dots();
    test_simd_dots();
    test_matmul();
    test_matmul_in_team();
    test_gemvn_same_as_alone();
    test_shared_models();
    return done_testing();
}
