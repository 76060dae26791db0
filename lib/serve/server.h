/* server.h - ech-serve's server: a model, its scheduler, an HTTP front.
 *
 * ech_server_start loads the model, starts the scheduler and listens; the
 * HTTP side runs on libmicrohttpd's threads (one per connection, so a
 * handler may wait for tokens without stalling other clients).
 * ech_server_stop stops accepting, lets requests in flight finish (up to a
 * grace period), cancels the rest and closes.  This header is internal to
 * libech and bin/ech-serve.
 */
#ifndef ECH_SERVE_SERVER_H
#define ECH_SERVE_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/status.h"
#include "gen/embed.h"
#include "gen/sampler.h"
#include "gguf/gguf.h"
#include "model/context.h"
#include "model/model.h"
#include "serve/metrics.h"
#include "serve/sched.h"
#include "serve/toolcall.h"
#include "tok/tokenizer.h"

typedef struct ech_serve_opts {
    const char *model_path;
    const char *alias;                  /* model id; NULL: the file name without .gguf */
    const char *host;                   /* NULL: 127.0.0.1 */
    unsigned port;                      /* 0: any free port (see ech_server_port) */
    const char *unix_path;              /* listen on this Unix socket instead */
    const char *api_prefix;             /* "" or "/llm": every route lives under it */
    size_t max_body;                    /* bytes; larger bodies get 413 */
    unsigned timeout_s;                 /* idle connections are closed after this, and
                                           a request body must arrive within it */
    unsigned max_conns;
    unsigned max_conns_per_ip;          /* 0: no limit */
    const char *const *api_keys;        /* Bearer tokens (none: no auth) */
    size_t n_api_keys;
    const char *const *cors;            /* allowed origins ("*": any) */
    size_t n_cors;
    const char *template_src;           /* chat template override, or NULL */
    size_t template_len;
    uint32_t n_slots, max_queue, chunk;
    ech_ctx_params cp;                  /* per slot */
    int32_t n_predict;                  /* default max tokens; -1: until the context is full */
    const char *const *replay;          /* testing: fixed outputs instead of the model */
    size_t n_replay;
    uint32_t replay_delay_ms;
    int verbose;
} ech_serve_opts;

typedef struct ech_server {
    ech_serve_opts o;
    ech_model *model;                   /* NULL in replay mode */
    ech_gguf *vocab_gguf;               /* replay mode: the file the tokenizer came from */
    const ech_gguf *gguf;
    ech_tokenizer *tk;
    const char *tpl;                    /* the chat template text in use (for tool syntax) */
    size_t tpl_len;
    ech_tool_family tools;
    char model_id[256];
    time_t created;
    uint64_t model_size;
    ech_sampler_params sdefault;
    ech_sched *sched;                   /* NULL for an encoder: it only embeds */
    ech_embedder *embedder;             /* /v1/embeddings, made on first use */
    pthread_mutex_t embed_lock;         /* one embedding request at a time */
    ech_metrics metrics;
    unsigned char (*key_hash)[32];      /* BLAKE2b of each API key */
    atomic_bool stopping;
    struct MHD_Daemon *daemon;
    int listen_fd;
    unsigned bound_port;
    char unlink_path[256];
} ech_server;

ech_status ech_server_start(const ech_serve_opts *o, ech_server **out, ech_error *err);
/* Whether a request's "model" names this server's model: its id, the id
 * with ".gguf" or ":latest", or the file name. */
bool ech_server_model_matches(const ech_server *s, const char *name);
/* The TCP port listened on (useful with port 0). */
unsigned ech_server_port(const ech_server *s);
/* Stop: refuse new work, finish or cancel what runs (grace_ms), close. */
void ech_server_stop(ech_server *s, int grace_ms);
void ech_server_free(ech_server *s);

#endif
