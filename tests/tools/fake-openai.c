/* fake-openai - a deterministic OpenAI-compatible endpoint for tests.
 *
 *   fake-openai --script FILE [--record FILE] [--port N]
 *
 * Answers the requests it receives, in order, with the responses a script
 * describes (one JSON object per line; blank lines and lines starting with
 * '#' are skipped):
 *
 *   {"status": 200, "headers": {"x-request-id": "req_1"}, "json": {...}}
 *   {"body": "raw text", "headers": {"content-type": "text/plain"}}
 *   {"sse": [{...chunk...}, "[DONE]"], "chunk_delay_ms": 20}
 *   {"chunks": ["data: {\"a\"", ":1}\n\n"], "cut_after": 40}
 *   {"status": 429, "headers": {"retry-after": "1"}, "json": {"error": {...}}}
 *   {"delay_ms": 3000, "json": {...}, "repeat": 2}
 *
 *   status          HTTP status (default 200)
 *   headers         response headers (names as given)
 *   delay_ms        wait this long before answering
 *   json            a JSON value, sent as application/json
 *   body            a string, sent as it is (text/plain unless headers say)
 *   sse             each element becomes "data: X\n\n": a string as it is,
 *                   anything else as one line of JSON (text/event-stream)
 *   chunks          strings written verbatim, each a separate write
 *                   (text/event-stream unless headers say)
 *   chunk_delay_ms  wait before each sse/chunks element
 *   cut_after       close the connection after this many body bytes
 *   repeat          answer this many requests with it (default 1)
 *
 * A request that finds the script exhausted gets a 500.  With --record,
 * every request is appended to FILE as one JSON line when it has arrived:
 * {"n":1,"method":"POST","path":"/v1/chat/completions","peer_port":P,
 * "headers":{lower-case names},"body":JSON} ("body_text" instead when the
 * body is not JSON; requests with the same peer_port came over one
 * connection).
 * Prints "fake-openai: listening on http://127.0.0.1:PORT" on stderr.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "core/buf.h"
#include "core/json.h"

static const char *prog = "fake-openai";

typedef struct entry {
    json_object *j;
    long left;   /* repeats left */
} entry;

static entry *script;
static size_t n_script, next_entry;
static long n_requests;
static FILE *record;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void sleep_ms(long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static long get_long(json_object *o, const char *k, long def)
{
    json_object *v = get(o, k);
    return v ? (long)json_object_get_int64(v) : def;
}

/* ---- the body, as pieces written one by one --------------------------------- */

typedef struct piece {
    char *data;
    size_t len;
    long delay_ms;
} piece;

typedef struct stream {
    piece *v;
    size_t n, at, off;
    size_t sent, cut;   /* cut: 0 = never */
    int started;        /* the current piece's delay was waited */
} stream;

static void stream_free(void *cls)
{
    stream *s = cls;
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].data);
    free(s->v);
    free(s);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *s = cls;
    for (;;) {
        if (s->cut && s->sent >= s->cut)
            return MHD_CONTENT_READER_END_WITH_ERROR;   /* drops the connection */
        if (s->at == s->n)
            return MHD_CONTENT_READER_END_OF_STREAM;
        piece *p = &s->v[s->at];
        if (!s->started) {
            sleep_ms(p->delay_ms);
            s->started = 1;
        }
        if (s->off == p->len) {
            s->at++, s->off = 0, s->started = 0;
            continue;
        }
        size_t n = p->len - s->off;
        if (n > max)
            n = max;
        if (s->cut && s->sent + n > s->cut)
            n = s->cut - s->sent;
        memcpy(buf, p->data + s->off, n);
        s->off += n;
        s->sent += n;
        return (ssize_t)n;
    }
}

static int add_piece(stream *s, const char *data, size_t len, long delay)
{
    piece *g = realloc(s->v, (s->n + 1) * sizeof *g);
    if (!g)
        return -1;
    s->v = g;
    char *d = malloc(len + 1);
    if (!d)
        return -1;
    memcpy(d, data, len);
    s->v[s->n++] = (piece){d, len, delay};
    return 0;
}

/* ---- requests ------------------------------------------------------------------- */

typedef struct conn {
    ech_buf body;
} conn;

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    json_object *h = cls;
    char name[256];
    size_t i = 0;
    for (; key[i] && i + 1 < sizeof name; i++)
        name[i] = (char)tolower((unsigned char)key[i]);
    name[i] = '\0';
    json_object_object_add(h, name, json_object_new_string(value ? value : ""));
    return MHD_YES;
}

static void record_request(struct MHD_Connection *c, const char *method, const char *url, const ech_buf *body, long n)
{
    if (!record)
        return;
    json_object *o = json_object_new_object(), *h = json_object_new_object();
    json_object_object_add(o, "n", json_object_new_int64(n));
    json_object_object_add(o, "method", json_object_new_string(method));
    json_object_object_add(o, "path", json_object_new_string(url));
    /* the client's port tells which requests shared a connection (keep-alive) */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        json_object_object_add(o, "peer_port",
                               json_object_new_int(ntohs(((const struct sockaddr_in *)ci->client_addr)->sin_port)));
    MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, h);
    json_object_object_add(o, "headers", h);
    enum json_tokener_error e = json_tokener_error_parse_eof;
    json_object *b = body->len ? json_tokener_parse_verbose(body->data, &e) : NULL;
    if (b || (body->len && e == json_tokener_success))
        json_object_object_add(o, "body", b);
    else if (body->len)
        json_object_object_add(o, "body_text", ech_json_string(body->data, body->len));
    fprintf(record, "%s\n", ech_json_line(o));
    fflush(record);
    json_object_put(o);
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, struct MHD_Response *r)
{
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result exhausted(struct MHD_Connection *c, long n)
{
    char msg[160];
    snprintf(msg, sizeof msg, "{\"error\":{\"message\":\"fake-openai: script exhausted at request %ld\","
             "\"type\":\"server_error\"}}", n);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(msg), msg, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    return answer(c, 500, r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **con_cls)
{
    (void)cls, (void)version;
    conn *cs = *con_cls;
    if (!cs) {
        if (!(cs = calloc(1, sizeof *cs)))
            return MHD_NO;
        *con_cls = cs;
        return MHD_YES;
    }
    if (*size) {
        if (ech_buf_append(&cs->body, data, *size) != ECH_OK)
            return MHD_NO;
        *size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&lock);
    long n = ++n_requests;
    record_request(c, method, url, &cs->body, n);
    json_object *e = NULL;
    if (next_entry < n_script) {
        e = script[next_entry].j;
        if (--script[next_entry].left <= 0)
            next_entry++;
    }
    pthread_mutex_unlock(&lock);
    if (!e)
        return exhausted(c, n);

    sleep_ms(get_long(e, "delay_ms", 0));
    unsigned status = (unsigned)get_long(e, "status", 200);
    long chunk_delay = get_long(e, "chunk_delay_ms", 0);
    long cut = get_long(e, "cut_after", 0);
    json_object *jv = get(e, "json"), *body = get(e, "body"), *sse = get(e, "sse"), *chunks = get(e, "chunks");
    const char *ctype = "application/json";
    stream *s = calloc(1, sizeof *s);
    if (!s)
        return MHD_NO;
    s->cut = cut > 0 ? (size_t)cut : 0;
    int bad = 0;
    if (sse || chunks) {
        ctype = "text/event-stream";
        json_object *a = sse ? sse : chunks;
        for (size_t i = 0; !bad && i < json_object_array_length(a); i++) {
            json_object *x = json_object_array_get_idx(a, i);
            ech_buf b = {0};
            if (chunks)
                ech_buf_append(&b, json_object_get_string(x), (size_t)json_object_get_string_len(x));
            else if (json_object_is_type(x, json_type_string))
                ech_buf_printf(&b, "data: %s\n\n", json_object_get_string(x));
            else
                ech_buf_printf(&b, "data: %s\n\n", ech_json_line(x));
            bad = add_piece(s, b.data ? b.data : "", b.len, chunk_delay) != 0;
            ech_buf_free(&b);
        }
    } else if (body) {
        ctype = "text/plain";
        bad = add_piece(s, json_object_get_string(body), (size_t)json_object_get_string_len(body), 0) != 0;
    } else if (jv) {
        const char *t = ech_json_line(jv);
        bad = add_piece(s, t, strlen(t), 0) != 0;
    }
    if (bad) {
        stream_free(s);
        return MHD_NO;
    }
    size_t total = 0;
    for (size_t i = 0; i < s->n; i++)
        total += s->v[i].len;
    /* whole bodies keep their Content-Length, so a cut one is visibly short */
    uint64_t size_hdr = sse || chunks ? MHD_SIZE_UNKNOWN : total;
    struct MHD_Response *r = MHD_create_response_from_callback(size_hdr, 4096, stream_read, s, stream_free);
    if (!r) {
        stream_free(s);
        return MHD_NO;
    }
    int has_ctype = 0;
    json_object *hdrs = get(e, "headers");
    if (hdrs && json_object_is_type(hdrs, json_type_object)) {
        json_object_object_foreach(hdrs, k, v) {
            MHD_add_response_header(r, k, json_object_get_string(v));
            has_ctype |= strcasecmp(k, "content-type") == 0;
        }
    }
    if (!has_ctype)
        MHD_add_response_header(r, "Content-Type", ctype);
    return answer(c, status, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    conn *cs = *con_cls;
    if (cs) {
        ech_buf_free(&cs->body);
        free(cs);
    }
    *con_cls = NULL;
}

static int load_script(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        size_t k = 0;
        while (k < (size_t)len && isspace((unsigned char)line[k]))
            k++;
        if (k == (size_t)len || line[k] == '#')
            continue;
        enum json_tokener_error e;
        json_object *j = json_tokener_parse_verbose(line, &e);
        if (!j || !json_object_is_type(j, json_type_object)) {
            fprintf(stderr, "%s: %s:%zu: not a JSON object (%s)\n", prog, path, lineno, json_tokener_error_desc(e));
            json_object_put(j);
            free(line);
            fclose(f);
            return -1;
        }
        entry *g = realloc(script, (n_script + 1) * sizeof *g);
        if (!g)
            return -1;
        script = g;
        script[n_script++] = (entry){j, get_long(j, "repeat", 1)};
    }
    free(line);
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    const char *script_path = NULL, *record_path = NULL;
    long port = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--script") && i + 1 < argc)
            script_path = argv[++i];
        else if (!strcmp(argv[i], "--record") && i + 1 < argc)
            record_path = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s --script FILE [--record FILE] [--port N]\n", prog);
            return 2;
        }
    }
    if (!script_path) {
        fprintf(stderr, "usage: %s --script FILE [--record FILE] [--port N]\n", prog);
        return 2;
    }
    if (load_script(script_path) != 0)
        return 1;
    if (record_path && !(record = fopen(record_path, "a"))) {
        fprintf(stderr, "%s: %s: %s\n", prog, record_path, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* block the stop signals before the daemon's threads exist, so they
     * inherit the mask and sigwait below receives them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        fprintf(stderr, "%s: cannot listen: %s\n", prog, strerror(errno));
        return 1;
    }
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                                MHD_USE_ITC | MHD_USE_AUTO,
                                            0, NULL, NULL, on_request, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
                                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "%s: libmicrohttpd could not start\n", prog);
        return 1;
    }
    fprintf(stderr, "%s: listening on http://127.0.0.1:%u (%zu responses)\n", prog, ntohs(sa.sin_port), n_script);
    fflush(stderr);
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    for (size_t i = 0; i < n_script; i++)
        json_object_put(script[i].j);
    free(script);
    if (record)
        fclose(record);
    return 0;
}
