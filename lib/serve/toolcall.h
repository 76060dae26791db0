/* toolcall.h - tools in the prompt, tool calls out of the model's text.
 *
 * Tools reach the model through the chat template (its `tools` variable);
 * what comes back is plain text in the template family's own syntax:
 *   hermes  <tool_call>{"name": ..., "arguments": {...}}</tool_call>, any
 *           number of them (Qwen 2.5/3, Hermes 2 Pro/3)
 *   llama3  the whole reply is {"name": ..., "parameters": {...}} (several
 *           separated by ";"), optionally after <|python_tag|> (Llama 3.x)
 * The parser turns that into OpenAI tool calls; text that does not parse
 * stays content, so a model that misformats a call loses nothing.
 */
#ifndef ECH_SERVE_TOOLCALL_H
#define ECH_SERVE_TOOLCALL_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "core/buf.h"
#include "core/status.h"

typedef enum ech_tool_family { ECH_TOOLS_NONE = 0, ECH_TOOLS_HERMES, ECH_TOOLS_LLAMA3 } ech_tool_family;

/* Which syntax a chat template teaches its model (from the template text). */
ech_tool_family ech_tool_family_detect(const char *tpl, size_t len);
const char *ech_tool_family_name(ech_tool_family f);   /* "none", "hermes", "llama3" */

typedef struct ech_tool_call {
    char *name;         /* malloc'ed */
    char *arguments;    /* a JSON text (an object for well-formed calls), malloc'ed */
} ech_tool_call;

typedef struct ech_tool_calls {
    ech_tool_call *v;
    size_t n;
} ech_tool_calls;

void ech_tool_calls_free(ech_tool_calls *c);

/* Split a whole reply into content (appended to `content`) and tool calls
 * (appended to `calls`).  When a call is malformed the whole reply is
 * content and `calls` stays empty.  ECH_ERR_NOMEM is the only failure. */
ech_status ech_tool_parse(ech_tool_family f, const char *text, size_t len, ech_buf *content,
                          ech_tool_calls *calls);

/* The start of a tool call in family `f`, appended to `out`: put at the
 * head of the assistant's turn, it makes the model continue inside a call
 * (tool_choice "required", or a named function).  With `name` the opener
 * runs up to where the arguments begin ({"name": "NAME", "arguments": );
 * *name_off and *name_len (may be NULL) then give the JSON string of the name
 * within `out`, which the caller tokenizes as text, not as special tokens.
 * Without a name it stops inside the name's string.  ECH_ERR_INVALID for
 * ECH_TOOLS_NONE, ECH_ERR_NOMEM. */
ech_status ech_tool_prefill(ech_tool_family f, const char *name, ech_buf *out, size_t *name_off,
                            size_t *name_len);

/* Streaming: text that is surely content is released at once; from the
 * first sign of a tool call on, text is held until the end. */
typedef struct ech_tool_stream {
    ech_tool_family f;
    ech_buf held;        /* text not released yet */
    bool in_call;        /* a call began: hold everything */
    bool decided;        /* llama3: the first non-blank byte was seen */
} ech_tool_stream;

void ech_tool_stream_init(ech_tool_stream *s, ech_tool_family f);
/* Add generated text; append what can be shown now to `release`. */
ech_status ech_tool_stream_feed(ech_tool_stream *s, const char *text, size_t len, ech_buf *release);
/* End of the reply: the rest of the content and the calls. */
ech_status ech_tool_stream_finish(ech_tool_stream *s, ech_buf *content, ech_tool_calls *calls);
void ech_tool_stream_free(ech_tool_stream *s);

/* A copy of OpenAI `messages` that chat templates can render: content parts
 * joined into one string, role "developer" as "system", and tool-call
 * arguments given as JSON text turned into objects (templates apply
 * `tojson` to them).  A new reference. */
json_object *ech_tool_normalize_messages(json_object *messages);

/* "call_" and 24 random letters and digits, into buf (>= 30 bytes). */
void ech_tool_call_id(char *buf, size_t n);

#endif
