/* types.c - the ggml type table.
 *
 * Sizes follow the block layouts: e.g. Q4_K is two f16 scales, 12 bytes of
 * packed 6-bit sub-block scales and 128 bytes of nibbles for 256 weights
 * = 144 bytes.
 */
#include "gguf/types.h"

#include <stddef.h>
#include <strings.h>

#define QK_K 256

static const ech_type_info type_table[ECH_TYPE_COUNT] = {
    [ECH_TYPE_F32]     = {"F32", 1, 4, false},
    [ECH_TYPE_F16]     = {"F16", 1, 2, false},
    [ECH_TYPE_Q4_0]    = {"Q4_0", 32, 2 + 16, true},
    [ECH_TYPE_Q4_1]    = {"Q4_1", 32, 2 + 2 + 16, true},
    [ECH_TYPE_Q5_0]    = {"Q5_0", 32, 2 + 4 + 16, true},
    [ECH_TYPE_Q5_1]    = {"Q5_1", 32, 2 + 2 + 4 + 16, true},
    [ECH_TYPE_Q8_0]    = {"Q8_0", 32, 2 + 32, true},
    [ECH_TYPE_Q8_1]    = {"Q8_1", 32, 2 + 2 + 32, true},
    [ECH_TYPE_Q2_K]    = {"Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4, true},
    [ECH_TYPE_Q3_K]    = {"Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12, true},
    [ECH_TYPE_Q4_K]    = {"Q4_K", QK_K, 2 + 2 + 12 + QK_K / 2, true},
    [ECH_TYPE_Q5_K]    = {"Q5_K", QK_K, 2 + 2 + 12 + QK_K / 2 + QK_K / 8, true},
    [ECH_TYPE_Q6_K]    = {"Q6_K", QK_K, 2 + QK_K / 16 + 3 * QK_K / 4, true},
    [ECH_TYPE_Q8_K]    = {"Q8_K", QK_K, 4 + QK_K + QK_K / 16 * 2, true},
    [ECH_TYPE_IQ2_XXS] = {"IQ2_XXS", QK_K, 2 + QK_K / 8 * 2, true},
    [ECH_TYPE_IQ2_XS]  = {"IQ2_XS", QK_K, 2 + QK_K / 8 * 2 + QK_K / 32, true},
    [ECH_TYPE_IQ3_XXS] = {"IQ3_XXS", QK_K, 2 + 3 * (QK_K / 8), true},
    [ECH_TYPE_IQ1_S]   = {"IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16, true},
    [ECH_TYPE_IQ4_NL]  = {"IQ4_NL", 32, 2 + 16, true},
    [ECH_TYPE_IQ3_S]   = {"IQ3_S", QK_K, 2 + 13 * (QK_K / 32) + QK_K / 64, true},
    [ECH_TYPE_IQ2_S]   = {"IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16, true},
    [ECH_TYPE_IQ4_XS]  = {"IQ4_XS", QK_K, 2 + 2 + QK_K / 64 + QK_K / 2, true},
    [ECH_TYPE_I8]      = {"I8", 1, 1, false},
    [ECH_TYPE_I16]     = {"I16", 1, 2, false},
    [ECH_TYPE_I32]     = {"I32", 1, 4, false},
    [ECH_TYPE_I64]     = {"I64", 1, 8, false},
    [ECH_TYPE_F64]     = {"F64", 1, 8, false},
    [ECH_TYPE_IQ1_M]   = {"IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32, true},
    [ECH_TYPE_BF16]    = {"BF16", 1, 2, false},
    [ECH_TYPE_TQ1_0]   = {"TQ1_0", QK_K, 2 + QK_K / 64 + (QK_K - 4 * QK_K / 64) / 5, true},
    [ECH_TYPE_TQ2_0]   = {"TQ2_0", QK_K, 2 + QK_K / 4, true},
    [ECH_TYPE_MXFP4]   = {"MXFP4", 32, 1 + 16, true},
};

const ech_type_info *ech_type_info_get(uint32_t type)
{
    if (type >= ECH_TYPE_COUNT || type_table[type].name == NULL)
        return NULL;
    return &type_table[type];
}

const char *ech_type_name(uint32_t type)
{
    const ech_type_info *ti = ech_type_info_get(type);
    return ti ? ti->name : "unknown";
}

ech_status ech_type_from_name(const char *name, ech_type *out)
{
    for (uint32_t t = 0; t < ECH_TYPE_COUNT; t++) {
        if (type_table[t].name && strcasecmp(type_table[t].name, name) == 0) {
            *out = (ech_type)t;
            return ECH_OK;
        }
    }
    return ECH_ERR_NOT_FOUND;
}

ech_status ech_type_nbytes(uint32_t type, uint64_t n_elements, uint64_t *out)
{
    const ech_type_info *ti = ech_type_info_get(type);
    if (!ti)
        return ECH_ERR_UNSUPPORTED;
    if (n_elements % ti->block_size != 0)
        return ECH_ERR_FORMAT;
    uint64_t blocks = n_elements / ti->block_size;
    if (blocks > UINT64_MAX / ti->type_size)
        return ECH_ERR_RANGE;
    *out = blocks * ti->type_size;
    return ECH_OK;
}

/* llama.cpp's llama_ftype values; gaps are ids llama.cpp retired. */
static const char *const file_type_names[] = {
    [0] = "F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [4] = "Q4_1_SOME_F16",
    [7] = "Q8_0", [8] = "Q5_0", [9] = "Q5_1", [10] = "Q2_K", [11] = "Q3_K_S",
    [12] = "Q3_K_M", [13] = "Q3_K_L", [14] = "Q4_K_S", [15] = "Q4_K_M",
    [16] = "Q5_K_S", [17] = "Q5_K_M", [18] = "Q6_K", [19] = "IQ2_XXS",
    [20] = "IQ2_XS", [21] = "Q2_K_S", [22] = "IQ3_XS", [23] = "IQ3_XXS",
    [24] = "IQ1_S", [25] = "IQ4_NL", [26] = "IQ3_S", [27] = "IQ3_M",
    [28] = "IQ2_S", [29] = "IQ2_M", [30] = "IQ4_XS", [31] = "IQ1_M",
    [32] = "BF16", [36] = "TQ1_0", [37] = "TQ2_0", [38] = "MXFP4_MOE",
};

const char *ech_file_type_name(uint32_t file_type)
{
    if (file_type >= sizeof file_type_names / sizeof file_type_names[0])
        return NULL;
    return file_type_names[file_type];
}
