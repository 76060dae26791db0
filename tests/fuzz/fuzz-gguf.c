/* fuzz-gguf.c - libFuzzer target for the GGUF reader (and writer).
 *
 * Any input must be either refused with a message or parsed into something
 * every consumer can walk; a parsed file must survive a write -> read round
 * trip with the same metadata and tensors.  Violations abort.
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
    ech_gguf *g;
    ech_error err;
    if (ech_gguf_parse(data, size, &g, &err) != ECH_OK) {
        check(err.msg[0] != '\0');
        return 0;
    }
    ech_model_summary s;
    ech_gguf_summarize(g, &s);
    ech_gguf_writer *w = ech_gguf_writer_new();
    for (size_t i = 0; i < ech_gguf_n_kv(g); i++) {
        const ech_gguf_kv *kv = ech_gguf_kv_at(g, i);
        json_object_put(ech_gguf_kv_to_json(kv, 64));
        free(ech_gguf_value_to_text(&kv->value, 8, 60));
        check(ech_gguf_find(g, kv->key) == kv);
        check(ech_gguf_writer_set(w, kv->key, &kv->value) == ECH_OK);
    }
    for (size_t i = 0; i < ech_gguf_n_tensors(g); i++) {
        const ech_gguf_tensor *t = ech_gguf_tensor_at(g, i);
        json_object_put(ech_gguf_tensor_to_json(g, t));
        check(ech_gguf_find_tensor(g, t->name) == t);
        check((const uint8_t *)t->data >= data && t->nbytes <= size &&
              (size_t)((const uint8_t *)t->data - data) <= size - t->nbytes);
        check(ech_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data) == ECH_OK);
    }
    uint8_t *buf;
    size_t n;
    if (ech_gguf_writer_write_mem(w, &buf, &n, &err) == ECH_OK) {
        ech_gguf *back;
        check(ech_gguf_parse(buf, n, &back, &err) == ECH_OK);
        check(ech_gguf_n_kv(back) == ech_gguf_n_kv(g) && ech_gguf_n_tensors(back) == ech_gguf_n_tensors(g));
        for (size_t i = 0; i < ech_gguf_n_tensors(g); i++) {
            const ech_gguf_tensor *a = ech_gguf_tensor_at(g, i), *b = ech_gguf_tensor_at(back, i);
            check(a->nbytes == b->nbytes && (a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0));
        }
        ech_gguf_close(back);
        free(buf);
    }
    ech_gguf_writer_free(w);
    ech_gguf_close(g);
    return 0;
}
