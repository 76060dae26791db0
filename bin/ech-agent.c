/* ech-agent - run a task with a model and tools until it has an answer. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "ech.h"

enum {
    OPT_MODEL = 'm', OPT_VERBOSE = 'v', OPT_MAX_TOKENS = 'n',
    OPT_BASE_URL = 0x101, OPT_API_KEY, OPT_SYSTEM, OPT_MAX_TURNS, OPT_TOOL, OPT_MCP, OPT_MCP_URL, OPT_MCP_LOG,
    OPT_ALLOW_SHELL, OPT_NO_BUILTINS, OPT_TOOL_TIMEOUT, OPT_OUTPUT_CAP, OPT_SESSION, OPT_RESUME, OPT_JSON,
    OPT_TEMP, OPT_LIST_TOOLS, OPT_CALL_TOOL, OPT_MCP_HEADER,
};

static const ech_cli_opt options[] = {
    {OPT_MODEL, 'm', "model", "NAME", "the model to ask (default: $ECH_MODEL, else the server's)"},
    {OPT_BASE_URL, 0, "base-url", "URL", "the OpenAI-compatible API (default: $ECH_BASE_URL, $OPENAI_BASE_URL, "
                                          "http://127.0.0.1:8080/v1)"},
    {OPT_API_KEY, 0, "api-key", "KEY", "the API key (default: $ECH_API_KEY, $OPENAI_API_KEY)"},
    {OPT_SYSTEM, 0, "system", "TEXT", "a system message before the task"},
    {OPT_MAX_TURNS, 0, "max-turns", "N", "call the model at most N times (default 10)"},
    {OPT_TEMP, 0, "temp", "T", "sampling temperature (default: the server's)"},
    {OPT_MAX_TOKENS, 'n', "max-tokens", "N", "at most N tokens per model answer"},
    {OPT_TOOL, 0, "tool", "FILE", "add the tool(s) described in a JSON tool file (may be repeated)"},
    {OPT_MCP, 0, "mcp", "FILE", "start the MCP servers of a {\"mcpServers\": ...} file (may be repeated)"},
    {OPT_MCP_URL, 0, "mcp-url", "URL", "use the Streamable HTTP MCP server at URL (may be repeated)"},
    {OPT_MCP_HEADER, 0, "mcp-header", "'NAME: VALUE'", "send this header to the --mcp-url servers (may be repeated)"},
    {OPT_MCP_LOG, 0, "mcp-log", "FILE", "append the MCP servers' stderr to FILE (default: shown with -v)"},
    {OPT_ALLOW_SHELL, 0, "allow-shell", NULL, "offer run_shell without asking (else it asks on a terminal)"},
    {OPT_NO_BUILTINS, 0, "no-builtins", NULL, "do not offer read_file, list_directory and run_shell"},
    {OPT_TOOL_TIMEOUT, 0, "tool-timeout", "SECONDS", "stop a tool call after this long (default 60)"},
    {OPT_OUTPUT_CAP, 0, "output-cap", "BYTES", "keep at most this much of a tool's output (default 65536)"},
    {OPT_SESSION, 0, "session", "FILE", "keep the conversation in FILE, written after every step"},
    {OPT_RESUME, 0, "resume", NULL, "continue the conversation in the --session file"},
    {OPT_JSON, 0, "json", NULL, "stream NDJSON events (message, tool_call, tool_result, usage, final)"},
    {OPT_LIST_TOOLS, 0, "list-tools", NULL, "print the tools as NDJSON (OpenAI format) and exit"},
    {OPT_CALL_TOOL, 0, "call-tool", "NAME", "call one tool with the JSON arguments given as the operand "
                                           "(or on stdin), print its result and exit"},
    {OPT_VERBOSE, 'v', "verbose", NULL, "say what happens on stderr (twice: more)"},
    ECH_CLI_STANDARD_OPTS,
    {0, 0, NULL, NULL, NULL},
};

static ech_cli cli = {
    .prog = "ech-agent",
    .usage = "[OPTION]... [TASK]...",
    .about = "Give a model a task and tools; run the tool calls it asks for and feed back their results\n"
             "until it answers.  The task comes from the operands or stdin; the answer goes to stdout.\n"
             "Tools: read_file and list_directory, run_shell (--allow-shell), JSON tool files (--tool),\n"
             "MCP servers (--mcp, --mcp-url).",
    .opts = options,
};

static ech_secrets secrets;
static int verbose;
static volatile sig_atomic_t interrupted;

/* The first SIGINT or SIGTERM ends the run at the next step (the session
 * file is then whole); a second one kills us at once. */
static void on_signal(int sig)
{
    interrupted = 1;
    signal(sig, SIG_DFL);
}

/* Everything we print that could hold a secret passes through here. */
static void put_redacted(FILE *f, const char *s)
{
    char *r = ech_secrets_redact(&secrets, s, strlen(s), NULL);
    fputs(r ? r : "[out of memory]", f);
    free(r);
}

static void on_log(ech_log_level level, const char *msg, void *user)
{
    (void)level;
    (void)user;
    fprintf(stderr, "%s: ", cli.prog);
    put_redacted(stderr, msg);
    fputc('\n', stderr);
}

typedef struct run_state {
    int json;
    int write_error;
} run_state;

static int on_event(void *user, json_object *ev)
{
    run_state *s = user;
    if (s->json) {
        put_redacted(stdout, ech_json_line(ev));
        fputc('\n', stdout);
        if (fflush(stdout) != 0)
            s->write_error = 1;
    } else if (verbose) {
        json_object *t, *v;
        json_object_object_get_ex(ev, "type", &t);
        const char *type = json_object_get_string(t);
        char line[600];
        line[0] = '\0';
        if (strcmp(type, "tool_call") == 0) {
            json_object_object_get_ex(ev, "name", &v);
            json_object *args;
            json_object_object_get_ex(ev, "arguments", &args);
            snprintf(line, sizeof line, "tool %s %.400s", json_object_get_string(v), json_object_get_string(args));
        } else if (strcmp(type, "tool_result") == 0) {
            json_object *e, *c;
            json_object_object_get_ex(ev, "name", &v);
            json_object_object_get_ex(ev, "is_error", &e);
            json_object_object_get_ex(ev, "content", &c);
            snprintf(line, sizeof line, "%s %s: %zu bytes", json_object_get_string(v),
                     json_object_get_boolean(e) ? "failed" : "done", strlen(json_object_get_string(c)));
        } else if (strcmp(type, "usage") == 0) {
            json_object_object_get_ex(ev, "total_tokens", &v);
            snprintf(line, sizeof line, "model call: %s tokens", json_object_get_string(v));
        }
        if (line[0])
            on_log(ECH_LOG_INFO, line, NULL);
    }
    return interrupted || s->write_error;
}

/* run_shell without --allow-shell: ask the person at the terminal. */
static int ask_tty(void *user, const char *tool, const char *command)
{
    (void)user;
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty)
        return 0;
    fprintf(tty, "%s: the model wants to run (%s):\n  ", cli.prog, tool);
    put_redacted(tty, command);
    fprintf(tty, "\nAllow? [y/N] ");
    fflush(tty);
    char answer[16] = "";
    int ok = fgets(answer, sizeof answer, tty) && (answer[0] == 'y' || answer[0] == 'Y');
    fclose(tty);
    return ok;
}

static int can_ask(void)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return 0;
    close(fd);
    return isatty(STDERR_FILENO);
}

/* The operands joined by spaces, else stdin (NULL if empty, after an error message on failure). */
static char *read_task(int argc, char **argv, int first, int stdin_ok, int *failed)
{
    *failed = 0;
    if (first < argc) {
        ech_buf b = {0};
        for (int i = first; i < argc; i++) {
            if (i > first)
                ech_buf_putc(&b, ' ');
            ech_buf_puts(&b, argv[i]);
        }
        return ech_buf_steal(&b);
    }
    if (!stdin_ok || fcntl(STDIN_FILENO, F_GETFD) < 0)   /* none asked for, or stdin closed */
        return NULL;
    size_t len;
    char *s = ech_cli_read_file(&cli, "-", &len);
    if (!s) {
        *failed = 1;
        return NULL;
    }
    while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        s[--len] = '\0';
    if (!len) {
        free(s);
        return NULL;
    }
    return s;
}

#define MAX_SOURCES 32

int main(int argc, char **argv)
{
    const char *model = NULL, *base_url = NULL, *api_key = NULL, *system = NULL, *session = NULL,
               *mcp_log = NULL, *call_tool = NULL;
    const char *tool_files[MAX_SOURCES], *mcp_files[MAX_SOURCES], *mcp_urls[MAX_SOURCES];
    const char *mcp_headers[MAX_SOURCES + 1] = {NULL};
    int n_tool = 0, n_mcp = 0, n_url = 0, n_header = 0;
    int json = 0, resume = 0, allow_shell = 0, builtins = 1, list_tools = 0;
    unsigned long long max_turns = 10, tool_timeout = 60, output_cap = 65536, max_tokens = 0;
    double temp = -1;
    int c;
    while ((c = ech_cli_next(&cli, argc, argv)) != -1) {
        switch (c) {
        case OPT_MODEL: model = cli.optarg; break;
        case OPT_BASE_URL: base_url = cli.optarg; break;
        case OPT_API_KEY: api_key = cli.optarg; break;
        case OPT_SYSTEM: system = cli.optarg; break;
        case OPT_MAX_TURNS:
            if (ech_cli_parse_u64(&cli, "--max-turns", cli.optarg, &max_turns) < 0)
                return ECH_EXIT_USAGE;
            if (max_turns < 1 || max_turns > 100000)
                return ech_cli_usage_error(&cli, "--max-turns must be 1 to 100000");
            break;
        case OPT_MAX_TOKENS:
            if (ech_cli_parse_u64(&cli, "--max-tokens", cli.optarg, &max_tokens) < 0)
                return ECH_EXIT_USAGE;
            break;
        case OPT_TEMP: {
            char *end;
            errno = 0;
            temp = strtod(cli.optarg, &end);
            if (errno || *end || end == cli.optarg || !(temp >= 0 && temp <= 100))
                return ech_cli_usage_error(&cli, "--temp: expected a number from 0, got '%s'", cli.optarg);
            break;
        }
        case OPT_TOOL:
        case OPT_MCP:
        case OPT_MCP_URL: {
            const char **list = c == OPT_TOOL ? tool_files : c == OPT_MCP ? mcp_files : mcp_urls;
            int *n = c == OPT_TOOL ? &n_tool : c == OPT_MCP ? &n_mcp : &n_url;
            if (*n == MAX_SOURCES)
                return ech_cli_usage_error(&cli, "at most %d of each of --tool, --mcp and --mcp-url", MAX_SOURCES);
            list[(*n)++] = cli.optarg;
            break;
        }
        case OPT_MCP_HEADER:
            if (n_header == MAX_SOURCES)
                return ech_cli_usage_error(&cli, "at most %d --mcp-header", MAX_SOURCES);
            if (!strchr(cli.optarg, ':') || strpbrk(cli.optarg, "\r\n"))
                return ech_cli_usage_error(&cli, "--mcp-header: expected 'Name: value', got '%s'", cli.optarg);
            mcp_headers[n_header++] = cli.optarg;
            break;
        case OPT_MCP_LOG: mcp_log = cli.optarg; break;
        case OPT_ALLOW_SHELL: allow_shell = 1; break;
        case OPT_NO_BUILTINS: builtins = 0; break;
        case OPT_TOOL_TIMEOUT:
            if (ech_cli_parse_u64(&cli, "--tool-timeout", cli.optarg, &tool_timeout) < 0)
                return ECH_EXIT_USAGE;
            if (tool_timeout < 1 || tool_timeout > 86400)
                return ech_cli_usage_error(&cli, "--tool-timeout must be 1 to 86400 seconds");
            break;
        case OPT_OUTPUT_CAP:
            if (ech_cli_parse_u64(&cli, "--output-cap", cli.optarg, &output_cap) < 0)
                return ECH_EXIT_USAGE;
            if (output_cap < 64 || output_cap > (64ULL << 20))
                return ech_cli_usage_error(&cli, "--output-cap must be 64 bytes to 64 MiB");
            break;
        case OPT_SESSION: session = cli.optarg; break;
        case OPT_RESUME: resume = 1; break;
        case OPT_JSON: json = 1; break;
        case OPT_LIST_TOOLS: list_tools = 1; break;
        case OPT_CALL_TOOL: call_tool = cli.optarg; break;
        case OPT_VERBOSE: verbose++; break;
        case ECH_OPT_HELP: ech_cli_help(&cli, stdout); return ECH_EXIT_OK;
        case ECH_OPT_VERSION: ech_cli_version(&cli); return ECH_EXIT_OK;
        default: return ECH_EXIT_USAGE;
        }
    }
    if (resume && !session)
        return ech_cli_usage_error(&cli, "--resume needs --session FILE");
    struct stat sb;
    if (session && !resume && stat(session, &sb) == 0)
        return ech_cli_usage_error(&cli, "%s exists: continue it with --resume, or remove it", session);
    if (session && resume && stat(session, &sb) != 0)
        return ech_cli_usage_error(&cli, "--resume: there is no session %s", session);

    signal(SIGPIPE, SIG_IGN);   /* a closed stdout is a write error, reported */
    ech_secrets_from_env(&secrets);
    if (api_key)
        ech_secrets_add(&secrets, api_key);
    for (int i = 0; i < n_header; i++) {   /* an Authorization value is a secret too */
        const char *v = strchr(mcp_headers[i], ':') + 1;
        while (*v == ' ')
            v++;
        if (strncasecmp(mcp_headers[i], "authorization:", 14) == 0 && strchr(v, ' '))
            v = strchr(v, ' ') + 1;   /* "Bearer TOKEN": the token */
        ech_secrets_add(&secrets, v);
    }
    ech_log_set(on_log, NULL, verbose >= 2 ? ECH_LOG_DEBUG : verbose ? ECH_LOG_INFO : ECH_LOG_WARN);

    int status = ECH_EXIT_FAIL, mcp_fd = -1;
    ech_error err;
    ech_toolset *tools = NULL;
    ech_client *client = NULL;
    ech_agent *agent = NULL;
    char *task = NULL, *final = NULL;
    if (mcp_log && (mcp_fd = open(mcp_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
        ech_cli_error(&cli, "cannot open %s: %s", mcp_log, strerror(errno));
        goto done;
    }
    ech_toolset_opts to = {.timeout_ms = (int)tool_timeout * 1000, .output_cap = (size_t)output_cap,
                           .mcp_stderr_fd = mcp_fd, .secrets = &secrets};
    if (ech_toolset_new(&to, &tools, &err) != ECH_OK)
        goto fail;
    unsigned which = builtins ? ECH_TOOL_READ_FILE | ECH_TOOL_LIST_DIRECTORY : 0;
    int shell = allow_shell || (builtins && can_ask());
    if (shell)
        which |= ECH_TOOL_RUN_SHELL;
    if (ech_toolset_add_builtins(tools, which, allow_shell ? NULL : ask_tty, NULL, &err) != ECH_OK)
        goto fail;
    for (int i = 0; i < n_tool; i++)
        if (ech_toolset_add_file(tools, tool_files[i], &err) != ECH_OK)
            goto fail;
    for (int i = 0; i < n_mcp; i++)
        if (ech_toolset_add_mcp_config(tools, mcp_files[i], &err) != ECH_OK)
            goto fail;
    for (int i = 0; i < n_url; i++)
        if (ech_toolset_add_mcp_url(tools, NULL, mcp_urls[i], mcp_headers, &err) != ECH_OK)
            goto fail;

    if (list_tools) {
        json_object *defs = ech_toolset_definitions(tools);
        for (size_t i = 0; i < json_object_array_length(defs); i++)
            printf("%s\n", ech_json_line(json_object_array_get_idx(defs, i)));
        json_object_put(defs);
        status = fflush(stdout) == 0 ? ECH_EXIT_OK : ECH_EXIT_FAIL;
        goto done;
    }
    if (call_tool) {
        int failed;
        char *args = read_task(argc, argv, cli.optind, 1, &failed);
        if (failed)
            goto done;
        ech_tool_result r;
        if (ech_toolset_call(tools, call_tool, args, &r) != ECH_OK) {
            ech_cli_error(&cli, "out of memory");
            free(args);
            goto done;
        }
        free(args);
        if (json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "name", json_object_new_string(call_tool));
            json_object_object_add(o, "content", ech_json_string(r.content, strlen(r.content)));
            json_object_object_add(o, "is_error", json_object_new_boolean(r.is_error));
            json_object_object_add(o, "seconds", ech_json_double(r.seconds));
            put_redacted(stdout, ech_json_line(o));
            json_object_put(o);
            fputc('\n', stdout);
        } else {
            put_redacted(stdout, r.content);
            size_t n = strlen(r.content);
            if (!n || r.content[n - 1] != '\n')
                fputc('\n', stdout);
        }
        status = r.is_error ? ECH_EXIT_FAIL : ECH_EXIT_OK;
        ech_tool_result_free(&r);
        if (fflush(stdout) != 0)
            status = ECH_EXIT_FAIL;
        goto done;
    }

    int failed;
    task = read_task(argc, argv, cli.optind, !resume || !isatty(STDIN_FILENO), &failed);
    if (failed)
        goto done;
    if (!task && !resume) {
        status = ech_cli_usage_error(&cli, "no task: give it as an argument or on stdin");
        goto done;
    }
    ech_client_opts co = {.base_url = base_url, .api_key = api_key, .model = model, .max_retries = -1};
    if (ech_client_new(&co, &client, &err) != ECH_OK)
        goto fail;
    run_state rs = {.json = json};
    ech_agent_opts ao = {.client = client, .tools = tools, .model = model, .max_turns = (int)max_turns,
                         .session_path = session, .on_event = on_event, .user = &rs};
    if (temp >= 0)
        ao.sampling.has_temperature = true, ao.sampling.temperature = temp;
    ao.sampling.max_tokens = (long)max_tokens;
    if (ech_agent_new(&ao, &agent, &err) != ECH_OK)
        goto fail;
    if (resume) {
        if (ech_agent_load(agent, session, &err) != ECH_OK)
            goto fail;
        const char *done_answer = ech_agent_final(agent);
        if (!task && done_answer) {   /* nothing left to do: say the answer again */
            if (json) {
                json_object *ev = json_object_new_object();
                json_object_object_add(ev, "type", json_object_new_string("final"));
                json_object_object_add(ev, "content", ech_json_string(done_answer, strlen(done_answer)));
                on_event(&rs, ev);
                json_object_put(ev);
            } else {
                put_redacted(stdout, done_answer);
                fputc('\n', stdout);
            }
            status = fflush(stdout) == 0 && !rs.write_error ? ECH_EXIT_OK : ECH_EXIT_FAIL;
            goto done;
        }
    } else if (system && ech_agent_add_message(agent, "system", system, &err) != ECH_OK) {
        goto fail;
    }
    if (!resume && ech_agent_save(agent, &err) != ECH_OK)
        goto fail;

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    ech_status st = ech_agent_run(agent, task, &final, &err);
    if (rs.write_error) {
        ech_cli_error(&cli, "cannot write to stdout");
        goto done;
    }
    if (st != ECH_OK) {
        if (st == ECH_ERR_CANCELED && interrupted)
            ech_error_set(&err, st, "interrupted%s%s", session ? "; continue with --resume --session " : "",
                          session ? session : "");
        if (json) {
            json_object *ev = json_object_new_object();
            json_object_object_add(ev, "type", json_object_new_string("error"));
            json_object_object_add(ev, "message", json_object_new_string(err.msg));
            on_event(&rs, ev);
            json_object_put(ev);
        }
        goto fail;
    }
    if (!json) {
        put_redacted(stdout, final);
        fputc('\n', stdout);
    }
    status = fflush(stdout) == 0 ? ECH_EXIT_OK : ECH_EXIT_FAIL;
    if (status != ECH_EXIT_OK)
        ech_cli_error(&cli, "cannot write to stdout");
    goto done;
fail:
    on_log(ECH_LOG_ERROR, err.msg, NULL);
done:
    free(final);
    free(task);
    ech_agent_free(agent);
    ech_client_free(client);
    ech_toolset_free(tools);
    if (mcp_fd >= 0)
        close(mcp_fd);
    ech_secrets_free(&secrets);
    return status;
}
