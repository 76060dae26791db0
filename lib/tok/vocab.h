/* vocab.h - the tokenizer's data: token texts, scores, types, the text->id
 * hash, BPE merges by id pair, special ids and attributes.  Internal to
 * lib/tok; the public face is tok/tokenizer.h.
 */
#ifndef ECH_TOK_VOCAB_H
#define ECH_TOK_VOCAB_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "tok/pretok.h"
#include "tok/tokenizer.h"

/* Per-token attributes beyond the GGUF type (set by model name, as llama.cpp does). */
enum { TOK_ATTR_LSTRIP = 1, TOK_ATTR_RSTRIP = 2 };

/* A BPE merge: (left id, right id) -> rank and the id of left+right. */
typedef struct tok_merge {
    uint64_t key;        /* left << 32 | right; TOK_MERGE_EMPTY when unused */
    int32_t rank;
    int32_t result;
} tok_merge;
#define TOK_MERGE_EMPTY UINT64_MAX

struct ech_tokenizer {
    ech_arena arena;           /* texts, pieces and tables live here */
    ech_tok_kind kind;
    tok_pre pre;
    char model_name[16];
    char pre_name[32];

    uint32_t n_vocab;          /* real tokens: ids 0..n_vocab-1 */
    uint32_t n_text;           /* plus BPE merge strings missing from the vocab */
    ech_str *text;             /* n_text entries */
    uint32_t *text_hash;       /* n_text entries */
    float *score;              /* n_vocab */
    uint8_t *type;             /* n_vocab, ech_token_type */
    uint8_t *attr;             /* n_vocab, TOK_ATTR_* */
    uint8_t *eog;              /* n_vocab, 1 for end-of-generation tokens */
    ech_str *piece;            /* n_vocab, decoded bytes */
    size_t max_token_len;

    int32_t *slots;            /* open-addressing text -> id, -1 empty */
    uint32_t slot_mask;

    tok_merge *merges;         /* BPE only */
    uint32_t merge_mask;

    /* Special tokens in the order llama.cpp partitions text by them:
     * control, user-defined and unknown tokens, longest text first. */
    ech_token *special;
    uint32_t n_special;

    ech_tok_specials sp;
    bool ignore_merges;        /* BPE: a word that is a token is not merged */
    bool spm_split_words;      /* SPM: no token has "▁" after anything but "▁", so no
                                  merge can cross into a word: merge word by word */

    /* SPM: token for byte b (<0xNN>, else the byte as text).  BPE: token of
     * the byte's printable stand-in character. */
    ech_token byte_token[256];
    /* BPE: the stand-in character of each byte, as UTF-8. */
    uint8_t byte_enc[256][2];
    uint8_t byte_enc_len[256];
};

/* The hash used for token texts. */
static inline uint64_t tok_hash(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    if (n) {
        uint64_t v = 0;
        memcpy(&v, s, n);
        h = (h ^ v) * 0x94d049bb133111ebull;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

/* Id for the text s[0..n): a real token, a merge-only string (>= n_vocab)
 * or ECH_TOKEN_NULL. */
static inline ech_token tok_lookup_any(const ech_tokenizer *tk, const void *s, size_t n)
{
    uint64_t h = tok_hash(s, n);
    uint32_t h32 = (uint32_t)h;
    for (uint32_t i = (uint32_t)(h >> 32) & tk->slot_mask;; i = (i + 1) & tk->slot_mask) {
        int32_t id = tk->slots[i];
        if (id < 0)
            return ECH_TOKEN_NULL;
        if (tk->text_hash[id] == h32 && tk->text[id].len == n && memcmp(tk->text[id].ptr, s, n) == 0)
            return id;
    }
}

/* Id of a real token with text s[0..n), or ECH_TOKEN_NULL. */
static inline ech_token tok_lookup(const ech_tokenizer *tk, const void *s, size_t n)
{
    ech_token id = tok_lookup_any(tk, s, n);
    return id >= 0 && (uint32_t)id < tk->n_vocab ? id : ECH_TOKEN_NULL;
}

static inline uint64_t tok_merge_key(ech_token l, ech_token r)
{
    return (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
}

/* The merge of ids (l, r), or NULL. */
static inline const tok_merge *tok_find_merge(const ech_tokenizer *tk, ech_token l, ech_token r)
{
    uint64_t key = tok_merge_key(l, r);
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    for (uint32_t i = (uint32_t)(h >> 40) & tk->merge_mask;; i = (i + 1) & tk->merge_mask) {
        const tok_merge *m = &tk->merges[i];
        if (m->key == key)
            return m;
        if (m->key == TOK_MERGE_EMPTY)
            return NULL;
    }
}

#endif
