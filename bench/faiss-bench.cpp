// faiss-bench.cpp - FAISS IndexHNSWFlat (Debian libfaiss-dev) on an ANN data
// set, in bench/ann.sh's format (see ann-common.h).  Built by
// `make bench/faiss-bench`.
#include <omp.h>

#include <faiss/IndexHNSW.h>
#include <faiss/index_io.h>

#include "ann-common.h"

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: faiss-bench BASE QUERY GT METRIC M EFC THREADS OUT.idx\n");
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
    omp_set_num_threads(threads);
    double t0 = ann_now(), c0 = ann_proc_cpu();
    if (ann_reuse(argv[8])) {
        printf("build_s -1 cpu_s -1\n");
    } else {
        faiss::IndexHNSWFlat index(d, M, l2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT);
        index.hnsw.efConstruction = efc;
        index.add((faiss::Index::idx_t)n, base);
        printf("build_s %.3f cpu_s %.3f\n", ann_now() - t0, ann_proc_cpu() - c0);
        faiss::write_index(&index, argv[8]);
    }
    printf("size_bytes %lld\n", ann_file_size(argv[8]));
    t0 = ann_now();
    faiss::Index *loaded = faiss::read_index(argv[8]);
    printf("load_s %.4f\n", ann_now() - t0);
    faiss::IndexHNSWFlat *index = dynamic_cast<faiss::IndexHNSWFlat *>(loaded);
    omp_set_num_threads(1);
    for (int e = 0; e < ANN_N_EF; e++) {
        faiss::SearchParametersHNSW sp;
        sp.efSearch = ann_efs[e];
        index->hnsw.efSearch = ann_efs[e];  // FAISS 1.7.3 ignores the per-call parameter here
        double best = 1e30;
        long hit = 0;
        for (int rep = 0, reps = ann_reps(); rep < reps; rep++) {
            hit = 0;
            t0 = ann_cpu();
            for (size_t q = 0; q < nq; q++) {
                float dist[10];
                faiss::Index::idx_t lab[10];
                index->search(1, qs + q * d, 10, dist, lab, &sp);
                int64_t found[10];
                for (int i = 0; i < 10; i++)
                    found[i] = lab[i];
                hit += ann_hits(found, 10, gt + q * kgt);
            }
            double t = ann_cpu() - t0;
            if (t < best)
                best = t;
        }
        printf("ef %d recall %.4f qps %.0f\n", ann_efs[e], (double)hit / (nq * 10.0), nq / best);
    }
    delete loaded;
    free(base), free(qs), free(gt);
    (void)dq, (void)ngt;
    return 0;
}
