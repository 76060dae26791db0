/* sse_parse.h - a decoder for the text/event-stream format (Server-Sent
 * Events), as the WHATWG HTML standard defines it ("Parsing an event
 * stream"): lines end in CRLF, LF or CR (also split across reads); a leading
 * UTF-8 BOM is dropped; lines starting with ':' are comments; fields are
 * "event", "data" (several data lines join with '\n'), "id" (ignored if it
 * holds a NUL) and "retry" (ASCII digits only); other fields are ignored; a
 * blank line dispatches the event, unless no data line came; an event still
 * open when the stream ends is discarded.
 *
 * Bytes are fed in pieces of any size; events are handed to a callback as
 * they complete.  Nothing here knows about JSON or "[DONE]": that is the
 * client's business (net/client.h).
 */
#ifndef ECH_NET_SSE_PARSE_H
#define ECH_NET_SSE_PARSE_H

#include <stddef.h>

#include "core/buf.h"
#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One dispatched event; the pointers are borrowed for the callback only.
 * `data` and `event` are NUL-terminated as well as counted. */
typedef struct ech_sse_message {
    const char *event;         /* the event type; "message" when none was given */
    size_t event_len;
    const char *data;          /* data lines joined by '\n' (no trailing '\n') */
    size_t data_len;
    const char *last_id;       /* the last event ID so far ("" if none) */
    size_t last_id_len;
} ech_sse_message;

/* Return nonzero to stop: feed then returns ECH_ERR_CANCELED. */
typedef int (*ech_sse_fn)(void *user, const ech_sse_message *m);

typedef struct ech_sse_parser {
    ech_buf line;              /* the line being read */
    ech_buf data;              /* the event's data buffer */
    ech_buf event;             /* the event's type buffer */
    ech_buf last_id;           /* the last event ID buffer */
    long retry_ms;             /* the last valid "retry" value; -1 if none */
    size_t max_event;          /* limit on one event's size (line plus data) */
    size_t n_events;           /* events dispatched so far */
    size_t n_comments;         /* comment lines seen so far */
    int after_cr;              /* the last byte fed was CR (an LF next is part of it) */
    int started;               /* past the first bytes (and BOM) */
    int bom_match;             /* BOM bytes matched so far at the start */
} ech_sse_parser;

/* `max_event` bounds the memory one event may take (a longer line or data
 * buffer is ECH_ERR_RANGE); 0 means 16 MiB. */
void ech_sse_parser_init(ech_sse_parser *p, size_t max_event);
void ech_sse_parser_free(ech_sse_parser *p);

/* Feed `n` bytes; dispatches each event completed by them.  ECH_ERR_RANGE
 * (an event over the limit), ECH_ERR_CANCELED (the callback said stop) or
 * ECH_ERR_NOMEM leave the parser unusable but safe to free. */
ech_status ech_sse_parser_feed(ech_sse_parser *p, const char *bytes, size_t n, ech_sse_fn fn, void *user,
                               ech_error *err);

/* The stream ended: discard a pending event (as the standard says).
 * Returns 1 if something was pending (an incomplete last event), else 0. */
int ech_sse_parser_finish(ech_sse_parser *p);

#ifdef __cplusplus
}
#endif
#endif
