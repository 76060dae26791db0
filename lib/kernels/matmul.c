/* matmul.c - y = W x for weights in their file format.
 *
 * Activations are converted once per call to the weight type's dot type
 * (and, for some SIMD kernels, rewritten into the kernel's own layout) in
 * the caller's scratch.  Decode (one token) gives each thread one
 * contiguous run of rows and runs the gemv kernel over it, row after row, so
 * each thread reads one linear stream of weights: that is what the hardware
 * prefetcher follows at full bandwidth; a thread done early takes pieces
 * off the back of the others' runs (take_piece).  A batched decode of a few
 * tokens goes the same way with the multi-token kernel.  Prompt processing
 * takes blocks of rows small enough to stay in cache and runs every token
 * through them before moving on, so weights are read from memory once per
 * call rather than once per token.
 *
 * Every output element is computed by the same sequence of operations
 * whatever the thread count or tiling, so results do not depend on either.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/dispatch.h"

#define ALIGN 64
#define ROWS_PER_BLOCK 16   /* prompt processing: rows kept hot while all tokens pass */
#define TOK_BLOCK 64        /* prompt processing with the tile kernels: tokens per pass */
#define LANES_MIN 8         /* tokens from which the lanes kernels beat the tiles
                               (types with a multi-token gemv use it up to ECH_GEMVN_MAX) */

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
    if (g && g->lanes.gemm)
        s += align_up(g->lanes.tile_size(cols)) * (size_t)((n_tok + g->lanes.lanes - 1) / g->lanes.lanes);
    size_t p = 0;
    if (g && g->pack)
        p = align_up(g->pack_size(cols)) * (size_t)n_tok;
    const int64_t nv = n_tok < ECH_GEMVN_MAX ? n_tok : ECH_GEMVN_MAX;
    if (g && g->gemv_pack && align_up(g->gemv_pack_size(cols)) * (size_t)nv > p)
        p = align_up(g->gemv_pack_size(cols)) * (size_t)nv;
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
    const ech_lanes *lanes; /* prompt through the lanes kernels */
    uint8_t *tiles;
    size_t tsize;
    _Atomic uint64_t *own; /* decode by a team: each thread's pieces still to
                              do, first << 32 | end (see take_piece); NULL:
                              a static split */
    int64_t n_own, per;    /* threads with pieces; rows per piece */
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

static void team_barrier(int team)
{
#ifdef _OPENMP
    if (team) {
#pragma omp barrier
    }
#else
    (void)team;
#endif
}

/* Interleave the tokens into tiles, then per block of rows: prepare the rows
 * once and run every tile through them.  A thread that cannot get its
 * buffer for prepared rows does its blocks with the tile kernels instead. */
static void lanes_work(const mm_ctx *c, int64_t me, int64_t nth, int team)
{
    const ech_lanes *l = c->lanes;
    const int64_t n_tiles = (c->n_tok + l->lanes - 1) / l->lanes;
    for (int64_t i = n_tiles * me / nth; i < n_tiles * (me + 1) / nth; i++) {
        const int64_t t0 = i * l->lanes;
        const int nt = (int)(c->n_tok - t0 < l->lanes ? c->n_tok - t0 : l->lanes);
        l->tile(c->dot + (size_t)t0 * c->drow, c->drow, nt, c->tiles + (size_t)i * c->tsize, c->cols);
    }
    team_barrier(team);
    const size_t psize = l->prep_size(c->cols);
    void *prep = malloc(psize * ROWS_PER_BLOCK);
    const int64_t n_blocks = (c->rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK;
    const int64_t b1 = n_blocks * (me + 1) / nth;
    for (int64_t b = n_blocks * me / nth; b < b1; b++) {
        const int64_t r0 = b * ROWS_PER_BLOCK, nr = c->rows - r0 < ROWS_PER_BLOCK ? c->rows - r0 : ROWS_PER_BLOCK;
        if (!prep) {
            tile(c, r0, r0 + nr, 0, c->n_tok);
            continue;
        }
        for (int64_t r = 0; r < nr; r++)
            l->prep(c->W + (size_t)(r0 + r) * c->wrow, (uint8_t *)prep + (size_t)r * psize, c->cols);
        /* The next block's weights come from memory in short bursts that
         * the hardware prefetcher does not see coming, and prep then waits
         * on them: fetch them a slice per tile while the tiles compute. */
        const uint8_t *next = c->W + (size_t)(r0 + nr) * c->wrow;
        const size_t next_bytes = b + 1 < b1 ? (size_t)(c->rows - r0 - nr < ROWS_PER_BLOCK ? c->rows - r0 - nr
                                                                                           : ROWS_PER_BLOCK) * c->wrow
                                             : 0;
        const size_t slice = (next_bytes / (size_t)n_tiles + 63) & ~(size_t)63;
        for (int64_t i = 0; i < n_tiles; i++) {
            const int64_t t0 = i * l->lanes;
            const int nt = (int)(c->n_tok - t0 < l->lanes ? c->n_tok - t0 : l->lanes);
            for (size_t o = (size_t)i * slice; o < (size_t)(i + 1) * slice && o < next_bytes; o += 64)
                __builtin_prefetch(next + o, 0, 2);
            l->gemm(c->cols, prep, psize, (int)nr, c->tiles + (size_t)i * c->tsize, nt,
                    c->y + (size_t)t0 * (size_t)c->rows + (size_t)r0, (size_t)c->rows);
        }
    }
    free(prep);
}

/* Activations of tokens [t0, t1) into the kernels' formats. */
static void mm_convert(const mm_ctx *c, int64_t t0, int64_t t1)
{
    for (int64_t t = t0; t < t1; t++) {
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
}

/* Decode rows [r0, r1). */
static void gemv_rows(const mm_ctx *c, int64_t r0, int64_t r1)
{
    if (r1 <= r0)
        return;
    if (c->n_tok == 1)
        c->g->gemv(c->cols, c->W + (size_t)r0 * c->wrow, c->wrow, r1 - r0, c->act, c->y + r0);
    else
        c->g->gemv_n(c->cols, c->W + (size_t)r0 * c->wrow, c->wrow, r1 - r0, c->act, c->arow, (int)c->n_tok,
                     c->y + r0, (size_t)c->rows);
}

/* Decode by a team: each thread owns an equal run of pieces (a few rows)
 * and does them front to back, one linear stream as the prefetcher likes;
 * once its own run is done it takes pieces off the back of the others', so
 * a thread held up (another process on its core) leaves its share to the
 * others instead of making them wait at the end.  One token with one fixed
 * half each: the threads of a step spent 14.6 % of their time waiting in
 * libgomp; with pieces 7.1 % (perf, TinyLlama Q4_K_M, 2 threads), decode
 * 50.9 against 47.5 tok/s (6 interleaved rounds).  A batched decode had
 * chunks of 1/8 of a thread's share handed out in turn: pieces gave 136.8
 * against 129.1 tok/s at 4 sequences, 154.2 against 144.5 at 8 (TinyLlama
 * Q4_0, 2 threads, 3-5 rounds).  A piece is taken with one compare-and-swap
 * on its owner's word. */
static int64_t take_piece(_Atomic uint64_t *w, int back)
{
    uint64_t v = atomic_load_explicit(w, memory_order_relaxed);
    for (;;) {
        const uint32_t first = (uint32_t)(v >> 32), end = (uint32_t)v;
        if (first >= end)
            return -1;
        const uint64_t nv = back ? (v & ~(uint64_t)0xFFFFFFFFu) | (end - 1) : v + ((uint64_t)1 << 32);
        if (atomic_compare_exchange_weak_explicit(w, &v, nv, memory_order_relaxed, memory_order_relaxed))
            return back ? (int64_t)end - 1 : (int64_t)first;
    }
}

#define PIECES_PER_THREAD 16
#define PIECE_MIN_BYTES 32768  /* of weights: smaller pieces cost more than they balance */
#define OWN_MAX 64             /* threads that can share pieces; a bigger team splits statically */

/* Sets up the pieces of n_own threads in own[0..n_own). */
static void share_pieces(mm_ctx *c, _Atomic uint64_t *own, int64_t n_own)
{
    int64_t per = (c->rows + n_own * PIECES_PER_THREAD - 1) / (n_own * PIECES_PER_THREAD);
    const int64_t min_rows = (int64_t)((PIECE_MIN_BYTES + c->wrow - 1) / c->wrow);
    if (per < min_rows)
        per = min_rows;
    const int64_t n_pieces = (c->rows + per - 1) / per;
    c->per = per;
    c->own = own;
    c->n_own = n_own;
    for (int64_t t = 0; t < n_own; t++)
        atomic_init(&own[t], ((uint64_t)(n_pieces * t / n_own) << 32) | (uint64_t)(n_pieces * (t + 1) / n_own));
}

static void gemv_piece(const mm_ctx *c, int64_t i)
{
    const int64_t r0 = i * c->per, r1 = r0 + c->per < c->rows ? r0 + c->per : c->rows;
    gemv_rows(c, r0, r1);
}

static void gemv_shared(const mm_ctx *c, int64_t me)
{
    for (int64_t i; me < c->n_own && (i = take_piece(&c->own[me], 0)) >= 0;)
        gemv_piece(c, i);
    for (int64_t k = 1; k <= c->n_own; k++) {
        const int64_t v = (me + k) % c->n_own;
        for (int64_t i; (i = take_piece(&c->own[v], 1)) >= 0;)
            gemv_piece(c, i);
    }
}

/* Thread `me` of `nth`'s share of the products, the activations ready. */
static void mm_compute(const mm_ctx *c, int64_t me, int64_t nth, int team)
{
    if (c->lanes) {
        lanes_work(c, me, nth, team);
    } else if (c->gemv) {
        if (c->own)
            gemv_shared(c, me);
        else
            gemv_rows(c, c->rows * me / nth, c->rows * (me + 1) / nth);
    } else {
        /* decode: tiles of the gemm's height; prompt: blocks of rows kept hot
         * while every token passes */
        const int64_t step = c->n_tok > 1 ? ROWS_PER_BLOCK : c->g && c->g->gemm ? c->g->mr : 1;
        const int64_t n_tiles = (c->rows + step - 1) / step;
        /* tokens in chunks whose activations stay in L2 while the row blocks pass */
        const int64_t tb = TOK_BLOCK;
        for (int64_t t0 = 0; t0 < c->n_tok; t0 += tb) {
            const int64_t t1 = c->n_tok - t0 < tb ? c->n_tok : t0 + tb;
            for (int64_t i = n_tiles * me / nth; i < n_tiles * (me + 1) / nth; i++) {
                int64_t r0 = i * step, r1 = r0 + step < c->rows ? r0 + step : c->rows;
                tile(c, r0, r1, t0, t1);
            }
        }
    }
}

/* Thread `me` of `nth`: the same static split as an OpenMP worksharing
 * loop.  `team`: the nth threads of the enclosing team all run this and
 * meet at barriers (`end`: also once the products are done); otherwise it
 * is one thread doing all the work. */
static void mm_work(const mm_ctx *c, int64_t me, int64_t nth, int team, int end)
{
    mm_convert(c, c->n_tok * me / nth, c->n_tok * (me + 1) / nth);
    team_barrier(team); /* the activations are ready */
    mm_compute(c, me, nth, team);
    if (end)
        team_barrier(team);
}

/* Sets up *c; 0 if there is nothing to do. */
static int mm_setup(mm_ctx *c_, const void *W, ech_type wt, int64_t rows, int64_t cols, size_t row_stride,
                    const float *x, int64_t n_tok, float *y, void *scratch)
{
    const ech_type_kernels *k = ech_kernels_for(wt);
    if (!k || !k->vec_dot || rows <= 0 || cols <= 0 || n_tok <= 0)
        return 0;
    mm_ctx c = {.W = W, .wrow = row_stride, .rows = rows, .cols = cols, .n_tok = n_tok, .x = x, .y = y,
                .k = k, .g = ech_kset_for(wt)};
    if (c.g && !c.g->gemm)
        c.g = NULL;
    /* one token, or a few with a multi-token gemv: the decode kernels */
    c.gemv = c.g && c.g->gemv && (n_tok == 1 || (c.g->gemv_n && n_tok <= ECH_GEMVN_MAX));
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
    if (!c.gemv && c.g && c.g->lanes.gemm && n_tok >= LANES_MIN && c.dot) {
        c.lanes = &c.g->lanes;
        c.tiles = s;
        c.tsize = align_up(c.lanes->tile_size(cols));
        s += c.tsize * (size_t)((n_tok + c.lanes->lanes - 1) / c.lanes->lanes);
    }
    if (c.pack) {
        c.packed = s;
        c.prow = align_up((c.gemv ? c.g->gemv_pack_size : c.g->pack_size)(cols));
        c.act = c.packed;
        c.arow = c.prow;
    }
    *c_ = c;
    return 1;
}

#ifdef _OPENMP
/* Decode products c[0..n_mat) that share their activations (converted once,
 * from c[0]) in one start of an n_threads team; a thread done with its share
 * of one matrix goes on to the next, and meets the others only at the end. */
static void decode_team(mm_ctx *c, int n_mat, int n_threads)
{
    mm_convert(&c[0], 0, c[0].n_tok);
    _Atomic uint64_t own[ECH_MATMUL_MANY][OWN_MAX];
    for (int i = 0; i < n_mat && n_threads <= OWN_MAX; i++)
        share_pieces(&c[i], own[i], n_threads);
#pragma omp parallel num_threads(n_threads)
    for (int i = 0; i < n_mat; i++)
        mm_compute(&c[i], omp_get_thread_num(), omp_get_num_threads(), 1);
}
#endif

void ech_matmul(const void *W, ech_type wt, int64_t rows, int64_t cols, const float *x, int64_t n_tok, float *y,
                void *scratch, int n_threads)
{
    mm_ctx c;
    if (!mm_setup(&c, W, wt, rows, cols, row_bytes(wt, cols), x, n_tok, y, scratch))
        return;
#ifdef _OPENMP
    if (omp_in_parallel()) {
        mm_work(&c, omp_get_thread_num(), omp_get_num_threads(), 1, 1);
        return;
    }
    if (n_threads <= 0)
        n_threads = omp_get_max_threads();
    if (n_threads == 1) {
        mm_work(&c, 0, 1, 0, 0);
        return;
    }
    /* The team's meetings are what a decode step waits on when the machine
     * is busy (a thread descheduled holds up the other at each one), so
     * there are as few as the work allows: the end of the region only, for
     * decode, whose few tokens are converted before the team starts. */
    if (c.gemv) {
        decode_team(&c, 1, n_threads);
        return;
    }
#pragma omp parallel num_threads(n_threads)
    mm_work(&c, omp_get_thread_num(), omp_get_num_threads(), 1, 0);
#else
    (void)n_threads;
    mm_work(&c, 0, 1, 0, 0);
#endif
}

void ech_matmul_many(int n_mat, const void *const *W, ech_type wt, const int64_t *rows, int64_t cols,
                     const float *x, int64_t n_tok, float *const *y, void *scratch, int n_threads)
{
    mm_ctx c[ECH_MATMUL_MANY];
    int together = n_mat > 1 && n_mat <= ECH_MATMUL_MANY;
#ifdef _OPENMP
    if (n_threads <= 0)
        n_threads = omp_get_max_threads();
    together = together && n_threads > 1 && !omp_in_parallel();
#else
    together = 0;
#endif
    /* the same type, width and scratch lay the activations out alike, so
     * the first context's conversion serves them all */
    for (int i = 0; together && i < n_mat; i++)
        together = mm_setup(&c[i], W[i], wt, rows[i], cols, row_bytes(wt, cols), x, n_tok, y[i], scratch) &&
                   c[i].gemv;
    if (!together) {
        for (int i = 0; i < n_mat; i++)
            ech_matmul(W[i], wt, rows[i], cols, x, n_tok, y[i], scratch, n_threads);
        return;
    }
#ifdef _OPENMP
    decode_team(c, n_mat, n_threads);
#endif
}

void ech_matmul_local(const void *W, ech_type wt, int64_t rows, int64_t cols, size_t row_stride, const float *x,
                      int64_t n_tok, float *y, void *scratch)
{
    mm_ctx c;
    if (mm_setup(&c, W, wt, rows, cols, row_stride, x, n_tok, y, scratch))
        mm_work(&c, 0, 1, 0, 0);
}
