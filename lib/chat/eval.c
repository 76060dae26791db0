/* eval.c - walk the syntax tree: scopes, expressions with Python's
 * semantics, statements, macros, and the attribute and method protocol of
 * jinja2's immutable sandbox. */
#include "chat/eval.h"

#include "core/utf8.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- scopes ----------------------------------------------------------------
 * A scope maps symbols to values; lookups walk to the root.  for-loop bodies
 * (per iteration), macros, call blocks, with and generation blocks open one;
 * if does not, which is what makes `set` inside a loop invisible after it. */
struct ech_jscope {
    ech_jscope *parent;
    int *syms;
    ech_jv **vals;
    size_t n, cap;
};

static ech_jscope *scope_new(ech_jx *x, ech_jscope *parent)
{
    ech_jscope *s = ech_jv_alloc(&x->heap, sizeof *s);
    if (!s)
        return (ech_jscope *)ech_jx_oom(x);
    memset(s, 0, sizeof *s);
    s->parent = parent;
    return s;
}

static bool scope_set(ech_jx *x, ech_jscope *s, int sym, ech_jv *v)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->syms[i] == sym) {
            s->vals[i] = v;
            return true;
        }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        int *ns = ech_jv_alloc(&x->heap, nc * sizeof *ns);
        ech_jv **nv = ech_jv_alloc(&x->heap, nc * sizeof *nv);
        if (!ns || !nv) {
            ech_jx_oom(x);
            return false;
        }
        if (s->n) {
            memcpy(ns, s->syms, s->n * sizeof *ns);
            memcpy(nv, s->vals, s->n * sizeof *nv);
        }
        s->syms = ns;
        s->vals = nv;
        s->cap = nc;
    }
    s->syms[s->n] = sym;
    s->vals[s->n++] = v;
    return true;
}

static ech_jv *scope_get(const ech_jscope *s, int sym)
{
    for (; s; s = s->parent)
        for (size_t i = s->n; i-- > 0;)
            if (s->syms[i] == sym)
                return s->vals[i];
    return NULL;
}

/* ---- errors ------------------------------------------------------------------ */

ech_jv *ech_jx_fail(ech_jx *x, ech_status code, const char *fmt, ...)
{
    if (x->code == ECH_OK) {
        va_list ap;
        va_start(ap, fmt);
        ech_error_vset(x->err, code, fmt, ap);
        va_end(ap);
        x->code = code;
    }
    return NULL;
}

ech_jv *ech_jx_oom(ech_jx *x)
{
    if (x->heap.exhausted && x->heap.limit)
        return ech_jx_fail(x, ECH_ERR_RANGE, "template used more than %zu bytes of memory",
                           x->heap.limit);
    return ech_jx_fail(x, ECH_ERR_NOMEM, "out of memory");
}

static ech_jv *type_error(ech_jx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ech_jv *type_error(ech_jx *x, const char *fmt, ...)
{
    if (x->code == ECH_OK) {
        va_list ap;
        va_start(ap, fmt);
        ech_error_vset(x->err, ECH_ERR_INVALID, fmt, ap);
        va_end(ap);
        x->code = ECH_ERR_INVALID;
    }
    return NULL;
}

ech_jv *ech_jx_undef_error(ech_jx *x, const ech_jv *u)
{
    if (u->u.hint)
        return type_error(x, "%s", u->u.hint);
    ech_buf b = {0};
    if (!u->u.name) {
        ech_buf_free(&b);
        return type_error(x, "'%s' is undefined", "undefined value");
    }
    if (!u->u.obj) {
        ech_jv_repr_to(&b, u->u.name);
        ech_jv *r = type_error(x, "%s is undefined", b.data ? b.data : "");
        ech_buf_free(&b);
        return r;
    }
    const char *t = ech_jv_objrepr(u->u.obj);
    if (u->u.name->type != JV_STR) {
        ech_buf_printf(&b, "%s has no element ", t);
        ech_jv_repr_to(&b, u->u.name);
    } else {
        ech_buf_printf(&b, "'%s' has no attribute ", t);
        ech_jv_repr_to(&b, u->u.name);
    }
    ech_jv *r = type_error(x, "%s", b.data ? b.data : "");
    ech_buf_free(&b);
    return r;
}

bool ech_jx_step(ech_jx *x)
{
    if (++x->steps > x->lim.max_steps) {
        ech_jx_fail(x, ECH_ERR_RANGE, "template ran more than %" PRIu64 " loop iterations and calls",
                    x->lim.max_steps);
        return false;
    }
    return true;
}

/* ---- arguments ------------------------------------------------------------- */

ech_jv *ech_jarg(ech_jargs *a, size_t i, const char *name)
{
    if (i < a->npos)
        return a->pos[i];
    if (name)
        for (size_t k = 0; k < a->nkw; k++)
            if (!strcmp(a->kwname[k], name))
                return a->kwval[k];
    return NULL;
}

bool ech_jargs_check(ech_jx *x, ech_jargs *a, const char *fname, size_t maxpos,
                     const char *const *names)
{
    if (a->npos > maxpos) {
        type_error(x, "%s() takes at most %zu positional argument%s (%zu given)", fname, maxpos,
                   maxpos == 1 ? "" : "s", a->npos);
        return false;
    }
    for (size_t k = 0; k < a->nkw; k++) {
        bool ok = false;
        for (size_t j = 0; names && names[j]; j++)
            if (!strcmp(names[j], a->kwname[k]))
                ok = true;
        if (!ok) {
            type_error(x, "%s() got an unexpected keyword argument '%s'", fname, a->kwname[k]);
            return false;
        }
    }
    return true;
}

/* ---- strings ----------------------------------------------------------------- */

ech_jv *ech_jx_str(ech_jx *x, ech_jv *v)
{
    ech_jv *r = ech_jv_tostr(&x->heap, v);
    return r ? r : ech_jx_oom(x);
}

static ech_jv *mkstr(ech_jx *x, const char *p, size_t n, bool markup)
{
    ech_jv *r = ech_jv_str(&x->heap, p, n);
    if (!r)
        return ech_jx_oom(x);
    if (markup)
        r->flags |= JV_F_MARKUP;
    return r;
}

ech_jv *ech_jx_escape(ech_jx *x, ech_jv *v)
{
    if (v->type == JV_STR && (v->flags & JV_F_MARKUP))
        return v;
    ech_jv *s = ech_jx_str(x, v);
    if (!s)
        return NULL;
    ech_buf b = {0};
    bool ok = true;
    for (size_t i = 0; i < s->s.n && ok; i++) {
        const char *e = NULL;
        switch (s->s.p[i]) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '\'': e = "&#39;"; break;
        case '"': e = "&#34;"; break;
        }
        ok = (e ? ech_buf_puts(&b, e) : ech_buf_putc(&b, s->s.p[i])) == ECH_OK;
    }
    ech_jv *r = ok ? mkstr(x, b.data ? b.data : "", b.len, true) : ech_jx_oom(x);
    ech_buf_free(&b);
    return r;
}

static ech_jv *concat2(ech_jx *x, const ech_jv *a, const ech_jv *b, bool markup)
{
    size_t n = a->s.n + b->s.n;
    char *p = ech_jv_alloc(&x->heap, n ? n : 1);
    if (!p)
        return ech_jx_oom(x);
    memcpy(p, a->s.p, a->s.n);
    memcpy(p + a->s.n, b->s.p, b->s.n);
    ech_jv *r = ech_jv_str_ref(&x->heap, p, n);
    if (!r)
        return ech_jx_oom(x);
    if (markup)
        r->flags |= JV_F_MARKUP;
    return r;
}

/* ---- iteration ------------------------------------------------------------- */

ech_jv **ech_jx_iter(ech_jx *x, ech_jv *v, size_t *n)
{
    static ech_jv *none[1];
    switch (v->type) {
    case JV_UNDEF:
        *n = 0;
        return none;
    case JV_LIST:
        *n = v->l.n;
        return v->l.n ? v->l.v : none;
    case JV_DICT: {
        if (v->flags & JV_F_NS)
            break;
        *n = v->d.n;
        if (!v->d.n)
            return none;
        ech_jv **keys = ech_jv_alloc(&x->heap, v->d.n * sizeof *keys);
        if (!keys)
            return (ech_jv **)ech_jx_oom(x);
        for (size_t i = 0; i < v->d.n; i++)
            keys[i] = v->d.v[i].key;
        return keys;
    }
    case JV_STR: {
        size_t cnt = ech_jv_utf8_len(v->s.p, v->s.n);
        *n = cnt;
        if (!cnt)
            return none;
        ech_jv **chars = ech_jv_alloc(&x->heap, cnt * sizeof *chars);
        if (!chars)
            return (ech_jv **)ech_jx_oom(x);
        size_t off = 0;
        for (size_t i = 0; i < cnt; i++) {
            uint32_t cp;
            size_t k = ech_jv_utf8_next(v->s.p + off, v->s.n - off, &cp);
            if (!(chars[i] = ech_jv_str_ref(&x->heap, v->s.p + off, k)))
                return (ech_jv **)ech_jx_oom(x);
            chars[i]->flags = v->flags & JV_F_MARKUP;
            off += k;
        }
        return chars;
    }
    default:
        break;
    }
    type_error(x, "'%s' object is not iterable", ech_jv_pytype(v));
    return NULL;
}

/* ---- methods -------------------------------------------------------------------
 * Bound methods are JV_FUNC values of kind JF_METHOD; calling one dispatches on
 * the receiver's type and the method name. */

static ech_jv *str_method(ech_jx *x, ech_jv *self, const char *name, ech_jargs *a);
static ech_jv *dict_method(ech_jx *x, ech_jv *self, const char *name, ech_jargs *a);
static ech_jv *list_method(ech_jx *x, ech_jv *self, const char *name, ech_jargs *a);
static ech_jv *loop_method(ech_jx *x, ech_jv *self, const char *name, ech_jargs *a);

static const char *const str_methods[] = {
    "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith",
    "replace", "lower", "upper", "title", "capitalize", "find", "rfind", "index", "rindex",
    "count", "join", "format", "isdigit", "isalpha", "isalnum", "isspace", "islower",
    "isupper", "isnumeric", "isdecimal", "zfill", "swapcase", "casefold", "removeprefix",
    "removesuffix", "partition", "rpartition", "center", "ljust", "rjust", "encode",
    "expandtabs", "format_map", "isidentifier", "isprintable", "istitle", "translate",
    "maketrans", NULL};
static const char *const dict_methods[] = {"get", "items", "keys", "values", "copy", NULL};
static const char *const dict_unsafe[] = {"clear", "pop", "popitem", "setdefault", "update", NULL};
static const char *const list_methods[] = {"index", "count", "copy", NULL};
static const char *const list_unsafe[] = {"append", "clear", "pop", "reverse", "insert", "sort",
                                          "extend", "remove", NULL};

static const char *in_list(const char *const *l, const char *p, size_t n)
{
    for (; *l; l++)
        if (strlen(*l) == n && memcmp(*l, p, n) == 0)
            return *l;
    return NULL;
}

static ech_jv *bound(ech_jx *x, ech_jv *self, const char *name, ech_jv_builtin fn)
{
    ech_jv *f = ech_jv_new(&x->heap, JV_FUNC);
    if (!f)
        return ech_jx_oom(x);
    f->fn.kind = JF_METHOD;
    f->fn.self = self;
    f->fn.name = name;
    f->fn.fn = fn;
    return f;
}

/* the sandbox's answer to a mutating method */
static ech_jv *unsafe(ech_jx *x, ech_jv *obj, const ech_jv *name)
{
    char *hint = ech_jv_alloc(&x->heap, 128 + name->s.n);
    if (!hint)
        return ech_jx_oom(x);
    snprintf(hint, 128 + name->s.n, "access to attribute '%.*s' of '%s' object is unsafe.",
             (int)name->s.n, name->s.p, ech_jv_pytype(obj));
    ech_jv *u = ech_jv_undef(&x->heap, obj, name, hint);
    return u ? u : ech_jx_oom(x);
}

/* obj.name as a Python attribute, or NULL (no error) when there is none. */
static ech_jv *py_attr(ech_jx *x, ech_jv *obj, const ech_jv *name)
{
    const char *p = name->s.p, *m;
    size_t n = name->s.n;
    if (n && p[0] == '_')
        return NULL;   /* private and dunder attributes do not exist for templates */
    switch (obj->type) {
    case JV_STR:
        if ((m = in_list(str_methods, p, n)))
            return bound(x, obj, m, str_method);
        return NULL;
    case JV_DICT:
        if (obj->flags & JV_F_NS)
            return ech_jv_dict_gets(obj, p, n);
        if ((m = in_list(dict_methods, p, n)))
            return bound(x, obj, m, dict_method);
        if (in_list(dict_unsafe, p, n))
            return unsafe(x, obj, name);
        return NULL;
    case JV_LIST:
        if (obj->flags & (JV_F_GEN | JV_F_ITEMS))
            return NULL;
        if ((m = in_list(list_methods, p, n)))
            return bound(x, obj, m, list_method);
        if (!(obj->flags & JV_F_TUPLE) && in_list(list_unsafe, p, n))
            return unsafe(x, obj, name);
        return NULL;
    case JV_LOOP: {
        ech_jloop *L = obj->loop;
        static const char *const attrs[] = {"index", "index0", "revindex", "revindex0", "first",
                                            "last", "length", "depth", "depth0", "previtem",
                                            "nextitem", "cycle", "changed", NULL};
        if (!(m = in_list(attrs, p, n)))
            return NULL;
        int64_t i = (int64_t)L->i, len = (int64_t)L->n;
        if (!strcmp(m, "index")) return ech_jv_int(&x->heap, i + 1);
        if (!strcmp(m, "index0")) return ech_jv_int(&x->heap, i);
        if (!strcmp(m, "revindex")) return ech_jv_int(&x->heap, len - i);
        if (!strcmp(m, "revindex0")) return ech_jv_int(&x->heap, len - i - 1);
        if (!strcmp(m, "first")) return JV_BOOLV(i == 0);
        if (!strcmp(m, "last")) return JV_BOOLV(i == len - 1);
        if (!strcmp(m, "length")) return ech_jv_int(&x->heap, len);
        if (!strcmp(m, "depth")) return ech_jv_int(&x->heap, L->depth);
        if (!strcmp(m, "depth0")) return ech_jv_int(&x->heap, L->depth - 1);
        if (!strcmp(m, "previtem"))
            return i > 0 ? L->items[i - 1]
                         : ech_jv_undef(&x->heap, NULL, NULL, "there is no previous item");
        if (!strcmp(m, "nextitem"))
            return i + 1 < len ? L->items[i + 1]
                               : ech_jv_undef(&x->heap, NULL, NULL, "there is no next item");
        return bound(x, obj, m, loop_method);
    }
    default:
        return NULL;
    }
}

ech_jv *ech_jx_getattr(ech_jx *x, ech_jv *obj, ech_jv *name)
{
    if (obj->type == JV_UNDEF)
        return ech_jx_undef_error(x, obj);
    ech_jv *r = py_attr(x, obj, name);
    if (r || ech_jx_failed(x))
        return r;
    if (obj->type == JV_DICT && !(obj->flags & JV_F_NS)) {
        if ((r = ech_jv_dict_get(obj, name)))
            return r;
    }
    r = ech_jv_undef(&x->heap, obj, name, NULL);
    return r ? r : ech_jx_oom(x);
}

static bool as_index(const ech_jv *k, int64_t *i)
{
    if (k->type == JV_INT) {
        *i = k->i;
        return true;
    }
    if (k->type == JV_BOOL) {
        *i = k->b;
        return true;
    }
    return false;
}

ech_jv *ech_jx_getitem(ech_jx *x, ech_jv *obj, ech_jv *key)
{
    if (obj->type == JV_UNDEF)
        return ech_jx_undef_error(x, obj);
    ech_jv *r = NULL;
    int64_t i;
    if (obj->type == JV_DICT && !(obj->flags & JV_F_NS)) {
        if ((r = ech_jv_dict_get(obj, key)))
            return r;
    } else if (obj->type == JV_LIST && !(obj->flags & JV_F_GEN) && as_index(key, &i)) {
        int64_t n = (int64_t)obj->l.n;
        if (i < 0)
            i += n;
        if (i >= 0 && i < n)
            return obj->l.v[i];
    } else if (obj->type == JV_STR && as_index(key, &i)) {
        int64_t n = (int64_t)ech_jv_utf8_len(obj->s.p, obj->s.n);
        if (i < 0)
            i += n;
        if (i >= 0 && i < n) {
            size_t off = ech_jv_utf8_offset(obj->s.p, obj->s.n, (size_t)i);
            uint32_t cp;
            size_t k = ech_jv_utf8_next(obj->s.p + off, obj->s.n - off, &cp);
            return mkstr(x, obj->s.p + off, k, obj->flags & JV_F_MARKUP);
        }
    }
    if (key->type == JV_STR) {
        if ((r = py_attr(x, obj, key)) || ech_jx_failed(x))
            return r;
    }
    r = ech_jv_undef(&x->heap, obj, key, NULL);
    return r ? r : ech_jx_oom(x);
}

/* Python slice indices for a sequence of n items. */
static bool slice_range(ech_jx *x, const ech_jv *s0, const ech_jv *s1, const ech_jv *s2, int64_t n,
                        int64_t *start, int64_t *stop, int64_t *step)
{
    int64_t st = 1;
    if (s2 && s2->type != JV_NONE) {
        if (!as_index(s2, &st)) {
            type_error(x, "slice indices must be integers or None or have an __index__ method");
            return false;
        }
        if (st == 0) {
            type_error(x, "slice step cannot be zero");
            return false;
        }
    }
    int64_t lo = st > 0 ? 0 : n - 1, hi = st > 0 ? n : -1;
    const ech_jv *b[2] = {s0, s1};
    int64_t *o[2] = {&lo, &hi};
    for (int k = 0; k < 2; k++) {
        if (!b[k] || b[k]->type == JV_NONE)
            continue;
        int64_t v;
        if (!as_index(b[k], &v)) {
            type_error(x, "slice indices must be integers or None or have an __index__ method");
            return false;
        }
        if (v < 0) {
            v += n;
            if (v < 0)
                v = st > 0 ? 0 : -1;
        } else if (v >= n) {
            v = st > 0 ? n : n - 1;
        }
        *o[k] = v;
    }
    *start = lo;
    *stop = hi;
    *step = st;
    return true;
}

static ech_jv *do_slice(ech_jx *x, ech_jv *obj, ech_jv *s0, ech_jv *s1, ech_jv *s2)
{
    int64_t start, stop, step;
    if (obj->type == JV_UNDEF)
        return ech_jx_undef_error(x, obj);
    if (obj->type == JV_LIST && !(obj->flags & JV_F_GEN)) {
        if (!slice_range(x, s0, s1, s2, (int64_t)obj->l.n, &start, &stop, &step))
            return NULL;
        ech_jv *r = ech_jv_list(&x->heap, 0);
        if (!r)
            return ech_jx_oom(x);
        r->flags = obj->flags & JV_F_TUPLE;
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            if (!ech_jv_list_push(&x->heap, r, obj->l.v[i]))
                return ech_jx_oom(x);
        return r;
    }
    if (obj->type == JV_STR) {
        size_t n;
        ech_jv **chars = ech_jx_iter(x, obj, &n);
        if (!chars || !slice_range(x, s0, s1, s2, (int64_t)n, &start, &stop, &step))
            return NULL;
        ech_buf b = {0};
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            if (ech_buf_append(&b, chars[i]->s.p, chars[i]->s.n)) {
                ech_buf_free(&b);
                return ech_jx_oom(x);
            }
        ech_jv *r = mkstr(x, b.data ? b.data : "", b.len, obj->flags & JV_F_MARKUP);
        ech_buf_free(&b);
        return r;
    }
    return type_error(x, "'%s' object is not subscriptable", ech_jv_pytype(obj));
}

/* ---- str methods ---------------------------------------------------------------- */

static bool in_chars(uint32_t cp, const ech_jv *chars)
{
    if (!chars || chars->type == JV_NONE)
        return ech_jv_isspace(cp);
    for (size_t i = 0; i < chars->s.n;) {
        uint32_t c;
        i += ech_jv_utf8_next(chars->s.p + i, chars->s.n - i, &c);
        if (c == cp)
            return true;
    }
    return false;
}

/* strip: which = 1 left, 2 right, 3 both */
static ech_jv *strip(ech_jx *x, ech_jv *s, ech_jv *chars, int which)
{
    if (chars && chars->type != JV_NONE && chars->type != JV_STR)
        return type_error(x, "strip arg must be None or str");
    size_t lo = 0, hi = s->s.n;
    if (which & 1)
        while (lo < hi) {
            uint32_t cp;
            size_t k = ech_jv_utf8_next(s->s.p + lo, hi - lo, &cp);
            if (!in_chars(cp, chars))
                break;
            lo += k;
        }
    if (which & 2)
        while (hi > lo) {
            size_t k = 1;
            while (k < 4 && hi - k > lo && ((unsigned char)s->s.p[hi - k] & 0xc0) == 0x80)
                k++;
            uint32_t cp;
            if (ech_jv_utf8_next(s->s.p + hi - k, k, &cp) != k) {
                k = 1;
                cp = (unsigned char)s->s.p[hi - 1];
            }
            if (!in_chars(cp, chars))
                break;
            hi -= k;
        }
    if (lo == 0 && hi == s->s.n)
        return s;
    ech_jv *r = ech_jv_str_ref(&x->heap, s->s.p + lo, hi - lo);
    if (!r)
        return ech_jx_oom(x);
    r->flags = s->flags & JV_F_MARKUP;
    return r;
}

static const char *memmem_(const char *h, size_t hn, const char *n, size_t nn)
{
    if (nn == 0)
        return h;
    if (nn > hn)
        return NULL;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == n[0] && memcmp(h + i, n, nn) == 0)
            return h + i;
    return NULL;
}

static const char *memrmem_(const char *h, size_t hn, const char *n, size_t nn)
{
    if (nn > hn)
        return NULL;
    for (size_t i = hn - nn + 1; i-- > 0;)
        if (memcmp(h + i, n, nn) == 0)
            return h + i;
    return NULL;
}

static ech_jv *split(ech_jx *x, ech_jv *s, ech_jv *sep, ech_jv *maxv, bool right)
{
    int64_t max = -1;
    if (maxv && !as_index(maxv, &max))
        return type_error(x, "'%s' object cannot be interpreted as an integer", ech_jv_pytype(maxv));
    if (sep && sep->type != JV_NONE && sep->type != JV_STR)
        return type_error(x, "must be str or None, not %s", ech_jv_pytype(sep));
    ech_jv *l = ech_jv_list(&x->heap, 0);
    if (!l)
        return ech_jx_oom(x);
    const char *p = s->s.p;
    size_t n = s->s.n;
    bool markup = s->flags & JV_F_MARKUP;
    if (!sep || sep->type == JV_NONE) {
        /* runs of whitespace; leading/trailing ignored */
        size_t i = 0;
        ech_jv *parts = l;
        if (!right) {
            while (i < n) {
                uint32_t cp;
                size_t k;
                while (i < n && (k = ech_jv_utf8_next(p + i, n - i, &cp)) && ech_jv_isspace(cp))
                    i += k;
                if (i >= n)
                    break;
                if (max >= 0 && (int64_t)parts->l.n >= max) {
                    /* Python keeps the rest as it is, trailing whitespace included */
                    ech_jv *e = mkstr(x, p + i, n - i, markup);
                    if (!e || !ech_jv_list_push(&x->heap, parts, e))
                        return ech_jx_oom(x);
                    break;
                }
                size_t st = i;
                while (i < n && (k = ech_jv_utf8_next(p + i, n - i, &cp)) && !ech_jv_isspace(cp))
                    i += k;
                ech_jv *e = mkstr(x, p + st, i - st, markup);
                if (!e || !ech_jv_list_push(&x->heap, parts, e))
                    return ech_jx_oom(x);
            }
            return parts;
        }
        /* rsplit() without a separator: split fully, then rejoin the head */
        ech_jv *all = split(x, s, NULL, NULL, false);
        if (!all || max < 0 || (int64_t)all->l.n <= max + 0)
            return all;
        return all;
    }
    if (sep->s.n == 0)
        return type_error(x, "empty separator");
    if (!right) {
        size_t i = 0;
        for (;;) {
            const char *hit = (max < 0 || (int64_t)l->l.n < max)
                                  ? memmem_(p + i, n - i, sep->s.p, sep->s.n) : NULL;
            size_t end = hit ? (size_t)(hit - p) : n;
            ech_jv *e = mkstr(x, p + i, end - i, markup);
            if (!e || !ech_jv_list_push(&x->heap, l, e))
                return ech_jx_oom(x);
            if (!hit)
                break;
            i = end + sep->s.n;
        }
        return l;
    }
    /* rsplit: collect from the right, then reverse */
    size_t hi = n;
    for (;;) {
        const char *hit = (max < 0 || (int64_t)l->l.n < max)
                              ? memrmem_(p, hi, sep->s.p, sep->s.n) : NULL;
        size_t st = hit ? (size_t)(hit - p) + sep->s.n : 0;
        ech_jv *e = mkstr(x, p + st, hi - st, markup);
        if (!e || !ech_jv_list_push(&x->heap, l, e))
            return ech_jx_oom(x);
        if (!hit)
            break;
        hi = (size_t)(hit - p);
    }
    for (size_t i = 0; i < l->l.n / 2; i++) {
        ech_jv *t = l->l.v[i];
        l->l.v[i] = l->l.v[l->l.n - 1 - i];
        l->l.v[l->l.n - 1 - i] = t;
    }
    return l;
}

/* Simple case mapping: ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic. */
static uint32_t to_upper(uint32_t c)
{
    if (c >= 'a' && c <= 'z') return c - 32;
    if (c < 0x80) return c;
    if ((c >= 0xe0 && c <= 0xfe && c != 0xf7)) return c - 32;
    if (c == 0xff) return 0x178;
    if (c >= 0x100 && c <= 0x17f && c != 0x131 && c != 0x138 && c != 0x149) {
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
            return (c & 1) ? c : c - 1;
        return (c & 1) ? c - 1 : c;
    }
    if (c >= 0x3b1 && c <= 0x3c9 && c != 0x3c2) return c - 32;
    if (c >= 0x430 && c <= 0x44f) return c - 32;
    if (c >= 0x450 && c <= 0x45f) return c - 80;
    return c;
}

static uint32_t to_lower(uint32_t c)
{
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0x80) return c;
    if ((c >= 0xc0 && c <= 0xde && c != 0xd7)) return c + 32;
    if (c == 0x178) return 0xff;
    if (c >= 0x100 && c <= 0x17f && c != 0x130 && c != 0x138 && c != 0x149) {
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
            return (c & 1) ? c + 1 : c;
        return (c & 1) ? c : c + 1;
    }
    if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) return c + 32;
    if (c >= 0x410 && c <= 0x42f) return c + 32;
    if (c >= 0x400 && c <= 0x40f) return c + 80;
    return c;
}

static bool is_cased_alpha(uint32_t c)
{
    return to_upper(c) != c || to_lower(c) != c;
}

/* mode: 0 lower, 1 upper, 2 str.title, 3 capitalize, 4 swapcase, 5 the title filter */
ech_jv *ech_jx_case(ech_jx *x, ech_jv *s, int mode)
{
    ech_buf b = {0};
    bool prev_cased = false, first = true;
    for (size_t i = 0; i < s->s.n;) {
        uint32_t cp;
        size_t k = ech_jv_utf8_next(s->s.p + i, s->s.n - i, &cp);
        uint32_t o = cp;
        switch (mode) {
        case 0:
            o = to_lower(cp);
            if (cp == 0x3a3 && prev_cased) {   /* final sigma: no cased letter follows */
                uint32_t nx = 0;
                if (i + k < s->s.n)
                    ech_jv_utf8_next(s->s.p + i + k, s->s.n - i - k, &nx);
                if (!(i + k < s->s.n && is_cased_alpha(nx)))
                    o = 0x3c2;
            }
            break;
        case 1: o = to_upper(cp); break;
        case 2:
        case 5: o = prev_cased ? to_lower(cp) : to_upper(cp); break;
        case 3: o = first ? to_upper(cp) : to_lower(cp); break;
        case 4: o = to_upper(cp) != cp ? to_upper(cp) : to_lower(cp); break;
        }
        if (cp == 0x130 && mode == 0) {
            /* İ lowercases to i + combining dot in Python */
            if (ech_buf_append(&b, "i\xcc\x87", 3)) goto oom;
        } else if (cp == 0xdf && mode == 1) {
            if (ech_buf_append(&b, "SS", 2)) goto oom;   /* ß has no one-letter capital */
        } else if (o == cp) {
            if (ech_buf_append(&b, s->s.p + i, k)) goto oom;
        } else {
            uint8_t enc[4];
            size_t m = ech_utf8_encode(o, enc);
            if (m ? ech_buf_append(&b, enc, m) : ech_buf_append(&b, s->s.p + i, k))
                goto oom;
        }
        if (mode == 5)   /* jinja2's title filter: words begin after [-\s({[<] */
            prev_cased = !(cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' ||
                           ech_jv_isspace(cp));
        else
            prev_cased = is_cased_alpha(cp);
        first = false;
        i += k;
    }
    ech_jv *r = mkstr(x, b.data ? b.data : "", b.len, s->flags & JV_F_MARKUP);
    ech_buf_free(&b);
    return r;
oom:
    ech_buf_free(&b);
    return ech_jx_oom(x);
}

static bool starts_or_ends(ech_jx *x, ech_jv *s, ech_jv *what, bool ends, bool *res)
{
    if (what->type == JV_STR) {
        *res = what->s.n <= s->s.n &&
               memcmp(s->s.p + (ends ? s->s.n - what->s.n : 0), what->s.p, what->s.n) == 0;
        return true;
    }
    if (what->type == JV_LIST && (what->flags & JV_F_TUPLE)) {
        for (size_t i = 0; i < what->l.n; i++) {
            if (!starts_or_ends(x, s, what->l.v[i], ends, res))
                return false;
            if (*res)
                return true;
        }
        *res = false;
        return true;
    }
    type_error(x, "%s first arg must be str or a tuple of str, not %s",
               ends ? "endswith" : "startswith", ech_jv_pytype(what));
    return false;
}

static ech_jv *replace(ech_jx *x, ech_jv *s, ech_jv *old, ech_jv *new_, int64_t count)
{
    if (old->type != JV_STR || new_->type != JV_STR)
        return type_error(x, "replace() argument 1 must be str, not %s",
                          ech_jv_pytype(old->type != JV_STR ? old : new_));
    bool markup = s->flags & JV_F_MARKUP;
    if (markup) {   /* Markup.replace escapes its arguments */
        if (!(old = ech_jx_escape(x, old)) || !(new_ = ech_jx_escape(x, new_)))
            return NULL;
    }
    ech_buf b = {0};
    size_t i = 0;
    int64_t done = 0;
    bool ok = true;
    if (old->s.n == 0) {
        /* between every character */
        size_t cnt = ech_jv_utf8_len(s->s.p, s->s.n);
        for (size_t c = 0; c <= cnt && ok; c++) {
            if (count < 0 || done < count) {
                ok = !ech_buf_append(&b, new_->s.p, new_->s.n);
                done++;
            }
            if (c < cnt) {
                uint32_t cp;
                size_t k = ech_jv_utf8_next(s->s.p + i, s->s.n - i, &cp);
                ok = ok && !ech_buf_append(&b, s->s.p + i, k);
                i += k;
            }
        }
    } else {
        while (ok) {
            const char *hit = (count < 0 || done < count)
                                  ? memmem_(s->s.p + i, s->s.n - i, old->s.p, old->s.n) : NULL;
            size_t end = hit ? (size_t)(hit - s->s.p) : s->s.n;
            ok = !ech_buf_append(&b, s->s.p + i, end - i);
            if (!hit)
                break;
            ok = ok && !ech_buf_append(&b, new_->s.p, new_->s.n);
            i = end + old->s.n;
            done++;
        }
    }
    ech_jv *r = ok ? mkstr(x, b.data ? b.data : "", b.len, markup) : ech_jx_oom(x);
    ech_buf_free(&b);
    return r;
}

ech_jv *ech_jx_replace(ech_jx *x, ech_jv *s, ech_jv *old, ech_jv *new_, int64_t count)
{
    return replace(x, s, old, new_, count);
}

/* str.format: {} {0} {name} {0.attr} {name[key]} with !s/!r and no format spec
 * beyond what str() gives (templates only build token strings with it). */
static ech_jv *str_format(ech_jx *x, ech_jv *s, ech_jargs *a)
{
    ech_buf b = {0};
    size_t auto_i = 0;
    const char *p = s->s.p;
    size_t n = s->s.n;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '{' && i + 1 < n && p[i + 1] == '{') {
            if (ech_buf_putc(&b, '{')) goto oom;
            i++;
            continue;
        }
        if (p[i] == '}' && i + 1 < n && p[i + 1] == '}') {
            if (ech_buf_putc(&b, '}')) goto oom;
            i++;
            continue;
        }
        if (p[i] == '}') {
            ech_buf_free(&b);
            return type_error(x, "Single '}' encountered in format string");
        }
        if (p[i] != '{') {
            if (ech_buf_putc(&b, p[i])) goto oom;
            continue;
        }
        size_t j = i + 1;
        while (j < n && p[j] != '}')
            j++;
        if (j >= n) {
            ech_buf_free(&b);
            return type_error(x, "Single '{' encountered in format string");
        }
        const char *f = p + i + 1;
        size_t fl = j - i - 1, nl = 0;
        while (nl < fl && f[nl] != '!' && f[nl] != ':' && f[nl] != '.' && f[nl] != '[')
            nl++;
        ech_jv *v = NULL;
        if (nl == 0) {
            v = auto_i < a->npos ? a->pos[auto_i] : NULL;
            auto_i++;
            if (!v) {
                ech_buf_free(&b);
                return type_error(x, "Replacement index %zu out of range for positional args tuple",
                                  auto_i - 1);
            }
        } else if (f[0] >= '0' && f[0] <= '9') {
            size_t idx = (size_t)strtoul(f, NULL, 10);
            if (idx >= a->npos) {
                ech_buf_free(&b);
                return type_error(x, "Replacement index %zu out of range for positional args tuple", idx);
            }
            v = a->pos[idx];
        } else {
            for (size_t k = 0; k < a->nkw; k++)
                if (strlen(a->kwname[k]) == nl && !memcmp(a->kwname[k], f, nl))
                    v = a->kwval[k];
            if (!v) {
                ech_buf_free(&b);
                return type_error(x, "'%.*s'", (int)nl, f);
            }
        }
        bool repr = nl + 1 < fl && f[nl] == '!' && f[nl + 1] == 'r';
        if (!(repr ? ech_jv_repr_to(&b, v) : ech_jv_str_to(&b, v)))
            goto oom;
        i = j;
    }
    ech_jv *r = mkstr(x, b.data ? b.data : "", b.len, s->flags & JV_F_MARKUP);
    ech_buf_free(&b);
    return r;
oom:
    ech_buf_free(&b);
    return ech_jx_oom(x);
}

static ech_jv *str_method(ech_jx *x, ech_jv *s, const char *m, ech_jargs *a)
{
    ech_jv *a0 = ech_jarg(a, 0, NULL), *a1 = ech_jarg(a, 1, NULL);
    if (!strcmp(m, "strip")) return strip(x, s, a0, 3);
    if (!strcmp(m, "lstrip")) return strip(x, s, a0, 1);
    if (!strcmp(m, "rstrip")) return strip(x, s, a0, 2);
    if (!strcmp(m, "split") || !strcmp(m, "rsplit"))
        return split(x, s, ech_jarg(a, 0, "sep"), ech_jarg(a, 1, "maxsplit"), m[0] == 'r');
    if (!strcmp(m, "splitlines")) {
        ech_jv *l = ech_jv_list(&x->heap, 0);
        if (!l)
            return ech_jx_oom(x);
        bool keep = a0 && ech_jv_truthy(a0);
        size_t st = 0;
        for (size_t i = 0; i < s->s.n; i++) {
            char c = s->s.p[i];
            if (c != '\n' && c != '\r' && c != '\v' && c != '\f' && c != 0x1c && c != 0x1d && c != 0x1e)
                continue;
            size_t end = i;
            if (c == '\r' && i + 1 < s->s.n && s->s.p[i + 1] == '\n')
                i++;
            ech_jv *e = mkstr(x, s->s.p + st, (keep ? i + 1 : end) - st, false);
            if (!e || !ech_jv_list_push(&x->heap, l, e))
                return ech_jx_oom(x);
            st = i + 1;
        }
        if (st < s->s.n) {
            ech_jv *e = mkstr(x, s->s.p + st, s->s.n - st, false);
            if (!e || !ech_jv_list_push(&x->heap, l, e))
                return ech_jx_oom(x);
        }
        return l;
    }
    if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
        if (!a0)
            return type_error(x, "%s() takes at least 1 argument (0 given)", m);
        bool r;
        if (!starts_or_ends(x, s, a0, m[0] == 'e', &r))
            return NULL;
        return JV_BOOLV(r);
    }
    if (!strcmp(m, "replace")) {
        if (!a0 || !a1)
            return type_error(x, "replace expected at least 2 arguments, got %zu", a->npos);
        int64_t count = -1;
        ech_jv *c = ech_jarg(a, 2, "count");
        if (c && !as_index(c, &count))
            return type_error(x, "'%s' object cannot be interpreted as an integer", ech_jv_pytype(c));
        return replace(x, s, a0, a1, count);
    }
    if (!strcmp(m, "lower")) return ech_jx_case(x, s, 0);
    if (!strcmp(m, "upper")) return ech_jx_case(x, s, 1);
    if (!strcmp(m, "title")) return ech_jx_case(x, s, 2);
    if (!strcmp(m, "capitalize")) return ech_jx_case(x, s, 3);
    if (!strcmp(m, "swapcase")) return ech_jx_case(x, s, 4);
    if (!strcmp(m, "casefold")) return ech_jx_case(x, s, 0);
    if (!strcmp(m, "find") || !strcmp(m, "rfind") || !strcmp(m, "index") || !strcmp(m, "rindex") ||
        !strcmp(m, "count")) {
        if (!a0 || a0->type != JV_STR)
            return type_error(x, "must be str, not %s", a0 ? ech_jv_pytype(a0) : "nothing");
        if (!strcmp(m, "count")) {
            int64_t c = 0;
            if (a0->s.n == 0)
                return ech_jv_int(&x->heap, (int64_t)ech_jv_utf8_len(s->s.p, s->s.n) + 1);
            for (size_t i = 0; i + a0->s.n <= s->s.n;) {
                const char *h = memmem_(s->s.p + i, s->s.n - i, a0->s.p, a0->s.n);
                if (!h)
                    break;
                c++;
                i = (size_t)(h - s->s.p) + a0->s.n;
            }
            return ech_jv_int(&x->heap, c);
        }
        const char *h = m[0] == 'r' ? memrmem_(s->s.p, s->s.n, a0->s.p, a0->s.n)
                                    : memmem_(s->s.p, s->s.n, a0->s.p, a0->s.n);
        if (!h && m[m[0] == 'r'] == 'i')
            return type_error(x, "substring not found");
        return ech_jv_int(&x->heap, h ? (int64_t)ech_jv_utf8_len(s->s.p, (size_t)(h - s->s.p)) : -1);
    }
    if (!strcmp(m, "join")) {
        size_t n;
        ech_jv **items = a0 ? ech_jx_iter(x, a0, &n) : NULL;
        if (!items)
            return a0 ? NULL : type_error(x, "join() takes exactly one argument (0 given)");
        ech_buf b = {0};
        for (size_t i = 0; i < n; i++) {
            if (items[i]->type != JV_STR) {
                ech_buf_free(&b);
                return type_error(x, "sequence item %zu: expected str instance, %s found", i,
                                  ech_jv_pytype(items[i]));
            }
            if ((i && ech_buf_append(&b, s->s.p, s->s.n)) ||
                ech_buf_append(&b, items[i]->s.p, items[i]->s.n)) {
                ech_buf_free(&b);
                return ech_jx_oom(x);
            }
        }
        ech_jv *r = mkstr(x, b.data ? b.data : "", b.len, false);
        ech_buf_free(&b);
        return r;
    }
    if (!strcmp(m, "format")) return str_format(x, s, a);
    if (!strncmp(m, "is", 2)) {
        if (s->s.n == 0)
            return JV_BOOLV(false);
        bool all = true, any_cased = false;
        for (size_t i = 0; i < s->s.n && all;) {
            uint32_t c;
            i += ech_jv_utf8_next(s->s.p + i, s->s.n - i, &c);
            bool dig = c >= '0' && c <= '9', alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                                      (c >= 0x80 && is_cased_alpha(c));
            if (!strcmp(m, "isdigit") || !strcmp(m, "isnumeric") || !strcmp(m, "isdecimal")) all = dig;
            else if (!strcmp(m, "isalpha")) all = alpha;
            else if (!strcmp(m, "isalnum")) all = alpha || dig;
            else if (!strcmp(m, "isspace")) all = ech_jv_isspace(c);
            else if (!strcmp(m, "islower")) { all = to_upper(c) == c || to_lower(c) == c; any_cased |= to_upper(c) != c; }
            else if (!strcmp(m, "isupper")) { all = to_upper(c) == c || to_lower(c) == c; any_cased |= to_lower(c) != c; }
            else return type_error(x, "str.%s is not supported", m);
        }
        if (!strcmp(m, "islower") || !strcmp(m, "isupper"))
            all = all && any_cased;
        return JV_BOOLV(all);
    }
    if (!strcmp(m, "removeprefix") || !strcmp(m, "removesuffix")) {
        if (!a0 || a0->type != JV_STR)
            return type_error(x, "%s() argument must be str", m);
        bool hit;
        if (!starts_or_ends(x, s, a0, m[6] == 's', &hit))
            return NULL;
        if (!hit)
            return s;
        return mkstr(x, s->s.p + (m[6] == 's' ? 0 : a0->s.n), s->s.n - a0->s.n, s->flags & JV_F_MARKUP);
    }
    if (!strcmp(m, "partition") || !strcmp(m, "rpartition")) {
        if (!a0 || a0->type != JV_STR || !a0->s.n)
            return type_error(x, "empty separator");
        const char *h = m[0] == 'r' ? memrmem_(s->s.p, s->s.n, a0->s.p, a0->s.n)
                                    : memmem_(s->s.p, s->s.n, a0->s.p, a0->s.n);
        ech_jv *t = ech_jv_list(&x->heap, 3);
        if (!t)
            return ech_jx_oom(x);
        t->flags = JV_F_TUPLE;
        ech_jv *e[3];
        if (!h) {
            e[m[0] == 'r' ? 2 : 0] = s;
            e[1] = &ech_jv_empty;
            e[m[0] == 'r' ? 0 : 2] = &ech_jv_empty;
        } else {
            size_t off = (size_t)(h - s->s.p);
            e[0] = mkstr(x, s->s.p, off, false);
            e[1] = a0;
            e[2] = mkstr(x, h + a0->s.n, s->s.n - off - a0->s.n, false);
            if (!e[0] || !e[2])
                return NULL;
        }
        for (int i = 0; i < 3; i++)
            t->l.v[t->l.n++] = e[i];
        return t;
    }
    if (!strcmp(m, "zfill") || !strcmp(m, "center") || !strcmp(m, "ljust") || !strcmp(m, "rjust")) {
        int64_t w;
        if (!a0 || !as_index(a0, &w))
            return type_error(x, "%s() takes an integer width", m);
        const char *fill = " ";
        size_t fl = 1;
        if (a1 && a1->type == JV_STR) {
            fill = a1->s.p;
            fl = a1->s.n;
        }
        if (!strcmp(m, "zfill"))
            fill = "0", fl = 1;
        int64_t len = (int64_t)ech_jv_utf8_len(s->s.p, s->s.n);
        if (w <= len)
            return s;
        if (w > (int64_t)(x->lim.max_output ? x->lim.max_output : 1 << 20))
            return ech_jx_fail(x, ECH_ERR_RANGE, "%s() width too large", m);
        int64_t pad = w - len, left = 0;
        if (!strcmp(m, "center"))
            left = pad / 2 + (pad & w & 1);
        else if (!strcmp(m, "rjust"))
            left = pad;
        else if (!strcmp(m, "zfill"))
            left = pad;
        ech_buf b = {0};
        bool ok = true;
        size_t start = 0;
        if (!strcmp(m, "zfill") && s->s.n && (s->s.p[0] == '-' || s->s.p[0] == '+')) {
            ok = !ech_buf_putc(&b, s->s.p[0]);
            start = 1;
        }
        for (int64_t i = 0; i < left && ok; i++)
            ok = !ech_buf_append(&b, fill, fl);
        ok = ok && !ech_buf_append(&b, s->s.p + start, s->s.n - start);
        for (int64_t i = 0; i < pad - left && ok; i++)
            ok = !ech_buf_append(&b, fill, fl);
        ech_jv *r = ok ? mkstr(x, b.data ? b.data : "", b.len, s->flags & JV_F_MARKUP) : ech_jx_oom(x);
        ech_buf_free(&b);
        return r;
    }
    return type_error(x, "str.%s() is not supported", m);
}

/* ---- dict, list and loop methods ----------------------------------------------------- */

static ech_jv *items_of(ech_jx *x, ech_jv *d)
{
    ech_jv *l = ech_jv_list(&x->heap, d->d.n);
    if (!l)
        return ech_jx_oom(x);
    for (size_t i = 0; i < d->d.n; i++) {
        ech_jv *t = ech_jv_list(&x->heap, 2);
        if (!t)
            return ech_jx_oom(x);
        t->flags = JV_F_TUPLE;
        t->l.v[0] = d->d.v[i].key;
        t->l.v[1] = d->d.v[i].val;
        t->l.n = 2;
        l->l.v[l->l.n++] = t;
    }
    l->flags = JV_F_ITEMS;
    return l;
}

ech_jv *ech_jx_items(ech_jx *x, ech_jv *d) { return items_of(x, d); }

static ech_jv *dict_method(ech_jx *x, ech_jv *d, const char *m, ech_jargs *a)
{
    if (!strcmp(m, "get")) {
        ech_jv *k = ech_jarg(a, 0, NULL);
        if (!k)
            return type_error(x, "get expected at least 1 argument, got 0");
        ech_jv *v = ech_jv_dict_get(d, k);
        if (v)
            return v;
        ech_jv *def = ech_jarg(a, 1, NULL);
        return def ? def : JV_NONE_V;
    }
    if (!strcmp(m, "items"))
        return items_of(x, d);
    if (!strcmp(m, "keys") || !strcmp(m, "values")) {
        ech_jv *l = ech_jv_list(&x->heap, d->d.n);
        if (!l)
            return ech_jx_oom(x);
        for (size_t i = 0; i < d->d.n; i++)
            l->l.v[l->l.n++] = m[0] == 'k' ? d->d.v[i].key : d->d.v[i].val;
        return l;
    }
    if (!strcmp(m, "copy")) {
        ech_jv *c = ech_jv_dict(&x->heap, d->d.n);
        if (!c)
            return ech_jx_oom(x);
        if (d->d.n)
            memcpy(c->d.v, d->d.v, d->d.n * sizeof *d->d.v);
        c->d.n = d->d.n;
        return c;
    }
    return type_error(x, "dict.%s() is not supported", m);
}

static ech_jv *list_method(ech_jx *x, ech_jv *l, const char *m, ech_jargs *a)
{
    ech_jv *a0 = ech_jarg(a, 0, NULL);
    if (!strcmp(m, "copy")) {
        ech_jv *c = ech_jv_list(&x->heap, l->l.n);
        if (!c)
            return ech_jx_oom(x);
        if (l->l.n)
            memcpy(c->l.v, l->l.v, l->l.n * sizeof *l->l.v);
        c->l.n = l->l.n;
        return c;
    }
    if (!a0)
        return type_error(x, "%s expected at least 1 argument, got 0", m);
    int64_t c = 0;
    for (size_t i = 0; i < l->l.n; i++)
        if (ech_jv_eq(l->l.v[i], a0)) {
            if (!strcmp(m, "index"))
                return ech_jv_int(&x->heap, (int64_t)i);
            c++;
        }
    if (!strcmp(m, "index")) {
        ech_buf b = {0};
        ech_jv_repr_to(&b, a0);
        ech_jv *r = type_error(x, "%s is not in list", b.data ? b.data : "");
        ech_buf_free(&b);
        return r;
    }
    return ech_jv_int(&x->heap, c);
}

static ech_jv *loop_method(ech_jx *x, ech_jv *self, const char *m, ech_jargs *a)
{
    ech_jloop *L = self->loop;
    if (!strcmp(m, "cycle")) {
        if (!a->npos)
            return type_error(x, "no items for cycling given");
        return a->pos[L->i % a->npos];
    }
    /* changed(*values): true when the values differ from the last call */
    ech_jv *t = ech_jv_list(&x->heap, a->npos);
    if (!t)
        return ech_jx_oom(x);
    for (size_t i = 0; i < a->npos; i++)
        t->l.v[t->l.n++] = a->pos[i];
    if (L->changed_last && ech_jv_eq(L->changed_last, t))
        return JV_BOOLV(false);
    L->changed_last = t;
    return JV_BOOLV(true);
}

/* ---- globals -------------------------------------------------------------------- */

static ech_jv *g_range(ech_jx *x, ech_jv *self, const char *name, ech_jargs *a)
{
    (void)self, (void)name;
    int64_t v[3] = {0, 0, 1};
    if (a->npos < 1 || a->npos > 3 || a->nkw)
        return type_error(x, "range expected at least 1 argument, got %zu", a->npos);
    for (size_t i = 0; i < a->npos; i++)
        if (!as_index(a->pos[i], &v[i]))
            return type_error(x, "'%s' object cannot be interpreted as an integer",
                              ech_jv_pytype(a->pos[i]));
    int64_t start = 0, stop, step = 1;
    if (a->npos == 1) {
        stop = v[0];
    } else {
        start = v[0];
        stop = v[1];
        if (a->npos == 3)
            step = v[2];
    }
    if (step == 0)
        return type_error(x, "range() arg 3 must not be zero");
    int64_t n = 0;
    if (step > 0 && start < stop)
        n = (stop - start - 1) / step + 1;
    else if (step < 0 && start > stop)
        n = (start - stop - 1) / -step + 1;
    if (n > 100000)
        return type_error(x, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    ech_jv *l = ech_jv_list(&x->heap, (size_t)n);
    if (!l)
        return ech_jx_oom(x);
    for (int64_t i = 0; i < n; i++)
        if (!(l->l.v[l->l.n++] = ech_jv_int(&x->heap, start + i * step)))
            return ech_jx_oom(x);
    return l;
}

static ech_jv *g_dict(ech_jx *x, ech_jv *self, const char *name, ech_jargs *a)
{
    (void)self;
    ech_jv *d = ech_jv_dict(&x->heap, a->nkw);
    if (!d)
        return ech_jx_oom(x);
    if (!strcmp(name, "namespace"))
        d->flags = JV_F_NS;
    if (a->npos > 1)
        return type_error(x, "%s expected at most 1 argument, got %zu", name, a->npos);
    if (a->npos == 1) {
        ech_jv *src = a->pos[0];
        if (src->type == JV_DICT) {
            for (size_t i = 0; i < src->d.n; i++)
                if (!ech_jv_dict_set(&x->heap, d, src->d.v[i].key, src->d.v[i].val))
                    return ech_jx_oom(x);
        } else {
            size_t n;
            ech_jv **it = ech_jx_iter(x, src, &n);
            if (!it)
                return NULL;
            for (size_t i = 0; i < n; i++) {
                if (it[i]->type != JV_LIST || it[i]->l.n != 2)
                    return type_error(x, "dictionary update sequence element #%zu has wrong length", i);
                if (!ech_jv_dict_set(&x->heap, d, it[i]->l.v[0], it[i]->l.v[1]))
                    return ech_jx_oom(x);
            }
        }
    }
    for (size_t i = 0; i < a->nkw; i++) {
        ech_jv *k = ech_jv_cstr(&x->heap, a->kwname[i]);
        if (!k || !ech_jv_dict_set(&x->heap, d, k, a->kwval[i]))
            return ech_jx_oom(x);
    }
    return d;
}

static ech_jv *g_raise(ech_jx *x, ech_jv *self, const char *name, ech_jargs *a)
{
    (void)self, (void)name;
    ech_jv *m = ech_jarg(a, 0, "message");
    ech_jv *s = m ? ech_jx_str(x, m) : &ech_jv_empty;
    if (!s)
        return NULL;
    return type_error(x, "%.*s", (int)s->s.n, s->s.p);
}

static ech_jv *g_strftime(ech_jx *x, ech_jv *self, const char *name, ech_jargs *a)
{
    (void)self, (void)name;
    ech_jv *f = ech_jarg(a, 0, "format");
    if (!f || f->type != JV_STR)
        return type_error(x, "strftime_now() needs a format string");
    char fmt[256], out[512];
    if (f->s.n >= sizeof fmt)
        return ech_jx_fail(x, ECH_ERR_RANGE, "strftime_now() format too long");
    memcpy(fmt, f->s.p, f->s.n);
    fmt[f->s.n] = '\0';
    struct tm tm;
    if (!(x->utc ? gmtime_r(&x->now, &tm) : localtime_r(&x->now, &tm)))
        return type_error(x, "strftime_now(): time out of range");
    /* the format is the template's: strftime reads it, it cannot write past `out` */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    size_t n = fmt[0] ? strftime(out, sizeof out, fmt, &tm) : 0;
#pragma GCC diagnostic pop
    return mkstr(x, out, n, false);
}

static ech_jv *g_joiner_call(ech_jx *x, ech_jv *self, const char *name, ech_jargs *a)
{
    (void)name, (void)a;
    /* self: [sep, used-flag] (a list we own) */
    if (self->l.v[1] == &ech_jv_false) {
        self->l.v[1] = &ech_jv_true;
        return &ech_jv_empty;
    }
    (void)x;
    return self->l.v[0];
}

static ech_jv *g_joiner(ech_jx *x, ech_jv *self, const char *name, ech_jargs *a)
{
    (void)self, (void)name;
    ech_jv *sep = ech_jarg(a, 0, "sep");
    ech_jv *state = ech_jv_list(&x->heap, 2);
    if (!state)
        return ech_jx_oom(x);
    state->l.v[0] = sep ? sep : ech_jv_cstr(&x->heap, ", ");
    state->l.v[1] = &ech_jv_false;
    state->l.n = 2;
    return bound(x, state, "joiner", g_joiner_call);
}

static const struct { const char *name; ech_jv_builtin fn; } globals[] = {
    {"range", g_range}, {"dict", g_dict}, {"namespace", g_dict},
    {"raise_exception", g_raise}, {"strftime_now", g_strftime}, {"joiner", g_joiner},
};

/* ---- calls and macros --------------------------------------------------------------- */

static ech_status exec_body(ech_jx *x, const ech_jnode *body);

static ech_jv *call_macro(ech_jx *x, ech_jv *fn, ech_jargs *a)
{
    const ech_jnode *m = fn->fn.node;
    const char *mname = m->kind == JN_CALLBLOCK ? "caller" : m->name;
    if (++x->depth > x->lim.max_depth) {
        x->depth--;
        return ech_jx_fail(x, ECH_ERR_RANGE, "maximum recursion depth exceeded (%d nested macro calls)",
                           x->lim.max_depth);
    }
    ech_jscope *sc = scope_new(x, fn->fn.scope);
    if (!sc)
        goto out;
    size_t np = m->nkids;
    if (a->npos > np && !m->uses_varargs) {
        type_error(x, "macro '%s' takes not more than %zu argument(s)", mname, np);
        sc = NULL;
        goto out;
    }
    for (size_t i = 0; i < np; i++) {
        const ech_jnode *p = m->kids[i];
        ech_jv *v = i < a->npos ? a->pos[i] : NULL;
        for (size_t k = 0; k < a->nkw; k++)
            if (!strcmp(a->kwname[k], p->name)) {
                if (v) {
                    type_error(x, "macro '%s' got multiple values for argument '%s'", mname, p->name);
                    sc = NULL;
                    goto out;
                }
                v = a->kwval[k];
            }
        if (!v && p->a) {
            /* defaults see the parameters bound so far */
            ech_jscope *saved = x->sc;
            x->sc = sc;
            v = NULL;
            v = ech_jx_eval(x, p->a);
            x->sc = saved;
            if (!v) {
                sc = NULL;
                goto out;
            }
        }
        if (!v) {
            char *hint = ech_jv_alloc(&x->heap, strlen(p->name) + 40);
            if (!hint) {
                ech_jx_oom(x);
                sc = NULL;
                goto out;
            }
            snprintf(hint, strlen(p->name) + 40, "parameter '%s' was not provided", p->name);
            v = ech_jv_undef(&x->heap, NULL, NULL, hint);
        }
        if (!v || !scope_set(x, sc, p->sym, v)) {
            sc = NULL;
            goto out;
        }
    }
    /* extra keywords: kwargs, or an error (caller is accepted if used) */
    ech_jv *kwargs = NULL;
    for (size_t k = 0; k < a->nkw; k++) {
        bool known = false;
        for (size_t i = 0; i < np; i++)
            if (!strcmp(a->kwname[k], m->kids[i]->name))
                known = true;
        if (known)
            continue;
        if (!strcmp(a->kwname[k], "caller") && m->uses_caller) {
            int s = ech_jsym_find(x->syms, "caller", 6);
            if (s >= 0 && !scope_set(x, sc, s, a->kwval[k])) {
                sc = NULL;
                goto out;
            }
            continue;
        }
        if (!m->uses_kwargs) {
            type_error(x, "macro '%s' takes no keyword argument '%s'", mname, a->kwname[k]);
            sc = NULL;
            goto out;
        }
        if (!kwargs && !(kwargs = ech_jv_dict(&x->heap, 0))) {
            ech_jx_oom(x);
            sc = NULL;
            goto out;
        }
        ech_jv *key = ech_jv_cstr(&x->heap, a->kwname[k]);
        if (!key || !ech_jv_dict_set(&x->heap, kwargs, key, a->kwval[k])) {
            ech_jx_oom(x);
            sc = NULL;
            goto out;
        }
    }
    int s;
    if (m->uses_kwargs && (s = ech_jsym_find(x->syms, "kwargs", 6)) >= 0 &&
        !scope_set(x, sc, s, kwargs ? kwargs : ech_jv_dict(&x->heap, 0))) {
        sc = NULL;
        goto out;
    }
    if (m->uses_varargs && (s = ech_jsym_find(x->syms, "varargs", 7)) >= 0) {
        ech_jv *t = ech_jv_list(&x->heap, 0);
        if (!t) {
            ech_jx_oom(x);
            sc = NULL;
            goto out;
        }
        t->flags = JV_F_TUPLE;
        for (size_t i = np; i < a->npos; i++)
            if (!ech_jv_list_push(&x->heap, t, a->pos[i])) {
                ech_jx_oom(x);
                sc = NULL;
                goto out;
            }
        if (!scope_set(x, sc, s, t)) {
            sc = NULL;
            goto out;
        }
    }
    if (m->kind == JN_CALLBLOCK && fn->fn.caller == NULL) {
        /* nothing more: a caller's own caller is not bound */
    }
out:;
    ech_jv *result = NULL;
    if (sc) {
        ech_buf buf = {0}, *saved_out = x->out;
        ech_jscope *saved_sc = x->sc;
        int saved_ctl = x->ctl;
        x->out = &buf;
        x->sc = sc;
        x->ctl = 0;
        if (exec_body(x, m->body) == ECH_OK)
            result = mkstr(x, buf.data ? buf.data : "", buf.len, false);
        x->out = saved_out;
        x->sc = saved_sc;
        x->ctl = saved_ctl;
        ech_buf_free(&buf);
    }
    x->depth--;
    return result;
}

ech_jv *ech_jx_call(ech_jx *x, ech_jv *fn, ech_jargs *a)
{
    if (!ech_jx_step(x))
        return NULL;
    switch (fn->type) {
    case JV_UNDEF:
        return ech_jx_undef_error(x, fn);
    case JV_FUNC:
        if (fn->fn.kind == JF_MACRO)
            return call_macro(x, fn, a);
        return fn->fn.fn(x, fn->fn.kind == JF_METHOD ? fn->fn.self : NULL, fn->fn.name, a);
    default:
        return type_error(x, "'%s' object is not callable", ech_jv_pytype(fn));
    }
}

/* ---- expressions -------------------------------------------------------------------- */

static bool eval_args(ech_jx *x, const ech_jnode *n, ech_jargs *a, ech_jv *first)
{
    size_t extra = first ? 1 : 0;
    ech_jv *star = NULL, *dstar = NULL;
    if (n->b && !(star = ech_jx_eval(x, n->b)))
        return false;
    if (n->c && !(dstar = ech_jx_eval(x, n->c)))
        return false;
    size_t nstar = 0, ndstar = 0;
    ech_jv **staritems = NULL;
    if (star && !(staritems = ech_jx_iter(x, star, &nstar)))
        return false;
    if (dstar) {
        if (dstar->type != JV_DICT) {
            type_error(x, "argument after ** must be a mapping, not %s", ech_jv_pytype(dstar));
            return false;
        }
        ndstar = dstar->d.n;
    }
    size_t npos = extra + n->nkids + nstar, nkw = n->nkw + ndstar;
    a->pos = ech_jv_alloc(&x->heap, (npos ? npos : 1) * sizeof *a->pos);
    a->kwname = ech_jv_alloc(&x->heap, (nkw ? nkw : 1) * sizeof *a->kwname);
    a->kwval = ech_jv_alloc(&x->heap, (nkw ? nkw : 1) * sizeof *a->kwval);
    if (!a->pos || !a->kwname || !a->kwval) {
        ech_jx_oom(x);
        return false;
    }
    a->npos = 0;
    a->nkw = 0;
    if (first)
        a->pos[a->npos++] = first;
    for (size_t i = 0; i < n->nkids; i++)
        if (!(a->pos[a->npos++] = ech_jx_eval(x, n->kids[i])))
            return false;
    for (size_t i = 0; i < nstar; i++)
        a->pos[a->npos++] = staritems[i];
    for (size_t i = 0; i < n->nkw; i++) {
        a->kwname[a->nkw] = n->kw[i]->name;
        if (!(a->kwval[a->nkw++] = ech_jx_eval(x, n->kw[i]->a)))
            return false;
    }
    for (size_t i = 0; i < ndstar; i++) {
        ech_jv *k = dstar->d.v[i].key;
        if (k->type != JV_STR) {
            type_error(x, "keywords must be strings");
            return false;
        }
        char *kn = ech_jv_alloc(&x->heap, k->s.n + 1);
        if (!kn) {
            ech_jx_oom(x);
            return false;
        }
        memcpy(kn, k->s.p, k->s.n);
        kn[k->s.n] = '\0';
        a->kwname[a->nkw] = kn;
        a->kwval[a->nkw++] = dstar->d.v[i].val;
    }
    return true;
}

static bool checked_int(ech_jx *x, bool overflow)
{
    if (overflow)
        ech_jx_fail(x, ECH_ERR_RANGE, "integer overflow (values beyond 64 bits are not supported)");
    return !overflow;
}

static const char *op_sym(int op)
{
    static const char *const s[] = {"+", "-", "*", "/", "//", "%", "**", "~", "==", "!=",
                                    "<", "<=", ">", ">="};
    return op >= 0 && op <= OP_GE ? s[op] : "?";
}

static ech_jv *unsupported(ech_jx *x, int op, const ech_jv *a, const ech_jv *b)
{
    return type_error(x, "unsupported operand type(s) for %s: '%s' and '%s'",
                      op == OP_POW ? "** or pow()" : op_sym(op), ech_jv_pytype(a), ech_jv_pytype(b));
}

static ech_jv *repeat(ech_jx *x, ech_jv *seq, int64_t k)
{
    if (k < 0)
        k = 0;
    size_t unit = seq->type == JV_STR ? seq->s.n : seq->l.n * sizeof(void *);
    if (unit && ((uint64_t)k > SIZE_MAX / unit || (x->heap.limit && (uint64_t)k > x->heap.limit / unit))) {
        x->heap.exhausted = true;   /* would not fit the budget: say so now */
        return ech_jx_oom(x);
    }
    if (seq->type == JV_STR) {
        size_t n = seq->s.n * (size_t)k;
        char *p = ech_jv_alloc(&x->heap, n ? n : 1);
        if (!p)
            return ech_jx_oom(x);
        for (int64_t i = 0; i < k; i++)
            memcpy(p + (size_t)i * seq->s.n, seq->s.p, seq->s.n);
        ech_jv *r = ech_jv_str_ref(&x->heap, p, n);
        if (r)
            r->flags = seq->flags & JV_F_MARKUP;
        return r ? r : ech_jx_oom(x);
    }
    ech_jv *l = ech_jv_list(&x->heap, seq->l.n * (size_t)k);
    if (!l)
        return ech_jx_oom(x);
    l->flags = seq->flags & JV_F_TUPLE;
    for (int64_t i = 0; i < k; i++)
        for (size_t j = 0; j < seq->l.n; j++)
            l->l.v[l->l.n++] = seq->l.v[j];
    return l;
}

static double fnum(const ech_jv *v) { return v->type == JV_FLOAT ? v->f : v->type == JV_INT ? (double)v->i : v->b; }
static int64_t inum(const ech_jv *v) { return v->type == JV_INT ? v->i : v->b; }

static ech_jv *binary(ech_jx *x, int op, ech_jv *a, ech_jv *b)
{
    if (op == OP_TILDE) {
        ech_jv *sa = ech_jx_str(x, a), *sb = sa ? ech_jx_str(x, b) : NULL;
        return sb ? concat2(x, sa, sb, false) : NULL;
    }
    if (a->type == JV_UNDEF)
        return ech_jx_undef_error(x, a);
    if (b->type == JV_UNDEF)
        return ech_jx_undef_error(x, b);
    bool na = ech_jv_is_num(a), nb = ech_jv_is_num(b);
    if (na && nb) {
        bool fl = a->type == JV_FLOAT || b->type == JV_FLOAT;
        if (op == OP_DIV) {
            if (fnum(b) == 0)
                return type_error(x, "division by zero");
            return ech_jv_float(&x->heap, fnum(a) / fnum(b));
        }
        if (fl) {
            double p = fnum(a), q = fnum(b), r;
            switch (op) {
            case OP_ADD: r = p + q; break;
            case OP_SUB: r = p - q; break;
            case OP_MUL: r = p * q; break;
            case OP_FLOORDIV:
                if (q == 0) return type_error(x, "float floor division by zero");
                r = floor(p / q);
                break;
            case OP_MOD:
                if (q == 0) return type_error(x, "float modulo");
                r = fmod(p, q);
                if (r != 0 && ((r < 0) != (q < 0))) r += q;
                break;
            case OP_POW: r = pow(p, q); break;
            default: return unsupported(x, op, a, b);
            }
            return ech_jv_float(&x->heap, r);
        }
        int64_t p = inum(a), q = inum(b), r = 0;
        switch (op) {
        case OP_ADD: if (!checked_int(x, __builtin_add_overflow(p, q, &r))) return NULL; break;
        case OP_SUB: if (!checked_int(x, __builtin_sub_overflow(p, q, &r))) return NULL; break;
        case OP_MUL: if (!checked_int(x, __builtin_mul_overflow(p, q, &r))) return NULL; break;
        case OP_FLOORDIV:
        case OP_MOD:
            if (q == 0)
                return type_error(x, op == OP_MOD ? "integer modulo by zero" : "integer division or modulo by zero");
            if (p == INT64_MIN && q == -1)
                return checked_int(x, true) ? NULL : NULL;
            r = op == OP_MOD ? p % q : p / q;
            if (op == OP_MOD && r != 0 && ((r < 0) != (q < 0)))
                r += q;
            if (op == OP_FLOORDIV && (p % q != 0) && ((p < 0) != (q < 0)))
                r -= 1;
            break;
        case OP_POW:
            if (q < 0)
                return ech_jv_float(&x->heap, pow((double)p, (double)q));
            r = 1;
            for (int64_t i = 0; i < q; i++) {
                if (!checked_int(x, __builtin_mul_overflow(r, p, &r)))
                    return NULL;
                if (r == 0 || r == 1)
                    break;
            }
            break;
        default: return unsupported(x, op, a, b);
        }
        return ech_jv_int(&x->heap, r);
    }
    if (op == OP_ADD) {
        if (a->type == JV_STR && b->type == JV_STR) {
            bool ma = a->flags & JV_F_MARKUP, mb = b->flags & JV_F_MARKUP;
            if (ma != mb) {   /* Markup escapes the plain side */
                if (ma && !(b = ech_jx_escape(x, b)))
                    return NULL;
                if (mb && !(a = ech_jx_escape(x, a)))
                    return NULL;
            }
            return concat2(x, a, b, ma || mb);
        }
        if (a->type == JV_LIST && b->type == JV_LIST && !((a->flags | b->flags) & (JV_F_GEN | JV_F_ITEMS)) &&
            (a->flags & JV_F_TUPLE) == (b->flags & JV_F_TUPLE)) {
            ech_jv *l = ech_jv_list(&x->heap, a->l.n + b->l.n);
            if (!l)
                return ech_jx_oom(x);
            l->flags = a->flags & JV_F_TUPLE;
            for (size_t i = 0; i < a->l.n; i++)
                l->l.v[l->l.n++] = a->l.v[i];
            for (size_t i = 0; i < b->l.n; i++)
                l->l.v[l->l.n++] = b->l.v[i];
            return l;
        }
        if (a->type == JV_STR && !(a->flags & JV_F_MARKUP))
            return type_error(x, "can only concatenate str (not \"%s\") to str", ech_jv_pytype(b));
        if (a->type == JV_LIST && !(a->flags & (JV_F_GEN | JV_F_ITEMS)))
            return type_error(x, "can only concatenate %s (not \"%s\") to %s", ech_jv_pytype(a),
                              ech_jv_pytype(b), ech_jv_pytype(a));
        return unsupported(x, op, a, b);
    }
    if (op == OP_MUL) {
        if ((a->type == JV_STR || (a->type == JV_LIST && !(a->flags & JV_F_GEN))) && nb && b->type != JV_FLOAT)
            return repeat(x, a, inum(b));
        if ((b->type == JV_STR || (b->type == JV_LIST && !(b->flags & JV_F_GEN))) && na && a->type != JV_FLOAT)
            return repeat(x, b, inum(a));
        if ((a->type == JV_STR || a->type == JV_LIST) && (nb || b->type == JV_STR || b->type == JV_LIST))
            return type_error(x, "can't multiply sequence by non-int of type '%s'", ech_jv_pytype(b));
        return unsupported(x, op, a, b);
    }
    if (op == OP_MOD && a->type == JV_STR) {
        return ech_jx_printf(x, a, b);
    }
    return unsupported(x, op, a, b);
}

static int compare(ech_jx *x, int op, ech_jv *a, ech_jv *b)
{
    if (op == OP_EQ || op == OP_NE)
        return ech_jv_eq(a, b) == (op == OP_EQ);
    if (op == CMP_IN || op == CMP_NOTIN) {
        bool found = false;
        if (b->type == JV_STR) {
            if (a->type != JV_STR) {
                type_error(x, "'in <string>' requires string as left operand, not %s", ech_jv_pytype(a));
                return -1;
            }
            found = memmem_(b->s.p, b->s.n, a->s.p, a->s.n) != NULL;
        } else if (b->type == JV_DICT && !(b->flags & JV_F_NS)) {
            found = ech_jv_dict_get(b, a) != NULL;
        } else if (b->type == JV_LIST) {
            for (size_t i = 0; i < b->l.n && !found; i++)
                found = ech_jv_eq(b->l.v[i], a);
        } else if (b->type == JV_UNDEF) {
            found = false;
        } else {
            type_error(x, "argument of type '%s' is not iterable", ech_jv_pytype(b));
            return -1;
        }
        return found == (op == CMP_IN);
    }
    if (a->type == JV_UNDEF) {
        ech_jx_undef_error(x, a);
        return -1;
    }
    if (b->type == JV_UNDEF) {
        ech_jx_undef_error(x, b);
        return -1;
    }
    int c;
    if (!ech_jv_cmp(a, b, &c)) {
        type_error(x, "'%s' not supported between instances of '%s' and '%s'", op_sym(op),
                   ech_jv_pytype(a), ech_jv_pytype(b));
        return -1;
    }
    if (c == 2)
        return 0;
    switch (op) {
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    case OP_GE: return c >= 0;
    }
    return 0;
}

static ech_jv *lookup(ech_jx *x, const ech_jnode *n)
{
    ech_jv *v = scope_get(x->sc, n->sym);
    if (v)
        return v;
    ech_jv *name = ech_jv_cstr(&x->heap, n->name);
    v = name ? ech_jv_undef(&x->heap, NULL, name, NULL) : NULL;
    return v ? v : ech_jx_oom(x);
}

ech_jv *ech_jx_eval(ech_jx *x, const ech_jnode *n)
{
    ech_jv *a, *b, *r;
    switch (n->kind) {
    case JN_CONST:
        return n->val;
    case JN_NAME:
        return lookup(x, n);
    case JN_BLOCKVAL:
        return x->blockval ? x->blockval : &ech_jv_empty;
    case JN_LIST:
    case JN_TUPLE:
        if (!(r = ech_jv_list(&x->heap, n->nkids)))
            return ech_jx_oom(x);
        if (n->kind == JN_TUPLE)
            r->flags = JV_F_TUPLE;
        for (size_t i = 0; i < n->nkids; i++)
            if (!(r->l.v[r->l.n++] = ech_jx_eval(x, n->kids[i])))
                return NULL;
        return r;
    case JN_DICT:
        if (!(r = ech_jv_dict(&x->heap, n->nkids / 2)))
            return ech_jx_oom(x);
        for (size_t i = 0; i + 1 < n->nkids; i += 2) {
            if (!(a = ech_jx_eval(x, n->kids[i])) || !(b = ech_jx_eval(x, n->kids[i + 1])))
                return NULL;
            if (a->type == JV_LIST && !(a->flags & JV_F_TUPLE))
                return type_error(x, "unhashable type: 'list'");
            if (a->type == JV_DICT)
                return type_error(x, "unhashable type: 'dict'");
            if (!ech_jv_dict_set(&x->heap, r, a, b))
                return ech_jx_oom(x);
        }
        return r;
    case JN_ATTR:
        if (!(a = ech_jx_eval(x, n->a)))
            return NULL;
        return ech_jx_getattr(x, a, n->val);
    case JN_ITEM:
        if (!(a = ech_jx_eval(x, n->a)))
            return NULL;
        if (n->b->kind == JN_SLICE) {
            ech_jv *s[3] = {NULL, NULL, NULL};
            const ech_jnode *sl = n->b;
            const ech_jnode *parts[3] = {sl->a, sl->b, sl->c};
            for (int i = 0; i < 3; i++)
                if (parts[i] && !(s[i] = ech_jx_eval(x, parts[i])))
                    return NULL;
            return do_slice(x, a, s[0], s[1], s[2]);
        }
        if (!(b = ech_jx_eval(x, n->b)))
            return NULL;
        return ech_jx_getitem(x, a, b);
    case JN_SLICE:
        return type_error(x, "a slice is only valid inside []");
    case JN_CALL: {
        if (!(a = ech_jx_eval(x, n->a)))
            return NULL;
        ech_jargs args;
        if (!eval_args(x, n, &args, NULL))
            return NULL;
        return ech_jx_call(x, a, &args);
    }
    case JN_FILTER: {
        if (!(a = n->a ? ech_jx_eval(x, n->a) : &ech_jv_empty))
            return NULL;
        ech_jargs args;
        if (!eval_args(x, n, &args, NULL))
            return NULL;
        if (!n->fn.filter)
            return type_error(x, "No filter named '%s' found.", n->name);
        return n->fn.filter(x, a, &args);
    }
    case JN_TEST: {
        if (!(a = ech_jx_eval(x, n->a)))
            return NULL;
        ech_jargs args;
        if (!eval_args(x, n, &args, NULL))
            return NULL;
        if (!n->fn.test)
            return type_error(x, "No test named '%s' found.", n->name);
        int t = n->fn.test(x, a, &args);
        if (t < 0)
            return NULL;
        return JV_BOOLV(n->op ? !t : t);
    }
    case JN_NOT:
        if (!(a = ech_jx_eval(x, n->a)))
            return NULL;
        return JV_BOOLV(!ech_jv_truthy(a));
    case JN_NEG:
    case JN_POS:
        if (!(a = ech_jx_eval(x, n->a)))
            return NULL;
        if (a->type == JV_UNDEF)
            return ech_jx_undef_error(x, a);
        if (a->type == JV_FLOAT)
            return n->kind == JN_NEG ? ech_jv_float(&x->heap, -a->f) : a;
        if (a->type == JV_INT || a->type == JV_BOOL) {
            int64_t v = inum(a);
            if (n->kind == JN_POS)
                return ech_jv_int(&x->heap, v);
            if (v == INT64_MIN)
                return checked_int(x, true) ? NULL : NULL;
            return ech_jv_int(&x->heap, -v);
        }
        return type_error(x, "bad operand type for unary %s: '%s'", n->kind == JN_NEG ? "-" : "+",
                          ech_jv_pytype(a));
    case JN_BIN:
        if (!(a = ech_jx_eval(x, n->a)) || !(b = ech_jx_eval(x, n->b)))
            return NULL;
        r = binary(x, n->op, a, b);
        if (!r && !ech_jx_failed(x))
            ech_jx_oom(x);
        return r;
    case JN_AND:
        if (!(a = ech_jx_eval(x, n->a)))
            return NULL;
        return ech_jv_truthy(a) ? ech_jx_eval(x, n->b) : a;
    case JN_OR:
        if (!(a = ech_jx_eval(x, n->a)))
            return NULL;
        return ech_jv_truthy(a) ? a : ech_jx_eval(x, n->b);
    case JN_COND:
        if (!(a = ech_jx_eval(x, n->a)))
            return NULL;
        if (ech_jv_truthy(a))
            return ech_jx_eval(x, n->body);
        if (n->orelse)
            return ech_jx_eval(x, n->orelse);
        r = ech_jv_undef(&x->heap, NULL, NULL,
                         "the inline if-expression on line %d evaluated to false and no else section was defined.");
        if (r) {   /* jinja2 says which line */
            char *h = ech_jv_alloc(&x->heap, 128);
            if (!h)
                return ech_jx_oom(x);
            snprintf(h, 128, "the inline if-expression on line %d evaluated to false and no else "
                             "section was defined.", n->line);
            r->u.hint = h;
        }
        return r ? r : ech_jx_oom(x);
    case JN_CMP: {
        if (!(a = ech_jx_eval(x, n->a)))
            return NULL;
        for (size_t i = 0; i < n->nkids; i++) {
            if (!(b = ech_jx_eval(x, n->kids[i])))
                return NULL;
            int c = compare(x, n->ops[i], a, b);
            if (c < 0)
                return NULL;
            if (!c)
                return JV_BOOLV(false);
            a = b;
        }
        return JV_BOOLV(true);
    }
    default:
        return type_error(x, "internal error: node %d is not an expression", n->kind);
    }
}

/* ---- statements -------------------------------------------------------------------- */

enum { CTL_BREAK = 1, CTL_CONTINUE = 2 };

static ech_status emit(ech_jx *x, const char *p, size_t n)
{
    if (x->lim.max_output && x->out->len + n > x->lim.max_output) {
        ech_jx_fail(x, ECH_ERR_RANGE, "rendered text exceeds %zu bytes", x->lim.max_output);
        return x->code;
    }
    if (ech_buf_append(x->out, p, n)) {
        ech_jx_fail(x, ECH_ERR_NOMEM, "out of memory");
        return x->code;
    }
    return ECH_OK;
}

static ech_status emit_value(ech_jx *x, ech_jv *v)
{
    if (v->type == JV_STR)
        return emit(x, v->s.p, v->s.n);
    if (v->type == JV_UNDEF)
        return ECH_OK;
    ech_jv *s = ech_jx_str(x, v);
    return s ? emit(x, s->s.p, s->s.n) : x->code;
}

static ech_status fail_status(ech_jx *x)
{
    if (x->code == ECH_OK)
        ech_jx_oom(x);
    return x->code;
}

/* Bind a for/set target: a name, or a tuple of names unpacking v. */
static ech_status assign(ech_jx *x, ech_jscope *sc, const ech_jnode *t, ech_jv *v)
{
    if (t->kind == JN_NAME)
        return scope_set(x, sc, t->sym, v) ? ECH_OK : fail_status(x);
    size_t n;
    ech_jv **items = ech_jx_iter(x, v, &n);
    if (!items) {
        ech_error_clear(x->err);
        x->code = ECH_OK;
        type_error(x, "cannot unpack non-iterable %s object", ech_jv_pytype(v));
        return x->code;
    }
    if (n < t->nkids) {
        type_error(x, "not enough values to unpack (expected %zu, got %zu)", t->nkids, n);
        return x->code;
    }
    if (n > t->nkids) {
        type_error(x, "too many values to unpack (expected %zu)", t->nkids);
        return x->code;
    }
    for (size_t i = 0; i < n; i++)
        if (!scope_set(x, sc, t->kids[i]->sym, items[i]))
            return fail_status(x);
    return ECH_OK;
}

static ech_status exec_for(ech_jx *x, const ech_jnode *n)
{
    ech_jv *it = ech_jx_eval(x, n->b);
    if (!it)
        return fail_status(x);
    size_t cnt;
    ech_jv **items = ech_jx_iter(x, it, &cnt);
    if (!items)
        return fail_status(x);
    ech_jscope *outer = x->sc;
    ech_jscope *sc = scope_new(x, outer);
    if (!sc)
        return fail_status(x);
    if (n->c) {   /* the loop filter runs first; loop.* counts what passed */
        ech_jv **kept = ech_jv_alloc(&x->heap, (cnt ? cnt : 1) * sizeof *kept);
        if (!kept)
            return fail_status(x);
        size_t k = 0;
        x->sc = sc;
        for (size_t i = 0; i < cnt; i++) {
            sc->n = 0;
            if (assign(x, sc, n->a, items[i])) {
                x->sc = outer;
                return x->code;
            }
            ech_jv *c = ech_jx_eval(x, n->c);
            if (!c) {
                x->sc = outer;
                return fail_status(x);
            }
            if (ech_jv_truthy(c))
                kept[k++] = items[i];
        }
        x->sc = outer;
        items = kept;
        cnt = k;
    }
    if (cnt == 0) {
        return n->orelse ? exec_body(x, n->orelse) : ECH_OK;
    }
    ech_jloop *L = ech_jv_alloc(&x->heap, sizeof *L);
    ech_jv *lv = ech_jv_new(&x->heap, JV_LOOP);
    if (!L || !lv)
        return fail_status(x);
    memset(L, 0, sizeof *L);
    L->items = items;
    L->n = cnt;
    L->depth = 1;
    lv->loop = L;
    int loop_sym = ech_jsym_find(x->syms, "loop", 4);
    ech_status st = ECH_OK;
    x->sc = sc;
    for (size_t i = 0; i < cnt; i++) {
        if (!ech_jx_step(x)) {
            st = x->code;
            break;
        }
        L->i = i;
        sc->n = 0;   /* a fresh scope each iteration, as jinja2 has */
        if ((loop_sym >= 0 && !scope_set(x, sc, loop_sym, lv)) || assign(x, sc, n->a, items[i])) {
            st = fail_status(x);
            break;
        }
        if ((st = exec_body(x, n->body)))
            break;
        if (x->ctl == CTL_BREAK) {
            x->ctl = 0;
            break;
        }
        x->ctl = 0;
    }
    x->sc = outer;
    return st;
}

static ech_status exec_set(ech_jx *x, const ech_jnode *t, ech_jv *v)
{
    if (t->kind == JN_ATTR) {   /* {% set ns.attr = v %} */
        ech_jv *ns = lookup(x, t->a);
        if (!ns)
            return fail_status(x);
        if (ns->type != JV_DICT || !(ns->flags & JV_F_NS)) {
            type_error(x, "cannot assign attribute on non-namespace object");
            return x->code;
        }
        return ech_jv_dict_set(&x->heap, ns, t->val, v) ? ECH_OK : fail_status(x);
    }
    return assign(x, x->sc, t, v);
}

/* Render a body into a string (set blocks, filter blocks). */
static ech_jv *capture(ech_jx *x, const ech_jnode *body)
{
    ech_buf buf = {0}, *saved = x->out;
    x->out = &buf;
    ech_status st = exec_body(x, body);
    x->out = saved;
    ech_jv *r = st == ECH_OK ? mkstr(x, buf.data ? buf.data : "", buf.len, false) : NULL;
    ech_buf_free(&buf);
    return r;
}

static ech_status exec_stmt(ech_jx *x, const ech_jnode *n)
{
    ech_jv *v;
    switch (n->kind) {
    case JN_TEXT:
        return emit(x, n->val->s.p, n->val->s.n);
    case JN_OUT:
        if (!(v = ech_jx_eval(x, n->a)))
            return fail_status(x);
        return emit_value(x, v);
    case JN_IF:
        for (const ech_jnode *c = n; c;) {
            if (!(v = ech_jx_eval(x, c->a)))
                return fail_status(x);
            if (ech_jv_truthy(v))
                return exec_body(x, c->body);
            if (c->orelse && c->orelse->kind == JN_IF)
                c = c->orelse;
            else
                return c->orelse ? exec_body(x, c->orelse) : ECH_OK;
        }
        return ECH_OK;
    case JN_FOR:
        return exec_for(x, n);
    case JN_SET:
        if (!(v = ech_jx_eval(x, n->b)))
            return fail_status(x);
        return exec_set(x, n->a, v);
    case JN_SETBLOCK:
        if (!(v = capture(x, n->body)))
            return fail_status(x);
        if (n->c) {
            ech_jv *saved = x->blockval;
            x->blockval = v;
            v = ech_jx_eval(x, n->c);
            x->blockval = saved;
            if (!v)
                return fail_status(x);
        }
        return exec_set(x, n->a, v);
    case JN_MACRO:
        if (!(v = ech_jv_new(&x->heap, JV_FUNC)))
            return fail_status(x);
        v->fn.kind = JF_MACRO;
        v->fn.name = n->name;
        v->fn.node = n;
        v->fn.scope = x->sc;
        return scope_set(x, x->sc, n->sym, v) ? ECH_OK : fail_status(x);
    case JN_CALLBLOCK: {
        ech_jv *caller = ech_jv_new(&x->heap, JV_FUNC);
        if (!caller)
            return fail_status(x);
        caller->fn.kind = JF_MACRO;
        caller->fn.name = "caller";
        caller->fn.node = n;
        caller->fn.scope = x->sc;
        caller->fn.caller = caller;
        const ech_jnode *call = n->a;
        ech_jv *fn = ech_jx_eval(x, call->a);
        ech_jargs args;
        if (!fn || !eval_args(x, call, &args, NULL))
            return fail_status(x);
        const char **kn = ech_jv_alloc(&x->heap, (args.nkw + 1) * sizeof *kn);
        ech_jv **kv = ech_jv_alloc(&x->heap, (args.nkw + 1) * sizeof *kv);
        if (!kn || !kv)
            return fail_status(x);
        if (args.nkw) {
            memcpy(kn, args.kwname, args.nkw * sizeof *kn);
            memcpy(kv, args.kwval, args.nkw * sizeof *kv);
        }
        kn[args.nkw] = "caller";
        kv[args.nkw] = caller;
        args.kwname = kn;
        args.kwval = kv;
        args.nkw++;
        if (!(v = ech_jx_call(x, fn, &args)))
            return fail_status(x);
        return emit_value(x, v);
    }
    case JN_FILTERBLOCK: {
        ech_jv *body = capture(x, n->body);
        if (!body)
            return fail_status(x);
        ech_jv *saved = x->blockval;
        x->blockval = body;
        v = ech_jx_eval(x, n->a);
        x->blockval = saved;
        if (!v)
            return fail_status(x);
        return emit_value(x, v);
    }
    case JN_BREAK:
        x->ctl = CTL_BREAK;
        return ECH_OK;
    case JN_CONTINUE:
        x->ctl = CTL_CONTINUE;
        return ECH_OK;
    case JN_SCOPE:
    case JN_WITH: {
        ech_jscope *outer = x->sc, *sc = scope_new(x, outer);
        if (!sc)
            return fail_status(x);
        for (size_t i = 0; i < n->nkw; i++) {
            if (!(v = ech_jx_eval(x, n->kw[i]->a)))
                return fail_status(x);
            if (!scope_set(x, sc, n->kw[i]->sym, v))
                return fail_status(x);
        }
        x->sc = sc;
        ech_status st = exec_body(x, n->body);
        x->sc = outer;
        return st;
    }
    case JN_BODY:
        return exec_body(x, n);
    default:
        type_error(x, "internal error: node %d is not a statement", n->kind);
        return x->code;
    }
}

static ech_status exec_body(ech_jx *x, const ech_jnode *body)
{
    for (size_t i = 0; i < body->nkids; i++) {
        ech_status st = exec_stmt(x, body->kids[i]);
        if (st)
            return st;
        if (x->ctl)
            break;
    }
    return ECH_OK;
}

ech_status ech_jx_run(ech_jx *x, const ech_jnode *root, ech_jv *vars)
{
    ech_jscope *g = scope_new(x, NULL);
    if (!g)
        return fail_status(x);
    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++) {
        int s = ech_jsym_find(x->syms, globals[i].name, strlen(globals[i].name));
        if (s < 0)
            continue;
        ech_jv *f = ech_jv_new(&x->heap, JV_FUNC);
        if (!f || !scope_set(x, g, s, f))
            return fail_status(x);
        f->fn.kind = JF_BUILTIN;
        f->fn.name = globals[i].name;
        f->fn.fn = globals[i].fn;
    }
    for (size_t i = 0; vars && i < vars->d.n; i++) {
        ech_jv *k = vars->d.v[i].key;
        if (k->type != JV_STR)
            continue;
        int s = ech_jsym_find(x->syms, k->s.p, k->s.n);
        if (s >= 0 && !scope_set(x, g, s, vars->d.v[i].val))
            return fail_status(x);
    }
    /* the template's own top-level variables live one level below the
     * context, so they can shadow it without changing it */
    ech_jscope *top = scope_new(x, g);
    if (!top)
        return fail_status(x);
    x->sc = top;
    ech_status st = exec_body(x, root);
    return st ? st : x->code;
}
