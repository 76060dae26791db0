/* fuzz-vecio.c - libFuzzer target for the embedding readers: any input as
 * one NDJSON line and as a .fvecs image.  A parse either fails with a message
 * or yields finite values of a dimension in range.  Violations abort.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ech.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ech_vec_scratch sc = {0};
    ech_vec_record r;
    ech_error err;
    if (ech_vec_parse_line((const char *)data, size, &sc, &r, &err) == ECH_OK) {
        check(r.dim >= 1 && r.dim <= ECH_INDEX_MAX_DIM);
        for (size_t i = 0; i < r.dim; i++)
            check(isfinite(r.vec[i]));
        check(r.key.kind != ECH_KEY_STRING || (r.key.len >= 1 && r.key.str));
        check(!r.payload || r.payload_len > 0);
    } else {
        check(err.msg[0] != '\0');
    }
    ech_vec_scratch_free(&sc);

    float *copy = malloc(size ? (size + 3) / 4 * 4 : 4);
    if (size)
        memcpy(copy, data, size);
    uint32_t dim;
    size_t count;
    if (ech_fvecs_check(copy, size, &dim, &count, &err) == ECH_OK) {
        check(count * (4 + 4 * (size_t)dim) == size);
        volatile float sum = 0;
        for (size_t i = 0; i < count; i++)
            sum += ech_fvecs_at(copy, dim, i)[dim - 1];
    }
    free(copy);
    return 0;
}
