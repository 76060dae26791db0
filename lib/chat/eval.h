/* eval.h - the tree-walking evaluator and what filters.c needs from it
 * (internal).
 *
 * One render is one ech_jx: the value heap (an arena with a byte budget),
 * the output buffer, the scope chain and the limits that keep a hostile
 * template bounded (call depth, loop iterations, output size, memory).
 * Errors are Python exceptions in spirit: the first one records jinja2's
 * message and every caller unwinds by returning NULL (or -1).
 */
#ifndef ECH_CHAT_EVAL_H
#define ECH_CHAT_EVAL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "chat/parser.h"
#include "chat/value.h"
#include "core/buf.h"
#include "core/status.h"

typedef struct ech_jargs {
    ech_jv **pos;
    size_t npos;
    const char **kwname;
    ech_jv **kwval;
    size_t nkw;
} ech_jargs;

typedef struct ech_jscope ech_jscope;

typedef struct ech_jlimits {
    size_t max_output;      /* bytes of rendered text (each buffer) */
    size_t max_memory;      /* bytes of values */
    uint64_t max_steps;     /* loop iterations + macro calls */
    int max_depth;          /* nested macro calls */
} ech_jlimits;

typedef struct ech_jx {
    ech_jv_heap heap;
    ech_buf *out;
    const ech_jsyms *syms;
    ech_jscope *sc;
    ech_error *err;
    ech_status code;        /* ECH_OK until something fails */
    ech_jlimits lim;
    uint64_t steps;
    int depth;
    int ctl;                /* pending break/continue */
    ech_jv *blockval;       /* the body text a filter block or set block filters */
    time_t now;             /* strftime_now's clock */
    bool utc;               /* format it as UTC (SOURCE_DATE_EPOCH) rather than local time */
} ech_jx;

/* Render `root` with the variables of `vars` (a dict; borrowed) into x->out. */
ech_status ech_jx_run(ech_jx *x, const ech_jnode *root, ech_jv *vars);

/* Record a failure (the first one wins) and return NULL. */
ech_jv *ech_jx_fail(ech_jx *x, ech_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fail with what using `u` (an undefined value) raises in jinja2. */
ech_jv *ech_jx_undef_error(ech_jx *x, const ech_jv *u);
/* Fail for an allocation the heap refused. */
ech_jv *ech_jx_oom(ech_jx *x);
static inline bool ech_jx_failed(const ech_jx *x) { return x->code != ECH_OK; }

/* Python's getattr as jinja2's sandbox does it (attribute, then item). */
ech_jv *ech_jx_getattr(ech_jx *x, ech_jv *obj, ech_jv *name);
/* obj[key] as jinja2 does it (item, then attribute). */
ech_jv *ech_jx_getitem(ech_jx *x, ech_jv *obj, ech_jv *key);
/* Call any callable. */
ech_jv *ech_jx_call(ech_jx *x, ech_jv *fn, ech_jargs *args);
/* The items of an iterable (list, tuple, dict keys, string characters;
 * undefined is empty); NULL after failing for a non-iterable. */
ech_jv **ech_jx_iter(ech_jx *x, ech_jv *v, size_t *n);
/* str(v) for values that can be printed (undefined prints as ""). */
ech_jv *ech_jx_str(ech_jx *x, ech_jv *v);
/* One step of the loop/call budget; false once it is spent. */
bool ech_jx_step(ech_jx *x);

/* Argument helpers for builtins: the i-th positional or the keyword `name`,
 * else NULL.  ech_jargs_check fails for positionals beyond `maxpos` or
 * keywords not in the NULL-terminated `names`. */
ech_jv *ech_jarg(ech_jargs *a, size_t i, const char *name);
bool ech_jargs_check(ech_jx *x, ech_jargs *a, const char *fname, size_t maxpos,
                     const char *const *names);

/* markupsafe.escape(str(v)) as a Markup string. */
ech_jv *ech_jx_escape(ech_jx *x, ech_jv *v);

/* Evaluate one expression node. */
ech_jv *ech_jx_eval(ech_jx *x, const ech_jnode *n);
/* Shared with filters.c: case mapping (0 lower, 1 upper, 2 str.title,
 * 3 capitalize, 4 swapcase, 5 the title filter), str.replace, dict.items(). */
ech_jv *ech_jx_case(ech_jx *x, ech_jv *s, int mode);
ech_jv *ech_jx_replace(ech_jx *x, ech_jv *s, ech_jv *old, ech_jv *new_, int64_t count);
ech_jv *ech_jx_items(ech_jx *x, ech_jv *d);
/* Python's printf-style `fmt % args` (filters.c). */
ech_jv *ech_jx_printf(ech_jx *x, ech_jv *fmt, ech_jv *args);

#endif
