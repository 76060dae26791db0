/* ech-chat - talk to an OpenAI-compatible server: one prompt in, the reply out. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ech.h"

enum {
    OPT_MODEL = 'm', OPT_PROMPT = 'p',
    OPT_SYSTEM = 0x101, OPT_BASE_URL, OPT_API_KEY, OPT_TEMP, OPT_TOP_P, OPT_MAX_TOKENS, OPT_SEED, OPT_STOP,
    OPT_NO_STREAM, OPT_JSON, OPT_MESSAGES, OPT_TOOLS, OPT_TIMEOUT, OPT_RETRIES, OPT_FORMAT,
};

static const ech_cli_opt options[] = {
    {OPT_PROMPT, 'p', "prompt", "TEXT", "the user message (default: FILE, else stdin)"},
    {OPT_SYSTEM, 0, "system", "TEXT", "a system message before it"},
    {OPT_MESSAGES, 0, "messages", "FILE", "the whole conversation: a JSON array of messages ('-': stdin)"},
    {OPT_TOOLS, 0, "tools", "FILE", "tool definitions: a JSON array (OpenAI format)"},
    {OPT_MODEL, 'm', "model", "NAME", "the model (default: $ECH_MODEL, else the server's first)"},
    {OPT_BASE_URL, 0, "base-url", "URL", "the API (default: $ECH_BASE_URL, $OPENAI_BASE_URL, http://127.0.0.1:8080/v1)"},
    {OPT_API_KEY, 0, "api-key", "KEY", "bearer key (default: $ECH_API_KEY, $OPENAI_API_KEY)"},
    {OPT_TEMP, 0, "temperature", "T", "sampling temperature (default: the server's)"},
    {OPT_TOP_P, 0, "top-p", "P", "nucleus sampling (default: the server's)"},
    {OPT_MAX_TOKENS, 'n', "max-tokens", "N", "generate at most N tokens"},
    {OPT_SEED, 0, "seed", "N", "sampling seed"},
    {OPT_STOP, 0, "stop", "TEXT", "stop before TEXT (may be repeated, at most 4)"},
    {OPT_FORMAT, 0, "json-object", NULL, "ask for a JSON object reply (response_format json_object)"},
    {OPT_NO_STREAM, 0, "no-stream", NULL, "fetch the reply whole instead of streaming it"},
    {OPT_JSON, 0, "json", NULL, "NDJSON events: delta, reasoning, tool_call, usage, final"},
    {OPT_TIMEOUT, 0, "timeout", "SECONDS", "request timeout (default 600; streams: between bytes)"},
    {OPT_RETRIES, 0, "retries", "N", "retries on connection errors, 408/409/429/5xx (default 2)"},
    ECH_CLI_STANDARD_OPTS,
    {0, 0, NULL, NULL, NULL},
};

static ech_cli cli = {
    .prog = "ech-chat",
    .usage = "[OPTION]... [FILE]",
    .about = "Send one chat request to an OpenAI-compatible server (ech-serve, llama-server,\n"
             "Ollama's /v1, ...) and print the reply as it streams in.  The user message is\n"
             "-p TEXT, else FILE, else stdin.",
    .opts = options,
};

typedef struct out_state {
    bool json;
    bool ended_newline;   /* the last text printed ended a line */
    bool any_text;
    bool write_failed;
} out_state;

static void put_line(out_state *o, json_object *j)
{
    if (printf("%s\n", ech_json_line(j)) < 0 || fflush(stdout) != 0)
        o->write_failed = true;
    json_object_put(j);
}

static json_object *event(const char *name)
{
    json_object *j = json_object_new_object();
    json_object_object_add(j, "event", json_object_new_string(name));
    return j;
}

static json_object *tool_call_json(json_object *j, const ech_chat_tool_call *t, size_t index)
{
    json_object_object_add(j, "index", json_object_new_int64((int64_t)index));
    json_object_object_add(j, "id", ech_json_string(t->id, strlen(t->id)));
    json_object_object_add(j, "name", ech_json_string(t->name, strlen(t->name)));
    json_object_object_add(j, "arguments", ech_json_string(t->arguments, strlen(t->arguments)));
    return j;
}

static json_object *usage_json(json_object *j, const ech_usage *u)
{
    json_object_object_add(j, "prompt_tokens", json_object_new_int64(u->prompt_tokens));
    json_object_object_add(j, "completion_tokens", json_object_new_int64(u->completion_tokens));
    json_object_object_add(j, "total_tokens", json_object_new_int64(u->total_tokens));
    return j;
}

static int on_event(void *user, const ech_chat_event *ev)
{
    out_state *o = user;
    if (ev->choice != 0)   /* we ask for one choice */
        return 0;
    if (o->json) {
        json_object *j = NULL;
        switch (ev->kind) {
        case ECH_CHAT_DELTA:
        case ECH_CHAT_REASONING:
            j = event(ev->kind == ECH_CHAT_DELTA ? "delta" : "reasoning");
            json_object_object_add(j, "content", ech_json_string(ev->text, ev->len));
            break;
        case ECH_CHAT_TOOL_CALL: {
            j = tool_call_json(event("tool_call"), ev->tool_call, ev->tool_index);
            break;
        }
        case ECH_CHAT_USAGE:
            j = usage_json(event("usage"), ev->usage);
            break;
        case ECH_CHAT_FINISH:
            break;
        }
        if (j)
            put_line(o, j);
        return o->write_failed;
    }
    if (ev->kind == ECH_CHAT_DELTA && ev->len) {
        if (fwrite(ev->text, 1, ev->len, stdout) != ev->len || fflush(stdout) != 0)
            o->write_failed = true;
        o->any_text = true;
        o->ended_newline = ev->text[ev->len - 1] == '\n';
    } else if (ev->kind == ECH_CHAT_TOOL_CALL) {
        if (o->any_text && !o->ended_newline)
            putchar('\n');
        /* a tool call on a line of its own, as JSON: the text mode is for people and pipes */
        json_object *j = tool_call_json(json_object_new_object(), ev->tool_call, ev->tool_index);
        if (printf("tool_call %s\n", ech_json_line(j)) < 0 || fflush(stdout) != 0)
            o->write_failed = true;
        json_object_put(j);
        o->any_text = true;
        o->ended_newline = true;
    }
    return o->write_failed;
}

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        ech_cli_usage_error(&cli, "%s: expected a number from %g to %g, got '%s'", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* The first model the server lists. */
static char *first_model(ech_client *c)
{
    ech_model_list l;
    ech_error err;
    if (ech_client_models(c, &l, &err) != ECH_OK) {
        ech_cli_error(&cli, "no --model given and listing the models failed: %s", err.msg);
        return NULL;
    }
    char *m = l.n ? strdup(l.v[0].id) : NULL;
    if (!l.n)
        ech_cli_error(&cli, "no --model given and the server lists no models");
    ech_model_list_free(&l);
    return m;
}

int main(int argc, char **argv)
{
    const char *prompt = NULL, *system = NULL, *model = NULL, *base_url = NULL, *api_key = NULL,
               *msgs_path = NULL, *tools_path = NULL;
    const char *stops[4];
    size_t n_stop = 0;
    ech_sampling sp = {0};
    ech_client_opts co = {.max_retries = -1};
    bool no_stream = false, json_format = false;
    out_state o = {0};
    int c;
    while ((c = ech_cli_next(&cli, argc, argv)) != -1) {
        unsigned long long u = 1;
        switch (c) {
        case OPT_PROMPT: prompt = cli.optarg; break;
        case OPT_SYSTEM: system = cli.optarg; break;
        case OPT_MESSAGES: msgs_path = cli.optarg; break;
        case OPT_TOOLS: tools_path = cli.optarg; break;
        case OPT_MODEL: model = cli.optarg; break;
        case OPT_BASE_URL: base_url = cli.optarg; break;
        case OPT_API_KEY: api_key = cli.optarg; break;
        case OPT_TEMP:
            if (parse_double("--temperature", cli.optarg, 0, 2, &sp.temperature))
                return ECH_EXIT_USAGE;
            sp.has_temperature = true;
            break;
        case OPT_TOP_P:
            if (parse_double("--top-p", cli.optarg, 0, 1, &sp.top_p))
                return ECH_EXIT_USAGE;
            sp.has_top_p = true;
            break;
        case OPT_MAX_TOKENS:
            if (ech_cli_parse_u64(&cli, "--max-tokens", cli.optarg, &u))
                return ECH_EXIT_USAGE;
            if (u == 0 || u > 1000000000)
                return ech_cli_usage_error(&cli, "--max-tokens: expected 1 to 1000000000");
            sp.max_tokens = (long)u;
            break;
        case OPT_SEED:
            if (ech_cli_parse_u64(&cli, "--seed", cli.optarg, &u) || u > INT64_MAX)
                return ECH_EXIT_USAGE;
            sp.has_seed = true;
            sp.seed = (int64_t)u;
            break;
        case OPT_STOP:
            if (n_stop == 4)
                return ech_cli_usage_error(&cli, "at most 4 --stop strings");
            stops[n_stop++] = cli.optarg;
            break;
        case OPT_TIMEOUT:
            if (parse_double("--timeout", cli.optarg, 0.001, 1e7, &co.timeout_s))
                return ECH_EXIT_USAGE;
            break;
        case OPT_RETRIES:
            if (ech_cli_parse_u64(&cli, "--retries", cli.optarg, &u) || u > 100)
                return ECH_EXIT_USAGE;
            co.max_retries = (int)u;
            break;
        case OPT_FORMAT: json_format = true; break;
        case OPT_NO_STREAM: no_stream = true; break;
        case OPT_JSON: o.json = true; break;
        case ECH_OPT_HELP: ech_cli_help(&cli, stdout); return ECH_EXIT_OK;
        case ECH_OPT_VERSION: ech_cli_version(&cli); return ECH_EXIT_OK;
        default: return ECH_EXIT_USAGE;
        }
    }
    if (argc - cli.optind > 1)
        return ech_cli_usage_error(&cli, "at most one FILE");
    const char *file = cli.optind < argc ? argv[cli.optind] : NULL;
    if ((prompt != NULL) + (file != NULL) + (msgs_path != NULL) > 1)
        return ech_cli_usage_error(&cli, "give the message one way: -p, FILE or --messages");
    if (msgs_path && system)
        return ech_cli_usage_error(&cli, "--system goes with a single message, not --messages");
    sp.stop = stops;
    sp.n_stop = n_stop;

    int rc = ECH_EXIT_FAIL;
    char *text = NULL, *own_model = NULL;
    json_object *msgs = NULL, *tools = NULL, *fmt = NULL;
    ech_client *cl = NULL;
    ech_error err;
    if (!prompt && !msgs_path) {
        size_t len;
        if (!(text = ech_cli_read_file(&cli, file ? file : "-", &len)))
            goto done;
        if (memchr(text, '\0', len)) {
            ech_cli_error(&cli, "%s: the message contains a NUL byte", file ? file : "<stdin>");
            goto done;
        }
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
            text[--len] = '\0';
        if (!ech_utf8_valid((const uint8_t *)text, len)) {
            ech_cli_error(&cli, "%s: the message is not valid UTF-8", file ? file : "<stdin>");
            goto done;
        }
        prompt = text;
    }
    if (!(msgs = ech_cli_conversation(&cli, msgs_path, system, prompt)))
        goto done;
    if (tools_path && !(tools = ech_cli_read_json(&cli, tools_path, json_type_array, "the tools")))
        goto done;
    co.base_url = base_url;
    co.api_key = api_key;
    co.model = model;
    if (ech_client_new(&co, &cl, &err) != ECH_OK) {
        ech_cli_error(&cli, "%s", err.msg);
        goto done;
    }
    if (!model && !getenv("ECH_MODEL")) {
        if (!(own_model = first_model(cl)))
            goto done;
        model = own_model;
    }
    if (json_format) {
        fmt = json_object_new_object();
        json_object_object_add(fmt, "type", json_object_new_string("json_object"));
    }
    ech_chat_request req = {
        .model = model, .messages_json = msgs, .tools_json = tools, .response_format = fmt, .sampling = sp,
    };
    ech_chat_response resp;
    ech_status st = ech_client_chat(cl, &req, no_stream ? NULL : on_event, &o, &resp, &err);
    if (st != ECH_OK) {
        const ech_client_error *ce = ech_client_last_error(cl);
        if (o.any_text && !o.ended_newline)
            putchar('\n');
        if (o.json) {
            json_object *j = event("error");
            json_object_object_add(j, "kind", json_object_new_string(ech_client_error_kind_name(ce->kind)));
            if (ce->http_status)
                json_object_object_add(j, "status", json_object_new_int(ce->http_status));
            json_object_object_add(j, "message", ech_json_string(ce->message, strlen(ce->message)));
            if (ce->request_id[0])
                json_object_object_add(j, "request_id", ech_json_string(ce->request_id, strlen(ce->request_id)));
            put_line(&o, j);
        }
        if (!o.write_failed)
            ech_cli_error(&cli, "%s", err.msg);
        else
            ech_cli_error(&cli, "write error on stdout");
        ech_chat_response_free(&resp);
        goto done;
    }
    const ech_chat_choice *ch = resp.n_choices ? &resp.choices[0] : NULL;
    if (no_stream && ch) {   /* print what a stream would have shown */
        if (ech_chat_response_replay(&resp, on_event, &o, &err) != ECH_OK)
            o.write_failed = true;
    }
    if (o.json) {
        json_object *j = event("final");
        if (resp.id)
            json_object_object_add(j, "id", json_object_new_string(resp.id));
        if (resp.model)
            json_object_object_add(j, "model", json_object_new_string(resp.model));
        json_object_object_add(j, "content", ch && ch->content ? ech_json_string(ch->content, ch->content_len) : NULL);
        json_object_object_add(j, "finish_reason", ch && ch->finish_reason ? json_object_new_string(ch->finish_reason)
                                                                           : NULL);
        json_object *tc = json_object_new_array();
        for (size_t i = 0; ch && i < ch->n_tool_calls; i++)
            json_object_array_add(tc, tool_call_json(json_object_new_object(), &ch->tool_calls[i], i));
        json_object_object_add(j, "tool_calls", tc);
        if (resp.usage.present)
            json_object_object_add(j, "usage", usage_json(json_object_new_object(), &resp.usage));
        if (resp.request_id)
            json_object_object_add(j, "request_id", json_object_new_string(resp.request_id));
        put_line(&o, j);
    } else if (o.any_text && !o.ended_newline) {
        putchar('\n');
    }
    ech_chat_response_free(&resp);
    if (o.write_failed || fflush(stdout) != 0) {
        ech_cli_error(&cli, "write error on stdout");
        goto done;
    }
    rc = ECH_EXIT_OK;
done:
    ech_client_free(cl);
    json_object_put(msgs);
    json_object_put(tools);
    json_object_put(fmt);
    free(text);
    free(own_model);
    return rc;
}
