/* mcp.c - Model Context Protocol client over stdio and Streamable HTTP. */
#include "config.h"

#include "agent/mcp.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent/proc.h"
#include "agent/redact.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "net/sse_parse.h"
#include "ech.h"

const char *const ech_mcp_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05", NULL};

enum {
    MAX_MESSAGE = 32 << 20,        /* one JSON-RPC message, bytes */
    MAX_STDERR_LINE = 4096,        /* longer stderr lines are logged in pieces */
    MAX_PAGES = 1000,
    DEFAULT_TIMEOUT_MS = 30000,
    DEFAULT_GRACE_MS = 2000,
    CANCEL_POST_MS = 2000,         /* HTTP: how long a notification may take */
};

struct ech_mcp {
    char *name;
    int http;
    int dead;                  /* the transport is gone; every call fails */
    char dead_why[200];
    long long next_id;
    char protocol[32];
    char *server_name;
    int grace_ms;
    /* stdio */
    ech_proc proc;
    ech_buf in;                /* stdout bytes not yet a whole line */
    ech_buf errline;           /* stderr bytes not yet a whole line */
    int log_fd;                /* stderr lines go here (-1: ech_log) */
    const ech_secrets *secrets;
    /* HTTP */
    CURL *curl;
    char *url;
    struct curl_slist *user_headers;
    char *session_id;
    /* the request in flight */
    long long want_id;
    int done;
    json_object *got;          /* its result (a reference we hold) */
    long long got_code;
    char *got_message;         /* set when it failed */
    json_object *replies;      /* HTTP: answers to server requests, sent after the transfer */
};

/* ---- JSON-RPC messages ----------------------------------------------------- */

static int id_ok(json_object *id, int allow_null)
{
    if (!id)
        return allow_null;
    return json_object_is_type(id, json_type_string) || json_object_is_type(id, json_type_int);
}

/* Classify `obj` (borrowed) into m; m->root is left alone. */
static ech_status classify(json_object *obj, ech_rpc_msg *m, ech_error *err)
{
    json_object *v, *id = NULL, *method = NULL, *result = NULL, *error = NULL;
    if (!json_object_is_type(obj, json_type_object))
        return ech_error_set(err, ECH_ERR_FORMAT, "a JSON-RPC message must be an object");
    if (!json_object_object_get_ex(obj, "jsonrpc", &v) || !json_object_is_type(v, json_type_string) ||
        strcmp(json_object_get_string(v), "2.0") != 0)
        return ech_error_set(err, ECH_ERR_FORMAT, "not JSON-RPC 2.0 (no \"jsonrpc\": \"2.0\")");
    int has_id = json_object_object_get_ex(obj, "id", &id);
    json_object_object_get_ex(obj, "method", &method);
    json_object_object_get_ex(obj, "result", &result);
    int has_result = json_object_object_get_ex(obj, "result", NULL);
    json_object_object_get_ex(obj, "error", &error);
    int has_error = json_object_object_get_ex(obj, "error", NULL);
    m->id = id;
    if (method) {
        if (!json_object_is_type(method, json_type_string))
            return ech_error_set(err, ECH_ERR_FORMAT, "\"method\" must be a string");
        if (has_result || has_error)
            return ech_error_set(err, ECH_ERR_FORMAT, "a request cannot carry a result or an error");
        m->method = json_object_get_string(method);
        json_object_object_get_ex(obj, "params", &m->params);
        if (!has_id) {
            m->kind = ECH_RPC_NOTIFICATION;
            m->id = NULL;
        } else if (!id_ok(id, 0)) {
            return ech_error_set(err, ECH_ERR_FORMAT, "a request id must be a string or an integer");
        } else {
            m->kind = ECH_RPC_REQUEST;
        }
        return ECH_OK;
    }
    if (has_result == has_error)
        return ech_error_set(err, ECH_ERR_FORMAT, "a response needs exactly one of \"result\" and \"error\"");
    if (!has_id || !id_ok(id, has_error))
        return ech_error_set(err, ECH_ERR_FORMAT, "a response id must be a string or an integer");
    if (has_result) {
        m->kind = ECH_RPC_RESULT;
        m->result = result;
        return ECH_OK;
    }
    if (!json_object_is_type(error, json_type_object))
        return ech_error_set(err, ECH_ERR_FORMAT, "\"error\" must be an object");
    m->kind = ECH_RPC_ERROR;
    m->error_message = "";
    if (json_object_object_get_ex(error, "code", &v) && json_object_is_type(v, json_type_int))
        m->error_code = json_object_get_int64(v);
    if (json_object_object_get_ex(error, "message", &v) && json_object_is_type(v, json_type_string))
        m->error_message = json_object_get_string(v);
    return ECH_OK;
}

static json_object *parse_json(const char *text, size_t n, ech_error *err)
{
    if (n > (size_t)MAX_MESSAGE || n > (size_t)INT32_MAX) {
        ech_error_set(err, ECH_ERR_RANGE, "a message of %zu bytes is too large", n);
        return NULL;
    }
    json_tokener *tok = json_tokener_new();
    if (!tok) {
        ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    json_object *j = json_tokener_parse_ex(tok, text, (int)n);
    enum json_tokener_error e = json_tokener_get_error(tok);
    /* the whole text must be one value; a value cut short or followed by more is an error */
    if (j && e == json_tokener_success && (size_t)json_tokener_get_parse_end(tok) < n) {
        size_t i = json_tokener_get_parse_end(tok);
        while (i < n && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
            i++;
        if (i < n) {
            json_object_put(j);
            j = NULL;
            ech_error_set(err, ECH_ERR_FORMAT, "trailing bytes after the JSON value");
        }
    } else if (!j || e != json_tokener_success) {
        json_object_put(j);
        j = NULL;
        ech_error_set(err, ECH_ERR_FORMAT, "not valid JSON: %s",
                      e == json_tokener_continue ? "unexpected end of input" : json_tokener_error_desc(e));
    }
    json_tokener_free(tok);
    return j;
}

ech_status ech_rpc_parse(const char *text, size_t n, ech_rpc_msg *m, ech_error *err)
{
    memset(m, 0, sizeof *m);
    json_object *j = parse_json(text, n, err);
    if (!j)
        return err ? err->code : ECH_ERR_FORMAT;
    ech_status st = classify(j, m, err);
    if (st != ECH_OK) {
        json_object_put(j);
        memset(m, 0, sizeof *m);
        return st;
    }
    m->root = j;
    return ECH_OK;
}

void ech_rpc_msg_free(ech_rpc_msg *m)
{
    json_object_put(m->root);
    memset(m, 0, sizeof *m);
}

/* ---- content ---------------------------------------------------------------- */

static const char *str_field(json_object *o, const char *key)
{
    json_object *v;
    if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

static void render_item(ech_buf *b, json_object *item)
{
    const char *type = str_field(item, "type");
    const char *s;
    if (!type) {
        ech_buf_puts(b, "[content without a type]");
    } else if (strcmp(type, "text") == 0) {
        ech_buf_puts(b, (s = str_field(item, "text")) ? s : "");
    } else if (strcmp(type, "image") == 0 || strcmp(type, "audio") == 0) {
        const char *data = str_field(item, "data"), *mime = str_field(item, "mimeType");
        size_t n = data ? strlen(data) / 4 * 3 : 0;   /* base64: about 3 bytes per 4 characters */
        ech_buf_printf(b, "[%s: %s, about %zu bytes]", type, mime ? mime : "unknown type", n);
    } else if (strcmp(type, "resource_link") == 0) {
        const char *name = str_field(item, "name"), *uri = str_field(item, "uri");
        ech_buf_printf(b, "[resource link: %s <%s>]", name ? name : "", uri ? uri : "");
    } else if (strcmp(type, "resource") == 0) {
        json_object *r = NULL;
        json_object_object_get_ex(item, "resource", &r);
        const char *uri = str_field(r, "uri"), *text = str_field(r, "text"), *mime = str_field(r, "mimeType");
        if (text)
            ech_buf_printf(b, "[resource %s]\n%s", uri ? uri : "", text);
        else
            ech_buf_printf(b, "[resource %s: %s, binary]", uri ? uri : "", mime ? mime : "unknown type");
    } else {
        ech_buf_printf(b, "[%s content]", type);
    }
}

char *ech_mcp_render_content(json_object *result)
{
    ech_buf b = {0};
    json_object *content = NULL, *sc = NULL;
    json_object_object_get_ex(result, "content", &content);
    size_t n = json_object_is_type(content, json_type_array) ? json_object_array_length(content) : 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            ech_buf_putc(&b, '\n');
        render_item(&b, json_object_array_get_idx(content, i));
    }
    if (!n && json_object_object_get_ex(result, "structuredContent", &sc))
        ech_buf_puts(&b, ech_json_line(sc));
    return ech_buf_steal(&b);
}

void ech_mcp_result_free(ech_mcp_result *res)
{
    free(res->text);
    res->text = NULL;
}

/* ---- dispatch --------------------------------------------------------------------- */

static json_object *rpc_new(json_object *id, const char *method)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
    if (id)
        json_object_object_add(o, "id", json_object_get(id));
    if (method)
        json_object_object_add(o, "method", json_object_new_string(method));
    return o;
}

static ech_status send_msg(ech_mcp *m, json_object *msg, long long deadline, ech_error *err);

static void answer_request(ech_mcp *m, const ech_rpc_msg *r)
{
    json_object *reply = rpc_new(r->id, NULL);
    if (strcmp(r->method, "ping") == 0) {
        json_object_object_add(reply, "result", json_object_new_object());
    } else {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "code", json_object_new_int(-32601));
        json_object_object_add(e, "message", json_object_new_string("Method not found"));
        json_object_object_add(reply, "error", e);
        ech_log(ECH_LOG_DEBUG, "mcp %s: declined a '%s' request", m->name, r->method);
    }
    if (m->http) {
        if (!m->replies)
            m->replies = json_object_new_array();
        json_object_array_add(m->replies, reply);
        return;
    }
    send_msg(m, reply, ech_now_ms() + 5000, NULL);
    json_object_put(reply);
}

static void handle_one(ech_mcp *m, json_object *obj)
{
    ech_rpc_msg r = {0};
    ech_error err;
    if (classify(obj, &r, &err) != ECH_OK) {
        ech_log(ECH_LOG_WARN, "mcp %s: ignoring a bad message: %s", m->name, err.msg);
        return;
    }
    switch (r.kind) {
    case ECH_RPC_RESULT:
    case ECH_RPC_ERROR:
        if (!m->done && r.id && json_object_is_type(r.id, json_type_int) && json_object_get_int64(r.id) == m->want_id) {
            m->done = 1;
            if (r.kind == ECH_RPC_RESULT) {
                m->got = json_object_get(r.result);
            } else {
                m->got_code = r.error_code;
                m->got_message = strdup(r.error_message);
            }
        } else {
            ech_log(ECH_LOG_DEBUG, "mcp %s: ignoring an answer to a request no longer waited for", m->name);
        }
        break;
    case ECH_RPC_REQUEST:
        answer_request(m, &r);
        break;
    case ECH_RPC_NOTIFICATION:
        if (strcmp(r.method, "notifications/message") == 0) {
            json_object *data = NULL;
            json_object_object_get_ex(r.params, "data", &data);
            ech_log(ECH_LOG_INFO, "mcp %s: %s", m->name,
                    json_object_is_type(data, json_type_string) ? json_object_get_string(data)
                                                                 : data ? ech_json_line(data) : "");
        } else {
            ech_log(ECH_LOG_DEBUG, "mcp %s: notification %s", m->name, r.method);
        }
        break;
    }
}

/* One message or a batch of them, as text. */
static void handle_text(ech_mcp *m, const char *text, size_t n)
{
    ech_error err;
    json_object *j = parse_json(text, n, &err);
    if (!j) {
        ech_log(ECH_LOG_WARN, "mcp %s: ignoring a bad message: %s", m->name, err.msg);
        return;
    }
    if (json_object_is_type(j, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(j); i++)
            handle_one(m, json_object_array_get_idx(j, i));
    } else {
        handle_one(m, j);
    }
    json_object_put(j);
}

/* ---- stdio transport -------------------------------------------------------------- */

static void mark_dead(ech_mcp *m, const char *why)
{
    if (!m->dead)
        snprintf(m->dead_why, sizeof m->dead_why, "%s", why);
    m->dead = 1;
}

/* One line the server wrote on stderr: to the log file (secrets replaced)
 * or the log callback. */
static void stderr_line(ech_mcp *m, const char *p, size_t n)
{
    if (m->log_fd < 0) {
        ech_log(ECH_LOG_INFO, "mcp %s: %.*s", m->name, (int)n, p);
        return;
    }
    size_t rn = n;
    char *r = m->secrets ? ech_secrets_redact(m->secrets, p, n, &rn) : NULL;
    const char *out = r ? r : p;
    /* a log file is best effort: a full disk must not stop the agent */
    if (write(m->log_fd, out, rn) < 0 || write(m->log_fd, "\n", 1) < 0)
        ech_log(ECH_LOG_DEBUG, "mcp %s: cannot write the log: %s", m->name, strerror(errno));
    free(r);
}

static void log_stderr_lines(ech_mcp *m, int flush)
{
    ech_buf *b = &m->errline;
    size_t start = 0;
    if (!b->len)
        return;
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] == '\n' || i - start >= MAX_STDERR_LINE) {
            size_t end = i;
            if (end > start && b->data[end - 1] == '\r')
                end--;
            stderr_line(m, b->data + start, end - start);
            start = b->data[i] == '\n' ? i + 1 : i;
        }
    }
    if (flush && start < b->len) {
        stderr_line(m, b->data + start, b->len - start);
        start = b->len;
    }
    memmove(b->data, b->data + start, b->len - start);
    b->len -= start;
}

static void read_stderr(ech_mcp *m)
{
    char chunk[4096];
    ssize_t r = read(m->proc.err_fd, chunk, sizeof chunk);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (r <= 0) {
        log_stderr_lines(m, 1);
        close(m->proc.err_fd);
        m->proc.err_fd = -1;
        return;
    }
    ech_buf_append(&m->errline, chunk, (size_t)r);
    log_stderr_lines(m, 0);
}

/* What stderr holds right now (it is non-blocking). */
static void drain_stderr(ech_mcp *m)
{
    for (int i = 0; i < 64 && m->proc.err_fd >= 0; i++) {
        struct pollfd pf = {.fd = m->proc.err_fd, .events = POLLIN};
        if (poll(&pf, 1, 0) <= 0)
            break;
        read_stderr(m);
    }
}

/* The server closed its stdout: say how it ended. */
static void stdout_closed(ech_mcp *m)
{
    char why[160], st[80];
    if (ech_proc_reap(&m->proc, 1000))
        snprintf(why, sizeof why, "the MCP server '%s' exited (%s)", m->name,
                 ech_proc_describe_status(m->proc.status, st, sizeof st));
    else
        snprintf(why, sizeof why, "the MCP server '%s' closed its output", m->name);
    drain_stderr(m);
    mark_dead(m, why);
}

/* Read what stdout has; with `dispatch`, handle every whole line. */
static void read_stdout(ech_mcp *m, int dispatch)
{
    char chunk[65536];
    ssize_t r = read(m->proc.out_fd, chunk, sizeof chunk);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (r <= 0) {
        stdout_closed(m);
        return;
    }
    if (ech_buf_append(&m->in, chunk, (size_t)r) != ECH_OK) {
        mark_dead(m, "out of memory");
        return;
    }
    if (!dispatch)
        return;
    size_t start = 0;
    for (;;) {
        char *nl = memchr(m->in.data + start, '\n', m->in.len - start);
        if (!nl)
            break;
        size_t end = (size_t)(nl - m->in.data), e = end;
        if (e > start && m->in.data[e - 1] == '\r')
            e--;
        if (e > start)
            handle_text(m, m->in.data + start, e - start);
        start = end + 1;
        if (m->done)
            break;   /* the rest waits for the next request */
    }
    memmove(m->in.data, m->in.data + start, m->in.len - start);
    m->in.len -= start;
    if (m->in.len > (size_t)MAX_MESSAGE) {
        char why[120];
        snprintf(why, sizeof why, "the MCP server '%s' sent a message over %d MiB", m->name, MAX_MESSAGE >> 20);
        mark_dead(m, why);
    }
}

/* Lines already read may hold the answer: handle them before waiting. */
static void handle_buffered(ech_mcp *m)
{
    size_t start = 0;
    if (!m->in.len)
        return;
    while (!m->done) {
        char *nl = memchr(m->in.data + start, '\n', m->in.len - start);
        if (!nl)
            break;
        size_t end = (size_t)(nl - m->in.data), e = end;
        if (e > start && m->in.data[e - 1] == '\r')
            e--;
        if (e > start)
            handle_text(m, m->in.data + start, e - start);
        start = end + 1;
    }
    if (start) {
        memmove(m->in.data, m->in.data + start, m->in.len - start);
        m->in.len -= start;
    }
}

/* Poll stdout and stderr (and stdin for writing when `want_write`) until
 * something happens or `deadline` (0: none); returns 1 if stdin is writable. */
static int stdio_poll(ech_mcp *m, long long deadline, int want_write, int dispatch)
{
    struct pollfd pf[3];
    int np = 0, oi = -1, ei = -1, ii = -1;
    if (m->proc.out_fd >= 0)
        oi = np, pf[np++] = (struct pollfd){.fd = m->proc.out_fd, .events = POLLIN};
    if (m->proc.err_fd >= 0)
        ei = np, pf[np++] = (struct pollfd){.fd = m->proc.err_fd, .events = POLLIN};
    if (want_write && m->proc.in_fd >= 0)
        ii = np, pf[np++] = (struct pollfd){.fd = m->proc.in_fd, .events = POLLOUT};
    long long wait = 1000;
    if (deadline) {
        long long left = deadline - ech_now_ms();
        wait = left < 0 ? 0 : left < wait ? left : wait;
    }
    if (poll(pf, (nfds_t)np, (int)wait) <= 0)
        return 0;
    if (ei >= 0 && pf[ei].revents)
        read_stderr(m);
    if (oi >= 0 && pf[oi].revents)
        read_stdout(m, dispatch);
    return ii >= 0 && pf[ii].revents != 0;
}

static ech_status send_stdio(ech_mcp *m, const char *line, size_t n, long long deadline, ech_error *err)
{
    size_t done = 0;
    while (done < n) {
        if (m->dead)
            return ech_error_set(err, ECH_ERR_IO, "%s", m->dead_why);
        if (deadline && ech_now_ms() >= deadline)
            return ech_error_set(err, ECH_ERR_CANCELED, "the MCP server '%s' did not read its input in time", m->name);
        long w = ech_proc_write_some(&m->proc, line + done, n - done);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EPIPE) {
            stdout_closed(m);
            return ech_error_set(err, ECH_ERR_IO, "%s", m->dead_why);
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return ech_error_set(err, ECH_ERR_IO, "cannot write to the MCP server '%s': %s", m->name, strerror(errno));
        stdio_poll(m, deadline, 1, 0);   /* read while we wait, so neither side blocks the other */
    }
    return ECH_OK;
}

/* ---- Streamable HTTP transport ------------------------------------------------------- */

typedef struct http_xfer {
    ech_mcp *m;
    int is_sse;
    ech_sse_parser sse;
    ech_buf body;
    int too_big;
    int stopped;          /* we ended the transfer: the answer is in */
} http_xfer;

static size_t on_http_header(char *p, size_t size, size_t nmemb, void *user)
{
    http_xfer *x = user;
    size_t n = size * nmemb;
    size_t k = 0;
    while (k < n && p[k] != ':')
        k++;
    if (k == n)
        return n;
    const char *v = p + k + 1;
    size_t vl = n - k - 1;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (k == 12 && strncasecmp(p, "content-type", 12) == 0) {
        x->is_sse = vl >= 17 && strncasecmp(v, "text/event-stream", 17) == 0;
    } else if (k == 14 && strncasecmp(p, "mcp-session-id", 14) == 0 && vl && vl < 1024) {
        char *sid = strndup(v, vl);
        if (sid) {
            free(x->m->session_id);
            x->m->session_id = sid;
        }
    }
    return n;
}

static int on_sse_event(void *user, const ech_sse_message *e)
{
    http_xfer *x = user;
    if (strcmp(e->event, "message") == 0 && e->data_len)   /* MCP sends its messages as "message" events */
        handle_text(x->m, e->data, e->data_len);
    return x->m->done;
}

static size_t on_http_body(char *p, size_t size, size_t nmemb, void *user)
{
    http_xfer *x = user;
    size_t n = size * nmemb;
    if (x->is_sse) {
        ech_status st = ech_sse_parser_feed(&x->sse, p, n, on_sse_event, x, NULL);
        if (st == ECH_ERR_CANCELED) {
            x->stopped = 1;   /* our answer came; the stream may stay open */
            return 0;
        }
        if (st != ECH_OK) {
            x->too_big = 1;
            return 0;
        }
        return n;
    }
    if (x->body.len + n > (size_t)MAX_MESSAGE || ech_buf_append(&x->body, p, n) != ECH_OK) {
        x->too_big = 1;
        return 0;
    }
    return n;
}

/* POST one message; `deadline` 0 means none.  Answers in the response are
 * handled as they come. */
static ech_status http_post(ech_mcp *m, const char *method_verb, json_object *msg, long long deadline,
                            ech_error *err)
{
    CURL *c = m->curl;
    curl_easy_reset(c);
    struct curl_slist *h = NULL, *t;
    char line[1200];
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Accept: application/json, text/event-stream");
    if (m->session_id) {
        snprintf(line, sizeof line, "Mcp-Session-Id: %s", m->session_id);
        h = curl_slist_append(h, line);
    }
    if (m->protocol[0]) {
        snprintf(line, sizeof line, "MCP-Protocol-Version: %s", m->protocol);
        h = curl_slist_append(h, line);
    }
    for (t = m->user_headers; t; t = t->next)
        h = curl_slist_append(h, t->data);
    http_xfer x = {.m = m};
    ech_sse_parser_init(&x.sse, MAX_MESSAGE);
    char errbuf[CURL_ERROR_SIZE] = "";
    long timeout = 0;
    if (deadline) {
        long long left = deadline - ech_now_ms();
        timeout = left < 1 ? 1 : (long)left;
    }
    curl_easy_setopt(c, CURLOPT_URL, m->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_http_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_http_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "echostra-mcp");
    if (msg) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, ech_json_line(msg));
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method_verb);
        curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    ech_status st = ECH_OK;
    if (x.stopped) {
        st = ECH_OK;
    } else if (x.too_big) {
        st = ech_error_set(err, ECH_ERR_RANGE, "the MCP server '%s' sent a message over %d MiB or a bad stream",
                           m->name, MAX_MESSAGE >> 20);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        st = ech_error_set(err, ECH_ERR_CANCELED, "the MCP server '%s' timed out", m->name);
    } else if (rc != CURLE_OK) {
        st = ech_error_set(err, ECH_ERR_NET, "the MCP server '%s'%s%s: %s", m->name,
                           strcmp(m->name, m->url) ? " at " : "", strcmp(m->name, m->url) ? m->url : "",
                           errbuf[0] ? errbuf : curl_easy_strerror(rc));
    } else if (status == 404 && m->session_id && msg) {
        st = ech_error_set(err, ECH_ERR_NOT_FOUND, "the MCP server '%s' ended the session (HTTP 404)", m->name);
    } else if (status >= 400 || status < 200) {
        int k = (int)(x.body.len < 200 ? x.body.len : 200);
        st = ech_error_set(err, ECH_ERR_HTTP, "the MCP server '%s' answered HTTP %ld%s%.*s", m->name, status,
                           k ? ": " : "", k, x.body.data ? x.body.data : "");
    } else if (!x.is_sse && x.body.len) {
        handle_text(m, x.body.data, x.body.len);
    }
    ech_sse_parser_free(&x.sse);
    ech_buf_free(&x.body);
    /* answers to requests the server made meanwhile */
    json_object *replies = m->replies;
    m->replies = NULL;
    for (size_t i = 0; replies && i < json_object_array_length(replies); i++)
        http_post(m, "POST", json_object_array_get_idx(replies, i), ech_now_ms() + CANCEL_POST_MS, NULL);
    json_object_put(replies);
    return st;
}

/* ---- requests ---------------------------------------------------------------------------- */

static ech_status send_msg(ech_mcp *m, json_object *msg, long long deadline, ech_error *err)
{
    if (m->http)
        return http_post(m, "POST", msg, deadline, err);
    const char *s = ech_json_line(msg);   /* one line: json-c escapes newlines in strings */
    size_t n = strlen(s);
    char *line = malloc(n + 1);
    if (!line)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    memcpy(line, s, n);
    line[n] = '\n';
    ech_status st = send_stdio(m, line, n + 1, deadline, err);
    free(line);
    return st;
}

static void notify(ech_mcp *m, const char *method, json_object *params)
{
    json_object *msg = rpc_new(NULL, method);
    if (params)
        json_object_object_add(msg, "params", params);
    send_msg(m, msg, ech_now_ms() + CANCEL_POST_MS, NULL);
    json_object_put(msg);
}

static void reset_answer(ech_mcp *m)
{
    m->done = 0;
    json_object_put(m->got);
    m->got = NULL;
    free(m->got_message);
    m->got_message = NULL;
    m->got_code = 0;
}

/* Send request `method` (params taken over) and wait for its answer; the
 * result is a new reference.  `timeout_ms` 0: no limit. */
static ech_status rpc_call(ech_mcp *m, const char *method, json_object *params, int timeout_ms,
                           json_object **result, ech_error *err)
{
    *result = NULL;
    if (m->dead) {
        json_object_put(params);
        return ech_error_set(err, ECH_ERR_IO, "%s", m->dead_why);
    }
    long long id = ++m->next_id;
    json_object *idj = json_object_new_int64(id);
    json_object *msg = rpc_new(idj, method);
    json_object_put(idj);
    if (params)
        json_object_object_add(msg, "params", params);
    reset_answer(m);
    m->want_id = id;
    long long start = ech_now_ms();
    long long deadline = timeout_ms > 0 ? start + timeout_ms : 0;
    ech_status st;
    if (!m->http) {
        handle_buffered(m);
        st = send_msg(m, msg, deadline, err);
        while (st == ECH_OK && !m->done) {
            if (m->dead)
                st = ech_error_set(err, ECH_ERR_IO, "%s during %s", m->dead_why, method);
            else if (deadline && ech_now_ms() >= deadline)
                st = ech_error_set(err, ECH_ERR_CANCELED, "the MCP server '%s' timed out", m->name);
            else if (stdio_poll(m, deadline, 0, 1), !m->done && !m->dead && ech_proc_reap(&m->proc, 0)) {
                /* it exited, yet something it left holds stdout open */
                stdio_poll(m, ech_now_ms() + 50, 0, 1);
                if (!m->done)
                    stdout_closed(m);
            }
        }
    } else {
        st = send_msg(m, msg, deadline, err);
        if (st == ECH_OK && !m->done)
            st = ech_error_set(err, ECH_ERR_FORMAT, "the MCP server '%s' closed its answer to %s without a result",
                               m->name, method);
    }
    json_object_put(msg);
    if (st == ECH_ERR_CANCELED) {
        ech_error_set(err, ECH_ERR_CANCELED, "the MCP server '%s' did not answer %s within %d ms", m->name,
                      method, timeout_ms);
        if (strcmp(method, "initialize") != 0) {
            json_object *p = json_object_new_object();
            json_object_object_add(p, "requestId", json_object_new_int64(id));
            json_object_object_add(p, "reason", json_object_new_string("timed out"));
            notify(m, "notifications/cancelled", p);
        }
    }
    m->want_id = 0;
    if (st != ECH_OK) {
        reset_answer(m);
        return st;
    }
    if (m->got_message) {
        st = ech_error_set(err, ECH_ERR_INVALID, "the MCP server '%s' refused %s: %s (code %lld)", m->name, method,
                           m->got_message, m->got_code);
        reset_answer(m);
        return st;
    }
    *result = m->got;
    m->got = NULL;
    return ECH_OK;
}

/* ---- the session ----------------------------------------------------------------------- */

static ech_status handshake(ech_mcp *m, int timeout_ms, ech_error *err)
{
    json_object *p = json_object_new_object(), *ci = json_object_new_object();
    json_object_object_add(p, "protocolVersion", json_object_new_string(ech_mcp_versions[0]));
    json_object_object_add(p, "capabilities", json_object_new_object());
    json_object_object_add(ci, "name", json_object_new_string("echostra"));
    json_object_object_add(ci, "version", json_object_new_string(ech_version()));
    json_object_object_add(p, "clientInfo", ci);
    json_object *res;
    ech_status st = rpc_call(m, "initialize", p, timeout_ms, &res, err);
    if (st != ECH_OK)
        return st;
    const char *v = str_field(res, "protocolVersion");
    int known = 0;
    for (int i = 0; v && ech_mcp_versions[i]; i++)
        known |= strcmp(v, ech_mcp_versions[i]) == 0;
    if (!known) {
        st = ech_error_set(err, ECH_ERR_UNSUPPORTED,
                           "the MCP server '%s' speaks protocol version %s; we speak 2024-11-05 to 2025-11-25",
                           m->name, v ? v : "(none given)");
        json_object_put(res);
        return st;
    }
    snprintf(m->protocol, sizeof m->protocol, "%s", v);
    json_object *info = NULL;
    json_object_object_get_ex(res, "serverInfo", &info);
    const char *sn = str_field(info, "name");
    m->server_name = strdup(sn ? sn : "");
    json_object_put(res);
    notify(m, "notifications/initialized", NULL);
    ech_log(ECH_LOG_DEBUG, "mcp %s: connected (%s, protocol %s)", m->name, m->server_name, m->protocol);
    return m->dead ? ech_error_set(err, ECH_ERR_IO, "%s", m->dead_why) : ECH_OK;
}

ech_status ech_mcp_connect(const ech_mcp_opts *o, ech_mcp **out, ech_error *err)
{
    *out = NULL;
    ech_mcp *m = calloc(1, sizeof *m);
    if (!m)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    m->proc = (ech_proc){.in_fd = -1, .out_fd = -1, .err_fd = -1};
    m->log_fd = -1;
    m->name = strdup(o->name ? o->name : o->url ? o->url : o->argv && o->argv[0] ? o->argv[0] : "mcp");
    m->grace_ms = o->stop_grace_ms > 0 ? o->stop_grace_ms : DEFAULT_GRACE_MS;
    ech_status st;
    if (o->url) {
        m->http = 1;
        m->url = strdup(o->url);
        if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0) {
            st = ech_error_set(err, ECH_ERR_INVALID, "MCP URL '%s': only http:// and https:// are supported", o->url);
            goto fail;
        }
        m->curl = curl_easy_init();
        if (!m->curl) {
            st = ech_error_set(err, ECH_ERR_NOMEM, "cannot start libcurl");
            goto fail;
        }
        for (int i = 0; o->headers && o->headers[i]; i++)
            m->user_headers = curl_slist_append(m->user_headers, o->headers[i]);
    } else {
        m->log_fd = o->stderr_fd;
        m->secrets = o->secrets;
        st = ech_proc_spawn(o->argv, o->env, -1, &m->proc, err);   /* stderr read by us, line by line */
        if (st != ECH_OK)
            goto fail;
        fcntl(m->proc.out_fd, F_SETFL, fcntl(m->proc.out_fd, F_GETFL) | O_NONBLOCK);
        if (m->proc.err_fd >= 0)
            fcntl(m->proc.err_fd, F_SETFL, fcntl(m->proc.err_fd, F_GETFL) | O_NONBLOCK);
    }
    st = handshake(m, o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS, err);
    if (st != ECH_OK)
        goto fail;
    *out = m;
    return ECH_OK;
fail:
    ech_mcp_close(m);
    return st;
}

const char *ech_mcp_protocol(const ech_mcp *m) { return m->protocol; }
const char *ech_mcp_server_name(const ech_mcp *m) { return m->server_name ? m->server_name : ""; }

ech_status ech_mcp_list_tools(ech_mcp *m, json_object **tools, ech_error *err)
{
    *tools = NULL;
    json_object *all = json_object_new_array();
    char *cursor = NULL;
    ech_status st = ECH_OK;
    for (int page = 0;; page++) {
        if (page == MAX_PAGES) {
            st = ech_error_set(err, ECH_ERR_RANGE, "the MCP server '%s' listed more than %d pages of tools",
                               m->name, MAX_PAGES);
            break;
        }
        json_object *p = json_object_new_object(), *res;
        if (cursor)
            json_object_object_add(p, "cursor", json_object_new_string(cursor));
        st = rpc_call(m, "tools/list", p, DEFAULT_TIMEOUT_MS, &res, err);
        if (st != ECH_OK)
            break;
        json_object *list = NULL;
        json_object_object_get_ex(res, "tools", &list);
        if (!json_object_is_type(list, json_type_array)) {
            json_object_put(res);
            st = ech_error_set(err, ECH_ERR_FORMAT, "the MCP server '%s' answered tools/list without a tools array",
                               m->name);
            break;
        }
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            json_object *t = json_object_array_get_idx(list, i);
            if (!str_field(t, "name") || !str_field(t, "name")[0]) {
                ech_log(ECH_LOG_WARN, "mcp %s: skipping a tool without a name", m->name);
                continue;
            }
            json_object_array_add(all, json_object_get(t));
        }
        const char *next = str_field(res, "nextCursor");
        int same = next && cursor && strcmp(next, cursor) == 0;
        free(cursor);
        cursor = next && *next && !same ? strdup(next) : NULL;
        json_object_put(res);
        if (same)
            ech_log(ECH_LOG_WARN, "mcp %s: tools/list repeated its cursor; stopping there", m->name);
        if (!cursor)
            break;
    }
    free(cursor);
    if (st != ECH_OK) {
        json_object_put(all);
        return st;
    }
    *tools = all;
    return ECH_OK;
}

ech_status ech_mcp_call_tool(ech_mcp *m, const char *name, json_object *arguments, int timeout_ms,
                             ech_mcp_result *res, ech_error *err)
{
    memset(res, 0, sizeof *res);
    json_object *p = json_object_new_object(), *r;
    json_object_object_add(p, "name", json_object_new_string(name));
    json_object_object_add(p, "arguments", arguments ? json_object_get(arguments) : json_object_new_object());
    ech_status st = rpc_call(m, "tools/call", p, timeout_ms, &r, err);
    if (st != ECH_OK)
        return st;
    json_object *ie;
    res->is_error = json_object_object_get_ex(r, "isError", &ie) && json_object_is_type(ie, json_type_boolean) &&
                    json_object_get_boolean(ie);
    res->text = ech_mcp_render_content(r);
    json_object_put(r);
    return ECH_OK;
}

void ech_mcp_close(ech_mcp *m)
{
    if (!m)
        return;
    if (m->http) {
        if (m->session_id && m->curl)
            http_post(m, "DELETE", NULL, ech_now_ms() + CANCEL_POST_MS, NULL);
        curl_easy_cleanup(m->curl);
        curl_slist_free_all(m->user_headers);
    } else {
        if (m->proc.pid > 0 || m->proc.in_fd >= 0) {
            if (m->proc.in_fd >= 0) {
                close(m->proc.in_fd);   /* the spec's way to ask a stdio server to exit */
                m->proc.in_fd = -1;
            }
            /* let it go on its own, forwarding what it says on the way out */
            long long until = ech_now_ms() + m->grace_ms;
            while (m->proc.pid > 0 && !ech_proc_reap(&m->proc, 0) && ech_now_ms() < until) {
                if (m->proc.err_fd < 0) {
                    ech_proc_reap(&m->proc, 50);
                    continue;
                }
                struct pollfd pf = {.fd = m->proc.err_fd, .events = POLLIN};
                if (poll(&pf, 1, 50) > 0)
                    read_stderr(m);
            }
            drain_stderr(m);
            ech_proc_stop(&m->proc, 0, m->grace_ms);
        }
        if (m->errline.len)
            log_stderr_lines(m, 1);
    }
    reset_answer(m);
    json_object_put(m->replies);
    ech_buf_free(&m->in);
    ech_buf_free(&m->errline);
    free(m->session_id);
    free(m->url);
    free(m->server_name);
    free(m->name);
    free(m);
}
