/* request.h - request bodies: parse, type-check, range-check.
 *
 * Everything a client sends is checked here before it reaches a model, and
 * every problem becomes an OpenAI-shaped error naming the parameter.  Fields
 * we do not know are ignored (clients send vendor extras); explicit nulls
 * mean "not given".  Strings in the result point into the parsed body, so
 * the body must outlive them.
 */
#ifndef ECH_SERVE_REQUEST_H
#define ECH_SERVE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/status.h"
#include "gen/generate.h"
#include "gen/sampler.h"

typedef enum ech_api_kind {
    ECH_API_CHAT,             /* POST /v1/chat/completions */
    ECH_API_COMPLETION,       /* POST /v1/completions */
    ECH_API_OLLAMA_CHAT,      /* POST /api/chat */
    ECH_API_OLLAMA_GENERATE   /* POST /api/generate */
} ech_api_kind;

/* An error to send: status, OpenAI "type" and "code", message. */
typedef struct ech_api_error {
    int status;
    const char *type;          /* "invalid_request_error", ... (static) */
    const char *code;          /* "invalid_value", ... (static) or NULL */
    const char *param;         /* the parameter at fault (static or in the body) or NULL */
    char msg[384];
} ech_api_error;

/* Fill *e and return ECH_ERR_INVALID. */
ech_status ech_api_fail(ech_api_error *e, int status, const char *type, const char *code, const char *param,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Parse a request body: strict JSON, valid UTF-8, an object, nothing after it. */
ech_status ech_api_parse_body(const char *body, size_t len, json_object **out, ech_api_error *e);

enum { ECH_API_MAX_STOP = 16 };

typedef enum ech_tool_choice { ECH_TOOL_AUTO = 0, ECH_TOOL_NONE, ECH_TOOL_REQUIRED, ECH_TOOL_NAMED } ech_tool_choice;

/* A generation request, validated. */
typedef struct ech_api_gen {
    ech_api_kind kind;
    const char *model;         /* or NULL */
    bool stream, include_usage;
    bool logprobs;
    uint32_t top_logprobs;
    int64_t max_tokens;        /* -1: not given (until end of text or context) */
    ech_gen_params gp;         /* gp.stop points at stop */
    const char *stop[ECH_API_MAX_STOP];
    json_object *messages;     /* chat kinds (borrowed) */
    json_object *tools;        /* or NULL */
    ech_tool_choice tool_choice;
    const char *tool_name;     /* ECH_TOOL_NAMED */
    json_object *prompt;       /* completion kinds: a string, or an array (borrowed) */
    const char *system;        /* ollama generate */
    bool raw;                  /* ollama generate: no template */
} ech_api_gen;

/* Validate `body` for `kind`.  Sampling starts from `defaults`. */
ech_status ech_api_parse_gen(json_object *body, ech_api_kind kind, const ech_sampler_params *defaults,
                             ech_api_gen *out, ech_api_error *e);

#endif
