/* ann-common.h - what bench/ann-bench.c, hnswlib-bench.cpp and faiss-bench.cpp
 * share: .fvecs/.ivecs loading, timing, recall@10 and the report lines that
 * bench/ann.sh reads.  Header-only so that the C and C++ programs use the
 * same code.
 *
 * Every program takes: BASE.fvecs QUERY.fvecs GT.ivecs METRIC M EFC THREADS OUT.idx
 * and prints
 *     build_s <seconds> cpu_s <seconds>   (THREADS threads; wall and process CPU time)
 *     size_bytes <bytes>         (the saved index file)
 *     load_s <seconds>           (reading it back)
 *     ef <ef> recall <r> qps <q> (one thread, one query at a time; best of
 *                                 ANN_REPS passes, default 7; queries per
 *                                 second of thread CPU time)
 * for ef in 10 20 40 80 120 160 240 320.  Cosine is the inner product of
 * normalised vectors in all three.
 *
 * With ANN_REUSE=1 and OUT.idx present, the build is skipped (build_s and
 * cpu_s print as -1) and the sweep runs on the saved index: a way to take
 * more query samples without rebuilding.
 */
#ifndef ECH_BENCH_ANN_COMMON_H
#define ECH_BENCH_ANN_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const int ann_efs[] = {10, 20, 40, 80, 120, 160, 240, 320};
#define ANN_N_EF 8

/* Thread CPU time: the machine this runs on is shared, and a query loop
 * that is descheduled should not count the time it was not running. */
static inline double ann_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline double ann_proc_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline double ann_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Load a .fvecs/.ivecs file (4-byte values) into a malloc'ed array, record
 * dimension in *d, count in *n; exits on error (a benchmark, not a tool). */
static inline void *ann_load(const char *path, int *d, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    int32_t dim;
    if (size < 4 || fread(&dim, 4, 1, f) != 1 || dim < 1 || size % (4 + 4 * (long)dim)) {
        fprintf(stderr, "%s: not a .fvecs/.ivecs file\n", path);
        exit(1);
    }
    *d = dim;
    *n = (size_t)size / (4 + 4 * (size_t)dim);
    float *out = (float *)malloc(*n * (size_t)dim * 4);
    fseek(f, 0, SEEK_SET);
    for (size_t i = 0; i < *n; i++) {
        int32_t di;
        if (fread(&di, 4, 1, f) != 1 || di != dim || fread(out + i * (size_t)dim, 4, (size_t)dim, f) != (size_t)dim) {
            fprintf(stderr, "%s: bad record %zu\n", path, i);
            exit(1);
        }
    }
    fclose(f);
    return out;
}

/* Passes per efSearch point.  A pass over 1,000 queries takes well under a
 * second at low efSearch, where one descheduling or a frequency step moves
 * it by 10 %: the best of several is the stable number. */
static inline int ann_reps(void)
{
    const char *e = getenv("ANN_REPS");
    int r = e ? atoi(e) : 7;
    return r > 0 ? r : 1;
}

static inline int ann_reuse(const char *idx_path)
{
    const char *e = getenv("ANN_REUSE");
    struct stat st;
    return e && strcmp(e, "1") == 0 && stat(idx_path, &st) == 0;
}

static inline void ann_normalize(float *v, size_t n, int d)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < d; j++)
            s += (double)v[i * d + j] * v[i * d + j];
        float inv = s > 0 ? (float)(1 / sqrt(s)) : 0;
        for (int j = 0; j < d; j++)
            v[i * d + j] *= inv;
    }
}

static inline long long ann_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* |found[0..10) & gt[0..10)| summed */
static inline int ann_hits(const int64_t *found, size_t nfound, const int32_t *gt)
{
    int h = 0;
    for (size_t i = 0; i < nfound && i < 10; i++)
        for (int j = 0; j < 10; j++)
            h += found[i] == gt[j];
    return h;
}

#endif
