/* session.h - scratch memory of one ech_tokenize call and the per-model
 * tokenizers it dispatches to.  Internal to lib/tok.
 *
 * All arrays grow geometrically and are reused across the fragments and
 * words of a call, so tokenizing allocates O(log n) times, not per token.
 */
#ifndef ECH_TOK_SESSION_H
#define ECH_TOK_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "tok/pretok.h"
#include "tok/vocab.h"

/* A symbol of the merge loops: bytes [start, start + n) of the text being
 * merged, linked to its neighbours; n == 0 once merged into its left. */
typedef struct tok_sym {
    int32_t prev, next;
    uint32_t start, n;
    ech_token id;        /* BPE: id (or merge-only id) of the text; -1 if none */
} tok_sym;

/* A candidate merge in the priority queue.  SPM orders by score (higher
 * first), BPE by rank (lower first); ties go to the leftmost pair. */
typedef struct tok_pair {
    float score;
    int32_t rank;
    int32_t left, right;
    uint32_t size;           /* SPM: bytes of left + right when queued */
    ech_token left_id, right_id, result;   /* BPE */
} tok_pair;

typedef struct tok_session {
    const ech_tokenizer *tk;
    ech_tokens *out;

    char *buf;               /* text being worked on (escaped, normalized, encoded) */
    size_t cap_buf;
    char *word;              /* BPE/WPM: the current word */
    size_t cap_word;

    uint32_t *cp;            /* code points, their flags and byte offsets in buf */
    uint8_t *fl;
    uint32_t *off;
    size_t cap_cp;

    tok_sym *sym;
    size_t cap_sym;
    tok_pair *heap;
    size_t n_heap, cap_heap;

    tok_pretok pt;
} tok_session;

/* Make room for n elements of size `elem` in *p (capacity *cap). */
int tok_reserve(void **p, size_t *cap, size_t n, size_t elem);

ech_status tok_spm(tok_session *s, const char *text, size_t len, int space_prefix);
ech_status tok_bpe(tok_session *s, const char *text, size_t len);
ech_status tok_wpm(tok_session *s, const char *text, size_t len);

/* Priority queue over s->heap; `before(a, b)` says a pops first. */
typedef int (*tok_pair_before)(const tok_pair *a, const tok_pair *b);
int tok_heap_push(tok_session *s, const tok_pair *p, tok_pair_before before);
void tok_heap_pop(tok_session *s, tok_pair *top, tok_pair_before before);

#endif
