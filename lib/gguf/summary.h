/* summary.h - the facts a person asks of a model file first.
 *
 * Architecture, size, shape and tokenizer, gathered from the well-known
 * metadata keys ("{arch}.context_length", "tokenizer.ggml.model", ...) and
 * the tensor table.  Missing keys leave their field at 0 / empty.
 */
#ifndef ECH_GGUF_SUMMARY_H
#define ECH_GGUF_SUMMARY_H

#include <stdbool.h>
#include <stdint.h>

#include "gguf/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ech_model_summary {
    ech_str architecture;      /* general.architecture; strings point into the file */
    ech_str name;              /* general.name */
    ech_str tokenizer_model;   /* tokenizer.ggml.model ("llama", "gpt2", "bert") */
    int64_t file_type;         /* general.file_type, -1 if absent */
    const char *file_type_name;/* static string, NULL if absent or unknown */
    uint64_t n_params;         /* elements over all tensors */
    uint64_t tensor_bytes;     /* bytes over all tensors */
    double bits_per_weight;    /* tensor_bytes * 8 / n_params, 0 if no tensors */
    uint64_t context_length;   /* {arch}.context_length */
    uint64_t n_layers;         /* {arch}.block_count */
    uint64_t n_embd;           /* {arch}.embedding_length */
    uint64_t n_heads;          /* {arch}.attention.head_count (first layer if per-layer) */
    uint64_t n_heads_kv;       /* {arch}.attention.head_count_kv */
    uint64_t n_vocab;          /* {arch}.vocab_size, else the token list's length */
    bool has_chat_template;    /* tokenizer.chat_template present */
} ech_model_summary;

void ech_gguf_summarize(const ech_gguf *g, ech_model_summary *s);

/* Look up "{arch}.{suffix}" as an unsigned integer (or the first element of
 * an integer array); ECH_ERR_NOT_FOUND if the architecture or key is absent. */
ech_status ech_gguf_get_arch_u64(const ech_gguf *g, const char *suffix, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif
