/* ech-template - render a model's chat template for a conversation. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ech.h"

enum {
    OPT_MODEL = 'm', OPT_TEMPLATE = 't', OPT_PROMPT = 'p',
    OPT_MESSAGES = 0x101, OPT_TOOLS, OPT_NOGEN, OPT_VAR, OPT_BOS, OPT_EOS, OPT_NAME, OPT_SYSTEM,
};

static const ech_cli_opt options[] = {
    {OPT_MODEL, 'm', "model", "FILE", "use the chat template (and BOS/EOS tokens) of this GGUF"},
    {OPT_TEMPLATE, 't', "template", "FILE", "use the Jinja template in FILE (overrides the model's)"},
    {OPT_NAME, 0, "template-name", "NAME", "use the GGUF's tokenizer.chat_template.NAME"},
    {OPT_MESSAGES, 0, "messages", "FILE", "the conversation: a JSON array of messages ('-': stdin)"},
    {OPT_TOOLS, 0, "tools", "FILE", "tool definitions: a JSON array (OpenAI format)"},
    {OPT_PROMPT, 'p', "prompt", "TEXT", "a single user message (instead of --messages)"},
    {OPT_SYSTEM, 0, "system", "TEXT", "with --prompt: a system message before it"},
    {OPT_NOGEN, 0, "no-generation-prompt", NULL, "do not end with the assistant's turn header"},
    {OPT_VAR, 0, "var", "KEY=JSON", "set a template variable (repeatable), e.g. enable_thinking=false"},
    {OPT_BOS, 0, "bos", "TEXT", "the BOS token text (default: the model's, else empty)"},
    {OPT_EOS, 0, "eos", "TEXT", "the EOS token text (default: the model's, else empty)"},
    ECH_CLI_STANDARD_OPTS,
    {0, 0, NULL, NULL, NULL},
};

static ech_cli cli = {
    .prog = "ech-template",
    .usage = "-m MODEL.gguf | -t TEMPLATE.jinja  --messages FILE | -p TEXT  [OPTION]...",
    .about = "Render a chat template for a conversation and print the prompt text exactly\n"
             "(no newline is added).  Templates run in a sandboxed Jinja interpreter that\n"
             "renders byte for byte what Python's jinja2 does under Hugging Face transformers.",
    .opts = options,
};

int main(int argc, char **argv)
{
    const char *model = NULL, *tpl_path = NULL, *tpl_name = NULL, *msgs_path = NULL,
               *tools_path = NULL, *prompt = NULL, *system = NULL, *bos = NULL, *eos = NULL;
    bool nogen = false;
    json_object *vars = json_object_new_object();
    int c, rc = ECH_EXIT_FAIL;
    while ((c = ech_cli_next(&cli, argc, argv)) != -1) {
        switch (c) {
        case OPT_MODEL: model = cli.optarg; break;
        case OPT_TEMPLATE: tpl_path = cli.optarg; break;
        case OPT_NAME: tpl_name = cli.optarg; break;
        case OPT_MESSAGES: msgs_path = cli.optarg; break;
        case OPT_TOOLS: tools_path = cli.optarg; break;
        case OPT_PROMPT: prompt = cli.optarg; break;
        case OPT_SYSTEM: system = cli.optarg; break;
        case OPT_NOGEN: nogen = true; break;
        case OPT_BOS: bos = cli.optarg; break;
        case OPT_EOS: eos = cli.optarg; break;
        case OPT_VAR: {
            const char *eq = strchr(cli.optarg, '=');
            if (!eq || eq == cli.optarg) {
                json_object_put(vars);
                return ech_cli_usage_error(&cli, "--var wants KEY=JSON, got '%s'", cli.optarg);
            }
            enum json_tokener_error jerr;
            json_object *v = json_tokener_parse_verbose(eq + 1, &jerr);
            if (jerr != json_tokener_success) {
                json_object_put(vars);
                return ech_cli_usage_error(&cli, "--var %.*s: the value is not JSON (%s); quote strings, "
                                           "e.g. --var 'name=\"text\"'", (int)(eq - cli.optarg),
                                           cli.optarg, json_tokener_error_desc(jerr));
            }
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)(eq - cli.optarg), cli.optarg);
            json_object_object_add(vars, key, v);
            break;
        }
        case ECH_OPT_HELP: ech_cli_help(&cli, stdout); json_object_put(vars); return ECH_EXIT_OK;
        case ECH_OPT_VERSION: ech_cli_version(&cli); json_object_put(vars); return ECH_EXIT_OK;
        default: json_object_put(vars); return ECH_EXIT_USAGE;
        }
    }
    const char *usage = NULL;
    if (cli.optind < argc)
        usage = "unexpected argument";
    else if (!model && !tpl_path)
        usage = "give a model (-m) or a template (-t)";
    else if (!msgs_path == !prompt)
        usage = "give the conversation with --messages or -p (one of them)";
    else if (system && !prompt)
        usage = "--system goes with -p";
    if (usage) {
        json_object_put(vars);
        return ech_cli_usage_error(&cli, "%s", usage);
    }

    ech_gguf *g = NULL;
    ech_chat_template *tpl = NULL;
    json_object *msgs = NULL, *tools = NULL;
    char *src = NULL, *bos_buf = NULL, *eos_buf = NULL, *out = NULL;
    ech_error err;
    if (model && ech_gguf_open(model, &g, &err) != ECH_OK) {
        ech_cli_error(&cli, "%s", err.msg);
        goto done;
    }
    if (tpl_path) {
        size_t len;
        if (!(src = ech_cli_read_file(&cli, tpl_path, &len)))
            goto done;
        if (ech_chat_template_compile(src, len, &tpl, &err) != ECH_OK) {
            ech_cli_error(&cli, "%s: %s", tpl_path, err.msg);
            goto done;
        }
    } else {
        ech_status st = ech_chat_template_from_gguf(g, tpl_name, &tpl, &err);
        if (st == ECH_ERR_NOT_FOUND && !tpl_name) {
            fprintf(stderr, "%s: note: %s has no chat template; using ChatML\n", cli.prog, model);
            const char *chatml = ech_chat_template_chatml();
            st = ech_chat_template_compile(chatml, strlen(chatml), &tpl, &err);
        }
        if (st != ECH_OK) {
            ech_cli_error(&cli, "%s: %s", model, err.msg);
            goto done;
        }
    }
    if (g) {
        ech_str b, e;
        ech_chat_gguf_special_tokens(g, &b, &e);
        if (!bos && b.ptr && (bos_buf = strndup(b.ptr, b.len)))
            bos = bos_buf;
        if (!eos && e.ptr && (eos_buf = strndup(e.ptr, e.len)))
            eos = eos_buf;
    }
    if (!(msgs = ech_cli_conversation(&cli, msgs_path, system, prompt)))
        goto done;
    if (tools_path && !(tools = ech_cli_read_json(&cli, tools_path, json_type_array, "the tools")))
        goto done;

    ech_chat_input in = {
        .messages = msgs, .tools = tools, .add_generation_prompt = !nogen,
        .bos_token = bos, .eos_token = eos, .vars = vars,
    };
    size_t len;
    if (ech_chat_render(tpl, &in, &out, &len, &err) != ECH_OK) {
        ech_cli_error(&cli, "%s", err.msg);
        goto done;
    }
    if (fwrite(out, 1, len, stdout) != len || fflush(stdout) != 0) {
        ech_cli_error(&cli, "write error on stdout");
        goto done;
    }
    rc = ECH_EXIT_OK;
done:
    free(out);
    free(src);
    free(bos_buf);
    free(eos_buf);
    json_object_put(msgs);
    json_object_put(tools);
    json_object_put(vars);
    ech_chat_template_free(tpl);
    ech_gguf_close(g);
    return rc;
}
