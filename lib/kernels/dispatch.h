/* dispatch.h - per-ISA kernel sets, as matmul sees them (internal).
 *
 * Beyond the public ech_type_kernels, a weight type may have a matrix kernel
 * ("gemm") that computes a tile of up to `mr` rows x `nt` tokens at once, so
 * that one activation block is loaded once for several rows (decode) and one
 * weight block is unpacked once for several tokens (prompt processing).  A
 * gemm may want activations in its own layout: `pack` rewrites one row of
 * dot-type blocks into it (`pack_size` bytes per row).
 */
#ifndef ECH_KERNELS_DISPATCH_H
#define ECH_KERNELS_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

/* y[t * ys + r] = dot(row r of w, activation row t) for r < nr, t < nt.
 * Rows of w are `ws` bytes apart, activation rows `as` bytes apart. */
typedef void (*ech_gemm_fn)(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nt,
                            float *y, size_t ys);

/* y[r] = dot(row r of w, a) for r < nr: the matrix-vector product of
 * decode, which reads the rows once, in address order. */
typedef void (*ech_gemv_fn)(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, float *y);

/* Prompt kernels with tokens in the vector lanes (avx512_lanes.c): weight
 * rows are "prepared" (unpacked, prep_size bytes per row) a few at a time,
 * the dot-type rows of `lanes` tokens are interleaved into a tile
 * (tile_size bytes), and gemm computes y[t * ys + r] for r < nr, t < nt. */
typedef struct ech_lanes {
    int lanes;
    size_t (*prep_size)(int64_t n);
    void (*prep)(const void *w_row, void *out, int64_t n);
    size_t (*tile_size)(int64_t n);
    void (*tile)(const void *dot_rows, size_t row_bytes, int nt, void *out, int64_t n);
    void (*gemm)(int64_t n, const void *prep, size_t prep_stride, int nr, const void *tile, int nt, float *y,
                 size_t ys);
} ech_lanes;

/* The same for nt <= ECH_GEMVN_MAX tokens at once (a decode step of a few sequences):
 * y[t * ys + r]; token t's activation row (gemv_pack layout) at a + t * as. */
typedef void (*ech_gemvn_fn)(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, size_t as, int nt,
                             float *y, size_t ys);
#define ECH_GEMVN_MAX 8

typedef struct ech_kset {
    ech_gemm_fn gemm;                    /* NULL: matmul loops over vec_dot */
    int mr, nt;                          /* largest tile gemm accepts */
    size_t (*pack_size)(int64_t n);      /* NULL: gemm reads dot-type rows */
    void (*pack)(const void *dot_row, void *out, int64_t n);
    ech_gemv_fn gemv;                    /* NULL: decode uses gemm tiles */
    size_t (*gemv_pack_size)(int64_t n); /* NULL: gemv reads dot-type rows */
    void (*gemv_pack)(const void *dot_row, void *out, int64_t n);
    ech_gemvn_fn gemv_n;                 /* NULL: a few tokens take the gemm */
    ech_lanes lanes;                     /* gemm NULL: none */
} ech_kset;

/* The matrix kernels of type `t` at the current ISA level (never NULL for a
 * type ech_kernels_for supports; gemm may be NULL). */
const ech_kset *ech_kset_for(ech_type t);
/* The same at a given level (no CPU check: for sizing scratch). */
const ech_kset *ech_kset_at(ech_isa isa, ech_type t);
const ech_type_kernels *ech_kernels_at(ech_isa isa, ech_type t);

/* Per-ISA tables, filled in avx2.c and avx512.c (all-NULL entries where an
 * ISA has nothing better than the level below it). */
void ech_avx2_fill(ech_type_kernels *k, ech_kset *g);
void ech_avx512_fill(ech_type_kernels *k, ech_kset *g);
void ech_avx512_lanes_fill(ech_kset *g);

#endif
