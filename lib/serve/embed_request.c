/* embed_request.c - the body of POST /v1/embeddings, checked. */
#include "config.h"
#include "serve/embeddings.h"

#include <stdlib.h>
#include <string.h>

static const char INVALID[] = "invalid_request_error";

void ech_embed_request_free(ech_embed_request *r)
{
    for (size_t i = 0; r->in && i < r->n; i++)
        free(r->in[i].ids);
    free(r->in);
    memset(r, 0, sizeof *r);
}

/* a JSON array of token ids into in->ids */
static ech_status token_array(json_object *a, size_t n_vocab, size_t idx, ech_embed_input *in, ech_api_error *e)
{
    const size_t n = json_object_array_length(a);
    if (n == 0)
        return ech_api_fail(e, 400, INVALID, "invalid_value", "input", "input[%zu] is an empty array of token ids", idx);
    if (!(in->ids = malloc(n * sizeof *in->ids)))
        return ech_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    for (size_t k = 0; k < n; k++) {
        json_object *x = json_object_array_get_idx(a, k);
        int64_t v = json_object_get_int64(x);
        if (!json_object_is_type(x, json_type_int) || v < 0 || (uint64_t)v >= n_vocab)
            return ech_api_fail(e, 400, INVALID, "invalid_value", "input",
                                "input[%zu][%zu] is not a token id (0..%zu)", idx, k, n_vocab - 1);
        in->ids[k] = (int32_t)v;
    }
    in->n_ids = n;
    return ECH_OK;
}

ech_status ech_embed_request_parse(json_object *body, size_t n_vocab, ech_embed_request *out, ech_api_error *e)
{
    memset(out, 0, sizeof *out);
    json_object *input = NULL, *v = NULL;
    if (!json_object_object_get_ex(body, "input", &input) || !input)
        return ech_api_fail(e, 400, INVALID, "missing_required_parameter", "input", "'input' is required");
    if (json_object_object_get_ex(body, "encoding_format", &v) && v) {
        const char *f = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
        if (!strcmp(f, "base64"))
            out->base64 = 1;
        else if (strcmp(f, "float") != 0)
            return ech_api_fail(e, 400, INVALID, "invalid_value", "encoding_format",
                                "'encoding_format' must be \"float\" or \"base64\"");
    }
    if (json_object_object_get_ex(body, "dimensions", &v) && v) {
        out->dimensions = json_object_get_int64(v);
        if (!json_object_is_type(v, json_type_int) || out->dimensions <= 0)
            return ech_api_fail(e, 400, INVALID, "invalid_value", "dimensions", "'dimensions' must be a positive integer");
    }
    /* one text, one token array, or an array of either */
    size_t n = 1;
    int list = 0;
    if (json_object_is_type(input, json_type_array)) {
        n = json_object_array_length(input);
        json_object *first = n ? json_object_array_get_idx(input, 0) : NULL;
        list = !(first && json_object_is_type(first, json_type_int));   /* [1, 2, 3] is one input */
        if (!list)
            n = 1;
    } else if (!json_object_is_type(input, json_type_string)) {
        return ech_api_fail(e, 400, INVALID, "invalid_type", "input",
                            "'input' must be a string, an array of strings or an array of token ids");
    }
    if (n == 0)
        return ech_api_fail(e, 400, INVALID, "invalid_value", "input", "'input' is an empty array");
    if (n > ECH_API_MAX_EMBED_INPUTS)
        return ech_api_fail(e, 400, INVALID, "invalid_value", "input", "'input' has %zu items; at most %d",
                            n, ECH_API_MAX_EMBED_INPUTS);
    if (!(out->in = calloc(n, sizeof *out->in)))
        return ech_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    out->n = n;
    for (size_t i = 0; i < n; i++) {
        json_object *x = list ? json_object_array_get_idx(input, i) : input;
        ech_status st = ECH_OK;
        if (json_object_is_type(x, json_type_string)) {
            out->in[i].text = json_object_get_string(x);
            out->in[i].len = (size_t)json_object_get_string_len(x);
            if (out->in[i].len == 0)
                st = ech_api_fail(e, 400, INVALID, "invalid_value", "input", "input[%zu] is an empty string", i);
        } else if (json_object_is_type(x, json_type_array)) {
            st = token_array(x, n_vocab, i, &out->in[i], e);
        } else {
            st = ech_api_fail(e, 400, INVALID, "invalid_type", "input",
                              "input[%zu] must be a string or an array of token ids", i);
        }
        if (st != ECH_OK) {
            ech_embed_request_free(out);
            return st;
        }
    }
    return ECH_OK;
}
