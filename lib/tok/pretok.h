/* pretok.h - the pre-tokenizers of byte-level BPE vocabularies.
 *
 * llama.cpp splits text with a list of regular expressions per
 * `tokenizer.ggml.pre`, each applied to every piece the previous one left,
 * where both the matches and the text between them become pieces.  Here
 * each expression is a small hand-written matcher with the same leftmost,
 * greedy, backtracking semantics (std::regex ECMAScript, or llama.cpp's own
 * fast paths for the GPT-2 and Llama-3 expressions), over code points
 * classified by the generated Unicode tables.  Internal to lib/tok.
 */
#ifndef ECH_TOK_PRETOK_H
#define ECH_TOK_PRETOK_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum tok_pre {
    TOK_PRE_DEFAULT,
    TOK_PRE_GPT2,            /* gpt-2, mpt, olmo, jais, phi-2, roberta-bpe, jina-* ... */
    TOK_PRE_LLAMA3,          /* llama-bpe, llama3, dbrx, smaug-bpe, falcon3, chatglm-bpe */
    TOK_PRE_QWEN2,           /* qwen2, deepseek-r1-qwen, stablelm2, megrez */
    TOK_PRE_DEEPSEEK_LLM,
    TOK_PRE_DEEPSEEK_CODER,
    TOK_PRE_FALCON,
    TOK_PRE_STARCODER,       /* starcoder, refact, command-r, smollm, codeshell, exaone, minerva */
    TOK_PRE_COUNT
} tok_pre;

/* Map a `tokenizer.ggml.pre` value to its pre-tokenizer; -1 if unknown.
 * Also says whether llama.cpp turns on ignore_merges and add_bos for it. */
int tok_pre_from_name(const char *name, size_t len, int *ignore_merges, int *add_bos);

/* A piece of text: code points [a, b). */
typedef struct tok_span {
    uint32_t a, b;
} tok_span;

/* Scratch for one pre-tokenization; zero it before first use, free with
 * tok_pretok_free.  Reused between calls, so it grows but rarely allocates. */
typedef struct tok_pretok {
    tok_span *spans, *tmp;
    size_t n_spans, cap_spans, cap_tmp;
} tok_pretok;

/* Split code points cp[0..n) (with their ech_ucd_flags in fl[]) into the
 * words of pre-tokenizer `pre`; the result is in pt->spans[0..pt->n_spans). */
ech_status tok_pretokenize(tok_pre pre, const uint32_t *cp, const uint8_t *fl, size_t n,
                           tok_pretok *pt);
void tok_pretok_free(tok_pretok *pt);

#endif
