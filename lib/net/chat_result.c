/* chat_result.c - client responses from JSON, whole or streamed. */
#include "config.h"
#include "net/chat_result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

enum {
    MAX_CHOICES = 64,          /* more choices than anyone asks for: a hostile stream */
    MAX_TOOL_CALLS = 256,      /* per choice */
};

/* ---- typed errors (here, not in client.c, so the fuzz target needs no libcurl) ---- */

const char *ech_client_error_kind_name(ech_client_error_kind k)
{
    switch (k) {
    case ECH_CLIENT_OK: return "ok";
    case ECH_CLIENT_BAD_REQUEST: return "bad request";
    case ECH_CLIENT_AUTH: return "authentication";
    case ECH_CLIENT_PERMISSION: return "permission denied";
    case ECH_CLIENT_NOT_FOUND: return "not found";
    case ECH_CLIENT_CONFLICT: return "conflict";
    case ECH_CLIENT_UNPROCESSABLE: return "unprocessable";
    case ECH_CLIENT_RATE_LIMIT: return "rate limit";
    case ECH_CLIENT_SERVER: return "server error";
    case ECH_CLIENT_STATUS: return "HTTP error";
    case ECH_CLIENT_CONNECTION: return "connection error";
    case ECH_CLIENT_TIMEOUT: return "timeout";
    case ECH_CLIENT_RESPONSE: return "bad response";
    case ECH_CLIENT_CANCELED: return "canceled";
    case ECH_CLIENT_LOCAL: return "local error";
    }
    return "error";
}

ech_status ech_client_error_report(const ech_client_error *ce, ech_status code, ech_error *err)
{
    char tail[200] = "";
    size_t n = 0;
    if (ce->request_id[0])
        n += (size_t)snprintf(tail + n, sizeof tail - n, " [request id %s]", ce->request_id);
    if (ce->attempts > 1 && n < sizeof tail)
        snprintf(tail + n, sizeof tail - n, " (after %d tries)", ce->attempts);
    if (ce->http_status)
        return ech_error_set(err, code, "HTTP %d (%s): %s%s", ce->http_status, ech_client_error_kind_name(ce->kind),
                             ce->message, tail);
    return ech_error_set(err, code, "%s: %s%s", ech_client_error_kind_name(ce->kind), ce->message, tail);
}

/* ---- JSON helpers ------------------------------------------------------------ */

json_object *ech_client_parse_json(const char *s, size_t len, ech_error *err)
{
    if (len > (size_t)INT32_MAX) {
        ech_error_set(err, ECH_ERR_FORMAT, "JSON text too long (%zu bytes)", len);
        return NULL;
    }
    if (memchr(s, '\0', len)) {
        ech_error_set(err, ECH_ERR_FORMAT, "the JSON text contains a NUL byte");
        return NULL;
    }
    json_tokener *tok = json_tokener_new();
    if (!tok) {
        ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    json_object *j = json_tokener_parse_ex(tok, s, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    if (e == json_tokener_continue)   /* ended in the middle of a value */
        e = json_tokener_error_parse_eof;
    else if (e == json_tokener_success && json_tokener_get_parse_end(tok) < len) {
        size_t k = json_tokener_get_parse_end(tok);
        while (k < len && strchr(" \t\r\n", s[k]))
            k++;
        if (k < len)
            e = json_tokener_error_parse_unexpected;
    }
    json_tokener_free(tok);
    if (e != json_tokener_success) {
        json_object_put(j);
        ech_error_set(err, ECH_ERR_FORMAT, "invalid JSON: %s", json_tokener_error_desc(e));
        return NULL;
    }
    return j;
}

/* The member `key` of an object, or NULL when absent or null. */
static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

static const char *member_str(json_object *o, const char *key, size_t *len)
{
    json_object *v = member(o, key);
    if (!v || !json_object_is_type(v, json_type_string))
        return NULL;
    if (len)
        *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

static int64_t member_int(json_object *o, const char *key)
{
    json_object *v = member(o, key);
    return v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
               ? json_object_get_int64(v) : 0;
}

/* A malloc'ed copy of a string member; *ok cleared on OOM. */
static char *dup_member(json_object *o, const char *key, bool *ok)
{
    size_t n;
    const char *s = member_str(o, key, &n);
    if (!s)
        return NULL;
    char *d = malloc(n + 1);
    if (!d) {
        *ok = false;
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static char *dup_bytes(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        if (n)
            memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void usage_from_json(json_object *u, ech_usage *out)
{
    if (!u || !json_object_is_type(u, json_type_object))
        return;
    out->present = true;
    out->prompt_tokens = (long)member_int(u, "prompt_tokens");
    out->completion_tokens = (long)member_int(u, "completion_tokens");
    out->total_tokens = (long)member_int(u, "total_tokens");
    out->cached_tokens = (long)member_int(member(u, "prompt_tokens_details"), "cached_tokens");
}

/* Arguments are a JSON string in OpenAI's format; a server that sends an
 * object instead (Ollama's native shape) gets it serialised. */
static char *arguments_text(json_object *fn, bool *ok)
{
    json_object *a = member(fn, "arguments");
    if (!a) {
        char *d = dup_bytes("", 0);
        if (!d)
            *ok = false;
        return d;
    }
    if (json_object_is_type(a, json_type_string))
        return dup_member(fn, "arguments", ok);
    const char *s = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *d = s ? strdup(s) : NULL;
    if (!d)
        *ok = false;
    return d;
}

/* ---- whole replies ------------------------------------------------------------------- */

static void tool_call_free(ech_chat_tool_call *t)
{
    free(t->id);
    free(t->name);
    free(t->arguments);
}

static void choice_free(ech_chat_choice *ch)
{
    free(ch->content);
    free(ch->reasoning);
    for (size_t i = 0; i < ch->n_tool_calls; i++)
        tool_call_free(&ch->tool_calls[i]);
    free(ch->tool_calls);
    free(ch->finish_reason);
}

void ech_chat_response_free(ech_chat_response *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->model);
    free(r->system_fingerprint);
    for (size_t i = 0; i < r->n_choices; i++)
        choice_free(&r->choices[i]);
    free(r->choices);
    free(r->request_id);
    memset(r, 0, sizeof *r);
}

void ech_completion_response_free(ech_completion_response *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->model);
    for (size_t i = 0; i < r->n_choices; i++) {
        free(r->choices[i].text);
        free(r->choices[i].finish_reason);
    }
    free(r->choices);
    free(r->request_id);
    memset(r, 0, sizeof *r);
}

static int choice_cmp(const void *a, const void *b)
{
    size_t x = ((const ech_chat_choice *)a)->index, y = ((const ech_chat_choice *)b)->index;
    return x < y ? -1 : x > y;
}

static int completion_choice_cmp(const void *a, const void *b)
{
    size_t x = ((const ech_completion_choice *)a)->index, y = ((const ech_completion_choice *)b)->index;
    return x < y ? -1 : x > y;
}

static json_object *choices_array(json_object *j, ech_error *err)
{
    json_object *a = member(j, "choices");
    if (!json_object_is_type(j, json_type_object) || !a || !json_object_is_type(a, json_type_array)) {
        ech_error_set(err, ECH_ERR_FORMAT, "the reply has no \"choices\" array");
        return NULL;
    }
    if (json_object_array_length(a) > MAX_CHOICES) {
        ech_error_set(err, ECH_ERR_FORMAT, "the reply has over %d choices", MAX_CHOICES);
        return NULL;
    }
    return a;
}

ech_status ech_chat_response_from_json(json_object *j, ech_chat_response *out, ech_error *err)
{
    memset(out, 0, sizeof *out);
    json_object *arr = choices_array(j, err);
    if (!arr)
        return ECH_ERR_FORMAT;
    bool ok = true;
    out->id = dup_member(j, "id", &ok);
    out->model = dup_member(j, "model", &ok);
    out->system_fingerprint = dup_member(j, "system_fingerprint", &ok);
    out->created = member_int(j, "created");
    usage_from_json(member(j, "usage"), &out->usage);
    size_t n = json_object_array_length(arr);
    out->choices = calloc(n ? n : 1, sizeof *out->choices);
    if (!out->choices)
        ok = false;
    for (size_t i = 0; ok && i < n; i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        json_object *m = member(c, "message");
        if (!c || !json_object_is_type(c, json_type_object) || !m || !json_object_is_type(m, json_type_object)) {
            ech_chat_response_free(out);
            return ech_error_set(err, ECH_ERR_FORMAT, "choice %zu has no \"message\" object", i);
        }
        ech_chat_choice *ch = &out->choices[out->n_choices++];
        json_object *idx = member(c, "index");
        ch->index = idx && json_object_is_type(idx, json_type_int) && json_object_get_int64(idx) >= 0
                        ? (size_t)json_object_get_int64(idx) : i;
        size_t len = 0;
        const char *content = member_str(m, "content", &len);
        if (content) {
            ch->content = dup_bytes(content, len);
            ch->content_len = len;
            ok = ch->content != NULL;
        }
        ch->reasoning = dup_member(m, "reasoning_content", &ok);
        if (!ch->reasoning)
            ch->reasoning = dup_member(m, "reasoning", &ok);
        ch->finish_reason = dup_member(c, "finish_reason", &ok);
        json_object *tcs = member(m, "tool_calls");
        if (tcs && json_object_is_type(tcs, json_type_array) && json_object_array_length(tcs)) {
            size_t k = json_object_array_length(tcs);
            if (k > MAX_TOOL_CALLS) {
                ech_chat_response_free(out);
                return ech_error_set(err, ECH_ERR_FORMAT, "choice %zu has over %d tool calls", i, MAX_TOOL_CALLS);
            }
            ch->tool_calls = calloc(k, sizeof *ch->tool_calls);
            ok = ok && ch->tool_calls;
            for (size_t t = 0; ok && t < k; t++) {
                json_object *tc = json_object_array_get_idx(tcs, t), *fn = member(tc, "function");
                ech_chat_tool_call *dst = &ch->tool_calls[ch->n_tool_calls++];
                dst->id = dup_member(tc, "id", &ok);
                dst->name = dup_member(fn, "name", &ok);
                dst->arguments = arguments_text(fn, &ok);
                if (ok && !dst->id)
                    ok = (dst->id = dup_bytes("", 0)) != NULL;
                if (ok && !dst->name)
                    ok = (dst->name = dup_bytes("", 0)) != NULL;
            }
        }
    }
    if (!ok) {
        ech_chat_response_free(out);
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    }
    qsort(out->choices, out->n_choices, sizeof *out->choices, choice_cmp);
    return ECH_OK;
}

ech_status ech_completion_response_from_json(json_object *j, ech_completion_response *out, ech_error *err)
{
    memset(out, 0, sizeof *out);
    json_object *arr = choices_array(j, err);
    if (!arr)
        return ECH_ERR_FORMAT;
    bool ok = true;
    out->id = dup_member(j, "id", &ok);
    out->model = dup_member(j, "model", &ok);
    out->created = member_int(j, "created");
    usage_from_json(member(j, "usage"), &out->usage);
    size_t n = json_object_array_length(arr);
    out->choices = calloc(n ? n : 1, sizeof *out->choices);
    ok = ok && out->choices;
    for (size_t i = 0; ok && i < n; i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        size_t len = 0;
        const char *text = member_str(c, "text", &len);
        if (!text) {
            ech_completion_response_free(out);
            return ech_error_set(err, ECH_ERR_FORMAT, "choice %zu has no \"text\"", i);
        }
        ech_completion_choice *ch = &out->choices[out->n_choices++];
        json_object *idx = member(c, "index");
        ch->index = idx && json_object_is_type(idx, json_type_int) && json_object_get_int64(idx) >= 0
                        ? (size_t)json_object_get_int64(idx) : i;
        ch->text = dup_bytes(text, len);
        ch->text_len = len;
        ok = ch->text != NULL;
        ch->finish_reason = dup_member(c, "finish_reason", &ok);
    }
    if (!ok) {
        ech_completion_response_free(out);
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    }
    qsort(out->choices, out->n_choices, sizeof *out->choices, completion_choice_cmp);
    return ECH_OK;
}

json_object *ech_chat_choice_message_json(const ech_chat_choice *ch)
{
    json_object *m = json_object_new_object();
    if (!m)
        return NULL;
    json_object_object_add(m, "role", json_object_new_string("assistant"));
    json_object_object_add(m, "content", ch->content ? json_object_new_string_len(ch->content, (int)ch->content_len)
                                                     : NULL);
    if (ch->n_tool_calls) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < ch->n_tool_calls; i++) {
            json_object *c = json_object_new_object(), *fn = json_object_new_object();
            json_object_object_add(c, "id", json_object_new_string(ch->tool_calls[i].id));
            json_object_object_add(c, "type", json_object_new_string("function"));
            json_object_object_add(fn, "name", json_object_new_string(ch->tool_calls[i].name));
            json_object_object_add(fn, "arguments", json_object_new_string(ch->tool_calls[i].arguments));
            json_object_object_add(c, "function", fn);
            json_object_array_add(a, c);
        }
        json_object_object_add(m, "tool_calls", a);
    }
    return m;
}

/* ---- streams ------------------------------------------------------------------------ */

typedef struct acc_call {
    ech_buf id, name, args;
} acc_call;

typedef struct acc_choice {
    bool used;
    bool has_content, has_reasoning;
    ech_buf content, reasoning;
    acc_call *calls;
    size_t n_calls;
    size_t delivered;          /* calls already handed to the callback */
    char *finish;
} acc_choice;

struct ech_chat_acc {
    bool completion;
    ech_chat_stream_fn fn;
    void *user;
    char *id, *model, *fingerprint;
    int64_t created;
    ech_usage usage;
    acc_choice choices[MAX_CHOICES];
    size_t n_choices;          /* one past the highest index used */
    size_t chunks;
    bool done, finished;
};

ech_chat_acc *ech_chat_acc_new(bool completion, ech_chat_stream_fn fn, void *user)
{
    ech_chat_acc *a = calloc(1, sizeof *a);
    if (a) {
        a->completion = completion;
        a->fn = fn;
        a->user = user;
    }
    return a;
}

void ech_chat_acc_free(ech_chat_acc *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_choices; i++) {
        acc_choice *c = &a->choices[i];
        ech_buf_free(&c->content);
        ech_buf_free(&c->reasoning);
        for (size_t k = 0; k < c->n_calls; k++) {
            ech_buf_free(&c->calls[k].id);
            ech_buf_free(&c->calls[k].name);
            ech_buf_free(&c->calls[k].args);
        }
        free(c->calls);
        free(c->finish);
    }
    free(a->id);
    free(a->model);
    free(a->fingerprint);
    free(a);
}

bool ech_chat_acc_done(const ech_chat_acc *a) { return a->done; }
bool ech_chat_acc_finished(const ech_chat_acc *a) { return a->finished; }
size_t ech_chat_acc_chunks(const ech_chat_acc *a) { return a->chunks; }

static ech_status deliver(ech_chat_acc *a, const ech_chat_event *ev, ech_error *err)
{
    if (a->fn && a->fn(a->user, ev))
        return ech_error_set(err, ECH_ERR_CANCELED, "stopped by the stream callback");
    return ECH_OK;
}

static const char *buf_str(const ech_buf *b) { return b->data ? b->data : ""; }

/* Hand the choice's complete calls to the callback (once each). */
static ech_status deliver_calls(ech_chat_acc *a, size_t index, ech_error *err)
{
    acc_choice *c = &a->choices[index];
    for (; c->delivered < c->n_calls; c->delivered++) {
        acc_call *k = &c->calls[c->delivered];
        ech_chat_tool_call tc = {(char *)buf_str(&k->id), (char *)buf_str(&k->name), (char *)buf_str(&k->args)};
        ech_chat_event ev = {.kind = ECH_CHAT_TOOL_CALL, .choice = index, .tool_call = &tc,
                             .tool_index = c->delivered};
        ech_status s = deliver(a, &ev, err);
        if (s != ECH_OK) {
            c->delivered++;
            return s;
        }
    }
    return ECH_OK;
}

/* Copy a string member into *dst if it is not set yet. */
static ech_status keep_first(char **dst, json_object *o, const char *key)
{
    if (*dst)
        return ECH_OK;
    bool ok = true;
    *dst = dup_member(o, key, &ok);
    return ok ? ECH_OK : ECH_ERR_NOMEM;
}

/* Fill `b` from a fragment only while it is empty: ids, types and names come
 * whole (in the first fragment) in every server we know; some repeat them
 * in later fragments, which must not double them. */
static ech_status set_if_empty(ech_buf *b, json_object *o, const char *key)
{
    size_t n;
    const char *s = member_str(o, key, &n);
    if (!s || !n || b->len)
        return ECH_OK;
    return ech_buf_append(b, s, n);
}

static ech_status add_tool_fragments(ech_chat_acc *a, acc_choice *c, json_object *arr, ech_error *err)
{
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        json_object *f = json_object_array_get_idx(arr, i);
        if (!f || !json_object_is_type(f, json_type_object))
            return ech_error_set(err, ECH_ERR_FORMAT, "a tool-call fragment is not an object");
        json_object *idx = member(f, "index");
        size_t k;
        const char *id = member_str(f, "id", NULL);
        if (idx && json_object_is_type(idx, json_type_int)) {
            int64_t v = json_object_get_int64(idx);
            if (v < 0 || v >= MAX_TOOL_CALLS)
                return ech_error_set(err, ECH_ERR_RANGE, "tool-call index %lld out of range (0..%d)",
                                     (long long)v, MAX_TOOL_CALLS - 1);
            k = (size_t)v;
        } else if (c->n_calls == 0 || (id && *id && strcmp(id, buf_str(&c->calls[c->n_calls - 1].id)) != 0)) {
            k = c->n_calls;   /* no index: a new id starts the next call */
            if (k >= MAX_TOOL_CALLS)
                return ech_error_set(err, ECH_ERR_RANGE, "over %d tool calls", MAX_TOOL_CALLS);
        } else {
            k = c->n_calls - 1;
        }
        if (k < c->delivered)
            return ech_error_set(err, ECH_ERR_FORMAT, "a fragment for tool call %zu came after it was complete", k);
        if (k >= c->n_calls) {
            acc_call *grown = realloc(c->calls, (k + 1) * sizeof *grown);
            if (!grown)
                return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
            memset(grown + c->n_calls, 0, (k + 1 - c->n_calls) * sizeof *grown);
            c->calls = grown;
            c->n_calls = k + 1;
        }
        acc_call *call = &c->calls[k];
        json_object *fn = member(f, "function");
        size_t alen = 0;
        const char *args = member_str(fn, "arguments", &alen);
        ech_status s = set_if_empty(&call->id, f, "id");
        if (s == ECH_OK)
            s = set_if_empty(&call->name, fn, "name");
        if (s == ECH_OK && args)
            s = ech_buf_append(&call->args, args, alen);
        else if (s == ECH_OK && member(fn, "arguments")) {   /* an object: whole arguments at once */
            bool ok = true;
            char *t = arguments_text(fn, &ok);
            s = t ? ech_buf_puts(&call->args, t) : ECH_ERR_NOMEM;
            free(t);
        }
        if (s != ECH_OK)
            return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
        (void)a;
    }
    return ECH_OK;
}

static ech_status stream_error(json_object *e, ech_client_error *ce, ech_error *err)
{
    if (ce) {
        ce->kind = ECH_CLIENT_SERVER;
        const char *msg = json_object_is_type(e, json_type_string) ? json_object_get_string(e)
                                                                     : member_str(e, "message", NULL);
        snprintf(ce->message, sizeof ce->message, "%s", msg ? msg : "error in the stream (no message)");
        const char *t = member_str(e, "type", NULL), *c = member_str(e, "code", NULL),
                   *p = member_str(e, "param", NULL);
        json_object *cv = member(e, "code");
        snprintf(ce->type, sizeof ce->type, "%s", t ? t : "");
        if (!c && cv && json_object_is_type(cv, json_type_int))
            snprintf(ce->code, sizeof ce->code, "%lld", (long long)json_object_get_int64(cv));
        else
            snprintf(ce->code, sizeof ce->code, "%s", c ? c : "");
        snprintf(ce->param, sizeof ce->param, "%s", p ? p : "");
        return ech_client_error_report(ce, ECH_ERR_HTTP, err);
    }
    return ech_error_set(err, ECH_ERR_HTTP, "error in the stream");
}

static ech_status add_text(ech_chat_acc *a, size_t index, ech_buf *b, bool *has, ech_chat_event_kind kind,
                           const char *s, size_t n, ech_error *err)
{
    *has = true;
    if (!n)
        return ECH_OK;
    if (ech_buf_append(b, s, n) != ECH_OK)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    ech_chat_event ev = {.kind = kind, .choice = index, .text = s, .len = n};
    return deliver(a, &ev, err);
}

static ech_status add_choice(ech_chat_acc *a, json_object *ch, size_t pos, ech_error *err)
{
    if (!json_object_is_type(ch, json_type_object))
        return ech_error_set(err, ECH_ERR_FORMAT, "a choice in a chunk is not an object");
    json_object *idx = member(ch, "index");
    int64_t iv = idx && json_object_is_type(idx, json_type_int) ? json_object_get_int64(idx) : (int64_t)pos;
    if (iv < 0 || iv >= MAX_CHOICES)
        return ech_error_set(err, ECH_ERR_RANGE, "choice index %lld out of range (0..%d)", (long long)iv,
                             MAX_CHOICES - 1);
    size_t index = (size_t)iv;
    acc_choice *c = &a->choices[index];
    c->used = true;
    if (index >= a->n_choices)
        a->n_choices = index + 1;
    ech_status s = ECH_OK;
    size_t n = 0;
    const char *t;
    if (a->completion) {
        if ((t = member_str(ch, "text", &n)))
            s = add_text(a, index, &c->content, &c->has_content, ECH_CHAT_DELTA, t, n, err);
    } else {
        json_object *d = member(ch, "delta");
        if (d && !json_object_is_type(d, json_type_object))
            return ech_error_set(err, ECH_ERR_FORMAT, "a chunk's \"delta\" is not an object");
        if ((t = member_str(d, "reasoning_content", &n)) || (t = member_str(d, "reasoning", &n)))
            s = add_text(a, index, &c->reasoning, &c->has_reasoning, ECH_CHAT_REASONING, t, n, err);
        if (s == ECH_OK && (t = member_str(d, "content", &n)))
            s = add_text(a, index, &c->content, &c->has_content, ECH_CHAT_DELTA, t, n, err);
        json_object *tcs = member(d, "tool_calls");
        if (s == ECH_OK && tcs) {
            if (!json_object_is_type(tcs, json_type_array))
                return ech_error_set(err, ECH_ERR_FORMAT, "a chunk's \"tool_calls\" is not an array");
            s = add_tool_fragments(a, c, tcs, err);
        }
    }
    const char *fin = member_str(ch, "finish_reason", &n);
    if (s == ECH_OK && fin && !c->finish) {
        if (!(c->finish = dup_bytes(fin, n)))
            return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
        a->finished = true;
        if ((s = deliver_calls(a, index, err)) != ECH_OK)
            return s;
        ech_chat_event ev = {.kind = ECH_CHAT_FINISH, .choice = index, .finish_reason = c->finish};
        s = deliver(a, &ev, err);
    }
    return s;
}

ech_status ech_chat_acc_event(ech_chat_acc *a, const char *event, const char *data, size_t len,
                              ech_client_error *ce, ech_error *err)
{
    if (a->done)   /* anything after [DONE] is ignored, as the OpenAI SDKs do */
        return ECH_OK;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        a->done = true;
        return ECH_OK;
    }
    ech_error jerr;
    json_object *j = ech_client_parse_json(data, len, &jerr);
    if (!j)   /* say where: the parser's message is about the JSON */
        return ech_error_set(err, jerr.code, "stream chunk %zu: %s", a->chunks + 1, jerr.msg);
    ech_status s = ECH_OK;
    json_object *e = member(j, "error");
    if (!json_object_is_type(j, json_type_object))
        s = ech_error_set(err, ECH_ERR_FORMAT, "stream chunk %zu is not a JSON object", a->chunks + 1);
    else if (e || (event && strcmp(event, "error") == 0))
        s = stream_error(e ? e : j, ce, err);
    if (s != ECH_OK) {
        json_object_put(j);
        return s;
    }
    a->chunks++;
    if (keep_first(&a->id, j, "id") || keep_first(&a->model, j, "model") ||
        keep_first(&a->fingerprint, j, "system_fingerprint")) {
        json_object_put(j);
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    }
    if (!a->created)
        a->created = member_int(j, "created");
    json_object *arr = member(j, "choices");
    if (arr && !json_object_is_type(arr, json_type_array))
        s = ech_error_set(err, ECH_ERR_FORMAT, "stream chunk %zu: \"choices\" is not an array", a->chunks);
    size_t n = arr && s == ECH_OK ? json_object_array_length(arr) : 0;
    for (size_t i = 0; s == ECH_OK && i < n; i++)
        s = add_choice(a, json_object_array_get_idx(arr, i), i, err);
    json_object *u = member(j, "usage");
    if (s == ECH_OK && u && json_object_is_type(u, json_type_object)) {
        usage_from_json(u, &a->usage);
        ech_chat_event ev = {.kind = ECH_CHAT_USAGE, .usage = &a->usage};
        s = deliver(a, &ev, err);
    }
    json_object_put(j);
    return s;
}

/* Deliver what a stream without finish_reason left undelivered. */
static ech_status flush_calls(ech_chat_acc *a, ech_error *err)
{
    for (size_t i = 0; i < a->n_choices; i++) {
        ech_status s = deliver_calls(a, i, err);
        if (s != ECH_OK)
            return s;
    }
    return ECH_OK;
}

static char *steal_or_null(ech_buf *b, bool present)
{
    if (!present)
        return NULL;
    return b->data ? ech_buf_steal(b) : dup_bytes("", 0);
}

ech_status ech_chat_acc_finish(ech_chat_acc *a, ech_chat_response *out, ech_error *err)
{
    ech_status s = flush_calls(a, err);
    if (s != ECH_OK || !out)
        return s;
    memset(out, 0, sizeof *out);
    out->choices = calloc(a->n_choices ? a->n_choices : 1, sizeof *out->choices);
    if (!out->choices)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    out->id = a->id, a->id = NULL;
    out->model = a->model, a->model = NULL;
    out->system_fingerprint = a->fingerprint, a->fingerprint = NULL;
    out->created = a->created;
    out->usage = a->usage;
    bool ok = true;
    for (size_t i = 0; i < a->n_choices; i++) {
        acc_choice *c = &a->choices[i];
        if (!c->used)
            continue;
        ech_chat_choice *d = &out->choices[out->n_choices++];
        d->index = i;
        d->content_len = c->content.len;
        d->content = steal_or_null(&c->content, c->has_content);
        d->reasoning = steal_or_null(&c->reasoning, c->has_reasoning);
        d->finish_reason = c->finish, c->finish = NULL;
        ok = ok && (d->content || !c->has_content) && (d->reasoning || !c->has_reasoning);
        if (c->n_calls) {
            d->tool_calls = calloc(c->n_calls, sizeof *d->tool_calls);
            if (!d->tool_calls) {
                ok = false;
                continue;
            }
            d->n_tool_calls = c->n_calls;
            for (size_t k = 0; k < c->n_calls; k++) {
                d->tool_calls[k].id = steal_or_null(&c->calls[k].id, true);
                d->tool_calls[k].name = steal_or_null(&c->calls[k].name, true);
                d->tool_calls[k].arguments = steal_or_null(&c->calls[k].args, true);
                ok = ok && d->tool_calls[k].id && d->tool_calls[k].name && d->tool_calls[k].arguments;
            }
        }
    }
    if (!ok) {
        ech_chat_response_free(out);
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    }
    return ECH_OK;
}

ech_status ech_chat_acc_finish_completion(ech_chat_acc *a, ech_completion_response *out, ech_error *err)
{
    if (!out)
        return ECH_OK;
    memset(out, 0, sizeof *out);
    out->choices = calloc(a->n_choices ? a->n_choices : 1, sizeof *out->choices);
    if (!out->choices)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    out->id = a->id, a->id = NULL;
    out->model = a->model, a->model = NULL;
    out->created = a->created;
    out->usage = a->usage;
    bool ok = true;
    for (size_t i = 0; i < a->n_choices; i++) {
        acc_choice *c = &a->choices[i];
        if (!c->used)
            continue;
        ech_completion_choice *d = &out->choices[out->n_choices++];
        d->index = i;
        d->text_len = c->content.len;
        d->text = steal_or_null(&c->content, true);
        d->finish_reason = c->finish, c->finish = NULL;
        ok = ok && d->text;
    }
    if (!ok) {
        ech_completion_response_free(out);
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    }
    return ECH_OK;
}

ech_status ech_chat_response_replay(const ech_chat_response *r, ech_chat_stream_fn fn, void *user, ech_error *err)
{
    for (size_t i = 0; fn && i < r->n_choices; i++) {
        const ech_chat_choice *c = &r->choices[i];
        ech_chat_event ev = {.choice = c->index};
        int stop = 0;
        if (c->reasoning && *c->reasoning) {
            ev.kind = ECH_CHAT_REASONING, ev.text = c->reasoning, ev.len = strlen(c->reasoning);
            stop = fn(user, &ev);
        }
        if (!stop && c->content && c->content_len) {
            ev.kind = ECH_CHAT_DELTA, ev.text = c->content, ev.len = c->content_len;
            stop = fn(user, &ev);
        }
        for (size_t k = 0; !stop && k < c->n_tool_calls; k++) {
            ech_chat_event t = {.kind = ECH_CHAT_TOOL_CALL, .choice = c->index, .tool_call = &c->tool_calls[k],
                                .tool_index = k};
            stop = fn(user, &t);
        }
        if (!stop && c->finish_reason) {
            ech_chat_event f = {.kind = ECH_CHAT_FINISH, .choice = c->index, .finish_reason = c->finish_reason};
            stop = fn(user, &f);
        }
        if (stop)
            return ech_error_set(err, ECH_ERR_CANCELED, "stopped by the stream callback");
    }
    if (fn && r->usage.present) {
        ech_chat_event u = {.kind = ECH_CHAT_USAGE, .usage = &r->usage};
        if (fn(user, &u))
            return ech_error_set(err, ECH_ERR_CANCELED, "stopped by the stream callback");
    }
    return ECH_OK;
}
