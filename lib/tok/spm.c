/* spm.c - SentencePiece BPE as llama.cpp runs it.
 *
 * The text (spaces already "▁") is cut into UTF-8 characters; neighbours
 * whose concatenation is a token are queued by that token's score, and the
 * best pair is merged until no pair forms a token.  What is left and is not
 * a token goes out as byte tokens <0xNN>.  Stale queue entries (a side
 * already merged elsewhere) are recognised by their recorded size.
 */
#include "config.h"

#include "tok/session.h"

#include <stdlib.h>
#include <string.h>

static int spm_before(const tok_pair *a, const tok_pair *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int spm_try_pair(tok_session *s, int32_t left, int32_t right)
{
    if (left < 0 || right < 0)
        return 0;
    const tok_sym *l = &s->sym[left], *r = &s->sym[right];
    uint32_t size = l->n + r->n;
    ech_token id = tok_lookup(s->tk, s->buf + l->start, size);
    if (id == ECH_TOKEN_NULL)
        return 0;
    tok_pair p = {.score = s->tk->score[id], .left = left, .right = right, .size = size};
    return tok_heap_push(s, &p, spm_before);
}

/* UTF-8 length by the lead byte alone, as llama.cpp's unicode_len_utf8 */
static size_t lead_len(unsigned char c)
{
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[c >> 4];
}

/* Merge and emit the symbols of buf[from, to). */
static ech_status spm_run(tok_session *s, size_t from, size_t to)
{
    const ech_tokenizer *tk = s->tk;
    int32_t n_sym = 0;
    for (size_t off = from; off < to;) {
        size_t l = lead_len((unsigned char)s->buf[off]);
        if (l > to - off)
            l = to - off;
        s->sym[n_sym] = (tok_sym){n_sym - 1, -1, (uint32_t)off, (uint32_t)l, -1};
        if (n_sym > 0)
            s->sym[n_sym - 1].next = n_sym;
        n_sym++;
        off += l;
    }
    if (n_sym == 0)
        return ECH_OK;

    s->n_heap = 0;
    for (int32_t i = 1; i < n_sym; i++)
        if (spm_try_pair(s, i - 1, i))
            return ECH_ERR_NOMEM;
    while (s->n_heap) {
        tok_pair p;
        tok_heap_pop(s, &p, spm_before);
        tok_sym *l = &s->sym[p.left], *r = &s->sym[p.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != p.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            s->sym[r->next].prev = p.left;
        if (spm_try_pair(s, l->prev, p.left) || spm_try_pair(s, p.left, l->next))
            return ECH_ERR_NOMEM;
    }

    for (int32_t i = 0; i != -1; i = s->sym[i].next) {
        const tok_sym *sy = &s->sym[i];
        ech_token id = tok_lookup(tk, s->buf + sy->start, sy->n);
        if (id != ECH_TOKEN_NULL) {
            if (ech_tokens_push(s->out, id))
                return ECH_ERR_NOMEM;
            continue;
        }
        /* byte fallback; a vocab without byte tokens gets <unk> */
        for (uint32_t k = 0; k < sy->n; k++) {
            ech_token b = tk->byte_token[(unsigned char)s->buf[sy->start + k]];
            if (b == ECH_TOKEN_NULL)
                b = tk->sp.unk;
            if (b != ECH_TOKEN_NULL && ech_tokens_push(s->out, b))
                return ECH_ERR_NOMEM;
        }
    }
    return ECH_OK;
}

static int is_mark(const char *p, size_t avail)
{
    return avail >= 3 && memcmp(p, "\xe2\x96\x81", 3) == 0;
}

ech_status tok_spm(tok_session *s, const char *text, size_t len, int space_prefix)
{
    /* escape: optional leading space, then every ' ' becomes U+2581 */
    size_t spaces = space_prefix ? 1 : 0;
    for (size_t i = 0; i < len; i++)
        spaces += text[i] == ' ';
    size_t n = len + (space_prefix ? 1 : 0) + spaces * 2;
    if (n >= UINT32_MAX / 2 || tok_reserve((void **)&s->buf, &s->cap_buf, n + 1, 1))
        return ECH_ERR_NOMEM;
    size_t w = 0;
    if (space_prefix) {
        memcpy(s->buf, "\xe2\x96\x81", 3);
        w = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(s->buf + w, "\xe2\x96\x81", 3);
            w += 3;
        } else {
            s->buf[w++] = text[i];
        }
    }
    if (tok_reserve((void **)&s->sym, &s->cap_sym, w + 1, sizeof *s->sym))
        return ECH_ERR_NOMEM;
    if (!s->tk->spm_split_words)
        return spm_run(s, 0, w);

    /* The same symbols as one run over the whole text, cut where a "▁"
     * symbol follows a symbol that is not "▁": no token spans such a cut
     * (checked at load), so the merges on either side are independent and
     * come out in the same order; the queues stay small. */
    size_t chunk = 0;
    int prev_mark = 0;
    for (size_t off = 0; off < w;) {
        size_t l = lead_len((unsigned char)s->buf[off]);
        if (l > w - off)
            l = w - off;
        int mark = l == 3 && is_mark(s->buf + off, w - off);
        if (mark && !prev_mark && off > chunk) {
            ech_status st = spm_run(s, chunk, off);
            if (st)
                return st;
            chunk = off;
        }
        prev_mark = mark;
        off += l;
    }
    return spm_run(s, chunk, w);
}
