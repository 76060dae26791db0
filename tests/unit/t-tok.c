/* t-tok.c - unit tests for lib/tok: Unicode tables, SPM/BPE/WPM on small
 * vocabularies built here, special tokens, detokenizing, the streaming
 * detokenizer, and random bytes (no crash, deterministic, ids in range).
 * With $ECH_SHARED set, the random-bytes test also runs on the real vocabs.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ech.h"
#include "tap.h"
#include "tok/unicode.h"

/* ---- helpers ------------------------------------------------------------ */

static ech_tokenizer *build(ech_gguf_writer *w)
{
    uint8_t *buf;
    size_t size;
    ech_error err;
    ech_gguf *g;
    ech_tokenizer *tk = NULL;
    if (ech_gguf_writer_write_mem(w, &buf, &size, &err)) {
        printf("# write_mem: %s\n", err.msg);
        return NULL;
    }
    if (ech_gguf_parse(buf, size, &g, &err) == ECH_OK) {
        if (ech_tokenizer_load(g, &tk, &err))
            printf("# load: %s\n", err.msg);
        ech_gguf_close(g);
    }
    free(buf);
    ech_gguf_writer_free(w);
    return tk;
}

static char *ids_str(const ech_tokens *t)
{
    static char buf[1024];
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < t->n && n < sizeof buf - 16; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, i ? " %d" : "%d", t->ids[i]);
    return buf;
}

static const char *tok(const ech_tokenizer *tk, const char *text, unsigned flags)
{
    ech_tokens t = {0};
    ech_error err;
    if (ech_tokenize(tk, text, strlen(text), flags, &t, &err)) {
        ech_tokens_free(&t);
        return "(error)";
    }
    const char *s = ids_str(&t);
    ech_tokens_free(&t);
    return s;
}

static const char *detok(const ech_tokenizer *tk, const ech_token *ids, size_t n, unsigned flags)
{
    static char out[256];
    ech_buf b = {0};
    if (ech_detokenize(tk, ids, n, flags, &b, NULL)) {
        ech_buf_free(&b);
        return "(error)";
    }
    snprintf(out, sizeof out, "%s", b.data ? b.data : "");
    ech_buf_free(&b);
    return out;
}

/* ---- Unicode tables -------------------------------------------------------- */

static void test_unicode(void)
{
    is_str(ech_tokenizer_unicode_version(), "15.0.0", "tables come from Unicode 15.0.0");
    is_int(ech_ucd_cat('a'), ECH_UCAT_L, "a is a letter");
    is_int(ech_ucd_cat(0x4E2D), ECH_UCAT_L, "U+4E2D (CJK) is a letter");
    is_int(ech_ucd_cat('7'), ECH_UCAT_N, "7 is a number");
    is_int(ech_ucd_cat(0x0663), ECH_UCAT_N, "U+0663 ARABIC-INDIC THREE is a number");
    is_int(ech_ucd_cat(0x00BD), ECH_UCAT_N, "U+00BD one half is a number (No)");
    is_int(ech_ucd_cat('!'), ECH_UCAT_P, "! is punctuation");
    is_int(ech_ucd_cat('$'), ECH_UCAT_S, "$ is a symbol");
    is_int(ech_ucd_cat(0x0301), ECH_UCAT_M, "U+0301 is a mark");
    is_int(ech_ucd_cat(0x200D), ECH_UCAT_C, "ZWJ is a format control");
    is_int(ech_ucd_cat(0x0378), ECH_UCAT_UNASSIGNED, "U+0378 is unassigned");
    is_int(ech_ucd_cat(0x20000), ECH_UCAT_L, "U+20000 (CJK ext B, a range in UnicodeData) is a letter");
    is_int(ech_ucd_cat(0x10FFFF), ECH_UCAT_UNASSIGNED, "U+10FFFF is a noncharacter");
    is_int(ech_ucd_cat(0x110000), ECH_UCAT_UNASSIGNED, "beyond U+10FFFF reads as unassigned");
    ok(ech_ucd_is_ws(' ') && ech_ucd_is_ws('\t') && ech_ucd_is_ws(0x0B) && ech_ucd_is_ws(0x3000) &&
       ech_ucd_is_ws(0x85) && ech_ucd_is_ws(0xA0), "whitespace set");
    ok(!ech_ucd_is_ws(0x1C) && !ech_ucd_is_ws(0x200B) && !ech_ucd_is_ws(0x180E),
       "U+001C, ZWSP and U+180E are not whitespace");
    is_int(ech_ucd_tolower('Q'), 'q', "tolower ASCII");
    is_int(ech_ucd_tolower(0x0130), 'i', "tolower U+0130");
    is_int(ech_ucd_tolower(0x03A3), 0x03C3, "tolower Sigma");
    is_int(ech_ucd_tolower(0x10400), 0x10428, "tolower Deseret");
    is_int(ech_ucd_tolower(0x00DF), 0x00DF, "sharp s has no simple lowercase");
    is_int(ech_ucd_nfd_first(0x00E9), 'e', "NFD(e acute) starts with e");
    is_int(ech_ucd_nfd_first(0x1E69), 's', "NFD(s with dots) starts with s");
    is_int(ech_ucd_nfd_first(0xAC01), 0x1100, "NFD(Hangul GAG) starts with jamo KIYEOK");
    is_int(ech_ucd_nfd_first('x'), 'x', "NFD(x) is x");
    uint32_t cp;
    is_int(ech_ucd_decode_lax((const uint8_t *)"\xC0\x80", 2, &cp), 2, "lax decode accepts overlong");
    is_int(cp, 0, "overlong NUL is 0");
    is_int(ech_ucd_decode_lax((const uint8_t *)"\xE2\x82", 2, &cp), 1, "truncated sequence: one byte");
    is_int(cp, 0xFFFD, "truncated sequence: U+FFFD");
    is_int(ech_ucd_decode_lax((const uint8_t *)"\x80", 1, &cp), 1, "stray continuation: one byte");
}

/* ---- a small SentencePiece vocabulary ------------------------------------------ */

static ech_tokenizer *spm_vocab(void)
{
    static char bytes[256][8];
    const char *tokens[300];
    float scores[300];
    int32_t types[300];
    uint32_t n = 0;
#define ADD(t, s, ty) (tokens[n] = (t), scores[n] = (s), types[n] = (ty), n++)
    ADD("<unk>", 0, ECH_TOKEN_UNKNOWN);
    ADD("<s>", 0, ECH_TOKEN_CONTROL);
    ADD("</s>", 0, ECH_TOKEN_CONTROL);
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        ADD(bytes[b], 0, ECH_TOKEN_BYTE);
    }
    ADD("\xe2\x96\x81", -1, ECH_TOKEN_NORMAL);          /* 259 ▁ */
    ADD("a", -2, ECH_TOKEN_NORMAL);                     /* 260 */
    ADD("b", -3, ECH_TOKEN_NORMAL);                     /* 261 */
    ADD("ab", -4, ECH_TOKEN_NORMAL);                    /* 262 */
    ADD("\xe2\x96\x81" "a", -5, ECH_TOKEN_NORMAL);      /* 263 ▁a */
    ADD("\xe2\x96\x81" "ab", -6, ECH_TOKEN_NORMAL);     /* 264 ▁ab */
    ADD("<|user|>", 0, ECH_TOKEN_CONTROL);              /* 265 */
    ADD("<x>", 0, ECH_TOKEN_USER_DEFINED);              /* 266 */
#undef ADD
    ech_gguf_writer *w = ech_gguf_writer_new();
    ech_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    ech_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", tokens, n);
    ech_gguf_writer_set_array(w, "tokenizer.ggml.scores", ECH_GGUF_F32, scores, n);
    ech_gguf_writer_set_array(w, "tokenizer.ggml.token_type", ECH_GGUF_I32, types, n);
    ech_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    return build(w);
}

static void test_spm(void)
{
    ech_tokenizer *tk = spm_vocab();
    if (!ok(tk != NULL, "SPM vocab builds")) {
        tap_skip(18, "no vocab");
        return;
    }
    is_str(ech_tokenizer_model(tk), "llama", "model name");
    is_int(ech_tokenizer_n_vocab(tk), 267, "vocab size");
    /* ab (-4) beats ▁a (-5); then ▁ + ab form ▁ab */
    is_str(tok(tk, "ab", 0), "264", "merge by score: ab then ▁ab");
    is_str(tok(tk, "ab", ECH_TOKENIZE_ADD_SPECIAL), "1 264", "BOS added");
    is_str(tok(tk, "a b", 0), "263 259 261", "spaces become ▁");
    is_str(tok(tk, "c\xc3\xa9", 0), "259 102 198 172", "byte fallback <0xNN>");
    is_str(tok(tk, "", 0), "", "empty text, no ids");
    is_str(tok(tk, "", ECH_TOKENIZE_ADD_SPECIAL), "1", "empty text with BOS");
    is_str(tok(tk, "a<x>b", 0), "263 266 259 261", "user-defined token always split out; space prefix after it");
    is_str(tok(tk, "a<|user|>", 0), "263 63 127 120 118 104 117 127 65",
           "control token text is plain text by default");
    is_str(tok(tk, "a<|user|>", ECH_TOKENIZE_PARSE_SPECIAL), "263 265", "--parse-special gives the token");

    ech_token ids[] = {1, 263, 259, 261, 265, 264};
    is_str(detok(tk, ids, 6, 0), "a bab", "detok: BOS hidden, leading space dropped, after a special too");
    is_str(detok(tk, ids, 6, ECH_DETOK_SPECIAL), "<s>a b<|user|>ab", "detok with specials");
    is_str(detok(tk, ids + 1, 3, ECH_DETOK_KEEP_SPACE), " a b", "detok keeping the space");
    ech_token bad = 9999;
    ech_buf b = {0};
    is_int(ech_detokenize(tk, &bad, 1, 0, &b, NULL), ECH_ERR_RANGE, "detok of an unknown id fails");
    ech_buf_free(&b);

    /* streaming: € is E2 82 AC as three byte tokens */
    ech_detok_stream s;
    ech_detok_stream_init(&s, tk, 0);
    ech_token euro[] = {3 + 0xE2, 3 + 0x82, 3 + 0xAC, 3 + 0xFF, 3 + 0xE2, 260};
    int held = 1;
    for (int i = 0; i < 6; i++) {
        size_t before = b.len;
        ech_detok_stream_push(&s, euro[i], &b);
        if (i < 2 && b.len != before)
            held = 0;
    }
    ech_detok_stream_flush(&s, &b);
    ok(held, "stream holds back an unfinished sequence");
    is_str(b.data, "\xe2\x82\xac\xef\xbf\xbd\xef\xbf\xbd" "a", "stream: €, U+FFFD for 0xFF and the cut E2, then a");
    ok(ech_utf8_valid((const uint8_t *)b.data, b.len), "stream output is valid UTF-8");
    ech_buf_free(&b);
    ech_tokenizer_free(tk);
}

/* ---- a small byte-level BPE vocabulary ------------------------------------ */

static ech_tokenizer *bpe_vocab(const char *pre)
{
    /* all 256 stand-in characters, then merges */
    static char chars[256][4];
    const char *tokens[300];
    int32_t types[300];
    uint32_t n = 0;
    for (unsigned b = 0; b < 256; b++) {
        unsigned cp = b;
        if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE))) {
            unsigned k = 0;
            for (unsigned x = 0; x < b; x++)
                k += !((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE));
            cp = 256 + k;
        }
        ech_utf8_encode(cp, (uint8_t *)chars[b]);
        tokens[n] = chars[b];
        types[n++] = ECH_TOKEN_NORMAL;
    }
    tokens[n] = "\xc4\xa0h", types[n++] = ECH_TOKEN_NORMAL;     /* 256 Ġh */
    tokens[n] = "\xc4\xa0hi", types[n++] = ECH_TOKEN_NORMAL;    /* 257 Ġhi */
    tokens[n] = "hi", types[n++] = ECH_TOKEN_NORMAL;            /* 258 */
    tokens[n] = "<|endoftext|>", types[n++] = ECH_TOKEN_NORMAL; /* 259, made control by its text */
    tokens[n] = "12", types[n++] = ECH_TOKEN_NORMAL;            /* 260 */
    const char *merges[] = {"\xc4\xa0 h", "h i", "\xc4\xa0h i", "1 2", "bogus"};
    ech_gguf_writer *w = ech_gguf_writer_new();
    ech_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    if (pre)
        ech_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    ech_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", tokens, n);
    ech_gguf_writer_set_array(w, "tokenizer.ggml.token_type", ECH_GGUF_I32, types, n);
    ech_gguf_writer_set_str_array(w, "tokenizer.ggml.merges", merges, 5);
    ech_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 259);
    return build(w);
}

static void test_bpe(void)
{
    ech_tokenizer *tk = bpe_vocab("gpt-2");
    if (!ok(tk != NULL, "BPE vocab builds")) {
        tap_skip(10, "no vocab");
        return;
    }
    is_str(ech_tokenizer_pre(tk), "gpt-2", "pre-tokenizer name");
    /* "hi hi": words "hi", " hi"; in " hi" Ġ+h (rank 0) goes before h+i (rank 1) */
    is_str(tok(tk, "hi hi", 0), "258 257", "merges by rank within words");
    is_str(tok(tk, "12345", 0), "260 51 52 53", "numbers: one word, 1 2 merge");
    is_str(tok(tk, "\n", 0), "10", "newline is byte 0x0A's stand-in (U+010A)");
    is_int(ech_tokenizer_type(tk, 259), ECH_TOKEN_CONTROL, "<|endoftext|> is made a control token");
    ok(ech_tokenizer_is_eog(tk, 259), "and an end-of-generation token");
    is_str(tok(tk, "<|endoftext|>", ECH_TOKENIZE_PARSE_SPECIAL), "259", "parse-special finds it");
    ech_token ids[] = {258, 257, 10, 259};
    is_str(detok(tk, ids, 4, 0), "hi hi\n", "BPE detok undoes the byte map");
    is_str(detok(tk, ids, 4, ECH_DETOK_SPECIAL), "hi hi\n<|endoftext|>", "BPE detok with specials");
    ech_tokenizer_free(tk);

    tk = bpe_vocab("no-such-pre");
    ok(tk == NULL, "an unknown pre-tokenizer is refused");
    ech_tokenizer_free(tk);
    tk = bpe_vocab("starcoder");
    ok(tk && !strcmp(tok(tk, "12", 0), "49 50"), "starcoder splits digits before merging");
    ech_tokenizer_free(tk);
}

/* ---- WordPiece -------------------------------------------------------------- */

static void test_wpm(void)
{
    const char *tokens[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "\xe2\x96\x81hello", "\xe2\x96\x81" "cafe",
                            "\xe2\x96\x81" "un", "aff", "able", "\xe2\x96\x81,", "\xe2\x96\x81\xe4\xb8\xad"};
    int32_t types[] = {3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    ech_gguf_writer *w = ech_gguf_writer_new();
    ech_gguf_writer_set_str(w, "tokenizer.ggml.model", "bert");
    ech_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", tokens, 11);
    ech_gguf_writer_set_array(w, "tokenizer.ggml.token_type", ECH_GGUF_I32, types, 11);
    ech_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 1);
    ech_gguf_writer_set_u32(w, "tokenizer.ggml.cls_token_id", 2);
    ech_gguf_writer_set_u32(w, "tokenizer.ggml.seperator_token_id", 3);
    ech_tokenizer *tk = build(w);
    if (!ok(tk != NULL, "WPM vocab builds")) {
        tap_skip(5, "no vocab");
        return;
    }
    is_str(tok(tk, "HELLO, Caf\xc3\xa9", 0), "4 9 5", "lowercase, punctuation split, accent stripped");
    is_str(tok(tk, "unaffable", 0), "6 7 8", "## continuation pieces");
    is_str(tok(tk, "unaffablex hello", ECH_TOKENIZE_ADD_SPECIAL), "2 1 4 3", "[UNK] for a word that cannot be covered; CLS/SEP");
    is_str(tok(tk, "\xe4\xb8\xad\xe4\xb8\xad", 0), "10 10", "CJK ideographs are words of their own");
    ech_token ids[] = {2, 4, 9, 6, 7, 8, 3};
    is_str(detok(tk, ids, 7, 0), "hello , unaffable", "WPM detok joins pieces");
    ech_tokenizer_free(tk);
}

/* ---- random bytes ------------------------------------------------------------ */

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fuzz_one(const ech_tokenizer *tk, const char *name)
{
    static const uint8_t spice[] = {0x00, ' ', ' ', '\n', '\t', '\'', 's', 'a', 'A', '1', '<', '|',
                                    '>', 0x80, 0xBF, 0xC0, 0xC3, 0xA9, 0xE2, 0x96, 0x81, 0xED, 0xA0,
                                    0xF0, 0x9F, 0x98, 0xF4, 0x90, 0xF7, 0xFF};
    int all_ok = 1, same = 1, in_range = 1;
    size_t n_vocab = ech_tokenizer_n_vocab(tk);
    uint8_t text[512];
    for (int iter = 0; iter < 300; iter++) {
        size_t len = (size_t)(rng() % sizeof text);
        for (size_t i = 0; i < len; i++)
            text[i] = rng() % 3 ? spice[rng() % sizeof spice] : (uint8_t)rng();
        unsigned flags = (unsigned)(rng() & 3);
        ech_tokens a = {0}, b = {0};
        if (ech_tokenize(tk, (const char *)text, len, flags, &a, NULL) ||
            ech_tokenize(tk, (const char *)text, len, flags, &b, NULL))
            all_ok = 0;
        if (a.n != b.n || (a.n && memcmp(a.ids, b.ids, a.n * sizeof *a.ids)))
            same = 0;
        for (size_t i = 0; i < a.n; i++)
            if (a.ids[i] < 0 || (size_t)a.ids[i] >= n_vocab)
                in_range = 0;
        ech_buf out = {0};
        if (ech_detokenize(tk, a.ids, a.n, ECH_DETOK_SPECIAL, &out, NULL))
            all_ok = 0;
        ech_detok_stream s;
        ech_detok_stream_init(&s, tk, 0);
        ech_buf st = {0};
        for (size_t i = 0; i < a.n; i++)
            ech_detok_stream_push(&s, a.ids[i], &st);
        ech_detok_stream_flush(&s, &st);
        if (!ech_utf8_valid((const uint8_t *)st.data, st.len))
            all_ok = 0;
        ech_buf_free(&out);
        ech_buf_free(&st);
        ech_tokens_free(&a);
        ech_tokens_free(&b);
    }
    ok(all_ok, "%s: random bytes tokenize and detokenize without error", name);
    ok(same, "%s: tokenizing is deterministic", name);
    ok(in_range, "%s: every id is in the vocabulary", name);
}

static void test_fuzz(void)
{
    ech_tokenizer *tk = spm_vocab();
    if (tk)
        fuzz_one(tk, "small SPM");
    ech_tokenizer_free(tk);
    tk = bpe_vocab("default");
    if (tk)
        fuzz_one(tk, "small BPE");
    ech_tokenizer_free(tk);

    const char *shared = getenv("ECH_SHARED");
    static const char *const vocabs[] = {"llama-spm", "bert-bge", "gpt-2", "falcon", "deepseek-llm",
                                         "deepseek-coder", "starcoder", "llama3", "qwen3"};
    for (size_t i = 0; i < sizeof vocabs / sizeof vocabs[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", shared ? shared : "", vocabs[i]);
        if (!shared || ech_tokenizer_open(path, &tk, NULL)) {
            tap_skip(3, "no $ECH_SHARED vocab");
            continue;
        }
        fuzz_one(tk, vocabs[i]);
        ech_tokenizer_free(tk);
    }
}

int main(void)
{
    test_unicode();
    test_spm();
    test_bpe();
    test_wpm();
    test_fuzz();
    return done_testing();
}
