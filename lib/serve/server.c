/* server.c - load the model, start the scheduler, listen; stop gracefully. */
#include "config.h"
#include "serve/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include "chat/template.h"
#include "serve/http.h"

ech_status ech_server_start(const ech_serve_opts *o, ech_server **out, ech_error *err)
{
    *out = NULL;
    if (sodium_init() < 0)
        return ech_error_set(err, ECH_ERR_IO, "libsodium could not initialise");
    ech_server *s = calloc(1, sizeof *s);
    if (!s)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    s->o = *o;
    s->listen_fd = -1;
    pthread_mutex_init(&s->embed_lock, NULL);
    atomic_init(&s->stopping, false);
    if (!s->o.host)
        s->o.host = "127.0.0.1";
    if (!s->o.api_prefix)
        s->o.api_prefix = "";
    s->created = time(NULL);
    struct stat sb;
    if (stat(o->model_path, &sb) == 0) {
        s->model_size = (uint64_t)sb.st_size;
        s->created = sb.st_mtime;
    }
    ech_status st;
    if (o->n_replay) {
        /* testing: a vocabulary is all we need */
        if ((st = ech_gguf_open(o->model_path, &s->vocab_gguf, err)) != ECH_OK)
            goto fail;
        s->gguf = s->vocab_gguf;
    } else {
        if ((st = ech_model_open(o->model_path, &s->model, err)) != ECH_OK)
            goto fail;
        s->gguf = s->model->gguf;
    }
    if ((st = ech_tokenizer_load(s->gguf, &s->tk, err)) != ECH_OK)
        goto fail;

    /* the model id: --alias, or the file name without .gguf */
    const char *base = strrchr(o->model_path, '/');
    base = base ? base + 1 : o->model_path;
    snprintf(s->model_id, sizeof s->model_id, "%s", o->alias ? o->alias : base);
    size_t il = strlen(s->model_id);
    if (!o->alias && il > 5 && !strcmp(s->model_id + il - 5, ".gguf"))
        s->model_id[il - 5] = '\0';

    /* which tool-call syntax the template teaches */
    ech_str src = {0};
    if (o->template_src) {
        s->tpl = o->template_src;
        s->tpl_len = o->template_len;
    } else if (ech_chat_gguf_source(s->gguf, NULL, &src, NULL) == ECH_OK) {
        s->tpl = src.ptr;
        s->tpl_len = src.len;
    }
    s->tools = ech_tool_family_detect(s->tpl, s->tpl_len);

    s->sdefault = ech_sampler_default_params();
    ech_sampler_params_from_gguf(&s->sdefault, s->gguf);

    if (o->n_api_keys) {
        if (!(s->key_hash = calloc(o->n_api_keys, sizeof *s->key_hash))) {
            st = ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < o->n_api_keys; i++)
            crypto_generichash(s->key_hash[i], 32, (const unsigned char *)o->api_keys[i], strlen(o->api_keys[i]), NULL, 0);
    }

    ech_sched_opts so = {.model = s->model, .tk = s->tk, .cp = o->cp, .n_slots = o->n_slots,
                         .max_queue = o->max_queue, .chunk = o->chunk, .replay = o->replay, .n_replay = o->n_replay,
                         .replay_delay_ms = o->replay_delay_ms};
    /* an encoder (bert) cannot generate: no scheduler, embeddings only */
    if ((!s->model || !ech_model_is_encoder(s->model)) && (st = ech_sched_new(&so, &s->sched, err)) != ECH_OK)
        goto fail;
    if ((st = ech_http_listen(s, err)) != ECH_OK)
        goto fail;
    *out = s;
    return ECH_OK;
fail:
    ech_server_free(s);
    return st;
}

bool ech_server_model_matches(const ech_server *s, const char *name)
{
    size_t il = strlen(s->model_id);
    if (!strcmp(name, s->model_id))
        return true;
    /* "id.gguf", "id:latest" (Ollama tags) */
    if (!strncmp(name, s->model_id, il) && (!strcmp(name + il, ".gguf") || !strcmp(name + il, ":latest")))
        return true;
    const char *base = strrchr(s->o.model_path, '/');
    return !strcmp(name, base ? base + 1 : s->o.model_path);
}

unsigned ech_server_port(const ech_server *s) { return s->bound_port; }

void ech_server_stop(ech_server *s, int grace_ms)
{
    atomic_store(&s->stopping, true);
    ech_http_quiesce(s);
    if (s->sched)
        ech_sched_drain(s->sched, grace_ms);
    /* the generations have ended, but their responses may still be being
     * written: let them go out (a few seconds at most) before closing */
    for (int i = 0; i < 500 && atomic_load(&s->metrics.in_flight) > 0; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    ech_http_close(s);
}

void ech_server_free(ech_server *s)
{
    if (!s)
        return;
    if (s->daemon)
        ech_server_stop(s, 0);
    ech_sched_free(s->sched);
    ech_embedder_free(s->embedder);
    pthread_mutex_destroy(&s->embed_lock);
    ech_tokenizer_free(s->tk);
    ech_model_close(s->model);
    ech_gguf_close(s->vocab_gguf);
    free(s->key_hash);
    free(s);
}
