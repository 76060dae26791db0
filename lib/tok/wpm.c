/* wpm.c - WordPiece (BERT) as llama.cpp runs it.
 *
 * Normalisation: every code point is replaced by the first code point of
 * its NFD (which drops the accent of a precomposed letter) and lowercased;
 * whitespace ends a word; control characters, NUL and U+FFFD vanish;
 * punctuation, ASCII symbols and CJK ideographs are words of their own.
 * Then each word, with "▁" in front (the GGUF spelling of a word start;
 * "##" continuations are stored without a mark), is covered greedily by the
 * longest tokens; a word that cannot be covered becomes [UNK].
 */
#include "config.h"

#include "tok/session.h"

#include <string.h>

#include "tok/unicode.h"

static int is_cjk(uint32_t c)
{
    /* BERT's _is_chinese_char ranges; 0x2B920 where the standard says 0x2B820,
     * as in the Hugging Face Rust code llama.cpp follows */
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Cover s->word[0..n) (which starts with "▁") by longest matches. */
static ech_status wpm_word(tok_session *s, size_t n)
{
    const ech_tokenizer *tk = s->tk;
    if (n <= 3)
        return ECH_OK;   /* only the mark: an empty word */
    size_t before = s->out->n;
    for (size_t i = 0; i < n;) {
        size_t j = i + tk->max_token_len + 1 < n ? i + tk->max_token_len + 1 : n;
        ech_token id = ECH_TOKEN_NULL;
        for (; j > i; j--)
            if ((id = tok_lookup(tk, s->word + i, j - i)) != ECH_TOKEN_NULL)
                break;
        if (id == ECH_TOKEN_NULL) {
            s->out->n = before;   /* one gap spoils the whole word */
            break;
        }
        if (ech_tokens_push(s->out, id))
            return ECH_ERR_NOMEM;
        i = j;
    }
    if (s->out->n == before && ech_tokens_push(s->out, tk->sp.unk))
        return ECH_ERR_NOMEM;
    return ECH_OK;
}

ech_status tok_wpm(tok_session *s, const char *text, size_t len)
{
    /* a word is at most 4 bytes per input byte, plus the mark */
    if (tok_reserve((void **)&s->word, &s->cap_word, 4 * len + 8, 1))
        return ECH_ERR_NOMEM;
    const uint8_t *t = (const uint8_t *)text;
    size_t n = 3;
    memcpy(s->word, "\xe2\x96\x81", 3);
    ech_status st;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        i += ech_ucd_decode_lax(t + i, len - i, &c);
        c = ech_ucd_nfd_first(c);
        unsigned f = ech_ucd_flags(c), cat = f & ECH_UCAT_MASK;
        if (f & ECH_UFLAG_WS) {
            if ((st = wpm_word(s, n)))
                return st;
            n = 3;
            continue;
        }
        if (c == 0 || c == 0xFFFD || cat == ECH_UCAT_C)
            continue;
        uint8_t enc[4];
        size_t l = ech_ucd_encode_lax(ech_ucd_tolower(c), enc);
        if (cat == ECH_UCAT_P || (c < 0x7F && cat == ECH_UCAT_S) || is_cjk(c)) {
            if ((st = wpm_word(s, n)))
                return st;
            memcpy(s->word + 3, enc, l);
            if ((st = wpm_word(s, 3 + l)))
                return st;
            n = 3;
        } else {
            memcpy(s->word + n, enc, l);
            n += l;
        }
    }
    return wpm_word(s, n);
}
