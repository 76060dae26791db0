/* bench-generate - prompt processing and generation speed, like llama-bench.
 *
 *   bench/bench-generate -m MODEL [-p 512] [-n 128] [-t THREADS] [-r 3] [--kv f16|f32] [-b 1]
 *   bench/bench-generate --bandwidth [-t THREADS]
 *
 * pp: a fresh context decodes P random tokens in one batch; tg: a fresh
 * context decodes N tokens one at a time; with -b B > 1, B fresh contexts
 * decode N tokens each, one token of every context per step in one
 * ech_ctx_decode_batch (ech-serve's decode step with B busy slots), and the
 * rate is all B*N tokens over the time.  Prints one JSON line per test with
 * the mean and standard deviation of tokens/s over the repetitions, and the
 * process's peak RSS at the end.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "ech.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Read bandwidth in GB/s: threads sum a 1 GiB buffer (best of 5). */
static double bandwidth(int threads)
{
    size_t n = (size_t)1 << 27;   /* 1 GiB of uint64 */
    uint64_t *buf = malloc(n * sizeof *buf);
    if (!buf)
        return 0;
#pragma omp parallel for num_threads(threads)
    for (size_t i = 0; i < n; i++)
        buf[i] = i;
    double best = 0;
    volatile uint64_t sink = 0;
    for (int r = 0; r < 5; r++) {
        double s = now();
        uint64_t acc = 0;
#pragma omp parallel for num_threads(threads) reduction(+ : acc)
        for (size_t i = 0; i < n; i += 8)
            acc += buf[i] ^ buf[i + 1] ^ buf[i + 2] ^ buf[i + 3] ^ buf[i + 4] ^ buf[i + 5] ^ buf[i + 6] ^ buf[i + 7];
        double gbs = (double)(n * sizeof *buf) / (now() - s) / 1e9;
        sink += acc;
        if (gbs > best)
            best = gbs;
    }
    (void)sink;
    free(buf);
    return best;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--bandwidth")) {
            int t = 1;
            for (int j = 1; j + 1 < argc; j++)
                if (!strcmp(argv[j], "-t"))
                    t = atoi(argv[j + 1]);
            printf("{\"bandwidth_gb_s\":%.2f,\"threads\":%d}\n", bandwidth(t), t);
            return 0;
        }
    const char *path = NULL;
    int P = 512, N = 128, T = 0, R = 3, B = 1;
    ech_type kv = ECH_TYPE_F16;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) P = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) N = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) R = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kv") && i + 1 < argc) kv = strcmp(argv[++i], "f32") ? ECH_TYPE_F16 : ECH_TYPE_F32;
    }
    if (!path || R < 1 || B < 1 || B > 64) {
        fprintf(stderr, "usage: bench-generate -m MODEL [-p 512] [-n 128] [-t THREADS] [-r 3] [--kv f16|f32] [-b 1]\n");
        return 2;
    }
    ech_model *m;
    ech_error err;
    double t0 = now();
    if (ech_model_open(path, &m, &err) != ECH_OK) {
        fprintf(stderr, "bench-generate: %s\n", err.msg);
        return 1;
    }
    double load = now() - t0;
    int32_t *toks = malloc(sizeof *toks * (size_t)(P > N ? P : N));
    uint32_t seed = 1234;
    for (int i = 0; i < (P > N ? P : N); i++) {
        seed = seed * 1103515245u + 12345u;
        toks[i] = (int32_t)(seed % m->hp.n_vocab);
    }
    ech_ctx_params cp = ech_ctx_default_params();
    cp.n_ctx = (uint32_t)(P > N ? P : N) + 16;
    cp.n_batch = (uint32_t)(P > B ? P : B);
    cp.kv_type = kv;
    cp.n_threads = T;
    const char *tests[2] = {"pp", "tg"};
    int counts[2] = {P, N};
    for (int k = 0; k < 2; k++) {
        if (counts[k] <= 0)
            continue;
        double sum = 0, sum2 = 0;
        /* one warm-up run, as llama-bench does */
        const int nb = k == 1 ? B : 1;   /* contexts decoding side by side */
        for (int r = -1; r < R; r++) {
            ech_ctx *c[64];
            for (int j = 0; j < nb; j++)
                if (ech_ctx_new(m, &cp, &c[j], &err) != ECH_OK) {
                    fprintf(stderr, "bench-generate: %s\n", err.msg);
                    return 1;
                }
            double s = now();
            ech_status st = ECH_OK;
            if (k == 0) {
                st = ech_ctx_decode(c[0], toks, (uint32_t)P, &err);
            } else if (nb == 1) {
                for (int i = 0; i < N && !st; i++)
                    st = ech_ctx_decode(c[0], &toks[i], 1, &err);
            } else {
                const int32_t *tp[64];
                uint32_t one[64];
                for (int i = 0; i < N && !st; i++) {
                    for (int j = 0; j < nb; j++)
                        tp[j] = &toks[(i + j) % N], one[j] = 1;
                    st = ech_ctx_decode_batch(c, tp, one, (size_t)nb, &err);
                }
            }
            if (st != ECH_OK) {
                fprintf(stderr, "bench-generate: %s\n", err.msg);
                return 1;
            }
            double tps = (double)counts[k] * nb / (now() - s);
            if (r >= 0) {
                sum += tps;
                sum2 += tps * tps;
            }
            T = ech_ctx_n_threads(c[0]);
            for (int j = 0; j < nb; j++)
                ech_ctx_free(c[j]);
        }
        double mean = sum / R, sd = R > 1 ? sqrt(fmax(0, (sum2 - R * mean * mean) / (R - 1))) : 0;
        printf("{\"test\":\"%s%d\",\"batch\":%d,\"threads\":%d,\"tokens_per_s\":%.2f,\"stddev\":%.2f,\"load_s\":%.3f,"
               "\"isa\":\"%s\",\"weight_bytes\":%llu}\n",
               tests[k], counts[k], nb, T, mean, sd, load, ech_isa_name(ech_kernels_isa()),
               (unsigned long long)ech_model_weight_bytes(m));
        fflush(stdout);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"peak_rss_kib\":%ld}\n", ru.ru_maxrss);
    free(toks);
    ech_model_close(m);
    return 0;
}
