/* client.c - an OpenAI-compatible HTTP client over one libcurl easy handle.
 *
 * Each request is one "exchange": the body goes out, response headers are
 * read as they arrive (status, x-request-id, retry-after), and the body is
 * either collected (JSON replies, error bodies) or, for a 2xx stream, fed
 * straight through the SSE decoder into the stream accumulator, which calls
 * the user's callback.  Failures that are worth another try (connection
 * errors, 408/409/429/5xx) are retried with jittered exponential backoff,
 * except a stream that has already delivered bytes.
 */
#include "config.h"
#include "net/client.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "core/buf.h"
#include "core/json.h"
#include "ech.h"
#include "net/chat_result.h"
#include "net/sse_parse.h"

enum {
    MAX_BODY = 256 << 20,        /* a whole JSON reply (embeddings can be large) */
    MAX_ERROR_BODY = 1 << 20,    /* an error body: only its message matters */
    HEADER_LINE_MAX = 1024,
};

#define DEFAULT_BASE_URL "http://127.0.0.1:8080/v1"
#define DEFAULT_TIMEOUT_S 600.0
#define DEFAULT_CONNECT_TIMEOUT_S 5.0
#define DEFAULT_RETRIES 2
#define DEFAULT_RETRY_MIN_S 0.5
#define DEFAULT_RETRY_MAX_S 8.0
#define MAX_RETRY_AFTER_S 60.0   /* a longer retry-after is not waited for: we back off as usual */

struct ech_client {
    CURL *curl;
    char *base_url;
    char *api_key;
    char *model;
    double timeout_s, connect_timeout_s, retry_min_s, retry_max_s;
    int max_retries;
    struct curl_slist *extra;    /* the caller's headers */
    uint64_t rng;
    ech_client_error last;
    char curl_msg[CURL_ERROR_SIZE];
};

/* ---- process-wide libcurl initialisation ---------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init_once(void) { curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- small helpers ------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    if (!(s > 0))
        return;
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static uint64_t next_rand(ech_client *c)
{
    uint64_t x = c->rng;   /* xorshift64: jitter needs no quality, only spread */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return c->rng = x;
}

static const char *env_nonempty(const char *a, const char *b)
{
    const char *v = getenv(a);
    if (v && *v)
        return v;
    v = b ? getenv(b) : NULL;
    return v && *v ? v : NULL;
}

static int has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static char *dup_or_null(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *ok = false;
    return d;
}

/* ---- the client ------------------------------------------------------------ */

ech_status ech_client_new(const ech_client_opts *o, ech_client **out, ech_error *err)
{
    static const ech_client_opts none = {.max_retries = -1};
    if (!out)
        return ech_error_set(err, ECH_ERR_INVALID, "ech_client_new: out is NULL");
    *out = NULL;
    if (!o)
        o = &none;
    const char *base = o->base_url ? o->base_url : env_nonempty("ECH_BASE_URL", "OPENAI_BASE_URL");
    if (!base)
        base = DEFAULT_BASE_URL;
    if (strncasecmp(base, "http://", 7) != 0 && strncasecmp(base, "https://", 8) != 0)
        return ech_error_set(err, ECH_ERR_INVALID, "base URL is not http(s)://...: %s", base);
    if (has_ctl(base))
        return ech_error_set(err, ECH_ERR_INVALID, "the base URL contains control characters");
    const char *key = o->api_key ? o->api_key : env_nonempty("ECH_API_KEY", "OPENAI_API_KEY");
    if (key && has_ctl(key))
        return ech_error_set(err, ECH_ERR_INVALID, "the API key contains control characters");
    const char *model = o->model ? o->model : env_nonempty("ECH_MODEL", NULL);
    if (o->timeout_s < 0 || o->connect_timeout_s < 0 || o->retry_min_s < 0 || o->retry_max_s < 0 ||
        o->max_retries < -1 || o->max_retries > 100)
        return ech_error_set(err, ECH_ERR_INVALID, "negative timeout or backoff, or retries out of 0..100");
    for (size_t i = 0; i < o->n_headers; i++)
        if (!o->headers[i] || !strchr(o->headers[i], ':') || has_ctl(o->headers[i]))
            return ech_error_set(err, ECH_ERR_INVALID, "extra header %zu is not \"Name: value\"", i);

    if (pthread_once(&curl_once, curl_init_once) != 0 || curl_init_result != CURLE_OK)
        return ech_error_set(err, ECH_ERR_NET, "cannot initialise libcurl: %s", curl_easy_strerror(curl_init_result));
    ech_client *c = calloc(1, sizeof *c);
    if (!c)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    bool ok = true;
    c->base_url = dup_or_null(base, &ok);
    c->api_key = dup_or_null(key, &ok);
    c->model = dup_or_null(model, &ok);
    if (ok && c->base_url) {
        size_t n = strlen(c->base_url);
        while (n && c->base_url[n - 1] == '/')
            c->base_url[--n] = '\0';
    }
    for (size_t i = 0; ok && i < o->n_headers; i++) {
        struct curl_slist *grown = curl_slist_append(c->extra, o->headers[i]);
        if (!grown)
            ok = false;
        else
            c->extra = grown;
    }
    c->curl = ok ? curl_easy_init() : NULL;
    if (!ok || !c->curl) {
        ech_client_free(c);
        return ech_error_set(err, ok ? ECH_ERR_NET : ECH_ERR_NOMEM, ok ? "cannot create a libcurl handle" : "out of memory");
    }
    c->timeout_s = o->timeout_s > 0 ? o->timeout_s : DEFAULT_TIMEOUT_S;
    c->connect_timeout_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : DEFAULT_CONNECT_TIMEOUT_S;
    c->max_retries = o->max_retries >= 0 ? o->max_retries : DEFAULT_RETRIES;
    c->retry_min_s = o->retry_min_s > 0 ? o->retry_min_s : DEFAULT_RETRY_MIN_S;
    c->retry_max_s = o->retry_max_s > 0 ? o->retry_max_s : DEFAULT_RETRY_MAX_S;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)c;
    if (!c->rng)
        c->rng = 0x9E3779B97F4A7C15ull;
    *out = c;
    return ECH_OK;
}

void ech_client_free(ech_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->extra);
    free(c->base_url);
    if (c->api_key) {   /* do not leave the key in freed memory */
        memset(c->api_key, 0, strlen(c->api_key));
        free(c->api_key);
    }
    free(c->model);
    free(c);
}

const char *ech_client_base_url(const ech_client *c) { return c->base_url; }

const ech_client_error *ech_client_last_error(const ech_client *c) { return &c->last; }

/* Truncation is fine here: messages are for people. */
static void set_msg(ech_client_error *ce, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_msg(ech_client_error *ce, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ce->message, sizeof ce->message, fmt, ap);
    va_end(ap);
}

static ech_client_error_kind kind_for_status(long st)
{
    switch (st) {
    case 400: return ECH_CLIENT_BAD_REQUEST;
    case 401: return ECH_CLIENT_AUTH;
    case 403: return ECH_CLIENT_PERMISSION;
    case 404: return ECH_CLIENT_NOT_FOUND;
    case 409: return ECH_CLIENT_CONFLICT;
    case 422: return ECH_CLIENT_UNPROCESSABLE;
    case 429: return ECH_CLIENT_RATE_LIMIT;
    default: return st >= 500 ? ECH_CLIENT_SERVER : ECH_CLIENT_STATUS;
    }
}

static ech_status local_error(ech_client *c, ech_error *err, ech_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ech_status local_error(ech_client *c, ech_error *err, ech_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    memset(&c->last, 0, sizeof c->last);
    c->last.kind = ECH_CLIENT_LOCAL;
    vsnprintf(c->last.message, sizeof c->last.message, fmt, ap);
    va_end(ap);
    return ech_error_set(err, code, "%s", c->last.message);
}

/* ---- one exchange ------------------------------------------------------------ */

typedef struct exchange {
    ech_client *c;
    bool stream;                 /* the request asked for an event stream */
    ech_chat_acc *acc;           /* where stream events go */

    /* The response being received; reset at each status line. */
    long status;
    bool is_sse;
    char request_id[128];
    double retry_after;          /* seconds; < 0: not given */
    int should_retry;            /* x-should-retry: -1 not given, 0 false, 1 true */

    ech_buf body;                /* a collected body (JSON reply or error) */
    size_t delivered;            /* bytes of a 2xx stream handed to the decoder */
    ech_sse_parser sse;
    ech_status stop;             /* why a callback stopped the transfer */
    ech_error stop_err;
    ech_client_error stream_ce;  /* an error object sent inside the stream */
    double idle_s, last_byte;    /* streams: longest wait for the next byte */
    bool idle_timeout;
} exchange;

static void exchange_reset(exchange *x)
{
    x->status = 0;
    x->is_sse = false;
    x->request_id[0] = '\0';
    x->retry_after = -1;
    x->should_retry = -1;
    ech_buf_clear(&x->body);
    x->delivered = 0;
    ech_sse_parser_free(&x->sse);
    ech_sse_parser_init(&x->sse, 0);
    x->stop = ECH_OK;
    x->stop_err.code = ECH_OK;
    x->stop_err.msg[0] = '\0';
    memset(&x->stream_ce, 0, sizeof x->stream_ce);
    x->idle_timeout = false;
    x->last_byte = now_s();
}

static void exchange_free(exchange *x)
{
    ech_buf_free(&x->body);
    ech_sse_parser_free(&x->sse);
    ech_chat_acc_free(x->acc);
}

/* retry-after-ms (milliseconds), else retry-after (seconds or an HTTP-date). */
static void parse_retry_after(exchange *x, const char *name, const char *v)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    bool number = end != v && !errno && (*end == '\0' || *end == ' ');
    if (!strcasecmp(name, "retry-after-ms")) {
        if (number && d >= 0)
            x->retry_after = d / 1000.0;
        return;
    }
    if (x->retry_after >= 0)   /* retry-after-ms wins */
        return;
    if (number && d >= 0) {
        x->retry_after = d;
        return;
    }
    time_t when = curl_getdate(v, NULL);
    if (when != -1) {
        double diff = difftime(when, time(NULL));
        x->retry_after = diff > 0 ? diff : 0;
    }
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *user)
{
    exchange *x = user;
    size_t len = size * nitems;
    char line[HEADER_LINE_MAX];
    x->last_byte = now_s();
    if (len >= sizeof line)
        return len;
    memcpy(line, buf, len);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    line[len] = '\0';
    if (strncmp(line, "HTTP/", 5) == 0) {
        const char *sp = strchr(line, ' ');
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        x->is_sse = false;
        x->request_id[0] = '\0';
        x->retry_after = -1;
        x->should_retry = -1;
        return size * nitems;
    }
    char *colon = strchr(line, ':');
    if (!colon)
        return size * nitems;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vl = strlen(v);
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        v[--vl] = '\0';
    if (!strcasecmp(line, "x-request-id"))
        snprintf(x->request_id, sizeof x->request_id, "%s", v);
    else if (!strcasecmp(line, "retry-after") || !strcasecmp(line, "retry-after-ms"))
        parse_retry_after(x, line, v);
    else if (!strcasecmp(line, "x-should-retry"))
        x->should_retry = !strcasecmp(v, "true") ? 1 : !strcasecmp(v, "false") ? 0 : -1;
    else if (!strcasecmp(line, "content-type"))
        x->is_sse = strncasecmp(v, "text/event-stream", 17) == 0;
    return size * nitems;
}

static int on_sse(void *user, const ech_sse_message *m)
{
    exchange *x = user;
    ech_status s = ech_chat_acc_event(x->acc, m->event, m->data, m->data_len, &x->stream_ce, &x->stop_err);
    if (s != ECH_OK) {
        x->stop = s == ECH_ERR_RANGE ? ECH_ERR_FORMAT : s;   /* a hostile index is a malformed stream */
        return 1;
    }
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    exchange *x = user;
    size_t len = size * nmemb;
    x->last_byte = now_s();
    bool ok_status = x->status >= 200 && x->status < 300;
    /* an event stream with the wrong Content-Type (some proxies): known by its first bytes */
    if (x->stream && ok_status && !x->is_sse && x->delivered == 0 && x->body.len == 0 && len &&
        (data[0] == ':' || (len >= 5 && memcmp(data, "data:", 5) == 0)))
        x->is_sse = true;
    if (x->stream && x->is_sse && ok_status) {
        x->delivered += len;
        ech_error perr;
        ech_status s = ech_sse_parser_feed(&x->sse, data, len, on_sse, x, &perr);
        if (s != ECH_OK) {
            if (!x->stop) {   /* the decoder's own failure (an oversized event) */
                x->stop = s == ECH_ERR_RANGE ? ECH_ERR_FORMAT : s;
                x->stop_err = perr;
            }   /* else on_sse said why */
            return 0;
        }
        return len;
    }
    size_t cap = ok_status ? MAX_BODY : MAX_ERROR_BODY;
    if (x->body.len + len > cap) {
        if (ok_status) {
            x->stop = ech_error_set(&x->stop_err, ECH_ERR_FORMAT, "the reply is over %zu bytes", cap);
            return 0;
        }
        return len;   /* an error body: its head is enough */
    }
    if (ech_buf_append(&x->body, data, len) != ECH_OK) {
        x->stop = ech_error_set(&x->stop_err, ECH_ERR_NOMEM, "out of memory");
        return 0;
    }
    return len;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    exchange *x = user;
    if (x->idle_s > 0 && now_s() - x->last_byte > x->idle_s) {
        x->idle_timeout = true;
        return 1;
    }
    return 0;
}

/* The server's error object (OpenAI {"error":{...}}, or {"error":"text"},
 * or {"message":...}) into ce; a body that is not JSON becomes the message. */
static void error_from_body(const ech_buf *b, ech_client_error *ce)
{
    json_object *j = b->len ? ech_client_parse_json(b->data, b->len, NULL) : NULL;
    json_object *e = NULL;
    if (j && json_object_is_type(j, json_type_object) && !json_object_object_get_ex(j, "error", &e))
        e = j;
    const char *msg = NULL;
    if (e && json_object_is_type(e, json_type_string)) {
        msg = json_object_get_string(e);
    } else if (e && json_object_is_type(e, json_type_object)) {
        json_object *v;
        if (json_object_object_get_ex(e, "message", &v) && json_object_is_type(v, json_type_string))
            msg = json_object_get_string(v);
        if (json_object_object_get_ex(e, "type", &v) && json_object_is_type(v, json_type_string))
            snprintf(ce->type, sizeof ce->type, "%s", json_object_get_string(v));
        if (json_object_object_get_ex(e, "code", &v) && v && !json_object_is_type(v, json_type_null))
            snprintf(ce->code, sizeof ce->code, "%s", json_object_get_string(v));
        if (json_object_object_get_ex(e, "param", &v) && json_object_is_type(v, json_type_string))
            snprintf(ce->param, sizeof ce->param, "%s", json_object_get_string(v));
    }
    if (msg) {
        set_msg(ce, "%s", msg);
    } else if (b->len && !j) {   /* a plain-text or HTML body: its first line, printable bytes only */
        size_t n = 0;
        for (size_t i = 0; i < b->len && n + 1 < sizeof ce->message && b->data[i] != '\n'; i++)
            ce->message[n++] = (unsigned char)b->data[i] < 0x20 ? ' ' : b->data[i];
        ce->message[n] = '\0';
    } else {
        set_msg(ce, "the server gave no message");
    }
    json_object_put(j);
}

static double backoff_s(ech_client *c, int attempt, double retry_after)
{
    if (retry_after >= 0 && retry_after <= MAX_RETRY_AFTER_S)
        return retry_after;
    double d = c->retry_min_s * pow(2.0, attempt);
    if (d > c->retry_max_s)
        d = c->retry_max_s;
    double jitter = 1.0 - 0.25 * (double)(next_rand(c) >> 11) / 9007199254740992.0;   /* [0.75, 1] */
    return d * jitter;
}

/* Run one request, retrying as the rules say.  On ECH_OK the 2xx body is in
 * x->body (or went through the stream accumulator). */
static ech_status run(ech_client *c, const char *method, const char *path, const char *body, size_t body_len,
                      exchange *x, double timeout_s, ech_error *err)
{
    ech_client_error *ce = &c->last;
    memset(ce, 0, sizeof *ce);
    ech_buf url = {0}, auth = {0};
    struct curl_slist *headers = NULL;
    ech_status s = ech_buf_printf(&url, "%s%s", c->base_url, path);
    if (s == ECH_OK && c->api_key)
        s = ech_buf_printf(&auth, "Authorization: Bearer %s", c->api_key);
    const char *fixed[] = {
        body ? "Content-Type: application/json" : NULL,
        x->stream ? "Accept: text/event-stream" : "Accept: application/json",
        "Expect:",   /* no 100-continue round trip for large bodies */
        auth.data,
    };
    for (size_t i = 0; s == ECH_OK && i < sizeof fixed / sizeof *fixed; i++) {
        if (!fixed[i])
            continue;
        struct curl_slist *grown = curl_slist_append(headers, fixed[i]);
        if (!grown)
            s = ECH_ERR_NOMEM;
        else
            headers = grown;
    }
    for (struct curl_slist *h = c->extra; s == ECH_OK && h; h = h->next) {
        struct curl_slist *grown = curl_slist_append(headers, h->data);
        if (!grown)
            s = ECH_ERR_NOMEM;
        else
            headers = grown;
    }
    if (auth.data)
        memset(auth.data, 0, auth.len);
    ech_buf_free(&auth);
    if (s != ECH_OK) {
        curl_slist_free_all(headers);
        ech_buf_free(&url);
        return local_error(c, err, ECH_ERR_NOMEM, "out of memory");
    }
    if (timeout_s <= 0)
        timeout_s = c->timeout_s;
    x->c = c;
    x->idle_s = x->stream ? timeout_s : 0;

    CURL *h = c->curl;
    for (int attempt = 0;; attempt++) {
        exchange_reset(x);
        curl_easy_reset(h);   /* keeps the connection cache: keep-alive across requests */
        c->curl_msg[0] = '\0';
        curl_easy_setopt(h, CURLOPT_URL, url.data);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_msg);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "echostra/" PACKAGE_VERSION);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->connect_timeout_s * 1000));
        if (!x->stream)
            curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000));
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
        if (body) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        }
        if (strcmp(method, "GET") != 0 && (strcmp(method, "POST") != 0 || !body))
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);

        CURLcode rc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        memset(ce, 0, sizeof *ce);
        ce->attempts = attempt + 1;
        snprintf(ce->request_id, sizeof ce->request_id, "%s", x->request_id);
        bool retry = false;
        ech_status code;
        if (x->stop != ECH_OK) {
            /* a callback stopped it: the user, an error inside the stream, a bad stream */
            code = x->stop;
            if (code == ECH_ERR_HTTP) {
                *ce = x->stream_ce;
                ce->attempts = attempt + 1;
                ce->http_status = 0;
                snprintf(ce->request_id, sizeof ce->request_id, "%s", x->request_id);
            } else {
                ce->kind = code == ECH_ERR_CANCELED ? ECH_CLIENT_CANCELED
                           : code == ECH_ERR_NOMEM  ? ECH_CLIENT_LOCAL : ECH_CLIENT_RESPONSE;
                set_msg(ce, "%s", x->stop_err.msg);
            }
        } else if (rc != CURLE_OK) {
            bool timed_out = x->idle_timeout || rc == CURLE_OPERATION_TIMEDOUT;
            curl_off_t connected = 0;
            curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected);
            /* a connect that timed out is a connection failure (retried) */
            if (timed_out && status == 0 && connected == 0 && !x->idle_timeout)
                timed_out = false;
            ce->kind = timed_out ? ECH_CLIENT_TIMEOUT : ECH_CLIENT_CONNECTION;
            ce->http_status = 0;
            code = ECH_ERR_NET;
            bool streamed = x->stream && x->delivered > 0;
            if (x->idle_timeout)
                set_msg(ce, "no data for %.3g s%s", timeout_s,
                         streamed ? " in the middle of the stream" : "");
            else if (streamed)
                set_msg(ce, "the stream broke after %zu bytes (not retried): %s",
                         x->delivered, c->curl_msg[0] ? c->curl_msg : curl_easy_strerror(rc));
            else
                set_msg(ce, "%s (%s)", c->curl_msg[0] ? c->curl_msg : curl_easy_strerror(rc),
                         url.data);
            /* a broken connection is retried, unless part of a stream was delivered */
            retry = !timed_out && !streamed;
        } else if (status < 200 || status > 299) {
            ce->kind = kind_for_status(status);
            ce->http_status = (int)status;
            error_from_body(&x->body, ce);
            code = ECH_ERR_HTTP;
            retry = status == 408 || status == 409 || status == 429 || status >= 500;
            if (x->should_retry >= 0)
                retry = x->should_retry == 1;
        } else {
            ce->kind = ECH_CLIENT_OK;
            code = ECH_OK;
        }
        if (code == ECH_OK)
            break;
        if (retry && attempt < c->max_retries) {
            sleep_s(backoff_s(c, attempt, x->retry_after));
            continue;
        }
        s = ech_client_error_report(ce, code, err);
        break;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(headers);
    ech_buf_free(&url);
    return s;
}

/* The collected 2xx body as JSON, or a RESPONSE error. */
static json_object *body_json(ech_client *c, exchange *x, ech_error *err)
{
    ech_error perr;
    json_object *j = ech_client_parse_json(x->body.data ? x->body.data : "", x->body.len, &perr);
    if (!j) {
        ech_client_error *ce = &c->last;
        ce->kind = ECH_CLIENT_RESPONSE;
        set_msg(ce, "the reply is not JSON: %s", perr.msg);
        ech_client_error_report(ce, ECH_ERR_FORMAT, err);
    }
    return j;
}

static ech_status response_error(ech_client *c, ech_status code, const ech_error *why, ech_error *err)
{
    ech_client_error *ce = &c->last;
    ce->kind = code == ECH_ERR_NOMEM ? ECH_CLIENT_LOCAL : code == ECH_ERR_CANCELED ? ECH_CLIENT_CANCELED
                                                                                   : ECH_CLIENT_RESPONSE;
    set_msg(ce, "%s", why->msg);
    return ech_client_error_report(ce, code, err);
}

/* After a successful stream: was it whole? */
static ech_status stream_complete(ech_client *c, exchange *x, ech_error *err)
{
    bool pending = ech_sse_parser_finish(&x->sse);
    if (ech_chat_acc_done(x->acc) || (ech_chat_acc_finished(x->acc) && !pending))
        return ECH_OK;
    ech_client_error *ce = &c->last;
    ce->kind = ech_chat_acc_chunks(x->acc) || pending ? ECH_CLIENT_CONNECTION : ECH_CLIENT_RESPONSE;
    set_msg(ce, "%s",
             ech_chat_acc_chunks(x->acc) || pending ? "the stream ended before the reply was complete (no [DONE])"
                                                    : "the stream ended without any event");
    return ech_client_error_report(ce, ce->kind == ECH_CLIENT_CONNECTION ? ECH_ERR_NET : ECH_ERR_FORMAT, err);
}

static char *request_id_copy(const exchange *x)
{
    return x->request_id[0] ? strdup(x->request_id) : NULL;
}

/* ---- request bodies ---------------------------------------------------------------- */

const char *ech_chat_role_name(ech_chat_role r)
{
    switch (r) {
    case ECH_ROLE_USER: return "user";
    case ECH_ROLE_SYSTEM: return "system";
    case ECH_ROLE_ASSISTANT: return "assistant";
    case ECH_ROLE_TOOL: return "tool";
    case ECH_ROLE_DEVELOPER: return "developer";
    }
    return NULL;
}

static json_object *jstr(const char *s) { return ech_json_string(s, strlen(s)); }

static void add_model(json_object *o, const ech_client *c, const char *model)
{
    if (!model)
        model = c->model;
    if (model)
        json_object_object_add(o, "model", jstr(model));
}

static void add_sampling(json_object *o, const ech_sampling *s)
{
    if (s->has_temperature)
        json_object_object_add(o, "temperature", ech_json_double(s->temperature));
    if (s->has_top_p)
        json_object_object_add(o, "top_p", ech_json_double(s->top_p));
    if (s->max_tokens > 0)
        json_object_object_add(o, "max_tokens", json_object_new_int64(s->max_tokens));
    if (s->has_seed)
        json_object_object_add(o, "seed", json_object_new_int64(s->seed));
    if (s->n_stop) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < s->n_stop; i++)
            json_object_array_add(a, jstr(s->stop[i]));
        json_object_object_add(o, "stop", a);
    }
}

static void add_stream(json_object *o, bool stream)
{
    if (!stream)
        return;
    json_object_object_add(o, "stream", json_object_new_boolean(1));
    json_object *so = json_object_new_object();
    json_object_object_add(so, "include_usage", json_object_new_boolean(1));
    json_object_object_add(o, "stream_options", so);
}

static void add_extra(json_object *o, json_object *extra)
{
    if (!extra || !json_object_is_type(extra, json_type_object))
        return;
    json_object_object_foreach(extra, k, v) json_object_object_add(o, k, json_object_get(v));
}

static ech_status check_sampling(const ech_sampling *s, ech_error *err)
{
    if (s->n_stop && !s->stop)
        return ech_error_set(err, ECH_ERR_INVALID, "n_stop is %zu but stop is NULL", s->n_stop);
    for (size_t i = 0; i < s->n_stop; i++)
        if (!s->stop[i])
            return ech_error_set(err, ECH_ERR_INVALID, "stop string %zu is NULL", i);
    if ((s->has_temperature && !isfinite(s->temperature)) || (s->has_top_p && !isfinite(s->top_p)))
        return ech_error_set(err, ECH_ERR_INVALID, "temperature and top_p must be finite numbers");
    return ECH_OK;
}

static ech_status chat_body(const ech_client *c, const ech_chat_request *r, bool stream, json_object **out,
                            ech_error *err)
{
    *out = NULL;
    if (!r->messages_json && (!r->messages || !r->n_messages))
        return ech_error_set(err, ECH_ERR_INVALID, "a chat request needs messages");
    if (r->messages_json && !json_object_is_type(r->messages_json, json_type_array))
        return ech_error_set(err, ECH_ERR_INVALID, "messages_json is not a JSON array");
    if (r->tools_json && !json_object_is_type(r->tools_json, json_type_array))
        return ech_error_set(err, ECH_ERR_INVALID, "tools_json is not a JSON array");
    if (r->n_tools && !r->tools)
        return ech_error_set(err, ECH_ERR_INVALID, "n_tools is %zu but tools is NULL", r->n_tools);
    ech_status s = check_sampling(&r->sampling, err);
    if (s != ECH_OK)
        return s;
    json_object *o = json_object_new_object();
    add_model(o, c, r->model);
    json_object *msgs;
    if (r->messages_json) {
        msgs = json_object_get(r->messages_json);
    } else {
        msgs = json_object_new_array();
        for (size_t i = 0; i < r->n_messages; i++) {
            const ech_chat_msg *m = &r->messages[i];
            const char *role = ech_chat_role_name(m->role);
            if (!role || (m->n_tool_calls && !m->tool_calls)) {
                json_object_put(msgs);
                json_object_put(o);
                return ech_error_set(err, ECH_ERR_INVALID, "message %zu: bad role or tool_calls", i);
            }
            json_object *jm = json_object_new_object();
            json_object_object_add(jm, "role", jstr(role));
            if (m->content_parts)
                json_object_object_add(jm, "content", json_object_get(m->content_parts));
            else
                json_object_object_add(jm, "content", m->content ? jstr(m->content) : NULL);
            if (m->name)
                json_object_object_add(jm, "name", jstr(m->name));
            if (m->tool_call_id)
                json_object_object_add(jm, "tool_call_id", jstr(m->tool_call_id));
            if (m->n_tool_calls) {
                json_object *a = json_object_new_array();
                for (size_t k = 0; k < m->n_tool_calls; k++) {
                    const ech_chat_tool_call *t = &m->tool_calls[k];
                    json_object *tc = json_object_new_object(), *fn = json_object_new_object();
                    json_object_object_add(tc, "id", jstr(t->id ? t->id : ""));
                    json_object_object_add(tc, "type", jstr("function"));
                    json_object_object_add(fn, "name", jstr(t->name ? t->name : ""));
                    json_object_object_add(fn, "arguments", jstr(t->arguments ? t->arguments : "{}"));
                    json_object_object_add(tc, "function", fn);
                    json_object_array_add(a, tc);
                }
                json_object_object_add(jm, "tool_calls", a);
            }
            json_object_array_add(msgs, jm);
        }
    }
    json_object_object_add(o, "messages", msgs);
    if (r->tools_json) {
        json_object_object_add(o, "tools", json_object_get(r->tools_json));
    } else if (r->n_tools) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < r->n_tools; i++) {
            const ech_chat_tool *t = &r->tools[i];
            if (!t->name) {
                json_object_put(a);
                json_object_put(o);
                return ech_error_set(err, ECH_ERR_INVALID, "tool %zu has no name", i);
            }
            json_object *jt = json_object_new_object(), *fn = json_object_new_object();
            json_object_object_add(jt, "type", jstr("function"));
            json_object_object_add(fn, "name", jstr(t->name));
            if (t->description)
                json_object_object_add(fn, "description", jstr(t->description));
            json_object *params = t->parameters ? json_object_get(t->parameters) : json_object_new_object();
            if (!t->parameters)
                json_object_object_add(params, "type", jstr("object"));
            json_object_object_add(fn, "parameters", params);
            if (t->strict)
                json_object_object_add(fn, "strict", json_object_new_boolean(1));
            json_object_object_add(jt, "function", fn);
            json_object_array_add(a, jt);
        }
        json_object_object_add(o, "tools", a);
    }
    if (r->tool_choice) {
        const char *tc = r->tool_choice;
        if (!strcmp(tc, "auto") || !strcmp(tc, "none") || !strcmp(tc, "required")) {
            json_object_object_add(o, "tool_choice", jstr(tc));
        } else {
            json_object *jc = json_object_new_object(), *fn = json_object_new_object();
            json_object_object_add(jc, "type", jstr("function"));
            json_object_object_add(fn, "name", jstr(tc));
            json_object_object_add(jc, "function", fn);
            json_object_object_add(o, "tool_choice", jc);
        }
    }
    if (r->parallel_tool_calls)
        json_object_object_add(o, "parallel_tool_calls", json_object_new_boolean(r->parallel_tool_calls > 0));
    if (r->response_format)
        json_object_object_add(o, "response_format", json_object_get(r->response_format));
    add_sampling(o, &r->sampling);
    add_stream(o, stream);
    add_extra(o, r->extra);
    *out = o;
    return ECH_OK;
}

/* Serialise and run; the body is freed here. */
static ech_status post_json(ech_client *c, const char *path, json_object *body, exchange *x, double timeout_s,
                            ech_error *err)
{
    const char *text = body ? ech_json_line(body) : NULL;
    if (body && !text) {
        json_object_put(body);
        return local_error(c, err, ECH_ERR_NOMEM, "out of memory");
    }
    ech_status s = run(c, body ? "POST" : "GET", path, text, text ? strlen(text) : 0, x, timeout_s, err);
    json_object_put(body);
    return s;
}

/* ---- chat ------------------------------------------------------------------------------ */

ech_status ech_client_chat(ech_client *c, const ech_chat_request *req, ech_chat_stream_fn on_event, void *user,
                           ech_chat_response *resp, ech_error *err)
{
    if (resp)
        memset(resp, 0, sizeof *resp);
    if (!c || !req)
        return ech_error_set(err, ECH_ERR_INVALID, "ech_client_chat: client and request are required");
    json_object *body;
    ech_error berr;
    ech_status s = chat_body(c, req, on_event != NULL, &body, &berr);
    if (s != ECH_OK)
        return local_error(c, err, s, "%s", berr.msg);
    exchange x = {.stream = on_event != NULL};
    ech_sse_parser_init(&x.sse, 0);
    if (x.stream && !(x.acc = ech_chat_acc_new(false, on_event, user))) {
        json_object_put(body);
        exchange_free(&x);
        return local_error(c, err, ECH_ERR_NOMEM, "out of memory");
    }
    s = post_json(c, "/chat/completions", body, &x, req->timeout_s, err);
    if (s == ECH_OK && x.stream && x.is_sse) {
        ech_error e;
        s = stream_complete(c, &x, err);
        if (s == ECH_OK && (s = ech_chat_acc_finish(x.acc, resp, &e)) != ECH_OK)
            s = response_error(c, s, &e, err);
    } else if (s == ECH_OK) {   /* a whole reply, asked for or not */
        json_object *j = body_json(c, &x, err);
        ech_error e;
        ech_chat_response tmp, *r = resp ? resp : &tmp;
        s = j ? ech_chat_response_from_json(j, r, &e) : ECH_ERR_FORMAT;
        if (j && s != ECH_OK)
            s = response_error(c, s, &e, err);
        if (s == ECH_OK && on_event && (s = ech_chat_response_replay(r, on_event, user, &e)) != ECH_OK)
            s = response_error(c, s, &e, err);
        if (s != ECH_OK || !resp)
            ech_chat_response_free(r);
        json_object_put(j);
    }
    if (s == ECH_OK && resp && x.request_id[0] && !(resp->request_id = request_id_copy(&x))) {
        ech_chat_response_free(resp);
        s = local_error(c, err, ECH_ERR_NOMEM, "out of memory");
    }
    exchange_free(&x);
    return s;
}

/* ---- completions --------------------------------------------------------------------- */

ech_status ech_client_completion(ech_client *c, const ech_completion_request *req, ech_chat_stream_fn on_event,
                                 void *user, ech_completion_response *resp, ech_error *err)
{
    if (resp)
        memset(resp, 0, sizeof *resp);
    if (!c || !req || !req->prompt)
        return ech_error_set(err, ECH_ERR_INVALID, "ech_client_completion: client, request and prompt are required");
    ech_error berr;
    ech_status s = check_sampling(&req->sampling, &berr);
    if (s != ECH_OK)
        return local_error(c, err, s, "%s", berr.msg);
    json_object *body = json_object_new_object();
    add_model(body, c, req->model);
    json_object_object_add(body, "prompt", jstr(req->prompt));
    add_sampling(body, &req->sampling);
    add_stream(body, on_event != NULL);
    add_extra(body, req->extra);
    exchange x = {.stream = on_event != NULL};
    ech_sse_parser_init(&x.sse, 0);
    if (x.stream && !(x.acc = ech_chat_acc_new(true, on_event, user))) {
        json_object_put(body);
        exchange_free(&x);
        return local_error(c, err, ECH_ERR_NOMEM, "out of memory");
    }
    s = post_json(c, "/completions", body, &x, req->timeout_s, err);
    ech_error e;
    if (s == ECH_OK && x.stream && x.is_sse) {
        s = stream_complete(c, &x, err);
        if (s == ECH_OK && (s = ech_chat_acc_finish_completion(x.acc, resp, &e)) != ECH_OK)
            s = response_error(c, s, &e, err);
    } else if (s == ECH_OK) {
        json_object *j = body_json(c, &x, err);
        ech_completion_response tmp, *r = resp ? resp : &tmp;
        s = j ? ech_completion_response_from_json(j, r, &e) : ECH_ERR_FORMAT;
        if (j && s != ECH_OK)
            s = response_error(c, s, &e, err);
        for (size_t i = 0; s == ECH_OK && on_event && i < r->n_choices; i++) {
            ech_chat_event d = {.kind = ECH_CHAT_DELTA, .choice = r->choices[i].index, .text = r->choices[i].text,
                                .len = r->choices[i].text_len};
            ech_chat_event f = {.kind = ECH_CHAT_FINISH, .choice = r->choices[i].index,
                                .finish_reason = r->choices[i].finish_reason};
            if ((d.len && on_event(user, &d)) || (f.finish_reason && on_event(user, &f)))
                s = local_error(c, err, ECH_ERR_CANCELED, "stopped by the stream callback"),
                c->last.kind = ECH_CLIENT_CANCELED;
        }
        if (s != ECH_OK || !resp)
            ech_completion_response_free(r);
        json_object_put(j);
    }
    if (s == ECH_OK && resp && x.request_id[0] && !(resp->request_id = request_id_copy(&x))) {
        ech_completion_response_free(resp);
        s = local_error(c, err, ECH_ERR_NOMEM, "out of memory");
    }
    exchange_free(&x);
    return s;
}

/* ---- embeddings ------------------------------------------------------------------------ */

void ech_embedding_response_free(ech_embedding_response *r)
{
    if (!r)
        return;
    free(r->model);
    for (size_t i = 0; i < r->n; i++)
        free(r->data[i].v);
    free(r->data);
    free(r->request_id);
    memset(r, 0, sizeof *r);
}

static int embedding_cmp(const void *a, const void *b)
{
    size_t x = ((const ech_embedding *)a)->index, y = ((const ech_embedding *)b)->index;
    return x < y ? -1 : x > y;
}

static ech_status embeddings_from_json(json_object *j, ech_embedding_response *out, ech_error *err)
{
    json_object *data = NULL, *v;
    if (!json_object_is_type(j, json_type_object) || !json_object_object_get_ex(j, "data", &data) ||
        !json_object_is_type(data, json_type_array))
        return ech_error_set(err, ECH_ERR_FORMAT, "the reply has no \"data\" array");
    size_t n = json_object_array_length(data);
    out->data = calloc(n ? n : 1, sizeof *out->data);
    if (!out->data)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    if (json_object_object_get_ex(j, "model", &v) && json_object_is_type(v, json_type_string) &&
        !(out->model = strdup(json_object_get_string(v))))
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    json_object *u;
    if (json_object_object_get_ex(j, "usage", &u) && json_object_is_type(u, json_type_object)) {
        out->usage.present = true;
        if (json_object_object_get_ex(u, "prompt_tokens", &v))
            out->usage.prompt_tokens = (long)json_object_get_int64(v);
        if (json_object_object_get_ex(u, "total_tokens", &v))
            out->usage.total_tokens = (long)json_object_get_int64(v);
    }
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(data, i), *emb = NULL, *idx = NULL;
        if (!json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, "embedding", &emb) ||
            !json_object_is_type(emb, json_type_array))
            return ech_error_set(err, ECH_ERR_FORMAT, "data[%zu] has no \"embedding\" array of numbers", i);
        ech_embedding *d = &out->data[out->n++];
        d->index = json_object_object_get_ex(e, "index", &idx) && json_object_get_int64(idx) >= 0
                       ? (size_t)json_object_get_int64(idx) : i;
        d->dim = json_object_array_length(emb);
        d->v = malloc((d->dim ? d->dim : 1) * sizeof *d->v);
        if (!d->v)
            return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
        for (size_t k = 0; k < d->dim; k++) {
            json_object *x = json_object_array_get_idx(emb, k);
            if (!json_object_is_type(x, json_type_double) && !json_object_is_type(x, json_type_int))
                return ech_error_set(err, ECH_ERR_FORMAT, "data[%zu].embedding[%zu] is not a number", i, k);
            d->v[k] = (float)json_object_get_double(x);
        }
    }
    qsort(out->data, out->n, sizeof *out->data, embedding_cmp);
    return ECH_OK;
}

ech_status ech_client_embeddings(ech_client *c, const ech_embedding_request *req, ech_embedding_response *resp,
                                 ech_error *err)
{
    if (resp)
        memset(resp, 0, sizeof *resp);
    if (!c || !req || !resp || !req->n_input || !req->input)
        return ech_error_set(err, ECH_ERR_INVALID, "ech_client_embeddings: client, request, input and resp are required");
    for (size_t i = 0; i < req->n_input; i++)
        if (!req->input[i])
            return local_error(c, err, ECH_ERR_INVALID, "input %zu is NULL", i);
    json_object *body = json_object_new_object();
    add_model(body, c, req->model);
    json_object *in = json_object_new_array();
    for (size_t i = 0; i < req->n_input; i++)
        json_object_array_add(in, jstr(req->input[i]));
    json_object_object_add(body, "input", in);
    json_object_object_add(body, "encoding_format", jstr("float"));
    if (req->dimensions > 0)
        json_object_object_add(body, "dimensions", json_object_new_int64(req->dimensions));
    add_extra(body, req->extra);
    exchange x = {0};
    ech_sse_parser_init(&x.sse, 0);
    ech_status s = post_json(c, "/embeddings", body, &x, req->timeout_s, err);
    if (s == ECH_OK) {
        json_object *j = body_json(c, &x, err);
        ech_error e;
        s = j ? embeddings_from_json(j, resp, &e) : ECH_ERR_FORMAT;
        if (j && s != ECH_OK)
            s = response_error(c, s, &e, err);
        if (s == ECH_OK && x.request_id[0] && !(resp->request_id = request_id_copy(&x)))
            s = local_error(c, err, ECH_ERR_NOMEM, "out of memory");
        if (s != ECH_OK)
            ech_embedding_response_free(resp);
        json_object_put(j);
    }
    exchange_free(&x);
    return s;
}

/* ---- models -------------------------------------------------------------------------------- */

void ech_model_list_free(ech_model_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].id);
        free(l->v[i].owned_by);
    }
    free(l->v);
    free(l->request_id);
    memset(l, 0, sizeof *l);
}

ech_status ech_client_models(ech_client *c, ech_model_list *out, ech_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!c || !out)
        return ech_error_set(err, ECH_ERR_INVALID, "ech_client_models: client and out are required");
    exchange x = {0};
    ech_sse_parser_init(&x.sse, 0);
    ech_status s = post_json(c, "/models", NULL, &x, 0, err);
    json_object *j = s == ECH_OK ? body_json(c, &x, err) : NULL;
    if (s == ECH_OK && !j)
        s = ECH_ERR_FORMAT;
    json_object *data = NULL;
    if (j && (!json_object_is_type(j, json_type_object) || !json_object_object_get_ex(j, "data", &data) ||
              !json_object_is_type(data, json_type_array))) {
        ech_error e;
        ech_error_set(&e, ECH_ERR_FORMAT, "the reply has no \"data\" array");
        s = response_error(c, ECH_ERR_FORMAT, &e, err);
    }
    if (s == ECH_OK) {
        size_t n = json_object_array_length(data);
        bool ok = (out->v = calloc(n ? n : 1, sizeof *out->v)) != NULL;
        for (size_t i = 0; ok && i < n; i++) {
            json_object *m = json_object_array_get_idx(data, i), *v;
            if (!json_object_is_type(m, json_type_object) || !json_object_object_get_ex(m, "id", &v) ||
                !json_object_is_type(v, json_type_string))
                continue;
            ech_model_entry *e = &out->v[out->n++];
            ok = (e->id = strdup(json_object_get_string(v))) != NULL;
            if (ok && json_object_object_get_ex(m, "owned_by", &v) && json_object_is_type(v, json_type_string))
                ok = (e->owned_by = strdup(json_object_get_string(v))) != NULL;
            if (json_object_object_get_ex(m, "created", &v))
                e->created = json_object_get_int64(v);
        }
        if (ok && x.request_id[0])
            ok = (out->request_id = request_id_copy(&x)) != NULL;
        if (!ok) {
            ech_model_list_free(out);
            s = local_error(c, err, ECH_ERR_NOMEM, "out of memory");
        }
    }
    json_object_put(j);
    exchange_free(&x);
    return s;
}

/* ---- anything else -------------------------------------------------------------------------- */

ech_status ech_client_request_json(ech_client *c, const char *method, const char *path, json_object *body,
                                   json_object **out, ech_error *err)
{
    if (out)
        *out = NULL;
    if (!c || !method || !path || path[0] != '/' || has_ctl(path) || has_ctl(method))
        return ech_error_set(err, ECH_ERR_INVALID, "ech_client_request_json: method and a path starting with '/' are required");
    const char *text = body ? ech_json_line(body) : NULL;
    if (body && !text)
        return local_error(c, err, ECH_ERR_NOMEM, "out of memory");
    exchange x = {0};
    ech_sse_parser_init(&x.sse, 0);
    ech_status s = run(c, method, path, text, text ? strlen(text) : 0, &x, 0, err);
    if (s == ECH_OK && out) {
        if (x.body.len == 0)
            *out = NULL;   /* 204 and friends: no JSON */
        else if (!(*out = body_json(c, &x, err)))
            s = ECH_ERR_FORMAT;
    }
    exchange_free(&x);
    return s;
}
