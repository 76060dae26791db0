/* parser.h - tokens to a syntax tree (internal).
 *
 * A recursive-descent parser for the Jinja grammar jinja2 accepts, with the
 * same operator precedence.  Names are interned into small integers
 * (symbols), and filters and tests are looked up once here, so evaluation
 * compares integers and calls function pointers.  All nodes live in the
 * template's arena.
 */
#ifndef ECH_CHAT_PARSER_H
#define ECH_CHAT_PARSER_H

#include <stdbool.h>
#include <stddef.h>

#include "chat/lexer.h"
#include "chat/value.h"

typedef enum {
    /* expressions */
    JN_CONST, JN_NAME, JN_LIST, JN_TUPLE, JN_DICT, JN_ATTR, JN_ITEM, JN_SLICE, JN_CALL,
    JN_FILTER, JN_TEST, JN_NOT, JN_NEG, JN_POS, JN_BIN, JN_AND, JN_OR, JN_COND, JN_CMP,
    JN_KW, JN_BLOCKVAL,
    /* statements */
    JN_BODY, JN_TEXT, JN_OUT, JN_IF, JN_FOR, JN_SET, JN_SETBLOCK, JN_MACRO, JN_CALLBLOCK,
    JN_FILTERBLOCK, JN_BREAK, JN_CONTINUE, JN_SCOPE, JN_WITH
} ech_jnode_kind;

struct ech_jargs;
struct ech_jx;
typedef ech_jv *(*ech_jfilter_fn)(struct ech_jx *x, ech_jv *v, struct ech_jargs *args);
/* 1 true, 0 false, -1 error (set on x) */
typedef int (*ech_jtest_fn)(struct ech_jx *x, ech_jv *v, struct ech_jargs *args);

typedef struct ech_jnode ech_jnode;
struct ech_jnode {
    uint8_t kind, op;       /* op: an ech_jop (JN_BIN), negation (JN_TEST), flags */
    int line;
    ech_jnode *a, *b, *c;   /* operands (meaning per kind, see parser.c) */
    ech_jnode *body, *orelse;
    ech_jnode **kids;       /* list items, positional args, statements, params, targets */
    size_t nkids;
    ech_jnode **kw;         /* JN_KW nodes (keyword args, dict pairs use kids/kw in pairs) */
    size_t nkw;
    uint8_t *ops;           /* JN_CMP: one ech_jop (or OP_IN/NOTIN codes) per operand */
    int sym;                /* JN_NAME, JN_MACRO, JN_KW: interned name */
    const char *name;       /* NUL-terminated: attribute, filter, test, macro, keyword name */
    ech_jv *val;            /* JN_CONST, JN_TEXT, JN_ATTR (the name as a string value) */
    union { ech_jfilter_fn filter; ech_jtest_fn test; } fn;  /* NULL: unknown, fails when run */
    bool uses_varargs, uses_kwargs, uses_caller;            /* JN_MACRO */
};

/* Comparison codes beyond ech_jop for JN_CMP. */
enum { CMP_IN = 100, CMP_NOTIN = 101 };

typedef struct ech_jsyms {
    const char **names;   /* NUL-terminated, in the arena */
    size_t n, cap;
} ech_jsyms;

/* Parse tokens into a JN_BODY; nodes, names and constants live in `a`.
 * Filters and tests are resolved through these lookups (filters.c). */
ech_status ech_jparse(ech_arena *a, const ech_jtok *toks, size_t ntok, ech_jsyms *syms,
                      ech_jnode **out, ech_error *err);

/* Symbol id of `name`, or -1 if the template never mentions it. */
int ech_jsym_find(const ech_jsyms *s, const char *name, size_t n);

ech_jfilter_fn ech_jfilter_lookup(const char *name);
ech_jtest_fn ech_jtest_lookup(const char *name);

#endif
