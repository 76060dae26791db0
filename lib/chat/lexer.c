/* lexer.c - jinja2-compatible tokeniser with whitespace control. */
#include "chat/lexer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "chat/value.h"
#include "core/utf8.h"

typedef struct lexer {
    ech_arena *a;
    const char *s;      /* normalised source */
    size_t n, pos;
    int line;
    ech_jtok *toks;
    size_t ntok, cap;
    ech_error *err;
    bool line_starting; /* the last consumed text ended a line (for lstrip_blocks) */
} lexer;

enum { MAX_TOKENS = 1 << 22 };

static ech_jtok *push(lexer *L, ech_jtok_type t)
{
    if (L->ntok == L->cap) {
        size_t nc = L->cap ? L->cap * 2 : 256;
        if (nc > MAX_TOKENS)
            return NULL;
        ech_jtok *nt = ech_arena_alloc(L->a, nc * sizeof *nt, 0);
        if (!nt)
            return NULL;
        if (L->ntok)
            memcpy(nt, L->toks, L->ntok * sizeof *nt);
        L->toks = nt;
        L->cap = nc;
    }
    ech_jtok *t0 = &L->toks[L->ntok++];
    memset(t0, 0, sizeof *t0);
    t0->type = (uint8_t)t;
    t0->line = L->line;
    return t0;
}

static size_t count_nl(const char *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += p[i] == '\n';
    return c;
}

/* Length of the Python-whitespace character ending at s[end-1], or 0. */
static size_t ws_before(const char *s, size_t start, size_t end)
{
    if (end <= start)
        return 0;
    unsigned char c = (unsigned char)s[end - 1];
    if (c < 0x80) {
        uint32_t cp = c;
        return ech_jv_isspace(cp) ? 1 : 0;
    }
    for (size_t k = 2; k <= 4 && k <= end - start; k++) {
        uint32_t cp;
        if (ech_utf8_decode((const uint8_t *)s + end - k, k, &cp) == k)
            return ech_jv_isspace(cp) ? k : 0;
    }
    return 0;
}

static size_t ws_at(const char *s, size_t pos, size_t n)
{
    if (pos >= n)
        return 0;
    uint32_t cp;
    size_t k = ech_jv_utf8_next(s + pos, n - pos, &cp);
    return ech_jv_isspace(cp) ? k : 0;
}

static size_t rstrip_len(const char *s, size_t start, size_t end)
{
    size_t k;
    while ((k = ws_before(s, start, end)) != 0)
        end -= k;
    return end;
}

static ech_status lex_fail(lexer *L, const char *msg)
{
    return ech_error_set(L->err, ECH_ERR_FORMAT, "%s  line %d", msg, L->line);
}

static ech_status emit_text(lexer *L, size_t start, size_t end)
{
    if (end > start) {
        ech_jtok *t = push(L, TK_TEXT);
        if (!t)
            return ECH_ERR_NOMEM;
        t->p = L->s + start;
        t->n = end - start;
    }
    return ECH_OK;
}

/* Decode a Python string literal body (jinja2 runs it through
 * unicode-escape: known escapes are decoded, unknown ones kept). */
static ech_status lex_string(lexer *L, char q)
{
    size_t start = ++L->pos;
    size_t i = start;
    while (i < L->n && L->s[i] != q) {
        if (L->s[i] == '\\' && i + 1 < L->n)
            i++;
        i++;
    }
    if (i >= L->n)
        return lex_fail(L, "unexpected end of string");
    size_t rawn = i - start;
    char *out = ech_arena_alloc(L->a, rawn + 1, 1);
    if (!out)
        return ECH_ERR_NOMEM;
    size_t o = 0;
    const char *p = L->s + start;
    for (size_t k = 0; k < rawn;) {
        char c = p[k];
        if (c != '\\' || k + 1 >= rawn) {
            out[o++] = c;
            k++;
            continue;
        }
        char e = p[k + 1];
        int hexn = 0;
        switch (e) {
        case '\n': k += 2; continue;
        case '\\': out[o++] = '\\'; k += 2; continue;
        case '\'': out[o++] = '\''; k += 2; continue;
        case '"': out[o++] = '"'; k += 2; continue;
        case 'a': out[o++] = '\a'; k += 2; continue;
        case 'b': out[o++] = '\b'; k += 2; continue;
        case 'f': out[o++] = '\f'; k += 2; continue;
        case 'n': out[o++] = '\n'; k += 2; continue;
        case 'r': out[o++] = '\r'; k += 2; continue;
        case 't': out[o++] = '\t'; k += 2; continue;
        case 'v': out[o++] = '\v'; k += 2; continue;
        case 'x': hexn = 2; break;
        case 'u': hexn = 4; break;
        case 'U': hexn = 8; break;
        default:
            if (e >= '0' && e <= '7') {
                uint32_t v = 0;
                size_t j = k + 1;
                for (int d = 0; d < 3 && j < rawn && p[j] >= '0' && p[j] <= '7'; d++, j++)
                    v = v * 8 + (uint32_t)(p[j] - '0');
                uint8_t enc[4];
                size_t m = ech_utf8_encode(v, enc);
                memcpy(out + o, enc, m);
                o += m;
                k = j;
                continue;
            }
            out[o++] = c;   /* unknown escape: keep the backslash */
            k++;
            continue;
        }
        uint32_t v = 0;
        size_t j = k + 2;
        int d = 0;
        for (; d < hexn && j < rawn; d++, j++) {
            char h = p[j];
            int x = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                  : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (x < 0)
                break;
            v = v * 16 + (uint32_t)x;
        }
        if (d < hexn)
            return lex_fail(L, "truncated \\x, \\u or \\U escape in a string");
        uint8_t enc[4];
        size_t m = ech_utf8_encode(v, enc);
        if (!m)
            return lex_fail(L, "invalid code point in a string escape");
        /* escapes make at most as many bytes as they take */
        memcpy(out + o, enc, m);
        o += m;
        k = j;
    }
    ech_jtok *t = push(L, TK_STRING);
    if (!t)
        return ECH_ERR_NOMEM;
    t->p = out;
    t->n = o;
    L->line += (int)count_nl(p, rawn);
    L->pos = i + 1;
    return ECH_OK;
}

static ech_status lex_number(lexer *L)
{
    /* digits with '_' separators, an optional fraction and exponent; the
     * literal is copied without the underscores for strtod/strtoll */
    size_t i = L->pos;
    char buf[128];
    size_t bn = 0;
    bool isf = false, toolong = false;
#define PUT(c) do { if (bn < sizeof buf - 1) buf[bn++] = (c); else toolong = true; } while (0)
    while (i < L->n && ((L->s[i] >= '0' && L->s[i] <= '9') || L->s[i] == '_')) {
        if (L->s[i] != '_')
            PUT(L->s[i]);
        i++;
    }
    if (i + 1 < L->n && L->s[i] == '.' && L->s[i + 1] >= '0' && L->s[i + 1] <= '9') {
        isf = true;
        PUT('.');
        i++;
        while (i < L->n && ((L->s[i] >= '0' && L->s[i] <= '9') || L->s[i] == '_')) {
            if (L->s[i] != '_')
                PUT(L->s[i]);
            i++;
        }
    }
    if (i < L->n && (L->s[i] == 'e' || L->s[i] == 'E')) {
        size_t j = i + 1;
        if (j < L->n && (L->s[j] == '+' || L->s[j] == '-'))
            j++;
        if (j < L->n && L->s[j] >= '0' && L->s[j] <= '9') {
            isf = true;
            while (i < j)
                PUT(L->s[i++]);
            while (i < L->n && L->s[i] >= '0' && L->s[i] <= '9')
                PUT(L->s[i++]);
        }
    }
#undef PUT
    buf[bn] = '\0';
    if (toolong)
        return lex_fail(L, "number literal too long");
    ech_jtok *t = push(L, isf ? TK_FLOAT : TK_INT);
    if (!t)
        return ECH_ERR_NOMEM;
    if (isf) {
        t->f = strtod(buf, NULL);
    } else {
        errno = 0;
        long long v = strtoll(buf, NULL, 10);
        if (errno)
            return lex_fail(L, "integer literal out of range");
        t->i = v;
    }
    L->pos = i;
    return ECH_OK;
}

static int op_at(const char *s, size_t n, size_t *len)
{
    static const struct { const char *t; int op; } ops[] = {
        {"//", OP_FLOORDIV}, {"**", OP_POW}, {"==", OP_EQ}, {"!=", OP_NE}, {"<=", OP_LE},
        {">=", OP_GE}, {"+", OP_ADD}, {"-", OP_SUB}, {"*", OP_MUL}, {"/", OP_DIV}, {"%", OP_MOD},
        {"~", OP_TILDE}, {"<", OP_LT}, {">", OP_GT}, {"=", OP_ASSIGN}, {"(", OP_LPAREN},
        {")", OP_RPAREN}, {"[", OP_LBRACKET}, {"]", OP_RBRACKET}, {"{", OP_LBRACE},
        {"}", OP_RBRACE}, {",", OP_COMMA}, {".", OP_DOT}, {":", OP_COLON}, {"|", OP_PIPE},
        {";", OP_SEMICOLON},
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        size_t l = strlen(ops[k].t);
        if (l <= n && memcmp(s, ops[k].t, l) == 0) {
            *len = l;
            return ops[k].op;
        }
    }
    return -1;
}

/* Tokens inside {{ }} or {% %} up to the closing delimiter. */
static ech_status lex_tag(lexer *L, bool block)
{
    const char *close = block ? "%}" : "}}";
    int depth = 0;   /* brackets open: a closing delimiter inside them is not one */
    for (;;) {
        if (L->pos >= L->n)
            return lex_fail(L, block ? "unexpected end of template, expected '%}'"
                                     : "unexpected end of template, expected '}}'");
        const char *p = L->s + L->pos;
        size_t rest = L->n - L->pos;
        if (depth == 0) {
            bool minus = rest >= 3 && p[0] == '-' && memcmp(p + 1, close, 2) == 0;
            bool plus = block && rest >= 3 && p[0] == '+' && memcmp(p + 1, close, 2) == 0;
            if (minus || plus || (rest >= 2 && memcmp(p, close, 2) == 0)) {
                if (!push(L, block ? TK_BLOCK_END : TK_VAR_END))
                    return ECH_ERR_NOMEM;
                L->pos += (minus || plus) ? 3 : 2;
                L->line_starting = false;
                if (minus) {
                    size_t k;
                    while ((k = ws_at(L->s, L->pos, L->n)) != 0) {
                        L->line_starting = L->s[L->pos] == '\n';
                        L->line += L->s[L->pos] == '\n';
                        L->pos += k;
                    }
                } else if (block && !plus && L->pos < L->n && L->s[L->pos] == '\n') {
                    L->pos++;   /* trim_blocks */
                    L->line++;
                    L->line_starting = true;
                }
                return ECH_OK;
            }
        }
        char c = *p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            L->line += c == '\n';
            L->pos++;
        } else if (c == '\'' || c == '"') {
            ech_status s = lex_string(L, c);
            if (s)
                return s;
        } else if (c >= '0' && c <= '9') {
            ech_status s = lex_number(L);
            if (s)
                return s;
        } else if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            size_t i = L->pos;
            while (i < L->n && (L->s[i] == '_' || (L->s[i] >= 'a' && L->s[i] <= 'z') ||
                                (L->s[i] >= 'A' && L->s[i] <= 'Z') ||
                                (L->s[i] >= '0' && L->s[i] <= '9')))
                i++;
            ech_jtok *t = push(L, TK_NAME);
            if (!t)
                return ECH_ERR_NOMEM;
            t->p = p;
            t->n = i - L->pos;
            L->pos = i;
        } else {
            size_t len;
            int op = op_at(p, rest, &len);
            if (op < 0)
                return ech_error_set(L->err, ECH_ERR_FORMAT, "unexpected char '%c' at %zu  line %d",
                                     c, L->pos, L->line);
            if (op == OP_LPAREN || op == OP_LBRACKET || op == OP_LBRACE)
                depth++;
            else if ((op == OP_RPAREN || op == OP_RBRACKET || op == OP_RBRACE) && depth > 0)
                depth--;
            ech_jtok *t = push(L, TK_OP);
            if (!t)
                return ECH_ERR_NOMEM;
            t->op = (uint8_t)op;
            L->pos += len;
        }
    }
}

/* {% raw %}...{% endraw %}: the body is text.  Called after "{%[-+]?";
 * returns 1 if this was a raw block, 0 if not, <0 on error. */
static int try_raw(lexer *L, size_t after)
{
    size_t i = after;
    while (i < L->n && (L->s[i] == ' ' || L->s[i] == '\t' || L->s[i] == '\n'))
        i++;
    if (L->n - i < 3 || memcmp(L->s + i, "raw", 3) != 0)
        return 0;
    i += 3;
    while (i < L->n && (L->s[i] == ' ' || L->s[i] == '\t' || L->s[i] == '\n'))
        i++;
    bool minus = i < L->n && L->s[i] == '-';
    if (minus)
        i++;
    if (L->n - i < 2 || memcmp(L->s + i, "%}", 2) != 0)
        return 0;
    i += 2;
    if (minus)
        while (ws_at(L->s, i, L->n))
            i += ws_at(L->s, i, L->n);
    else if (i < L->n && L->s[i] == '\n')
        i++;
    /* find {%[-+]? endraw [-]?%} */
    for (size_t j = i; j + 1 < L->n; j++) {
        if (L->s[j] != '{' || L->s[j + 1] != '%')
            continue;
        size_t k = j + 2;
        bool lminus = k < L->n && L->s[k] == '-';
        if (k < L->n && (L->s[k] == '-' || L->s[k] == '+'))
            k++;
        while (k < L->n && (L->s[k] == ' ' || L->s[k] == '\t' || L->s[k] == '\n'))
            k++;
        if (L->n - k < 6 || memcmp(L->s + k, "endraw", 6) != 0)
            continue;
        k += 6;
        while (k < L->n && (L->s[k] == ' ' || L->s[k] == '\t' || L->s[k] == '\n'))
            k++;
        bool rminus = k < L->n && L->s[k] == '-';
        if (rminus)
            k++;
        if (L->n - k < 2 || memcmp(L->s + k, "%}", 2) != 0)
            continue;
        k += 2;
        size_t end = lminus ? rstrip_len(L->s, i, j) : j;
        if (emit_text(L, i, end))
            return -1;
        L->line += (int)count_nl(L->s + after, k - after);
        if (rminus)
            while (ws_at(L->s, k, L->n))
                k += ws_at(L->s, k, L->n);
        else if (k < L->n && L->s[k] == '\n')
            k++;
        L->line_starting = L->s[k - 1] == '\n';
        L->pos = k;
        return 1;
    }
    ech_error_set(L->err, ECH_ERR_FORMAT, "missing end of raw directive  line %d", L->line);
    return -1;
}

ech_status ech_jlex(ech_arena *a, const char *src, size_t len, ech_jtok **out, size_t *ntok,
                    ech_error *err)
{
    /* normalise \r\n and \r to \n, drop one trailing newline (keep_trailing_newline=False) */
    char *s = ech_arena_alloc(a, len + 1, 1);
    if (!s)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n')
                i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n')
        n--;
    s[n] = '\0';
    lexer L = {.a = a, .s = s, .n = n, .line = 1, .err = err, .line_starting = true};
    ech_status st = ECH_OK;
    while (L.pos < L.n) {
        /* the next "{{", "{%" or "{#" */
        size_t i = L.pos;
        const char *hit = NULL;
        while (i + 1 < L.n) {
            const char *q = memchr(L.s + i, '{', L.n - i - 1);
            if (!q)
                break;
            if (q[1] == '{' || q[1] == '%' || q[1] == '#') {
                hit = q;
                break;
            }
            i = (size_t)(q - L.s) + 1;
        }
        if (!hit) {
            if ((st = emit_text(&L, L.pos, L.n)))
                goto fail;
            L.line += (int)count_nl(L.s + L.pos, L.n - L.pos);
            L.pos = L.n;
            break;
        }
        size_t tag = (size_t)(hit - L.s);
        char kind = hit[1];
        char sign = tag + 2 < L.n ? L.s[tag + 2] : 0;
        if (sign != '-' && sign != '+')
            sign = 0;
        if (kind == '{' && sign == '+')
            sign = 0;   /* "{{+" is not a marker */
        size_t text_end = tag;
        if (sign == '-') {
            text_end = rstrip_len(L.s, L.pos, tag);
        } else if (sign != '+' && kind != '{') {
            /* lstrip_blocks: only whitespace between the line start and the tag */
            size_t ls = tag;
            while (ls > L.pos && L.s[ls - 1] != '\n')
                ls--;
            if (ls > L.pos || L.line_starting) {
                size_t k = tag, w;
                while ((w = ws_before(L.s, ls, k)) != 0)
                    k -= w;
                if (k == ls)
                    text_end = ls;
            }
        }
        if ((st = emit_text(&L, L.pos, text_end)))
            goto fail;
        L.line += (int)count_nl(L.s + L.pos, tag - L.pos);
        L.pos = tag + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            const char *e = NULL;
            for (size_t j = L.pos; j + 1 < L.n; j++)
                if (L.s[j] == '#' && L.s[j + 1] == '}') {
                    e = L.s + j;
                    break;
                }
            if (!e) {
                st = lex_fail(&L, "missing end of comment tag");
                goto fail;
            }
            size_t ce = (size_t)(e - L.s);
            bool minus = ce > L.pos && L.s[ce - 1] == '-';
            bool plus = ce > L.pos && L.s[ce - 1] == '+';
            L.line += (int)count_nl(L.s + L.pos, ce - L.pos);
            L.pos = ce + 2;
            L.line_starting = false;
            if (minus) {
                size_t k;
                while ((k = ws_at(L.s, L.pos, L.n)) != 0) {
                    L.line_starting = L.s[L.pos] == '\n';
                    L.line += L.s[L.pos] == '\n';
                    L.pos += k;
                }
            } else if (!plus && L.pos < L.n && L.s[L.pos] == '\n') {
                L.pos++;
                L.line++;
                L.line_starting = true;
            }
            continue;
        }
        if (kind == '%') {
            int r = try_raw(&L, L.pos);
            if (r < 0) {
                st = L.err && L.err->code ? L.err->code : ECH_ERR_NOMEM;
                goto fail;
            }
            if (r > 0)
                continue;
        }
        if (!push(&L, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN)) {
            st = ECH_ERR_NOMEM;
            goto fail;
        }
        if ((st = lex_tag(&L, kind == '%')))
            goto fail;
    }
    if (!push(&L, TK_EOF)) {
        st = ECH_ERR_NOMEM;
        goto fail;
    }
    *out = L.toks;
    *ntok = L.ntok;
    return ECH_OK;
fail:
    if (st == ECH_ERR_NOMEM)
        ech_error_set(err, ECH_ERR_NOMEM, "out of memory (or more than %d tokens)", MAX_TOKENS);
    return st;
}
