// hnswlib-bench.cpp - Debian's hnswlib (libhnswlib-dev, header-only) on an ANN
// data set, in bench/ann.sh's format (see ann-common.h).  Built by
// `make bench/hnswlib-bench` with -O3 -march=native, as libech is.
#include <omp.h>

#include <hnswlib/hnswlib.h>

#include "ann-common.h"

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: hnswlib-bench BASE QUERY GT METRIC M EFC THREADS OUT.idx\n");
        return 2;
    }
    int d, dq, kgt;
    size_t n, nq, ngt;
    float *base = (float *)ann_load(argv[1], &d, &n), *qs = (float *)ann_load(argv[2], &dq, &nq);
    int32_t *gt = (int32_t *)ann_load(argv[3], &kgt, &ngt);
    bool l2 = strcmp(argv[4], "l2") == 0;
    if (strcmp(argv[4], "cosine") == 0) {
        ann_normalize(base, n, d);
        ann_normalize(qs, nq, d);
    }
    int M = atoi(argv[5]), efc = atoi(argv[6]), threads = atoi(argv[7]);
    hnswlib::L2Space l2s(d);
    hnswlib::InnerProductSpace ips(d);
    hnswlib::SpaceInterface<float> *space = l2 ? (hnswlib::SpaceInterface<float> *)&l2s : &ips;
    double t0 = ann_now(), c0 = ann_proc_cpu();
    if (ann_reuse(argv[8])) {
        printf("build_s -1 cpu_s -1\n");
    } else {
        hnswlib::HierarchicalNSW<float> index(space, n, M, efc, 100);
        // hnswlib's own ParallelFor in python_bindings: one point first, then the rest
        index.addPoint(base, 0);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 16)
        for (size_t i = 1; i < n; i++)
            index.addPoint(base + i * d, i);
        printf("build_s %.3f cpu_s %.3f\n", ann_now() - t0, ann_proc_cpu() - c0);
        index.saveIndex(argv[8]);
    }
    printf("size_bytes %lld\n", ann_file_size(argv[8]));
    t0 = ann_now();
    hnswlib::HierarchicalNSW<float> index(space, argv[8]);
    printf("load_s %.4f\n", ann_now() - t0);
    for (int e = 0; e < ANN_N_EF; e++) {
        index.setEf(ann_efs[e]);
        double best = 1e30;
        long hit = 0;
        for (int rep = 0, reps = ann_reps(); rep < reps; rep++) {
            hit = 0;
            t0 = ann_cpu();
            for (size_t q = 0; q < nq; q++) {
                auto res = index.searchKnn(qs + q * d, 10);
                int64_t found[10];
                size_t nf = 0;
                while (!res.empty()) {  // farthest first
                    found[9 - nf] = (int64_t)res.top().second;
                    res.pop();
                    nf++;
                }
                hit += ann_hits(found + (10 - nf), nf, gt + q * kgt);
            }
            double t = ann_cpu() - t0;
            if (t < best)
                best = t;
        }
        printf("ef %d recall %.4f qps %.0f\n", ann_efs[e], (double)hit / (nq * 10.0), nq / best);
    }
    free(base), free(qs), free(gt);
    (void)dq, (void)ngt;
    return 0;
}
