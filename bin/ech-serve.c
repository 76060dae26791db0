/* ech-serve - an OpenAI- and Ollama-compatible HTTP server for a GGUF model. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "ech.h"
#include "serve/server.h"

enum {
    OPT_MODEL = 'm', OPT_CTX = 'c', OPT_BATCH = 'b', OPT_THREADS = 't', OPT_PARALLEL = 'P', OPT_N = 'n',
    OPT_VERBOSE = 'v',
    OPT_HOST = 0x101, OPT_PORT, OPT_UNIX, OPT_PREFIX, OPT_API_KEY, OPT_API_KEY_FILE, OPT_CORS, OPT_ALIAS,
    OPT_QUEUE, OPT_CHUNK, OPT_KV, OPT_MAX_BODY, OPT_TIMEOUT, OPT_MAX_CONNS, OPT_MAX_CONNS_IP, OPT_TEMPLATE, OPT_GRACE, OPT_REPLAY, OPT_REPLAY_DELAY,
};

static const ech_cli_opt options[] = {
    {OPT_MODEL, 'm', "model", "FILE", "the GGUF model to serve"},
    {OPT_ALIAS, 0, "alias", "NAME", "the model's id in the API (default: the file name without .gguf)"},
    {OPT_HOST, 0, "host", "ADDR", "address to listen on (default 127.0.0.1)"},
    {OPT_PORT, 0, "port", "N", "TCP port (default 8080; 0: any free port, printed at start)"},
    {OPT_UNIX, 0, "unix", "PATH", "listen on a Unix socket instead of TCP"},
    {OPT_PREFIX, 0, "api-prefix", "PATH", "serve every route under PATH (e.g. /llm), for reverse proxies"},
    {OPT_API_KEY, 0, "api-key", "KEY", "require 'Authorization: Bearer KEY' (may be repeated)"},
    {OPT_API_KEY_FILE, 0, "api-key-file", "FILE", "read API keys from FILE, one per line"},
    {OPT_CORS, 0, "cors", "ORIGIN", "allow browser requests from ORIGIN ('*': any; may be repeated)"},
    {OPT_PARALLEL, 'P', "parallel", "N", "slots: requests generated at once (default 4)"},
    {OPT_QUEUE, 0, "queue", "N", "requests that may wait for a slot; beyond it 503 (default 64)"},
    {OPT_CTX, 'c', "ctx", "N", "context length of each slot (default: the model's, at most 8192)"},
    {OPT_CHUNK, 0, "chunk", "N", "prompt tokens per slot per step (default 128)"},
    {OPT_BATCH, 'b', "batch", "N", "tokens per forward pass when reading a prompt (default 256)"},
    {OPT_THREADS, 't', "threads", "N", "threads for the model (default: the number of cores)"},
    {OPT_KV, 0, "kv-type", "TYPE", "KV cache type: f16 (default) or f32"},
    {OPT_N, 'n', "n-predict", "N", "default max tokens per request (default -1: until the context is full)"},
    {OPT_TEMPLATE, 0, "chat-template", "FILE", "a Jinja chat template to use instead of the model's"},
    {OPT_MAX_BODY, 0, "max-body", "BYTES", "largest request body (default 4194304); larger gets 413"},
    {OPT_TIMEOUT, 0, "timeout", "SECONDS", "close connections idle this long, or whose request body takes "
                                             "longer (default 60)"},
    {OPT_MAX_CONNS, 0, "max-connections", "N", "open connections at most (default 256)"},
    {OPT_MAX_CONNS_IP, 0, "max-conn-per-ip", "N", "open connections from one address at most (default 64; "
                                                  "0: no limit, e.g. behind a reverse proxy)"},
    {OPT_GRACE, 0, "shutdown-grace", "SECONDS", "on SIGTERM, let requests finish this long (default 30)"},
    {OPT_REPLAY, 0, "replay", "FILE", "testing: answer with the strings of a JSON array in turn instead of running "
                                      "the model (the model file may be vocabulary-only)"},
    {OPT_REPLAY_DELAY, 0, "replay-delay", "MS", "testing: with --replay, each step takes MS milliseconds"},
    {OPT_VERBOSE, 'v', "verbose", NULL, "log HTTP-level problems to stderr"},
    ECH_CLI_STANDARD_OPTS,
    {0, 0, NULL, NULL, NULL},
};

static ech_cli cli = {
    .prog = "ech-serve",
    .usage = "-m MODEL [OPTION]...",
    .about = "Serve a GGUF model over HTTP: the OpenAI API (/v1/chat/completions, /v1/completions,\n"
             "/v1/models), Ollama's (/api/chat, /api/generate, /api/tags), /health, /metrics,\n"
             "/tokenize and /detokenize.  Requests run in parallel slots with continuous batching.\n"
             "SIGTERM or SIGINT stop it gracefully.",
    .opts = options,
};

static int parse_num(const char *opt, const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || !*s || v < lo || v > hi)
        return ech_cli_usage_error(&cli, "%s: expected an integer from %lld to %lld, got '%s'", opt, lo, hi, s), -1;
    *out = v;
    return 0;
}

/* Keys, one per line; blank lines and "#" comments skipped.  Adds to keys[]. */
static int read_keys(const char *path, char *text, const char **keys, size_t *n, size_t max)
{
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t'))
            line[--l] = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#')
            continue;
        if (*n == max) {
            ech_cli_error(&cli, "%s: too many keys (at most %zu)", path, max);
            return -1;
        }
        keys[(*n)++] = line;
    }
    return 0;
}

int main(int argc, char **argv)
{
    ech_serve_opts o = {.port = 8080, .max_body = 4u << 20, .timeout_s = 60, .max_conns = 256, .max_conns_per_ip = 64,
                        .n_slots = 4, .max_queue = 64, .chunk = 128, .n_predict = -1};
    o.cp = ech_ctx_default_params();
    enum { MAX_KEYS = 64, MAX_CORS = 16 };
    const char *keys[MAX_KEYS], *cors[MAX_CORS];
    size_t n_keys = 0, n_cors = 0;
    const char *key_files[8], *template_path = NULL, *replay_path = NULL;
    size_t n_key_files = 0;
    long long v, grace = 30;
    int c;
    while ((c = ech_cli_next(&cli, argc, argv)) != -1) {
        const char *a = cli.optarg;
        switch (c) {
        case OPT_MODEL: o.model_path = a; break;
        case OPT_ALIAS: o.alias = a; break;
        case OPT_HOST: o.host = a; break;
        case OPT_PORT: if (parse_num("--port", a, 0, 65535, &v)) return ECH_EXIT_USAGE; o.port = (unsigned)v; break;
        case OPT_UNIX: o.unix_path = a; break;
        case OPT_PREFIX:
            if (a[0] != '/' || (strlen(a) > 1 && a[strlen(a) - 1] == '/'))
                return ech_cli_usage_error(&cli, "--api-prefix: expected a path like /llm, got '%s'", a);
            o.api_prefix = strcmp(a, "/") ? a : "";
            break;
        case OPT_API_KEY:
            if (!*a)
                return ech_cli_usage_error(&cli, "--api-key: the key is empty");
            if (n_keys == MAX_KEYS)
                return ech_cli_usage_error(&cli, "too many --api-key (at most %d)", MAX_KEYS);
            keys[n_keys++] = a;
            break;
        case OPT_API_KEY_FILE:
            if (n_key_files == sizeof key_files / sizeof key_files[0])
                return ech_cli_usage_error(&cli, "too many --api-key-file");
            key_files[n_key_files++] = a;
            break;
        case OPT_CORS:
            if (n_cors == MAX_CORS)
                return ech_cli_usage_error(&cli, "too many --cors (at most %d)", MAX_CORS);
            cors[n_cors++] = a;
            break;
        case OPT_PARALLEL: if (parse_num("--parallel", a, 1, 256, &v)) return ECH_EXIT_USAGE; o.n_slots = (uint32_t)v; break;
        case OPT_QUEUE: if (parse_num("--queue", a, 0, 1 << 20, &v)) return ECH_EXIT_USAGE; o.max_queue = (uint32_t)v; break;
        case OPT_CTX: if (parse_num("--ctx", a, 1, 1 << 24, &v)) return ECH_EXIT_USAGE; o.cp.n_ctx = (uint32_t)v; break;
        case OPT_CHUNK: if (parse_num("--chunk", a, 1, 1 << 16, &v)) return ECH_EXIT_USAGE; o.chunk = (uint32_t)v; break;
        case OPT_BATCH: if (parse_num("--batch", a, 1, 1 << 16, &v)) return ECH_EXIT_USAGE; o.cp.n_batch = (uint32_t)v; break;
        case OPT_THREADS: if (parse_num("--threads", a, 1, 1024, &v)) return ECH_EXIT_USAGE; o.cp.n_threads = (int)v; break;
        case OPT_KV:
            if (!strcmp(a, "f16")) o.cp.kv_type = ECH_TYPE_F16;
            else if (!strcmp(a, "f32")) o.cp.kv_type = ECH_TYPE_F32;
            else return ech_cli_usage_error(&cli, "--kv-type: expected f16 or f32, got '%s'", a);
            break;
        case OPT_N: if (parse_num("--n-predict", a, -1, INT32_MAX, &v)) return ECH_EXIT_USAGE; o.n_predict = (int32_t)v; break;
        case OPT_TEMPLATE: template_path = a; break;
        case OPT_MAX_BODY: if (parse_num("--max-body", a, 1024, 1LL << 32, &v)) return ECH_EXIT_USAGE; o.max_body = (size_t)v; break;
        case OPT_TIMEOUT: if (parse_num("--timeout", a, 1, 86400, &v)) return ECH_EXIT_USAGE; o.timeout_s = (unsigned)v; break;
        case OPT_MAX_CONNS: if (parse_num("--max-connections", a, 1, 65536, &v)) return ECH_EXIT_USAGE; o.max_conns = (unsigned)v; break;
        case OPT_MAX_CONNS_IP: if (parse_num("--max-conn-per-ip", a, 0, 65536, &v)) return ECH_EXIT_USAGE; o.max_conns_per_ip = (unsigned)v; break;
        case OPT_GRACE: if (parse_num("--shutdown-grace", a, 0, 86400, &grace)) return ECH_EXIT_USAGE; break;
        case OPT_REPLAY: replay_path = a; break;
        case OPT_REPLAY_DELAY: if (parse_num("--replay-delay", a, 0, 60000, &v)) return ECH_EXIT_USAGE; o.replay_delay_ms = (uint32_t)v; break;
        case OPT_VERBOSE: o.verbose = 1; break;
        case ECH_OPT_HELP: ech_cli_help(&cli, stdout); return ECH_EXIT_OK;
        case ECH_OPT_VERSION: ech_cli_version(&cli); return ECH_EXIT_OK;
        default: return ECH_EXIT_USAGE;
        }
    }
    if (!o.model_path)
        return ech_cli_usage_error(&cli, "no model given (-m FILE)");
    if (cli.optind < argc)
        return ech_cli_usage_error(&cli, "unexpected argument '%s'", argv[cli.optind]);
    if (o.unix_path && (o.host || o.port != 8080))
        return ech_cli_usage_error(&cli, "--unix replaces --host and --port: give one or the other");

    int rc = ECH_EXIT_FAIL;
    char *key_text[8] = {0}, *tpl = NULL;
    json_object *replay = NULL;
    const char **replay_s = NULL;
    ech_server *srv = NULL;
    for (size_t i = 0; i < n_key_files; i++) {
        size_t len;
        if (!(key_text[i] = ech_cli_read_file(&cli, key_files[i], &len)) ||
            read_keys(key_files[i], key_text[i], keys, &n_keys, MAX_KEYS))
            goto done;
        if (n_keys == 0) {
            ech_cli_error(&cli, "%s: no API key in the file", key_files[i]);
            goto done;
        }
    }
    o.api_keys = keys;
    o.n_api_keys = n_keys;
    o.cors = cors;
    o.n_cors = n_cors;
    if (template_path) {
        if (!(tpl = ech_cli_read_file(&cli, template_path, &o.template_len)))
            goto done;
        o.template_src = tpl;
    }
    if (replay_path) {
        if (!(replay = ech_cli_read_json(&cli, replay_path, json_type_array, "the replay outputs")))
            goto done;
        size_t n = json_object_array_length(replay);
        if (!n || !(replay_s = calloc(n, sizeof *replay_s))) {
            ech_cli_error(&cli, "%s: expected a non-empty array of strings", replay_path);
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            json_object *x = json_object_array_get_idx(replay, i);
            if (!json_object_is_type(x, json_type_string)) {
                ech_cli_error(&cli, "%s: element %zu is not a string", replay_path, i);
                goto done;
            }
            replay_s[i] = json_object_get_string(x);
        }
        o.replay = replay_s;
        o.n_replay = n;
    }

    /* Signals are taken by sigwait below; every thread started from here on
     * inherits the blocked mask, so none of them is interrupted. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    ech_error err;
    if (ech_server_start(&o, &srv, &err) != ECH_OK) {
        ech_cli_error(&cli, "%s", err.msg);
        goto done;
    }
    /* an encoder model has no scheduler: it only serves embeddings */
    const uint32_t slot_ctx = srv->sched ? ech_sched_n_ctx(srv->sched) : 0;
    if (!srv->sched)
        fprintf(stderr, "%s: %s is an embedding model: /v1/embeddings only\n", cli.prog, srv->model_id);
    if (o.unix_path)
        fprintf(stderr, "%s: listening on unix:%s%s (model %s, %u slots of %u tokens, tools: %s)\n", cli.prog,
                o.unix_path, o.api_prefix ? o.api_prefix : "", srv->model_id, o.n_slots, slot_ctx,
                ech_tool_family_name(srv->tools));
    else
        fprintf(stderr, "%s: listening on http://%s:%u%s (model %s, %u slots of %u tokens, tools: %s)\n", cli.prog,
                srv->o.host, ech_server_port(srv), o.api_prefix ? o.api_prefix : "", srv->model_id, o.n_slots,
                slot_ctx, ech_tool_family_name(srv->tools));
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "%s: %s: shutting down (finishing requests for up to %llds)\n", cli.prog,
            sig == SIGTERM ? "SIGTERM" : "SIGINT", grace);
    ech_server_stop(srv, (int)(grace * 1000));
    rc = ECH_EXIT_OK;
done:
    ech_server_free(srv);
    json_object_put(replay);
    free(replay_s);
    free(tpl);
    for (size_t i = 0; i < n_key_files; i++)
        free(key_text[i]);
    return rc;
}
