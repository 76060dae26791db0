/* bpe.c - byte-level BPE as llama.cpp runs it.
 *
 * The pre-tokenizer cuts the (UTF-8 normalised) text into words.  Each byte
 * of a word starts as the token of its printable stand-in character; the
 * adjacent pair with the best merge rank is merged, repeatedly, using a
 * priority queue: O(n log n) per word.  Symbols carry token ids, and merges
 * are looked up by id pair, so the hot loop never hashes strings.  With
 * ignore_merges (Llama 3) a word that is itself a token is taken whole.
 */
#include "config.h"

#include "tok/session.h"

#include <stdlib.h>
#include <string.h>

#include "tok/unicode.h"

static int bpe_before(const tok_pair *a, const tok_pair *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static int bpe_try_pair(tok_session *s, int32_t left, int32_t right)
{
    if (left < 0 || right < 0)
        return 0;
    ech_token l = s->sym[left].id, r = s->sym[right].id;
    if (l < 0 || r < 0)
        return 0;
    const tok_merge *m = tok_find_merge(s->tk, l, r);
    if (!m)
        return 0;
    tok_pair p = {.rank = m->rank, .left = left, .right = right, .left_id = l, .right_id = r,
                  .result = m->result};
    return tok_heap_push(s, &p, bpe_before);
}

/* A word whose merged symbol is not a token: each byte of its stand-in text
 * that is a one-byte token goes out (llama.cpp does the same). */
static int emit_fallback(tok_session *s, const uint8_t *w, const tok_sym *sy)
{
    const ech_tokenizer *tk = s->tk;
    for (uint32_t k = 0; k < sy->n; k++) {
        unsigned b = w[sy->start + k];
        for (unsigned e = 0; e < tk->byte_enc_len[b]; e++) {
            ech_token id = tok_lookup(tk, &tk->byte_enc[b][e], 1);
            if (id != ECH_TOKEN_NULL && ech_tokens_push(s->out, id))
                return -1;
        }
    }
    return 0;
}

static ech_status bpe_word(tok_session *s, const uint8_t *w, size_t n)
{
    const ech_tokenizer *tk = s->tk;
    if (tk->ignore_merges) {
        if (tok_reserve((void **)&s->word, &s->cap_word, 2 * n, 1))
            return ECH_ERR_NOMEM;
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(s->word + m, tk->byte_enc[w[i]], tk->byte_enc_len[w[i]]);
            m += tk->byte_enc_len[w[i]];
        }
        ech_token id = tok_lookup(tk, s->word, m);
        if (id != ECH_TOKEN_NULL)
            return ech_tokens_push(s->out, id);
    }
    if (n == 1) {   /* the common case of a one-byte word needs no queue */
        tok_sym one = {-1, -1, 0, 1, tk->byte_token[w[0]]};
        if (one.id >= 0 && (uint32_t)one.id < tk->n_vocab)
            return ech_tokens_push(s->out, one.id);
        return emit_fallback(s, w, &one) ? ECH_ERR_NOMEM : ECH_OK;
    }
    if (tok_reserve((void **)&s->sym, &s->cap_sym, n, sizeof *s->sym))
        return ECH_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        s->sym[i] = (tok_sym){(int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, (uint32_t)i, 1,
                              tk->byte_token[w[i]]};
    s->n_heap = 0;
    for (size_t i = 1; i < n; i++)
        if (bpe_try_pair(s, (int32_t)i - 1, (int32_t)i))
            return ECH_ERR_NOMEM;
    while (s->n_heap) {
        tok_pair p;
        tok_heap_pop(s, &p, bpe_before);
        tok_sym *l = &s->sym[p.left], *r = &s->sym[p.right];
        /* stale: a side has merged since (its id changed) or is gone */
        if (l->n == 0 || r->n == 0 || l->id != p.left_id || r->id != p.right_id)
            continue;
        l->n += r->n;
        l->id = p.result;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            s->sym[r->next].prev = p.left;
        if (bpe_try_pair(s, l->prev, p.left) || bpe_try_pair(s, p.left, l->next))
            return ECH_ERR_NOMEM;
    }
    for (int32_t i = 0; i != -1; i = s->sym[i].next) {
        const tok_sym *sy = &s->sym[i];
        if (sy->id >= 0 && (uint32_t)sy->id < tk->n_vocab) {
            if (ech_tokens_push(s->out, sy->id))
                return ECH_ERR_NOMEM;
        } else if (emit_fallback(s, w, sy)) {
            return ECH_ERR_NOMEM;
        }
    }
    return ECH_OK;
}

ech_status tok_bpe(tok_session *s, const char *text, size_t len)
{
    if (len == 0)
        return ECH_OK;
    if (len >= UINT32_MAX / 4)
        return ECH_ERR_RANGE;
    /* decode leniently (bad bytes become U+FFFD) and re-encode, so words are
     * the same bytes llama.cpp feeds to its merges */
    if (tok_reserve((void **)&s->cp, &s->cap_cp, len + 1, sizeof *s->cp) ||
        tok_reserve((void **)&s->buf, &s->cap_buf, 4 * len + 1, 1))
        return ECH_ERR_NOMEM;
    uint8_t *fl = realloc(s->fl, s->cap_cp);
    if (!fl)
        return ECH_ERR_NOMEM;
    s->fl = fl;
    uint32_t *off = realloc(s->off, s->cap_cp * sizeof *off);
    if (!off)
        return ECH_ERR_NOMEM;
    s->off = off;
    const uint8_t *t = (const uint8_t *)text;
    size_t n = 0, w = 0;
    for (size_t i = 0; i < len; n++) {
        uint32_t c;
        i += ech_ucd_decode_lax(t + i, len - i, &c);
        s->cp[n] = c;
        s->fl[n] = (uint8_t)ech_ucd_flags(c);
        s->off[n] = (uint32_t)w;
        w += ech_ucd_encode_lax(c, (uint8_t *)s->buf + w);
    }
    s->off[n] = (uint32_t)w;

    ech_status st = tok_pretokenize(s->tk->pre, s->cp, s->fl, n, &s->pt);
    if (st)
        return st;
    for (size_t k = 0; k < s->pt.n_spans; k++) {
        tok_span sp = s->pt.spans[k];
        uint32_t a = s->off[sp.a], b = s->off[sp.b];
        if ((st = bpe_word(s, (const uint8_t *)s->buf + a, b - a)))
            return st;
    }
    return ECH_OK;
}
