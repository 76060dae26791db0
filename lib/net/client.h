/* client.h - a typed client for OpenAI-compatible HTTP APIs (chat
 * completions, completions, embeddings, models), streaming included.
 *
 * One ech_client holds one libcurl easy handle, so connections are kept
 * alive across requests.  A client is used by one thread at a time; give
 * each thread its own (libcurl's global initialisation is done once, safely).
 *
 * Requests borrow everything they point at (strings, json_object values);
 * nothing is kept after the call returns.  Responses are filled into a
 * struct the caller provides and released with the matching *_free
 * function; every string in a response is malloc'ed, NUL-terminated and
 * owned by the response.
 *
 * Failures return ECH_ERR_HTTP (the server answered with an error status, or
 * sent an error inside a stream), ECH_ERR_NET (no usable answer: connection,
 * timeout, a cut stream), ECH_ERR_FORMAT (an answer that is not the JSON it
 * should be), ECH_ERR_CANCELED (a callback asked to stop), ECH_ERR_INVALID
 * (a bad argument) or ECH_ERR_NOMEM; `err->msg` then reads like
 * "HTTP 429 (rate limit): <the server's message> [request id req_123]".
 * ech_client_last_error() gives the same failure as typed fields.
 */
#ifndef ECH_NET_CLIENT_H
#define ECH_NET_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the client ------------------------------------------------------------ */

typedef struct ech_client ech_client;

typedef struct ech_client_opts {
    const char *base_url;      /* NULL: $ECH_BASE_URL, else $OPENAI_BASE_URL, else
                                  http://127.0.0.1:8080/v1 (paths are appended to it) */
    const char *api_key;       /* NULL: $ECH_API_KEY, else $OPENAI_API_KEY, else none;
                                  sent as "Authorization: Bearer KEY" */
    const char *model;         /* default model for requests that name none; NULL:
                                  $ECH_MODEL, else none (no "model" field is sent) */
    double timeout_s;          /* 0: 600.  A whole request; for a stream, the longest
                                  wait for the next byte */
    double connect_timeout_s;  /* 0: 5 */
    int max_retries;           /* retries after the first try; -1: 2 */
    double retry_min_s;        /* first backoff; 0: 0.5 (then doubling, jittered) */
    double retry_max_s;        /* longest backoff; 0: 8 */
    const char *const *headers; /* extra request headers "Name: value", or NULL */
    size_t n_headers;
} ech_client_opts;

/* A new client; `o` may be NULL for all defaults.  The options' strings are
 * copied. */
ech_status ech_client_new(const ech_client_opts *o, ech_client **out, ech_error *err);
void ech_client_free(ech_client *c);

/* The base URL in use (without a trailing '/'); borrowed from the client. */
const char *ech_client_base_url(const ech_client *c);

/* ---- typed errors ------------------------------------------------------------ */

typedef enum ech_client_error_kind {
    ECH_CLIENT_OK = 0,
    ECH_CLIENT_BAD_REQUEST,    /* HTTP 400 */
    ECH_CLIENT_AUTH,           /* HTTP 401 */
    ECH_CLIENT_PERMISSION,     /* HTTP 403 */
    ECH_CLIENT_NOT_FOUND,      /* HTTP 404 */
    ECH_CLIENT_CONFLICT,       /* HTTP 409 */
    ECH_CLIENT_UNPROCESSABLE,  /* HTTP 422 */
    ECH_CLIENT_RATE_LIMIT,     /* HTTP 429 */
    ECH_CLIENT_SERVER,         /* HTTP 5xx, or an error object inside a stream */
    ECH_CLIENT_STATUS,         /* any other HTTP error status */
    ECH_CLIENT_CONNECTION,     /* could not connect, or the connection broke */
    ECH_CLIENT_TIMEOUT,        /* the request or stream timed out */
    ECH_CLIENT_RESPONSE,       /* a malformed answer (bad JSON, bad SSE) */
    ECH_CLIENT_CANCELED,       /* a callback returned nonzero */
    ECH_CLIENT_LOCAL,          /* invalid argument or out of memory */
} ech_client_error_kind;

typedef struct ech_client_error {
    ech_client_error_kind kind;
    int http_status;           /* 0 when no status was received */
    int attempts;              /* tries made, retries included */
    char message[256];         /* the server's error.message, or what went wrong */
    char type[64];             /* the server's error.type ("" if none) */
    char code[64];             /* the server's error.code ("" if none) */
    char param[64];            /* the server's error.param ("" if none) */
    char request_id[128];      /* the x-request-id response header ("" if none) */
} ech_client_error;

/* Details of the last failed request on `c` (kind ECH_CLIENT_OK after a
 * success); borrowed, valid until the next request on `c`. */
const ech_client_error *ech_client_last_error(const ech_client *c);

/* A static name for a kind: "bad request", "rate limit", "timeout", ... */
const char *ech_client_error_kind_name(ech_client_error_kind k);

/* ---- shared pieces --------------------------------------------------------------- */

/* Sampling parameters; a zeroed struct sends none of them (server defaults). */
typedef struct ech_sampling {
    bool has_temperature;
    double temperature;
    bool has_top_p;
    double top_p;
    long max_tokens;           /* 0: not sent */
    const char *const *stop;   /* stop strings, or NULL */
    size_t n_stop;
    bool has_seed;
    int64_t seed;
} ech_sampling;

typedef struct ech_usage {
    bool present;              /* the server reported usage */
    long prompt_tokens;
    long completion_tokens;
    long total_tokens;
    long cached_tokens;        /* prompt_tokens_details.cached_tokens, 0 if absent */
} ech_usage;

/* ---- chat completions ------------------------------------------------------------ */

typedef enum ech_chat_role {
    ECH_ROLE_USER = 0, ECH_ROLE_SYSTEM, ECH_ROLE_ASSISTANT, ECH_ROLE_TOOL, ECH_ROLE_DEVELOPER,
} ech_chat_role;

/* "user", "system", "assistant", "tool", "developer". */
const char *ech_chat_role_name(ech_chat_role r);

/* One tool call: in a request (an assistant message's calls, borrowed) and
 * in a response (owned by it). */
typedef struct ech_chat_tool_call {
    char *id;                  /* "call_..." ("" if the server sent none) */
    char *name;                /* the function's name */
    char *arguments;           /* JSON text exactly as the model wrote it: it may
                                  be invalid JSON, check before use */
} ech_chat_tool_call;

typedef struct ech_chat_msg {
    ech_chat_role role;
    const char *content;       /* NULL: no content (null in JSON) */
    const char *name;          /* optional participant name */
    const char *tool_call_id;  /* role tool: the call this answers */
    const ech_chat_tool_call *tool_calls;  /* role assistant: the calls it made */
    size_t n_tool_calls;
    json_object *content_parts; /* instead of content: an array of content parts */
} ech_chat_msg;

/* A function tool. */
typedef struct ech_chat_tool {
    const char *name;
    const char *description;   /* may be NULL */
    json_object *parameters;   /* JSON Schema of the arguments; NULL: {"type":"object"} */
    bool strict;               /* sent as "strict": true when set */
} ech_chat_tool;

typedef struct ech_chat_request {
    const char *model;         /* NULL: the client's default */
    const ech_chat_msg *messages;
    size_t n_messages;
    json_object *messages_json; /* instead of messages: a JSON array sent as it is */
    const ech_chat_tool *tools;
    size_t n_tools;
    json_object *tools_json;   /* instead of tools: a JSON array sent as it is */
    const char *tool_choice;   /* "auto", "none", "required" or a function name; NULL: not sent */
    int parallel_tool_calls;   /* 0: not sent, 1: true, -1: false */
    json_object *response_format; /* e.g. {"type":"json_object"}; NULL: not sent */
    ech_sampling sampling;
    json_object *extra;        /* more top-level fields, merged in last (may override) */
    double timeout_s;          /* this request only; 0: the client's */
} ech_chat_request;

typedef struct ech_chat_choice {
    size_t index;
    char *content;             /* NULL when the message had no content */
    size_t content_len;
    char *reasoning;           /* reasoning_content if the server sent any, else NULL */
    ech_chat_tool_call *tool_calls;
    size_t n_tool_calls;
    char *finish_reason;       /* "stop", "length", "tool_calls", ...; NULL if none */
} ech_chat_choice;

typedef struct ech_chat_response {
    char *id;
    char *model;
    char *system_fingerprint;  /* NULL if absent */
    int64_t created;
    ech_chat_choice *choices;  /* ordered by index */
    size_t n_choices;
    ech_usage usage;
    char *request_id;          /* the x-request-id response header, NULL if none */
} ech_chat_response;

/* What a stream delivers, in order. */
typedef enum ech_chat_event_kind {
    ECH_CHAT_DELTA = 1,        /* text: a piece of the message content */
    ECH_CHAT_REASONING,        /* text: a piece of reasoning_content */
    ECH_CHAT_TOOL_CALL,        /* tool_call: one complete call (all fragments joined) */
    ECH_CHAT_FINISH,           /* finish_reason of `choice` */
    ECH_CHAT_USAGE,            /* usage (the last chunk, when the server sends it) */
} ech_chat_event_kind;

typedef struct ech_chat_event {
    ech_chat_event_kind kind;
    size_t choice;             /* the choice's index */
    const char *text;          /* DELTA, REASONING: bytes (not NUL-terminated) */
    size_t len;
    const ech_chat_tool_call *tool_call;   /* TOOL_CALL */
    size_t tool_index;         /* TOOL_CALL: its index among the choice's calls */
    const char *finish_reason; /* FINISH */
    const ech_usage *usage;    /* USAGE */
} ech_chat_event;

/* Called for each event of a stream; everything it points at is borrowed
 * for the call only.  Return nonzero to stop (ECH_ERR_CANCELED). */
typedef int (*ech_chat_stream_fn)(void *user, const ech_chat_event *ev);

/* POST /chat/completions.  With `on_event` NULL the answer is fetched whole;
 * otherwise it is streamed ("stream": true, with usage requested), each event
 * goes to on_event as it arrives, and `resp` still receives the assembled
 * whole (text joined, tool calls reassembled by index).  `resp` may be NULL
 * when only the events matter; otherwise release it with
 * ech_chat_response_free (also after a failure: it is then empty). */
ech_status ech_client_chat(ech_client *c, const ech_chat_request *req, ech_chat_stream_fn on_event,
                           void *user, ech_chat_response *resp, ech_error *err);
void ech_chat_response_free(ech_chat_response *r);

/* Deliver a whole reply to `fn` as the events a stream of it would have
 * given (REASONING, DELTA, TOOL_CALL, FINISH per choice, then USAGE);
 * ECH_ERR_CANCELED if fn returns nonzero.  ech_client_chat does this itself
 * when a server answers a streamed request with plain JSON. */
ech_status ech_chat_response_replay(const ech_chat_response *r, ech_chat_stream_fn fn, void *user, ech_error *err);

/* The assistant message of `ch` as a JSON object ({"role":"assistant",
 * "content":..., "tool_calls":[...]}), ready to append to a conversation.
 * A new reference (the caller puts it), NULL on OOM. */
json_object *ech_chat_choice_message_json(const ech_chat_choice *ch);

/* ---- completions ------------------------------------------------------------------- */

typedef struct ech_completion_request {
    const char *model;         /* NULL: the client's default */
    const char *prompt;
    ech_sampling sampling;
    json_object *extra;        /* more top-level fields, merged in last */
    double timeout_s;          /* 0: the client's */
} ech_completion_request;

typedef struct ech_completion_choice {
    size_t index;
    char *text;
    size_t text_len;
    char *finish_reason;       /* NULL if none */
} ech_completion_choice;

typedef struct ech_completion_response {
    char *id;
    char *model;
    int64_t created;
    ech_completion_choice *choices;
    size_t n_choices;
    ech_usage usage;
    char *request_id;
} ech_completion_response;

/* POST /completions; streamed like ech_client_chat when on_event is set
 * (DELTA, FINISH and USAGE events). */
ech_status ech_client_completion(ech_client *c, const ech_completion_request *req, ech_chat_stream_fn on_event,
                                 void *user, ech_completion_response *resp, ech_error *err);
void ech_completion_response_free(ech_completion_response *r);

/* ---- embeddings ---------------------------------------------------------------------- */

typedef struct ech_embedding_request {
    const char *model;         /* NULL: the client's default */
    const char *const *input;  /* the texts */
    size_t n_input;
    long dimensions;           /* 0: not sent */
    json_object *extra;
    double timeout_s;
} ech_embedding_request;

typedef struct ech_embedding {
    size_t index;
    float *v;
    size_t dim;
} ech_embedding;

typedef struct ech_embedding_response {
    char *model;
    ech_embedding *data;       /* ordered by index */
    size_t n;
    ech_usage usage;
    char *request_id;
} ech_embedding_response;

/* POST /embeddings (floats; "encoding_format": "float"). */
ech_status ech_client_embeddings(ech_client *c, const ech_embedding_request *req, ech_embedding_response *resp,
                                 ech_error *err);
void ech_embedding_response_free(ech_embedding_response *r);

/* ---- models ------------------------------------------------------------------------------ */

typedef struct ech_model_entry {
    char *id;
    char *owned_by;            /* NULL if absent */
    int64_t created;
} ech_model_entry;

typedef struct ech_model_list {
    ech_model_entry *v;
    size_t n;
    char *request_id;
} ech_model_list;

/* GET /models. */
ech_status ech_client_models(ech_client *c, ech_model_list *out, ech_error *err);
void ech_model_list_free(ech_model_list *l);

/* ---- anything else ---------------------------------------------------------------------- */

/* `method` ("GET", "POST", "DELETE") `path` (appended to the base URL) with
 * `body` (NULL: none) as JSON; the answer's JSON in *out (a new reference
 * the caller puts).  Same retries and errors as the typed calls. */
ech_status ech_client_request_json(ech_client *c, const char *method, const char *path, json_object *body,
                                   json_object **out, ech_error *err);

#ifdef __cplusplus
}
#endif
#endif
