/* sse_parse.c - the event-stream decoder (WHATWG HTML, "Parsing an event stream"). */
#include "config.h"
#include "net/sse_parse.h"

#include <string.h>

enum { DEFAULT_MAX_EVENT = 16 << 20 };

static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};

void ech_sse_parser_init(ech_sse_parser *p, size_t max_event)
{
    memset(p, 0, sizeof *p);
    p->retry_ms = -1;
    p->max_event = max_event ? max_event : DEFAULT_MAX_EVENT;
}

void ech_sse_parser_free(ech_sse_parser *p)
{
    ech_buf_free(&p->line);
    ech_buf_free(&p->data);
    ech_buf_free(&p->event);
    ech_buf_free(&p->last_id);
}

static int field_is(const char *f, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(f, name, n) == 0;
}

static ech_status set_buf(ech_buf *b, const char *s, size_t n)
{
    ech_buf_clear(b);
    return ech_buf_append(b, s, n);
}

static ech_status dispatch(ech_sse_parser *p, ech_sse_fn fn, void *user, ech_error *err)
{
    if (p->data.len == 0) {   /* no data line: nothing to dispatch */
        ech_buf_clear(&p->event);
        return ECH_OK;
    }
    p->data.data[--p->data.len] = '\0';   /* every data line appended a '\n' */
    ech_sse_message m = {
        .event = p->event.len ? p->event.data : "message",
        .event_len = p->event.len ? p->event.len : strlen("message"),
        .data = p->data.data,
        .data_len = p->data.len,
        .last_id = p->last_id.len ? p->last_id.data : "",
        .last_id_len = p->last_id.len,
    };
    p->n_events++;
    int stop = fn ? fn(user, &m) : 0;
    ech_buf_clear(&p->data);
    ech_buf_clear(&p->event);
    if (stop)
        return ech_error_set(err, ECH_ERR_CANCELED, "event stream: stopped by the callback");
    return ECH_OK;
}

static ech_status process_line(ech_sse_parser *p, ech_sse_fn fn, void *user, ech_error *err)
{
    const char *s = p->line.data ? p->line.data : "";
    size_t n = p->line.len;
    ech_status st = ECH_OK;
    if (n == 0)
        return dispatch(p, fn, user, err);
    if (s[0] == ':') {
        p->n_comments++;
        ech_buf_clear(&p->line);
        return ECH_OK;
    }
    const char *colon = memchr(s, ':', n);
    size_t flen = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vlen = (size_t)(s + n - v);
    if (vlen && v[0] == ' ')
        v++, vlen--;
    if (field_is(s, flen, "data")) {
        if (p->data.len + vlen + 1 > p->max_event)
            st = ech_error_set(err, ECH_ERR_RANGE, "event stream: an event is over %zu bytes", p->max_event);
        else if ((st = ech_buf_append(&p->data, v, vlen)) == ECH_OK)
            st = ech_buf_putc(&p->data, '\n');
    } else if (field_is(s, flen, "event")) {
        st = set_buf(&p->event, v, vlen);
    } else if (field_is(s, flen, "id")) {
        if (!memchr(v, '\0', vlen))
            st = set_buf(&p->last_id, v, vlen);
    } else if (field_is(s, flen, "retry")) {
        long ms = 0;
        size_t i = 0;
        for (; i < vlen && v[i] >= '0' && v[i] <= '9'; i++)
            ms = ms > 100000000L ? ms : ms * 10 + (v[i] - '0');   /* saturate, never overflow */
        if (vlen && i == vlen)
            p->retry_ms = ms;
    }   /* any other field is ignored */
    if (st == ECH_ERR_NOMEM)
        ech_error_set(err, st, "out of memory");
    ech_buf_clear(&p->line);
    return st;
}

static ech_status add_to_line(ech_sse_parser *p, const char *s, size_t n, ech_error *err)
{
    if (p->line.len + n + p->data.len > p->max_event)
        return ech_error_set(err, ECH_ERR_RANGE, "event stream: an event is over %zu bytes", p->max_event);
    if (ech_buf_append(&p->line, s, n) != ECH_OK)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    return ECH_OK;
}

ech_status ech_sse_parser_feed(ech_sse_parser *p, const char *bytes, size_t n, ech_sse_fn fn, void *user,
                               ech_error *err)
{
    size_t i = 0;
    ech_status st;
    /* A UTF-8 BOM is dropped once, at the very start (maybe split across feeds). */
    while (!p->started && i < n) {
        if ((unsigned char)bytes[i] == bom[p->bom_match]) {
            i++;
            if (++p->bom_match == 3)
                p->started = 1;
            continue;
        }
        p->started = 1;
        if (p->bom_match && (st = add_to_line(p, (const char *)bom, (size_t)p->bom_match, err)) != ECH_OK)
            return st;
    }
    while (i < n) {
        if (p->after_cr) {
            p->after_cr = 0;
            if (bytes[i] == '\n') {   /* the LF of a CRLF whose CR ended the line */
                i++;
                continue;
            }
        }
        size_t j = i;
        while (j < n && bytes[j] != '\r' && bytes[j] != '\n')
            j++;
        if (j > i && (st = add_to_line(p, bytes + i, j - i, err)) != ECH_OK)
            return st;
        if (j == n)
            break;
        p->after_cr = bytes[j] == '\r';
        i = j + 1;
        if ((st = process_line(p, fn, user, err)) != ECH_OK)
            return st;
    }
    return ECH_OK;
}

int ech_sse_parser_finish(ech_sse_parser *p)
{
    int pending = p->line.len > 0 || p->data.len > 0;
    ech_buf_clear(&p->line);
    ech_buf_clear(&p->data);
    ech_buf_clear(&p->event);
    p->after_cr = 0;
    return pending;
}
