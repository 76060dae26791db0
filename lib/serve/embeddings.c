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
    json_object *model = NULL;
    if (json_object_object_get_ex(body, "model", &model) && json_object_is_type(model, json_type_string) &&
        !ech_server_model_matches(s, json_object_get_string(model))) {
        /* vectors of another model would not be comparable: say so */
        ech_api_fail(&e, 404, INVALID, "model_not_found", "model", "the model '%s' does not exist; this server serves '%s'",
                     json_object_get_string(model), s->model_id);
        json_object_put(body);
        return ech_http_error(h, &e);
    }
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
