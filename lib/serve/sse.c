/* sse.c - event framing for streamed responses. */
#include "config.h"
#include "serve/sse.h"

#include <string.h>

#include "core/json.h"

ech_status ech_sse_event(ech_buf *out, json_object *obj)
{
    const char *s = ech_json_line(obj);
    if (!s)
        return ECH_ERR_NOMEM;
    ech_status st = ech_buf_puts(out, "data: ");
    if (st == ECH_OK)
        st = ech_buf_puts(out, s);
    if (st == ECH_OK)
        st = ech_buf_puts(out, "\n\n");
    return st;
}

ech_status ech_sse_done(ech_buf *out) { return ech_buf_puts(out, "data: [DONE]\n\n"); }

ech_status ech_sse_comment(ech_buf *out, const char *text)
{
    ech_status st = ech_buf_puts(out, ": ");
    /* a newline would end the comment: cut the text there */
    size_t n = strcspn(text, "\r\n");
    if (st == ECH_OK)
        st = ech_buf_append(out, text, n);
    if (st == ECH_OK)
        st = ech_buf_puts(out, "\n\n");
    return st;
}

ech_status ech_ndjson_line(ech_buf *out, json_object *obj)
{
    const char *s = ech_json_line(obj);
    if (!s)
        return ECH_ERR_NOMEM;
    ech_status st = ech_buf_puts(out, s);
    if (st == ECH_OK)
        st = ech_buf_putc(out, '\n');
    return st;
}
