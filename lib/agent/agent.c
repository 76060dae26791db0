/* agent.c - the model / tools loop and its session file. */
#include "config.h"

#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "core/mapfile.h"

enum { DEFAULT_MAX_TURNS = 10, MAX_SESSION = 256 << 20 };

static const char FORMAT[] = "echostra-agent-session";

struct ech_agent {
    ech_client *client;
    ech_toolset *tools;
    char *model;
    int max_turns;
    ech_sampling sampling;
    char *session_path;
    ech_agent_event_fn on_event;
    void *user;
    json_object *messages;
    long turns;              /* model calls over the session's life */
};

ech_status ech_agent_new(const ech_agent_opts *o, ech_agent **out, ech_error *err)
{
    *out = NULL;
    if (!o || !o->client)
        return ech_error_set(err, ECH_ERR_INVALID, "an agent needs a client");
    ech_agent *a = calloc(1, sizeof *a);
    if (!a)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    a->client = o->client;
    a->tools = o->tools;
    a->model = o->model ? strdup(o->model) : NULL;
    a->max_turns = o->max_turns > 0 ? o->max_turns : DEFAULT_MAX_TURNS;
    a->sampling = o->sampling;
    a->session_path = o->session_path ? strdup(o->session_path) : NULL;
    a->on_event = o->on_event;
    a->user = o->user;
    a->messages = json_object_new_array();
    *out = a;
    return ECH_OK;
}

void ech_agent_free(ech_agent *a)
{
    if (!a)
        return;
    json_object_put(a->messages);
    free(a->model);
    free(a->session_path);
    free(a);
}

json_object *ech_agent_messages(const ech_agent *a) { return a->messages; }

static const char *str_of(json_object *o, const char *key)
{
    json_object *v;
    if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

static json_object *last_message(const ech_agent *a)
{
    size_t n = json_object_array_length(a->messages);
    return n ? json_object_array_get_idx(a->messages, n - 1) : NULL;
}

static json_object *calls_of(json_object *msg)
{
    json_object *c;
    if (json_object_object_get_ex(msg, "tool_calls", &c) && json_object_is_type(c, json_type_array) &&
        json_object_array_length(c) > 0)
        return c;
    return NULL;
}

const char *ech_agent_final(const ech_agent *a)
{
    json_object *m = last_message(a);
    const char *role = str_of(m, "role");
    if (!role || strcmp(role, "assistant") != 0 || calls_of(m))
        return NULL;
    const char *c = str_of(m, "content");
    return c ? c : "";
}

/* The last assistant message with tool calls, and how many of its calls
 * the messages after it answer; NULL if there is none after the last user
 * message. */
static json_object *open_calls(const ech_agent *a, size_t *answered)
{
    size_t n = json_object_array_length(a->messages);
    *answered = 0;
    for (size_t i = n; i-- > 0;) {
        json_object *m = json_object_array_get_idx(a->messages, i);
        const char *role = str_of(m, "role");
        if (role && strcmp(role, "tool") == 0) {
            (*answered)++;
            continue;
        }
        if (role && strcmp(role, "assistant") == 0 && calls_of(m))
            return *answered < json_object_array_length(calls_of(m)) ? m : NULL;
        return NULL;
    }
    return NULL;
}

int ech_agent_pending_calls(const ech_agent *a)
{
    size_t answered;
    return open_calls(a, &answered) != NULL;
}

ech_status ech_agent_add_message(ech_agent *a, const char *role, const char *content, ech_error *err)
{
    json_object *m = json_object_new_object();
    if (!m)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    json_object_object_add(m, "role", json_object_new_string(role));
    json_object_object_add(m, "content", ech_json_string(content, strlen(content)));
    json_object_array_add(a->messages, m);
    return ECH_OK;
}

/* ---- the session file ------------------------------------------------------------ */

ech_status ech_agent_save(const ech_agent *a, ech_error *err)
{
    if (!a->session_path)
        return ECH_OK;
    json_object *s = json_object_new_object();
    json_object_object_add(s, "format", json_object_new_string(FORMAT));
    json_object_object_add(s, "version", json_object_new_int(1));
    if (a->model)
        json_object_object_add(s, "model", json_object_new_string(a->model));
    json_object_object_add(s, "turns", json_object_new_int64(a->turns));
    json_object_object_add(s, "messages", json_object_get(a->messages));
    const char *text = json_object_to_json_string_ext(s, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t n = strlen(text);
    size_t pl = strlen(a->session_path) + 32;
    char *tmp = malloc(pl);
    ech_status st = ECH_OK;
    if (!tmp) {
        json_object_put(s);
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    }
    snprintf(tmp, pl, "%s.tmp.%ld", a->session_path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        st = ech_error_set(err, ECH_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    } else {
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(fd, text + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        int ok = off == n && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
        int e = errno;
        if (close(fd) != 0 && ok)
            ok = 0, e = errno;
        if (!ok || rename(tmp, a->session_path) != 0) {
            if (ok)
                e = errno;
            unlink(tmp);
            st = ech_error_set(err, ECH_ERR_IO, "cannot write the session %s: %s", a->session_path, strerror(e));
        }
    }
    free(tmp);
    json_object_put(s);
    return st;
}

ech_status ech_agent_load(ech_agent *a, const char *path, ech_error *err)
{
    ech_mapfile mf;
    ech_status st = ech_mapfile_open(&mf, path, err);
    if (st != ECH_OK)
        return st;
    if (mf.size > MAX_SESSION) {
        ech_mapfile_close(&mf);
        return ech_error_set(err, ECH_ERR_RANGE, "%s: a session over %d MiB", path, MAX_SESSION >> 20);
    }
    json_tokener *tok = json_tokener_new();
    json_object *j = tok ? json_tokener_parse_ex(tok, (const char *)mf.data, (int)mf.size) : NULL;
    int bad = !tok || !j || json_tokener_get_error(tok) != json_tokener_success;
    json_tokener_free(tok);
    ech_mapfile_close(&mf);
    json_object *msgs = NULL, *v;
    if (bad) {
        st = ech_error_set(err, ECH_ERR_FORMAT, "%s: not a session file (not valid JSON)", path);
    } else if (!str_of(j, "format") || strcmp(str_of(j, "format"), FORMAT) != 0 ||
               !json_object_object_get_ex(j, "messages", &msgs) || !json_object_is_type(msgs, json_type_array)) {
        st = ech_error_set(err, ECH_ERR_FORMAT, "%s: not an ech-agent session file", path);
    } else if (!json_object_object_get_ex(j, "version", &v) || json_object_get_int(v) != 1) {
        st = ech_error_set(err, ECH_ERR_UNSUPPORTED, "%s: a session file of another version", path);
    } else {
        for (size_t i = 0; i < json_object_array_length(msgs) && st == ECH_OK; i++) {
            json_object *m = json_object_array_get_idx(msgs, i);
            if (!json_object_is_type(m, json_type_object) || !str_of(m, "role"))
                st = ech_error_set(err, ECH_ERR_FORMAT, "%s: message %zu has no role", path, i);
        }
    }
    if (st == ECH_OK) {
        json_object_put(a->messages);
        a->messages = json_object_get(msgs);
        a->turns = json_object_object_get_ex(j, "turns", &v) ? json_object_get_int64(v) : 0;
    }
    json_object_put(j);
    return st;
}

/* ---- the loop ------------------------------------------------------------------ */

static int emit(ech_agent *a, json_object *ev)
{
    int stop = a->on_event ? a->on_event(a->user, ev) : 0;
    json_object_put(ev);
    return stop;
}

static json_object *event(const char *type, long turn)
{
    json_object *ev = json_object_new_object();
    json_object_object_add(ev, "type", json_object_new_string(type));
    if (turn >= 0)
        json_object_object_add(ev, "turn", json_object_new_int64(turn));
    return ev;
}

static json_object *call_field(json_object *call, const char *key)
{
    json_object *fn = NULL, *v = NULL;
    json_object_object_get_ex(call, "function", &fn);
    json_object_object_get_ex(fn, key, &v);
    return v;
}

/* Answer the calls of `msg` from index `from` on. */
static ech_status run_calls(ech_agent *a, json_object *msg, size_t from, ech_error *err)
{
    json_object *calls = calls_of(msg);
    for (size_t i = from; calls && i < json_object_array_length(calls); i++) {
        json_object *call = json_object_array_get_idx(calls, i);
        const char *id = str_of(call, "id");
        json_object *namej = call_field(call, "name"), *argsj = call_field(call, "arguments");
        const char *name = json_object_is_type(namej, json_type_string) ? json_object_get_string(namej) : "";
        const char *args = json_object_is_type(argsj, json_type_string) ? json_object_get_string(argsj)
                           : argsj ? ech_json_line(argsj) : "";   /* some servers send an object */
        json_object *ev = event("tool_call", a->turns);
        json_object_object_add(ev, "id", json_object_new_string(id ? id : ""));
        json_object_object_add(ev, "name", json_object_new_string(name));
        json_object_object_add(ev, "arguments", json_object_new_string(args));
        if (emit(a, ev))
            return ech_error_set(err, ECH_ERR_CANCELED, "stopped");
        ech_tool_result r = {0};
        if (a->tools) {
            if (ech_toolset_call(a->tools, name, args, &r) != ECH_OK)
                return ech_error_set(err, ECH_ERR_NOMEM, "out of memory running a tool");
        } else {
            r.content = strdup("error: no tools are available");
            r.is_error = 1;
        }
        json_object *m = json_object_new_object();
        json_object_object_add(m, "role", json_object_new_string("tool"));
        json_object_object_add(m, "tool_call_id", json_object_new_string(id ? id : ""));
        json_object_object_add(m, "content", ech_json_string(r.content, strlen(r.content)));
        json_object_array_add(a->messages, m);
        ech_status st = ech_agent_save(a, err);
        ev = event("tool_result", a->turns);
        json_object_object_add(ev, "id", json_object_new_string(id ? id : ""));
        json_object_object_add(ev, "name", json_object_new_string(name));
        json_object_object_add(ev, "content", ech_json_string(r.content, strlen(r.content)));
        json_object_object_add(ev, "is_error", json_object_new_boolean(r.is_error));
        json_object_object_add(ev, "seconds", ech_json_double(r.seconds));
        ech_tool_result_free(&r);
        if (st != ECH_OK)
            return st;
        if (emit(a, ev))
            return ech_error_set(err, ECH_ERR_CANCELED, "stopped");
    }
    return ECH_OK;
}

/* Give every call an id (some servers send none) and emit the message. */
static int announce(ech_agent *a, json_object *msg)
{
    json_object *calls = calls_of(msg);
    json_object *ev = event("message", a->turns), *list = json_object_new_array();
    json_object_object_add(ev, "role", json_object_new_string("assistant"));
    json_object *content = NULL;
    json_object_object_get_ex(msg, "content", &content);
    json_object_object_add(ev, "content", content ? json_object_get(content) : NULL);
    for (size_t i = 0; calls && i < json_object_array_length(calls); i++) {
        json_object *call = json_object_array_get_idx(calls, i);
        const char *id = str_of(call, "id");
        if (!id || !*id) {
            char buf[64];
            snprintf(buf, sizeof buf, "call_%ld_%zu", a->turns, i);
            json_object_object_add(call, "id", json_object_new_string(buf));
        }
        json_object *c = json_object_new_object(), *v;
        json_object_object_add(c, "id", json_object_new_string(str_of(call, "id")));
        v = call_field(call, "name");
        json_object_object_add(c, "name", v ? json_object_get(v) : json_object_new_string(""));
        v = call_field(call, "arguments");
        json_object_object_add(c, "arguments", v ? json_object_get(v) : json_object_new_string(""));
        json_object_array_add(list, c);
    }
    json_object_object_add(ev, "tool_calls", list);
    return emit(a, ev);
}

ech_status ech_agent_run(ech_agent *a, const char *task, char **final, ech_error *err)
{
    *final = NULL;
    size_t answered;
    json_object *open = open_calls(a, &answered);
    ech_status st;
    if (open && (st = run_calls(a, open, answered, err)) != ECH_OK)   /* left by a run cut short */
        return st;
    if (task && ((st = ech_agent_add_message(a, "user", task, err)) != ECH_OK || (st = ech_agent_save(a, err)) != ECH_OK))
        return st;
    json_object *tools = a->tools && ech_toolset_count(a->tools) ? ech_toolset_definitions(a->tools) : NULL;
    st = ECH_OK;
    for (int turn = 0; turn < a->max_turns; turn++) {
        ech_chat_request req = {.model = a->model, .messages_json = a->messages, .tools_json = tools,
                                .sampling = a->sampling};
        ech_chat_response resp;
        st = ech_client_chat(a->client, &req, NULL, NULL, &resp, err);
        if (st != ECH_OK)
            break;
        a->turns++;
        ech_usage usage = resp.usage;
        if (!resp.n_choices) {
            ech_chat_response_free(&resp);
            st = ech_error_set(err, ECH_ERR_FORMAT, "the model's answer has no choices");
            break;
        }
        json_object *msg = ech_chat_choice_message_json(&resp.choices[0]);
        ech_chat_response_free(&resp);
        if (!msg) {
            st = ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
            break;
        }
        json_object_array_add(a->messages, msg);
        int stop = announce(a, msg);   /* before saving: it gives calls their ids */
        if (usage.present && !stop) {
            json_object *ev = event("usage", a->turns);
            json_object_object_add(ev, "prompt_tokens", json_object_new_int64(usage.prompt_tokens));
            json_object_object_add(ev, "completion_tokens", json_object_new_int64(usage.completion_tokens));
            json_object_object_add(ev, "total_tokens", json_object_new_int64(usage.total_tokens));
            stop = emit(a, ev);
        }
        if ((st = ech_agent_save(a, err)) != ECH_OK)
            break;
        if (stop) {
            st = ech_error_set(err, ECH_ERR_CANCELED, "stopped");
            break;
        }
        if (!calls_of(msg)) {
            const char *content = str_of(msg, "content");
            *final = strdup(content ? content : "");
            json_object *ev = json_object_new_object();
            json_object_object_add(ev, "type", json_object_new_string("final"));
            json_object_object_add(ev, "turns", json_object_new_int64(a->turns));
            json_object_object_add(ev, "content", ech_json_string(*final, strlen(*final)));
            emit(a, ev);
            json_object_put(tools);
            return ECH_OK;
        }
        if ((st = run_calls(a, msg, 0, err)) != ECH_OK)
            break;
    }
    json_object_put(tools);
    if (st == ECH_OK)
        st = ech_error_set(err, ECH_ERR_RANGE, "no final answer after %d model calls (--max-turns)", a->max_turns);
    return st;
}
