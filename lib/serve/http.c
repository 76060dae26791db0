/* http.c - the HTTP front of ech-serve over libmicrohttpd. */
#include "config.h"
#include "serve/http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/json.h"

typedef struct conn_state {
    ech_buf body;
    bool too_big;
    bool responded;       /* answered before the body was read */
    time_t deadline;      /* the body must be in by then */
} conn_state;

static time_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static void add_common_headers(ech_http *h, struct MHD_Response *r)
{
    if (h->origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", h->origin);
        MHD_add_response_header(r, "Vary", "Origin");
    }
}

static enum MHD_Result queue(ech_http *h, unsigned status, struct MHD_Response *r)
{
    if (!r)
        return MHD_NO;
    add_common_headers(h, r);
    enum MHD_Result ret = MHD_queue_response(h->conn, status, r);
    MHD_destroy_response(r);
    ech_metrics_request(&h->srv->metrics, status);
    return ret;
}

enum MHD_Result ech_http_text(ech_http *h, unsigned status, const char *ctype, const char *text, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (r)
        MHD_add_response_header(r, "Content-Type", ctype);
    return queue(h, status, r);
}

enum MHD_Result ech_http_json(ech_http *h, unsigned status, json_object *obj)
{
    const char *s = obj ? ech_json_line(obj) : NULL;
    enum MHD_Result ret = s ? ech_http_text(h, status, "application/json", s, strlen(s)) : MHD_NO;
    json_object_put(obj);
    return ret;
}

enum MHD_Result ech_http_error(ech_http *h, const ech_api_error *e)
{
    json_object *err = json_object_new_object();
    json_object_object_add(err, "message", ech_json_string(e->msg, strlen(e->msg)));
    json_object_object_add(err, "type", json_object_new_string(e->type ? e->type : "invalid_request_error"));
    json_object_object_add(err, "param", e->param ? json_object_new_string(e->param) : NULL);
    json_object_object_add(err, "code", e->code ? json_object_new_string(e->code) : NULL);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", err);
    const char *s = ech_json_line(o);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), (void *)s, MHD_RESPMEM_MUST_COPY);
    json_object_put(o);
    if (r) {
        MHD_add_response_header(r, "Content-Type", "application/json");
        if (e->status == 401)
            MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
        if (e->status == 503 || e->status == 429)
            MHD_add_response_header(r, "Retry-After", "1");
    }
    return queue(h, (unsigned)e->status, r);
}

enum MHD_Result ech_http_errorf(ech_http *h, unsigned status, const char *type, const char *code, const char *fmt, ...)
{
    ech_api_error e = {.status = (int)status, .type = type, .code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    return ech_http_error(h, &e);
}

enum MHD_Result ech_http_stream(ech_http *h, const char *ctype, MHD_ContentReaderCallback rd, void *cls,
                                MHD_ContentReaderFreeCallback fr)
{
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, rd, cls, fr);
    if (!r) {
        fr(cls);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    /* nginx: pass each event on at once even if buffering is configured */
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    atomic_fetch_add(&h->srv->metrics.streams, 1);
    return queue(h, 200, r);
}

int ech_http_fd(ech_http *h)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(h->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

bool ech_http_peer_closed(int fd)
{
    if (fd < 0)
        return false;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Constant-time: every key is compared, each through a fixed-size hash. */
static bool key_ok(ech_server *s, const char *auth)
{
    static const char bearer[] = "Bearer ";
    if (!auth || strncasecmp(auth, bearer, sizeof bearer - 1) != 0)
        return false;
    const char *k = auth + sizeof bearer - 1;
    unsigned char hash[32];
    crypto_generichash(hash, sizeof hash, (const unsigned char *)k, strlen(k), NULL, 0);
    int ok = 0;
    for (size_t i = 0; i < s->o.n_api_keys; i++)
        ok |= sodium_memcmp(hash, s->key_hash[i], sizeof hash) == 0;
    return ok;
}

static const char *allowed_origin(ech_server *s, struct MHD_Connection *c)
{
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (!origin)
        return NULL;
    for (size_t i = 0; i < s->o.n_cors; i++) {
        if (!strcmp(s->o.cors[i], "*"))
            return "*";
        if (!strcmp(s->o.cors[i], origin))
            return origin;
    }
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **con_cls)
{
    (void)version;
    ech_server *s = cls;
    conn_state *cs = *con_cls;
    ech_http h = {.srv = s, .conn = c, .method = method, .path = url, .origin = allowed_origin(s, c)};
    size_t pl = s->o.api_prefix ? strlen(s->o.api_prefix) : 0;
    if (pl && strncmp(url, s->o.api_prefix, pl) == 0 && (url[pl] == '/' || url[pl] == '\0'))
        h.path = url[pl] ? url + pl : "/";
    else if (pl)
        h.path = NULL;   /* outside the prefix: 404 */
    if (!cs) {
        if (!(cs = calloc(1, sizeof *cs)))
            return MHD_NO;
        *con_cls = cs;
        cs->deadline = mono_s() + (time_t)s->o.timeout_s;
        atomic_fetch_add(&s->metrics.in_flight, 1);
        if (!h.path) {
            cs->responded = true;
            return ech_http_errorf(&h, 404, "invalid_request_error", "not_found",
                                   "no route %s %s (the API lives under %s)", method, url, s->o.api_prefix);
        }
        if (!strcmp(method, "OPTIONS")) {
            /* CORS preflight: no auth, no body */
            cs->responded = true;
            struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
            if (r && h.origin) {
                MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
                MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
                MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
            }
            return queue(&h, 204, r);
        }
        if (s->o.n_api_keys && strcmp(h.path, "/health") != 0 &&
            !key_ok(s, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"))) {
            cs->responded = true;
            return ech_http_errorf(&h, 401, "invalid_request_error", "invalid_api_key",
                                   "a valid API key is required: send 'Authorization: Bearer KEY'");
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end || n > s->o.max_body) {
                cs->responded = true;
                return ech_http_errorf(&h, 413, "invalid_request_error", "request_too_large",
                                       "the request body is larger than the limit of %zu bytes", s->o.max_body);
            }
        }
        return MHD_YES;
    }
    if (cs->responded) {
        *size = 0;   /* already answered: drop the rest of the body */
        return MHD_YES;
    }
    if (*size) {
        /* the idle timeout resets on every byte: a client that sends its
         * body a byte at a time would hold its thread for ever */
        if (mono_s() > cs->deadline) {
            if (s->o.verbose)
                fprintf(stderr, "ech-serve: http: a request body took longer than %us; closing\n", s->o.timeout_s);
            return MHD_NO;
        }
        if (!cs->too_big && cs->body.len + *size > s->o.max_body) {
            cs->too_big = true;
            ech_buf_free(&cs->body);
        }
        if (!cs->too_big && ech_buf_append(&cs->body, data, *size) != ECH_OK)
            return MHD_NO;
        *size = 0;
        return MHD_YES;
    }
    cs->responded = true;
    if (cs->too_big)
        return ech_http_errorf(&h, 413, "invalid_request_error", "request_too_large",
                               "the request body is larger than the limit of %zu bytes", s->o.max_body);
    h.body = cs->body.data ? cs->body.data : "";
    h.body_len = cs->body.len;
    return ech_api_dispatch(&h);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    ech_server *s = cls;
    conn_state *cs = *con_cls;
    if (!cs)
        return;
    ech_buf_free(&cs->body);
    free(cs);
    *con_cls = NULL;
    atomic_fetch_sub(&s->metrics.in_flight, 1);
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
    ech_server *s = cls;
    if (s->o.verbose) {
        fprintf(stderr, "ech-serve: http: ");
        vfprintf(stderr, fmt, ap);
    }
}

static int listen_socket(ech_server *s, ech_error *err)
{
    int fd = -1;
    if (s->o.unix_path) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        if (strlen(s->o.unix_path) >= sizeof sun.sun_path)
            return ech_error_set(err, ECH_ERR_INVALID, "%s: the socket path is too long", s->o.unix_path), -1;
        strcpy(sun.sun_path, s->o.unix_path);
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
            goto sys;
        unlink(s->o.unix_path);   /* a stale socket from an earlier run */
        if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0)
            goto sys;
        snprintf(s->unlink_path, sizeof s->unlink_path, "%s", s->o.unix_path);
    } else {
        char port[16];
        snprintf(port, sizeof port, "%u", s->o.port);
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
        int rc = getaddrinfo(s->o.host, port, &hints, &ai);
        if (rc != 0)
            return ech_error_set(err, ECH_ERR_INVALID, "%s: %s", s->o.host, gai_strerror(rc)), -1;
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        int one = 1;
        if (fd >= 0)
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            int e = errno;
            freeaddrinfo(ai);
            errno = e;
            goto sys;
        }
        freeaddrinfo(ai);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
            s->bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                             : ((struct sockaddr_in *)&ss)->sin_port);
    }
    if (listen(fd, 128) != 0)
        goto sys;
    return fd;
sys:;
    int e = errno;
    if (s->o.unix_path)
        ech_error_set(err, ECH_ERR_IO, "cannot listen on %s: %s", s->o.unix_path, strerror(e));
    else
        ech_error_set(err, ECH_ERR_IO, "cannot listen on %s port %u: %s", s->o.host, s->o.port, strerror(e));
    if (fd >= 0)
        close(fd);
    return -1;
}

ech_status ech_http_listen(ech_server *s, ech_error *err)
{
    int fd = listen_socket(s, err);
    if (fd < 0)
        return ECH_ERR_IO;
    s->listen_fd = fd;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
                     MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                                 MHD_OPTION_LISTEN_SOCKET, fd,
                                 MHD_OPTION_CONNECTION_TIMEOUT, s->o.timeout_s,
                                 MHD_OPTION_CONNECTION_LIMIT, s->o.max_conns,
                                 /* one address cannot take every connection (slowloris) */
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->o.max_conns_per_ip,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_EXTERNAL_LOGGER, on_log, s,
                                 MHD_OPTION_END);
    if (!s->daemon) {
        close(fd);
        s->listen_fd = -1;
        return ech_error_set(err, ECH_ERR_IO, "libmicrohttpd could not start");
    }
    return ECH_OK;
}

void ech_http_quiesce(ech_server *s)
{
    if (s->daemon) {
        MHD_socket fd = MHD_quiesce_daemon(s->daemon);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
        s->listen_fd = -1;
    }
}

void ech_http_close(ech_server *s)
{
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    s->listen_fd = -1;
    if (s->unlink_path[0])
        unlink(s->unlink_path);
}
