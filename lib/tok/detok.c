/* detok.c - ids back to bytes, whole or as a UTF-8-safe stream.
 *
 * Each token's bytes were worked out at load time (tk->piece): byte tokens
 * are their byte, "▁" is a space, GPT-2 stand-in characters are their
 * bytes.  What is left to decide here is which tokens show (control and
 * unknown tokens only with ECH_DETOK_SPECIAL) and the leading-space rule:
 * SPM put a "▁" in front of the text and after every special token, and
 * WordPiece in front of every word, so that space goes again.
 */
#include "config.h"

#include "tok/vocab.h"

#include "core/utf8.h"

static int is_special_type(unsigned t)
{
    return t == ECH_TOKEN_CONTROL || t == ECH_TOKEN_UNKNOWN || t == ECH_TOKEN_USER_DEFINED;
}

/* The bytes `id` contributes; *word_start tracks the leading-space rule. */
static ech_str piece_of(const ech_tokenizer *tk, ech_token id, unsigned flags, bool *word_start)
{
    unsigned type = tk->type[id];
    ech_str p = tk->piece[id];
    if (is_special_type(type)) {
        *word_start = true;
        if (!(flags & ECH_DETOK_SPECIAL) && type != ECH_TOKEN_USER_DEFINED)
            return (ech_str){"", 0};
        return p;
    }
    bool strip = *word_start && !(flags & ECH_DETOK_KEEP_SPACE) &&
                 (tk->kind == ECH_TOK_WPM || (tk->kind == ECH_TOK_SPM && tk->sp.add_space_prefix));
    if (p.len == 0)
        return p;
    *word_start = false;
    if (strip && p.ptr[0] == ' ') {
        p.ptr++;
        p.len--;
    }
    return p;
}

ech_status ech_detokenize(const ech_tokenizer *tk, const ech_token *ids, size_t n, unsigned flags,
                          ech_buf *out, ech_error *err)
{
    bool word_start = true;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= tk->n_vocab)
            return ech_error_set(err, ECH_ERR_RANGE, "token id %d is not in the vocabulary (0..%u)",
                                 (int)ids[i], tk->n_vocab - 1);
        ech_str p = piece_of(tk, ids[i], flags, &word_start);
        if (p.len && ech_buf_append(out, p.ptr, p.len))
            return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    }
    return ECH_OK;
}

/* ---- streaming ------------------------------------------------------------- */

void ech_detok_stream_init(ech_detok_stream *s, const ech_tokenizer *tk, unsigned flags)
{
    s->tk = tk;
    s->flags = flags;
    s->at_word_start = true;
    s->n_pending = 0;
}

static const char REPLACEMENT[] = "\xef\xbf\xbd";

/* Expected length of a sequence starting with b: 1-4, or 0 for a byte that
 * cannot start one. */
static unsigned seq_len(uint8_t b)
{
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        return 2;
    if (b >= 0xE0 && b <= 0xEF)
        return 3;
    if (b >= 0xF0 && b <= 0xF4)
        return 4;
    return 0;
}

/* Could pending[0..n) still grow into a valid sequence? (checks the second
 * byte's narrowed range for E0, ED, F0, F4 as RFC 3629 does) */
static bool viable_prefix(const uint8_t *p, unsigned n)
{
    for (unsigned i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return false;
    if (n >= 2) {
        uint8_t a = p[0], b = p[1];
        if ((a == 0xE0 && b < 0xA0) || (a == 0xED && b > 0x9F) || (a == 0xF0 && b < 0x90) ||
            (a == 0xF4 && b > 0x8F))
            return false;
    }
    return true;
}

static ech_status stream_bytes(ech_detok_stream *s, const uint8_t *p, size_t n, ech_buf *out)
{
    for (size_t i = 0; i < n;) {
        if (s->n_pending == 0) {
            /* fast path: copy the longest valid run straight through */
            size_t j = i;
            while (j < n) {
                size_t l = ech_utf8_decode(p + j, n - j, NULL);
                if (!l)
                    break;
                j += l;
            }
            if (j > i && ech_buf_append(out, p + i, j - i))
                return ECH_ERR_NOMEM;
            i = j;
            if (i == n)
                break;
        }
        uint8_t b = p[i++];
        if (s->n_pending == 0) {
            if (seq_len(b) < 2) {
                if (ech_buf_append(out, REPLACEMENT, 3))
                    return ECH_ERR_NOMEM;
                continue;
            }
            s->pending[s->n_pending++] = b;
            continue;
        }
        s->pending[s->n_pending++] = b;
        if (!viable_prefix(s->pending, s->n_pending)) {
            /* the lead byte was a dead end; the new byte gets a fresh look */
            s->n_pending--;
            if (ech_buf_append(out, REPLACEMENT, 3))
                return ECH_ERR_NOMEM;
            s->n_pending = 0;
            i--;
            continue;
        }
        if (s->n_pending == seq_len(s->pending[0])) {
            if (ech_buf_append(out, s->pending, s->n_pending))
                return ECH_ERR_NOMEM;
            s->n_pending = 0;
        }
    }
    return ECH_OK;
}

ech_status ech_detok_stream_push(ech_detok_stream *s, ech_token id, ech_buf *out)
{
    if (id < 0 || (uint32_t)id >= s->tk->n_vocab)
        return ECH_ERR_RANGE;
    ech_str p = piece_of(s->tk, id, s->flags, &s->at_word_start);
    return stream_bytes(s, (const uint8_t *)p.ptr, p.len, out);
}

ech_status ech_detok_stream_flush(ech_detok_stream *s, ech_buf *out)
{
    if (s->n_pending) {
        s->n_pending = 0;
        if (ech_buf_append(out, REPLACEMENT, 3))
            return ECH_ERR_NOMEM;
    }
    s->at_word_start = true;
    return ECH_OK;
}
