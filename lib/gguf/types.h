/* types.h - the ggml tensor types: ids, names, block and byte sizes.
 *
 * A tensor row of n elements of a block-quantised type occupies
 * n / block_size blocks of type_size bytes each; n must be a multiple of the
 * block size.  Ids are ggml's (they are what GGUF files store); ids whose
 * support ggml removed are not in the table and count as unknown.
 */
#ifndef ECH_GGUF_TYPES_H
#define ECH_GGUF_TYPES_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ech_type {
    ECH_TYPE_F32 = 0,
    ECH_TYPE_F16 = 1,
    ECH_TYPE_Q4_0 = 2,
    ECH_TYPE_Q4_1 = 3,
    /* 4, 5: Q4_2, Q4_3 (removed from ggml) */
    ECH_TYPE_Q5_0 = 6,
    ECH_TYPE_Q5_1 = 7,
    ECH_TYPE_Q8_0 = 8,
    ECH_TYPE_Q8_1 = 9,
    ECH_TYPE_Q2_K = 10,
    ECH_TYPE_Q3_K = 11,
    ECH_TYPE_Q4_K = 12,
    ECH_TYPE_Q5_K = 13,
    ECH_TYPE_Q6_K = 14,
    ECH_TYPE_Q8_K = 15,
    ECH_TYPE_IQ2_XXS = 16,
    ECH_TYPE_IQ2_XS = 17,
    ECH_TYPE_IQ3_XXS = 18,
    ECH_TYPE_IQ1_S = 19,
    ECH_TYPE_IQ4_NL = 20,
    ECH_TYPE_IQ3_S = 21,
    ECH_TYPE_IQ2_S = 22,
    ECH_TYPE_IQ4_XS = 23,
    ECH_TYPE_I8 = 24,
    ECH_TYPE_I16 = 25,
    ECH_TYPE_I32 = 26,
    ECH_TYPE_I64 = 27,
    ECH_TYPE_F64 = 28,
    ECH_TYPE_IQ1_M = 29,
    ECH_TYPE_BF16 = 30,
    /* 31-33: Q4_0_4_4, Q4_0_4_8, Q4_0_8_8 (removed) */
    ECH_TYPE_TQ1_0 = 34,
    ECH_TYPE_TQ2_0 = 35,
    /* 36-38: IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8 (removed) */
    ECH_TYPE_MXFP4 = 39,
    ECH_TYPE_COUNT = 40
} ech_type;

typedef struct ech_type_info {
    const char *name;      /* "Q4_K", as ggml spells it */
    uint32_t block_size;   /* elements per block (1 for plain types) */
    uint32_t type_size;    /* bytes per block */
    bool quantized;        /* block-quantised (not a plain number format) */
} ech_type_info;

/* The table entry for `type`, or NULL for an unknown or removed id. */
const ech_type_info *ech_type_info_get(uint32_t type);

/* The name of `type`, or "unknown". */
const char *ech_type_name(uint32_t type);

/* Look a type up by name ("q4_k" or "Q4_K"); ECH_ERR_NOT_FOUND if none. */
ech_status ech_type_from_name(const char *name, ech_type *out);

/* Bytes taken by `n_elements` elements of `type`: ECH_ERR_UNSUPPORTED for an
 * unknown type, ECH_ERR_FORMAT if n_elements is not a whole number of blocks,
 * ECH_ERR_RANGE if the size does not fit in 64 bits. */
ech_status ech_type_nbytes(uint32_t type, uint64_t n_elements, uint64_t *out);

/* The name of a llama.cpp `general.file_type` value ("Q4_K_M"), or NULL. */
const char *ech_file_type_name(uint32_t file_type);

#ifdef __cplusplus
}
#endif
#endif
