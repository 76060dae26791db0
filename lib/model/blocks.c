/* blocks.c - norms, rotary embeddings, activations, softmax. */
#include "config.h"
#include "model/blocks.h"

#include <math.h>
#include <pthread.h>

#include "kernels/kernels.h"

static double sum_sq(const float *x, int64_t n);
static void scale_mul(float *out, const float *x, float scale, const float *w, int64_t n);

/* llama.cpp's: the float squares summed in double, then (x * scale) * w */
void ech_rmsnorm(float *out, const float *x, const float *w, int64_t dim, int64_t n, float eps)
{
    for (int64_t r = 0; r < n; r++) {
        const float scale = 1.0f / sqrtf((float)(sum_sq(x + r * dim, dim) / (double)dim) + eps);
        scale_mul(out + r * dim, x + r * dim, scale, w, dim);
    }
}

static inline float reduce16(const float *v);

void ech_layernorm(float *out, const float *x, const float *w, const float *b, int64_t dim, int64_t n, float eps)
{
    for (int64_t r = 0; r < n; r++) {
        const float *xr = x + r * dim;
        float *o = out + r * dim;
        double sum = 0.0;
        for (int64_t i = 0; i < dim; i++)
            sum += (double)xr[i];
        const float mean = (float)sum / (float)dim;
        /* squares summed per 16 in float, then in double, as llama.cpp's
         * vector code does */
        double sum2 = 0.0;
        int64_t i = 0;
        for (; i + 15 < dim; i += 16) {
            float v[16];
            for (int k = 0; k < 16; k++) {
                o[i + k] = xr[i + k] - mean;
                v[k] = o[i + k] * o[i + k];
            }
            sum2 += (double)reduce16(v);
        }
        for (; i < dim; i++) {
            o[i] = xr[i] - mean;
            sum2 += (double)(o[i] * o[i]);
        }
        const float scale = 1.0f / sqrtf((float)(sum2 / (double)dim) + eps);
        for (i = 0; i < dim; i++)
            o[i] = o[i] * scale * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f);
    }
}

void ech_rope(float *x, int n_heads, int head_dim, int n_rot, int32_t pos, float base,
              float freq_scale, const float *freq_factors, bool neox)
{
    /* cos/sin per frequency; the angle steps by theta_scale as llama.cpp's
     * cache does, so the rounding matches */
    float cs[512], sn[512];
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    int half = n_rot / 2;
    for (int i = 0; i < half && i < 512; i++) {
        float ff = freq_factors ? freq_factors[i] : 1.0f;
        float t = freq_scale * (theta / ff);
        cs[i] = cosf(t);
        sn[i] = sinf(t);
        theta *= theta_scale;
    }
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (int64_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * cs[i] - x1 * sn[i];
            v[b] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

/* exp(x) the way llama.cpp's AVX-512 build computes it (an Arm optimised
 * routine: 2^n by range reduction, a degree-5 polynomial, then scaling),
 * written with fmaf so it gives the same bits.  Using it where llama.cpp
 * does (SiLU and softmax over whole vectors of 16) keeps our activations
 * bit-identical to its, so its quantised activations round the same way. */
static inline float exp_ggml(float x)
{
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    if (fabsf(n) > 192.0f)
        return n <= 0.0f ? 0.0f : INFINITY;
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                         u, fmaf(0x1.ffffecp-1f, b, 1.0f));
    return ldexpf(j, (int)n);
}

/* The sum of 16 floats in the order _mm512_reduce_add_ps adds them. */
static inline float reduce16(const float *v)
{
    float t[8], h[4];
    for (int i = 0; i < 8; i++)
        t[i] = v[i + 8] + v[i];
    for (int i = 0; i < 4; i++)
        h[i] = t[i + 4] + t[i];
    return (h[0] + h[2]) + (h[1] + h[3]);
}

#if defined(__x86_64__)
#include <immintrin.h>
#define T512 __attribute__((target("avx512f,avx512dq,fma")))

/* exp_ggml on 16 lanes: the same operations, so the same bits (vscalefps
 * scales by 2^n with one rounding, as ldexpf does) */
T512 static inline __m512 exp16(__m512 x)
{
    const __m512 r = _mm512_set1_ps(0x1.8p23f);
    const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
    const __m512 n = _mm512_sub_ps(z, r);
    const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f),
                                      _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
    const __m512 u = _mm512_mul_ps(b, b);
    const __m512 j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
                        _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
        u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
    __m512 e = _mm512_scalef_ps(j, n);
    /* |n| > 192: 0 or infinity */
    const __mmask16 big = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192.0f), _CMP_GT_OQ);
    const __mmask16 neg = _mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ);
    e = _mm512_mask_blend_ps(big, e, _mm512_mask_blend_ps(neg, _mm512_set1_ps(INFINITY), _mm512_setzero_ps()));
    return e;
}

T512 static void swiglu_avx512(float *g, const float *u, int64_t n)
{
    int64_t i = 0;
    for (; i + 15 < n; i += 16) {
        const __m512 x = _mm512_loadu_ps(g + i);
        const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e)),
                                              _mm512_loadu_ps(u + i)));
    }
    for (; i < n; i++)
        g[i] = (g[i] / (1.0f + expf(-g[i]))) * u[i];
}

/* The sum of squares in 16 double lanes: one chain of double adds
 * (llama.cpp's order) was 1.5 % of a 4-sequence decode step; the order
 * changes the double sum only in its last bits, far below float's. */
T512 static double sum_sq_avx512(const float *x, int64_t n)
{
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 15 < n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i), sq = _mm512_mul_ps(v, v);
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(sq)));
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(sq, 1)));
    }
    double sum = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    for (; i < n; i++)
        sum += (double)(x[i] * x[i]);
    return sum;
}

/* out = (x * scale) * w (w NULL: x * scale); out may be x */
T512 static void scale_mul_avx512(float *out, const float *x, float scale, const float *w, int64_t n)
{
    const __m512 s = _mm512_set1_ps(scale);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), s);
        if (w)
            v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(k, w + i));
        _mm512_mask_storeu_ps(out + i, k, v);
    }
}

T512 static void add_avx512(float *x, const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, y + i)));
    }
}

/* exp(x - max) into out (none when out is NULL); returns their sum,
 * summed per 16 in double */
T512 static double exp_sum_avx512(const float *x, float *out, int64_t n, float max)
{
    double sum = 0.0;
    const __m512 m = _mm512_set1_ps(max);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m)));
        if (out)
            _mm512_mask_storeu_ps(out + i, k, v);
        sum += (double)_mm512_reduce_add_ps(v);
    }
    return sum;
}

static int use_avx512(void)
{
    return ech_kernels_isa() >= ECH_ISA_AVX512;
}
#else
static int use_avx512(void)
{
    return 0;
}
#endif

static double sum_sq(const float *x, int64_t n)
{
#if defined(__x86_64__)
    if (use_avx512())
        return sum_sq_avx512(x, n);
#endif
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    return sum;
}

static void scale_mul(float *out, const float *x, float scale, const float *w, int64_t n)
{
#if defined(__x86_64__)
    if (use_avx512()) {
        scale_mul_avx512(out, x, scale, w, n);
        return;
    }
#endif
    if (w)
        for (int64_t i = 0; i < n; i++)
            out[i] = (x[i] * scale) * w[i];
    else
        for (int64_t i = 0; i < n; i++)
            out[i] = x[i] * scale;
}

void ech_swiglu(float *gate, const float *up, int64_t n, int64_t rows)
{
    for (int64_t r = 0; r < rows; r++) {
        float *g = gate + r * n;
        const float *u = up + r * n;
#if defined(__x86_64__)
        if (use_avx512()) {
            swiglu_avx512(g, u, n);
            continue;
        }
#endif
        int64_t i = 0;
        for (; i + 15 < n; i += 16)   /* the vector body of llama.cpp's loop */
            for (int64_t k = i; k < i + 16; k++)
                g[k] = (g[k] / (1.0f + exp_ggml(0.0f - g[k]))) * u[k];
        for (; i < n; i++)            /* its scalar tail */
            g[i] = (g[i] / (1.0f + expf(-g[i]))) * u[i];
    }
}

/* gelu(x) for every F16 value, as F16: llama.cpp computes GELU this way. */
static uint16_t gelu_table[1 << 16];
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

static void gelu_init(void)
{
    const float c = 0.79788456080286535587989211986876f, a = 0.044715f;
    for (uint32_t i = 0; i < 1u << 16; i++) {
        float x = ech_fp16_to_fp32((uint16_t)i);
        float y = 0.5f * x * (1.0f + tanhf(c * x * (1.0f + a * x * x)));
        gelu_table[i] = ech_fp32_to_fp16(y);
    }
}

static inline float gelu_f16(float x)
{
    if (x <= -10.0f)
        return 0.0f;
    if (x >= 10.0f)
        return x;
    return ech_fp16_to_fp32(gelu_table[ech_fp32_to_fp16(x)]);
}

void ech_geglu(float *gate, const float *up, int64_t n)
{
    pthread_once(&gelu_once, gelu_init);
    for (int64_t i = 0; i < n; i++)
        gate[i] = gelu_f16(gate[i]) * up[i];
}

void ech_gelu(float *x, int64_t n)
{
    pthread_once(&gelu_once, gelu_init);
    for (int64_t i = 0; i < n; i++)
        x[i] = gelu_f16(x[i]);
}

static float max_of(const float *x, int64_t n)
{
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > max)
            max = x[i];
    return max;
}

/* exp(x - max) into out (none when out is NULL) and their sum.  llama.cpp's
 * rows are padded with masked (zero) entries to whole vectors, so every
 * element takes the vector path; sums go per 16, into double */
static double exp_sum(const float *x, float *out, int64_t n, float max)
{
#if defined(__x86_64__)
    if (use_avx512())
        return exp_sum_avx512(x, out, n, max);
#endif
    double sum = 0.0;
    for (int64_t i = 0; i < n; i += 16) {
        float v[16] = {0};
        for (int64_t k = 0; k < 16 && i + k < n; k++) {
            v[k] = exp_ggml(x[i + k] - max);
            if (out)
                out[i + k] = v[k];
        }
        sum += (double)reduce16(v);
    }
    return sum;
}

void ech_softmax(float *x, int64_t n)
{
    const double sum = exp_sum(x, x, n, max_of(x, n));
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
}

double ech_log_sum_exp(const float *x, int64_t n)
{
    const float max = max_of(x, n);
    return max + log(exp_sum(x, NULL, n, max));
}

void ech_add(float *x, const float *y, int64_t n)
{
#if defined(__x86_64__)
    if (use_avx512()) {
        add_avx512(x, y, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
}
