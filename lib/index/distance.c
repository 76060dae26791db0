/* distance.c - l2 and inner-product kernels: scalar, AVX2+FMA, AVX-512.
 *
 * The SIMD versions keep two accumulators so that consecutive FMAs do not
 * wait on each other; AVX-512 ends with one masked step instead of a scalar
 * tail (100-d GloVe vectors are 6 full steps and one of 4 lanes).
 */
#include "config.h"

#include <math.h>

#include "index/distance.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ECH_X86 1
#endif

const char *ech_metric_name(ech_metric m)
{
    switch (m) {
    case ECH_METRIC_COSINE: return "cosine";
    case ECH_METRIC_L2: return "l2";
    case ECH_METRIC_IP: return "ip";
    }
    return NULL;
}

int ech_metric_parse(const char *s)
{
    static const struct { const char *name; ech_metric m; } names[] = {
        {"cosine", ECH_METRIC_COSINE}, {"cos", ECH_METRIC_COSINE}, {"l2", ECH_METRIC_L2},
        {"ip", ECH_METRIC_IP}, {"dot", ECH_METRIC_IP},
    };
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++) {
        const char *a = s, *b = names[i].name;
        while (*a && *a == *b)
            a++, b++;
        if (*a == '\0' && *b == '\0')
            return (int)names[i].m;
    }
    return -1;
}

static float l2_scalar(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
        s0 += d0 * d0;
        s1 += d1 * d1;
    }
    if (i < n)
        s0 += (a[i] - b[i]) * (a[i] - b[i]);
    return s0 + s1;
}

static float ip_scalar(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
    }
    if (i < n)
        s0 += a[i] * b[i];
    return 1.0f - (s0 + s1);
}

#ifdef ECH_X86
__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static float l2_avx2(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    if (i + 8 <= n) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        i += 8;
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += (a[i] - b[i]) * (a[i] - b[i]);
    return s;
}

__attribute__((target("avx2,fma"))) static float ip_avx2(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    if (i + 8 <= n) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        i += 8;
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return 1.0f - s;
}

__attribute__((target("avx512f"))) static float l2_avx512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    if (i + 16 <= n) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        i += 16;
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f"))) static float ip_avx512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i + 16 <= n) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        i += 16;
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return 1.0f - _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
#endif

ech_dist_fn ech_dist_at(ech_metric m, ech_isa isa)
{
    ech_isa best = ech_isa_detect();
#ifdef ECH_X86
    /* ech_isa_detect wants more than AVX-512F for the matmul kernels; these
     * need only F, so a CPU with it but without VNNI still gets them. */
    if (isa >= ECH_ISA_AVX512 && best < ECH_ISA_AVX512 && __builtin_cpu_supports("avx512f"))
        best = ECH_ISA_AVX512;
#endif
    if (isa > best)
        isa = best;
    int l2 = m == ECH_METRIC_L2;
#ifdef ECH_X86
    if (isa >= ECH_ISA_AVX512)
        return l2 ? l2_avx512 : ip_avx512;
    if (isa >= ECH_ISA_AVX2)
        return l2 ? l2_avx2 : ip_avx2;
#endif
    return l2 ? l2_scalar : ip_scalar;
}

ech_dist_fn ech_dist_for(ech_metric m)
{
    return ech_dist_at(m, ech_kernels_isa());
}

void ech_vec_normalize(float *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    if (s > 0) {
        float inv = (float)(1.0 / sqrt(s));
        for (size_t i = 0; i < n; i++)
            v[i] *= inv;
    }
}

float ech_dist_to_score(ech_metric m, float dist)
{
    return m == ECH_METRIC_L2 ? dist : 1.0f - dist;
}
