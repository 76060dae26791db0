/* tokenize.c - ech_tokenize: special-token partition, then SPM, BPE or WPM
 * on each stretch of plain text, with BOS/EOS (CLS/SEP) as the vocab says.
 */
#include "config.h"   /* _GNU_SOURCE for memmem */

#include "tok/session.h"

#include <stdlib.h>
#include <string.h>

/* ---- small containers ------------------------------------------------------ */

int tok_reserve(void **p, size_t *cap, size_t n, size_t elem)
{
    if (n <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < n) {
        if (c > SIZE_MAX / 2 / elem)
            return -1;
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

void ech_tokens_free(ech_tokens *t)
{
    free(t->ids);
    t->ids = NULL;
    t->n = t->cap = 0;
}

ech_status ech_tokens_push(ech_tokens *t, ech_token id)
{
    if (t->n == t->cap && tok_reserve((void **)&t->ids, &t->cap, t->n + 1, sizeof *t->ids))
        return ECH_ERR_NOMEM;
    t->ids[t->n++] = id;
    return ECH_OK;
}

int tok_heap_push(tok_session *s, const tok_pair *p, tok_pair_before before)
{
    if (tok_reserve((void **)&s->heap, &s->cap_heap, s->n_heap + 1, sizeof *s->heap))
        return -1;
    size_t i = s->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(p, &s->heap[parent]))
            break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = *p;
    return 0;
}

void tok_heap_pop(tok_session *s, tok_pair *top, tok_pair_before before)
{
    *top = s->heap[0];
    tok_pair last = s->heap[--s->n_heap];
    size_t n = s->n_heap, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!before(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n)
        s->heap[i] = last;
}

/* ---- special-token partition --------------------------------------------- */

/* A stretch of the input: a token already decided (id >= 0), or plain text
 * bytes [off, off + len) still to be tokenized (id < 0). */
typedef struct frag {
    ech_token id;
    size_t off, len;
} frag;

typedef struct frag_list {
    frag *v;
    size_t n, cap;
} frag_list;

static int frag_push(frag_list *l, ech_token id, size_t off, size_t len)
{
    if (tok_reserve((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v))
        return -1;
    l->v[l->n++] = (frag){id, off, len};
    return 0;
}

static int c_isspace(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* 1 if [at, at+n) overlaps one of the sorted, disjoint spans. */
static int overlaps(const ech_span *sp, size_t n_sp, size_t at, size_t n)
{
    for (size_t i = 0; i < n_sp; i++) {
        if (sp[i].off >= at + n)
            return 0;
        if (sp[i].off + sp[i].len > at)
            return 1;
    }
    return 0;
}

/* Split every text fragment at each occurrence of each special token, longest
 * tokens first, as llama.cpp's tokenizer_st_partition does.  Control and
 * unknown tokens only take part when parse_special is set, and never where
 * they would overlap a `literal` span; user-defined tokens always do.
 * LSTRIP/RSTRIP tokens swallow neighbouring whitespace. */
static int partition(const ech_tokenizer *tk, const char *text, size_t len, int parse_special,
                     const ech_span *literal, size_t n_literal, frag_list *a, frag_list *b)
{
    a->n = 0;
    if (len && frag_push(a, -1, 0, len))
        return -1;
    for (uint32_t k = 0; k < tk->n_special; k++) {
        ech_token id = tk->special[k];
        unsigned type = tk->type[id];
        int controlled = type == ECH_TOKEN_CONTROL || type == ECH_TOKEN_UNKNOWN;
        if (!parse_special && controlled)
            continue;
        ech_str t = tk->text[id];
        b->n = 0;
        for (size_t f = 0; f < a->n; f++) {
            frag fr = a->v[f];
            if (fr.id >= 0 || fr.len < t.len) {
                if (frag_push(b, fr.id, fr.off, fr.len))
                    return -1;
                continue;
            }
            size_t base = fr.off, search = fr.off, end = fr.off + fr.len;
            while (search < end) {
                const char *m = memmem(text + search, end - search, t.ptr, t.len);
                if (!m)
                    break;
                size_t at = (size_t)(m - text), left = at - base;
                if (controlled && overlaps(literal, n_literal, at, t.len)) {
                    search = at + 1;   /* literal text: not a token here */
                    continue;
                }
                if (tk->attr[id] & TOK_ATTR_LSTRIP)
                    while (left > 0 && c_isspace(text[base + left - 1]))
                        left--;
                if (left && frag_push(b, -1, base, left))
                    return -1;
                if (frag_push(b, id, 0, 0))
                    return -1;
                base = at + t.len;
                if (tk->attr[id] & TOK_ATTR_RSTRIP)
                    while (base < end && c_isspace(text[base]))
                        base++;
                search = base;
            }
            if (base < end && frag_push(b, -1, base, end - base))
                return -1;
        }
        frag_list tmp = *a;
        *a = *b;
        *b = tmp;
    }
    return 0;
}

/* ---- entry point ------------------------------------------------------------ */

static void session_free(tok_session *s)
{
    free(s->buf);
    free(s->word);
    free(s->cp);
    free(s->fl);
    free(s->off);
    free(s->sym);
    free(s->heap);
    tok_pretok_free(&s->pt);
}

static ech_status run(const ech_tokenizer *tk, tok_session *s, const char *text, const frag_list *fl,
                      unsigned flags)
{
    const ech_tok_specials *sp = &tk->sp;
    int add = (flags & ECH_TOKENIZE_ADD_SPECIAL) != 0;
    ech_status st = ECH_OK;
    ech_token first = ECH_TOKEN_NULL, last = ECH_TOKEN_NULL;
    if (add) {
        if (tk->kind == ECH_TOK_WPM)
            first = sp->cls != ECH_TOKEN_NULL ? sp->cls : sp->bos, last = sp->sep;
        else
            first = sp->add_bos ? sp->bos : ECH_TOKEN_NULL, last = sp->add_eos ? sp->eos : ECH_TOKEN_NULL;
    }
    if (first != ECH_TOKEN_NULL && (st = ech_tokens_push(s->out, first)))
        return st;
    int prev_special = 1;   /* SPM: the first text, and text after a token, gets a space */
    for (size_t i = 0; i < fl->n; i++) {
        const frag *f = &fl->v[i];
        if (f->id >= 0) {
            st = ech_tokens_push(s->out, f->id);
            prev_special = 1;
        } else if (tk->kind == ECH_TOK_SPM) {
            st = tok_spm(s, text + f->off, f->len, sp->add_space_prefix && prev_special);
            prev_special = 0;
        } else if (tk->kind == ECH_TOK_BPE) {
            st = tok_bpe(s, text + f->off, f->len);
        } else {
            st = tok_wpm(s, text + f->off, f->len);
        }
        if (st)
            return st;
    }
    if (last != ECH_TOKEN_NULL && (st = ech_tokens_push(s->out, last)))
        return st;
    return ECH_OK;
}

ech_status ech_tokenize_spans(const ech_tokenizer *tk, const char *text, size_t len, unsigned flags,
                              const ech_span *literal, size_t n_literal, ech_tokens *out, ech_error *err)
{
    if (!tk || !out || (!text && len) || (!literal && n_literal))
        return ech_error_set(err, ECH_ERR_INVALID, "ech_tokenize: bad arguments");
    if (len >= UINT32_MAX / 8)
        return ech_error_set(err, ECH_ERR_RANGE, "ech_tokenize: %zu bytes is too long", len);
    for (size_t i = 0; i < n_literal; i++)
        if (literal[i].off > len || literal[i].len > len - literal[i].off ||
            (i && literal[i].off < literal[i - 1].off + literal[i - 1].len))
            return ech_error_set(err, ECH_ERR_INVALID, "ech_tokenize: literal spans must be sorted, "
                                 "disjoint and inside the text");
    frag_list a = {0}, b = {0};
    tok_session s = {.tk = tk, .out = out};
    size_t n0 = out->n;
    ech_status st = ECH_OK;
    if (partition(tk, text, len, (flags & ECH_TOKENIZE_PARSE_SPECIAL) != 0, literal, n_literal, &a, &b))
        st = ECH_ERR_NOMEM;
    else
        st = run(tk, &s, text, &a, flags);
    free(a.v);
    free(b.v);
    session_free(&s);
    if (st) {
        out->n = n0;
        return ech_error_set(err, st, "tokenize: %s", ech_strerror(st));
    }
    return ECH_OK;
}

ech_status ech_tokenize(const ech_tokenizer *tk, const char *text, size_t len, unsigned flags,
                        ech_tokens *out, ech_error *err)
{
    return ech_tokenize_spans(tk, text, len, flags, NULL, 0, out, err);
}
