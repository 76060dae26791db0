/* http.h - libmicrohttpd glue: listening, limits, auth, CORS, replies.
 *
 * One thread per connection (libmicrohttpd's internal threading), so a
 * handler may block while its tokens are generated.  Before a handler sees
 * a request, the prefix is stripped, CORS preflights are answered, the API
 * key is checked (in constant time; /health is exempt) and the body is read
 * up to the limit (413 beyond it, refused from Content-Length before the
 * body is sent when possible).
 */
#ifndef ECH_SERVE_HTTP_H
#define ECH_SERVE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "serve/request.h"
#include "serve/server.h"

/* One request, as handlers see it. */
typedef struct ech_http {
    ech_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;                   /* without the API prefix */
    const char *body;
    size_t body_len;
    const char *origin;                 /* the allowed Origin to echo, or NULL */
} ech_http;

/* Replies.  Each queues a response and returns what the access handler
 * returns.  ech_http_json takes ownership of `obj`. */
enum MHD_Result ech_http_json(ech_http *h, unsigned status, json_object *obj);
enum MHD_Result ech_http_text(ech_http *h, unsigned status, const char *ctype, const char *text, size_t len);
enum MHD_Result ech_http_error(ech_http *h, const ech_api_error *e);
enum MHD_Result ech_http_errorf(ech_http *h, unsigned status, const char *type, const char *code,
                                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A chunked response whose body `rd` produces; `fr` frees `cls` when done. */
enum MHD_Result ech_http_stream(ech_http *h, const char *ctype, MHD_ContentReaderCallback rd, void *cls,
                                MHD_ContentReaderFreeCallback fr);

/* The connection's socket, and whether its peer has closed it. */
int ech_http_fd(ech_http *h);
bool ech_http_peer_closed(int fd);

/* Listen as the options say; fills s->daemon, s->bound_port. */
ech_status ech_http_listen(ech_server *s, ech_error *err);
/* Stop accepting connections (in-flight ones continue). */
void ech_http_quiesce(ech_server *s);
/* Close everything. */
void ech_http_close(ech_server *s);

/* The route table lives with the handlers (api.c). */
enum MHD_Result ech_api_dispatch(ech_http *h);

#endif
