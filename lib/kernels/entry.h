/* entry.h - the gemm and gemv entry points of a SIMD kernel file (internal).
 *
 * avx2.c and avx512.c write their kernels as tile functions of up to MR rows
 * x NT tokens, with MR and NT compile-time constants once inlined; these
 * macros turn a tile into the two entry points dispatch.h describes.  TARGET
 * is the file's target attribute, CALL(mr, nt) runs one tile into
 * `out[MR][4]` from the row pointers `wr` and activation pointers `at`.
 * The including file defines MR (4) and UNROLL.
 */
#ifndef ECH_KERNELS_ENTRY_H
#define ECH_KERNELS_ENTRY_H

/* Tiles narrower than MR rows or 4 tokens repeat row or token 0 and drop
 * the extra results. */
#define ECH_GEMM_ENTRY(TARGET, name, CALL)                                                                  \
    TARGET static void name(int64_t n, const void *w, size_t ws, int nr, const void *a, size_t as, int nt,  \
                            float *y, size_t ys)                                                            \
    {                                                                                                       \
        const uint8_t *wr[MR], *at[4];                                                                      \
        UNROLL for (int r = 0; r < MR; r++)                                                                 \
            wr[r] = (const uint8_t *)w + (r < nr ? (size_t)r * ws : 0);                                     \
        for (int t = 0; t < 4; t++)                                                                         \
            at[t] = (const uint8_t *)a + (t < nt ? (size_t)t * as : 0);                                     \
        float out[MR][4];                                                                                   \
        switch (nt) {                                                                                       \
        case 1: CALL(MR, 1); break;                                                                         \
        case 2: CALL(MR, 2); break;                                                                         \
        case 3: CALL(MR, 3); break;                                                                         \
        default: CALL(MR, 4); break;                                                                        \
        }                                                                                                   \
        for (int t = 0; t < nt; t++)                                                                        \
            for (int r = 0; r < nr; r++)                                                                    \
                y[(size_t)t * ys + (size_t)r] = out[r][t];                                                  \
    }

/* Decode: a 1 x 1 tile per row, rows in address order.  A single linear
 * stream is what the hardware prefetcher follows best; several interleaved
 * row streams (the gemm tiles) reach only half the bandwidth from DRAM. */
#define ECH_GEMV_ENTRY(TARGET, name, CALL)                                                                  \
    TARGET static void name(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, float *y)       \
    {                                                                                                       \
        const uint8_t *at[4] = {a, a, a, a};                                                                \
        for (int64_t r = 0; r < nr; r++) {                                                                  \
            const uint8_t *wr[MR];                                                                          \
            wr[0] = wr[1] = wr[2] = wr[3] = (const uint8_t *)w + (size_t)r * ws;                            \
            float out[MR][4];                                                                               \
            CALL(1, 1);                                                                                     \
            y[r] = out[0][0];                                                                               \
        }                                                                                                   \
    }

#endif
