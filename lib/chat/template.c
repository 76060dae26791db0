/* template.c - the public face of the chat-template interpreter: compile
 * once (lexer + parser into the template's arena), render many times (each
 * render gets its own arena, freed before returning). */
#include "chat/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/eval.h"
#include "chat/lexer.h"
#include "chat/parser.h"
#include "chat/value.h"
#include "core/arena.h"

struct ech_chat_template {
    ech_arena arena;
    ech_jnode *root;
    ech_jsyms syms;
};

enum {
    DEFAULT_MAX_OUTPUT = 16 << 20,
    DEFAULT_MAX_MEMORY = 256 << 20,
    MAX_STEPS = 10 * 1000 * 1000,
    MAX_CALL_DEPTH = 100,
};

ech_status ech_chat_template_compile(const char *src, size_t len, ech_chat_template **out,
                                     ech_error *err)
{
    *out = NULL;
    if (!src && len)
        return ech_error_set(err, ECH_ERR_INVALID, "no template source");
    ech_chat_template *t = calloc(1, sizeof *t);
    if (!t)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    ech_arena_init(&t->arena, 0);
    ech_jtok *toks;
    size_t ntok;
    ech_status st = ech_jlex(&t->arena, src ? src : "", len, &toks, &ntok, err);
    if (st == ECH_OK)
        st = ech_jparse(&t->arena, toks, ntok, &t->syms, &t->root, err);
    if (st != ECH_OK) {
        ech_chat_template_free(t);
        return st;
    }
    *out = t;
    return ECH_OK;
}

void ech_chat_template_free(ech_chat_template *t)
{
    if (!t)
        return;
    ech_arena_free(&t->arena);
    free(t);
}

static bool put_var(ech_jv_heap *h, ech_jv *d, const char *name, ech_jv *v)
{
    ech_jv *k = ech_jv_cstr(h, name);
    return k && v && ech_jv_dict_set(h, d, k, v);
}

ech_status ech_chat_render(const ech_chat_template *t, const ech_chat_input *in, char **out,
                           size_t *out_len, ech_error *err)
{
    *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!t || !in)
        return ech_error_set(err, ECH_ERR_INVALID, "no template or no input");
    if (in->messages && !json_object_is_type(in->messages, json_type_array))
        return ech_error_set(err, ECH_ERR_INVALID, "messages must be a JSON array");
    if (in->tools && !json_object_is_type(in->tools, json_type_array))
        return ech_error_set(err, ECH_ERR_INVALID, "tools must be a JSON array");
    if (in->vars && !json_object_is_type(in->vars, json_type_object))
        return ech_error_set(err, ECH_ERR_INVALID, "extra variables must be a JSON object");

    ech_arena arena;
    ech_arena_init(&arena, 0);
    ech_error local;
    ech_buf buf = {0};
    ech_jx x = {
        .heap = {.arena = &arena, .limit = in->max_memory ? in->max_memory : DEFAULT_MAX_MEMORY},
        .out = &buf,
        .syms = &t->syms,
        .err = err ? err : &local,
        .lim = {.max_output = in->max_output ? in->max_output : DEFAULT_MAX_OUTPUT,
                .max_steps = in->max_steps ? in->max_steps : MAX_STEPS,
                .max_depth = MAX_CALL_DEPTH},
    };
    ech_error_clear(x.err);
    if (in->now) {
        x.now = (time_t)in->now;
        x.utc = true;
    } else {
        const char *sde = getenv("SOURCE_DATE_EPOCH");
        char *end;
        long long v = sde && *sde ? strtoll(sde, &end, 10) : 0;
        if (sde && *sde && !*end) {
            x.now = (time_t)v;
            x.utc = true;
        } else {
            x.now = time(NULL);
        }
    }

    ech_status st = ECH_OK;
    ech_jv *vars = ech_jv_dict(&x.heap, 8);
    if (!vars)
        goto oom;
    /* extra variables first: the fixed ones below win, as in transformers */
    if (in->vars) {
        json_object_object_foreach(in->vars, key, val) {
            ech_jv *v = ech_jv_from_json(&x.heap, val, 0);
            if (!put_var(&x.heap, vars, key, v))
                goto oom;
        }
    }
    if (in->messages && !put_var(&x.heap, vars, "messages", ech_jv_from_json(&x.heap, in->messages, 0)))
        goto oom;
    if (in->tools && !put_var(&x.heap, vars, "tools", ech_jv_from_json(&x.heap, in->tools, 0)))
        goto oom;
    if (!put_var(&x.heap, vars, "add_generation_prompt", JV_BOOLV(in->add_generation_prompt)) ||
        !put_var(&x.heap, vars, "bos_token", ech_jv_cstr(&x.heap, in->bos_token ? in->bos_token : "")) ||
        !put_var(&x.heap, vars, "eos_token", ech_jv_cstr(&x.heap, in->eos_token ? in->eos_token : "")))
        goto oom;

    st = ech_jx_run(&x, t->root, vars);
    if (st == ECH_OK) {
        if (out_len)
            *out_len = buf.len;
        *out = ech_buf_steal(&buf);
    }
    goto done;
oom:
    st = ech_error_set(x.err, x.heap.exhausted && x.heap.limit ? ECH_ERR_RANGE : ECH_ERR_NOMEM,
                       "out of memory reading the conversation");
done:
    ech_buf_free(&buf);
    ech_arena_free(&arena);
    return st;
}

/* ---- GGUF ---------------------------------------------------------------------- */

ech_status ech_chat_gguf_source(const ech_gguf *g, const char *name, ech_str *src, ech_error *err)
{
    char key[256];
    if (name && *name)
        snprintf(key, sizeof key, "tokenizer.chat_template.%s", name);
    else
        snprintf(key, sizeof key, "tokenizer.chat_template");
    ech_status st = ech_gguf_get_str(g, key, src);
    if (st == ECH_ERR_NOT_FOUND)
        return ech_error_set(err, st, "the model has no chat template (%s)", key);
    if (st != ECH_OK)
        return ech_error_set(err, st, "%s is not a string", key);
    return ECH_OK;
}

static ech_str token_text(const ech_gguf *g, const char *id_key)
{
    ech_str none = {NULL, 0};
    uint64_t id;
    const ech_gguf_array *toks;
    if (ech_gguf_get_u64(g, id_key, &id) != ECH_OK ||
        ech_gguf_get_array(g, "tokenizer.ggml.tokens", &toks) != ECH_OK ||
        toks->type != ECH_GGUF_STR || id >= toks->n)
        return none;
    return toks->strs[id];
}

void ech_chat_gguf_special_tokens(const ech_gguf *g, ech_str *bos, ech_str *eos)
{
    if (bos)
        *bos = token_text(g, "tokenizer.ggml.bos_token_id");
    if (eos)
        *eos = token_text(g, "tokenizer.ggml.eos_token_id");
}

ech_status ech_chat_template_from_gguf(const ech_gguf *g, const char *name, ech_chat_template **out,
                                       ech_error *err)
{
    ech_str src;
    *out = NULL;
    ech_status st = ech_chat_gguf_source(g, name, &src, err);
    if (st != ECH_OK)
        return st;
    return ech_chat_template_compile(src.ptr, src.len, out, err);
}

const char *ech_chat_template_chatml(void)
{
    return "{%- for message in messages %}"
           "{{- '<|im_start|>' + message['role'] + '\\n' }}"
           "{%- if message['content'] is string %}{{- message['content'] }}"
           "{%- elif message['content'] is iterable %}"
           "{%- for part in message['content'] %}{%- if part['type'] == 'text' %}{{- part['text'] }}{%- endif %}{%- endfor %}"
           "{%- endif %}"
           "{%- if message['tool_calls'] is defined %}"
           "{%- for call in message['tool_calls'] %}"
           "{{- '\\n<tool_call>\\n' + {'name': call['function']['name'], 'arguments': call['function']['arguments']} | tojson + '\\n</tool_call>' }}"
           "{%- endfor %}{%- endif %}"
           "{{- '<|im_end|>\\n' }}"
           "{%- endfor %}"
           "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
}
