/* fuzz-index.c - libFuzzer target for the index file loader.
 *
 * Any input must be refused with a message, or open into an index that can
 * be searched, changed (delete, add), compacted and saved, and whose saved
 * image opens again with the same element count.  Violations abort.
 * Seeds: small index files (see README).
 */
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
    /* the loader wants 8-byte alignment, as a mapping has */
    uint64_t *copy = malloc(size ? (size + 7) / 8 * 8 : 8);
    if (size)
        memcpy(copy, data, size);
    ech_index *idx;
    ech_error err;
    if (ech_index_open_mem(copy, size, &idx, &err) != ECH_OK) {
        check(err.msg[0] != '\0');
        free(copy);
        return 0;
    }
    ech_index_params p;
    ech_index_get_params(idx, &p);
    size_t n = ech_index_size(idx);
    float *q = calloc(p.dim, sizeof *q);
    q[0] = 1;
    ech_index_searcher *s;
    check(ech_index_searcher_new(idx, &s, &err) == ECH_OK);
    ech_index_hit hits[8];
    size_t nh;
    if (ech_index_search(s, q, 8, 16, NULL, NULL, hits, &nh, &err) == ECH_OK)
        for (size_t i = 0; i < nh; i++) {
            check(hits[i].elem < n && !ech_index_is_deleted(idx, hits[i].elem));
            ech_index_key k;
            size_t len;
            ech_index_key_at(idx, hits[i].elem, &k);
            ech_index_payload(idx, hits[i].elem, &len);
        }
    ech_index_searcher_free(s);
    if (n) {
        ech_index_key k;
        ech_index_key_at(idx, 0, &k);
        ech_index_delete(idx, &k, &err);
    }
    ech_index_item it = {.key = {.kind = ech_index_key_kind(idx) == ECH_KEY_STRING ? ECH_KEY_STRING : ECH_KEY_U64,
                                 .num = 1u << 31, .str = "fuzz-new", .len = 8},
                         .vec = q};
    ech_index_add(idx, &it, 1, 1, &err);
    ech_index *c;
    if (ech_index_compact(idx, 1, &c, &err) == ECH_OK)
        ech_index_free(c);
    uint8_t *img;
    size_t isize;
    if (ech_index_save_mem(idx, &img, &isize, &err) == ECH_OK) {
        ech_index *back;
        check(ech_index_open_mem(img, isize, &back, &err) == ECH_OK);
        check(ech_index_size(back) == ech_index_size(idx));
        ech_index_free(back);
        free(img);
    }
    ech_index_free(idx);
    free(q);
    free(copy);
    return 0;
}
