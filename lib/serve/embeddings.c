/* embeddings.c - POST /v1/embeddings. */
#include "config.h"
#include "serve/embeddings.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/json.h"
#include "gen/embed.h"

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

/* The server's embedder, made on first use; NULL with *e filled when the
 * model cannot embed.  Called with s->embed_lock held. */
static ech_embedder *embedder(ech_server *s, ech_api_error *e)
{
    if (s->embedder)
        return s->embedder;
    if (!s->model) {
        ech_api_fail(e, 501, INVALID, "not_implemented", NULL, "this server has no model to embed with (replay mode)");
        return NULL;
    }
    ech_embed_params p = ech_embed_default_params();
    p.n_threads = s->o.cp.n_threads;
    if (s->o.cp.n_ctx && !ech_model_is_encoder(s->model))
        p.n_ctx = s->o.cp.n_ctx;
    ech_error err;
    ech_status st = ech_embedder_new(s->model, &p, &s->embedder, &err);
    if (st == ECH_ERR_UNSUPPORTED)
        ech_api_fail(e, 400, INVALID, "model_not_supported", "model", "model %s: %s", s->model_id, err.msg);
    else if (st != ECH_OK)
        ech_api_fail(e, 500, "server_error", NULL, NULL, "%s", err.msg);
    return s->embedder;
}

static json_object *vector_json(const float *v, uint32_t dim, int base64)
{
    if (base64) {
        /* float32 little-endian bytes, as OpenAI's base64 encoding sends them */
        const size_t bytes = sizeof(float) * dim, cap = sodium_base64_ENCODED_LEN(bytes, sodium_base64_VARIANT_ORIGINAL);
        char *b = malloc(cap);
        if (!b)
            return NULL;
        sodium_bin2base64(b, cap, (const unsigned char *)v, bytes, sodium_base64_VARIANT_ORIGINAL);
        json_object *o = json_object_new_string(b);
        free(b);
        return o;
    }
    json_object *a = json_object_new_array_ext((int)dim);
    for (uint32_t i = 0; i < dim; i++)
        json_object_array_add(a, ech_json_float(v[i]));
    return a;
}

enum MHD_Result ech_api_embeddings(ech_http *h)
{
    ech_server *s = h->srv;
    ech_api_error e;
    json_object *body;
    if (ech_api_parse_body(h->body, h->body_len, &body, &e) != ECH_OK)
        return ech_http_error(h, &e);
    ech_embed_request rq;
    if (ech_embed_request_parse(body, ech_tokenizer_n_vocab(s->tk), &rq, &e) != ECH_OK) {
        json_object_put(body);
        return ech_http_error(h, &e);
    }
    /* tokens of every input, checked against the context before any work */
    ech_tokens *toks = calloc(rq.n, sizeof *toks);
    const ech_token **seq = calloc(rq.n, sizeof *seq);
    uint32_t *seq_n = calloc(rq.n, sizeof *seq_n);
    float *out = NULL;
    uint64_t total = 0;
    json_object *reply = NULL;
    ech_status st = toks && seq && seq_n ? ECH_OK
                                         : ech_api_fail(&e, 500, "server_error", NULL, NULL, "out of memory");
    pthread_mutex_lock(&s->embed_lock);
    ech_embedder *em = st == ECH_OK ? embedder(s, &e) : NULL;
    if (!em)
        st = ECH_ERR_INVALID;
    const uint32_t dim = em ? ech_embedder_dim(em) : 0, n_ctx = em ? ech_embedder_n_ctx(em) : 0;
    if (st == ECH_OK && rq.dimensions && rq.dimensions != (int64_t)dim)
        st = ech_api_fail(&e, 400, INVALID, "invalid_value", "dimensions", "this model's embeddings have %u dimensions",
                          dim);
    ech_error err;
    for (size_t i = 0; st == ECH_OK && i < rq.n; i++) {
        if (rq.in[i].ids) {
            seq[i] = rq.in[i].ids;
            seq_n[i] = rq.in[i].n_ids > UINT32_MAX ? UINT32_MAX : (uint32_t)rq.in[i].n_ids;
        } else {
            if (ech_tokenize(s->tk, rq.in[i].text, rq.in[i].len, ECH_TOKENIZE_ADD_SPECIAL, &toks[i], &err) != ECH_OK) {
                st = ech_api_fail(&e, 500, "server_error", NULL, NULL, "%s", err.msg);
                break;
            }
            seq[i] = toks[i].ids;
            seq_n[i] = toks[i].n > UINT32_MAX ? UINT32_MAX : (uint32_t)toks[i].n;
        }
        if (seq_n[i] > n_ctx)
            st = ech_api_fail(&e, 400, INVALID, "context_length_exceeded", "input",
                              "input[%zu] has %u tokens, more than the model's context of %u; split it into "
                              "shorter texts", i, seq_n[i], n_ctx);
        total += seq_n[i];
    }
    if (st == ECH_OK && !(out = malloc(sizeof(float) * rq.n * dim)))
        st = ech_api_fail(&e, 500, "server_error", NULL, NULL, "out of memory");
    if (st == ECH_OK && ech_embed_tokens(em, seq, seq_n, rq.n, out, &err) != ECH_OK)
        st = ech_api_fail(&e, 500, "server_error", NULL, NULL, "%s", err.msg);
    pthread_mutex_unlock(&s->embed_lock);
    if (st == ECH_OK) {
        reply = json_object_new_object();
        json_object *data = json_object_new_array();
        for (size_t i = 0; i < rq.n; i++) {
            json_object *d = json_object_new_object();
            json_object_object_add(d, "object", json_object_new_string("embedding"));
            json_object_object_add(d, "index", json_object_new_int64((int64_t)i));
            json_object_object_add(d, "embedding", vector_json(out + i * dim, dim, rq.base64));
            json_object_array_add(data, d);
        }
        json_object *usage = json_object_new_object();
        json_object_object_add(usage, "prompt_tokens", json_object_new_int64((int64_t)total));
        json_object_object_add(usage, "total_tokens", json_object_new_int64((int64_t)total));
        json_object_object_add(reply, "object", json_object_new_string("list"));
        json_object_object_add(reply, "data", data);
        json_object_object_add(reply, "model", ech_json_string(s->model_id, strlen(s->model_id)));
        json_object_object_add(reply, "usage", usage);
    }
    for (size_t i = 0; toks && i < rq.n; i++)
        ech_tokens_free(&toks[i]);
    free(toks);
    free(seq);
    free(seq_n);
    free(out);
    ech_embed_request_free(&rq);
    json_object_put(body);
    return reply ? ech_http_json(h, 200, reply) : ech_http_error(h, &e);
}
