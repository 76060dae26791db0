/* t-agent.c - lib/agent: JSON-RPC messages, content rendering, redaction,
 * child processes, the tool registry, and MCP against scripted /bin/sh
 * servers (version fallback, server requests, death and silence mid-call).
 * Real MCP servers are in tests/t0870-agent-mcp-npm.sh. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ech.h"
#include "tap.h"

static void test_rpc_parse(void)
{
    static const struct {
        const char *text;
        int kind;   /* 0: rejected */
    } cases[] = {
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", ECH_RPC_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"x\",\"params\":{}}", ECH_RPC_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}", ECH_RPC_NOTIFICATION},
        {"{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}", ECH_RPC_RESULT},
        {"{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":null}", ECH_RPC_RESULT},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"parse\"}}", ECH_RPC_ERROR},
        {"{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{}}", ECH_RPC_ERROR},
        {" {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":1} \n", ECH_RPC_RESULT},
        {"{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":{}}", 0},
        {"{\"id\":1,\"result\":{}}", 0},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{}}", 0},
        {"{\"jsonrpc\":\"2.0\",\"id\":1}", 0},
        {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"result\":{}}", 0},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"x\"}", 0},
        {"{\"jsonrpc\":\"2.0\",\"id\":{},\"result\":{}}", 0},
        {"{\"jsonrpc\":\"2.0\",\"method\":5}", 0},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"bad\"}", 0},
        {"[{\"jsonrpc\":\"2.0\",\"method\":\"x\"}]", 0},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}} {}", 0},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{", 0},
        {"", 0},
        {"null", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ech_rpc_msg m;
        ech_error err;
        ech_status st = ech_rpc_parse(cases[i].text, strlen(cases[i].text), &m, &err);
        if (cases[i].kind) {
            ok(st == ECH_OK && (int)m.kind == cases[i].kind, "rpc: %s", cases[i].text);
            if (st == ECH_OK && m.kind == ECH_RPC_ERROR)
                ok(m.error_message != NULL, "rpc: error message never NULL");
            ech_rpc_msg_free(&m);
        } else {
            ok(st == ECH_ERR_FORMAT && m.root == NULL && err.msg[0], "rpc rejected: '%s' (%s)", cases[i].text,
               st == ECH_OK ? "accepted" : err.msg);
        }
    }
    ech_rpc_msg m;
    const char *e = "{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":-32601,\"message\":\"Method not found\"}}";
    ech_rpc_parse(e, strlen(e), &m, NULL);
    is_int(m.error_code, -32601, "rpc: error code");
    is_str(m.error_message, "Method not found", "rpc: error message");
    is_int(json_object_get_int(m.id), 4, "rpc: id");
    ech_rpc_msg_free(&m);
}

static void test_render(void)
{
    json_object *r = json_tokener_parse(
        "{\"content\":[{\"type\":\"text\",\"text\":\"one\"},"
        "{\"type\":\"image\",\"data\":\"AAAAAAAA\",\"mimeType\":\"image/png\"},"
        "{\"type\":\"resource_link\",\"uri\":\"file:///a\",\"name\":\"a\"},"
        "{\"type\":\"resource\",\"resource\":{\"uri\":\"file:///b\",\"text\":\"bee\"}},"
        "{\"type\":\"resource\",\"resource\":{\"uri\":\"file:///c\",\"blob\":\"AA\",\"mimeType\":\"x/y\"}},"
        "{\"type\":\"hologram\"},{\"text\":\"no type\"}]}");
    char *s = ech_mcp_render_content(r);
    is_str(s, "one\n[image: image/png, about 6 bytes]\n[resource link: a <file:///a>]\n[resource file:///b]\nbee\n"
              "[resource file:///c: x/y, binary]\n[hologram content]\n[content without a type]",
           "render: every content type described");
    free(s);
    json_object_put(r);
    r = json_tokener_parse("{\"content\":[],\"structuredContent\":{\"n\":1}}");
    s = ech_mcp_render_content(r);
    is_str(s, "{\"n\":1}", "render: structuredContent when no content");
    free(s);
    json_object_put(r);
    r = json_tokener_parse("{\"content\":\"not an array\"}");
    s = ech_mcp_render_content(r);
    is_str(s, "", "render: a bad content field renders empty");
    free(s);
    json_object_put(r);
}

static void test_redact(void)
{
    ok(ech_secret_name("OPENAI_API_KEY", 14) && ech_secret_name("gh_token", 8) &&
       ech_secret_name("DB_PASSWORD", 11) && ech_secret_name("MySecret", 8), "secret names");
    ok(!ech_secret_name("HOME", 4) && !ech_secret_name("PATH", 4) && !ech_secret_name("KE", 2), "plain names");
    ech_secrets s = {0};
    ech_secrets_add(&s, "abcdef");
    ech_secrets_add(&s, "abcdefghij");
    ech_secrets_add(&s, "short");
    ech_secrets_add(&s, "123456789");
    ech_secrets_add(&s, "TRUE");
    is_int(s.n, 2, "secrets: short, numeric and boolean values skipped");
    const char *t = "x abcdefghij y abcdef z abcde";
    size_t n;
    char *r = ech_secrets_redact(&s, t, strlen(t), &n);
    is_str(r, "x [REDACTED] y [REDACTED] z abcde", "redact: longest first, both replaced");
    is_int(n, strlen(r), "redact: length");
    free(r);
    setenv("T_AGENT_API_KEY", "from-the-env-123", 1);
    ech_secrets_from_env(&s);
    r = ech_secrets_redact(&s, "k=from-the-env-123", 18, NULL);
    is_str(r, "k=[REDACTED]", "redact: environment secrets");
    free(r);
    ech_secrets_free(&s);
}

static void test_proc(void)
{
    ech_proc_result r;
    ech_error err;
    const char *cat[] = {"cat", NULL};
    ok(ech_proc_run(cat, NULL, "hello", 5, 5000, 1024, &r, &err) == ECH_OK && r.out.len == 5 &&
       memcmp(r.out.data, "hello", 5) == 0 && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
       "proc: stdin to stdout");
    ech_proc_result_free(&r);
    const char *big[] = {"sh", "-c", "head -c 200000 /dev/zero; echo oops >&2; exit 3", NULL};
    ech_proc_run(big, NULL, NULL, 0, 5000, 1000, &r, &err);
    ok(r.out.len == 1000 && r.out_dropped == 199000 && WEXITSTATUS(r.status) == 3 && r.err.len == 5,
       "proc: output capped and counted, exit status, stderr");
    ech_proc_result_free(&r);
    const char *sleepy[] = {"sh", "-c", "sleep 30; echo late", NULL};
    long long t0 = ech_now_ms();
    ech_proc_run(sleepy, NULL, NULL, 0, 300, 1000, &r, &err);
    ok(r.timed_out && r.out.len == 0 && ech_now_ms() - t0 < 5000, "proc: timeout stops the process group");
    ech_proc_result_free(&r);
    const char *bg[] = {"sh", "-c", "sleep 30 & echo started", NULL};
    t0 = ech_now_ms();
    ech_proc_run(bg, NULL, NULL, 0, 20000, 1000, &r, &err);
    ok(!r.timed_out && r.out.len == 8 && ech_now_ms() - t0 < 5000,
       "proc: a background child holding stdout does not make it wait for the timeout");
    ech_proc_result_free(&r);
    /* a child that does not read its input: no SIGPIPE, no hang */
    char *input = malloc(1 << 20);
    memset(input, 'x', 1 << 20);
    const char *deaf[] = {"true", NULL};
    ok(ech_proc_run(deaf, NULL, input, 1 << 20, 5000, 1000, &r, &err) == ECH_OK && WEXITSTATUS(r.status) == 0,
       "proc: a child that ignores its stdin");
    ech_proc_result_free(&r);
    free(input);
    const char *env_add[] = {"T_AGENT_X=42", NULL};
    const char *env[] = {"sh", "-c", "printf %s \"$T_AGENT_X\"", NULL};
    ech_proc_run(env, env_add, NULL, 0, 5000, 100, &r, &err);
    is_str(r.out.data, "42", "proc: added environment");
    ech_proc_result_free(&r);
    const char *none[] = {"/nonexistent/program", NULL};
    is_int(ech_proc_run(none, NULL, NULL, 0, 1000, 100, &r, &err), ECH_ERR_NOT_FOUND, "proc: missing program");
}

static ech_toolset *toolset(size_t cap)
{
    ech_toolset *ts;
    ech_toolset_opts o = {.timeout_ms = 2000, .output_cap = cap, .mcp_stderr_fd = -1};
    ech_toolset_new(&o, &ts, NULL);
    return ts;
}

static void call(ech_toolset *ts, const char *name, const char *args, int want_error, const char *want_sub,
                 const char *what)
{
    ech_tool_result r;
    ech_toolset_call(ts, name, args, &r);
    if (!ok(r.is_error == want_error && strstr(r.content, want_sub), "tools: %s", what))
        printf("#   is_error %d, content: %.300s\n", r.is_error, r.content);
    ech_tool_result_free(&r);
}

static void test_tools(void)
{
    ech_toolset *ts = toolset(1000);
    ech_error err;
    ok(ech_toolset_add_builtins(ts, ECH_TOOL_READ_FILE | ECH_TOOL_LIST_DIRECTORY, NULL, NULL, &err) == ECH_OK,
       "tools: built-ins");
    json_object *def = json_tokener_parse(
        "[{\"name\":\"upper\",\"description\":\"upper-case\",\"parameters\":{\"type\":\"object\",\"properties\":"
        "{\"text\":{\"type\":\"string\"}},\"required\":[\"text\"]},\"command\":[\"tr\",\"a-z\",\"A-Z\"]},"
        "{\"type\":\"function\",\"function\":{\"name\":\"fails\"},\"command\":\"echo bad >&2; exit 4\"},"
        "{\"name\":\"hangs\",\"command\":\"sleep 30\",\"timeout\":0.3},"
        "{\"name\":\"floods\",\"command\":\"yes\"}]");
    ok(ech_toolset_add_json(ts, def, "/tmp", &err) == ECH_OK, "tools: tool definitions added");
    json_object_put(def);
    is_int(ech_toolset_count(ts), 6, "tools: six tools");
    json_object *defs = ech_toolset_definitions(ts);
    json_object *f0, *name;
    json_object_object_get_ex(json_object_array_get_idx(defs, 2), "function", &f0);
    json_object_object_get_ex(f0, "name", &name);
    is_str(json_object_get_string(name), "upper", "tools: definitions in OpenAI form");
    json_object_put(defs);
    call(ts, "upper", "{\"text\":\"abc\"}", 0, "{\"TEXT\":\"ABC\"}", "arguments on stdin as JSON");
    call(ts, "upper", "{\"text\": \"abc\"", 1, "not a JSON object (unexpected end of input)", "cut-off JSON arguments");
    call(ts, "upper", "[1]", 1, "not a JSON object", "arguments that are not an object");
    call(ts, "upper", "{} x", 1, "not a JSON object", "trailing junk after the arguments");
    call(ts, "upper", "{}", 1, "needs the argument \"text\"", "a missing required argument");
    call(ts, "fails", "", 1, "exit status 4", "a failing command: exit status");
    call(ts, "fails", NULL, 1, "bad", "a failing command: its stderr");
    call(ts, "hangs", "{}", 1, "did not finish within 0.3 s", "a tool that never exits");
    call(ts, "floods", "{}", 1, "[output truncated: ", "endless output is capped");
    call(ts, "nope", "{}", 1, "no tool named \"nope\"; the tools are: read_file, list_directory, upper", "unknown tool");
    call(ts, "read_file", "{\"path\":\"/nonexistent/x\"}", 1, "cannot open /nonexistent/x", "read_file: missing");
    call(ts, "read_file", "{\"path\":\"/\"}", 1, "use list_directory", "read_file: a directory");
    char dir[] = "/tmp/t-agent-XXXXXX";
    ok(mkdtemp(dir) != NULL, "a scratch directory");
    char path[64];
    snprintf(path, sizeof path, "%s/f.txt", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 300; i++)
        fprintf(f, "line %03d\n", i);
    fclose(f);
    char args[128];
    snprintf(args, sizeof args, "{\"path\":\"%s\"}", path);
    call(ts, "read_file", args, 0, "line 000\nline 001", "read_file: the start");
    call(ts, "read_file", args, 0, "[bytes 0 to 1000 of 2700; pass offset to read on]", "read_file: says it is cut");
    snprintf(args, sizeof args, "{\"path\":\"%s\",\"offset\":2691}", path);
    call(ts, "read_file", args, 0, "line 299\n\n[bytes 2691 to 2700 of 2700]", "read_file: from an offset");
    snprintf(path, sizeof path, "%s/sub", dir);
    mkdir(path, 0700);
    snprintf(args, sizeof args, "{\"path\":\"%s\"}", dir);
    call(ts, "list_directory", args, 0, "f.txt\nsub/\n", "list_directory: sorted, directories marked");
    snprintf(path, sizeof path, "%s/sub", dir);
    rmdir(path);
    snprintf(path, sizeof path, "%s/f.txt", dir);
    unlink(path);
    rmdir(dir);
    ech_toolset_free(ts);

    ts = toolset(0);
    def = json_tokener_parse("{\"name\":\"bad name!\",\"command\":[\"true\"]}");
    ok(ech_toolset_add_json(ts, def, NULL, &err) == ECH_ERR_FORMAT && strstr(err.msg, "name"), "tools: bad name");
    json_object_put(def);
    def = json_tokener_parse("{\"name\":\"x\"}");
    ok(ech_toolset_add_json(ts, def, NULL, &err) == ECH_ERR_FORMAT && strstr(err.msg, "command"),
       "tools: no command");
    json_object_put(def);
    def = json_tokener_parse("{\"name\":\"x\",\"command\":[\"true\"],\"timeout\":-1}");
    ok(ech_toolset_add_json(ts, def, NULL, &err) == ECH_ERR_FORMAT && strstr(err.msg, "timeout"),
       "tools: bad timeout");
    json_object_put(def);
    def = json_tokener_parse("{\"name\":\"x\",\"command\":[\"true\"],\"parameters\":[]}");
    ok(ech_toolset_add_json(ts, def, NULL, &err) == ECH_ERR_FORMAT && strstr(err.msg, "parameters"),
       "tools: bad parameters");
    json_object_put(def);
    ech_toolset_free(ts);

    /* run_shell asks, and a refusal is a result */
    ts = toolset(0);
    ech_toolset_add_builtins(ts, ECH_TOOL_RUN_SHELL, NULL, NULL, &err);
    call(ts, "run_shell", "{\"command\":\"echo hi; echo there >&2; exit 2\"}", 1, "hi\n[stderr]\nthere",
         "run_shell: output, stderr, failure");
    ech_toolset_free(ts);
}

static int refuse(void *user, const char *tool, const char *command)
{
    (void)tool;
    (void)command;
    (*(int *)user)++;
    return 0;
}

static void test_approval(void)
{
    int asked = 0;
    ech_toolset *ts = toolset(0);
    ech_toolset_add_builtins(ts, ECH_TOOL_RUN_SHELL, refuse, &asked, NULL);
    call(ts, "run_shell", "{\"command\":\"touch /tmp/t-agent-should-not-exist\"}", 1, "did not allow",
         "run_shell: refused by the approval callback");
    is_int(asked, 1, "run_shell: asked once");
    ok(access("/tmp/t-agent-should-not-exist", F_OK) != 0, "run_shell: nothing ran");
    ech_toolset_free(ts);
}

/* An MCP server in /bin/sh: reads our lines, answers from the script. */
static ech_status sh_server(const char *script, int timeout_ms, ech_mcp **m, ech_error *err)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    ech_mcp_opts o = {.name = "sh", .argv = argv, .stderr_fd = -1, .timeout_ms = timeout_ms, .stop_grace_ms = 300};
    return ech_mcp_connect(&o, m, err);
}

#define INIT_OLD "read -r l; echo '{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":\"2024-11-05\"," \
                 "\"capabilities\":{\"tools\":{}},\"serverInfo\":{\"name\":\"old-sh\"}}}'; read -r l; "

static void test_mcp_scripted(void)
{
    ech_mcp *m;
    ech_error err;
    /* an older protocol version is accepted; a ping from the server is answered; pages are followed */
    const char *s1 = INIT_OLD
        "read -r l; echo '{\"jsonrpc\":\"2.0\",\"id\":\"s1\",\"method\":\"ping\"}'; read -r pong; "
        "case $pong in *'\"id\":\"s1\"'*'\"result\":{}'*) ;; *) exit 9;; esac; "
        "echo '{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"hi\"}}'; "
        "echo '{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":[{\"name\":\"a\"},{\"nameless\":1}],\"nextCursor\":\"c2\"}}'; "
        "read -r l; case $l in *'\"cursor\":\"c2\"'*) ;; *) exit 8;; esac; "
        "echo '{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[{\"name\":\"b\",\"inputSchema\":{\"type\":\"object\"}}]}}'; "
        "read -r l; echo '{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}],\"isError\":true}}'; "
        "read -r l";
    if (ok(sh_server(s1, 5000, &m, &err) == ECH_OK, "mcp: handshake with a 2024-11-05 server")) {
        is_str(ech_mcp_protocol(m), "2024-11-05", "mcp: the server's version is used");
        is_str(ech_mcp_server_name(m), "old-sh", "mcp: server name");
        json_object *tools = NULL;
        ok(ech_mcp_list_tools(m, &tools, &err) == ECH_OK && json_object_array_length(tools) == 2,
           "mcp: two pages of tools, a nameless one skipped (%s)", tools ? "" : err.msg);
        json_object_put(tools);
        ech_mcp_result r;
        ok(ech_mcp_call_tool(m, "b", NULL, 5000, &r, &err) == ECH_OK && r.is_error && strcmp(r.text, "ok") == 0,
           "mcp: an isError result");
        ech_mcp_result_free(&r);
        ech_mcp_close(m);
    } else {
        printf("#   %s\n", err.msg);
    }
    /* a version we do not speak */
    const char *s2 = "read -r l; echo '{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":\"2099-01-01\"}}'; read -r l";
    ok(sh_server(s2, 5000, &m, &err) == ECH_ERR_UNSUPPORTED && strstr(err.msg, "2099-01-01"),
       "mcp: an unknown protocol version is refused (%s)", err.msg);
    /* the server dies mid-call: a clean error at once */
    const char *s3 = INIT_OLD "read -r l; echo 'dying' >&2; exit 5";
    long long t0 = ech_now_ms();
    if (ok(sh_server(s3, 5000, &m, &err) == ECH_OK, "mcp: server 3 up")) {
        ech_mcp_result r;
        ech_status st = ech_mcp_call_tool(m, "x", NULL, 20000, &r, &err);
        ok(st == ECH_ERR_IO && strstr(err.msg, "exited (exit status 5)") && ech_now_ms() - t0 < 5000,
           "mcp: death mid-call is an error, not a hang (%s)", err.msg);
        st = ech_mcp_call_tool(m, "x", NULL, 20000, &r, &err);
        ok(st == ECH_ERR_IO && strstr(err.msg, "exited"), "mcp: and stays one");
        ech_mcp_close(m);
    }
    /* silence: the call times out, and notifications/cancelled goes out */
    char log[] = "/tmp/t-agent-mcp-XXXXXX";
    int fd = mkstemp(log);
    close(fd);
    char s4[600];
    snprintf(s4, sizeof s4,
             INIT_OLD "read -r l; read -r c; echo \"$c\" >%s; "
             "echo '{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[]}}'; read -r l; "
             "echo '{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"second\"}]}}'; "
             "read -r l",
             log);
    if (ok(sh_server(s4, 5000, &m, &err) == ECH_OK, "mcp: server 4 up")) {
        ech_mcp_result r;
        t0 = ech_now_ms();
        ech_status st = ech_mcp_call_tool(m, "x", NULL, 300, &r, &err);
        ok(st == ECH_ERR_CANCELED && ech_now_ms() - t0 < 3000, "mcp: a call times out (%s)", err.msg);
        /* the late answer to call 2 is skipped; call 3 gets its own */
        st = ech_mcp_call_tool(m, "x", NULL, 5000, &r, &err);
        ok(st == ECH_OK && strcmp(r.text, "second") == 0, "mcp: a late answer is not taken for the next call");
        if (st == ECH_OK)
            ech_mcp_result_free(&r);
        ech_mcp_close(m);
        size_t n;
        ech_mapfile mf;
        int got = ech_mapfile_open(&mf, log, NULL) == ECH_OK;
        n = got ? mf.size : 0;
        char *text = got ? strndup((const char *)mf.data, n) : NULL;
        ok(text && strstr(text, "\"method\":\"notifications/cancelled\"") && strstr(text, "\"requestId\":2"),
           "mcp: notifications/cancelled names the request");
        free(text);
        if (got)
            ech_mapfile_close(&mf);
    }
    unlink(log);
    /* a server that never answers initialize, and one that is not there */
    t0 = ech_now_ms();
    ok(sh_server("sleep 30", 300, &m, &err) == ECH_ERR_CANCELED && ech_now_ms() - t0 < 5000,
       "mcp: initialize times out; the server is stopped");
    const char *argv[] = {"/nonexistent/mcp-server", NULL};
    ech_mcp_opts o = {.name = "gone", .argv = argv, .stderr_fd = -1};
    is_int(ech_mcp_connect(&o, &m, &err), ECH_ERR_NOT_FOUND, "mcp: a missing server program");
    /* a server that ignores stdin closing is stopped with signals */
    const char *s5 = INIT_OLD "trap '' TERM; while :; do sleep 1; done";
    if (ok(sh_server(s5, 5000, &m, &err) == ECH_OK, "mcp: server 5 up")) {
        t0 = ech_now_ms();
        ech_mcp_close(m);
        ok(ech_now_ms() - t0 < 5000, "mcp: close ends a stubborn server (SIGKILL after the grace period)");
    }
}

static int count_events(void *user, json_object *ev)
{
    (void)ev;
    (*(int *)user)++;
    return 0;
}

static void test_session(void)
{
    char path[] = "/tmp/t-agent-session-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    ech_client *c;
    ech_client_opts co = {.base_url = "http://127.0.0.1:9/v1", .max_retries = 0};
    ech_client_new(&co, &c, NULL);
    int events = 0;
    ech_agent_opts o = {.client = c, .session_path = path, .on_event = count_events, .user = &events};
    ech_agent *a;
    ech_error err;
    ech_agent_new(&o, &a, &err);
    ech_agent_add_message(a, "system", "be brief", &err);
    ech_agent_add_message(a, "user", "hi \xff", &err);
    ok(ech_agent_save(a, &err) == ECH_OK, "session: saved");
    ech_agent *b;
    ech_agent_opts o2 = {.client = c};
    ech_agent_new(&o2, &b, &err);
    ok(ech_agent_load(b, path, &err) == ECH_OK && json_object_array_length(ech_agent_messages(b)) == 2,
       "session: loaded back");
    ok(ech_agent_final(b) == NULL && !ech_agent_pending_calls(b), "session: no final answer, no open calls");
    char *final = NULL;
    ech_status st = ech_agent_run(a, NULL, &final, &err);
    ok(st == ECH_ERR_NET && final == NULL, "session: a model that cannot be reached is an error (%s)", err.msg);
    ech_agent_free(a);
    ech_agent_free(b);
    FILE *f = fopen(path, "w");
    fputs("{\"format\":\"something-else\",\"messages\":[]}", f);
    fclose(f);
    ech_agent_new(&o2, &b, &err);
    ok(ech_agent_load(b, path, &err) == ECH_ERR_FORMAT, "session: a foreign file is refused");
    f = fopen(path, "w");
    fputs("{\"format\":\"echostra-agent-session\",\"version\":1,\"messages\":[{\"content\":\"x\"}]}", f);
    fclose(f);
    ok(ech_agent_load(b, path, &err) == ECH_ERR_FORMAT && strstr(err.msg, "role"), "session: a message without a role");
    f = fopen(path, "w");
    fputs("{\"format\":\"echostra-agent-session\",\"version\":1,\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
          "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
          "\"function\":{\"name\":\"t\",\"arguments\":\"{}\"}},{\"id\":\"c2\",\"type\":\"function\",\"function\":"
          "{\"name\":\"t\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"r\"}]}",
          f);
    fclose(f);
    ok(ech_agent_load(b, path, &err) == ECH_OK && ech_agent_pending_calls(b), "session: an open tool call is seen");
    ech_agent_free(b);
    ech_client_free(c);
    unlink(path);
}

int main(void)
{
    test_rpc_parse();
    test_render();
    test_redact();
    test_proc();
    test_tools();
    test_approval();
    test_mcp_scripted();
    test_session();
    return done_testing();
}
