/* filters.c - jinja2's built-in filters and tests, plus the tojson that
 * Hugging Face installs (json.dumps with ensure_ascii=False), and Python's
 * printf-style formatting for `%` and |format. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/eval.h"
#include "chat/parser.h"

static ech_jv *terr(ech_jx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ech_jv *terr(ech_jx *x, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ech_jx_fail(x, ECH_ERR_INVALID, "%s", msg);
}

static ech_jv *str_of(ech_jx *x, ech_jv *v) { return ech_jx_str(x, v); }

static ech_jv *newstr(ech_jx *x, const char *p, size_t n)
{
    ech_jv *r = ech_jv_str(&x->heap, p, n);
    return r ? r : ech_jx_oom(x);
}

static ech_jv *buf_str(ech_jx *x, ech_buf *b, bool markup)
{
    ech_jv *r = newstr(x, b->data ? b->data : "", b->len);
    ech_buf_free(b);
    if (r && markup)
        r->flags |= JV_F_MARKUP;
    return r;
}

static bool as_int(const ech_jv *v, int64_t *i)
{
    if (v->type == JV_INT) { *i = v->i; return true; }
    if (v->type == JV_BOOL) { *i = v->b; return true; }
    return false;
}

static ech_jv *gen_list(ech_jx *x, size_t cap)
{
    ech_jv *l = ech_jv_list(&x->heap, cap);
    if (!l)
        return ech_jx_oom(x);
    l->flags = JV_F_GEN;
    return l;
}

/* ---- attribute getters (attribute="a.b" / "0") ------------------------------ */

static ech_jv *attr_path(ech_jx *x, ech_jv *item, ech_jv *attr)
{
    if (attr->type == JV_INT)
        return ech_jx_getitem(x, item, attr);
    if (attr->type != JV_STR)
        return ech_jx_getitem(x, item, attr);
    const char *p = attr->s.p, *end = p + attr->s.n;
    ech_jv *v = item;
    while (v) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t len = dot ? (size_t)(dot - p) : (size_t)(end - p);
        ech_jv *key;
        bool digits = len > 0;
        for (size_t i = 0; i < len; i++)
            digits = digits && p[i] >= '0' && p[i] <= '9';
        if (digits)
            key = ech_jv_int(&x->heap, strtoll(p, NULL, 10));
        else
            key = ech_jv_str_ref(&x->heap, p, len);
        if (!key)
            return ech_jx_oom(x);
        v = ech_jx_getitem(x, v, key);
        if (!dot)
            break;
        p = dot + 1;
    }
    return v;
}

/* ---- sorting (stable merge sort, Python's ordering) -------------------------- */

typedef struct sort_ctx {
    ech_jx *x;
    bool icase, failed;
} sort_ctx;

static ech_jv *fold(ech_jx *x, ech_jv *v, bool icase)
{
    if (icase && v->type == JV_STR)
        return ech_jx_case(x, v, 0);
    return v;
}

static int sort_cmp(sort_ctx *c, ech_jv *a, ech_jv *b)
{
    int r;
    if (c->failed)
        return 0;
    if (!ech_jv_cmp(a, b, &r)) {
        terr(c->x, "'<' not supported between instances of '%s' and '%s'", ech_jv_pytype(b),
             ech_jv_pytype(a));
        c->failed = true;
        return 0;
    }
    return r == 2 ? 0 : r;
}

/* sort idx[0..n) by keys[idx] */
static bool msort(sort_ctx *c, ech_jv **keys, size_t *idx, size_t *tmp, size_t n)
{
    if (n < 2)
        return true;
    size_t m = n / 2;
    msort(c, keys, idx, tmp, m);
    msort(c, keys, idx + m, tmp, n - m);
    size_t i = 0, j = m, k = 0;
    while (i < m && j < n)
        tmp[k++] = sort_cmp(c, keys[idx[j]], keys[idx[i]]) < 0 ? idx[j++] : idx[i++];
    while (i < m)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
    return !c->failed;
}

/* items sorted by keys; reverse keeps stability like Python's sorted(reverse=True) */
static ech_jv *sorted(ech_jx *x, ech_jv **items, ech_jv **keys, size_t n, bool reverse)
{
    size_t *idx = ech_jv_alloc(&x->heap, (n + 1) * sizeof *idx);
    size_t *tmp = ech_jv_alloc(&x->heap, (n + 1) * sizeof *tmp);
    ech_jv *out = ech_jv_list(&x->heap, n);
    if (!idx || !tmp || !out)
        return ech_jx_oom(x);
    for (size_t i = 0; i < n; i++)
        idx[i] = reverse ? n - 1 - i : i;
    sort_ctx c = {.x = x};
    if (!msort(&c, keys, idx, tmp, n))
        return NULL;
    for (size_t i = 0; i < n; i++)
        out->l.v[out->l.n++] = items[idx[reverse ? n - 1 - i : i]];
    return out;
}

/* ---- filters -------------------------------------------------------------------- */

#define FILTER(name) static ech_jv *f_##name(ech_jx *x, ech_jv *v, ech_jargs *a)
#define CHECK(fname, maxpos, ...)                                                       \
    do {                                                                              \
        static const char *const names_[] = {__VA_ARGS__};                            \
        if (!ech_jargs_check(x, a, fname, maxpos, names_))                            \
            return NULL;                                                              \
    } while (0)

FILTER(abs)
{
    CHECK("do_abs", 0, NULL);
    if (v->type == JV_INT) return v->i < 0 ? ech_jv_int(&x->heap, -v->i) : v;
    if (v->type == JV_BOOL) return ech_jv_int(&x->heap, v->b);
    if (v->type == JV_FLOAT) return ech_jv_float(&x->heap, fabs(v->f));
    return terr(x, "bad operand type for abs(): '%s'", ech_jv_pytype(v));
}

FILTER(attr)
{
    CHECK("do_attr", 1, NULL);
    ech_jv *n = ech_jarg(a, 0, NULL);
    if (!n)
        return terr(x, "do_attr() missing 1 required positional argument: 'name'");
    if (n->type != JV_STR)
        return terr(x, "attribute name must be string, not '%s'", ech_jv_pytype(n));
    return ech_jx_getattr(x, v, n);
}

FILTER(capitalize)
{
    CHECK("do_capitalize", 0, NULL);
    ech_jv *s = str_of(x, v);
    return s ? ech_jx_case(x, s, 3) : NULL;
}

FILTER(center)
{
    CHECK("do_center", 1, "width", NULL);
    ech_jv *s = str_of(x, v), *w = ech_jarg(a, 0, "width");
    int64_t width = 80;
    if (w && !as_int(w, &width))
        return terr(x, "'%s' object cannot be interpreted as an integer", ech_jv_pytype(w));
    if (!s)
        return NULL;
    int64_t len = (int64_t)ech_jv_utf8_len(s->s.p, s->s.n);
    if (width <= len)
        return s;
    if (width > 1 << 20)
        return ech_jx_fail(x, ECH_ERR_RANGE, "center() width too large");
    int64_t pad = width - len, left = pad / 2 + (pad & width & 1);
    ech_buf b = {0};
    for (int64_t i = 0; i < left; i++) ech_buf_putc(&b, ' ');
    ech_buf_append(&b, s->s.p, s->s.n);
    for (int64_t i = 0; i < pad - left; i++) ech_buf_putc(&b, ' ');
    return buf_str(x, &b, s->flags & JV_F_MARKUP);
}

FILTER(default)
{
    CHECK("do_default", 2, "default_value", "boolean", NULL);
    ech_jv *d = ech_jarg(a, 0, "default_value"), *bo = ech_jarg(a, 1, "boolean");
    if (v->type == JV_UNDEF || (bo && ech_jv_truthy(bo) && !ech_jv_truthy(v)))
        return d ? d : &ech_jv_empty;
    return v;
}

static ech_jv *do_length(ech_jx *x, ech_jv *v)
{
    switch (v->type) {
    case JV_UNDEF: return ech_jv_int(&x->heap, 0);
    case JV_STR: return ech_jv_int(&x->heap, (int64_t)ech_jv_utf8_len(v->s.p, v->s.n));
    case JV_LIST:
        if (v->flags & JV_F_GEN)
            break;
        return ech_jv_int(&x->heap, (int64_t)v->l.n);
    case JV_DICT:
        if (v->flags & JV_F_NS)
            break;
        return ech_jv_int(&x->heap, (int64_t)v->d.n);
    default: break;
    }
    return terr(x, "object of type '%s' has no len()", ech_jv_pytype(v));
}

FILTER(length)
{
    CHECK("do_length", 0, NULL);
    return do_length(x, v);
}

FILTER(dictsort)
{
    CHECK("do_dictsort", 3, "case_sensitive", "by", "reverse", NULL);
    ech_jv *cs = ech_jarg(a, 0, "case_sensitive"), *by = ech_jarg(a, 1, "by"),
           *rev = ech_jarg(a, 2, "reverse");
    if (v->type != JV_DICT || (v->flags & JV_F_NS))
        return terr(x, "'%s' object has no attribute 'items'", ech_jv_pytype(v));
    int pos = 0;
    if (by && by->type == JV_STR) {
        if (by->s.n == 5 && !memcmp(by->s.p, "value", 5))
            pos = 1;
        else if (!(by->s.n == 3 && !memcmp(by->s.p, "key", 3)))
            return terr(x, "You can only sort by either \"key\" or \"value\"");
    }
    ech_jv *items = ech_jx_items(x, v);
    if (!items)
        return NULL;
    size_t n = items->l.n;
    ech_jv **keys = ech_jv_alloc(&x->heap, (n + 1) * sizeof *keys);
    if (!keys)
        return ech_jx_oom(x);
    bool icase = !(cs && ech_jv_truthy(cs));
    for (size_t i = 0; i < n; i++)
        if (!(keys[i] = fold(x, items->l.v[i]->l.v[pos], icase)))
            return NULL;
    return sorted(x, items->l.v, keys, n, rev && ech_jv_truthy(rev));
}

FILTER(escape)
{
    CHECK("escape", 0, NULL);
    return ech_jx_escape(x, v);
}

FILTER(first)
{
    CHECK("do_first", 0, NULL);
    size_t n;
    ech_jv **it = ech_jx_iter(x, v, &n);
    if (!it)
        return NULL;
    if (n)
        return it[0];
    ech_jv *u = ech_jv_undef(&x->heap, NULL, NULL, "No first item, sequence was empty.");
    return u ? u : ech_jx_oom(x);
}

FILTER(last)
{
    CHECK("do_last", 0, NULL);
    if (v->type == JV_LIST && (v->flags & JV_F_GEN))
        return terr(x, "'generator' object is not reversible");
    size_t n;
    ech_jv **it = ech_jx_iter(x, v, &n);
    if (!it)
        return NULL;
    if (n)
        return it[n - 1];
    ech_jv *u = ech_jv_undef(&x->heap, NULL, NULL, "No last item, sequence was empty.");
    return u ? u : ech_jx_oom(x);
}

static bool parse_float(const char *p, size_t n, double *out)
{
    char buf[128];
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof buf - 1; i++)
        if (p[i] != '_')
            buf[k++] = p[i];
    buf[k] = '\0';
    char *s = buf;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
        s++;
    if (!*s)
        return false;
    char *end;
    *out = strtod(s, &end);
    while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r' || *end == '\f' || *end == '\v')
        end++;
    return *end == '\0' && n < sizeof buf;
}

FILTER(float)
{
    CHECK("do_float", 1, "default", NULL);
    ech_jv *d = ech_jarg(a, 0, "default");
    double f;
    if (v->type == JV_FLOAT) return v;
    if (v->type == JV_INT || v->type == JV_BOOL) return ech_jv_float(&x->heap, v->type == JV_INT ? (double)v->i : v->b);
    if (v->type == JV_STR && parse_float(v->s.p, v->s.n, &f)) return ech_jv_float(&x->heap, f);
    return d ? d : ech_jv_float(&x->heap, 0.0);
}

FILTER(int)
{
    CHECK("do_int", 2, "default", "base", NULL);
    ech_jv *d = ech_jarg(a, 0, "default"), *bv = ech_jarg(a, 1, "base");
    int64_t base = 10;
    if (bv && !as_int(bv, &base))
        base = 10;
    if (v->type == JV_INT) return v;
    if (v->type == JV_BOOL) return ech_jv_int(&x->heap, v->b);
    if (v->type == JV_FLOAT && isfinite(v->f) && fabs(v->f) < 9.2e18)
        return ech_jv_int(&x->heap, (int64_t)v->f);
    if (v->type == JV_STR && v->s.n < 100) {
        char buf[128];
        size_t k = 0;
        for (size_t i = 0; i < v->s.n; i++)
            if (v->s.p[i] != '_')
                buf[k++] = v->s.p[i];
        buf[k] = '\0';
        char *s = buf, *end;
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
            s++;
        if (*s && base >= 2 && base <= 36) {
            long long r = strtoll(s, &end, (int)base);
            while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
                end++;
            if (!*end && (s[0] != '0' || s[1] != 'x' || base == 16))
                return ech_jv_int(&x->heap, r);
        }
        double f;
        if (parse_float(v->s.p, v->s.n, &f) && isfinite(f) && fabs(f) < 9.2e18)
            return ech_jv_int(&x->heap, (int64_t)f);
    }
    return d ? d : ech_jv_int(&x->heap, 0);
}

/* Python's str.splitlines() */
static ech_jv *splitlines(ech_jx *x, ech_jv *s)
{
    ech_jv *l = ech_jv_list(&x->heap, 0);
    if (!l)
        return ech_jx_oom(x);
    size_t st = 0, i = 0;
    while (i < s->s.n) {
        uint32_t cp;
        size_t k = ech_jv_utf8_next(s->s.p + i, s->s.n - i, &cp);
        bool nl = cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || (cp >= 0x1c && cp <= 0x1e) ||
                  cp == 0x85 || cp == 0x2028 || cp == 0x2029;
        if (!nl) {
            i += k;
            continue;
        }
        ech_jv *e = ech_jv_str_ref(&x->heap, s->s.p + st, i - st);
        if (!e || !ech_jv_list_push(&x->heap, l, e))
            return ech_jx_oom(x);
        e->flags = s->flags & JV_F_MARKUP;
        i += k;
        if (cp == '\r' && i < s->s.n && s->s.p[i] == '\n')
            i++;
        st = i;
    }
    if (st < s->s.n) {
        ech_jv *e = ech_jv_str_ref(&x->heap, s->s.p + st, s->s.n - st);
        if (!e || !ech_jv_list_push(&x->heap, l, e))
            return ech_jx_oom(x);
        e->flags = s->flags & JV_F_MARKUP;
    }
    return l;
}

FILTER(indent)
{
    CHECK("do_indent", 3, "width", "first", "blank", NULL);
    ech_jv *w = ech_jarg(a, 0, "width"), *first = ech_jarg(a, 1, "first"), *blank = ech_jarg(a, 2, "blank");
    ech_jv *s = str_of(x, v);
    if (!s)
        return NULL;
    ech_buf ind = {0};
    if (w && w->type == JV_STR) {
        ech_buf_append(&ind, w->s.p, w->s.n);
    } else {
        int64_t n = 4;
        if (w && !as_int(w, &n))
            return terr(x, "can't multiply sequence by non-int of type '%s'", ech_jv_pytype(w));
        for (int64_t i = 0; i < n && i < 4096; i++)
            ech_buf_putc(&ind, ' ');
    }
    /* s += "\n"; lines = s.splitlines() */
    ech_jv nl = {.type = JV_STR, .s = {"\n", 1}};
    ech_buf tmp = {0};
    ech_buf_append(&tmp, s->s.p, s->s.n);
    ech_buf_append(&tmp, nl.s.p, 1);
    ech_jv sv = {.type = JV_STR, .flags = s->flags, .s = {tmp.data ? tmp.data : "", tmp.len}};
    ech_jv *lines = splitlines(x, &sv);
    ech_buf b = {0};
    bool ok = lines != NULL;
    const char *ip = ind.data ? ind.data : "";
    if (ok && blank && ech_jv_truthy(blank)) {
        for (size_t i = 0; i < lines->l.n; i++) {
            if (i) {
                ech_buf_putc(&b, '\n');
                ech_buf_append(&b, ip, ind.len);
            }
            ech_buf_append(&b, lines->l.v[i]->s.p, lines->l.v[i]->s.n);
        }
    } else if (ok) {
        for (size_t i = 0; i < lines->l.n; i++) {
            ech_jv *ln = lines->l.v[i];
            if (i) {
                ech_buf_putc(&b, '\n');
                if (ln->s.n)
                    ech_buf_append(&b, ip, ind.len);
            }
            ech_buf_append(&b, ln->s.p, ln->s.n);
        }
    }
    ech_jv *r = NULL;
    if (ok) {
        if (first && ech_jv_truthy(first)) {
            ech_buf f = {0};
            ech_buf_append(&f, ip, ind.len);
            ech_buf_append(&f, b.data ? b.data : "", b.len);
            ech_buf_free(&b);
            b = f;
        }
        r = buf_str(x, &b, s->flags & JV_F_MARKUP);
    }
    ech_buf_free(&b);
    ech_buf_free(&tmp);
    ech_buf_free(&ind);
    return r;
}

FILTER(items)
{
    CHECK("do_items", 0, NULL);
    if (v->type == JV_UNDEF)
        return gen_list(x, 0);
    if (v->type != JV_DICT || (v->flags & JV_F_NS))
        return terr(x, "Can only get item pairs from a mapping.");
    ech_jv *l = ech_jx_items(x, v);
    if (l)
        l->flags = JV_F_GEN;
    return l;
}

FILTER(join)
{
    CHECK("do_join", 2, "d", "attribute", NULL);
    ech_jv *d = ech_jarg(a, 0, "d"), *attr = ech_jarg(a, 1, "attribute");
    size_t n;
    ech_jv **it = ech_jx_iter(x, v, &n);
    if (!it)
        return NULL;
    ech_jv *sep = d ? str_of(x, d) : &ech_jv_empty;
    if (!sep)
        return NULL;
    ech_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        ech_jv *e = it[i];
        if (attr && !(e = attr_path(x, e, attr)))
            goto fail;
        ech_jv *s = str_of(x, e);
        if (!s)
            goto fail;
        if ((i && ech_buf_append(&b, sep->s.p, sep->s.n)) || ech_buf_append(&b, s->s.p, s->s.n)) {
            ech_jx_oom(x);
            goto fail;
        }
    }
    return buf_str(x, &b, false);
fail:
    ech_buf_free(&b);
    return NULL;
}

FILTER(list)
{
    CHECK("do_list", 0, NULL);
    size_t n;
    ech_jv **it = ech_jx_iter(x, v, &n);
    if (!it)
        return NULL;
    ech_jv *l = ech_jv_list(&x->heap, n);
    if (!l)
        return ech_jx_oom(x);
    if (n)
        memcpy(l->l.v, it, n * sizeof *it);
    l->l.n = n;
    return l;
}

FILTER(lower)
{
    CHECK("do_lower", 0, NULL);
    ech_jv *s = str_of(x, v);
    return s ? ech_jx_case(x, s, 0) : NULL;
}

FILTER(upper)
{
    CHECK("do_upper", 0, NULL);
    ech_jv *s = str_of(x, v);
    return s ? ech_jx_case(x, s, 1) : NULL;
}

FILTER(title)
{
    CHECK("do_title", 0, NULL);
    ech_jv *s = str_of(x, v);
    return s ? ech_jx_case(x, s, 5) : NULL;
}

/* Apply a filter or test named by a string to one value, with extra args. */
static ech_jv *call_named_filter(ech_jx *x, const ech_jv *name, ech_jv *v, ech_jargs *rest)
{
    char nm[64];
    if (name->s.n >= sizeof nm)
        return terr(x, "No filter named '%.*s'.", (int)name->s.n, name->s.p);
    memcpy(nm, name->s.p, name->s.n);
    nm[name->s.n] = '\0';
    ech_jfilter_fn f = ech_jfilter_lookup(nm);
    if (!f)
        return terr(x, "No filter named '%s'.", nm);
    return f(x, v, rest);
}

static int call_named_test(ech_jx *x, const ech_jv *name, ech_jv *v, ech_jargs *rest)
{
    char nm[64];
    if (name->type != JV_STR || name->s.n >= sizeof nm) {
        terr(x, "No test named '%.*s'.", name->type == JV_STR ? (int)name->s.n : 1,
             name->type == JV_STR ? name->s.p : "?");
        return -1;
    }
    memcpy(nm, name->s.p, name->s.n);
    nm[name->s.n] = '\0';
    ech_jtest_fn t = ech_jtest_lookup(nm);
    if (!t) {
        terr(x, "No test named '%s'.", nm);
        return -1;
    }
    return t(x, v, rest);
}

FILTER(map)
{
    size_t n;
    if (!ech_jv_truthy(v))   /* jinja2: "if value:" before iterating */
        return gen_list(x, 0);
    ech_jv **it = ech_jx_iter(x, v, &n);
    if (!it)
        return NULL;
    ech_jv *out = gen_list(x, n);
    if (!out)
        return NULL;
    ech_jv *attr = NULL, *def = NULL;
    for (size_t k = 0; k < a->nkw; k++) {
        if (!strcmp(a->kwname[k], "attribute")) attr = a->kwval[k];
        else if (!strcmp(a->kwname[k], "default")) def = a->kwval[k];
    }
    if (!a->npos && attr) {
        for (size_t i = 0; i < n; i++) {
            ech_jv *e = attr_path(x, it[i], attr);
            if (!e)
                return NULL;
            if (e->type == JV_UNDEF && def)
                e = def;
            out->l.v[out->l.n++] = e;
        }
        return out;
    }
    if (!a->npos)
        return terr(x, "map requires a filter argument");
    if (a->pos[0]->type != JV_STR)
        return terr(x, "map requires a filter name");
    ech_jargs rest = {a->pos + 1, a->npos - 1, a->kwname, a->kwval, a->nkw};
    for (size_t i = 0; i < n; i++) {
        ech_jv *e = call_named_filter(x, a->pos[0], it[i], &rest);
        if (!e)
            return NULL;
        out->l.v[out->l.n++] = e;
    }
    return out;
}

/* select/reject/selectattr/rejectattr */
static ech_jv *select_common(ech_jx *x, ech_jv *v, ech_jargs *a, bool want, bool byattr)
{
    size_t n;
    if (!ech_jv_truthy(v))   /* jinja2: "if value:" before iterating */
        return gen_list(x, 0);
    ech_jv **it = ech_jx_iter(x, v, &n);
    if (!it)
        return NULL;
    ech_jv *out = gen_list(x, n);
    if (!out)
        return NULL;
    size_t off = 0;
    ech_jv *attr = NULL;
    if (byattr) {
        if (!a->npos)
            return terr(x, "Missing parameter for attribute name");
        attr = a->pos[0];
        off = 1;
    }
    ech_jv *test = a->npos > off ? a->pos[off] : NULL;
    ech_jargs rest = {a->pos + off + 1, test ? a->npos - off - 1 : 0, a->kwname, a->kwval, a->nkw};
    for (size_t i = 0; i < n; i++) {
        ech_jv *e = attr ? attr_path(x, it[i], attr) : it[i];
        if (!e)
            return NULL;
        int t;
        if (test) {
            t = call_named_test(x, test, e, &rest);
            if (t < 0)
                return NULL;
        } else {
            t = ech_jv_truthy(e);
        }
        if ((t != 0) == want)
            out->l.v[out->l.n++] = it[i];
    }
    return out;
}

FILTER(select) { return select_common(x, v, a, true, false); }
FILTER(reject) { return select_common(x, v, a, false, false); }
FILTER(selectattr) { return select_common(x, v, a, true, true); }
FILTER(rejectattr) { return select_common(x, v, a, false, true); }

static ech_jv *minmax(ech_jx *x, ech_jv *v, ech_jargs *a, bool want_max)
{
    CHECK(want_max ? "do_max" : "do_min", 2, "case_sensitive", "attribute", NULL);
    ech_jv *cs = ech_jarg(a, 0, "case_sensitive"), *attr = ech_jarg(a, 1, "attribute");
    size_t n;
    ech_jv **it = ech_jx_iter(x, v, &n);
    if (!it)
        return NULL;
    if (!n) {
        ech_jv *u = ech_jv_undef(&x->heap, NULL, NULL,
                                 want_max ? "No aggregated item, sequence was empty." : "No aggregated item, sequence was empty.");
        return u ? u : ech_jx_oom(x);
    }
    bool icase = !(cs && ech_jv_truthy(cs));
    ech_jv *best = NULL, *bestk = NULL;
    for (size_t i = 0; i < n; i++) {
        ech_jv *k = attr ? attr_path(x, it[i], attr) : it[i];
        if (!k || !(k = fold(x, k, icase)))
            return NULL;
        int c = 0;
        if (bestk && !ech_jv_cmp(k, bestk, &c))
            return terr(x, "'%s' not supported between instances of '%s' and '%s'", want_max ? ">" : "<",
                        ech_jv_pytype(k), ech_jv_pytype(bestk));
        if (!bestk || (want_max ? c == 1 : c == -1)) {
            best = it[i];
            bestk = k;
        }
    }
    return best;
}

FILTER(max) { return minmax(x, v, a, true); }
FILTER(min) { return minmax(x, v, a, false); }

FILTER(replace)
{
    CHECK("do_replace", 3, "old", "new", "count", NULL);
    ech_jv *o = ech_jarg(a, 0, "old"), *nw = ech_jarg(a, 1, "new"), *c = ech_jarg(a, 2, "count");
    if (!o || !nw)
        return terr(x, "do_replace() missing required arguments 'old' and 'new'");
    int64_t count = -1;
    if (c && c->type != JV_NONE && !as_int(c, &count))
        return terr(x, "'%s' object cannot be interpreted as an integer", ech_jv_pytype(c));
    ech_jv *s = str_of(x, v), *os = str_of(x, o), *ns = str_of(x, nw);
    if (!s || !os || !ns)
        return NULL;
    /* with autoescape off jinja2 replaces on plain str() copies */
    ech_jv ps = *s, po = *os, pn = *ns;
    ps.flags = po.flags = pn.flags = 0;
    return ech_jx_replace(x, &ps, &po, &pn, count);
}

FILTER(reverse)
{
    CHECK("do_reverse", 0, NULL);
    if (v->type == JV_STR) {
        size_t n;
        ech_jv **ch = ech_jx_iter(x, v, &n);
        if (!ch)
            return NULL;
        ech_buf b = {0};
        for (size_t i = n; i-- > 0;)
            ech_buf_append(&b, ch[i]->s.p, ch[i]->s.n);
        return buf_str(x, &b, v->flags & JV_F_MARKUP);
    }
    size_t n;
    ech_jv **it = ech_jx_iter(x, v, &n);
    if (!it)
        return NULL;
    ech_jv *l = ech_jv_list(&x->heap, n);
    if (!l)
        return ech_jx_oom(x);
    for (size_t i = n; i-- > 0;)
        l->l.v[l->l.n++] = it[i];
    /* reversed() of a sequence is an iterator; of a generator, list() of it */
    if (!(v->type == JV_LIST && (v->flags & JV_F_GEN)))
        l->flags = JV_F_GEN;
    return l;
}

FILTER(round)
{
    CHECK("do_round", 2, "precision", "method", NULL);
    ech_jv *p = ech_jarg(a, 0, "precision"), *m = ech_jarg(a, 1, "method");
    int64_t prec = 0;
    if (p && !as_int(p, &prec))
        return terr(x, "'%s' object cannot be interpreted as an integer", ech_jv_pytype(p));
    if (!ech_jv_is_num(v))
        return terr(x, "type %s doesn't define __round__ method", ech_jv_pytype(v));
    double f = v->type == JV_FLOAT ? v->f : v->type == JV_INT ? (double)v->i : v->b;
    double scale = pow(10.0, (double)prec);
    const char *meth = m && m->type == JV_STR ? m->s.p : "common";
    size_t ml = m && m->type == JV_STR ? m->s.n : 6;
    double r;
    if (ml == 4 && !memcmp(meth, "ceil", 4)) r = ceil(f * scale) / scale;
    else if (ml == 5 && !memcmp(meth, "floor", 5)) r = floor(f * scale) / scale;
    else if (ml == 6 && !memcmp(meth, "common", 6)) {
        r = nearbyint(f * scale) / scale;   /* Python's round(): half to even */
        char tmp[64];
        snprintf(tmp, sizeof tmp, "%.*f", prec > 0 && prec < 30 ? (int)prec : 0, f);
        if (prec >= 0 && prec < 30)
            r = strtod(tmp, NULL);
    } else
        return terr(x, "method must be 'common', 'ceil' or 'floor'");
    return ech_jv_float(&x->heap, r);
}

FILTER(safe)
{
    CHECK("do_mark_safe", 0, NULL);
    ech_jv *s = str_of(x, v);
    if (!s)
        return NULL;
    if (s->flags & JV_F_MARKUP)
        return s;
    ech_jv *r = ech_jv_str_ref(&x->heap, s->s.p, s->s.n);
    if (!r)
        return ech_jx_oom(x);
    r->flags = JV_F_MARKUP;
    return r;
}

FILTER(sort)
{
    CHECK("do_sort", 3, "reverse", "case_sensitive", "attribute", NULL);
    ech_jv *rev = ech_jarg(a, 0, "reverse"), *cs = ech_jarg(a, 1, "case_sensitive"),
           *attr = ech_jarg(a, 2, "attribute");
    size_t n;
    ech_jv **it = ech_jx_iter(x, v, &n);
    if (!it)
        return NULL;
    ech_jv **keys = ech_jv_alloc(&x->heap, (n + 1) * sizeof *keys);
    if (!keys)
        return ech_jx_oom(x);
    bool icase = !(cs && ech_jv_truthy(cs));
    for (size_t i = 0; i < n; i++) {
        ech_jv *k = attr ? attr_path(x, it[i], attr) : it[i];
        if (!k || !(keys[i] = fold(x, k, icase)))
            return NULL;
    }
    return sorted(x, it, keys, n, rev && ech_jv_truthy(rev));
}

FILTER(string)
{
    CHECK("soft_str", 0, NULL);
    return str_of(x, v);
}

FILTER(sum)
{
    CHECK("do_sum", 2, "attribute", "start", NULL);
    ech_jv *attr = ech_jarg(a, 0, "attribute"), *start = ech_jarg(a, 1, "start");
    size_t n;
    ech_jv **it = ech_jx_iter(x, v, &n);
    if (!it)
        return NULL;
    ech_jv *acc = start ? start : ech_jv_int(&x->heap, 0);
    for (size_t i = 0; acc && i < n; i++) {
        ech_jv *e = attr ? attr_path(x, it[i], attr) : it[i];
        if (!e)
            return NULL;
        if (!ech_jv_is_num(acc) || !ech_jv_is_num(e))
            return terr(x, "unsupported operand type(s) for +: '%s' and '%s'", ech_jv_pytype(acc),
                        ech_jv_pytype(e));
        if (acc->type == JV_FLOAT || e->type == JV_FLOAT) {
            double p = acc->type == JV_FLOAT ? acc->f : acc->type == JV_INT ? (double)acc->i : acc->b;
            double q = e->type == JV_FLOAT ? e->f : e->type == JV_INT ? (double)e->i : e->b;
            acc = ech_jv_float(&x->heap, p + q);
        } else {
            int64_t p = acc->type == JV_INT ? acc->i : acc->b, q = e->type == JV_INT ? e->i : e->b, r;
            if (__builtin_add_overflow(p, q, &r))
                return ech_jx_fail(x, ECH_ERR_RANGE, "integer overflow in sum");
            acc = ech_jv_int(&x->heap, r);
        }
    }
    return acc ? acc : ech_jx_oom(x);
}

FILTER(tojson)
{
    CHECK("tojson", 4, "ensure_ascii", "indent", "separators", "sort_keys", NULL);
    ech_jv *ea = ech_jarg(a, 0, "ensure_ascii"), *ind = ech_jarg(a, 1, "indent"),
           *seps = ech_jarg(a, 2, "separators"), *sk = ech_jarg(a, 3, "sort_keys");
    ech_jv_json_opts o = {.ensure_ascii = ea && ech_jv_truthy(ea), .sort_keys = sk && ech_jv_truthy(sk)};
    char spaces[256];
    if (ind && ind->type != JV_NONE) {
        int64_t k;
        if (ind->type == JV_STR) {
            char *s = ech_jv_alloc(&x->heap, ind->s.n + 1);
            if (!s)
                return ech_jx_oom(x);
            memcpy(s, ind->s.p, ind->s.n);
            s[ind->s.n] = '\0';
            o.indent = s;
        } else if (as_int(ind, &k)) {
            if (k < 0)
                k = 0;
            if (k >= (int64_t)sizeof spaces)
                return ech_jx_fail(x, ECH_ERR_RANGE, "tojson indent too large");
            memset(spaces, ' ', (size_t)k);
            spaces[k] = '\0';
            o.indent = spaces;
        } else {
            return terr(x, "can't multiply sequence by non-int of type '%s'", ech_jv_pytype(ind));
        }
    }
    if (seps && seps->type != JV_NONE) {
        if (seps->type != JV_LIST || seps->l.n != 2 || seps->l.v[0]->type != JV_STR ||
            seps->l.v[1]->type != JV_STR)
            return terr(x, "separators must be a pair of strings");
        char *s0 = ech_jv_alloc(&x->heap, seps->l.v[0]->s.n + 1), *s1 = ech_jv_alloc(&x->heap, seps->l.v[1]->s.n + 1);
        if (!s0 || !s1)
            return ech_jx_oom(x);
        memcpy(s0, seps->l.v[0]->s.p, seps->l.v[0]->s.n);
        s0[seps->l.v[0]->s.n] = '\0';
        memcpy(s1, seps->l.v[1]->s.p, seps->l.v[1]->s.n);
        s1[seps->l.v[1]->s.n] = '\0';
        o.item_sep = s0;
        o.key_sep = s1;
    }
    ech_buf b = {0};
    const char *why = NULL;
    if (!ech_jv_to_json(&b, v, &o, 0, &why)) {
        ech_buf_free(&b);
        return why ? terr(x, "%s", why) : ech_jx_oom(x);
    }
    return buf_str(x, &b, false);
}

FILTER(trim)
{
    CHECK("do_trim", 1, "chars", NULL);
    ech_jv *s = str_of(x, v);
    if (!s)
        return NULL;
    ech_jv *chars = ech_jarg(a, 0, "chars");
    /* str.strip(chars) through the method protocol */
    ech_jv *name = ech_jv_cstr(&x->heap, "strip");
    ech_jv *fn = name ? ech_jx_getattr(x, s, name) : NULL;
    if (!fn)
        return name ? NULL : ech_jx_oom(x);
    ech_jv *argv[1] = {chars};
    ech_jargs sa = {argv, chars ? 1 : 0, NULL, NULL, 0};
    return ech_jx_call(x, fn, &sa);
}

FILTER(unique)
{
    CHECK("do_unique", 2, "case_sensitive", "attribute", NULL);
    ech_jv *cs = ech_jarg(a, 0, "case_sensitive"), *attr = ech_jarg(a, 1, "attribute");
    size_t n;
    ech_jv **it = ech_jx_iter(x, v, &n);
    if (!it)
        return NULL;
    ech_jv *out = gen_list(x, n), *seen = ech_jv_list(&x->heap, n);
    if (!out || !seen)
        return ech_jx_oom(x);
    bool icase = !(cs && ech_jv_truthy(cs));
    for (size_t i = 0; i < n; i++) {
        ech_jv *k = attr ? attr_path(x, it[i], attr) : it[i];
        if (!k || !(k = fold(x, k, icase)))
            return NULL;
        bool dup = false;
        for (size_t j = 0; j < seen->l.n && !dup; j++)
            dup = ech_jv_eq(seen->l.v[j], k);
        if (!dup) {
            seen->l.v[seen->l.n++] = k;
            out->l.v[out->l.n++] = it[i];
        }
    }
    return out;
}

FILTER(wordcount)
{
    CHECK("do_wordcount", 0, NULL);
    ech_jv *s = str_of(x, v);
    if (!s)
        return NULL;
    int64_t c = 0;
    bool in = false;
    for (size_t i = 0; i < s->s.n; i++) {
        unsigned char ch = (unsigned char)s->s.p[i];
        bool w = ch >= 0x80 || ch == '_' || (ch >= '0' && ch <= '9') || ((ch | 32) >= 'a' && (ch | 32) <= 'z');
        if (w && !in)
            c++;
        in = w;
    }
    return ech_jv_int(&x->heap, c);
}

FILTER(format)
{
    ech_jv *s = str_of(x, v);
    if (!s)
        return NULL;
    if (a->npos && a->nkw)
        return terr(x, "can't handle positional and keyword arguments at the same time");
    ech_jv *args;
    if (a->nkw) {
        args = ech_jv_dict(&x->heap, a->nkw);
        for (size_t i = 0; args && i < a->nkw; i++)
            ech_jv_dict_set(&x->heap, args, ech_jv_cstr(&x->heap, a->kwname[i]), a->kwval[i]);
    } else {
        args = ech_jv_list(&x->heap, a->npos);
        if (args) {
            args->flags = JV_F_TUPLE;
            if (a->npos)
                memcpy(args->l.v, a->pos, a->npos * sizeof *a->pos);
            args->l.n = a->npos;
        }
    }
    if (!args)
        return ech_jx_oom(x);
    return ech_jx_printf(x, s, args);
}

FILTER(truncate)
{
    CHECK("do_truncate", 4, "length", "killwords", "end", "leeway", NULL);
    ech_jv *lv = ech_jarg(a, 0, "length"), *kw = ech_jarg(a, 1, "killwords"), *ev = ech_jarg(a, 2, "end"),
           *lw = ech_jarg(a, 3, "leeway");
    ech_jv *s = str_of(x, v);
    if (!s)
        return NULL;
    int64_t length = 255, leeway = 5;
    if (lv) as_int(lv, &length);
    if (lw) as_int(lw, &leeway);
    ech_jv *end = ev ? str_of(x, ev) : ech_jv_cstr(&x->heap, "...");
    if (!end)
        return NULL;
    int64_t n = (int64_t)ech_jv_utf8_len(s->s.p, s->s.n), en = (int64_t)ech_jv_utf8_len(end->s.p, end->s.n);
    if (length < en)
        return terr(x, "expected length >= %lld, got %lld", (long long)en, (long long)length);
    if (n <= length + leeway)
        return s;
    size_t cut = ech_jv_utf8_offset(s->s.p, s->s.n, (size_t)(length - en));
    ech_buf b = {0};
    if (kw && ech_jv_truthy(kw)) {
        ech_buf_append(&b, s->s.p, cut);
    } else {
        size_t sp = cut;   /* rsplit(" ", 1)[0] */
        while (sp > 0 && s->s.p[sp - 1] != ' ')
            sp--;
        ech_buf_append(&b, s->s.p, sp ? sp - 1 : cut);
    }
    ech_buf_append(&b, end->s.p, end->s.n);
    return buf_str(x, &b, false);
}

typedef struct { const char *name; ech_jfilter_fn fn; } filter_entry;
static const filter_entry filters[] = {
    {"abs", f_abs}, {"attr", f_attr}, {"capitalize", f_capitalize}, {"center", f_center},
    {"count", f_length}, {"d", f_default}, {"default", f_default}, {"dictsort", f_dictsort},
    {"e", f_escape}, {"escape", f_escape}, {"first", f_first}, {"float", f_float},
    {"format", f_format}, {"indent", f_indent}, {"int", f_int}, {"items", f_items},
    {"join", f_join}, {"last", f_last}, {"length", f_length}, {"list", f_list},
    {"lower", f_lower}, {"map", f_map}, {"max", f_max}, {"min", f_min}, {"reject", f_reject},
    {"rejectattr", f_rejectattr}, {"replace", f_replace}, {"reverse", f_reverse},
    {"round", f_round}, {"safe", f_safe}, {"select", f_select}, {"selectattr", f_selectattr},
    {"sort", f_sort}, {"string", f_string}, {"sum", f_sum}, {"title", f_title},
    {"tojson", f_tojson}, {"trim", f_trim}, {"truncate", f_truncate}, {"unique", f_unique},
    {"upper", f_upper}, {"wordcount", f_wordcount},
};

ech_jfilter_fn ech_jfilter_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        if (!strcmp(filters[i].name, name))
            return filters[i].fn;
    return NULL;
}

/* ---- tests ------------------------------------------------------------------------ */

#define TEST(name) static int t_##name(ech_jx *x, ech_jv *v, ech_jargs *a)

static ech_jv *arg1(ech_jx *x, ech_jargs *a, const char *test)
{
    ech_jv *o = ech_jarg(a, 0, NULL);
    if (!o)
        terr(x, "%s() missing 1 required positional argument", test);
    return o;
}

TEST(defined) { (void)x, (void)a; return v->type != JV_UNDEF; }
TEST(undefined) { (void)x, (void)a; return v->type == JV_UNDEF; }
TEST(none) { (void)x, (void)a; return v->type == JV_NONE; }
TEST(boolean) { (void)x, (void)a; return v->type == JV_BOOL; }
TEST(false) { (void)x, (void)a; return v->type == JV_BOOL && !v->b; }
TEST(true) { (void)x, (void)a; return v->type == JV_BOOL && v->b; }
TEST(integer) { (void)x, (void)a; return v->type == JV_INT; }
TEST(float) { (void)x, (void)a; return v->type == JV_FLOAT; }
TEST(number) { (void)x, (void)a; return ech_jv_is_num(v); }
TEST(string) { (void)x, (void)a; return v->type == JV_STR; }
TEST(mapping) { (void)x, (void)a; return v->type == JV_DICT && !(v->flags & JV_F_NS); }
TEST(callable) { (void)x, (void)a; return v->type == JV_FUNC; }
TEST(escaped) { (void)x, (void)a; return v->type == JV_STR && (v->flags & JV_F_MARKUP); }
TEST(iterable)
{
    (void)x, (void)a;
    return v->type == JV_UNDEF || v->type == JV_STR || v->type == JV_LIST ||
           (v->type == JV_DICT && !(v->flags & JV_F_NS));
}
TEST(sequence)
{
    (void)x, (void)a;
    return v->type == JV_UNDEF || v->type == JV_STR ||
           (v->type == JV_LIST && !(v->flags & JV_F_GEN) && !(v->flags & JV_F_ITEMS)) ||
           (v->type == JV_DICT && !(v->flags & JV_F_NS));
}
TEST(lower)
{
    (void)a;
    ech_jv *s = ech_jx_str(x, v), *l = s ? ech_jx_case(x, s, 0) : NULL;
    return l ? ech_jv_eq(s, l) : -1;
}
TEST(upper)
{
    (void)a;
    ech_jv *s = ech_jx_str(x, v), *u = s ? ech_jx_case(x, s, 1) : NULL;
    return u ? ech_jv_eq(s, u) : -1;
}

static int int_test(ech_jx *x, ech_jv *v, int64_t *i)
{
    if (as_int(v, i))
        return 1;
    if (v->type == JV_FLOAT) {
        *i = (int64_t)v->f;
        return 2;
    }
    terr(x, "unsupported operand type(s) for %%: '%s' and 'int'", ech_jv_pytype(v));
    return 0;
}

TEST(even)
{
    (void)a;
    int64_t i;
    int k = int_test(x, v, &i);
    return k == 0 ? -1 : k == 2 ? fmod(v->f, 2) == 0 : (i % 2 == 0);
}
TEST(odd)
{
    (void)a;
    int64_t i;
    int k = int_test(x, v, &i);
    return k == 0 ? -1 : k == 2 ? fabs(fmod(v->f, 2)) == 1 : (i % 2 != 0);
}
TEST(divisibleby)
{
    ech_jv *n = arg1(x, a, "test_divisibleby");
    int64_t p, q;
    if (!n)
        return -1;
    if (!as_int(v, &p) || !as_int(n, &q)) {
        terr(x, "unsupported operand type(s) for %%: '%s' and '%s'", ech_jv_pytype(v), ech_jv_pytype(n));
        return -1;
    }
    if (q == 0) {
        terr(x, "integer division or modulo by zero");
        return -1;
    }
    return q == -1 || p % q == 0;
}

static int cmp_test(ech_jx *x, ech_jv *v, ech_jargs *a, int op)
{
    ech_jv *o = arg1(x, a, "compare");
    if (!o)
        return -1;
    if (op == 0)
        return ech_jv_eq(v, o);
    if (op == 1)
        return !ech_jv_eq(v, o);
    int c;
    if (v->type == JV_UNDEF || o->type == JV_UNDEF) {
        ech_jx_undef_error(x, v->type == JV_UNDEF ? v : o);
        return -1;
    }
    if (!ech_jv_cmp(v, o, &c)) {
        static const char *const sym[] = {"", "", "<", "<=", ">", ">="};
        terr(x, "'%s' not supported between instances of '%s' and '%s'", sym[op], ech_jv_pytype(v),
             ech_jv_pytype(o));
        return -1;
    }
    if (c == 2)
        return 0;
    switch (op) {
    case 2: return c < 0;
    case 3: return c <= 0;
    case 4: return c > 0;
    default: return c >= 0;
    }
}

TEST(eq) { return cmp_test(x, v, a, 0); }
TEST(ne) { return cmp_test(x, v, a, 1); }
TEST(lt) { return cmp_test(x, v, a, 2); }
TEST(le) { return cmp_test(x, v, a, 3); }
TEST(gt) { return cmp_test(x, v, a, 4); }
TEST(ge) { return cmp_test(x, v, a, 5); }

TEST(sameas)
{
    ech_jv *o = arg1(x, a, "test_sameas");
    if (!o)
        return -1;
    if (v == o)
        return 1;
    /* identity for the singletons, which is what `is` can see here */
    if (v->type == o->type && (v->type == JV_NONE || v->type == JV_BOOL))
        return v->type == JV_NONE || v->b == o->b;
    return 0;
}

TEST(in)
{
    ech_jv *c = arg1(x, a, "test_in");
    if (!c)
        return -1;
    if (c->type == JV_STR) {
        if (v->type != JV_STR) {
            terr(x, "'in <string>' requires string as left operand, not %s", ech_jv_pytype(v));
            return -1;
        }
        for (size_t i = 0; i + v->s.n <= c->s.n; i++)
            if (!memcmp(c->s.p + i, v->s.p, v->s.n))
                return 1;
        return 0;
    }
    if (c->type == JV_DICT && !(c->flags & JV_F_NS))
        return ech_jv_dict_get(c, v) != NULL;
    if (c->type == JV_LIST) {
        for (size_t i = 0; i < c->l.n; i++)
            if (ech_jv_eq(c->l.v[i], v))
                return 1;
        return 0;
    }
    if (c->type == JV_UNDEF)
        return 0;
    terr(x, "argument of type '%s' is not iterable", ech_jv_pytype(c));
    return -1;
}

TEST(filter)
{
    ech_jv *n = v;   /* `'name' is filter`: the subject is the name */
    (void)x, (void)a;
    if (n->type != JV_STR)
        return 0;
    char nm[64];
    if (n->s.n >= sizeof nm)
        return 0;
    memcpy(nm, n->s.p, n->s.n);
    nm[n->s.n] = '\0';
    return ech_jfilter_lookup(nm) != NULL;
}

TEST(test)
{
    ech_jv *n = v;   /* `'name' is test`: the subject is the name */
    (void)x, (void)a;
    if (n->type != JV_STR)
        return 0;
    char nm[64];
    if (n->s.n >= sizeof nm)
        return 0;
    memcpy(nm, n->s.p, n->s.n);
    nm[n->s.n] = '\0';
    return ech_jtest_lookup(nm) != NULL;
}

typedef struct { const char *name; ech_jtest_fn fn; } test_entry;
static const test_entry tests[] = {
    {"boolean", t_boolean}, {"callable", t_callable}, {"defined", t_defined},
    {"divisibleby", t_divisibleby}, {"eq", t_eq}, {"equalto", t_eq}, {"==", t_eq},
    {"escaped", t_escaped}, {"even", t_even}, {"false", t_false}, {"filter", t_filter},
    {"float", t_float}, {"ge", t_ge}, {">=", t_ge}, {"gt", t_gt}, {">", t_gt},
    {"greaterthan", t_gt}, {"in", t_in}, {"integer", t_integer}, {"iterable", t_iterable},
    {"le", t_le}, {"<=", t_le}, {"lower", t_lower}, {"lt", t_lt}, {"<", t_lt},
    {"lessthan", t_lt}, {"mapping", t_mapping}, {"ne", t_ne}, {"!=", t_ne}, {"none", t_none},
    {"number", t_number}, {"odd", t_odd}, {"sameas", t_sameas}, {"sequence", t_sequence},
    {"string", t_string}, {"test", t_test}, {"true", t_true}, {"undefined", t_undefined},
    {"upper", t_upper},
};

ech_jtest_fn ech_jtest_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!strcmp(tests[i].name, name))
            return tests[i].fn;
    return NULL;
}

/* ---- printf-style formatting ------------------------------------------------------- */

/* The conversion specs handed to snprintf below are assembled from the
 * flags, digits and conversion letters checked on the way in. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
ech_jv *ech_jx_printf(ech_jx *x, ech_jv *fmt, ech_jv *args)
{
    bool markup = fmt->flags & JV_F_MARKUP;
    ech_jv **argv = &args;
    size_t argc = 1, ai = 0;
    bool mapping = args->type == JV_DICT && !(args->flags & JV_F_NS);
    if (args->type == JV_LIST && (args->flags & JV_F_TUPLE)) {
        argv = args->l.v;
        argc = args->l.n;
    }
    ech_buf b = {0};
    const char *p = fmt->s.p;
    size_t n = fmt->s.n;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%') {
            ech_buf_putc(&b, p[i]);
            continue;
        }
        if (++i >= n) {
            ech_buf_free(&b);
            return terr(x, "incomplete format");
        }
        ech_jv *val = NULL;
        if (p[i] == '(') {
            size_t j = i + 1;
            while (j < n && p[j] != ')')
                j++;
            if (j >= n || !mapping) {
                ech_buf_free(&b);
                return terr(x, "format requires a mapping");
            }
            val = ech_jv_dict_gets(args, p + i + 1, j - i - 1);
            if (!val) {
                ech_buf_free(&b);
                return terr(x, "'%.*s'", (int)(j - i - 1), p + i + 1);
            }
            i = j + 1;
        }
        char spec[32] = "%";
        size_t sl = 1;
        while (i < n && strchr("-+ #0", p[i]) && sl < 10)
            spec[sl++] = p[i++];
        while (i < n && p[i] >= '0' && p[i] <= '9' && sl < 20)
            spec[sl++] = p[i++];
        if (i < n && p[i] == '.') {
            spec[sl++] = p[i++];
            while (i < n && p[i] >= '0' && p[i] <= '9' && sl < 28)
                spec[sl++] = p[i++];
        }
        if (i >= n) {
            ech_buf_free(&b);
            return terr(x, "incomplete format");
        }
        char conv = p[i];
        if (conv == '%') {
            ech_buf_putc(&b, '%');
            continue;
        }
        if (!val) {
            if (ai >= argc) {
                ech_buf_free(&b);
                return terr(x, "not enough arguments for format string");
            }
            val = argv[ai++];
        }
        if (markup && (conv == 's' || conv == 'r') && !(val = ech_jx_escape(x, val))) {
            ech_buf_free(&b);
            return NULL;
        }
        char out[512];
        switch (conv) {
        case 's':
        case 'r': {
            ech_buf t = {0};
            if (conv == 's' ? !ech_jv_str_to(&t, val) : !ech_jv_repr_to(&t, val)) {
                ech_buf_free(&t);
                ech_buf_free(&b);
                return ech_jx_oom(x);
            }
            spec[sl++] = 's';
            spec[sl] = '\0';
            if (sl == 2) {
                ech_buf_append(&b, t.data ? t.data : "", t.len);
            } else {
                char *tmp = malloc(t.len + 600);
                if (tmp) {
                    snprintf(tmp, t.len + 600, spec, t.data ? t.data : "");
                    ech_buf_puts(&b, tmp);
                    free(tmp);
                }
            }
            ech_buf_free(&t);
            break;
        }
        case 'd': case 'i': case 'x': case 'X': case 'o': case 'c': {
            int64_t iv;
            if (!as_int(val, &iv)) {
                if (val->type == JV_FLOAT && conv != 'c')
                    iv = (int64_t)val->f;
                else {
                    ech_buf_free(&b);
                    return terr(x, "%%%c format: a real number is required, not %s", conv, ech_jv_pytype(val));
                }
            }
            if (conv == 'c') {
                snprintf(out, sizeof out, "%c", (char)iv);
            } else {
                spec[sl++] = 'l';
                spec[sl++] = 'l';
                spec[sl++] = conv == 'i' ? 'd' : conv;
                spec[sl] = '\0';
                snprintf(out, sizeof out, spec, (long long)iv);
            }
            ech_buf_puts(&b, out);
            break;
        }
        case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
            if (!ech_jv_is_num(val)) {
                ech_buf_free(&b);
                return terr(x, "must be real number, not %s", ech_jv_pytype(val));
            }
            double f = val->type == JV_FLOAT ? val->f : val->type == JV_INT ? (double)val->i : val->b;
            spec[sl++] = conv;
            spec[sl] = '\0';
            snprintf(out, sizeof out, spec, f);
            ech_buf_puts(&b, out);
            break;
        }
        default:
            ech_buf_free(&b);
            return terr(x, "unsupported format character '%c' (0x%x)", conv, (unsigned char)conv);
        }
    }
    if (!mapping && ai < argc && argc > 0 && args->type == JV_LIST && (args->flags & JV_F_TUPLE)) {
        ech_buf_free(&b);
        return terr(x, "not all arguments converted during string formatting");
    }
    return buf_str(x, &b, markup);
}
#pragma GCC diagnostic pop
