/* ann-bench.c - libech's HNSW on an ANN data set, in bench/ann.sh's format
 * (see ann-common.h).  Also makes the synthetic set:
 *     ann-bench --synth DIR N DIM NQ SEED   (uniform [0,1), L2 ground truth)
 */
#include "config.h"

#include "ann-common.h"
#include "ech.h"

static uint64_t rng;
static float urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0));
}

static void write_vecs(const char *path, const void *v, size_t n, int d)
{
    FILE *f = fopen(path, "wb");
    for (size_t i = 0; f && i < n; i++) {
        int32_t dim = d;
        fwrite(&dim, 4, 1, f);
        fwrite((const char *)v + i * (size_t)d * 4, 4, (size_t)d, f);
    }
    if (!f || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static int synth(const char *dir, size_t n, int d, size_t nq, uint64_t seed)
{
    rng = seed | 1;
    float *base = malloc(n * d * 4), *q = malloc(nq * d * 4);
    for (size_t i = 0; i < n * d; i++)
        base[i] = urand();
    for (size_t i = 0; i < nq * d; i++)
        q[i] = urand();
    int32_t *gt = malloc(nq * 10 * 4);
#pragma omp parallel for schedule(dynamic)
    for (size_t i = 0; i < nq; i++) {
        double best[10];
        int32_t id[10];
        int got = 0;
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (int t = 0; t < d; t++) {
                double x = (double)q[i * d + t] - base[j * d + t];
                s += x * x;
            }
            if (got == 10 && s >= best[9])
                continue;
            int k = got < 10 ? got++ : 9;
            while (k > 0 && best[k - 1] > s) {
                best[k] = best[k - 1];
                id[k] = id[k - 1];
                k--;
            }
            best[k] = s;
            id[k] = (int32_t)j;
        }
        memcpy(gt + i * 10, id, sizeof id);
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/base.fvecs", dir);
    write_vecs(p, base, n, d);
    snprintf(p, sizeof p, "%s/query.fvecs", dir);
    write_vecs(p, q, nq, d);
    snprintf(p, sizeof p, "%s/gt_l2.ivecs", dir);
    write_vecs(p, gt, nq, 10);
    free(base), free(q), free(gt);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "--synth") == 0)
        return synth(argv[2], strtoull(argv[3], NULL, 10), atoi(argv[4]), strtoull(argv[5], NULL, 10),
                     strtoull(argv[6], NULL, 10));
    if (argc != 9) {
        fprintf(stderr, "usage: ann-bench BASE QUERY GT METRIC M EFC THREADS OUT.idx\n");
        return 2;
    }
    int d, dq, kgt;
    size_t n, nq, ngt;
    float *base = ann_load(argv[1], &d, &n), *qs = ann_load(argv[2], &dq, &nq);
    int32_t *gt = ann_load(argv[3], &kgt, &ngt);
    ech_index_params p;
    ech_index_params_default(&p);
    p.metric = (ech_metric)ech_metric_parse(argv[4]);
    p.dim = (uint32_t)d;
    p.M = (uint32_t)atoi(argv[5]);
    p.ef_construction = (uint32_t)atoi(argv[6]);
    int threads = atoi(argv[7]);
    ech_index *idx;
    ech_error err;
    double t0 = ann_now(), c0 = ann_proc_cpu();
    if (ann_reuse(argv[8])) {
        printf("build_s -1 cpu_s -1\n");
    } else {
        ech_index_item *items = malloc(n * sizeof *items);
        for (size_t i = 0; i < n; i++)
            items[i] = (ech_index_item){.key = {.kind = ECH_KEY_U64, .num = i}, .vec = base + i * d};
        if (ech_index_new(&p, &idx, &err) || ech_index_add(idx, items, n, threads, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        printf("build_s %.3f cpu_s %.3f\n", ann_now() - t0, ann_proc_cpu() - c0);
        if (ech_index_save(idx, argv[8], &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        ech_index_free(idx);
        free(items);
    }
    printf("size_bytes %lld\n", ann_file_size(argv[8]));
    t0 = ann_now();
    if (ech_index_open(argv[8], &idx, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("load_s %.4f\n", ann_now() - t0);
    ech_index_searcher *s;
    ech_index_searcher_new(idx, &s, &err);
    ech_index_hit hits[10];
    for (int e = 0; e < ANN_N_EF; e++) {
        double best = 1e30;
        long hit = 0;
        for (int rep = 0, reps = ann_reps(); rep < reps; rep++) {
            hit = 0;
            t0 = ann_cpu();
            for (size_t q = 0; q < nq; q++) {
                size_t nh;
                ech_index_search(s, qs + q * d, 10, (uint32_t)ann_efs[e], NULL, NULL, hits, &nh, &err);
                int64_t found[10];
                for (size_t i = 0; i < nh; i++)
                    found[i] = hits[i].elem;  /* key == element here */
                hit += ann_hits(found, nh, gt + q * kgt);
            }
            double t = ann_cpu() - t0;
            if (t < best)
                best = t;
        }
        printf("ef %d recall %.4f qps %.0f\n", ann_efs[e], (double)hit / (nq * 10.0), nq / best);
    }
    ech_index_searcher_free(s);
    ech_index_free(idx);
    free(base), free(qs), free(gt);
    (void)dq, (void)ngt;
    return 0;
}
