/* chat_result.h - responses of the client built from JSON: whole replies,
 * and streamed chunks accumulated into the same shape (text joined, tool-call
 * fragments reassembled by index).  Internal to lib/net; not installed.
 */
#ifndef ECH_NET_CHAT_RESULT_H
#define ECH_NET_CHAT_RESULT_H

#include <json-c/json.h>

#include "net/client.h"

/* Parse a whole JSON text (any length, NUL bytes refused); a new reference
 * or NULL with err set (ECH_ERR_FORMAT). */
json_object *ech_client_parse_json(const char *s, size_t len, ech_error *err);

/* A whole chat.completion / text_completion reply into `out` (zeroed
 * first).  ECH_ERR_FORMAT if it is not the right shape. */
ech_status ech_chat_response_from_json(json_object *j, ech_chat_response *out, ech_error *err);
ech_status ech_completion_response_from_json(json_object *j, ech_completion_response *out, ech_error *err);

/* The accumulator of one stream. */
typedef struct ech_chat_acc ech_chat_acc;

/* `completion`: chunks are text_completion ("text"), else chat deltas. */
ech_chat_acc *ech_chat_acc_new(bool completion, ech_chat_stream_fn fn, void *user);
void ech_chat_acc_free(ech_chat_acc *a);

/* One SSE event: its type and data ("[DONE]", a chunk, or an error object).
 * ECH_ERR_HTTP for an error sent in the stream (the error's fields go to
 * `ce`), ECH_ERR_FORMAT for data that is not a JSON object, ECH_ERR_CANCELED
 * when the callback stops, ECH_ERR_RANGE past the limits on choices and
 * tool calls. */
ech_status ech_chat_acc_event(ech_chat_acc *a, const char *event, const char *data, size_t len,
                              ech_client_error *ce, ech_error *err);

/* "[DONE]" came. */
bool ech_chat_acc_done(const ech_chat_acc *a);
/* Some choice reported a finish_reason. */
bool ech_chat_acc_finished(const ech_chat_acc *a);
/* Chunks received so far. */
size_t ech_chat_acc_chunks(const ech_chat_acc *a);

/* End of the stream: deliver the tool calls not yet delivered, then move
 * everything into `out` (chat or completion, as created). */
ech_status ech_chat_acc_finish(ech_chat_acc *a, ech_chat_response *out, ech_error *err);
ech_status ech_chat_acc_finish_completion(ech_chat_acc *a, ech_completion_response *out, ech_error *err);

/* Set err's message from `ce` ("HTTP 429 (rate limit): ... [request id X]"). */
ech_status ech_client_error_report(const ech_client_error *ce, ech_status code, ech_error *err);

#endif
