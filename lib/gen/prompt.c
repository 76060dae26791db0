/* prompt.c - chat template rendering and injection-safe tokenization. */
#include "config.h"
#include "gen/prompt.h"

#include <stdlib.h>
#include <string.h>

#include "chat/template.h"

ech_status ech_prompt_render(const ech_gguf *g, const ech_prompt_opts *o, char **out, size_t *len,
                             bool *used_chatml, ech_error *err)
{
    ech_chat_template *tpl = NULL;
    ech_status st;
    if (used_chatml)
        *used_chatml = false;
    if (o->template_src) {
        st = ech_chat_template_compile(o->template_src, o->template_len, &tpl, err);
    } else {
        st = ech_chat_template_from_gguf(g, o->template_name, &tpl, err);
        if (st == ECH_ERR_NOT_FOUND && !o->template_name) {
            const char *chatml = ech_chat_template_chatml();
            st = ech_chat_template_compile(chatml, strlen(chatml), &tpl, err);
            if (used_chatml)
                *used_chatml = true;
        }
    }
    if (st != ECH_OK)
        return st;
    ech_str b = {0}, e = {0};
    ech_chat_gguf_special_tokens(g, &b, &e);
    char *bos = b.ptr ? strndup(b.ptr, b.len) : NULL, *eos = e.ptr ? strndup(e.ptr, e.len) : NULL;
    ech_chat_input in = {
        .messages = o->messages, .tools = o->tools, .vars = o->vars,
        .add_generation_prompt = o->add_generation_prompt, .bos_token = bos, .eos_token = eos,
    };
    st = ech_chat_render(tpl, &in, out, len, err);
    free(bos);
    free(eos);
    ech_chat_template_free(tpl);
    return st;
}

static int add_span(ech_span **v, size_t *n, size_t *cap, size_t off, size_t len)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        ech_span *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = (ech_span){off, len};
    return 0;
}

/* Find `s` in text at or after *cursor; on success mark it and move on. */
static int mark(const char *text, size_t len, size_t *cursor, const char *s, size_t n,
                ech_span **v, size_t *nv, size_t *cap)
{
    if (n == 0 || *cursor >= len)
        return 0;
    const char *m = memmem(text + *cursor, len - *cursor, s, n);
    if (!m)
        return 0;
    size_t at = (size_t)(m - text);
    if (add_span(v, nv, cap, at, n))
        return -1;
    *cursor = at + n;
    return 0;
}

ech_status ech_prompt_tokenize(const ech_tokenizer *tk, const char *text, size_t len,
                               json_object *messages, ech_tokens *out, ech_error *err)
{
    ech_span *spans = NULL;
    size_t n = 0, cap = 0, cursor = 0;
    size_t nm = messages && json_object_is_type(messages, json_type_array) ? json_object_array_length(messages) : 0;
    for (size_t i = 0; i < nm; i++) {
        json_object *msg = json_object_array_get_idx(messages, i), *content = NULL;
        if (!json_object_object_get_ex(msg, "content", &content) || !content)
            continue;
        if (json_object_is_type(content, json_type_string)) {
            if (mark(text, len, &cursor, json_object_get_string(content),
                     (size_t)json_object_get_string_len(content), &spans, &n, &cap))
                goto nomem;
        } else if (json_object_is_type(content, json_type_array)) {
            for (size_t k = 0; k < json_object_array_length(content); k++) {
                json_object *part = json_object_array_get_idx(content, k), *t = NULL;
                if (json_object_object_get_ex(part, "text", &t) && json_object_is_type(t, json_type_string) &&
                    mark(text, len, &cursor, json_object_get_string(t), (size_t)json_object_get_string_len(t),
                         &spans, &n, &cap))
                    goto nomem;
            }
        }
    }
    const ech_tok_specials *sp = ech_tokenizer_specials(tk);
    unsigned flags = ECH_TOKENIZE_PARSE_SPECIAL;
    if (sp->add_bos && sp->bos != ECH_TOKEN_NULL) {
        ech_str bt = ech_tokenizer_text(tk, sp->bos);
        if (!(bt.len && len >= bt.len && memcmp(text, bt.ptr, bt.len) == 0))
            ech_tokens_push(out, sp->bos);
    }
    ech_status st = ech_tokenize_spans(tk, text, len, flags, spans, n, out, err);
    free(spans);
    return st;
nomem:
    free(spans);
    return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
}
