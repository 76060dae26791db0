/* vocab.c - build an ech_tokenizer from the tokenizer.* keys of a GGUF file.
 *
 * Everything is copied into the tokenizer's arena, so the GGUF handle may be
 * closed afterwards.  The rules for defaults and overrides (special ids per
 * model, add_bos per pre-tokenizer, end-of-generation tokens found by their
 * text) are llama.cpp's, since they decide which ids come out.
 */
#include "config.h"

#include "tok/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "tok/unicode.h"

static const char *const SPACE_MARK = "\xe2\x96\x81";   /* U+2581, SentencePiece's space */

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t c = 16;
    while (c < n && c < (1u << 31))
        c <<= 1;
    return c;
}

/* ---- the text -> id table --------------------------------------------- */

typedef struct builder {
    ech_tokenizer *tk;
    uint32_t cap_text;     /* capacity of text[] and text_hash[] (heap while building) */
} builder;

static ech_status slots_init(ech_tokenizer *tk, uint64_t expected)
{
    uint32_t cap = pow2_at_least(expected * 2 + 16);
    tk->slots = malloc((size_t)cap * sizeof *tk->slots);
    if (!tk->slots)
        return ECH_ERR_NOMEM;
    memset(tk->slots, 0xFF, (size_t)cap * sizeof *tk->slots);
    tk->slot_mask = cap - 1;
    return ECH_OK;
}

/* Insert id (whose text and hash are set); a later id with the same text
 * replaces the earlier one, as in llama.cpp's token_to_id map. */
static void slots_put(ech_tokenizer *tk, ech_token id)
{
    const ech_str *t = &tk->text[id];
    uint64_t h = tok_hash(t->ptr, t->len);
    tk->text_hash[id] = (uint32_t)h;
    for (uint32_t i = (uint32_t)(h >> 32) & tk->slot_mask;; i = (i + 1) & tk->slot_mask) {
        int32_t other = tk->slots[i];
        if (other < 0) {
            tk->slots[i] = id;
            return;
        }
        if (tk->text_hash[other] == (uint32_t)h && tk->text[other].len == t->len &&
            memcmp(tk->text[other].ptr, t->ptr, t->len) == 0) {
            tk->slots[i] = id;
            return;
        }
    }
}

static ech_status slots_rehash(ech_tokenizer *tk)
{
    free(tk->slots);
    ech_status st = slots_init(tk, tk->n_text);
    if (st)
        return st;
    for (uint32_t id = 0; id < tk->n_text; id++)
        slots_put(tk, (ech_token)id);
    return ECH_OK;
}

/* Id of s[0..n) among all strings, adding it as a merge-only string if new. */
static ech_status intern(builder *b, const char *s, size_t n, ech_token *out)
{
    ech_tokenizer *tk = b->tk;
    ech_token id = tok_lookup_any(tk, s, n);
    if (id != ECH_TOKEN_NULL) {
        *out = id;
        return ECH_OK;
    }
    if (tk->n_text >= INT32_MAX - 1)
        return ECH_ERR_RANGE;
    if (tk->n_text == b->cap_text) {
        uint32_t cap = b->cap_text * 2;
        ech_str *t = realloc(tk->text, (size_t)cap * sizeof *t);
        if (!t)
            return ECH_ERR_NOMEM;
        tk->text = t;
        uint32_t *h = realloc(tk->text_hash, (size_t)cap * sizeof *h);
        if (!h)
            return ECH_ERR_NOMEM;
        tk->text_hash = h;
        b->cap_text = cap;
    }
    char *copy = ech_arena_strndup(&tk->arena, s, n);
    if (!copy)
        return ECH_ERR_NOMEM;
    id = (ech_token)tk->n_text++;
    tk->text[id] = (ech_str){copy, n};
    if ((uint64_t)tk->n_text * 2 > (uint64_t)tk->slot_mask + 1) {
        ech_status st = slots_rehash(tk);
        if (st)
            return st;
    } else {
        slots_put(tk, id);
    }
    *out = id;
    return ECH_OK;
}

/* ---- BPE merges ----------------------------------------------------------- */

static ech_status load_merges(builder *b, const ech_gguf_array *arr, ech_error *err)
{
    ech_tokenizer *tk = b->tk;
    uint32_t cap = pow2_at_least(arr->n * 2 + 16);
    tk->merges = malloc((size_t)cap * sizeof *tk->merges);
    if (!tk->merges)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory for %u merges", cap);
    for (uint32_t i = 0; i < cap; i++)
        tk->merges[i] = (tok_merge){TOK_MERGE_EMPTY, 0, 0};
    tk->merge_mask = cap - 1;

    char *joined = NULL;
    size_t joined_cap = 0;
    ech_status st = ECH_OK;
    for (uint64_t r = 0; r < arr->n && r < INT32_MAX; r++) {
        const ech_str *m = &arr->strs[r];
        /* "left right", split at the first space after the first byte */
        const char *sp = m->len > 1 ? memchr(m->ptr + 1, ' ', m->len - 1) : NULL;
        if (!sp)
            continue;
        size_t ln = (size_t)(sp - m->ptr), rn = m->len - ln - 1;
        if (ln + rn > joined_cap) {
            joined_cap = (ln + rn) * 2;
            char *j = realloc(joined, joined_cap);
            if (!j) {
                st = ECH_ERR_NOMEM;
                break;
            }
            joined = j;
        }
        memcpy(joined, m->ptr, ln);
        memcpy(joined + ln, sp + 1, rn);
        ech_token l, rr, res;
        if ((st = intern(b, m->ptr, ln, &l)) || (st = intern(b, sp + 1, rn, &rr)) ||
            (st = intern(b, joined, ln + rn, &res)))
            break;
        uint64_t key = tok_merge_key(l, rr);
        uint64_t h = key * 0x9E3779B97F4A7C15ull;
        for (uint32_t i = (uint32_t)(h >> 40) & tk->merge_mask;; i = (i + 1) & tk->merge_mask) {
            tok_merge *slot = &tk->merges[i];
            if (slot->key == key)
                break;   /* the first (best) rank of a repeated merge stays */
            if (slot->key == TOK_MERGE_EMPTY) {
                *slot = (tok_merge){key, (int32_t)r, res};
                break;
            }
        }
    }
    free(joined);
    if (st)
        return ech_error_set(err, st, "loading merges: %s", ech_strerror(st));
    return ECH_OK;
}

/* ---- GPT-2 byte <-> printable character map ------------------------------ */

/* Bytes that are printable Latin-1 stand for themselves; the other 68 are
 * numbered from U+0100 up, in byte order. */
static uint32_t byte_to_cp(unsigned b)
{
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
        return b;
    unsigned n = 0;
    for (unsigned x = 0; x < b; x++)
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF)))
            n++;
    return 256 + n;
}

/* The byte a stand-in code point means, or -1. */
static int cp_to_byte(uint32_t cp)
{
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp < 256 || cp >= 256 + 68)
        return -1;
    unsigned n = 0;
    for (unsigned x = 0; x < 256; x++)
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) {
            if (n == cp - 256)
                return (int)x;
            n++;
        }
    return -1;
}

/* ---- pieces (what each token stands for, as bytes) ------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* "<0xNN>" -> NN, else -1 */
static int byte_token_value(ech_str t)
{
    if (t.len != 6 || memcmp(t.ptr, "<0x", 3) != 0 || t.ptr[5] != '>')
        return -1;
    int hi = hexval(t.ptr[3]), lo = hexval(t.ptr[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static ech_status make_piece(ech_tokenizer *tk, ech_token id)
{
    ech_str t = tk->text[id];
    unsigned type = tk->type[id];
    tk->piece[id] = (ech_str){"", 0};
    if (type == ECH_TOKEN_CONTROL || type == ECH_TOKEN_UNKNOWN || type == ECH_TOKEN_USER_DEFINED) {
        tk->piece[id] = t;
        return ECH_OK;
    }
    if (type == ECH_TOKEN_BYTE && tk->kind != ECH_TOK_BPE) {
        int v = byte_token_value(t);
        if (v >= 0) {
            char *p = ech_arena_alloc(&tk->arena, 1, 1);
            if (!p)
                return ECH_ERR_NOMEM;
            *p = (char)v;
            tk->piece[id] = (ech_str){p, 1};
        }
        return ECH_OK;
    }
    if (type != ECH_TOKEN_NORMAL)
        return ECH_OK;   /* unused, undefined: nothing, as in llama.cpp */

    char *p = ech_arena_alloc(&tk->arena, t.len + 1, 1);
    if (!p)
        return ECH_ERR_NOMEM;
    size_t n = 0;
    if (tk->kind == ECH_TOK_BPE) {
        /* undo the byte-to-character map; characters outside it stay UTF-8 */
        const uint8_t *s = (const uint8_t *)t.ptr;
        for (size_t i = 0; i < t.len;) {
            uint32_t cp;
            size_t l = ech_ucd_decode_lax(s + i, t.len - i, &cp);
            int b = cp_to_byte(cp);
            if (b >= 0) {
                p[n++] = (char)b;
            } else {
                memcpy(p + n, s + i, l);
                n += l;
            }
            i += l;
        }
    } else {
        for (size_t i = 0; i < t.len;) {
            if (t.len - i >= 3 && memcmp(t.ptr + i, SPACE_MARK, 3) == 0) {
                p[n++] = ' ';
                i += 3;
            } else {
                p[n++] = t.ptr[i++];
            }
        }
    }
    tk->piece[id] = (ech_str){p, n};
    return ECH_OK;
}

/* SPM merges may be run word by word (a "word" starting at a "▁" that follows
 * something else) when no token could span such a start: no token has a "▁"
 * preceded by anything but a run of "▁" from its own start. */
static bool spm_words_are_independent(const ech_tokenizer *tk)
{
    for (uint32_t i = 0; i < tk->n_vocab; i++) {
        ech_str t = tk->text[i];
        size_t lead = 0;
        while (lead + 3 <= t.len && memcmp(t.ptr + lead, SPACE_MARK, 3) == 0)
            lead += 3;
        for (size_t k = lead + 1; k + 3 <= t.len; k++)
            if (memcmp(t.ptr + k, SPACE_MARK, 3) == 0)
                return false;
    }
    return true;
}

/* ---- special tokens --------------------------------------------------------- */

static void read_id(const ech_gguf *g, const char *key, uint32_t n_vocab, ech_token *id)
{
    uint32_t v;
    if (ech_gguf_get_u32(g, key, &v) == ECH_OK && v < n_vocab)
        *id = (ech_token)v;   /* out-of-range ids keep the default, as llama.cpp does */
}

static bool text_is(const ech_str *t, const char *s)
{
    size_t n = strlen(s);
    return t->len == n && memcmp(t->ptr, s, n) == 0;
}

/* If *id is unset, take the token whose text is the first of `names` the
 * vocab has, and make it a control token.  (llama.cpp takes whichever its
 * hash map yields first; vocabs have at most one of each list.) */
static void find_by_text(ech_tokenizer *tk, ech_token *id, const char *const *names)
{
    if (*id != ECH_TOKEN_NULL)
        return;
    for (; *names; names++) {
        ech_token t = tok_lookup(tk, *names, strlen(*names));
        if (t != ECH_TOKEN_NULL) {
            *id = t;
            tk->type[t] = ECH_TOKEN_CONTROL;
            return;
        }
    }
}

static void mark_eog(ech_tokenizer *tk, ech_token id)
{
    if (id >= 0 && (uint32_t)id < tk->n_vocab)
        tk->eog[id] = 1;
}

static void setup_specials(ech_tokenizer *tk, const ech_gguf *g)
{
    ech_tok_specials *sp = &tk->sp;
    uint32_t n = tk->n_vocab;
    static const char *const eot_names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
        "<|endoftext|>", "<EOT>", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", NULL};
    static const char *const eom_names[] = {"<|eom_id|>", NULL};
    static const char *const pre_names[] = {"<|fim_prefix|>", "<fim-prefix>",
        "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>", NULL};
    static const char *const suf_names[] = {"<|fim_suffix|>", "<fim-suffix>",
        "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>", "<SUF>", NULL};
    static const char *const mid_names[] = {"<|fim_middle|>", "<fim-middle>",
        "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>", NULL};
    static const char *const pad_names[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL};
    static const char *const rep_names[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", NULL};
    static const char *const sep_names[] = {"<|file_sep|>", NULL};
    static const char *const eog_names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
        "<|endoftext|>", "<|eom_id|>", "<EOT>", NULL};

    read_id(g, "tokenizer.ggml.bos_token_id", n, &sp->bos);
    read_id(g, "tokenizer.ggml.eos_token_id", n, &sp->eos);
    read_id(g, "tokenizer.ggml.eot_token_id", n, &sp->eot);
    read_id(g, "tokenizer.ggml.eom_token_id", n, &sp->eom);
    read_id(g, "tokenizer.ggml.unknown_token_id", n, &sp->unk);
    read_id(g, "tokenizer.ggml.seperator_token_id", n, &sp->sep);
    read_id(g, "tokenizer.ggml.padding_token_id", n, &sp->pad);
    read_id(g, "tokenizer.ggml.mask_token_id", n, &sp->mask);
    read_id(g, "tokenizer.ggml.cls_token_id", n, &sp->cls);
    read_id(g, "tokenizer.ggml.fim_pre_token_id", n, &sp->fim_pre);
    read_id(g, "tokenizer.ggml.fim_suf_token_id", n, &sp->fim_suf);
    read_id(g, "tokenizer.ggml.fim_mid_token_id", n, &sp->fim_mid);
    read_id(g, "tokenizer.ggml.fim_pad_token_id", n, &sp->fim_pad);
    read_id(g, "tokenizer.ggml.fim_rep_token_id", n, &sp->fim_rep);
    read_id(g, "tokenizer.ggml.fim_sep_token_id", n, &sp->fim_sep);
    read_id(g, "tokenizer.ggml.prefix_token_id", n, &sp->fim_pre);
    read_id(g, "tokenizer.ggml.suffix_token_id", n, &sp->fim_suf);
    read_id(g, "tokenizer.ggml.middle_token_id", n, &sp->fim_mid);
    if (sp->cls == ECH_TOKEN_NULL && tk->kind == ECH_TOK_WPM)
        sp->cls = sp->bos;

    bool b;
    if (ech_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b) == ECH_OK)
        sp->add_bos = b;
    if (ech_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b) == ECH_OK)
        sp->add_eos = b;

    find_by_text(tk, &sp->eot, eot_names);
    find_by_text(tk, &sp->eom, eom_names);
    find_by_text(tk, &sp->fim_pre, pre_names);
    find_by_text(tk, &sp->fim_suf, suf_names);
    find_by_text(tk, &sp->fim_mid, mid_names);
    find_by_text(tk, &sp->fim_pad, pad_names);
    find_by_text(tk, &sp->fim_rep, rep_names);
    find_by_text(tk, &sp->fim_sep, sep_names);

    mark_eog(tk, sp->fim_pad);
    mark_eog(tk, sp->fim_rep);
    mark_eog(tk, sp->fim_sep);
    for (const char *const *e = eog_names; *e; e++) {
        ech_token t = tok_lookup(tk, *e, strlen(*e));
        if (t != ECH_TOKEN_NULL) {
            tk->eog[t] = 1;
            tk->type[t] = ECH_TOKEN_CONTROL;
        }
    }
    mark_eog(tk, sp->eos);
    mark_eog(tk, sp->eot);
    mark_eog(tk, sp->eom);
}

/* Strip flags llama.cpp sets by model name (they are not in GGUF files). */
static void setup_attrs(ech_tokenizer *tk, const ech_gguf *g)
{
    ech_str name = {"", 0};
    (void)ech_gguf_get_str(g, "general.name", &name);
    char lower[128];
    size_t n = name.len < sizeof lower - 1 ? name.len : sizeof lower - 1;
    for (size_t i = 0; i < n; i++) {
        char c = name.ptr[i];
        lower[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    lower[n] = 0;
    if (strstr(tk->pre_name, "jina-v2-de") || strstr(tk->pre_name, "jina-v2-es") ||
        strstr(tk->pre_name, "jina-v2-code")) {
        ech_token m = tok_lookup(tk, "<mask>", 6);
        if (m >= 0)
            tk->attr[m] |= TOK_ATTR_LSTRIP;
    } else if (strstr(lower, "phi-3") || strstr(lower, "phi3")) {
        for (uint32_t i = 0; i < tk->n_special; i++)
            tk->attr[tk->special[i]] |= TOK_ATTR_RSTRIP;
        ech_token t = tok_lookup(tk, "</s>", 4);
        if (t >= 0)
            tk->attr[t] |= TOK_ATTR_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (size_t i = 0; i < 3; i++) {
            t = tok_lookup(tk, keep[i], strlen(keep[i]));
            if (t >= 0)
                tk->attr[t] &= (uint8_t)~TOK_ATTR_RSTRIP;
        }
    }
}

static int cmp_special(const void *a, const void *b, void *ctx);

/* qsort has no context argument in C11; sort by (length desc, id asc) with a
 * small merge sort instead. */
static void sort_specials(ech_tokenizer *tk, ech_token *v, ech_token *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    sort_specials(tk, v, tmp, h);
    sort_specials(tk, v + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = cmp_special(&v[j], &v[i], tk) < 0 ? v[j++] : v[i++];
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static int cmp_special(const void *a, const void *b, void *ctx)
{
    const ech_tokenizer *tk = ctx;
    ech_token x = *(const ech_token *)a, y = *(const ech_token *)b;
    size_t lx = tk->text[x].len, ly = tk->text[y].len;
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

static ech_status setup_special_cache(ech_tokenizer *tk)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < tk->n_vocab; i++) {
        unsigned t = tk->type[i];
        n += t == ECH_TOKEN_CONTROL || t == ECH_TOKEN_USER_DEFINED || t == ECH_TOKEN_UNKNOWN;
    }
    tk->special = ech_arena_calloc(&tk->arena, n + 1, sizeof *tk->special, 0);
    ech_token *tmp = malloc(((size_t)n + 1) * sizeof *tmp);
    if (!tk->special || !tmp) {
        free(tmp);
        return ECH_ERR_NOMEM;
    }
    tk->n_special = 0;
    for (uint32_t i = 0; i < tk->n_vocab; i++) {
        unsigned t = tk->type[i];
        if (t == ECH_TOKEN_CONTROL || t == ECH_TOKEN_USER_DEFINED || t == ECH_TOKEN_UNKNOWN)
            tk->special[tk->n_special++] = (ech_token)i;
    }
    sort_specials(tk, tk->special, tmp, tk->n_special);
    free(tmp);
    return ECH_OK;
}

/* ---- load ----------------------------------------------------------------- */

static ech_status load(ech_tokenizer *tk, const ech_gguf *g, ech_error *err)
{
    ech_str model, pre = {"", 0};
    ech_status st = ech_gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (st)
        return ech_error_set(err, st, "tokenizer.ggml.model: %s", ech_strerror(st));
    (void)ech_gguf_get_str(g, "tokenizer.ggml.pre", &pre);
    snprintf(tk->model_name, sizeof tk->model_name, "%.*s", (int)(model.len < 15 ? model.len : 15), model.ptr);
    snprintf(tk->pre_name, sizeof tk->pre_name, "%.*s", (int)(pre.len < 31 ? pre.len : 31),
             pre.len ? pre.ptr : "default");

    ech_tok_specials *sp = &tk->sp;
    ech_token *ids[] = {&sp->bos, &sp->eos, &sp->eot, &sp->eom, &sp->unk, &sp->sep, &sp->pad,
                        &sp->cls, &sp->mask, &sp->fim_pre, &sp->fim_suf, &sp->fim_mid,
                        &sp->fim_pad, &sp->fim_rep, &sp->fim_sep};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        *ids[i] = ECH_TOKEN_NULL;

    if (text_is(&model, "llama")) {
        tk->kind = ECH_TOK_SPM;
        sp->bos = 1, sp->eos = 2, sp->unk = 0;
        sp->add_space_prefix = true, sp->add_bos = true;
    } else if (text_is(&model, "bert")) {
        tk->kind = ECH_TOK_WPM;
        sp->bos = 101, sp->unk = 100, sp->sep = 102, sp->pad = 0, sp->mask = 103;
        sp->add_bos = true;
    } else if (text_is(&model, "gpt2")) {
        tk->kind = ECH_TOK_BPE;
        sp->bos = 11, sp->eos = 11;
        int ignore = 0, add_bos = 0;
        int p = pre.len ? tok_pre_from_name(pre.ptr, pre.len, &ignore, &add_bos) : (int)TOK_PRE_DEFAULT;
        if (p < 0)
            return ech_error_set(err, ECH_ERR_UNSUPPORTED, "pre-tokenizer \"%s\" is not supported", tk->pre_name);
        tk->pre = (tok_pre)p;
        tk->ignore_merges = ignore;
        sp->add_bos = add_bos;
    } else {
        return ech_error_set(err, ECH_ERR_UNSUPPORTED, "tokenizer model \"%s\" is not supported", tk->model_name);
    }
    bool asp;
    if (ech_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &asp) == ECH_OK)
        sp->add_space_prefix = asp;

    const ech_gguf_array *tokens, *scores = NULL, *types = NULL, *merges = NULL;
    if ((st = ech_gguf_get_array(g, "tokenizer.ggml.tokens", &tokens)) || tokens->type != ECH_GGUF_STR)
        return ech_error_set(err, st ? st : ECH_ERR_FORMAT, "tokenizer.ggml.tokens: %s",
                             st ? ech_strerror(st) : "not an array of strings");
    if (tokens->n == 0 || tokens->n >= INT32_MAX / 2)
        return ech_error_set(err, ECH_ERR_FORMAT, "tokenizer.ggml.tokens: %llu tokens",
                             (unsigned long long)tokens->n);
    uint32_t n = (uint32_t)tokens->n;
    if (ech_gguf_get_array(g, "tokenizer.ggml.scores", &scores) == ECH_OK &&
        (scores->n != n || (scores->type != ECH_GGUF_F32 && scores->type != ECH_GGUF_F64)))
        return ech_error_set(err, ECH_ERR_FORMAT, "tokenizer.ggml.scores does not match the tokens");
    if (ech_gguf_get_array(g, "tokenizer.ggml.token_type", &types) == ECH_OK &&
        (types->n != n || !ech_gguf_type_size(types->type) || types->type == ECH_GGUF_F32 ||
         types->type == ECH_GGUF_F64))
        return ech_error_set(err, ECH_ERR_FORMAT, "tokenizer.ggml.token_type does not match the tokens");
    if (tk->kind == ECH_TOK_BPE &&
        (ech_gguf_get_array(g, "tokenizer.ggml.merges", &merges) || merges->type != ECH_GGUF_STR))
        return ech_error_set(err, ECH_ERR_FORMAT, "tokenizer.ggml.merges: missing or not strings");

    builder b = {tk, n + 64};
    tk->n_vocab = n;
    tk->text = malloc((size_t)b.cap_text * sizeof *tk->text);
    tk->text_hash = malloc((size_t)b.cap_text * sizeof *tk->text_hash);
    tk->score = ech_arena_calloc(&tk->arena, n, sizeof *tk->score, 0);
    tk->type = ech_arena_calloc(&tk->arena, n, 1, 1);
    tk->attr = ech_arena_calloc(&tk->arena, n, 1, 1);
    tk->eog = ech_arena_calloc(&tk->arena, n, 1, 1);
    tk->piece = ech_arena_calloc(&tk->arena, n, sizeof *tk->piece, 0);
    if (!tk->text || !tk->text_hash || !tk->score || !tk->type || !tk->attr || !tk->eog || !tk->piece ||
        slots_init(tk, n))
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory for %u tokens", n);

    for (uint32_t i = 0; i < n; i++) {
        ech_str t = tokens->strs[i];
        char *copy;
        if (t.len == 0) {
            /* llama.cpp's stand-in, so that every token has a distinct text */
            char tmp[32];
            int l = snprintf(tmp, sizeof tmp, "[EMPTY_%u]", i);
            copy = ech_arena_strndup(&tk->arena, tmp, (size_t)l);
            t.len = (size_t)l;
        } else {
            copy = ech_arena_strndup(&tk->arena, t.ptr, t.len);
        }
        if (!copy)
            return ech_error_set(err, ECH_ERR_NOMEM, "out of memory for token texts");
        tk->text[i] = (ech_str){copy, t.len};
        if (t.len > tk->max_token_len)
            tk->max_token_len = t.len;
        tk->score[i] = scores ? (float)ech_gguf_array_f64(scores, i) : 0.0f;
        int64_t ty = types ? ech_gguf_array_i64(types, i) : ECH_TOKEN_NORMAL;
        tk->type[i] = ty >= 0 && ty <= ECH_TOKEN_BYTE ? (uint8_t)ty : ECH_TOKEN_UNDEFINED;
        slots_put(tk, (ech_token)i);
    }
    tk->n_text = n;

    if (merges && (st = load_merges(&b, merges, err)))
        return st;

    /* byte tokens */
    for (unsigned c = 0; c < 256; c++) {
        tk->byte_token[c] = ECH_TOKEN_NULL;
        if (tk->kind == ECH_TOK_BPE) {
            uint8_t enc[4];
            size_t l = ech_ucd_encode_lax(byte_to_cp(c), enc);
            memcpy(tk->byte_enc[c], enc, 2);
            tk->byte_enc_len[c] = (uint8_t)l;
            tk->byte_token[c] = tok_lookup_any(tk, enc, l);
        } else {
            char hex[7];
            snprintf(hex, sizeof hex, "<0x%02X>", c);
            tk->byte_token[c] = tok_lookup(tk, hex, 6);
            if (tk->byte_token[c] == ECH_TOKEN_NULL) {
                char one = (char)c;
                tk->byte_token[c] = tok_lookup(tk, &one, 1);
            }
        }
    }

    if (tk->kind == ECH_TOK_SPM)
        tk->spm_split_words = spm_words_are_independent(tk);
    setup_specials(tk, g);
    if ((st = setup_special_cache(tk)))
        return ech_error_set(err, st, "special tokens: %s", ech_strerror(st));
    setup_attrs(tk, g);
    for (uint32_t i = 0; i < n; i++)
        if ((st = make_piece(tk, (ech_token)i)))
            return ech_error_set(err, st, "token pieces: %s", ech_strerror(st));
    return ECH_OK;
}

ech_status ech_tokenizer_load(const ech_gguf *g, ech_tokenizer **out, ech_error *err)
{
    *out = NULL;
    if (!g)
        return ech_error_set(err, ECH_ERR_INVALID, "no GGUF handle");
    ech_tokenizer *tk = calloc(1, sizeof *tk);
    if (!tk)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    ech_arena_init(&tk->arena, 1 << 20);
    ech_status st = load(tk, g, err);
    if (st) {
        ech_tokenizer_free(tk);
        return st;
    }
    *out = tk;
    return ECH_OK;
}

ech_status ech_tokenizer_open(const char *path, ech_tokenizer **out, ech_error *err)
{
    *out = NULL;
    ech_gguf *g;
    ech_status st = ech_gguf_open(path, &g, err);
    if (st)
        return st;
    st = ech_tokenizer_load(g, out, err);
    ech_gguf_close(g);
    return st;
}

void ech_tokenizer_free(ech_tokenizer *tk)
{
    if (!tk)
        return;
    free(tk->text);
    free(tk->text_hash);
    free(tk->slots);
    free(tk->merges);
    ech_arena_free(&tk->arena);
    free(tk);
}

/* ---- queries ----------------------------------------------------------------- */

ech_tok_kind ech_tokenizer_kind(const ech_tokenizer *tk) { return tk->kind; }
const char *ech_tokenizer_model(const ech_tokenizer *tk) { return tk->model_name; }
const char *ech_tokenizer_pre(const ech_tokenizer *tk) { return tk->pre_name; }
size_t ech_tokenizer_n_vocab(const ech_tokenizer *tk) { return tk->n_vocab; }
const ech_tok_specials *ech_tokenizer_specials(const ech_tokenizer *tk) { return &tk->sp; }

ech_str ech_tokenizer_text(const ech_tokenizer *tk, ech_token id)
{
    if (id < 0 || (uint32_t)id >= tk->n_vocab)
        return (ech_str){NULL, 0};
    return tk->text[id];
}

ech_str ech_tokenizer_piece(const ech_tokenizer *tk, ech_token id)
{
    if (id < 0 || (uint32_t)id >= tk->n_vocab)
        return (ech_str){NULL, 0};
    return tk->piece[id];
}

ech_token_type ech_tokenizer_type(const ech_tokenizer *tk, ech_token id)
{
    if (id < 0 || (uint32_t)id >= tk->n_vocab)
        return ECH_TOKEN_UNDEFINED;
    return (ech_token_type)tk->type[id];
}

ech_token ech_tokenizer_find(const ech_tokenizer *tk, const char *s, size_t n)
{
    return tok_lookup(tk, s, n);
}

bool ech_tokenizer_is_eog(const ech_tokenizer *tk, ech_token id)
{
    return id >= 0 && (uint32_t)id < tk->n_vocab && tk->eog[id];
}

const char *ech_tokenizer_unicode_version(void) { return ech_unicode_version; }
