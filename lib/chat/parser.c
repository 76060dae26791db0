/* parser.c - recursive descent over the token array, mirroring jinja2's
 * parser.py rule for rule (so precedence and odd corners agree).
 *
 * Node fields per kind:
 *   CONST val | NAME sym,name | LIST/TUPLE kids | DICT kids (k0,v0,k1,v1...)
 *   ATTR a.name (val = name as string) | ITEM a[b] | SLICE a:b:c (NULL parts)
 *   CALL a(kids, kw; b = *args, c = **kwargs) | FILTER a|name(kids, kw)
 *   TEST a is [not] name(kids, kw), op = negated | NOT/NEG/POS a
 *   BIN a op b | AND/OR a b | COND body if a else orelse (orelse may be NULL)
 *   CMP a (ops[i] kids[i])... | KW name = a
 *   TEXT val | OUT kids | IF a body orelse | FOR a in b if c body orelse
 *   SET a = b | SETBLOCK a, body, c = filter chain over BLOCKVAL
 *   MACRO name(kids: NAME nodes with a = default) body
 *   CALLBLOCK a = call, kids = caller params, body | FILTERBLOCK a = filter chain, body
 *   SCOPE body (generation) | WITH kids (KW assignments) body
 */
#include "chat/parser.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { MAX_DEPTH = 200 };

typedef struct parser {
    ech_arena *a;
    const ech_jtok *t;
    size_t n, pos;
    ech_jsyms *syms;
    ech_error *err;
    int depth;
    bool soft;   /* inside an if or inline-if: unknown filters/tests fail only when run */
    bool failed;
    ech_status code;     /* why it failed */
    ech_jv_heap heap;    /* constants, in the template's arena */
} parser;

typedef struct nvec { ech_jnode **v; size_t n, cap; } nvec;

static bool nvec_push(parser *P, nvec *v, ech_jnode *x)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 4;
        ech_jnode **nv = ech_arena_alloc(P->a, nc * sizeof *nv, 0);
        if (!nv)
            return false;
        if (v->n)
            memcpy(nv, v->v, v->n * sizeof *nv);
        v->v = nv;
        v->cap = nc;
    }
    v->v[v->n++] = x;
    return true;
}

static ech_jnode *fail(parser *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ech_jnode *fail(parser *P, const char *fmt, ...)
{
    if (!P->failed) {
        char msg[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        int line = P->t[P->pos < P->n ? P->pos : P->n - 1].line;
        ech_error_set(P->err, ECH_ERR_FORMAT, "%s  line %d", msg, line);
        P->failed = true;
        P->code = ECH_ERR_FORMAT;
    }
    return NULL;
}

static ech_jnode *oom(parser *P)
{
    if (!P->failed) {
        ech_error_set(P->err, ECH_ERR_NOMEM, "out of memory while parsing the template");
        P->failed = true;
        P->code = ECH_ERR_NOMEM;
    }
    return NULL;
}

static ech_jnode *node(parser *P, ech_jnode_kind k)
{
    ech_jnode *x = ech_arena_calloc(P->a, 1, sizeof *x, 0);
    if (!x)
        return oom(P);
    x->kind = (uint8_t)k;
    x->line = P->t[P->pos].line;
    return x;
}

static const ech_jtok *cur(parser *P) { return &P->t[P->pos]; }
static const ech_jtok *peek(parser *P, size_t k)
{
    return &P->t[P->pos + k < P->n ? P->pos + k : P->n - 1];
}
static void next(parser *P)
{
    if (P->pos + 1 < P->n)
        P->pos++;
}

static bool is_name(const ech_jtok *t, const char *s)
{
    return t->type == TK_NAME && t->n == strlen(s) && memcmp(t->p, s, t->n) == 0;
}
static bool is_op(const ech_jtok *t, int op) { return t->type == TK_OP && t->op == op; }

static const char *tok_desc(const ech_jtok *t)
{
    switch (t->type) {
    case TK_EOF: return "end of template";
    case TK_VAR_END: return "end of print statement";
    case TK_BLOCK_END: return "end of statement block";
    case TK_NAME: return "name";
    case TK_STRING: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    default: return "operator";
    }
}

static bool expect_op(parser *P, int op, const char *what)
{
    if (is_op(cur(P), op)) {
        next(P);
        return true;
    }
    fail(P, "expected token '%s'", what);
    return false;
}

static char *dupname(parser *P, const ech_jtok *t)
{
    char *s = ech_arena_strndup(P->a, t->p, t->n);
    if (!s)
        oom(P);
    return s;
}

int ech_jsym_find(const ech_jsyms *s, const char *name, size_t n)
{
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->names[i]) == n && memcmp(s->names[i], name, n) == 0)
            return (int)i;
    return -1;
}

static int intern(parser *P, const char *name, size_t n)
{
    int id = ech_jsym_find(P->syms, name, n);
    if (id >= 0)
        return id;
    ech_jsyms *s = P->syms;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        const char **nv = ech_arena_alloc(P->a, nc * sizeof *nv, 0);
        if (!nv)
            return -1;
        if (s->n)
            memcpy(nv, s->names, s->n * sizeof *nv);
        s->names = nv;
        s->cap = nc;
    }
    char *c = ech_arena_strndup(P->a, name, n);
    if (!c)
        return -1;
    s->names[s->n] = c;
    return (int)s->n++;
}

static ech_jnode *parse_expr(parser *P, bool condexpr);
static ech_jnode *parse_tuple(parser *P, bool simplified, bool condexpr, const char *extra_end,
                              bool explicit_parens);
static ech_jnode *parse_primary(parser *P);
static ech_jnode *parse_postfix(parser *P, ech_jnode *n);
static ech_jnode *parse_filter(parser *P, ech_jnode *n, bool start_inline);
static ech_jnode *parse_or(parser *P);

static bool enter(parser *P)
{
    if (++P->depth > MAX_DEPTH) {
        fail(P, "template nested too deeply");
        return false;
    }
    return true;
}

/* ---- expressions ---------------------------------------------------------- */

static ech_jnode *mk_name(parser *P, const ech_jtok *t)
{
    ech_jnode *x = node(P, JN_NAME);
    if (!x || !(x->name = dupname(P, t)))
        return NULL;
    x->sym = intern(P, t->p, t->n);
    if (x->sym < 0)
        return oom(P);
    return x;
}

static ech_jnode *mk_const(parser *P, ech_jv *v)
{
    ech_jnode *x = node(P, JN_CONST);
    if (x)
        x->val = v;
    return x;
}

static ech_jv_heap *cheap(parser *P) { return &P->heap; }

/* (args, kwargs, *args, **kwargs) after '(' into x->kids/kw/b/c */
static bool parse_call_args(parser *P, ech_jnode *x)
{
    if (!expect_op(P, OP_LPAREN, "("))
        return false;
    nvec args = {0}, kws = {0};
    bool need_comma = false;
    while (!is_op(cur(P), OP_RPAREN)) {
        if (need_comma) {
            if (!expect_op(P, OP_COMMA, ","))
                return false;
            if (is_op(cur(P), OP_RPAREN))
                break;
        }
        if (is_op(cur(P), OP_MUL)) {
            next(P);
            if (!(x->b = parse_expr(P, true)))
                return false;
        } else if (is_op(cur(P), OP_POW)) {
            next(P);
            if (!(x->c = parse_expr(P, true)))
                return false;
        } else if (cur(P)->type == TK_NAME && is_op(peek(P, 1), OP_ASSIGN)) {
            ech_jnode *k = node(P, JN_KW);
            if (!k || !(k->name = dupname(P, cur(P))))
                return false;
            next(P);
            next(P);
            if (!(k->a = parse_expr(P, true)) || !nvec_push(P, &kws, k))
                return false;
        } else {
            if (kws.n || x->b || x->c) {
                fail(P, "invalid syntax for function call expression");
                return false;
            }
            ech_jnode *e = parse_expr(P, true);
            if (!e || !nvec_push(P, &args, e))
                return false;
        }
        need_comma = true;
    }
    next(P);
    x->kids = args.v;
    x->nkids = args.n;
    x->kw = kws.v;
    x->nkw = kws.n;
    return true;
}

static ech_jnode *parse_subscribed(parser *P)
{
    ech_jnode *parts[3] = {NULL, NULL, NULL};
    if (is_op(cur(P), OP_COLON)) {
        next(P);
    } else {
        ech_jnode *e = parse_expr(P, true);
        if (!e || !is_op(cur(P), OP_COLON))
            return e;
        next(P);
        parts[0] = e;
    }
    ech_jnode *s = node(P, JN_SLICE);
    if (!s)
        return NULL;
    if (!is_op(cur(P), OP_COLON) && !is_op(cur(P), OP_RBRACKET) && !is_op(cur(P), OP_COMMA))
        if (!(parts[1] = parse_expr(P, true)))
            return NULL;
    if (is_op(cur(P), OP_COLON)) {
        next(P);
        if (!is_op(cur(P), OP_RBRACKET) && !is_op(cur(P), OP_COMMA))
            if (!(parts[2] = parse_expr(P, true)))
                return NULL;
    }
    s->a = parts[0];
    s->b = parts[1];
    s->c = parts[2];
    return s;
}

static ech_jnode *parse_postfix(parser *P, ech_jnode *n)
{
    while (n) {
        const ech_jtok *t = cur(P);
        if (is_op(t, OP_DOT)) {
            next(P);
            const ech_jtok *at = cur(P);
            if (at->type == TK_NAME) {
                ech_jnode *x = node(P, JN_ATTR);
                if (!x || !(x->name = dupname(P, at)))
                    return NULL;
                if (!(x->val = ech_jv_str_ref(cheap(P), x->name, at->n)))
                    return oom(P);
                x->a = n;
                next(P);
                n = x;
            } else if (at->type == TK_INT) {
                ech_jnode *x = node(P, JN_ITEM);
                ech_jv *iv = ech_jv_int(cheap(P), at->i);
                if (!x || !iv || !(x->b = mk_const(P, iv)))
                    return NULL;
                x->a = n;
                next(P);
                n = x;
            } else {
                return fail(P, "expected name or number");
            }
        } else if (is_op(t, OP_LBRACKET)) {
            next(P);
            nvec args = {0};
            while (!is_op(cur(P), OP_RBRACKET)) {
                if (args.n && !expect_op(P, OP_COMMA, ","))
                    return NULL;
                ech_jnode *e = parse_subscribed(P);
                if (!e || !nvec_push(P, &args, e))
                    return NULL;
            }
            next(P);
            ech_jnode *x = node(P, JN_ITEM);
            if (!x)
                return NULL;
            x->a = n;
            if (args.n == 1) {
                x->b = args.v[0];
            } else {
                ech_jnode *tu = node(P, JN_TUPLE);
                if (!tu)
                    return NULL;
                tu->kids = args.v;
                tu->nkids = args.n;
                x->b = tu;
            }
            n = x;
        } else if (is_op(t, OP_LPAREN)) {
            ech_jnode *x = node(P, JN_CALL);
            if (!x)
                return NULL;
            x->a = n;
            if (!parse_call_args(P, x))
                return NULL;
            n = x;
        } else {
            break;
        }
    }
    return n;
}

/* a filter or test name, dotted names allowed */
static char *parse_dotted(parser *P)
{
    if (cur(P)->type != TK_NAME) {
        fail(P, "expected token 'name', got '%s'", tok_desc(cur(P)));
        return NULL;
    }
    char buf[256];
    size_t len = 0;
    for (;;) {
        const ech_jtok *t = cur(P);
        if (len + t->n + 2 > sizeof buf) {
            fail(P, "name too long");
            return NULL;
        }
        memcpy(buf + len, t->p, t->n);
        len += t->n;
        next(P);
        if (!is_op(cur(P), OP_DOT) || peek(P, 1)->type != TK_NAME)
            break;
        buf[len++] = '.';
        next(P);
    }
    char *s = ech_arena_strndup(P->a, buf, len);
    if (!s)
        oom(P);
    return s;
}

static ech_jnode *parse_filter(parser *P, ech_jnode *n, bool start_inline)
{
    while (is_op(cur(P), OP_PIPE) || start_inline) {
        if (!start_inline)
            next(P);
        start_inline = false;
        ech_jnode *x = node(P, JN_FILTER);
        if (!x || !(x->name = parse_dotted(P)))
            return NULL;
        x->a = n;
        x->fn.filter = ech_jfilter_lookup(x->name);
        if (!x->fn.filter && !P->soft)
            return fail(P, "No filter named '%s'.", x->name);
        if (is_op(cur(P), OP_LPAREN) && !parse_call_args(P, x))
            return NULL;
        n = x;
    }
    return n;
}

static ech_jnode *parse_test(parser *P, ech_jnode *n)
{
    next(P);   /* 'is' */
    ech_jnode *x = node(P, JN_TEST);
    if (!x)
        return NULL;
    if (is_name(cur(P), "not")) {
        next(P);
        x->op = 1;
    }
    if (!(x->name = parse_dotted(P)))
        return NULL;
    x->a = n;
    x->fn.test = ech_jtest_lookup(x->name);
    if (!x->fn.test && !P->soft)
        return fail(P, "No test named '%s'.", x->name);
    const ech_jtok *t = cur(P);
    if (is_op(t, OP_LPAREN)) {
        if (!parse_call_args(P, x))
            return NULL;
    } else if ((t->type == TK_NAME || t->type == TK_STRING || t->type == TK_INT ||
                t->type == TK_FLOAT || is_op(t, OP_LPAREN) || is_op(t, OP_LBRACKET) ||
                is_op(t, OP_LBRACE)) &&
               !is_name(t, "else") && !is_name(t, "or") && !is_name(t, "and")) {
        if (is_name(t, "is"))
            return fail(P, "You cannot chain multiple tests with is");
        ech_jnode *arg = parse_postfix(P, parse_primary(P));
        if (!arg)
            return NULL;
        x->kids = ech_arena_alloc(P->a, sizeof *x->kids, 0);
        if (!x->kids)
            return oom(P);
        x->kids[0] = arg;
        x->nkids = 1;
    }
    return x;
}

static ech_jnode *parse_filter_expr(parser *P, ech_jnode *n)
{
    while (n) {
        if (is_op(cur(P), OP_PIPE)) {
            n = parse_filter(P, n, false);
        } else if (is_name(cur(P), "is")) {
            n = parse_test(P, n);
        } else if (is_op(cur(P), OP_LPAREN)) {
            ech_jnode *x = node(P, JN_CALL);
            if (!x)
                return NULL;
            x->a = n;
            if (!parse_call_args(P, x))
                return NULL;
            n = x;
        } else {
            break;
        }
    }
    return n;
}

static ech_jnode *parse_list(parser *P)
{
    ech_jnode *x = node(P, JN_LIST);
    if (!x)
        return NULL;
    next(P);
    nvec items = {0};
    while (!is_op(cur(P), OP_RBRACKET)) {
        if (items.n && !expect_op(P, OP_COMMA, ","))
            return NULL;
        if (is_op(cur(P), OP_RBRACKET))
            break;
        ech_jnode *e = parse_expr(P, true);
        if (!e || !nvec_push(P, &items, e))
            return NULL;
    }
    next(P);
    x->kids = items.v;
    x->nkids = items.n;
    return x;
}

static ech_jnode *parse_dict(parser *P)
{
    ech_jnode *x = node(P, JN_DICT);
    if (!x)
        return NULL;
    next(P);
    nvec items = {0};
    while (!is_op(cur(P), OP_RBRACE)) {
        if (items.n && !expect_op(P, OP_COMMA, ","))
            return NULL;
        if (is_op(cur(P), OP_RBRACE))
            break;
        ech_jnode *k = parse_expr(P, true);
        if (!k || !expect_op(P, OP_COLON, ":"))
            return NULL;
        ech_jnode *v = parse_expr(P, true);
        if (!v || !nvec_push(P, &items, k) || !nvec_push(P, &items, v))
            return NULL;
    }
    next(P);
    x->kids = items.v;
    x->nkids = items.n;
    return x;
}

static ech_jnode *parse_primary(parser *P)
{
    if (!enter(P))
        return NULL;
    const ech_jtok *t = cur(P);
    ech_jnode *x = NULL;
    if (t->type == TK_NAME) {
        if (is_name(t, "true") || is_name(t, "True"))
            x = mk_const(P, &ech_jv_true);
        else if (is_name(t, "false") || is_name(t, "False"))
            x = mk_const(P, &ech_jv_false);
        else if (is_name(t, "none") || is_name(t, "None"))
            x = mk_const(P, &ech_jv_none);
        else
            x = mk_name(P, t);
        next(P);
    } else if (t->type == TK_STRING) {
        size_t total = 0, k = P->pos;
        for (; P->t[k].type == TK_STRING; k++)
            total += P->t[k].n;
        char *s = ech_arena_alloc(P->a, total + 1, 1);
        if (!s)
            return oom(P);
        size_t off = 0;
        for (; cur(P)->type == TK_STRING; next(P)) {
            memcpy(s + off, cur(P)->p, cur(P)->n);
            off += cur(P)->n;
        }
        ech_jv *v = ech_jv_str_ref(cheap(P), s, total);
        x = v ? mk_const(P, v) : oom(P);
    } else if (t->type == TK_INT || t->type == TK_FLOAT) {
        ech_jv *v = t->type == TK_INT ? ech_jv_int(cheap(P), t->i) : ech_jv_float(cheap(P), t->f);
        x = v ? mk_const(P, v) : oom(P);
        next(P);
    } else if (is_op(t, OP_LPAREN)) {
        next(P);
        x = parse_tuple(P, false, true, NULL, true);
        if (x && !expect_op(P, OP_RPAREN, ")"))
            x = NULL;
    } else if (is_op(t, OP_LBRACKET)) {
        x = parse_list(P);
    } else if (is_op(t, OP_LBRACE)) {
        x = parse_dict(P);
    } else {
        x = fail(P, "unexpected '%s'", tok_desc(t));
    }
    P->depth--;
    return x;
}

static ech_jnode *parse_unary(parser *P, bool with_filter)
{
    if (!enter(P))
        return NULL;
    ech_jnode *n;
    if (is_op(cur(P), OP_SUB) || is_op(cur(P), OP_ADD)) {
        n = node(P, is_op(cur(P), OP_SUB) ? JN_NEG : JN_POS);
        next(P);
        if (n && !(n->a = parse_unary(P, false)))
            n = NULL;
    } else {
        n = parse_primary(P);
    }
    n = parse_postfix(P, n);
    if (with_filter)
        n = parse_filter_expr(P, n);
    P->depth--;
    return n;
}

static ech_jnode *binop(parser *P, int op, ech_jnode *l, ech_jnode *r)
{
    if (!l || !r)
        return NULL;
    ech_jnode *x = node(P, JN_BIN);
    if (!x)
        return NULL;
    x->op = (uint8_t)op;
    x->a = l;
    x->b = r;
    return x;
}

static ech_jnode *parse_pow(parser *P)
{
    ech_jnode *l = parse_unary(P, true);
    while (l && is_op(cur(P), OP_POW)) {
        next(P);
        l = binop(P, OP_POW, l, parse_unary(P, true));
    }
    return l;
}

static ech_jnode *parse_math2(parser *P)
{
    ech_jnode *l = parse_pow(P);
    while (l && cur(P)->type == TK_OP &&
           (cur(P)->op == OP_MUL || cur(P)->op == OP_DIV || cur(P)->op == OP_FLOORDIV ||
            cur(P)->op == OP_MOD)) {
        int op = cur(P)->op;
        next(P);
        l = binop(P, op, l, parse_pow(P));
    }
    return l;
}

static ech_jnode *parse_concat(parser *P)
{
    ech_jnode *l = parse_math2(P);
    while (l && is_op(cur(P), OP_TILDE)) {
        next(P);
        l = binop(P, OP_TILDE, l, parse_math2(P));
    }
    return l;
}

static ech_jnode *parse_math1(parser *P)
{
    ech_jnode *l = parse_concat(P);
    while (l && (is_op(cur(P), OP_ADD) || is_op(cur(P), OP_SUB))) {
        int op = cur(P)->op;
        next(P);
        l = binop(P, op, l, parse_concat(P));
    }
    return l;
}

static ech_jnode *parse_compare(parser *P)
{
    ech_jnode *e = parse_math1(P);
    if (!e)
        return NULL;
    nvec ops = {0};
    uint8_t codes[64];
    for (;;) {
        const ech_jtok *t = cur(P);
        int code;
        if (t->type == TK_OP && t->op >= OP_EQ && t->op <= OP_GE) {
            code = t->op;
            next(P);
        } else if (is_name(t, "in")) {
            code = CMP_IN;
            next(P);
        } else if (is_name(t, "not") && is_name(peek(P, 1), "in")) {
            code = CMP_NOTIN;
            next(P);
            next(P);
        } else {
            break;
        }
        if (ops.n >= sizeof codes)
            return fail(P, "too many chained comparisons");
        ech_jnode *r = parse_math1(P);
        if (!r || !nvec_push(P, &ops, r))
            return NULL;
        codes[ops.n - 1] = (uint8_t)code;
    }
    if (!ops.n)
        return e;
    ech_jnode *x = node(P, JN_CMP);
    if (!x || !(x->ops = ech_arena_alloc(P->a, ops.n, 1)))
        return oom(P);
    memcpy(x->ops, codes, ops.n);
    x->a = e;
    x->kids = ops.v;
    x->nkids = ops.n;
    return x;
}

static ech_jnode *parse_not(parser *P)
{
    if (is_name(cur(P), "not")) {
        if (!enter(P))
            return NULL;
        ech_jnode *x = node(P, JN_NOT);
        next(P);
        if (x && !(x->a = parse_not(P)))
            x = NULL;
        P->depth--;
        return x;
    }
    return parse_compare(P);
}

static ech_jnode *parse_and(parser *P)
{
    ech_jnode *l = parse_not(P);
    while (l && is_name(cur(P), "and")) {
        next(P);
        ech_jnode *x = node(P, JN_AND);
        if (!x || !(x->b = parse_not(P)))
            return NULL;
        x->a = l;
        l = x;
    }
    return l;
}

static ech_jnode *parse_or(parser *P)
{
    ech_jnode *l = parse_and(P);
    while (l && is_name(cur(P), "or")) {
        next(P);
        ech_jnode *x = node(P, JN_OR);
        if (!x || !(x->b = parse_and(P)))
            return NULL;
        x->a = l;
        l = x;
    }
    return l;
}

static ech_jnode *parse_condexpr(parser *P)
{
    ech_jnode *e1 = parse_or(P);
    while (e1 && is_name(cur(P), "if")) {
        next(P);
        bool soft = P->soft;
        P->soft = true;
        ech_jnode *x = node(P, JN_COND);
        if (!x || !(x->a = parse_or(P)))
            return NULL;
        x->body = e1;
        if (is_name(cur(P), "else")) {
            next(P);
            if (!enter(P) || !(x->orelse = parse_condexpr(P)))
                return NULL;
            P->depth--;
        }
        P->soft = soft;
        e1 = x;
    }
    return e1;
}

static ech_jnode *parse_expr(parser *P, bool condexpr)
{
    if (!enter(P))
        return NULL;
    ech_jnode *x = condexpr ? parse_condexpr(P) : parse_or(P);
    P->depth--;
    return x;
}

static bool tuple_end(parser *P, const char *extra_end)
{
    const ech_jtok *t = cur(P);
    return t->type == TK_VAR_END || t->type == TK_BLOCK_END || t->type == TK_EOF ||
           is_op(t, OP_RPAREN) || (extra_end && is_name(t, extra_end));
}

static ech_jnode *parse_tuple(parser *P, bool simplified, bool condexpr, const char *extra_end,
                              bool explicit_parens)
{
    nvec args = {0};
    bool is_tuple = false;
    int line = cur(P)->line;
    for (;;) {
        if (args.n && !expect_op(P, OP_COMMA, ","))
            return NULL;
        if (tuple_end(P, extra_end))
            break;
        ech_jnode *e = simplified ? parse_primary(P) : parse_expr(P, condexpr);
        if (!e || !nvec_push(P, &args, e))
            return NULL;
        if (is_op(cur(P), OP_COMMA))
            is_tuple = true;
        else
            break;
    }
    if (!is_tuple) {
        if (args.n)
            return args.v[0];
        if (!explicit_parens)
            return fail(P, "Expected an expression, got '%s'", tok_desc(cur(P)));
    }
    ech_jnode *x = node(P, JN_TUPLE);
    if (!x)
        return NULL;
    x->line = line;
    x->kids = args.v;
    x->nkids = args.n;
    return x;
}

/* ---- statements ----------------------------------------------------------- */

static ech_jnode *parse_body(parser *P, const char *const *ends, size_t nends);

static bool expect_block_end(parser *P)
{
    if (cur(P)->type != TK_BLOCK_END) {
        fail(P, "expected token 'end of statement block', got '%s'", tok_desc(cur(P)));
        return false;
    }
    next(P);
    return true;
}

static bool at_end_tag(parser *P, const char *name)
{
    return is_name(cur(P), name);
}

/* after parse_body stopped at one of `ends`: consume the tag name and the %} */
static bool drop_end(parser *P)
{
    next(P);
    return expect_block_end(P);
}

static ech_jnode *assign_target(parser *P, bool with_ns, const char *extra_end)
{
    if (with_ns && cur(P)->type == TK_NAME && is_op(peek(P, 1), OP_DOT)) {
        ech_jnode *ns = mk_name(P, cur(P));
        next(P);
        next(P);
        if (!ns || cur(P)->type != TK_NAME)
            return ns ? fail(P, "expected token 'name'") : NULL;
        ech_jnode *x = node(P, JN_ATTR);
        if (!x || !(x->name = dupname(P, cur(P))))
            return NULL;
        if (!(x->val = ech_jv_str_ref(cheap(P), x->name, cur(P)->n)))
            return oom(P);
        x->a = ns;
        next(P);
        return x;
    }
    ech_jnode *t = parse_tuple(P, true, false, extra_end, false);
    if (!t)
        return NULL;
    if (t->kind == JN_TUPLE) {
        for (size_t i = 0; i < t->nkids; i++)
            if (t->kids[i]->kind != JN_NAME)
                return fail(P, "can't assign to '%s'", "tuple");
    } else if (t->kind != JN_NAME) {
        return fail(P, "can't assign to '%s'", t->kind == JN_CONST ? "const" : "expression");
    }
    return t;
}

static ech_jnode *parse_if(parser *P)
{
    static const char *const ends[] = {"elif", "else", "endif"};
    bool soft = P->soft;
    P->soft = true;
    ech_jnode *top = NULL, **slot = &top;
    for (;;) {
        ech_jnode *x = node(P, JN_IF);
        if (!x)
            return NULL;
        next(P);   /* if / elif */
        if (!(x->a = parse_tuple(P, false, false, NULL, false)) || !expect_block_end(P))
            return NULL;
        if (!(x->body = parse_body(P, ends, 3)))
            return NULL;
        *slot = x;
        if (at_end_tag(P, "elif")) {
            slot = &x->orelse;
            continue;
        }
        if (at_end_tag(P, "else")) {
            if (!drop_end(P))
                return NULL;
            if (!(x->orelse = parse_body(P, ends + 2, 1)))
                return NULL;
        }
        if (!drop_end(P))
            return NULL;
        break;
    }
    P->soft = soft;
    return top;
}

static ech_jnode *parse_for(parser *P)
{
    static const char *const ends[] = {"endfor", "else"};
    ech_jnode *x = node(P, JN_FOR);
    if (!x)
        return NULL;
    next(P);
    if (!(x->a = assign_target(P, false, "in")))
        return NULL;
    if (!is_name(cur(P), "in"))
        return fail(P, "expected token 'in', got '%s'", tok_desc(cur(P)));
    next(P);
    if (!(x->b = parse_tuple(P, false, false, "recursive", false)))
        return NULL;
    if (is_name(cur(P), "if")) {
        next(P);
        if (!(x->c = parse_expr(P, true)))
            return NULL;
    }
    if (is_name(cur(P), "recursive"))
        return fail(P, "recursive for loops are not supported");
    if (!expect_block_end(P))
        return NULL;
    bool soft = P->soft;
    P->soft = false;
    if (!(x->body = parse_body(P, ends, 2)))
        return NULL;
    if (at_end_tag(P, "else")) {
        if (!drop_end(P) || !(x->orelse = parse_body(P, ends, 1)))
            return NULL;
    }
    P->soft = soft;
    return drop_end(P) ? x : NULL;
}

static ech_jnode *parse_set(parser *P)
{
    static const char *const ends[] = {"endset"};
    int line = cur(P)->line;
    next(P);
    ech_jnode *target = assign_target(P, true, NULL);
    if (!target)
        return NULL;
    if (is_op(cur(P), OP_ASSIGN)) {
        next(P);
        ech_jnode *x = node(P, JN_SET);
        if (!x || !(x->b = parse_tuple(P, false, true, NULL, false)) || !expect_block_end(P))
            return NULL;
        x->a = target;
        x->line = line;
        return x;
    }
    ech_jnode *x = node(P, JN_SETBLOCK);
    if (!x)
        return NULL;
    x->a = target;
    x->line = line;
    if (is_op(cur(P), OP_PIPE)) {
        ech_jnode *bv = node(P, JN_BLOCKVAL);
        if (!bv || !(x->c = parse_filter(P, bv, false)))
            return NULL;
    }
    if (!expect_block_end(P))
        return NULL;
    bool soft = P->soft;
    P->soft = false;
    if (!(x->body = parse_body(P, ends, 1)) || !drop_end(P))
        return NULL;
    P->soft = soft;
    return x;
}

static bool find_name(const ech_jnode *n, int sym, int depth)
{
    if (!n || depth > MAX_DEPTH * 4)
        return false;
    if (n->kind == JN_NAME && n->sym == sym)
        return true;
    if (find_name(n->a, sym, depth + 1) || find_name(n->b, sym, depth + 1) ||
        find_name(n->c, sym, depth + 1) || find_name(n->body, sym, depth + 1) ||
        find_name(n->orelse, sym, depth + 1))
        return true;
    for (size_t i = 0; i < n->nkids; i++)
        if (find_name(n->kids[i], sym, depth + 1))
            return true;
    for (size_t i = 0; i < n->nkw; i++)
        if (find_name(n->kw[i], sym, depth + 1))
            return true;
    return false;
}

/* (a, b=default, ...) for macro and call-block signatures */
static bool parse_signature(parser *P, ech_jnode *x)
{
    if (!expect_op(P, OP_LPAREN, "("))
        return false;
    nvec params = {0};
    bool have_default = false;
    while (!is_op(cur(P), OP_RPAREN)) {
        if (params.n && !expect_op(P, OP_COMMA, ","))
            return false;
        if (cur(P)->type != TK_NAME) {
            fail(P, "expected token 'name', got '%s'", tok_desc(cur(P)));
            return false;
        }
        ech_jnode *pn = mk_name(P, cur(P));
        if (!pn)
            return false;
        next(P);
        if (is_op(cur(P), OP_ASSIGN)) {
            next(P);
            if (!(pn->a = parse_expr(P, true)))
                return false;
            have_default = true;
        } else if (have_default) {
            fail(P, "non-default argument follows default argument");
            return false;
        }
        if (!nvec_push(P, &params, pn))
            return false;
    }
    next(P);
    x->kids = params.v;
    x->nkids = params.n;
    return true;
}

static void macro_flags(parser *P, ech_jnode *x)
{
    int s;
    if ((s = ech_jsym_find(P->syms, "varargs", 7)) >= 0)
        x->uses_varargs = find_name(x->body, s, 0);
    if ((s = ech_jsym_find(P->syms, "kwargs", 6)) >= 0)
        x->uses_kwargs = find_name(x->body, s, 0);
    if ((s = ech_jsym_find(P->syms, "caller", 6)) >= 0)
        x->uses_caller = find_name(x->body, s, 0);
}

static ech_jnode *parse_macro(parser *P)
{
    static const char *const ends[] = {"endmacro"};
    ech_jnode *x = node(P, JN_MACRO);
    if (!x)
        return NULL;
    next(P);
    if (cur(P)->type != TK_NAME)
        return fail(P, "expected token 'name', got '%s'", tok_desc(cur(P)));
    if (!(x->name = dupname(P, cur(P))) || (x->sym = intern(P, cur(P)->p, cur(P)->n)) < 0)
        return oom(P);
    next(P);
    if (!parse_signature(P, x) || !expect_block_end(P))
        return NULL;
    bool soft = P->soft;
    P->soft = false;
    if (!(x->body = parse_body(P, ends, 1)) || !drop_end(P))
        return NULL;
    P->soft = soft;
    macro_flags(P, x);
    return x;
}

static ech_jnode *parse_call_block(parser *P)
{
    static const char *const ends[] = {"endcall"};
    ech_jnode *x = node(P, JN_CALLBLOCK);
    if (!x)
        return NULL;
    next(P);
    if (is_op(cur(P), OP_LPAREN) && !parse_signature(P, x))
        return NULL;
    if (!(x->a = parse_expr(P, true)))
        return NULL;
    if (x->a->kind != JN_CALL)
        return fail(P, "expected call");
    if (!expect_block_end(P))
        return NULL;
    bool soft = P->soft;
    P->soft = false;
    if (!(x->body = parse_body(P, ends, 1)) || !drop_end(P))
        return NULL;
    P->soft = soft;
    x->name = "caller";
    macro_flags(P, x);
    return x;
}

static ech_jnode *parse_filter_block(parser *P)
{
    static const char *const ends[] = {"endfilter"};
    ech_jnode *x = node(P, JN_FILTERBLOCK);
    if (!x)
        return NULL;
    next(P);
    ech_jnode *bv = node(P, JN_BLOCKVAL);
    if (!bv || !(x->a = parse_filter(P, bv, true)) || !expect_block_end(P))
        return NULL;
    bool soft = P->soft;
    P->soft = false;
    if (!(x->body = parse_body(P, ends, 1)) || !drop_end(P))
        return NULL;
    P->soft = soft;
    return x;
}

static ech_jnode *parse_with(parser *P)
{
    static const char *const ends[] = {"endwith"};
    ech_jnode *x = node(P, JN_WITH);
    if (!x)
        return NULL;
    next(P);
    nvec assigns = {0};
    while (cur(P)->type != TK_BLOCK_END) {
        if (assigns.n && !expect_op(P, OP_COMMA, ","))
            return NULL;
        if (cur(P)->type != TK_NAME)
            return fail(P, "expected token 'name', got '%s'", tok_desc(cur(P)));
        ech_jnode *k = node(P, JN_KW);
        if (!k || !(k->name = dupname(P, cur(P))) || (k->sym = intern(P, cur(P)->p, cur(P)->n)) < 0)
            return oom(P);
        next(P);
        if (!expect_op(P, OP_ASSIGN, "=") || !(k->a = parse_expr(P, true)) ||
            !nvec_push(P, &assigns, k))
            return NULL;
    }
    next(P);
    x->kw = assigns.v;
    x->nkw = assigns.n;
    bool soft = P->soft;
    P->soft = false;
    if (!(x->body = parse_body(P, ends, 1)) || !drop_end(P))
        return NULL;
    P->soft = soft;
    return x;
}

static ech_jnode *parse_generation(parser *P)
{
    static const char *const ends[] = {"endgeneration"};
    ech_jnode *x = node(P, JN_SCOPE);
    if (!x)
        return NULL;
    next(P);
    if (!expect_block_end(P))
        return NULL;
    bool soft = P->soft;
    P->soft = false;
    if (!(x->body = parse_body(P, ends, 1)) || !drop_end(P))
        return NULL;
    P->soft = soft;
    return x;
}

static ech_jnode *parse_statement(parser *P)
{
    const ech_jtok *t = cur(P);
    if (t->type != TK_NAME)
        return fail(P, "tag name expected");
    if (is_name(t, "if"))
        return parse_if(P);
    if (is_name(t, "for"))
        return parse_for(P);
    if (is_name(t, "set"))
        return parse_set(P);
    if (is_name(t, "macro"))
        return parse_macro(P);
    if (is_name(t, "call"))
        return parse_call_block(P);
    if (is_name(t, "filter"))
        return parse_filter_block(P);
    if (is_name(t, "with"))
        return parse_with(P);
    if (is_name(t, "generation"))
        return parse_generation(P);
    if (is_name(t, "break") || is_name(t, "continue")) {
        ech_jnode *x = node(P, is_name(t, "break") ? JN_BREAK : JN_CONTINUE);
        next(P);
        return x && expect_block_end(P) ? x : NULL;
    }
    if (is_name(t, "include") || is_name(t, "import") || is_name(t, "from") ||
        is_name(t, "extends") || is_name(t, "block"))
        return fail(P, "'%s' is not available: chat templates cannot load other templates",
                    dupname(P, t));
    char *name = dupname(P, t);
    return fail(P, "Encountered unknown tag '%s'.", name ? name : "?");
}

/* Statements until a {% NAME %} with NAME in `ends` (left current: the name),
 * or to the end of the template when nends is 0. */
static ech_jnode *parse_body(parser *P, const char *const *ends, size_t nends)
{
    if (!enter(P))
        return NULL;
    ech_jnode *body = node(P, JN_BODY);
    if (!body)
        return NULL;
    nvec st = {0};
    for (;;) {
        const ech_jtok *t = cur(P);
        ech_jnode *x = NULL;
        if (t->type == TK_EOF) {
            if (nends)
                return fail(P, "Unexpected end of template. Jinja was looking for the "
                               "following tags: '%s'.", ends[0]);
            break;
        }
        if (t->type == TK_TEXT) {
            if (!(x = node(P, JN_TEXT)) || !(x->val = ech_jv_str_ref(cheap(P), t->p, t->n)))
                return oom(P);
            next(P);
        } else if (t->type == TK_VAR_BEGIN) {
            next(P);
            if (!(x = node(P, JN_OUT)) || !(x->a = parse_tuple(P, false, true, NULL, false)))
                return NULL;
            if (cur(P)->type != TK_VAR_END)
                return fail(P, "expected token 'end of print statement', got '%s'",
                            tok_desc(cur(P)));
            next(P);
        } else if (t->type == TK_BLOCK_BEGIN) {
            next(P);
            for (size_t i = 0; i < nends; i++)
                if (is_name(cur(P), ends[i]))
                    goto done;
            if (!(x = parse_statement(P)))
                return NULL;
        } else {
            return fail(P, "unexpected '%s'", tok_desc(t));
        }
        if (!nvec_push(P, &st, x))
            return oom(P);
    }
done:
    body->kids = st.v;
    body->nkids = st.n;
    P->depth--;
    return body;
}

ech_status ech_jparse(ech_arena *a, const ech_jtok *toks, size_t ntok, ech_jsyms *syms,
                      ech_jnode **out, ech_error *err)
{
    parser P = {.a = a, .t = toks, .n = ntok, .syms = syms, .err = err, .heap = {.arena = a}};
    ech_jnode *root = parse_body(&P, NULL, 0);
    if (!root) {
        if (!P.failed)
            oom(&P);
        return P.code;
    }
    *out = root;
    return ECH_OK;
}
