/* ech-generate - generate text with a GGUF model on the CPU. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ech.h"

enum {
    OPT_MODEL = 'm', OPT_PROMPT = 'p', OPT_FILE = 'f', OPT_N = 'n', OPT_THREADS = 't', OPT_VERBOSE = 'v',
    OPT_TEMP = 0x101, OPT_TOP_K, OPT_TOP_P, OPT_MIN_P, OPT_REPEAT, OPT_REPEAT_N, OPT_PRESENCE,
    OPT_FREQUENCY, OPT_SEED, OPT_STOP, OPT_IGNORE_EOS, OPT_CTX, OPT_BATCH, OPT_KV, OPT_JSON,
    OPT_TOP_LOGPROBS, OPT_NO_SPECIAL, OPT_NO_PARSE_SPECIAL,
    OPT_CHAT, OPT_SYSTEM, OPT_MESSAGES, OPT_TOOLS, OPT_CHAT_TEMPLATE, OPT_PRINT_PROMPT,
};

static const ech_cli_opt options[] = {
    {OPT_MODEL, 'm', "model", "FILE", "model: a GGUF path, hf:OWNER/REPO/FILE or a URL (pulled once)"},
    {OPT_PROMPT, 'p', "prompt", "TEXT", "the prompt (default: stdin)"},
    {OPT_FILE, 'f', "file", "FILE", "read the prompt from FILE"},
    {OPT_N, 'n', "n-predict", "N", "generate at most N tokens (default 256; -1: until the context is full)"},
    {OPT_TEMP, 0, "temp", "T", "temperature (default 0.8; 0: greedy)"},
    {OPT_TOP_K, 0, "top-k", "K", "keep the K most likely tokens (default 40; 0: off)"},
    {OPT_TOP_P, 0, "top-p", "P", "nucleus sampling (default 0.95; 1: off)"},
    {OPT_MIN_P, 0, "min-p", "P", "drop tokens below P x the best one's probability (default 0.05)"},
    {OPT_REPEAT, 0, "repeat-penalty", "X", "penalise recent tokens (default 1.0: off)"},
    {OPT_REPEAT_N, 0, "repeat-last-n", "N", "how many recent tokens the penalties see (default 64)"},
    {OPT_PRESENCE, 0, "presence-penalty", "X", "subtract X from every token seen (default 0)"},
    {OPT_FREQUENCY, 0, "frequency-penalty", "X", "subtract X per occurrence (default 0)"},
    {OPT_SEED, 's', "seed", "N", "random seed (default: random); same seed, same output"},
    {OPT_STOP, 0, "stop", "TEXT", "stop before TEXT (may be repeated)"},
    {OPT_IGNORE_EOS, 0, "ignore-eos", NULL, "do not stop at end-of-generation tokens"},
    {OPT_CTX, 'c', "ctx", "N", "context length (default: the model's, at most 8192)"},
    {OPT_BATCH, 'b', "batch", "N", "prompt tokens per forward pass (default 256)"},
    {OPT_KV, 0, "kv-type", "TYPE", "KV cache type: f16 (default) or f32"},
    {OPT_THREADS, 't', "threads", "N", "threads (default: the number of cores)"},
    {OPT_JSON, 0, "json", NULL, "stream NDJSON events, then a summary record"},
    {OPT_TOP_LOGPROBS, 0, "top-logprobs", "N", "with --json, the N most likely tokens per step"},
    {OPT_CHAT, 0, "chat", NULL, "treat the prompt as a user message and apply the chat template"},
    {OPT_SYSTEM, 0, "system", "TEXT", "with --chat: a system message before it"},
    {OPT_MESSAGES, 0, "messages", "FILE", "the whole conversation: a JSON array of OpenAI-style messages"},
    {OPT_TOOLS, 0, "tools", "FILE", "tool definitions (a JSON array, OpenAI format) for the template"},
    {OPT_CHAT_TEMPLATE, 0, "chat-template", "FILE", "a Jinja chat template to use instead of the model's"},
    {OPT_PRINT_PROMPT, 0, "print-prompt", NULL, "print the rendered chat prompt exactly and exit"},
    {OPT_NO_SPECIAL, 0, "no-bos", NULL, "do not add the BOS token the vocabulary asks for"},
    {OPT_NO_PARSE_SPECIAL, 0, "no-parse-special", NULL, "tokenize \"<|...|>\" in the prompt as plain text"},
    {OPT_VERBOSE, 'v', "verbose", NULL, "print timings to stderr"},
    ECH_CLI_STANDARD_OPTS,
    {0, 0, NULL, NULL, NULL},
};

static ech_cli cli = {
    .prog = "ech-generate",
    .usage = "-m MODEL [OPTION]... [-p PROMPT | -f FILE]",
    .about = "Generate text from a prompt with a GGUF model (llama, qwen2, qwen3, gemma3) on the CPU.\n"
             "The prompt comes from -p, -f or stdin; the text streams to stdout as it is produced.\n"
             "With --chat or --messages the model's chat template formats the conversation.",
    .opts = options,
};

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { (void)sig; interrupted = 1; }

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef struct out_state {
    int json;
    const ech_tokenizer *tk;
    int write_error;
} out_state;

static int on_token(void *user, const ech_gen_token *t)
{
    out_state *o = user;
    if (o->json) {
        if (t->token < 0) {
            json_object *j = json_object_new_object();
            json_object_object_add(j, "text", ech_json_string(t->text, t->text_len));
            printf("%s\n", ech_json_line(j));
            json_object_put(j);
        } else {
            json_object *j = json_object_new_object();
            json_object_object_add(j, "token", json_object_new_int(t->token));
            json_object_object_add(j, "text", ech_json_string(t->text, t->text_len));
            json_object_object_add(j, "logprob", ech_json_float(t->logprob));
            if (t->n_top) {
                json_object *a = json_object_new_array();
                for (uint32_t i = 0; i < t->n_top; i++) {
                    json_object *e = json_object_new_object();
                    json_object_object_add(e, "token", json_object_new_int(t->top[i].token));
                    json_object_object_add(e, "logprob", ech_json_float(t->top[i].logprob));
                    json_object_array_add(a, e);
                }
                json_object_object_add(j, "top_logprobs", a);
            }
            printf("%s\n", ech_json_line(j));
            json_object_put(j);
        }
    } else if (t->text_len) {
        fwrite(t->text, 1, t->text_len, stdout);
    }
    if (fflush(stdout) != 0) {
        o->write_error = 1;
        return 1;
    }
    return interrupted ? 1 : 0;
}

/* -m accepts a path or a reference ech-pull understands (pulled on first use). */
static int resolve_model(const char *ref, char **path)
{
    struct stat sb;
    ech_error err;
    if (stat(ref, &sb) == 0 || (strncmp(ref, "hf:", 3) != 0 && strncmp(ref, "http://", 7) != 0 &&
                                strncmp(ref, "https://", 8) != 0)) {
        *path = strdup(ref);
        return *path ? 0 : -1;
    }
    char *dir = NULL, *url = NULL;
    if (ech_models_dir(&dir, &err) != ECH_OK || ech_model_ref_resolve(ref, NULL, dir, &url, path, &err) != ECH_OK) {
        ech_cli_error(&cli, "%s", err.msg);
        free(dir);
        return -1;
    }
    free(dir);
    if (stat(*path, &sb) != 0) {
        fprintf(stderr, "%s: pulling %s\n", cli.prog, ref);
        ech_download_opts o = {.url = url, .dest = *path};
        ech_download_result r;
        if (ech_download(&o, &r, &err) != ECH_OK) {
            ech_cli_error(&cli, "%s", err.msg);
            free(url);
            return -1;
        }
    }
    free(url);
    return 0;
}

static int parse_float(const char *opt, const char *s, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !*s || !isfinite(v))
        return ech_cli_usage_error(&cli, "%s: expected a number, got '%s'", opt, s), -1;
    *out = (float)v;
    return 0;
}

static int parse_int(const char *opt, const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || !*s || v < lo || v > hi)
        return ech_cli_usage_error(&cli, "%s: expected an integer from %lld to %lld, got '%s'", opt, lo, hi, s), -1;
    *out = v;
    return 0;
}

static char *read_all(FILE *f, size_t *len)
{
    ech_buf b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        if (ech_buf_append(&b, tmp, n) != ECH_OK) {
            ech_buf_free(&b);
            return NULL;
        }
    if (ferror(f)) {
        ech_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return ech_buf_steal(&b);
}

int main(int argc, char **argv)
{
    const char *model_ref = NULL, *prompt_arg = NULL, *prompt_file = NULL;
    long long n_predict = 256, v;
    int json = 0, verbose = 0, add_special = 1, parse_special = 1, ignore_eos = 0;
    const char *stops[64];
    size_t n_stops = 0;
    ech_ctx_params cp = ech_ctx_default_params();
    /* sampling: defaults, then the model's recommendations, then these */
    struct { int set; float v; } temp = {0}, top_p = {0}, min_p = {0}, rep = {0}, pres = {0}, freq = {0};
    struct { int set; long long v; } top_k = {0}, rep_n = {0}, seed = {0};
    long long top_logprobs = 0;
    int chat = 0, print_prompt = 0;
    const char *system = NULL, *messages_path = NULL, *tools_path = NULL, *template_path = NULL;
    int c;
    while ((c = ech_cli_next(&cli, argc, argv)) != -1) {
        const char *a = cli.optarg;
        switch (c) {
        case OPT_MODEL: model_ref = a; break;
        case OPT_PROMPT: prompt_arg = a; break;
        case OPT_FILE: prompt_file = a; break;
        case OPT_N: if (parse_int("-n", a, -1, INT32_MAX, &n_predict)) return ECH_EXIT_USAGE; break;
        case OPT_TEMP: if (parse_float("--temp", a, &temp.v)) return ECH_EXIT_USAGE; temp.set = 1; break;
        case OPT_TOP_K: if (parse_int("--top-k", a, 0, INT32_MAX, &top_k.v)) return ECH_EXIT_USAGE; top_k.set = 1; break;
        case OPT_TOP_P: if (parse_float("--top-p", a, &top_p.v)) return ECH_EXIT_USAGE; top_p.set = 1; break;
        case OPT_MIN_P: if (parse_float("--min-p", a, &min_p.v)) return ECH_EXIT_USAGE; min_p.set = 1; break;
        case OPT_REPEAT: if (parse_float("--repeat-penalty", a, &rep.v)) return ECH_EXIT_USAGE; rep.set = 1; break;
        case OPT_REPEAT_N: if (parse_int("--repeat-last-n", a, 0, 1 << 20, &rep_n.v)) return ECH_EXIT_USAGE; rep_n.set = 1; break;
        case OPT_PRESENCE: if (parse_float("--presence-penalty", a, &pres.v)) return ECH_EXIT_USAGE; pres.set = 1; break;
        case OPT_FREQUENCY: if (parse_float("--frequency-penalty", a, &freq.v)) return ECH_EXIT_USAGE; freq.set = 1; break;
        case OPT_SEED: if (parse_int("--seed", a, 0, INT64_MAX, &seed.v)) return ECH_EXIT_USAGE; seed.set = 1; break;
        case OPT_STOP:
            if (n_stops == sizeof stops / sizeof stops[0])
                return ech_cli_usage_error(&cli, "too many --stop strings (at most 64)");
            if (!*a)
                return ech_cli_usage_error(&cli, "--stop: the string is empty");
            stops[n_stops++] = a;
            break;
        case OPT_IGNORE_EOS: ignore_eos = 1; break;
        case OPT_CTX: if (parse_int("--ctx", a, 1, 1 << 24, &v)) return ECH_EXIT_USAGE; cp.n_ctx = (uint32_t)v; break;
        case OPT_BATCH: if (parse_int("--batch", a, 1, 1 << 16, &v)) return ECH_EXIT_USAGE; cp.n_batch = (uint32_t)v; break;
        case OPT_KV:
            if (!strcmp(a, "f16")) cp.kv_type = ECH_TYPE_F16;
            else if (!strcmp(a, "f32")) cp.kv_type = ECH_TYPE_F32;
            else return ech_cli_usage_error(&cli, "--kv-type: expected f16 or f32, got '%s'", a);
            break;
        case OPT_THREADS: if (parse_int("-t", a, 1, 1024, &v)) return ECH_EXIT_USAGE; cp.n_threads = (int)v; break;
        case OPT_JSON: json = 1; break;
        case OPT_TOP_LOGPROBS: if (parse_int("--top-logprobs", a, 0, 20, &top_logprobs)) return ECH_EXIT_USAGE; break;
        case OPT_CHAT: chat = 1; break;
        case OPT_SYSTEM: system = a; break;
        case OPT_MESSAGES: messages_path = a; break;
        case OPT_TOOLS: tools_path = a; break;
        case OPT_CHAT_TEMPLATE: template_path = a; break;
        case OPT_PRINT_PROMPT: print_prompt = 1; break;
        case OPT_NO_SPECIAL: add_special = 0; break;
        case OPT_NO_PARSE_SPECIAL: parse_special = 0; break;
        case OPT_VERBOSE: verbose = 1; break;
        case ECH_OPT_HELP: ech_cli_help(&cli, stdout); return ECH_EXIT_OK;
        case ECH_OPT_VERSION: ech_cli_version(&cli); return ECH_EXIT_OK;
        default: return ECH_EXIT_USAGE;
        }
    }
    if (!model_ref)
        return ech_cli_usage_error(&cli, "no model given (-m FILE)");
    if (cli.optind < argc)
        return ech_cli_usage_error(&cli, "unexpected argument '%s'", argv[cli.optind]);
    if (prompt_arg && prompt_file)
        return ech_cli_usage_error(&cli, "give the prompt with -p or -f, not both");
    if (messages_path && (chat || prompt_arg || prompt_file))
        return ech_cli_usage_error(&cli, "--messages gives the whole conversation: no --chat, -p or -f with it");
    if (messages_path)
        chat = 1;
    if ((system || tools_path || template_path || print_prompt) && !chat)
        return ech_cli_usage_error(&cli, "--system, --tools, --chat-template and --print-prompt go with --chat or --messages");

    /* the prompt */
    char *prompt;
    size_t prompt_len;
    if (messages_path) {
        prompt = strdup("");
        prompt_len = 0;
    } else if (prompt_arg) {
        prompt = strdup(prompt_arg);
        prompt_len = strlen(prompt_arg);
    } else {
        FILE *f = prompt_file ? fopen(prompt_file, "rb") : stdin;
        if (!f) {
            ech_cli_error(&cli, "%s: %s", prompt_file, strerror(errno));
            return ECH_EXIT_FAIL;
        }
        if (!prompt_file && isatty(0))
            fprintf(stderr, "%s: reading the prompt from stdin (end with Ctrl-D)\n", cli.prog);
        prompt = read_all(f, &prompt_len);
        if (prompt_file)
            fclose(f);
    }
    if (!prompt) {
        ech_cli_error(&cli, "cannot read the prompt");
        return ECH_EXIT_FAIL;
    }

    double t_start = now_ms();
    char *path = NULL;
    if (resolve_model(model_ref, &path) != 0) {
        free(prompt);
        return ECH_EXIT_FAIL;
    }
    ech_error err;
    ech_gguf *g = NULL;
    ech_model *m = NULL;
    ech_tokenizer *tk = NULL;
    ech_ctx *ctx = NULL;
    ech_tokens toks = {0};
    json_object *msgs = NULL, *tools = NULL;
    char *rendered = NULL, *tpl_src = NULL;
    size_t rendered_len = 0, tpl_len = 0;
    int rc = ECH_EXIT_FAIL;
    if (ech_gguf_open(path, &g, &err) != ECH_OK) {
        ech_cli_error(&cli, "%s", err.msg);
        goto done;
    }
    if (chat) {
        /* the conversation, rendered with the chat template */
        if (!(msgs = ech_cli_conversation(&cli, messages_path, system, prompt)))
            goto done;
        if (tools_path && !(tools = ech_cli_read_json(&cli, tools_path, json_type_array, "the tools")))
            goto done;
        if (template_path && !(tpl_src = ech_cli_read_file(&cli, template_path, &tpl_len)))
            goto done;
        ech_prompt_opts po = {.messages = msgs, .tools = tools, .add_generation_prompt = true,
                              .template_src = tpl_src, .template_len = tpl_len};
        bool chatml;
        if (ech_prompt_render(g, &po, &rendered, &rendered_len, &chatml, &err) != ECH_OK) {
            ech_cli_error(&cli, "chat template: %s", err.msg);
            goto done;
        }
        if (chatml)
            fprintf(stderr, "%s: note: %s has no chat template; using ChatML\n", cli.prog, path);
        if (print_prompt) {
            rc = fwrite(rendered, 1, rendered_len, stdout) == rendered_len && fflush(stdout) == 0
                     ? ECH_EXIT_OK : ECH_EXIT_FAIL;
            goto done;
        }
    }
    ech_gguf *owned = g;
    g = NULL;   /* the model takes the file */
    if (ech_model_from_gguf(owned, &m, &err) != ECH_OK || ech_tokenizer_load(m->gguf, &tk, &err) != ECH_OK ||
        ech_ctx_new(m, &cp, &ctx, &err) != ECH_OK) {
        ech_cli_error(&cli, "%s: %s", path, err.msg);
        goto done;
    }
    ech_status tst;
    if (chat) {
        tst = ech_prompt_tokenize(tk, rendered, rendered_len, msgs, &toks, &err);
    } else {
        unsigned flags = (add_special ? ECH_TOKENIZE_ADD_SPECIAL : 0) | (parse_special ? ECH_TOKENIZE_PARSE_SPECIAL : 0);
        tst = ech_tokenize(tk, prompt, prompt_len, flags, &toks, &err);
    }
    if (tst != ECH_OK) {
        ech_cli_error(&cli, "tokenizing the prompt: %s", err.msg);
        goto done;
    }
    if (toks.n == 0) {
        ech_cli_error(&cli, "the prompt is empty (and the vocabulary adds no BOS token)");
        goto done;
    }
    double t_loaded = now_ms();

    ech_gen_params gp = {.n_predict = (int32_t)n_predict, .ignore_eos = ignore_eos, .stop = stops,
                         .n_stop = n_stops, .top_logprobs = (uint32_t)top_logprobs};
    gp.sampling = ech_sampler_default_params();
    ech_sampler_params_from_gguf(&gp.sampling, m->gguf);
    if (temp.set) gp.sampling.temp = temp.v;
    if (top_k.set) gp.sampling.top_k = (int32_t)top_k.v;
    if (top_p.set) gp.sampling.top_p = top_p.v;
    if (min_p.set) gp.sampling.min_p = min_p.v;
    if (rep.set) gp.sampling.repeat_penalty = rep.v;
    if (rep_n.set) gp.sampling.penalty_last_n = (int32_t)rep_n.v;
    if (pres.set) gp.sampling.presence_penalty = pres.v;
    if (freq.set) gp.sampling.frequency_penalty = freq.v;
    if (seed.set) gp.sampling.seed = (uint64_t)seed.v;

    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    out_state o = {.json = json, .tk = tk};
    ech_gen_stats gs;
    if (ech_generate(ctx, tk, toks.ids, (uint32_t)toks.n, &gp, on_token, &o, &gs, &err) != ECH_OK) {
        ech_cli_error(&cli, "%s", err.msg);
        goto done;
    }
    if (o.write_error) {
        ech_cli_error(&cli, "write error on stdout");
        goto done;
    }
    double load_ms = t_loaded - t_start;
    double pp = gs.prompt_ms > 0 ? gs.n_prompt / (gs.prompt_ms / 1e3) : 0;
    double tg = gs.gen_ms > 0 ? gs.n_generated / (gs.gen_ms / 1e3) : 0;
    if (json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "done", json_object_new_boolean(1));
        json_object_object_add(j, "stop_reason", json_object_new_string(ech_stop_reason_name(gs.stop)));
        json_object_object_add(j, "prompt_tokens", json_object_new_int64(gs.n_prompt));
        json_object_object_add(j, "completion_tokens", json_object_new_int64(gs.n_generated));
        json_object *t = json_object_new_object();
        json_object_object_add(t, "load_ms", ech_json_double(round(load_ms * 1000) / 1000));
        json_object_object_add(t, "prompt_ms", ech_json_double(round(gs.prompt_ms * 1000) / 1000));
        json_object_object_add(t, "prompt_tokens_per_s", ech_json_double(round(pp * 100) / 100));
        json_object_object_add(t, "generation_ms", ech_json_double(round(gs.gen_ms * 1000) / 1000));
        json_object_object_add(t, "generation_tokens_per_s", ech_json_double(round(tg * 100) / 100));
        json_object_object_add(j, "timings", t);
        printf("%s\n", ech_json_line(j));
        json_object_put(j);
    } else if (gs.n_generated && isatty(1)) {
        putchar('\n');
    }
    if (verbose)
        fprintf(stderr, "%s: load %.1f ms; prompt %u tokens in %.1f ms (%.2f tok/s); "
                        "generated %u tokens in %.1f ms (%.2f tok/s); stop: %s; %s kernels, %d threads\n",
                cli.prog, load_ms, gs.n_prompt, gs.prompt_ms, pp, gs.n_generated, gs.gen_ms, tg,
                ech_stop_reason_name(gs.stop), ech_isa_name(ech_kernels_isa()), ech_ctx_n_threads(ctx));
    rc = fflush(stdout) == 0 ? ECH_EXIT_OK : ECH_EXIT_FAIL;
    if (interrupted && rc == ECH_EXIT_OK) {
        ech_cli_error(&cli, "interrupted");
        rc = ECH_EXIT_FAIL;
    }
done:
    ech_tokens_free(&toks);
    ech_ctx_free(ctx);
    ech_tokenizer_free(tk);
    ech_model_close(m);
    ech_gguf_close(g);
    json_object_put(msgs);
    json_object_put(tools);
    free(rendered);
    free(tpl_src);
    free(path);
    free(prompt);
    return rc;
}
