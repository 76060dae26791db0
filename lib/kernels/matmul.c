/* matmul.c - y = W x for weights in their file format.
 *
 * Activations are converted once per call to the weight type's dot type
 * (and, for some SIMD kernels, rewritten into the kernel's own layout) in
 * the caller's scratch.  Decode (one token) splits the rows into one
 * contiguous range per thread and runs the gemv kernel over it, row after
 * row, so each thread reads one linear stream of weights: that is what the
 * hardware prefetcher follows at full bandwidth.  Prompt processing takes blocks of rows small enough to stay
 * in cache and runs every token through them before moving on, so weights
 * are read from memory once per call rather than once per token.
 *
 * Every output element is computed by the same sequence of operations
 * whatever the thread count or tiling, so results do not depend on either.
 */
#include "config.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/dispatch.h"

#define ALIGN 64
#define ROWS_PER_BLOCK 16   /* prompt processing: rows kept hot while all tokens pass */

static size_t align_up(size_t n)
{
    return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

static size_t row_bytes(ech_type t, int64_t n)
{
    uint64_t b = 0;
    if (ech_type_nbytes(t, (uint64_t)n, &b) != ECH_OK)
        return 0;
    return (size_t)b;
}

/* Scratch for one ISA level: [dot rows][packed rows]. */
static size_t scratch_at(const ech_type_kernels *k, const ech_kset *g, int64_t cols, int64_t n_tok)
{
    size_t s = 0;
    if (k->dot_type != ECH_TYPE_F32)
        s += align_up(row_bytes(k->dot_type, cols) * (size_t)n_tok);
    size_t p = 0;
    if (g && g->pack)
        p = align_up(g->pack_size(cols)) * (size_t)n_tok;
    if (g && g->gemv_pack && align_up(g->gemv_pack_size(cols)) > p)
        p = align_up(g->gemv_pack_size(cols));
    return s + p + ALIGN;   /* room to align the caller's pointer */
}

size_t ech_matmul_scratch(ech_type wt, int64_t cols, int64_t n_tok)
{
    /* the largest need over all levels, so a later ech_kernels_use() cannot
     * make a scratch buffer too small */
    size_t need = 0;
    for (int l = ECH_ISA_SCALAR; l <= ECH_ISA_AVX512; l++) {
        const ech_type_kernels *k = ech_kernels_at((ech_isa)l, wt);
        if (k && k->vec_dot) {
            size_t s = scratch_at(k, ech_kset_at((ech_isa)l, wt), cols, n_tok);
            if (s > need)
                need = s;
        }
    }
    return need;
}

typedef struct mm_ctx {
    const uint8_t *W;
    size_t wrow;
    int64_t rows, cols, n_tok;
    const float *x;
    float *y;
    const ech_type_kernels *k;
    const ech_kset *g;
    int gemv;              /* decode through g->gemv */
    void (*pack)(const void *dot_row, void *out, int64_t n);
    const uint8_t *act;    /* what the kernels read: dot rows, packed rows or x */
    size_t arow;
    uint8_t *dot;          /* dot rows in scratch (NULL for F32) */
    size_t drow;
    uint8_t *packed;
    size_t prow;
} mm_ctx;

/* rows [r0, r1) x tokens [t0, t1) */
static void tile(const mm_ctx *c, int64_t r0, int64_t r1, int64_t t0, int64_t t1)
{
    const ech_kset *g = c->g;
    if (g && g->gemm) {
        for (int64_t t = t0; t < t1; t += g->nt) {
            int nt = (int)(t1 - t < g->nt ? t1 - t : g->nt);
            for (int64_t r = r0; r < r1; r += g->mr) {
                int nr = (int)(r1 - r < g->mr ? r1 - r : g->mr);
                g->gemm(c->cols, c->W + (size_t)r * c->wrow, c->wrow, nr, c->act + (size_t)t * c->arow, c->arow,
                        nt, c->y + (size_t)t * (size_t)c->rows + (size_t)r, (size_t)c->rows);
            }
        }
        return;
    }
    for (int64_t t = t0; t < t1; t++)
        for (int64_t r = r0; r < r1; r++)
            c->k->vec_dot(c->cols, &c->y[(size_t)t * (size_t)c->rows + (size_t)r], c->W + (size_t)r * c->wrow,
                          c->act + (size_t)t * c->arow);
}

/* Run by every thread of the team. */
static void mm_team(const mm_ctx *c)
{
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
    for (int64_t t = 0; t < c->n_tok; t++) {
        if (c->dot) {
            const ech_type_kernels *dk = ech_kernels_for(c->k->dot_type);
            dk->from_float(c->x + (size_t)t * (size_t)c->cols, c->dot + (size_t)t * c->drow, c->cols);
        }
        if (c->packed) {
            const void *src = c->dot ? (const void *)(c->dot + (size_t)t * c->drow)
                                     : (const void *)(c->x + (size_t)t * (size_t)c->cols);
            c->pack(src, c->packed + (size_t)t * c->prow, c->cols);
        }
    }
    /* (implicit barrier: the activations are ready) */
    if (c->gemv) {
#ifdef _OPENMP
        const int64_t nth = omp_get_num_threads(), me = omp_get_thread_num();
#else
        const int64_t nth = 1, me = 0;
#endif
        const int64_t r0 = c->rows * me / nth, r1 = c->rows * (me + 1) / nth;
        if (r1 > r0)
            c->g->gemv(c->cols, c->W + (size_t)r0 * c->wrow, c->wrow, r1 - r0, c->act, c->y + r0);
#ifdef _OPENMP
#pragma omp barrier
#endif
    } else if (c->n_tok == 1) {
        /* equal contiguous row ranges per thread, in whole tiles */
        const int64_t step = c->g && c->g->gemm ? c->g->mr : 1;
        const int64_t n_tiles = (c->rows + step - 1) / step;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t i = 0; i < n_tiles; i++) {
            int64_t r0 = i * step, r1 = r0 + step < c->rows ? r0 + step : c->rows;
            tile(c, r0, r1, 0, 1);
        }
    } else {
        const int64_t n_blocks = (c->rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t i = 0; i < n_blocks; i++) {
            int64_t r0 = i * ROWS_PER_BLOCK;
            int64_t r1 = r0 + ROWS_PER_BLOCK < c->rows ? r0 + ROWS_PER_BLOCK : c->rows;
            tile(c, r0, r1, 0, c->n_tok);
        }
    }
}

void ech_matmul(const void *W, ech_type wt, int64_t rows, int64_t cols, const float *x, int64_t n_tok, float *y,
                void *scratch, int n_threads)
{
    const ech_type_kernels *k = ech_kernels_for(wt);
    if (!k || !k->vec_dot || rows <= 0 || cols <= 0 || n_tok <= 0)
        return;
    mm_ctx c = {.W = W, .wrow = row_bytes(wt, cols), .rows = rows, .cols = cols, .n_tok = n_tok, .x = x, .y = y,
                .k = k, .g = ech_kset_for(wt)};
    if (c.g && !c.g->gemm)
        c.g = NULL;
    c.gemv = c.g && c.g->gemv && n_tok == 1;
    if (c.g)
        c.pack = c.gemv ? c.g->gemv_pack : c.g->pack;
    uint8_t *s = (uint8_t *)(((uintptr_t)scratch + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
    if (k->dot_type != ECH_TYPE_F32) {
        c.dot = s;
        c.drow = row_bytes(k->dot_type, cols);
        s += align_up(c.drow * (size_t)n_tok);
        c.act = c.dot;
        c.arow = c.drow;
    } else {
        c.act = (const uint8_t *)x;
        c.arow = (size_t)cols * sizeof(float);
    }
    if (c.pack) {
        c.packed = s;
        c.prow = align_up((c.gemv ? c.g->gemv_pack_size : c.g->pack_size)(cols));
        c.act = c.packed;
        c.arow = c.prow;
    }
#ifdef _OPENMP
    if (omp_in_parallel()) {
        mm_team(&c);
        return;
    }
    if (n_threads <= 0)
        n_threads = omp_get_max_threads();
#pragma omp parallel num_threads(n_threads)
    mm_team(&c);
#else
    (void)n_threads;
    mm_team(&c);
#endif
}
