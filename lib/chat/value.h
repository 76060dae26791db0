/* value.h - the dynamic values a chat template computes with (internal).
 *
 * Jinja is Python underneath, so these model the Python objects templates
 * see: None, bool, int, float, str (with markupsafe's Markup as a flag),
 * list and tuple, dict (insertion-ordered), jinja2's Undefined, callables
 * (macros, globals, bound methods) and the for-loop's `loop` object.
 *
 * Ownership: values are never freed one by one.  Every value made while
 * rendering lives in the render's arena (ech_jv_heap) and dies with it;
 * constants of the compiled template live in the template's arena.  Values
 * are immutable once built, except a namespace()'s dict, which `set ns.x`
 * changes in place (the sandbox refuses list.append and friends, as
 * jinja2's ImmutableSandboxedEnvironment does).  So there is no refcount
 * and no cycle can leak.
 */
#ifndef ECH_CHAT_VALUE_H
#define ECH_CHAT_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/arena.h"
#include "core/buf.h"

typedef enum ech_jv_type {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_FUNC, JV_LOOP
} ech_jv_type;

enum {
    JV_F_MARKUP = 1,   /* str: a markupsafe.Markup ("safe"), escapes what is added to it */
    JV_F_TUPLE = 2,    /* list: a tuple (prints with parentheses) */
    JV_F_GEN = 4,      /* list: a generator (map/select results: no len(), not JSON) */
    JV_F_NS = 8,       /* dict: a namespace() object (attributes settable) */
    JV_F_ITEMS = 16,   /* list: the result of dict.items() */
};

typedef struct ech_jv ech_jv;
typedef struct ech_jv_pair { ech_jv *key, *val; } ech_jv_pair;

/* Callables. */
typedef enum { JF_BUILTIN, JF_MACRO, JF_METHOD } ech_jf_kind;
struct ech_jx;                 /* the evaluator's render state (eval.c) */
struct ech_jargs;
typedef ech_jv *(*ech_jv_builtin)(struct ech_jx *x, ech_jv *self, const char *name,
                                  struct ech_jargs *args);

struct ech_jv {
    uint8_t type, flags;
    union {
        bool b;
        int64_t i;
        double f;
        struct { const char *p; size_t n; } s;            /* UTF-8, not NUL-terminated */
        struct { ech_jv **v; size_t n, cap; } l;
        struct { ech_jv_pair *v; size_t n, cap; } d;
        struct {                                          /* JV_FUNC */
            uint8_t kind;
            const char *name;       /* for messages */
            ech_jv_builtin fn;      /* JF_BUILTIN and JF_METHOD */
            ech_jv *self;           /* JF_METHOD: the object */
            const void *node;       /* JF_MACRO: the macro (parser.h ech_jnode) */
            void *scope;            /* JF_MACRO: where it was defined */
            void *caller;           /* JF_MACRO: the caller() of a call block, or NULL */
        } fn;
        struct { const ech_jv *obj; const ech_jv *name; const char *hint; } u; /* JV_UNDEF */
        struct ech_jloop *loop;   /* JV_LOOP */
    };
};

/* The for-loop's state behind `loop`. */
typedef struct ech_jloop {
    ech_jv **items;
    size_t n, i;
    int depth;
    ech_jv *changed_last;   /* loop.changed() memory */
} ech_jloop;

/* Shared constants (never written). */
extern ech_jv ech_jv_undefined, ech_jv_none, ech_jv_true, ech_jv_false, ech_jv_empty;
#define JV_UNDEFINED (&ech_jv_undefined)
#define JV_NONE_V (&ech_jv_none)
#define JV_BOOLV(c) ((c) ? &ech_jv_true : &ech_jv_false)

/* Allocation: values come from an arena whose growth is capped, so that a
 * hostile template runs out of budget instead of out of memory. */
typedef struct ech_jv_heap {
    ech_arena *arena;
    size_t limit;          /* bytes; 0 = unlimited */
    bool exhausted;        /* an allocation was refused */
} ech_jv_heap;

void *ech_jv_alloc(ech_jv_heap *h, size_t n);
ech_jv *ech_jv_new(ech_jv_heap *h, ech_jv_type t);
ech_jv *ech_jv_int(ech_jv_heap *h, int64_t i);
ech_jv *ech_jv_float(ech_jv_heap *h, double f);
ech_jv *ech_jv_str(ech_jv_heap *h, const char *p, size_t n);        /* copies */
ech_jv *ech_jv_str_ref(ech_jv_heap *h, const char *p, size_t n);    /* borrows p */
ech_jv *ech_jv_cstr(ech_jv_heap *h, const char *s);                 /* borrows s */
ech_jv *ech_jv_list(ech_jv_heap *h, size_t cap);
ech_jv *ech_jv_dict(ech_jv_heap *h, size_t cap);
ech_jv *ech_jv_undef(ech_jv_heap *h, const ech_jv *obj, const ech_jv *name, const char *hint);
bool ech_jv_list_push(ech_jv_heap *h, ech_jv *l, ech_jv *v);
/* Insert or replace (a replaced key keeps its position, as in Python). */
bool ech_jv_dict_set(ech_jv_heap *h, ech_jv *d, ech_jv *k, ech_jv *v);
ech_jv *ech_jv_dict_get(const ech_jv *d, const ech_jv *k);           /* NULL if absent */
ech_jv *ech_jv_dict_gets(const ech_jv *d, const char *k, size_t n);  /* string key */

/* Python semantics. */
bool ech_jv_truthy(const ech_jv *v);
bool ech_jv_eq(const ech_jv *a, const ech_jv *b);
/* a < b etc.: returns -1/0/1 in *cmp; false if the types do not order. */
bool ech_jv_cmp(const ech_jv *a, const ech_jv *b, int *cmp);
/* type(v).__name__ as Python says it ("str", "NoneType", "dict", ...). */
const char *ech_jv_pytype(const ech_jv *v);
/* jinja2's object_type_repr: "None", "dict object", "jinja2.utils.Namespace object". */
const char *ech_jv_objrepr(const ech_jv *v);
bool ech_jv_is_str(const ech_jv *v);
static inline bool ech_jv_is_num(const ech_jv *v)
{
    return v->type == JV_INT || v->type == JV_FLOAT || v->type == JV_BOOL;
}

/* str(v) and repr(v) appended to b; false on OOM. */
bool ech_jv_str_to(ech_buf *b, const ech_jv *v);
bool ech_jv_repr_to(ech_buf *b, const ech_jv *v);
/* str(v) as a value (v itself when it is already a string). */
ech_jv *ech_jv_tostr(ech_jv_heap *h, ech_jv *v);
/* Python float repr (shortest round trip: 1.0, 1e-05, 1e+16, inf, nan). */
void ech_jv_format_float(double f, char *out, size_t n);

/* json.dumps(v, ...); a message naming the unserialisable type is put in
 * *why (static) on failure. */
typedef struct ech_jv_json_opts {
    bool ensure_ascii, sort_keys;
    const char *indent;        /* NULL: no newlines; else the per-level indent text */
    const char *item_sep, *key_sep;
} ech_jv_json_opts;
bool ech_jv_to_json(ech_buf *b, const ech_jv *v, const ech_jv_json_opts *o, int depth,
                    const char **why);

/* json-c -> value (copies strings into the heap); NULL on OOM or depth. */
ech_jv *ech_jv_from_json(ech_jv_heap *h, json_object *j, int depth);

/* Unicode helpers on UTF-8 strings (invalid bytes count as one char each). */
size_t ech_jv_utf8_len(const char *p, size_t n);
/* Byte offset of the code point with index `cp` (n when past the end). */
size_t ech_jv_utf8_offset(const char *p, size_t n, size_t cp);
/* Python's str.isspace for one code point. */
bool ech_jv_isspace(uint32_t cp);
/* Length of the UTF-8 sequence at p (>= 1), decoding its code point. */
size_t ech_jv_utf8_next(const char *p, size_t n, uint32_t *cp);

#endif
