/* sse.h - the two streaming framings: Server-Sent Events and NDJSON.
 *
 * OpenAI endpoints stream "data: {json}\n\n" events ending with
 * "data: [DONE]\n\n"; Ollama endpoints stream one JSON object per line.
 * JSON is serialised on one line, so an event never contains a newline
 * (json-c escapes those inside strings).
 */
#ifndef ECH_SERVE_SSE_H
#define ECH_SERVE_SSE_H

#include <json-c/json.h>

#include "core/buf.h"
#include "core/status.h"

/* Append "data: <obj>\n\n". */
ech_status ech_sse_event(ech_buf *out, json_object *obj);
/* Append "data: [DONE]\n\n". */
ech_status ech_sse_done(ech_buf *out);
/* Append ": <text>\n\n", a comment that keeps idle connections open. */
ech_status ech_sse_comment(ech_buf *out, const char *text);
/* Append "<obj>\n". */
ech_status ech_ndjson_line(ech_buf *out, json_object *obj);

#endif
