/* pretok.c - pre-tokenizers as hand-written matchers.
 *
 * Each pre-tokenizer is a list of stages.  A stage walks every piece left by
 * the one before and, at each position, asks its matcher for the length of
 * the match starting there (0: none).  As with std::regex_iterator, the
 * leftmost match wins, the search resumes after it, and the text between
 * matches becomes a piece of its own.  Matchers see only their piece, so
 * "$" and "(?!\S)" look at the piece's end, exactly as in llama.cpp.
 *
 * Character classes follow llama.cpp: \s is the White_Space flag, \p{L},
 * \p{N} and \p{P} are the general categories (llama.cpp's "collapsed" regex
 * trick gives the same classes), and in the expressions written with literal
 * code point ranges, non-ASCII whitespace reads as U+000B first.
 */
#include "config.h"

#include "tok/pretok.h"

#include <stdlib.h>
#include <string.h>

#include "tok/unicode.h"

/* ---- the piece a matcher sees --------------------------------------- */

typedef struct piece {
    const uint32_t *cp;
    const uint8_t *fl;
    size_t end;          /* one past the piece's last code point */
} piece;

static inline int at_cat(const piece *p, size_t i, unsigned cat)
{
    return i < p->end && (p->fl[i] & ECH_UCAT_MASK) == cat && !(p->fl[i] & ECH_UFLAG_WS);
}
static inline int at_ws(const piece *p, size_t i) { return i < p->end && (p->fl[i] & ECH_UFLAG_WS); }
static inline int at_letter(const piece *p, size_t i) { return at_cat(p, i, ECH_UCAT_L); }
static inline int at_number(const piece *p, size_t i) { return at_cat(p, i, ECH_UCAT_N); }
/* [^\s\p{L}\p{N}] */
static inline int at_other(const piece *p, size_t i)
{
    if (i >= p->end || (p->fl[i] & ECH_UFLAG_WS))
        return 0;
    unsigned c = p->fl[i] & ECH_UCAT_MASK;
    return c != ECH_UCAT_L && c != ECH_UCAT_N;
}
static inline int is_rn(uint32_t c) { return c == '\r' || c == '\n'; }

/* The code point as llama.cpp's std::wregex path sees it. */
static inline uint32_t wval(const piece *p, size_t i)
{
    return p->cp[i] > 0x7F && (p->fl[i] & ECH_UFLAG_WS) ? 0x0B : p->cp[i];
}

/* ---- GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */

static size_t run_of(const piece *p, size_t i, int (*pred)(const piece *, size_t))
{
    while (pred(p, i))
        i++;
    return i;
}

static size_t match_gpt2(const piece *p, size_t pos)
{
    uint32_t c = p->cp[pos];
    if (c == '\'' && pos + 1 < p->end) {
        uint32_t c1 = p->cp[pos + 1];
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
            return 2;
        if (pos + 2 < p->end) {
            uint32_t c2 = p->cp[pos + 2];
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
                return 3;
        }
    }
    size_t body = pos + (c == ' ');   /* the optional leading space */
    if (at_letter(p, body))
        return run_of(p, body, at_letter) - pos;
    if (at_number(p, body))
        return run_of(p, body, at_number) - pos;
    if (at_other(p, body))
        return run_of(p, body, at_other) - pos;
    size_t k = run_of(p, pos, at_ws) - pos;
    if (k > 1 && pos + k < p->end)
        return k - 1;   /* \s+(?!\S): leave the last space to the word after */
    return k ? k : 1;
}

/* ---- Llama 3 and Qwen 2:
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * Qwen 2 has \p{N} where Llama 3 has \p{N}{1,3}. */

static size_t match_llama3_digits(const piece *p, size_t pos, size_t max_digits)
{
    uint32_t c = p->cp[pos];
    if (c == '\'' && pos + 1 < p->end) {
        uint32_t c1 = ech_ucd_tolower(p->cp[pos + 1]);
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
            return 2;
        if (pos + 2 < p->end) {
            uint32_t c2 = ech_ucd_tolower(p->cp[pos + 2]);
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
                return 3;
        }
    }
    if (!is_rn(c) && !at_number(p, pos) && (at_letter(p, pos) || at_letter(p, pos + 1)))
        return run_of(p, pos + 1, at_letter) - pos;
    if (at_number(p, pos)) {
        size_t k = run_of(p, pos, at_number) - pos;
        return k < max_digits ? k : max_digits;
    }
    size_t body = pos + (c == ' ');
    if (at_other(p, body)) {
        size_t j = run_of(p, body, at_other);
        while (j < p->end && is_rn(p->cp[j]))
            j++;
        return j - pos;
    }
    size_t k = 0, last_rn = 0;
    while (at_ws(p, pos + k)) {
        if (is_rn(p->cp[pos + k]))
            last_rn = pos + k + 1;
        k++;
    }
    if (last_rn)
        return last_rn - pos;   /* \s*[\r\n]+ ends at the last line break */
    if (k > 1 && pos + k < p->end)
        return k - 1;
    return k ? k : 1;
}

static size_t match_llama3(const piece *p, size_t pos) { return match_llama3_digits(p, pos, 3); }
static size_t match_qwen2(const piece *p, size_t pos) { return match_llama3_digits(p, pos, 1); }

/* ---- character classes of the other expressions ------------------------ */

typedef struct cp_range {
    uint32_t lo, hi;
} cp_range;

static int in_ranges(const cp_range *r, size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c > r[mid].hi)
            lo = mid + 1;
        else if (c < r[mid].lo)
            hi = mid;
        else
            return 1;
    }
    return 0;
}

/* deepseek-llm's cased-letter class (from its tokenizer.json), sorted. */
static const cp_range deepseek_letters[] = {
    {0x41, 0x5A}, {0x61, 0x7A}, {0xB5, 0xB5}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x1BA},
    {0x1BC, 0x1BF}, {0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373}, {0x376, 0x377},
    {0x37B, 0x37D}, {0x37F, 0x37F}, {0x386, 0x386}, {0x388, 0x38A}, {0x38C, 0x38C},
    {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481}, {0x48A, 0x52F}, {0x531, 0x556},
    {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA}, {0x1CBD, 0x1CBF},
    {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D},
    {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE},
    {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC},
    {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102}, {0x2107, 0x2107}, {0x210A, 0x2113},
    {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126}, {0x2128, 0x2128},
    {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149},
    {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE},
    {0x2CF2, 0x2CF3}, {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787},
    {0xA78B, 0xA78E}, {0xAB70, 0xABBF}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A},
    {0xFF41, 0xFF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};

/* deepseek-llm's punctuation class [!-/:-~！-／：-～‘-‟　-。] */
static const cp_range deepseek_punct[] = {
    {0x21, 0x2F}, {0x3A, 0x7E}, {0x2018, 0x201F}, {0x3000, 0x3002}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E},
};

/* [一-龥ࠀ-一가-퟿] (deepseek) */
static const cp_range deepseek_cjk[] = {
    {0x0800, 0x9FA5}, {0xAC00, 0xD7FF},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int cls_ds_letter(const piece *p, size_t i)
{
    return i < p->end && in_ranges(deepseek_letters, N_OF(deepseek_letters), wval(p, i));
}
static int cls_ds_punct(const piece *p, size_t i)
{
    return i < p->end && in_ranges(deepseek_punct, N_OF(deepseek_punct), wval(p, i));
}
static int cls_ds_cjk(const piece *p, size_t i)
{
    return i < p->end && in_ranges(deepseek_cjk, N_OF(deepseek_cjk), wval(p, i));
}
static int cls_punct(const piece *p, size_t i) { return at_cat(p, i, ECH_UCAT_P); }
/* [\p{P}\$\+<=>\^~\|`] (falcon) and the same without ` (default) */
static int cls_punct_sym(const piece *p, size_t i)
{
    return cls_punct(p, i) || (i < p->end && p->cp[i] < 0x80 && strchr("$+<=>^~|`", (int)p->cp[i]) && p->cp[i]);
}
static int cls_punct_sym_no_tick(const piece *p, size_t i)
{
    return cls_punct(p, i) || (i < p->end && p->cp[i] < 0x80 && strchr("$+<=>^~|", (int)p->cp[i]) && p->cp[i]);
}

/* ---- generic matchers over a class -------------------------------------- */

typedef int (*cls_fn)(const piece *, size_t);

/* X+ */
static size_t m_run(const piece *p, size_t pos, cls_fn x)
{
    return run_of(p, pos, x) - pos;
}

/* \s?X+ : the optional space is taken greedily, given back if X+ then fails */
static size_t m_ws_run(const piece *p, size_t pos, cls_fn x)
{
    if (at_ws(p, pos) && x(p, pos + 1))
        return run_of(p, pos + 1, x) - pos;
    return m_run(p, pos, x);
}

typedef enum stage_kind {
    ST_GPT2, ST_LLAMA3, ST_QWEN2,
    ST_RN,          /* [\r\n] */
    ST_WS_RUN,      /* \s?X+ */
    ST_WS_END,      /* \s+$ */
    ST_RUN,         /* X+ */
    ST_ONE,         /* X */
    ST_DIGITS3      /* [0-9][0-9][0-9] */
} stage_kind;

typedef struct stage {
    stage_kind kind;
    cls_fn cls;
} stage;

static int cls_letter(const piece *p, size_t i) { return at_letter(p, i); }
static int cls_number(const piece *p, size_t i) { return at_number(p, i); }

static size_t match_stage(const stage *st, const piece *p, size_t pos)
{
    switch (st->kind) {
    case ST_GPT2:
        return match_gpt2(p, pos);
    case ST_LLAMA3:
        return match_llama3(p, pos);
    case ST_QWEN2:
        return match_qwen2(p, pos);
    case ST_RN:
        return is_rn(p->cp[pos]);
    case ST_WS_RUN:
        return m_ws_run(p, pos, st->cls);
    case ST_WS_END: {
        size_t j = run_of(p, pos, at_ws);
        return j > pos && j == p->end ? j - pos : 0;
    }
    case ST_RUN:
        return m_run(p, pos, st->cls);
    case ST_ONE:
        return st->cls(p, pos) ? 1 : 0;
    case ST_DIGITS3:
        for (size_t k = 0; k < 3; k++)
            if (pos + k >= p->end || p->cp[pos + k] < '0' || p->cp[pos + k] > '9')
                return 0;
        return 3;
    }
    return 0;
}

/* The expression lists of llama.cpp's llm_tokenizer_bpe, per pre-tokenizer. */
static const stage st_default[] = {
    {ST_RUN, cls_punct_sym_no_tick}, {ST_GPT2, NULL}, {ST_RUN, cls_number}, {ST_DIGITS3, NULL}};
static const stage st_gpt2[] = {{ST_GPT2, NULL}};
static const stage st_llama3[] = {{ST_LLAMA3, NULL}};
static const stage st_qwen2[] = {{ST_QWEN2, NULL}};
static const stage st_deepseek_llm[] = {
    {ST_RN, NULL}, {ST_WS_RUN, cls_ds_letter}, {ST_WS_RUN, cls_ds_punct}, {ST_WS_END, NULL},
    {ST_RUN, cls_ds_cjk}, {ST_RUN, cls_number}};
static const stage st_deepseek_coder[] = {
    {ST_RN, NULL}, {ST_WS_RUN, cls_letter}, {ST_WS_RUN, cls_punct}, {ST_RUN, cls_ds_cjk},
    {ST_ONE, cls_number}};
static const stage st_falcon[] = {{ST_RUN, cls_punct_sym}, {ST_GPT2, NULL}, {ST_DIGITS3, NULL}};
static const stage st_starcoder[] = {{ST_ONE, cls_number}, {ST_GPT2, NULL}};

static const struct {
    const stage *stages;
    size_t n;
} pre_stages[TOK_PRE_COUNT] = {
    [TOK_PRE_DEFAULT] = {st_default, N_OF(st_default)},
    [TOK_PRE_GPT2] = {st_gpt2, N_OF(st_gpt2)},
    [TOK_PRE_LLAMA3] = {st_llama3, N_OF(st_llama3)},
    [TOK_PRE_QWEN2] = {st_qwen2, N_OF(st_qwen2)},
    [TOK_PRE_DEEPSEEK_LLM] = {st_deepseek_llm, N_OF(st_deepseek_llm)},
    [TOK_PRE_DEEPSEEK_CODER] = {st_deepseek_coder, N_OF(st_deepseek_coder)},
    [TOK_PRE_FALCON] = {st_falcon, N_OF(st_falcon)},
    [TOK_PRE_STARCODER] = {st_starcoder, N_OF(st_starcoder)},
};

/* ---- names ----------------------------------------------------------- */

static const struct {
    const char *name;
    tok_pre pre;
    int ignore_merges, add_bos;
} pre_names[] = {
    {"default", TOK_PRE_DEFAULT, 0, 0},
    {"llama3", TOK_PRE_LLAMA3, 1, 1}, {"llama-v3", TOK_PRE_LLAMA3, 1, 1},
    {"llama-bpe", TOK_PRE_LLAMA3, 1, 1}, {"falcon3", TOK_PRE_LLAMA3, 1, 1},
    {"dbrx", TOK_PRE_LLAMA3, 0, 0}, {"smaug-bpe", TOK_PRE_LLAMA3, 0, 0},
    {"deepseek-llm", TOK_PRE_DEEPSEEK_LLM, 0, 0},
    {"deepseek-coder", TOK_PRE_DEEPSEEK_CODER, 0, 0},
    {"falcon", TOK_PRE_FALCON, 0, 0},
    {"mpt", TOK_PRE_GPT2, 0, 0}, {"gpt-2", TOK_PRE_GPT2, 0, 0}, {"phi-2", TOK_PRE_GPT2, 0, 0},
    {"jina-es", TOK_PRE_GPT2, 0, 0}, {"jina-de", TOK_PRE_GPT2, 0, 0},
    {"gigachat", TOK_PRE_GPT2, 0, 0}, {"jina-v1-en", TOK_PRE_GPT2, 0, 0},
    {"jina-v2-es", TOK_PRE_GPT2, 0, 0}, {"jina-v2-de", TOK_PRE_GPT2, 0, 0},
    {"jina-v2-code", TOK_PRE_GPT2, 0, 0}, {"roberta-bpe", TOK_PRE_GPT2, 0, 0},
    {"olmo", TOK_PRE_GPT2, 0, 0}, {"jais", TOK_PRE_GPT2, 0, 0},
    {"starcoder", TOK_PRE_STARCODER, 0, 0}, {"refact", TOK_PRE_STARCODER, 0, 0},
    {"command-r", TOK_PRE_STARCODER, 0, 0}, {"smollm", TOK_PRE_STARCODER, 0, 0},
    {"codeshell", TOK_PRE_STARCODER, 0, 0}, {"exaone", TOK_PRE_STARCODER, 0, 0},
    {"minerva-7b", TOK_PRE_STARCODER, 0, 0},
    {"qwen2", TOK_PRE_QWEN2, 0, 0}, {"deepseek-r1-qwen", TOK_PRE_QWEN2, 0, 0},
    {"stablelm2", TOK_PRE_QWEN2, 0, 0}, {"megrez", TOK_PRE_QWEN2, 0, 0},
};

int tok_pre_from_name(const char *name, size_t len, int *ignore_merges, int *add_bos)
{
    for (size_t i = 0; i < N_OF(pre_names); i++) {
        if (strlen(pre_names[i].name) == len && memcmp(pre_names[i].name, name, len) == 0) {
            *ignore_merges = pre_names[i].ignore_merges;
            *add_bos = pre_names[i].add_bos;
            return (int)pre_names[i].pre;
        }
    }
    return -1;
}

/* ---- driver ------------------------------------------------------------ */

static int grow(tok_span **v, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    tok_span *p = realloc(*v, c * sizeof *p);
    if (!p)
        return -1;
    *v = p;
    *cap = c;
    return 0;
}

ech_status tok_pretokenize(tok_pre pre, const uint32_t *cp, const uint8_t *fl, size_t n,
                           tok_pretok *pt)
{
    pt->n_spans = 0;
    if (n == 0)
        return ECH_OK;
    if ((unsigned)pre >= TOK_PRE_COUNT || n > UINT32_MAX)
        return ECH_ERR_INVALID;
    if (grow(&pt->spans, &pt->cap_spans, 1))
        return ECH_ERR_NOMEM;
    pt->spans[0] = (tok_span){0, (uint32_t)n};
    pt->n_spans = 1;

    const stage *stages = pre_stages[pre].stages;
    for (size_t s = 0; s < pre_stages[pre].n; s++) {
        size_t out = 0;
        for (size_t k = 0; k < pt->n_spans; k++) {
            tok_span in = pt->spans[k];
            piece p = {cp, fl, in.b};
            size_t gap = in.a;   /* start of text not yet emitted */
            for (size_t pos = in.a; pos < in.b;) {
                size_t len = match_stage(&stages[s], &p, pos);
                if (!len) {
                    pos++;
                    continue;
                }
                /* at most two new pieces per match */
                if (grow(&pt->tmp, &pt->cap_tmp, out + 2))
                    return ECH_ERR_NOMEM;
                if (pos > gap)
                    pt->tmp[out++] = (tok_span){(uint32_t)gap, (uint32_t)pos};
                pt->tmp[out++] = (tok_span){(uint32_t)pos, (uint32_t)(pos + len)};
                pos += len;
                gap = pos;
            }
            if (gap < in.b) {
                if (grow(&pt->tmp, &pt->cap_tmp, out + 1))
                    return ECH_ERR_NOMEM;
                pt->tmp[out++] = (tok_span){(uint32_t)gap, in.b};
            }
        }
        tok_span *t = pt->spans;
        size_t tc = pt->cap_spans;
        pt->spans = pt->tmp;
        pt->cap_spans = pt->cap_tmp;
        pt->tmp = t;
        pt->cap_tmp = tc;
        pt->n_spans = out;
    }
    return ECH_OK;
}

void tok_pretok_free(tok_pretok *pt)
{
    free(pt->spans);
    free(pt->tmp);
    memset(pt, 0, sizeof *pt);
}
