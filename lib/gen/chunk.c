/* chunk.c - split a long text into chunks of whole words that fit a model. */
#include "config.h"
#include "gen/embed.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

typedef struct word {
    size_t off, len;
    uint32_t n_tok;
} word;

static ech_status count_tokens(const ech_tokenizer *tk, const char *s, size_t n, uint32_t *out, ech_error *err)
{
    ech_tokens t = {0};
    ech_status st = ech_tokenize(tk, s, n, 0, &t, err);
    *out = t.n > UINT32_MAX ? UINT32_MAX : (uint32_t)t.n;
    ech_tokens_free(&t);
    return st;
}

/* Length of the UTF-8 sequence that starts with byte c (1 for a stray byte). */
static size_t utf8_len(unsigned char c)
{
    return c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xC0 && c < 0xE0 ? 2 : 1;
}

/* Append the words of text to *ws; a word of more than max_tokens tokens
 * goes in as pieces cut between characters. */
static ech_status split_words(const ech_tokenizer *tk, const char *text, size_t len, uint32_t max_tokens, word **ws,
                              size_t *nw, ech_error *err)
{
    size_t cap = 0;
    *ws = NULL;
    *nw = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_space(text[i]))
            i++;
        if (i == len)
            break;
        size_t j = i;
        while (j < len && !is_space(text[j]))
            j++;
        /* [i, j) is a word; cut it when it is too long */
        size_t a = i;
        while (a < j) {
            uint32_t nt;
            size_t b = j;
            ech_status st = count_tokens(tk, text + a, b - a, &nt, err);
            if (st != ECH_OK)
                return st;
            while (nt > max_tokens) {
                /* at most max_tokens - 1 bytes (a byte is at most one token,
                 * plus one for a space prefix), whole characters, at least one */
                size_t want = max_tokens > 1 ? max_tokens - 1 : 1, e2 = a;
                while (e2 < b && e2 - a < want) {
                    size_t cl = utf8_len((unsigned char)text[e2]);
                    if (e2 > a && e2 + cl - a > want)
                        break;
                    e2 += cl > b - e2 ? b - e2 : cl;
                }
                if (e2 == b)
                    return ech_error_set(err, ECH_ERR_RANGE,
                                         "a character at byte %zu needs more than %u tokens", a, max_tokens);
                b = e2;
                if ((st = count_tokens(tk, text + a, b - a, &nt, err)) != ECH_OK)
                    return st;
            }
            if (*nw == cap) {
                size_t nc = cap ? 2 * cap : 64;
                word *p = realloc(*ws, nc * sizeof *p);
                if (!p)
                    return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
                *ws = p;
                cap = nc;
            }
            (*ws)[(*nw)++] = (word){a, b - a, nt};
            a = b;
        }
        i = j;
    }
    return ECH_OK;
}

ech_status ech_embed_chunks(const ech_tokenizer *tk, const char *text, size_t len, uint32_t max_tokens,
                            uint32_t overlap, ech_span **out, size_t *n_out, ech_error *err)
{
    *out = NULL;
    *n_out = 0;
    if (max_tokens == 0 || overlap >= max_tokens)
        return ech_error_set(err, ECH_ERR_INVALID, "chunks of %u tokens cannot overlap by %u", max_tokens, overlap);
    word *ws;
    size_t nw;
    ech_status st = split_words(tk, text, len, max_tokens, &ws, &nw, err);
    ech_span *spans = NULL;
    size_t ns = 0, cap = 0;
    size_t i = 0;
    while (st == ECH_OK && i < nw) {
        /* the words that fit by their own counts, then the exact count of
         * the span (tokens can merge or split across words): drop words
         * from the end until it fits */
        size_t j = i;
        uint64_t sum = 0;
        while (j < nw && sum + ws[j].n_tok <= max_tokens)
            sum += ws[j++].n_tok;
        if (j == i)
            j = i + 1;   /* one word, already cut to fit */
        uint32_t nt = 0;
        for (;;) {
            if ((st = count_tokens(tk, text + ws[i].off, ws[j - 1].off + ws[j - 1].len - ws[i].off, &nt, err)))
                break;
            if (nt <= max_tokens || j == i + 1)
                break;
            j--;
        }
        if (st != ECH_OK)
            break;
        if (nt > max_tokens) {
            st = ech_error_set(err, ECH_ERR_RANGE, "the text at byte %zu cannot be cut into chunks of %u tokens",
                               ws[i].off, max_tokens);
            break;
        }
        if (nt == 0)
            goto next;   /* nothing the model would see (control characters) */
        if (ns == cap) {
            size_t nc = cap ? 2 * cap : 16;
            ech_span *p = realloc(spans, nc * sizeof *p);
            if (!p) {
                st = ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
                break;
            }
            spans = p;
            cap = nc;
        }
        spans[ns++] = (ech_span){ws[i].off, ws[j - 1].off + ws[j - 1].len - ws[i].off};
    next:
        if (j == nw)
            break;
        /* the next chunk starts with the last words of this one that make
         * up at most `overlap` tokens, and always after this one's start */
        size_t k = j;
        uint64_t acc = 0;
        while (k - 1 > i && acc + ws[k - 1].n_tok <= overlap)
            acc += ws[--k].n_tok;
        i = k;
    }
    free(ws);
    if (st != ECH_OK) {
        free(spans);
        return st;
    }
    *out = spans;
    *n_out = ns;
    return ECH_OK;
}
