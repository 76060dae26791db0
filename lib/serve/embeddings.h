/* embeddings.h - POST /v1/embeddings (OpenAI shape) on ech-serve.
 *
 * The input (a string, an array of strings, an array of token ids or an
 * array of such arrays) is checked here, every text must fit the context
 * (no silent truncation), and the embeddings come from one embedder per
 * server (lib/gen/embed), made on first use and shared under a lock.
 * Internal to libech and bin/ech-serve.
 */
#ifndef ECH_SERVE_EMBEDDINGS_H
#define ECH_SERVE_EMBEDDINGS_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "serve/http.h"
#include "serve/request.h"

enum { ECH_API_MAX_EMBED_INPUTS = 2048 };

/* One input: text (pointing into the body) or token ids (owned). */
typedef struct ech_embed_input {
    const char *text;
    size_t len;
    int32_t *ids;       /* token-id input when non-NULL */
    size_t n_ids;
} ech_embed_input;

typedef struct ech_embed_request {
    ech_embed_input *in;   /* owned; free with ech_embed_request_free */
    size_t n;
    int base64;            /* encoding_format "base64" */
    int64_t dimensions;    /* 0: not given */
} ech_embed_request;

/* Check a parsed body: "input" (required), "encoding_format" ("float" or
 * "base64"), "dimensions"; token ids must lie in [0, n_vocab).  Fills *e. */
ech_status ech_embed_request_parse(json_object *body, size_t n_vocab, ech_embed_request *out, ech_api_error *e);
void ech_embed_request_free(ech_embed_request *r);

/* The handler. */
enum MHD_Result ech_api_embeddings(ech_http *h);

#endif
