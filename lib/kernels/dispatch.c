/* dispatch.c - CPU feature detection and the kernel table of each ISA level.
 *
 * Three tables are built once: scalar, AVX2 (the scalar one with AVX2
 * kernels patched in) and AVX-512 (the AVX2 one with AVX-512 kernels patched
 * in), so a level only overrides what it does better.  The level in use is a
 * relaxed atomic; changing it is meant for tests and benchmarks.
 */
#include "config.h"

#include <pthread.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <stdatomic.h>

#include "kernels/dispatch.h"
#include "kernels/ref.h"

#define N_ISA 3

static ech_type_kernels tables[N_ISA][ECH_TYPE_COUNT];
static ech_kset ksets[N_ISA][ECH_TYPE_COUNT];
static ech_from_float_fn quantizers[ECH_TYPE_COUNT];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
static _Atomic int isa_in_use = -1;

static void set_ref(ech_type t, ech_type dot, ech_to_float_fn tf, ech_from_float_fn ff, ech_vec_dot_fn vd)
{
    tables[0][t] = (ech_type_kernels){.dot_type = dot, .to_float = tf, .from_float = ff, .vec_dot = vd};
}

static void build_tables(void)
{
#define REF(T, t, DOT, ff) \
    set_ref(ECH_TYPE_##T, ECH_TYPE_##DOT, ech_ref_to_float_##t, ff, ech_ref_vec_dot_##t)
    REF(F32, f32, F32, ech_ref_from_float_f32);
    REF(F16, f16, F16, ech_ref_from_float_f16);
    REF(BF16, bf16, BF16, ech_ref_from_float_bf16);
    REF(Q4_0, q4_0, Q8_0, ech_ref_quantize_q4_0);
    REF(Q4_1, q4_1, Q8_1, ech_ref_quantize_q4_1);
    REF(Q5_0, q5_0, Q8_0, ech_ref_quantize_q5_0);
    REF(Q5_1, q5_1, Q8_1, ech_ref_quantize_q5_1);
    REF(Q8_0, q8_0, Q8_0, ech_ref_from_float_q8_0);
    REF(Q2_K, q2_K, Q8_K, ech_ref_quantize_q2_K);
    REF(Q3_K, q3_K, Q8_K, ech_ref_quantize_q3_K);
    REF(Q4_K, q4_K, Q8_K, ech_ref_quantize_q4_K);
    REF(Q5_K, q5_K, Q8_K, ech_ref_quantize_q5_K);
    REF(Q6_K, q6_K, Q8_K, ech_ref_quantize_q6_K);
    REF(IQ4_NL, iq4_nl, Q8_0, ech_ref_quantize_iq4_nl);
#undef REF
    /* activation-only types: conversions, no dot product of their own */
    tables[0][ECH_TYPE_Q8_1] = (ech_type_kernels){.dot_type = ECH_TYPE_Q8_1,
                                                  .to_float = ech_ref_to_float_q8_1,
                                                  .from_float = ech_ref_from_float_q8_1};
    tables[0][ECH_TYPE_Q8_K] = (ech_type_kernels){.dot_type = ECH_TYPE_Q8_K,
                                                  .to_float = ech_ref_to_float_q8_K,
                                                  .from_float = ech_ref_from_float_q8_K};

    for (int t = 0; t < ECH_TYPE_COUNT; t++)
        quantizers[t] = tables[0][t].from_float;
    quantizers[ECH_TYPE_Q8_0] = ech_ref_quantize_q8_0;
    quantizers[ECH_TYPE_Q8_1] = NULL;
    quantizers[ECH_TYPE_Q8_K] = NULL;

    for (int t = 0; t < ECH_TYPE_COUNT; t++) {
        tables[1][t] = tables[0][t];
        ksets[1][t] = ksets[0][t];
    }
    ech_avx2_fill(tables[1], ksets[1]);
    for (int t = 0; t < ECH_TYPE_COUNT; t++) {
        tables[2][t] = tables[1][t];
        ksets[2][t] = ksets[1][t];
    }
    ech_avx512_fill(tables[2], ksets[2]);
    ech_avx512_lanes_fill(ksets[2]);
}

#if defined(__x86_64__) || defined(__i386__)
/* F16C from CPUID leaf 1 (ECX bit 29): clang before 15 has no "f16c" in
 * __builtin_cpu_supports, and the fuzz targets are built with clang */
static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

ech_isa ech_isa_detect(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c()))
        return ECH_ISA_SCALAR;
    /* Our AVX-512 kernels need VNNI (vpdpbusd) and VBMI (byte permutes):
     * Ice Lake, Sapphire Rapids, Zen 4 and later.  Older AVX-512 parts
     * (Skylake-X, Cascade Lake) run the AVX2 kernels. */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi"))
        return ECH_ISA_AVX512;
    return ECH_ISA_AVX2;
#else
    return ECH_ISA_SCALAR;
#endif
}

ech_isa ech_kernels_isa(void)
{
    int isa = atomic_load_explicit(&isa_in_use, memory_order_relaxed);
    if (isa < 0) {
        isa = (int)ech_isa_detect();
        atomic_store_explicit(&isa_in_use, isa, memory_order_relaxed);
    }
    return (ech_isa)isa;
}

ech_isa ech_kernels_use(ech_isa isa)
{
    ech_isa best = ech_isa_detect();
    if ((int)isa < 0)
        isa = ECH_ISA_SCALAR;
    if (isa > best)
        isa = best;
    atomic_store_explicit(&isa_in_use, (int)isa, memory_order_relaxed);
    return isa;
}

const char *ech_isa_name(ech_isa isa)
{
    switch (isa) {
    case ECH_ISA_SCALAR: return "scalar";
    case ECH_ISA_AVX2: return "avx2";
    case ECH_ISA_AVX512: return "avx512";
    }
    return "unknown";
}

static const ech_type_kernels *lookup(int level, ech_type t)
{
    if ((unsigned)t >= ECH_TYPE_COUNT)
        return NULL;
    pthread_once(&tables_once, build_tables);
    const ech_type_kernels *k = &tables[level][t];
    return k->to_float ? k : NULL;
}

const ech_type_kernels *ech_kernels_for(ech_type t)
{
    return lookup((int)ech_kernels_isa(), t);
}

const ech_type_kernels *ech_kernels_ref(ech_type t)
{
    return lookup(0, t);
}

ech_from_float_fn ech_quantizer_for(ech_type t)
{
    if ((unsigned)t >= ECH_TYPE_COUNT)
        return NULL;
    pthread_once(&tables_once, build_tables);
    return quantizers[t];
}

const ech_kset *ech_kset_at(ech_isa isa, ech_type t)
{
    if ((unsigned)t >= ECH_TYPE_COUNT || (unsigned)isa >= N_ISA)
        return NULL;
    pthread_once(&tables_once, build_tables);
    return &ksets[isa][t];
}

const ech_type_kernels *ech_kernels_at(ech_isa isa, ech_type t)
{
    if ((unsigned)isa >= N_ISA)
        return NULL;
    return lookup((int)isa, t);
}

const ech_kset *ech_kset_for(ech_type t)
{
    return ech_kset_at(ech_kernels_isa(), t);
}
