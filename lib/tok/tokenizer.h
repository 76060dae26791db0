/* tokenizer.h - text to token ids and back, from the vocabulary in a GGUF file.
 *
 * Three vocabulary kinds, chosen by `tokenizer.ggml.model`, each reproducing
 * llama.cpp token for token:
 *   "llama"  SentencePiece BPE by scores, byte fallback <0xNN>, "▁" for space
 *   "gpt2"   byte-level BPE by merge rank after a pre-tokenizer picked by
 *            `tokenizer.ggml.pre` (gpt-2, llama-bpe, qwen2, deepseek-llm,
 *            deepseek-coder, falcon, mpt, starcoder, refact, default, ...)
 *   "bert"   WordPiece: NFD, lowercase, punctuation split, longest match
 *
 * An ech_tokenizer copies what it needs out of the GGUF file, so it outlives
 * the ech_gguf it was built from.  It is immutable once built: any number of
 * threads may tokenize and detokenize with one tokenizer at the same time.
 */
#ifndef ECH_TOK_TOKENIZER_H
#define ECH_TOK_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/status.h"
#include "gguf/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t ech_token;
#define ECH_TOKEN_NULL ((ech_token)-1)

typedef struct ech_tokenizer ech_tokenizer;

/* Token types as numbered in `tokenizer.ggml.token_type`. */
typedef enum ech_token_type {
    ECH_TOKEN_UNDEFINED = 0,
    ECH_TOKEN_NORMAL = 1,
    ECH_TOKEN_UNKNOWN = 2,
    ECH_TOKEN_CONTROL = 3,
    ECH_TOKEN_USER_DEFINED = 4,
    ECH_TOKEN_UNUSED = 5,
    ECH_TOKEN_BYTE = 6
} ech_token_type;

typedef enum ech_tok_kind { ECH_TOK_SPM, ECH_TOK_BPE, ECH_TOK_WPM } ech_tok_kind;

/* Special ids; ECH_TOKEN_NULL where the vocabulary has none. */
typedef struct ech_tok_specials {
    ech_token bos, eos, eot, eom, unk, sep, pad, cls, mask;
    ech_token fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    bool add_bos, add_eos;       /* what ECH_TOKENIZE_ADD_SPECIAL adds */
    bool add_space_prefix;       /* SPM: a "▁" goes in front of the text */
} ech_tok_specials;

/* A growable list of ids.  A zeroed ech_tokens is empty and valid; the
 * caller owns `ids` and releases it with ech_tokens_free(). */
typedef struct ech_tokens {
    ech_token *ids;
    size_t n, cap;
} ech_tokens;

void ech_tokens_free(ech_tokens *t);
ech_status ech_tokens_push(ech_tokens *t, ech_token id);

/* Build a tokenizer from the tokenizer.* metadata of `g` (vocab-only files
 * are fine).  ECH_ERR_UNSUPPORTED for a model or pre-tokenizer we do not
 * implement, ECH_ERR_FORMAT for inconsistent arrays.  Free with
 * ech_tokenizer_free(). */
ech_status ech_tokenizer_load(const ech_gguf *g, ech_tokenizer **out, ech_error *err);

/* Open the GGUF file at `path` and build its tokenizer (the file is closed
 * again before returning). */
ech_status ech_tokenizer_open(const char *path, ech_tokenizer **out, ech_error *err);

void ech_tokenizer_free(ech_tokenizer *tk);

/* Tokenize flags. */
enum {
    ECH_TOKENIZE_ADD_SPECIAL = 1u << 0,   /* BOS/EOS (CLS/SEP for WordPiece) as the vocab says */
    ECH_TOKENIZE_PARSE_SPECIAL = 1u << 1  /* "<|eot_id|>" in the text becomes the control token;
                                             without it only user-defined tokens are matched
                                             whole, as llama.cpp does */
};

/* Append the ids of text[0..len) to `out`.  Any bytes are accepted; invalid
 * UTF-8 is read as U+FFFD per bad byte, as llama.cpp does. */
ech_status ech_tokenize(const ech_tokenizer *tk, const char *text, size_t len, unsigned flags,
                        ech_tokens *out, ech_error *err);

/* Detokenize flags. */
/* A byte range of a text. */
typedef struct ech_span {
    size_t off, len;
} ech_span;

/* Like ech_tokenize, but inside the `literal` spans (sorted, disjoint) text
 * that looks like a control token stays text even with
 * ECH_TOKENIZE_PARSE_SPECIAL.  A chat prompt is tokenized this way: the
 * template's own special tokens become tokens, while the same text inside a
 * message (user input) cannot inject one. */
ech_status ech_tokenize_spans(const ech_tokenizer *tk, const char *text, size_t len, unsigned flags,
                              const ech_span *literal, size_t n_literal, ech_tokens *out, ech_error *err);

enum {
    ECH_DETOK_SPECIAL = 1u << 0,     /* render control and unknown tokens as their text */
    ECH_DETOK_KEEP_SPACE = 1u << 1   /* SPM/WPM: keep the space that the "▁" in front of the
                                        first word (or the first word after a special
                                        token) stands for */
};

/* Append the bytes of ids[0..n) to `out`.  Byte tokens are reassembled, so
 * the result is whatever bytes were tokenized (it need not be valid UTF-8 if
 * the ids split a character).  ECH_ERR_RANGE for an id outside the vocab.
 *
 * Unlike llama.cpp's llama_detokenize, this never applies the BPE
 * "clean_spaces" rewrites (" ," -> ",", " 's" -> "'s"), and it drops the SPM
 * space prefix after every special token, not only at the start, because
 * that is where tokenizing put one: decode(encode(text)) == text whenever the
 * vocab can represent the text. */
ech_status ech_detokenize(const ech_tokenizer *tk, const ech_token *ids, size_t n, unsigned flags,
                          ech_buf *out, ech_error *err);

/* A detokenizer for streams of ids (generation): it holds back the bytes of
 * an unfinished UTF-8 sequence until the ids that complete it arrive, so
 * everything it appends is valid UTF-8.  Bytes that can never be part of a
 * valid sequence come out as U+FFFD.  The struct is the caller's; it borrows
 * the tokenizer. */
typedef struct ech_detok_stream {
    const ech_tokenizer *tk;
    unsigned flags;
    bool at_word_start;    /* the next text piece may drop its leading space */
    uint8_t pending[4];
    uint8_t n_pending;
} ech_detok_stream;

void ech_detok_stream_init(ech_detok_stream *s, const ech_tokenizer *tk, unsigned flags);
/* Append what `id` completes to `out`. */
ech_status ech_detok_stream_push(ech_detok_stream *s, ech_token id, ech_buf *out);
/* End of stream: pending bytes of an unfinished sequence become U+FFFD. */
ech_status ech_detok_stream_flush(ech_detok_stream *s, ech_buf *out);

/* Facts about the vocabulary.  Pointers are borrowed from the tokenizer. */
ech_tok_kind ech_tokenizer_kind(const ech_tokenizer *tk);
const char *ech_tokenizer_model(const ech_tokenizer *tk);   /* "llama", "gpt2", "bert" */
const char *ech_tokenizer_pre(const ech_tokenizer *tk);     /* pre-tokenizer name, "default" if none */
size_t ech_tokenizer_n_vocab(const ech_tokenizer *tk);
const ech_tok_specials *ech_tokenizer_specials(const ech_tokenizer *tk);
/* The token's text as stored in the vocabulary ("▁Hello", "Ġworld", "<0x0A>");
 * {NULL, 0} for an id out of range. */
ech_str ech_tokenizer_text(const ech_tokenizer *tk, ech_token id);
/* The bytes the token stands for (" Hello", "\n"); {NULL, 0} out of range. */
ech_str ech_tokenizer_piece(const ech_tokenizer *tk, ech_token id);
ech_token_type ech_tokenizer_type(const ech_tokenizer *tk, ech_token id);
/* Id of the token whose text is exactly s[0..n), or ECH_TOKEN_NULL. */
ech_token ech_tokenizer_find(const ech_tokenizer *tk, const char *s, size_t n);
/* True for end-of-generation tokens (eos, eot, eom, "<|im_end|>", ...). */
bool ech_tokenizer_is_eog(const ech_tokenizer *tk, ech_token id);

/* The Unicode version the character tables were generated from ("15.0.0"). */
const char *ech_tokenizer_unicode_version(void);

#ifdef __cplusplus
}
#endif
#endif
