/* summary.c - collect the headline facts of a GGUF model. */
#include "gguf/summary.h"

#include <stdio.h>
#include <string.h>

ech_status ech_gguf_get_arch_u64(const ech_gguf *g, const char *suffix, uint64_t *out)
{
    ech_str arch;
    if (ech_gguf_get_str(g, "general.architecture", &arch) != ECH_OK)
        return ECH_ERR_NOT_FOUND;
    char key[256];
    int n = snprintf(key, sizeof key, "%.*s.%s", (int)(arch.len > 128 ? 128 : arch.len), arch.ptr, suffix);
    if (n < 0 || (size_t)n >= sizeof key)
        return ECH_ERR_RANGE;
    const ech_gguf_kv *kv = ech_gguf_find(g, key);
    if (!kv)
        return ECH_ERR_NOT_FOUND;
    if (kv->value.type == ECH_GGUF_ARR) {
        const ech_gguf_array *a = &kv->value.a;
        if (a->n == 0 || ech_gguf_type_size(a->type) == 0 || a->type == ECH_GGUF_F32 ||
            a->type == ECH_GGUF_F64)
            return ECH_ERR_FORMAT;
        int64_t v = ech_gguf_array_i64(a, 0);
        if (v < 0)
            return ECH_ERR_RANGE;
        *out = (uint64_t)v;
        return ECH_OK;
    }
    return ech_gguf_value_u64(&kv->value, out) ? ECH_OK : ECH_ERR_FORMAT;
}

void ech_gguf_summarize(const ech_gguf *g, ech_model_summary *s)
{
    memset(s, 0, sizeof *s);
    s->file_type = -1;
    ech_gguf_get_str(g, "general.architecture", &s->architecture);
    ech_gguf_get_str(g, "general.name", &s->name);
    ech_gguf_get_str(g, "tokenizer.ggml.model", &s->tokenizer_model);
    int64_t ft;
    if (ech_gguf_get_i64(g, "general.file_type", &ft) == ECH_OK) {
        s->file_type = ft;
        if (ft >= 0 && ft <= UINT32_MAX)
            s->file_type_name = ech_file_type_name((uint32_t)ft);
    }
    for (size_t i = 0; i < ech_gguf_n_tensors(g); i++) {
        const ech_gguf_tensor *t = ech_gguf_tensor_at(g, i);
        s->n_params += t->n_elements;
        s->tensor_bytes += t->nbytes;
    }
    if (s->n_params)
        s->bits_per_weight = (double)s->tensor_bytes * 8.0 / (double)s->n_params;
    ech_gguf_get_arch_u64(g, "context_length", &s->context_length);
    ech_gguf_get_arch_u64(g, "block_count", &s->n_layers);
    ech_gguf_get_arch_u64(g, "embedding_length", &s->n_embd);
    ech_gguf_get_arch_u64(g, "attention.head_count", &s->n_heads);
    ech_gguf_get_arch_u64(g, "attention.head_count_kv", &s->n_heads_kv);
    if (ech_gguf_get_arch_u64(g, "vocab_size", &s->n_vocab) != ECH_OK) {
        const ech_gguf_array *toks;
        if (ech_gguf_get_array(g, "tokenizer.ggml.tokens", &toks) == ECH_OK)
            s->n_vocab = toks->n;
    }
    s->has_chat_template = ech_gguf_find(g, "tokenizer.chat_template") != NULL;
}
