/* toolcall.c - tool-call syntax of the Hermes and Llama 3 template families. */
#include "config.h"
#include "serve/toolcall.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static const char HERMES_OPEN[] = "<tool_call>", HERMES_CLOSE[] = "</tool_call>";
static const char PYTHON_TAG[] = "<|python_tag|>";

ech_tool_family ech_tool_family_detect(const char *tpl, size_t len)
{
    if (!tpl)
        return ECH_TOOLS_NONE;
    if (memmem(tpl, len, HERMES_OPEN, strlen(HERMES_OPEN)))
        return ECH_TOOLS_HERMES;
    /* Llama 3.1+ teaches {"name": ..., "parameters": ...} in its tool turn */
    if (memmem(tpl, len, "<|start_header_id|>", 19) && memmem(tpl, len, "\"parameters\"", 12))
        return ECH_TOOLS_LLAMA3;
    return ECH_TOOLS_NONE;
}

const char *ech_tool_family_name(ech_tool_family f)
{
    return f == ECH_TOOLS_HERMES ? "hermes" : f == ECH_TOOLS_LLAMA3 ? "llama3" : "none";
}

void ech_tool_calls_free(ech_tool_calls *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].name);
        free(c->v[i].arguments);
    }
    free(c->v);
    c->v = NULL;
    c->n = 0;
}

static int is_blank(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* {"name": "...", "arguments"|"parameters": ...} -> a call; -1 if it is not one. */
static int call_from_json(json_object *j, ech_tool_calls *calls)
{
    json_object *name, *args = NULL;
    if (!json_object_is_type(j, json_type_object) || !json_object_object_get_ex(j, "name", &name) ||
        !json_object_is_type(name, json_type_string) || json_object_get_string_len(name) == 0)
        return -1;
    if (!json_object_object_get_ex(j, "arguments", &args))
        json_object_object_get_ex(j, "parameters", &args);
    const char *a;
    if (!args)
        a = "{}";
    else if (json_object_is_type(args, json_type_string))
        a = json_object_get_string(args);
    else
        a = json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    ech_tool_call *nv = realloc(calls->v, (calls->n + 1) * sizeof *nv);
    if (!nv)
        return -2;
    calls->v = nv;
    ech_tool_call *c = &calls->v[calls->n];
    c->name = strdup(json_object_get_string(name));
    c->arguments = strdup(a ? a : "{}");
    if (!c->name || !c->arguments) {
        free(c->name);
        free(c->arguments);
        return -2;
    }
    calls->n++;
    return 0;
}

/* Parse one JSON value from s[0..len); *used gets the bytes it took. */
static json_object *parse_one(const char *s, size_t len, size_t *used)
{
    if (len > 0x7fffffff)
        return NULL;
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return NULL;
    json_object *j = json_tokener_parse_ex(tok, s, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(j);
        j = NULL;
    } else {
        *used = json_tokener_get_parse_end(tok);
    }
    json_tokener_free(tok);
    return j;
}

/* Returns 0 with calls, -1 when the text is not (only) calls, -2 on OOM. */
static int parse_hermes(const char *t, size_t len, ech_buf *content, ech_tool_calls *calls)
{
    size_t ol = strlen(HERMES_OPEN), cl = strlen(HERMES_CLOSE), at = 0;
    ech_buf text = {0};
    int rc = -1;
    while (at < len) {
        const char *o = memmem(t + at, len - at, HERMES_OPEN, ol);
        size_t stop = o ? (size_t)(o - t) : len;
        if (ech_buf_append(&text, t + at, stop - at) != ECH_OK)
            goto oom;
        if (!o)
            break;
        size_t body = stop + ol;
        const char *c = memmem(t + body, len - body, HERMES_CLOSE, cl);
        size_t end = c ? (size_t)(c - t) : len;
        size_t b = body, e = end;
        while (b < e && is_blank(t[b])) b++;
        while (e > b && is_blank(t[e - 1])) e--;
        size_t used = 0;
        json_object *j = parse_one(t + b, e - b, &used);
        int r = j && used == e - b ? call_from_json(j, calls) : -1;
        json_object_put(j);
        if (r == -2)
            goto oom;
        if (r < 0)
            goto fail;
        rc = 0;
        at = c ? end + cl : len;
    }
    if (rc == 0) {
        /* content is what surrounds the calls, without the blank lines between them */
        size_t b = 0, e = text.len;
        while (b < e && is_blank(text.data[b])) b++;
        while (e > b && is_blank(text.data[e - 1])) e--;
        if (ech_buf_append(content, text.data + b, e - b) != ECH_OK)
            goto oom;
    }
    ech_buf_free(&text);
    return rc;
fail:
    ech_buf_free(&text);
    return -1;
oom:
    ech_buf_free(&text);
    return -2;
}

static int parse_llama3(const char *t, size_t len, ech_tool_calls *calls)
{
    size_t at = 0, pl = strlen(PYTHON_TAG);
    while (at < len && is_blank(t[at])) at++;
    if (len - at >= pl && memcmp(t + at, PYTHON_TAG, pl) == 0)
        at += pl;
    int n = 0;
    for (;;) {
        while (at < len && (is_blank(t[at]) || (n && t[at] == ';'))) at++;
        if (at == len)
            return n ? 0 : -1;
        if (t[at] != '{')
            return -1;
        size_t used = 0;
        json_object *j = parse_one(t + at, len - at, &used);
        int r = j ? call_from_json(j, calls) : -1;
        json_object_put(j);
        if (r < 0)
            return r;
        at += used;
        n++;
    }
}

ech_status ech_tool_parse(ech_tool_family f, const char *text, size_t len, ech_buf *content,
                          ech_tool_calls *calls)
{
    size_t n0 = calls->n, c0 = content->len;
    int r = -1;
    if (f == ECH_TOOLS_HERMES)
        r = parse_hermes(text, len, content, calls);
    else if (f == ECH_TOOLS_LLAMA3)
        r = parse_llama3(text, len, calls);
    if (r == 0)
        return ECH_OK;
    /* not calls after all: drop partial results, it is all content */
    while (calls->n > n0) {
        calls->n--;
        free(calls->v[calls->n].name);
        free(calls->v[calls->n].arguments);
    }
    content->len = c0;
    if (content->data)
        content->data[c0] = '\0';
    if (r == -2)
        return ECH_ERR_NOMEM;
    return ech_buf_append(content, text, len);
}

ech_status ech_tool_prefill(ech_tool_family f, const char *name, ech_buf *out, size_t *name_off,
                            size_t *name_len)
{
    if (f == ECH_TOOLS_NONE)
        return ECH_ERR_INVALID;
    /* the spelling the families' templates show their models */
    const char *open = f == ECH_TOOLS_HERMES ? "<tool_call>\n{\"name\": " : "{\"name\": ";
    const char *args = f == ECH_TOOLS_HERMES ? ", \"arguments\": " : ", \"parameters\": ";
    ech_status st = ech_buf_append(out, open, strlen(open));
    if (st != ECH_OK)
        return st;
    if (!name)
        return ech_buf_append(out, "\"", 1);
    json_object *js = json_object_new_string(name);
    if (!js)
        return ECH_ERR_NOMEM;
    const char *q = json_object_to_json_string_ext(js, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t off = out->len, ql = q ? strlen(q) : 0;
    st = q ? ech_buf_append(out, q, ql) : ECH_ERR_NOMEM;
    json_object_put(js);
    if (st == ECH_OK)
        st = ech_buf_append(out, args, strlen(args));
    if (name_off)
        *name_off = off;
    if (name_len)
        *name_len = ql;
    return st;
}

void ech_tool_stream_init(ech_tool_stream *s, ech_tool_family f)
{
    memset(s, 0, sizeof *s);
    s->f = f;
}

void ech_tool_stream_free(ech_tool_stream *s) { ech_buf_free(&s->held); }

/* Drop the first n held bytes. */
static void consume(ech_buf *b, size_t n)
{
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

ech_status ech_tool_stream_feed(ech_tool_stream *s, const char *text, size_t len, ech_buf *release)
{
    if (s->f == ECH_TOOLS_NONE)
        return ech_buf_append(release, text, len);
    if (ech_buf_append(&s->held, text, len) != ECH_OK)
        return ECH_ERR_NOMEM;
    if (s->in_call || !s->held.len)
        return ECH_OK;
    if (s->f == ECH_TOOLS_LLAMA3) {
        if (!s->decided) {
            size_t i = 0;
            while (i < s->held.len && is_blank(s->held.data[i])) i++;
            if (i == s->held.len)
                return ECH_OK;   /* only blanks so far: undecided */
            s->decided = true;
            if (s->held.data[i] == '{' || s->held.data[i] == '<') {
                s->in_call = true;   /* a call, or <|python_tag|>: hold it all */
                return ECH_OK;
            }
        }
        ech_status st = ech_buf_append(release, s->held.data, s->held.len);
        consume(&s->held, s->held.len);
        return st;
    }
    /* hermes: release up to the marker, or up to a possible start of one */
    size_t ol = strlen(HERMES_OPEN);
    const char *o = memmem(s->held.data, s->held.len, HERMES_OPEN, ol);
    size_t upto;
    if (o) {
        upto = (size_t)(o - s->held.data);
        s->in_call = true;
    } else {
        size_t keep = 0;
        for (size_t k = ol - 1; k > 0; k--)
            if (k <= s->held.len && memcmp(s->held.data + s->held.len - k, HERMES_OPEN, k) == 0) {
                keep = k;
                break;
            }
        upto = s->held.len - keep;
    }
    ech_status st = ech_buf_append(release, s->held.data, upto);
    consume(&s->held, upto);
    return st;
}

ech_status ech_tool_stream_finish(ech_tool_stream *s, ech_buf *content, ech_tool_calls *calls)
{
    ech_status st;
    if (s->in_call)
        st = ech_tool_parse(s->f, s->held.data, s->held.len, content, calls);
    else
        st = ech_buf_append(content, s->held.data ? s->held.data : "", s->held.len);
    ech_buf_clear(&s->held);
    return st;
}

/* OpenAI content: a string, null, or an array of parts; text parts joined. */
static json_object *flatten_content(json_object *content)
{
    if (!json_object_is_type(content, json_type_array))
        return json_object_get(content);
    ech_buf b = {0};
    for (size_t i = 0; i < json_object_array_length(content); i++) {
        json_object *p = json_object_array_get_idx(content, i), *t;
        if (json_object_is_type(p, json_type_string))
            ech_buf_append(&b, json_object_get_string(p), (size_t)json_object_get_string_len(p));
        else if (json_object_object_get_ex(p, "text", &t) && json_object_is_type(t, json_type_string))
            ech_buf_append(&b, json_object_get_string(t), (size_t)json_object_get_string_len(t));
    }
    json_object *s = json_object_new_string_len(b.data ? b.data : "", (int)b.len);
    ech_buf_free(&b);
    return s;
}

json_object *ech_tool_normalize_messages(json_object *messages)
{
    json_object *out = json_object_new_array();
    size_t n = json_object_is_type(messages, json_type_array) ? json_object_array_length(messages) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(messages, i);
        if (!json_object_is_type(m, json_type_object)) {
            json_object_array_add(out, json_object_get(m));
            continue;
        }
        json_object *nm = json_object_new_object();
        /* templates test `'x' in content`: null content becomes "" as in llama.cpp */
        json_object *content = NULL;
        if (!json_object_object_get_ex(m, "content", &content) || !content)
            json_object_object_add(nm, "content", json_object_new_string(""));
        json_object_object_foreach(m, key, val) {
            if (!strcmp(key, "content")) {
                if (val)
                    json_object_object_add(nm, key, flatten_content(val));
            } else if (!strcmp(key, "role") && json_object_is_type(val, json_type_string) &&
                       !strcmp(json_object_get_string(val), "developer")) {
                /* OpenAI's newer name for the system message; templates
                 * know only "system" (Qwen's drops other roles silently) */
                json_object_object_add(nm, key, json_object_new_string("system"));
            } else if (!strcmp(key, "tool_calls") && json_object_is_type(val, json_type_array)) {
                json_object *calls = json_object_new_array();
                for (size_t k = 0; k < json_object_array_length(val); k++) {
                    json_object *c = json_object_array_get_idx(val, k), *fn, *args;
                    json_object *copy = NULL;
                    if (json_object_deep_copy(c, &copy, NULL) != 0 || !copy) {
                        json_object_array_add(calls, json_object_get(c));
                        continue;
                    }
                    if (json_object_object_get_ex(copy, "function", &fn) &&
                        json_object_object_get_ex(fn, "arguments", &args) &&
                        json_object_is_type(args, json_type_string)) {
                        json_object *parsed = json_tokener_parse(json_object_get_string(args));
                        if (parsed && json_object_is_type(parsed, json_type_object))
                            json_object_object_add(fn, "arguments", parsed);
                        else
                            json_object_put(parsed);
                    }
                    json_object_array_add(calls, copy);
                }
                json_object_object_add(nm, key, calls);
            } else {
                json_object_object_add(nm, key, json_object_get(val));
            }
        }
        json_object_array_add(out, nm);
    }
    return out;
}

void ech_tool_call_id(char *buf, size_t n)
{
    static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    if (n < 30) {
        if (n)
            buf[0] = '\0';
        return;
    }
    memcpy(buf, "call_", 5);
    for (size_t i = 0; i < 24; i++)
        buf[5 + i] = al[randombytes_uniform(sizeof al - 1)];
    buf[29] = '\0';
}
