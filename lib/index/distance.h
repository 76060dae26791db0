/* distance.h - distance kernels for vector search (float32 vectors).
 *
 * Two kernels cover the three metrics: the squared Euclidean distance (l2),
 * and 1 - dot(a, b) (inner product; cosine is the inner product of vectors
 * normalised to unit length when they enter the index or a query).  Smaller
 * is nearer for both.  Scalar, AVX2+FMA and AVX-512 versions are picked at
 * run time at the level ech_kernels_isa() reports (ech_kernels_use() forces a
 * level for tests); the AVX-512 version handles any length with masked loads.
 */
#ifndef ECH_INDEX_DISTANCE_H
#define ECH_INDEX_DISTANCE_H

#include <stddef.h>

#include "kernels/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ech_metric {
    ECH_METRIC_COSINE = 0,  /* 1 - cos(a, b) on normalised vectors */
    ECH_METRIC_L2 = 1,      /* squared Euclidean distance */
    ECH_METRIC_IP = 2,      /* 1 - dot(a, b) */
} ech_metric;

/* "cosine", "l2", "ip"; NULL for an unknown value. */
const char *ech_metric_name(ech_metric m);
/* Parse a metric name ("cosine"/"cos", "l2", "ip"/"dot"); -1 if unknown. */
int ech_metric_parse(const char *s);

/* dist(a, b) over n floats. */
typedef float (*ech_dist_fn)(const float *a, const float *b, size_t n);

/* The kernel for `m` at ISA level `isa` (capped at what this CPU runs). */
ech_dist_fn ech_dist_at(ech_metric m, ech_isa isa);
/* The kernel for `m` at the current level. */
ech_dist_fn ech_dist_for(ech_metric m);

/* Scale v to unit length in place; a zero vector stays zero. */
void ech_vec_normalize(float *v, size_t n);

/* The similarity a tool reports for a distance: cos(a, b) for cosine,
 * dot(a, b) for ip, and the squared distance itself for l2. */
float ech_dist_to_score(ech_metric m, float dist);

#ifdef __cplusplus
}
#endif
#endif
