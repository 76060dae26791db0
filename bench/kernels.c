/* bench/kernels.c - micro-benchmark of the matrix kernels.
 *
 *   make bench-kernels && bench/kernels [rows cols [n_tok]]
 *
 * For each weight type and ISA level: a rows x cols (default 2048 x 5632)
 * matrix-vector product (decode) and a matrix x 64-token product (prompt),
 * on 1 thread and on all threads.  Decode cycles through enough copies of
 * the matrix (>= 256 MiB) that weights stream from DRAM, not from L3; it
 * reports GB/s of weights read and GFLOP/s (2 flops per weight).  The
 * machine's read bandwidth is measured first with a plain streaming loop.
 * BENCH_TYPES=Q4_0,F16 limits the types; BENCH_HOT=1 runs one copy of the
 * matrix (pick rows x cols that fit in L2 to measure compute alone);
 * BENCH_ISA=avx512 runs only that ISA level.
 * BENCH_NTOK=1,2,4,8 measures decode steps of several tokens instead (a
 * batched decode of that many sequences, weights from DRAM): GB/s of
 * weights, and tokens/s as tokens per second of this one matrix, at the
 * best ISA level only.
 */
#include "config.h"

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ech.h"

/* BENCH_CPUTIME=1 (with OMP_NUM_THREADS=1): time only while the process
 * runs, for tuning on a machine shared with other work */
static double now(void)
{
    static int cpu = -1;
    if (cpu < 0)
        cpu = getenv("BENCH_CPUTIME") != NULL;
    struct timespec ts;
    clock_gettime(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static double stream_bw(int threads, size_t bytes)
{
    uint64_t *buf = aligned_alloc(64, bytes);
    size_t n = bytes / 8;
    memset(buf, 1, bytes);
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        uint64_t total = 0;
        double t0 = now();
#pragma omp parallel for num_threads(threads) reduction(+ : total) schedule(static)
        for (size_t i = 0; i < n; i += 8)
            total += buf[i] + buf[i + 1] + buf[i + 2] + buf[i + 3] + buf[i + 4] + buf[i + 5] + buf[i + 6] + buf[i + 7];
        double dt = now() - t0;
        if (total == 42)
            printf(" ");
        if (bytes / dt > best)
            best = bytes / dt;
    }
    free(buf);
    return best / 1e9;
}

int main(int argc, char **argv)
{
    int64_t rows = argc > 2 ? atoll(argv[1]) : 2048, cols = argc > 2 ? atoll(argv[2]) : 5632;
    int64_t ptok = argc > 3 ? atoll(argv[3]) : 64;
    int maxth = omp_get_max_threads();
    printf("memory read bandwidth (streaming sum, 1 GiB): 1 thread %.1f GB/s, %d threads %.1f GB/s\n",
           stream_bw(1, 1u << 30), maxth, stream_bw(maxth, 1u << 30));
    printf("matrix %lld x %lld; decode = 1 token (weights from DRAM), prompt = %lld tokens\n\n", (long long)rows,
           (long long)cols, (long long)ptok);
    printf("%-7s %-7s %3s %12s %12s %14s\n", "type", "isa", "thr", "decode GB/s", "decode GF/s", "prompt GF/s");
    static const ech_type types[] = {ECH_TYPE_Q4_0, ECH_TYPE_Q8_0, ECH_TYPE_Q4_K, ECH_TYPE_Q6_K, ECH_TYPE_F16,
                                     ECH_TYPE_BF16, ECH_TYPE_F32, ECH_TYPE_Q4_1, ECH_TYPE_Q5_0, ECH_TYPE_Q5_1,
                                     ECH_TYPE_Q2_K, ECH_TYPE_Q3_K, ECH_TYPE_Q5_K, ECH_TYPE_IQ4_NL};
    const char *only = getenv("BENCH_TYPES");
    float *x = malloc(sizeof(float) * cols * ptok), *y = malloc(sizeof(float) * rows * ptok);
    for (int64_t i = 0; i < cols * ptok; i++)
        x[i] = (float)(rnd() % 2001) / 1000.0f - 1.0f;
    ech_isa best = ech_isa_detect();
    const char *only_isa = getenv("BENCH_ISA");
    const char *ntok = getenv("BENCH_NTOK");
    if (ntok)
        printf("decode steps of n tokens (%s):\n%-7s %-7s %3s %3s %12s %12s %12s\n", ntok, "type", "isa", "thr", "n",
               "GB/s", "tokens/s", "us/step");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        ech_type t = types[ti];
        if (only && !strstr(only, ech_type_name(t)))
            continue;
        uint64_t rb;
        ech_type_nbytes(t, (uint64_t)cols, &rb);
        size_t mbytes = (size_t)rb * rows;
        /* BENCH_HOT=1: one copy, so a matrix that fits in cache measures compute */
        int copies = getenv("BENCH_HOT") ? 1 : (int)((256u << 20) / mbytes) + 1;
        uint8_t *W = malloc(mbytes * copies);
        /* valid blocks: quantise random floats where we can, else random bytes */
        const ech_type_kernels *k = ech_kernels_ref(t);
        float *row = malloc(sizeof(float) * cols);
        for (int64_t r = 0; r < rows * copies; r++) {
            for (int64_t j = 0; j < cols; j++)
                row[j] = (float)(rnd() % 2001) / 1000.0f - 1.0f;
            if (k->from_float)
                k->from_float(row, W + (size_t)r * rb, cols);
            else
                for (size_t j = 0; j < rb; j++)
                    W[(size_t)r * rb + j] = (uint8_t)rnd();
        }
        free(row);
        if (!k->from_float && t != ECH_TYPE_F32) /* sane scales for random K-quant bytes */
            for (size_t i = 0; i < mbytes * copies; i += 2)
                if ((rnd() & 7) == 0)
                    W[i + 1] &= 0x3F;
        if (ntok) {
            ech_kernels_use(best);
            void *scratch = malloc(ech_matmul_scratch(t, cols, ptok));
            for (int th = 1; th <= maxth; th += (maxth > 1 ? maxth - 1 : 1))
                for (const char *p = ntok; *p;) {
                    int nt = atoi(p);
                    if (nt >= 1 && nt <= ptok) {
                        double dt = 1e30;
                        for (int trial = 0; trial < 3; trial++) {
                            double t0 = now();
                            for (int it = 0; it < 2 * copies; it++)
                                ech_matmul(W + (size_t)(it % copies) * mbytes, t, rows, cols, x, nt, y, scratch, th);
                            double d1 = (now() - t0) / (2 * copies);
                            dt = d1 < dt ? d1 : dt;
                        }
                        printf("%-7s %-7s %3d %3d %12.1f %12.0f %12.1f\n", ech_type_name(t), ech_isa_name(best), th, nt,
                               mbytes / dt / 1e9, nt / dt, dt * 1e6);
                        fflush(stdout);
                    }
                    p += strcspn(p, ",");
                    p += *p == ',';
                }
            free(scratch);
            free(W);
            continue;
        }
        for (int level = 0; level <= (int)best; level++) {
            if (only_isa && strcmp(only_isa, ech_isa_name((ech_isa)level)) != 0)
                continue;
            ech_kernels_use((ech_isa)level);
            void *scratch = malloc(ech_matmul_scratch(t, cols, ptok));
            for (int th = 1; th <= maxth; th += (maxth > 1 ? maxth - 1 : 1)) {
                /* decode: cycle through the copies */
                /* best of 3 trials: the machine may be shared */
                int iters = level == 0 ? copies : 2 * copies;
                if (copies == 1)
                    iters = level == 0 ? 5 : 50;
                ech_matmul(W, t, rows, cols, x, 1, y, scratch, th);
                double dt = 1e30, pdt = 1e30;
                for (int trial = 0; trial < 3; trial++) {
                    double t0 = now();
                    for (int it = 0; it < iters; it++)
                        ech_matmul(W + (size_t)(it % copies) * mbytes, t, rows, cols, x, 1, y, scratch, th);
                    double d1 = (now() - t0) / iters;
                    dt = d1 < dt ? d1 : dt;
                    /* prompt: one copy, hot */
                    t0 = now();
                    ech_matmul(W, t, rows, cols, x, ptok, y, scratch, th);
                    d1 = now() - t0;
                    pdt = d1 < pdt ? d1 : pdt;
                }
                printf("%-7s %-7s %3d %12.1f %12.1f %14.1f\n", ech_type_name(t), ech_isa_name((ech_isa)level), th,
                       mbytes / dt / 1e9, 2.0 * rows * cols / dt / 1e9, 2.0 * rows * cols * ptok / pdt / 1e9);
                fflush(stdout);
            }
            free(scratch);
        }
        free(W);
    }
    free(x);
    free(y);
    return 0;
}
