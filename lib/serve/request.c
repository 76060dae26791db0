/* request.c - request validation for the generation endpoints. */
#include "config.h"
#include "serve/request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char INVALID[] = "invalid_request_error";

ech_status ech_api_fail(ech_api_error *e, int status, const char *type, const char *code, const char *param,
                        const char *fmt, ...)
{
    e->status = status;
    e->type = type;
    e->code = code;
    e->param = param;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return ECH_ERR_INVALID;
}

ech_status ech_api_parse_body(const char *body, size_t len, json_object **out, ech_api_error *e)
{
    *out = NULL;
    if (len == 0)
        return ech_api_fail(e, 400, INVALID, "invalid_json", NULL, "the request body is empty; send a JSON object");
    if (len > 0x7fffffff)
        return ech_api_fail(e, 413, INVALID, "request_too_large", NULL, "the request body is too large");
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return ech_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *j = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (je != json_tokener_success || !j) {
        json_object_put(j);
        if (je == json_tokener_continue)
            return ech_api_fail(e, 400, INVALID, "invalid_json", NULL, "the request body is not valid JSON: it ends early");
        if (je == json_tokener_error_parse_utf8_string)
            return ech_api_fail(e, 400, INVALID, "invalid_json", NULL, "the request body is not valid UTF-8");
        return ech_api_fail(e, 400, INVALID, "invalid_json", NULL, "the request body is not valid JSON: %s at byte %zu",
                            json_tokener_error_desc(je), end);
    }
    while (end < len && (body[end] == ' ' || body[end] == '\n' || body[end] == '\r' || body[end] == '\t'))
        end++;
    if (end != len) {
        json_object_put(j);
        return ech_api_fail(e, 400, INVALID, "invalid_json", NULL, "the request body has data after the JSON value (byte %zu)", end);
    }
    if (!json_object_is_type(j, json_type_object)) {
        json_object_put(j);
        return ech_api_fail(e, 400, INVALID, "invalid_json", NULL, "the request body must be a JSON object");
    }
    *out = j;
    return ECH_OK;
}

/* The member `key`, or NULL when absent or null. */
static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static bool is_number(json_object *v)
{
    return json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int);
}

static ech_status get_float(json_object *o, const char *key, double lo, double hi, float *out, bool *set,
                            ech_api_error *e)
{
    json_object *v = get(o, key);
    if (!v)
        return ECH_OK;
    if (!is_number(v))
        return ech_api_fail(e, 400, INVALID, "invalid_type", key, "'%s' must be a number", key);
    double d = json_object_get_double(v);
    if (!isfinite(d) || d < lo || d > hi)
        return ech_api_fail(e, 400, INVALID, "invalid_value", key, "'%s' must be between %g and %g, got %g", key, lo, hi, d);
    *out = (float)d;
    if (set)
        *set = true;
    return ECH_OK;
}

static ech_status get_int(json_object *o, const char *key, int64_t lo, int64_t hi, int64_t *out, bool *set,
                          ech_api_error *e)
{
    json_object *v = get(o, key);
    if (!v)
        return ECH_OK;
    /* 3.0 is an integer too; 3.5 is not */
    if (json_object_is_type(v, json_type_double)) {
        double d = json_object_get_double(v);
        if (!isfinite(d) || d != floor(d) || d < -9.2e18 || d > 9.2e18)
            return ech_api_fail(e, 400, INVALID, "invalid_type", key, "'%s' must be an integer", key);
    } else if (!json_object_is_type(v, json_type_int)) {
        return ech_api_fail(e, 400, INVALID, "invalid_type", key, "'%s' must be an integer", key);
    }
    int64_t i = json_object_get_int64(v);
    if (i < lo || i > hi)
        return ech_api_fail(e, 400, INVALID, "invalid_value", key,
                            "'%s' must be between %lld and %lld, got %lld", key, (long long)lo, (long long)hi, (long long)i);
    *out = i;
    if (set)
        *set = true;
    return ECH_OK;
}

static ech_status get_bool(json_object *o, const char *key, bool *out, ech_api_error *e)
{
    json_object *v = get(o, key);
    if (!v)
        return ECH_OK;
    if (!json_object_is_type(v, json_type_boolean))
        return ech_api_fail(e, 400, INVALID, "invalid_type", key, "'%s' must be true or false", key);
    *out = json_object_get_boolean(v);
    return ECH_OK;
}

static ech_status get_stop(json_object *o, const char *key, ech_api_gen *g, ech_api_error *e)
{
    json_object *v = get(o, key);
    if (!v)
        return ECH_OK;
    if (json_object_is_type(v, json_type_string)) {
        if (json_object_get_string_len(v))
            g->stop[g->gp.n_stop++] = json_object_get_string(v);
        return ECH_OK;
    }
    if (!json_object_is_type(v, json_type_array))
        return ech_api_fail(e, 400, INVALID, "invalid_type", key, "'%s' must be a string or an array of strings", key);
    size_t n = json_object_array_length(v);
    if (n > ECH_API_MAX_STOP)
        return ech_api_fail(e, 400, INVALID, "invalid_value", key, "'%s' has %zu strings; at most %d", key, n, ECH_API_MAX_STOP);
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(v, i);
        if (!json_object_is_type(s, json_type_string))
            return ech_api_fail(e, 400, INVALID, "invalid_type", key, "'%s' must be a string or an array of strings", key);
        if (json_object_get_string_len(s))
            g->stop[g->gp.n_stop++] = json_object_get_string(s);
    }
    return ECH_OK;
}

static ech_status check_messages(json_object *msgs, ech_api_error *e)
{
    if (!msgs)
        return ech_api_fail(e, 400, INVALID, "missing_required_parameter", "messages", "'messages' is required");
    if (!json_object_is_type(msgs, json_type_array) || json_object_array_length(msgs) == 0)
        return ech_api_fail(e, 400, INVALID, "invalid_type", "messages", "'messages' must be a non-empty array");
    for (size_t i = 0; i < json_object_array_length(msgs); i++) {
        json_object *m = json_object_array_get_idx(msgs, i), *role, *content;
        if (!json_object_is_type(m, json_type_object))
            return ech_api_fail(e, 400, INVALID, "invalid_type", "messages", "messages[%zu] must be an object", i);
        if (!(role = get(m, "role")) || !json_object_is_type(role, json_type_string))
            return ech_api_fail(e, 400, INVALID, "invalid_type", "messages", "messages[%zu].role must be a string", i);
        content = get(m, "content");
        if (content && !json_object_is_type(content, json_type_string) && !json_object_is_type(content, json_type_array))
            return ech_api_fail(e, 400, INVALID, "invalid_type", "messages",
                                "messages[%zu].content must be a string or an array of content parts", i);
        if (content && json_object_is_type(content, json_type_array))
            for (size_t k = 0; k < json_object_array_length(content); k++) {
                json_object *p = json_object_array_get_idx(content, k), *type = get(p, "type"), *t = get(p, "text");
                if (!json_object_is_type(p, json_type_object) || !type || !json_object_is_type(type, json_type_string))
                    return ech_api_fail(e, 400, INVALID, "invalid_type", "messages",
                                        "messages[%zu].content[%zu] must be a content part object with a type", i, k);
                if (strcmp(json_object_get_string(type), "text") != 0)
                    return ech_api_fail(e, 400, INVALID, "unsupported_value", "messages",
                                        "messages[%zu].content[%zu]: only text parts are supported, not '%s'", i, k,
                                        json_object_get_string(type));
                if (!t || !json_object_is_type(t, json_type_string))
                    return ech_api_fail(e, 400, INVALID, "invalid_type", "messages",
                                        "messages[%zu].content[%zu].text must be a string", i, k);
            }
    }
    return ECH_OK;
}

static ech_status check_tools(ech_api_gen *g, json_object *body, ech_api_error *e)
{
    json_object *tools = get(body, "tools");
    if (tools) {
        if (!json_object_is_type(tools, json_type_array))
            return ech_api_fail(e, 400, INVALID, "invalid_type", "tools", "'tools' must be an array");
        for (size_t i = 0; i < json_object_array_length(tools); i++) {
            json_object *t = json_object_array_get_idx(tools, i), *fn = get(t, "function"), *name = get(fn, "name");
            if (!json_object_is_type(t, json_type_object) || !fn || !json_object_is_type(fn, json_type_object) ||
                !name || !json_object_is_type(name, json_type_string))
                return ech_api_fail(e, 400, INVALID, "invalid_type", "tools",
                                    "tools[%zu] must be {\"type\": \"function\", \"function\": {\"name\": ...}}", i);
        }
        if (json_object_array_length(tools))
            g->tools = tools;
    }
    json_object *tc = get(body, "tool_choice");
    if (!tc)
        return ECH_OK;
    if (json_object_is_type(tc, json_type_string)) {
        const char *s = json_object_get_string(tc);
        if (!strcmp(s, "auto"))
            g->tool_choice = ECH_TOOL_AUTO;
        else if (!strcmp(s, "none"))
            g->tool_choice = ECH_TOOL_NONE;
        else if (!strcmp(s, "required"))
            g->tool_choice = ECH_TOOL_REQUIRED;
        else
            return ech_api_fail(e, 400, INVALID, "invalid_value", "tool_choice",
                                "'tool_choice' must be \"none\", \"auto\", \"required\" or a function, got \"%s\"", s);
    } else {
        json_object *name = get(get(tc, "function"), "name");
        if (!name || !json_object_is_type(name, json_type_string))
            return ech_api_fail(e, 400, INVALID, "invalid_type", "tool_choice",
                                "'tool_choice' must be a string or {\"type\": \"function\", \"function\": {\"name\": ...}}");
        g->tool_choice = ECH_TOOL_NAMED;
        g->tool_name = json_object_get_string(name);
    }
    if (g->tool_choice != ECH_TOOL_NONE && g->tool_choice != ECH_TOOL_AUTO && !g->tools)
        return ech_api_fail(e, 400, INVALID, "invalid_value", "tool_choice", "'tool_choice' needs 'tools'");
    return ECH_OK;
}

static ech_status check_prompt(json_object *p, ech_api_error *e)
{
    if (!p)
        return ech_api_fail(e, 400, INVALID, "missing_required_parameter", "prompt", "'prompt' is required");
    if (json_object_is_type(p, json_type_string))
        return ECH_OK;
    if (!json_object_is_type(p, json_type_array) || json_object_array_length(p) == 0)
        return ech_api_fail(e, 400, INVALID, "invalid_type", "prompt",
                            "'prompt' must be a string, an array of strings, or an array of token ids");
    json_object *first = json_object_array_get_idx(p, 0);
    json_type want = json_object_get_type(first);
    if (want != json_type_string && want != json_type_int && want != json_type_array)
        return ech_api_fail(e, 400, INVALID, "invalid_type", "prompt",
                            "'prompt' must be a string, an array of strings, or an array of token ids");
    for (size_t i = 0; i < json_object_array_length(p); i++) {
        json_object *x = json_object_array_get_idx(p, i);
        if (json_object_get_type(x) != want)
            return ech_api_fail(e, 400, INVALID, "invalid_type", "prompt", "'prompt' mixes types (element %zu)", i);
        if (want == json_type_array) {
            if (json_object_array_length(x) == 0)
                return ech_api_fail(e, 400, INVALID, "invalid_value", "prompt", "prompt[%zu] is empty", i);
            for (size_t k = 0; k < json_object_array_length(x); k++)
                if (!json_object_is_type(json_object_array_get_idx(x, k), json_type_int))
                    return ech_api_fail(e, 400, INVALID, "invalid_type", "prompt", "prompt[%zu] must hold token ids", i);
        }
    }
    return ECH_OK;
}

/* OpenAI chat / completions sampling fields (also Ollama's `options`). */
static ech_status sampling(json_object *o, ech_api_gen *g, bool ollama, ech_api_error *e)
{
    ech_sampler_params *sp = &g->gp.sampling;
    int64_t v;
    bool set = false;
    ech_status st;
    if ((st = get_float(o, "temperature", 0, 100, &sp->temp, NULL, e)) ||
        (st = get_float(o, "top_p", 0, 1, &sp->top_p, NULL, e)) ||
        (st = get_float(o, "min_p", 0, 1, &sp->min_p, NULL, e)) ||
        (st = get_float(o, "presence_penalty", -2, 2, &sp->presence_penalty, NULL, e)) ||
        (st = get_float(o, "frequency_penalty", -2, 2, &sp->frequency_penalty, NULL, e)) ||
        (st = get_float(o, "repeat_penalty", 0, 100, &sp->repeat_penalty, NULL, e)))
        return st;
    if ((st = get_int(o, "top_k", 0, INT32_MAX, &v, &set, e)))
        return st;
    if (set)
        sp->top_k = (int32_t)v, set = false;
    if ((st = get_int(o, "repeat_last_n", 0, 1 << 20, &v, &set, e)))
        return st;
    if (set)
        sp->penalty_last_n = (int32_t)v, set = false;
    if ((st = get_int(o, "seed", INT64_MIN, INT64_MAX, &v, &set, e)))
        return st;
    if (set)
        sp->seed = (uint64_t)v, set = false;
    if (ollama) {
        if ((st = get_int(o, "num_predict", INT32_MIN, INT32_MAX, &v, &set, e)))
            return st;
        if (set)
            g->max_tokens = v < 0 ? -1 : v;
    }
    return get_stop(o, "stop", g, e);
}

ech_status ech_api_parse_gen(json_object *body, ech_api_kind kind, const ech_sampler_params *defaults,
                             ech_api_gen *g, ech_api_error *e)
{
    memset(g, 0, sizeof *g);
    g->kind = kind;
    g->max_tokens = -1;
    g->gp.sampling = *defaults;
    g->gp.stop = g->stop;
    g->gp.n_predict = -1;
    bool ollama = kind == ECH_API_OLLAMA_CHAT || kind == ECH_API_OLLAMA_GENERATE;
    json_object *model = get(body, "model");
    if (model && !json_object_is_type(model, json_type_string))
        return ech_api_fail(e, 400, INVALID, "invalid_type", "model", "'model' must be a string");
    g->model = model ? json_object_get_string(model) : NULL;
    ech_status st;
    g->stream = ollama;   /* Ollama streams unless told not to */
    if ((st = get_bool(body, "stream", &g->stream, e)))
        return st;

    if (ollama) {
        json_object *opts = get(body, "options");
        if (opts && !json_object_is_type(opts, json_type_object))
            return ech_api_fail(e, 400, INVALID, "invalid_type", "options", "'options' must be an object");
        if (opts && (st = sampling(opts, g, true, e)))
            return st;
        if (kind == ECH_API_OLLAMA_CHAT) {
            g->messages = get(body, "messages");
            if ((st = check_messages(g->messages, e)) || (st = check_tools(g, body, e)))
                return st;
        } else {
            json_object *p = get(body, "prompt"), *sys = get(body, "system");
            if (!p || !json_object_is_type(p, json_type_string))
                return ech_api_fail(e, 400, INVALID, "invalid_type", "prompt", "'prompt' must be a string");
            if (sys && !json_object_is_type(sys, json_type_string))
                return ech_api_fail(e, 400, INVALID, "invalid_type", "system", "'system' must be a string");
            g->prompt = p;
            g->system = sys ? json_object_get_string(sys) : NULL;
            if ((st = get_bool(body, "raw", &g->raw, e)))
                return st;
        }
        g->gp.n_predict = (int32_t)(g->max_tokens < 0 ? -1 : g->max_tokens);
        return ECH_OK;
    }

    if ((st = sampling(body, g, false, e)))
        return st;
    /* llama-server's extension, for benchmarks that need exact lengths */
    if ((st = get_bool(body, "ignore_eos", &g->gp.ignore_eos, e)))
        return st;
    int64_t v = 1;
    bool set = false;
    if ((st = get_int(body, "n", 1, 1, &v, NULL, e)))
        return ech_api_fail(e, 400, INVALID, "unsupported_value", "n", "only n=1 is supported");
    if ((st = get_int(body, "max_tokens", 0, INT32_MAX, &g->max_tokens, NULL, e)) ||
        (st = get_int(body, "max_completion_tokens", 0, INT32_MAX, &g->max_tokens, NULL, e)))
        return st;
    json_object *so = get(body, "stream_options");
    if (so) {
        if (!json_object_is_type(so, json_type_object))
            return ech_api_fail(e, 400, INVALID, "invalid_type", "stream_options", "'stream_options' must be an object");
        if ((st = get_bool(so, "include_usage", &g->include_usage, e)))
            return st;
    }
    if (kind == ECH_API_CHAT) {
        g->messages = get(body, "messages");
        if ((st = check_messages(g->messages, e)) || (st = check_tools(g, body, e)))
            return st;
        if ((st = get_bool(body, "logprobs", &g->logprobs, e)) ||
            (st = get_int(body, "top_logprobs", 0, 20, &v, &set, e)))
            return st;
        if (set) {
            if (!g->logprobs)
                return ech_api_fail(e, 400, INVALID, "invalid_value", "top_logprobs", "'top_logprobs' needs 'logprobs': true");
            g->top_logprobs = (uint32_t)v;
        }
        json_object *rf = get(body, "response_format"), *type = get(rf, "type");
        if (rf && (!type || !json_object_is_type(type, json_type_string)))
            return ech_api_fail(e, 400, INVALID, "invalid_type", "response_format", "'response_format' must be {\"type\": ...}");
        if (rf && strcmp(json_object_get_string(type), "text") != 0)
            return ech_api_fail(e, 400, INVALID, "unsupported_value", "response_format",
                                "response_format '%s' is not supported (only \"text\")", json_object_get_string(type));
    } else {
        g->prompt = get(body, "prompt");
        if ((st = check_prompt(g->prompt, e)))
            return st;
        if ((st = get_int(body, "logprobs", 0, 20, &v, &set, e)))
            return st;
        if (set) {
            g->logprobs = true;
            g->top_logprobs = (uint32_t)v;
        }
        bool echo = false;
        if ((st = get_bool(body, "echo", &echo, e)))
            return st;
        if (echo)
            return ech_api_fail(e, 400, INVALID, "unsupported_value", "echo", "'echo' is not supported");
        if ((st = get_int(body, "best_of", 1, 1, &v, NULL, e)))
            return ech_api_fail(e, 400, INVALID, "unsupported_value", "best_of", "only best_of=1 is supported");
        json_object *suffix = get(body, "suffix");
        if (suffix && !(json_object_is_type(suffix, json_type_string) && json_object_get_string_len(suffix) == 0))
            return ech_api_fail(e, 400, INVALID, "unsupported_value", "suffix", "'suffix' is not supported");
        if (g->stream && json_object_is_type(g->prompt, json_type_array) && json_object_array_length(g->prompt) > 1 &&
            !json_object_is_type(json_object_array_get_idx(g->prompt, 0), json_type_int))
            return ech_api_fail(e, 400, INVALID, "unsupported_value", "prompt", "streaming takes one prompt, not an array of them");
    }
    g->gp.top_logprobs = g->logprobs ? g->top_logprobs : 0;
    g->gp.n_predict = (int32_t)g->max_tokens;
    return ECH_OK;
}
