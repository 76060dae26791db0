/* value.c - Python-like values for the template evaluator: construction,
 * truth, equality, ordering, str()/repr(), json.dumps and json-c input. */
#include "chat/value.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

ech_jv ech_jv_undefined = {.type = JV_UNDEF};
ech_jv ech_jv_none = {.type = JV_NONE};
ech_jv ech_jv_true = {.type = JV_BOOL, .b = true};
ech_jv ech_jv_false = {.type = JV_BOOL, .b = false};
ech_jv ech_jv_empty = {.type = JV_STR, .s = {"", 0}};

/* ---- allocation --------------------------------------------------------- */

void *ech_jv_alloc(ech_jv_heap *h, size_t n)
{
    if (h->exhausted)
        return NULL;
    if (h->limit && (n > h->limit || h->arena->allocated > h->limit - n)) {
        h->exhausted = true;
        return NULL;
    }
    void *p = ech_arena_alloc(h->arena, n, 0);
    if (!p)
        h->exhausted = true;
    return p;
}

ech_jv *ech_jv_new(ech_jv_heap *h, ech_jv_type t)
{
    ech_jv *v = ech_jv_alloc(h, sizeof *v);
    if (v) {
        memset(v, 0, sizeof *v);
        v->type = (uint8_t)t;
    }
    return v;
}

ech_jv *ech_jv_int(ech_jv_heap *h, int64_t i)
{
    ech_jv *v = ech_jv_new(h, JV_INT);
    if (v)
        v->i = i;
    return v;
}

ech_jv *ech_jv_float(ech_jv_heap *h, double f)
{
    ech_jv *v = ech_jv_new(h, JV_FLOAT);
    if (v)
        v->f = f;
    return v;
}

ech_jv *ech_jv_str_ref(ech_jv_heap *h, const char *p, size_t n)
{
    ech_jv *v = ech_jv_new(h, JV_STR);
    if (v) {
        v->s.p = n ? p : "";
        v->s.n = n;
    }
    return v;
}

ech_jv *ech_jv_str(ech_jv_heap *h, const char *p, size_t n)
{
    if (n == 0)
        return ech_jv_str_ref(h, "", 0);
    char *c = ech_jv_alloc(h, n);
    if (!c)
        return NULL;
    memcpy(c, p, n);
    return ech_jv_str_ref(h, c, n);
}

ech_jv *ech_jv_cstr(ech_jv_heap *h, const char *s)
{
    return ech_jv_str_ref(h, s, strlen(s));
}

ech_jv *ech_jv_list(ech_jv_heap *h, size_t cap)
{
    ech_jv *v = ech_jv_new(h, JV_LIST);
    if (v && cap) {
        if (cap > SIZE_MAX / sizeof(ech_jv *) || !(v->l.v = ech_jv_alloc(h, cap * sizeof(ech_jv *))))
            return NULL;
        v->l.cap = cap;
    }
    return v;
}

ech_jv *ech_jv_dict(ech_jv_heap *h, size_t cap)
{
    ech_jv *v = ech_jv_new(h, JV_DICT);
    if (v && cap) {
        if (cap > SIZE_MAX / sizeof(ech_jv_pair) || !(v->d.v = ech_jv_alloc(h, cap * sizeof(ech_jv_pair))))
            return NULL;
        v->d.cap = cap;
    }
    return v;
}

ech_jv *ech_jv_undef(ech_jv_heap *h, const ech_jv *obj, const ech_jv *name, const char *hint)
{
    ech_jv *v = ech_jv_new(h, JV_UNDEF);
    if (v) {
        v->u.obj = obj;
        v->u.name = name;
        v->u.hint = hint;
    }
    return v;
}

/* Grow an arena array to hold one more element (old storage is abandoned to
 * the arena; doubling keeps the waste within a factor of two). */
static bool grow(ech_jv_heap *h, void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 4;
    if (nc > SIZE_MAX / elem)
        return false;
    void *p = ech_jv_alloc(h, nc * elem);
    if (!p)
        return false;
    if (n)
        memcpy(p, *arr, n * elem);
    *arr = p;
    *cap = nc;
    return true;
}

bool ech_jv_list_push(ech_jv_heap *h, ech_jv *l, ech_jv *v)
{
    void *arr = l->l.v;
    if (!grow(h, &arr, &l->l.cap, l->l.n, sizeof(ech_jv *)))
        return false;
    l->l.v = arr;
    l->l.v[l->l.n++] = v;
    return true;
}

static bool str_eq(const ech_jv *a, const char *p, size_t n)
{
    return a->type == JV_STR && a->s.n == n && memcmp(a->s.p, p, n) == 0;
}

ech_jv *ech_jv_dict_gets(const ech_jv *d, const char *k, size_t n)
{
    for (size_t i = 0; i < d->d.n; i++)
        if (str_eq(d->d.v[i].key, k, n))
            return d->d.v[i].val;
    return NULL;
}

static ech_jv_pair *dict_find(const ech_jv *d, const ech_jv *k)
{
    if (k->type == JV_STR) {
        for (size_t i = 0; i < d->d.n; i++)
            if (str_eq(d->d.v[i].key, k->s.p, k->s.n))
                return &d->d.v[i];
        return NULL;
    }
    for (size_t i = 0; i < d->d.n; i++)
        if (ech_jv_eq(d->d.v[i].key, k))
            return &d->d.v[i];
    return NULL;
}

ech_jv *ech_jv_dict_get(const ech_jv *d, const ech_jv *k)
{
    ech_jv_pair *p = dict_find(d, k);
    return p ? p->val : NULL;
}

bool ech_jv_dict_set(ech_jv_heap *h, ech_jv *d, ech_jv *k, ech_jv *v)
{
    ech_jv_pair *p = dict_find(d, k);
    if (p) {
        p->val = v;
        return true;
    }
    void *arr = d->d.v;
    if (!grow(h, &arr, &d->d.cap, d->d.n, sizeof(ech_jv_pair)))
        return false;
    d->d.v = arr;
    d->d.v[d->d.n].key = k;
    d->d.v[d->d.n].val = v;
    d->d.n++;
    return true;
}

/* ---- Python semantics ----------------------------------------------------- */

bool ech_jv_is_str(const ech_jv *v) { return v->type == JV_STR; }

bool ech_jv_truthy(const ech_jv *v)
{
    switch (v->type) {
    case JV_UNDEF: case JV_NONE: return false;
    case JV_BOOL: return v->b;
    case JV_INT: return v->i != 0;
    case JV_FLOAT: return v->f != 0.0;
    case JV_STR: return v->s.n != 0;
    case JV_LIST: return (v->flags & JV_F_GEN) || v->l.n != 0;
    case JV_DICT: return (v->flags & JV_F_NS) || v->d.n != 0;
    default: return true;
    }
}

static double num(const ech_jv *v)
{
    return v->type == JV_FLOAT ? v->f : v->type == JV_INT ? (double)v->i : (double)v->b;
}

bool ech_jv_eq(const ech_jv *a, const ech_jv *b)
{
    if (a == b)
        return true;
    if (ech_jv_is_num(a) && ech_jv_is_num(b)) {
        if (a->type != JV_FLOAT && b->type != JV_FLOAT)
            return (a->type == JV_INT ? a->i : a->b) == (b->type == JV_INT ? b->i : b->b);
        return num(a) == num(b);
    }
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case JV_UNDEF: case JV_NONE: return true;
    case JV_STR: return a->s.n == b->s.n && memcmp(a->s.p, b->s.p, a->s.n) == 0;
    case JV_LIST:
        if ((a->flags & JV_F_TUPLE) != (b->flags & JV_F_TUPLE) || a->l.n != b->l.n ||
            (a->flags & JV_F_GEN) || (b->flags & JV_F_GEN))
            return false;
        for (size_t i = 0; i < a->l.n; i++)
            if (!ech_jv_eq(a->l.v[i], b->l.v[i]))
                return false;
        return true;
    case JV_DICT:
        if ((a->flags & JV_F_NS) || (b->flags & JV_F_NS) || a->d.n != b->d.n)
            return false;
        for (size_t i = 0; i < a->d.n; i++) {
            ech_jv *o = ech_jv_dict_get(b, a->d.v[i].key);
            if (!o || !ech_jv_eq(a->d.v[i].val, o))
                return false;
        }
        return true;
    case JV_FUNC:
        return a->fn.kind == b->fn.kind && a->fn.node == b->fn.node && a->fn.fn == b->fn.fn &&
               a->fn.self == b->fn.self && a->fn.name == b->fn.name;
    default: return false;
    }
}

bool ech_jv_cmp(const ech_jv *a, const ech_jv *b, int *cmp)
{
    if (ech_jv_is_num(a) && ech_jv_is_num(b)) {
        if (a->type != JV_FLOAT && b->type != JV_FLOAT) {
            int64_t x = a->type == JV_INT ? a->i : a->b, y = b->type == JV_INT ? b->i : b->b;
            *cmp = x < y ? -1 : x > y;
        } else {
            double x = num(a), y = num(b);
            if (isnan(x) || isnan(y)) {
                *cmp = 2;   /* unordered: every comparison is false */
                return true;
            }
            *cmp = x < y ? -1 : x > y;
        }
        return true;
    }
    if (a->type == JV_STR && b->type == JV_STR) {
        size_t n = a->s.n < b->s.n ? a->s.n : b->s.n;
        int c = n ? memcmp(a->s.p, b->s.p, n) : 0;   /* UTF-8 byte order is code point order */
        *cmp = c < 0 ? -1 : c > 0 ? 1 : a->s.n < b->s.n ? -1 : a->s.n > b->s.n;
        return true;
    }
    if (a->type == JV_LIST && b->type == JV_LIST && !((a->flags | b->flags) & JV_F_GEN) &&
        (a->flags & JV_F_TUPLE) == (b->flags & JV_F_TUPLE)) {
        for (size_t i = 0; i < a->l.n && i < b->l.n; i++) {
            if (ech_jv_eq(a->l.v[i], b->l.v[i]))
                continue;
            return ech_jv_cmp(a->l.v[i], b->l.v[i], cmp);
        }
        *cmp = a->l.n < b->l.n ? -1 : a->l.n > b->l.n;
        return true;
    }
    return false;
}

const char *ech_jv_pytype(const ech_jv *v)
{
    switch (v->type) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return v->flags & JV_F_MARKUP ? "Markup" : "str";
    case JV_LIST:
        return v->flags & JV_F_GEN ? "generator" : v->flags & JV_F_TUPLE ? "tuple"
               : v->flags & JV_F_ITEMS ? "dict_items" : "list";
    case JV_DICT: return v->flags & JV_F_NS ? "Namespace" : "dict";
    case JV_FUNC:
        return v->fn.kind == JF_MACRO ? "Macro" : v->fn.kind == JF_METHOD ? "builtin_function_or_method"
                                                                          : "function";
    case JV_LOOP: return "LoopContext";
    }
    return "object";
}

const char *ech_jv_objrepr(const ech_jv *v)
{
    switch (v->type) {
    case JV_NONE: return "None";
    case JV_UNDEF: return "jinja2.runtime.Undefined object";
    case JV_BOOL: return "bool object";
    case JV_INT: return "int object";
    case JV_FLOAT: return "float object";
    case JV_STR: return v->flags & JV_F_MARKUP ? "markupsafe.Markup object" : "str object";
    case JV_LIST:
        return v->flags & JV_F_GEN ? "generator object" : v->flags & JV_F_TUPLE ? "tuple object"
               : v->flags & JV_F_ITEMS ? "dict_items object" : "list object";
    case JV_DICT: return v->flags & JV_F_NS ? "jinja2.utils.Namespace object" : "dict object";
    case JV_FUNC:
        return v->fn.kind == JF_MACRO ? "jinja2.runtime.Macro object"
               : v->fn.kind == JF_METHOD ? "builtin_function_or_method object" : "function object";
    case JV_LOOP: return "jinja2.runtime.LoopContext object";
    }
    return "object";
}

/* ---- UTF-8 ---------------------------------------------------------------- */

size_t ech_jv_utf8_next(const char *p, size_t n, uint32_t *cp)
{
    unsigned char c = (unsigned char)p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t k = ech_utf8_decode((const uint8_t *)p, n, cp);
    if (k == 0) {
        *cp = c;
        return 1;
    }
    return k;
}

size_t ech_jv_utf8_len(const char *p, size_t n)
{
    size_t count = 0;
    uint32_t cp;
    for (size_t i = 0; i < n; count++)
        i += ech_jv_utf8_next(p + i, n - i, &cp);
    return count;
}

size_t ech_jv_utf8_offset(const char *p, size_t n, size_t k)
{
    size_t i = 0;
    uint32_t cp;
    while (k-- && i < n)
        i += ech_jv_utf8_next(p + i, n - i, &cp);
    return i;
}

bool ech_jv_isspace(uint32_t c)
{
    return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}

/* ---- str() and repr() ----------------------------------------------------- */

void ech_jv_format_float(double f, char *out, size_t n)
{
    if (isnan(f)) {
        snprintf(out, n, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(out, n, f < 0 ? "-inf" : "inf");
        return;
    }
    /* Shortest %e that reads back exactly, then Python's layout rule: fixed
     * notation for exponents -4..15, scientific otherwise. */
    char e[40];
    int prec = 0;
    for (prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, f);
        if (strtod(e, NULL) == f)
            break;
    }
    char digits[24];
    size_t nd = 0;
    const char *q = e;
    bool neg = false;
    if (*q == '-')
        neg = true, q++;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9' && nd < sizeof digits - 1)
            digits[nd++] = *q;
    digits[nd] = '\0';
    int exp = *q == 'e' ? atoi(q + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        digits[--nd] = '\0';
    char buf[64];
    size_t len = 0;
    if (neg)
        buf[len++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            buf[len++] = '0';
            buf[len++] = '.';
            for (int i = 0; i < -exp - 1; i++)
                buf[len++] = '0';
            for (size_t i = 0; i < nd; i++)
                buf[len++] = digits[i];
        } else {
            for (int i = 0; i <= exp; i++)
                buf[len++] = (size_t)i < nd ? digits[i] : '0';
            buf[len++] = '.';
            if ((size_t)exp + 1 < nd)
                for (size_t i = (size_t)exp + 1; i < nd; i++)
                    buf[len++] = digits[i];
            else
                buf[len++] = '0';
        }
        buf[len] = '\0';
    } else {
        buf[len++] = digits[0];
        if (nd > 1) {
            buf[len++] = '.';
            for (size_t i = 1; i < nd; i++)
                buf[len++] = digits[i];
        }
        snprintf(buf + len, sizeof buf - len, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    snprintf(out, n, "%s", buf);
}

static bool put_str_repr(ech_buf *b, const char *p, size_t n)
{
    bool sq = memchr(p, '\'', n) != NULL, dq = memchr(p, '"', n) != NULL;
    char quote = sq && !dq ? '"' : '\'';
    if (ech_buf_putc(b, quote))
        return false;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = ech_jv_utf8_next(p + i, n - i, &cp);
        ech_status s = ECH_OK;
        if (cp == (uint32_t)quote || cp == '\\')
            s = ech_buf_printf(b, "\\%c", (char)cp);
        else if (cp == '\n')
            s = ech_buf_puts(b, "\\n");
        else if (cp == '\r')
            s = ech_buf_puts(b, "\\r");
        else if (cp == '\t')
            s = ech_buf_puts(b, "\\t");
        else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0xa0) || cp == 0xad)
            s = ech_buf_printf(b, "\\x%02x", (unsigned)cp);
        else if (cp == 0x2028 || cp == 0x2029 || (cp >= 0x200b && cp <= 0x200f) || cp == 0xfeff)
            s = ech_buf_printf(b, "\\u%04x", (unsigned)cp);
        else
            s = ech_buf_append(b, p + i, k);
        if (s)
            return false;
        i += k;
    }
    return ech_buf_putc(b, quote) == ECH_OK;
}

static bool put_seq(ech_buf *b, const ech_jv *v)
{
    bool tuple = v->flags & JV_F_TUPLE;
    if (ech_buf_puts(b, tuple ? "(" : "["))
        return false;
    for (size_t i = 0; i < v->l.n; i++) {
        if ((i && ech_buf_puts(b, ", ")) || !ech_jv_repr_to(b, v->l.v[i]))
            return false;
    }
    if (tuple && v->l.n == 1 && ech_buf_putc(b, ','))
        return false;
    return ech_buf_puts(b, tuple ? ")" : "]") == ECH_OK;
}

static bool put_dict(ech_buf *b, const ech_jv *v)
{
    if (ech_buf_putc(b, '{'))
        return false;
    for (size_t i = 0; i < v->d.n; i++) {
        if ((i && ech_buf_puts(b, ", ")) || !ech_jv_repr_to(b, v->d.v[i].key) ||
            ech_buf_puts(b, ": ") || !ech_jv_repr_to(b, v->d.v[i].val))
            return false;
    }
    return ech_buf_putc(b, '}') == ECH_OK;
}

bool ech_jv_repr_to(ech_buf *b, const ech_jv *v)
{
    if (v->type == JV_STR) {
        if ((v->flags & JV_F_MARKUP) && ech_buf_puts(b, "Markup("))
            return false;
        if (!put_str_repr(b, v->s.p, v->s.n))
            return false;
        return !(v->flags & JV_F_MARKUP) || ech_buf_putc(b, ')') == ECH_OK;
    }
    if (v->type == JV_UNDEF)
        return ech_buf_puts(b, "Undefined") == ECH_OK;
    return ech_jv_str_to(b, v);
}

bool ech_jv_str_to(ech_buf *b, const ech_jv *v)
{
    char tmp[64];
    switch (v->type) {
    case JV_UNDEF: return true;
    case JV_NONE: return ech_buf_puts(b, "None") == ECH_OK;
    case JV_BOOL: return ech_buf_puts(b, v->b ? "True" : "False") == ECH_OK;
    case JV_INT: return ech_buf_printf(b, "%" PRId64, v->i) == ECH_OK;
    case JV_FLOAT:
        ech_jv_format_float(v->f, tmp, sizeof tmp);
        return ech_buf_puts(b, tmp) == ECH_OK;
    case JV_STR: return ech_buf_append(b, v->s.p, v->s.n) == ECH_OK;
    case JV_LIST:
        if (v->flags & JV_F_GEN)
            return ech_buf_puts(b, "<generator object>") == ECH_OK;
        if (v->flags & JV_F_ITEMS)
            return !ech_buf_puts(b, "dict_items(") && put_seq(b, v) && !ech_buf_putc(b, ')');
        return put_seq(b, v);
    case JV_DICT:
        if (v->flags & JV_F_NS)
            return !ech_buf_puts(b, "<Namespace ") && put_dict(b, v) && !ech_buf_putc(b, '>');
        return put_dict(b, v);
    case JV_FUNC:
        if (v->fn.kind == JF_MACRO)
            return ech_buf_printf(b, "<Macro '%s'>", v->fn.name ? v->fn.name : "caller") == ECH_OK;
        return ech_buf_printf(b, "<built-in function %s>", v->fn.name ? v->fn.name : "?") == ECH_OK;
    case JV_LOOP:
        return ech_buf_printf(b, "<LoopContext %zu/%zu>", v->loop->i + 1, v->loop->n) == ECH_OK;
    }
    return true;
}

ech_jv *ech_jv_tostr(ech_jv_heap *h, ech_jv *v)
{
    if (v->type == JV_STR)
        return v;
    if (v->type == JV_UNDEF)
        return &ech_jv_empty;
    ech_buf b = {0};
    ech_jv *r = NULL;
    if (ech_jv_str_to(&b, v))
        r = ech_jv_str(h, b.data ? b.data : "", b.len);
    ech_buf_free(&b);
    return r;
}

/* ---- JSON ----------------------------------------------------------------- */

static bool json_str(ech_buf *b, const char *p, size_t n, bool ascii)
{
    if (ech_buf_putc(b, '"'))
        return false;
    size_t run = 0;   /* bytes copied verbatim, flushed in one append */
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        const char *esc = NULL;
        char tmp[16];
        size_t k = 1;
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            esc = tmp;
        } else if (c >= 0x80 && ascii) {
            uint32_t cp;
            k = ech_jv_utf8_next(p + i, n - i, &cp);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
            } else {
                snprintf(tmp, sizeof tmp, "\\u%04x", cp);
            }
            esc = tmp;
        }
        if (esc) {
            if ((run && ech_buf_append(b, p + i - run, run)) || ech_buf_puts(b, esc))
                return false;
            run = 0;
        } else {
            run++;
        }
        i += k;
    }
    if (run && ech_buf_append(b, p + n - run, run))
        return false;
    return ech_buf_putc(b, '"') == ECH_OK;
}

static bool json_newline(ech_buf *b, const ech_jv_json_opts *o, int depth)
{
    if (ech_buf_putc(b, '\n'))
        return false;
    for (int i = 0; i < depth; i++)
        if (ech_buf_puts(b, o->indent))
            return false;
    return true;
}

static bool json_num(ech_buf *b, const ech_jv *v)
{
    char tmp[64];
    if (v->type == JV_FLOAT) {
        if (isnan(v->f))
            return ech_buf_puts(b, "NaN") == ECH_OK;
        if (isinf(v->f))
            return ech_buf_puts(b, v->f < 0 ? "-Infinity" : "Infinity") == ECH_OK;
        ech_jv_format_float(v->f, tmp, sizeof tmp);
        return ech_buf_puts(b, tmp) == ECH_OK;
    }
    return ech_buf_printf(b, "%" PRId64, v->i) == ECH_OK;
}

/* A dict key as json.dumps writes it (non-string keys are converted). */
static bool json_key(ech_buf *b, const ech_jv *k, const ech_jv_json_opts *o, const char **why)
{
    switch (k->type) {
    case JV_STR: return json_str(b, k->s.p, k->s.n, o->ensure_ascii);
    case JV_NONE: return ech_buf_puts(b, "\"null\"") == ECH_OK;
    case JV_BOOL: return ech_buf_puts(b, k->b ? "\"true\"" : "\"false\"") == ECH_OK;
    case JV_INT: case JV_FLOAT:
        return !ech_buf_putc(b, '"') && json_num(b, k) && !ech_buf_putc(b, '"');
    default:
        *why = "keys must be str, int, float, bool or None";
        return false;
    }
}

static int cmp_pairs(const void *a, const void *b)
{
    const ech_jv_pair *x = *(const ech_jv_pair *const *)a, *y = *(const ech_jv_pair *const *)b;
    int c = 0;
    if (!ech_jv_cmp(x->key, y->key, &c))
        return 0;
    return c;
}

bool ech_jv_to_json(ech_buf *b, const ech_jv *v, const ech_jv_json_opts *o, int depth,
                    const char **why)
{
    if (depth > 256) {
        *why = "maximum recursion depth exceeded while encoding a JSON object";
        return false;
    }
    const char *isep = o->item_sep ? o->item_sep : o->indent ? "," : ", ";
    const char *ksep = o->key_sep ? o->key_sep : ": ";
    switch (v->type) {
    case JV_NONE: return ech_buf_puts(b, "null") == ECH_OK;
    case JV_BOOL: return ech_buf_puts(b, v->b ? "true" : "false") == ECH_OK;
    case JV_INT: case JV_FLOAT: return json_num(b, v);
    case JV_STR: return json_str(b, v->s.p, v->s.n, o->ensure_ascii);
    case JV_LIST:
        if (v->flags & (JV_F_GEN | JV_F_ITEMS))
            break;
        if (v->l.n == 0)
            return ech_buf_puts(b, "[]") == ECH_OK;
        if (ech_buf_putc(b, '['))
            return false;
        for (size_t i = 0; i < v->l.n; i++) {
            if (i && ech_buf_puts(b, isep))
                return false;
            if (o->indent && !json_newline(b, o, depth + 1))
                return false;
            if (!ech_jv_to_json(b, v->l.v[i], o, depth + 1, why))
                return false;
        }
        if (o->indent && !json_newline(b, o, depth))
            return false;
        return ech_buf_putc(b, ']') == ECH_OK;
    case JV_DICT: {
        if (v->flags & JV_F_NS)
            break;
        if (v->d.n == 0)
            return ech_buf_puts(b, "{}") == ECH_OK;
        const ech_jv_pair **order = malloc(v->d.n * sizeof *order);
        if (!order)
            return false;
        for (size_t i = 0; i < v->d.n; i++)
            order[i] = &v->d.v[i];
        if (o->sort_keys) {
            for (size_t i = 1; i < v->d.n; i++) {
                int c;
                if (!ech_jv_cmp(order[0]->key, order[i]->key, &c)) {
                    free(order);
                    *why = "'<' not supported between dict keys of different types";
                    return false;
                }
            }
            /* qsort is not stable, but keys are distinct */
            qsort(order, v->d.n, sizeof *order, cmp_pairs);
        }
        bool ok = ech_buf_putc(b, '{') == ECH_OK;
        for (size_t i = 0; ok && i < v->d.n; i++) {
            ok = !(i && ech_buf_puts(b, isep)) && !(o->indent && !json_newline(b, o, depth + 1)) &&
                 json_key(b, order[i]->key, o, why) && !ech_buf_puts(b, ksep) &&
                 ech_jv_to_json(b, order[i]->val, o, depth + 1, why);
        }
        free(order);
        if (!ok || (o->indent && !json_newline(b, o, depth)))
            return false;
        return ech_buf_putc(b, '}') == ECH_OK;
    }
    default:
        break;
    }
    const char *t = ech_jv_pytype(v);
    if (!strcmp(t, "generator"))
        *why = "Object of type generator is not JSON serializable";
    else if (!strcmp(t, "Undefined"))
        *why = "Object of type Undefined is not JSON serializable";
    else if (!strcmp(t, "Namespace"))
        *why = "Object of type Namespace is not JSON serializable";
    else if (!strcmp(t, "dict_items"))
        *why = "Object of type dict_items is not JSON serializable";
    else if (!strcmp(t, "Macro"))
        *why = "Object of type Macro is not JSON serializable";
    else if (!strcmp(t, "LoopContext"))
        *why = "Object of type LoopContext is not JSON serializable";
    else
        *why = "Object of type function is not JSON serializable";
    return false;
}

ech_jv *ech_jv_from_json(ech_jv_heap *h, json_object *j, int depth)
{
    if (depth > 128)
        return NULL;
    switch (json_object_get_type(j)) {
    case json_type_null: return JV_NONE_V;
    case json_type_boolean: return JV_BOOLV(json_object_get_boolean(j));
    case json_type_int: return ech_jv_int(h, json_object_get_int64(j));
    case json_type_double: return ech_jv_float(h, json_object_get_double(j));
    case json_type_string:
        return ech_jv_str(h, json_object_get_string(j), (size_t)json_object_get_string_len(j));
    case json_type_array: {
        size_t n = json_object_array_length(j);
        ech_jv *l = ech_jv_list(h, n);
        if (!l)
            return NULL;
        for (size_t i = 0; i < n; i++) {
            ech_jv *e = ech_jv_from_json(h, json_object_array_get_idx(j, i), depth + 1);
            if (!e)
                return NULL;
            l->l.v[l->l.n++] = e;
        }
        return l;
    }
    case json_type_object: {
        ech_jv *d = ech_jv_dict(h, (size_t)json_object_object_length(j));
        if (!d)
            return NULL;
        json_object_object_foreach(j, key, val) {
            ech_jv *k = ech_jv_str(h, key, strlen(key));
            ech_jv *e = ech_jv_from_json(h, val, depth + 1);
            if (!k || !e || !ech_jv_dict_set(h, d, k, e))
                return NULL;
        }
        return d;
    }
    }
    return NULL;
}
