/* tools.c - the tool registry: built-ins, tool files, MCP servers. */
#include "config.h"

#include "agent/tools.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/mcp.h"
#include "agent/proc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mapfile.h"

enum { DEFAULT_TIMEOUT_MS = 60000, DEFAULT_CAP = 64 << 10, MAX_NAME = 64, MAX_TOOL_FILE = 1 << 20 };

typedef enum tool_kind { KIND_READ_FILE, KIND_LIST_DIRECTORY, KIND_RUN_SHELL, KIND_EXEC, KIND_MCP } tool_kind;

typedef struct tool {
    char *name;
    char *description;
    json_object *parameters;
    tool_kind kind;
    char **argv;          /* KIND_EXEC: NULL-terminated, owned */
    char *dir;            /* KIND_EXEC: the tool file's directory (ECH_TOOL_DIR) */
    int timeout_ms;
    size_t server;        /* KIND_MCP: index into servers */
    char *remote_name;    /* KIND_MCP: the name the server knows */
} tool;

struct ech_toolset {
    int timeout_ms;
    size_t cap;
    int mcp_stderr_fd;
    ech_secrets *secrets;
    tool *t;
    size_t n, cap_t;
    ech_mcp **servers;
    size_t n_servers;
    ech_tool_approve_fn approve;
    void *approve_user;
};

ech_status ech_toolset_new(const ech_toolset_opts *o, ech_toolset **out, ech_error *err)
{
    ech_toolset *ts = calloc(1, sizeof *ts);
    if (!ts)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    ts->timeout_ms = o && o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    ts->cap = o && o->output_cap ? o->output_cap : DEFAULT_CAP;
    ts->mcp_stderr_fd = o ? o->mcp_stderr_fd : -1;
    ts->secrets = o ? o->secrets : NULL;
    *out = ts;
    return ECH_OK;
}

static void tool_free(tool *t)
{
    free(t->name);
    free(t->description);
    json_object_put(t->parameters);
    for (size_t i = 0; t->argv && t->argv[i]; i++)
        free(t->argv[i]);
    free(t->argv);
    free(t->dir);
    free(t->remote_name);
}

void ech_toolset_free(ech_toolset *ts)
{
    if (!ts)
        return;
    for (size_t i = 0; i < ts->n; i++)
        tool_free(&ts->t[i]);
    free(ts->t);
    for (size_t i = 0; i < ts->n_servers; i++)
        ech_mcp_close(ts->servers[i]);
    free(ts->servers);
    free(ts);
}

size_t ech_toolset_count(const ech_toolset *ts) { return ts->n; }

static tool *find(const ech_toolset *ts, const char *name)
{
    for (size_t i = 0; i < ts->n; i++)
        if (strcmp(ts->t[i].name, name) == 0)
            return &ts->t[i];
    return NULL;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return 0;
    return 1;
}

/* A name the model's API accepts: other bytes become '_', at most 64. */
static char *sanitize(const char *prefix, const char *name)
{
    ech_buf b = {0};
    if (prefix) {
        ech_buf_puts(&b, prefix);
        ech_buf_puts(&b, "__");
    }
    ech_buf_puts(&b, name);
    char *s = ech_buf_steal(&b);
    for (char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-'))
            *p = '_';
    if (strlen(s) > MAX_NAME)
        s[MAX_NAME] = '\0';
    return s;
}

static json_object *empty_schema(void)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "type", json_object_new_string("object"));
    json_object_object_add(p, "properties", json_object_new_object());
    return p;
}

/* Append t (taken over) to the set. */
static ech_status push(ech_toolset *ts, tool *t, ech_error *err)
{
    if (ts->n == ts->cap_t) {
        size_t c = ts->cap_t ? ts->cap_t * 2 : 8;
        tool *v = realloc(ts->t, c * sizeof *v);
        if (!v) {
            tool_free(t);
            return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
        }
        ts->t = v;
        ts->cap_t = c;
    }
    if (!t->parameters)
        t->parameters = empty_schema();
    if (!t->description)
        t->description = strdup("");
    ts->t[ts->n++] = *t;
    return ECH_OK;
}

/* ---- built-ins --------------------------------------------------------------------- */

static json_object *schema_of(const char *json)
{
    return json_tokener_parse(json);
}

ech_status ech_toolset_add_builtins(ech_toolset *ts, unsigned which, ech_tool_approve_fn approve, void *user,
                                    ech_error *err)
{
    static const struct {
        unsigned bit;
        tool_kind kind;
        const char *name, *description, *schema;
    } b[] = {
        {ECH_TOOL_READ_FILE, KIND_READ_FILE, "read_file",
         "Read a text file. Returns its contents (long files in parts: pass offset to read further).",
         "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\",\"description\":\"the file\"},"
         "\"offset\":{\"type\":\"integer\",\"description\":\"byte to start at (default 0)\"}},"
         "\"required\":[\"path\"]}"},
        {ECH_TOOL_LIST_DIRECTORY, KIND_LIST_DIRECTORY, "list_directory",
         "List a directory: one entry per line, directories end in '/'.",
         "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\",\"description\":"
         "\"the directory (default: the current one)\"}}}"},
        {ECH_TOOL_RUN_SHELL, KIND_RUN_SHELL, "run_shell",
         "Run a command with /bin/sh -c. Returns its output, its error output and its exit status.",
         "{\"type\":\"object\",\"properties\":{\"command\":{\"type\":\"string\",\"description\":"
         "\"the shell command\"}},\"required\":[\"command\"]}"},
    };
    for (size_t i = 0; i < sizeof b / sizeof *b; i++) {
        if (!(which & b[i].bit))
            continue;
        if (find(ts, b[i].name))
            return ech_error_set(err, ECH_ERR_INVALID, "there already is a tool named %s", b[i].name);
        tool t = {.name = strdup(b[i].name), .description = strdup(b[i].description),
                  .parameters = schema_of(b[i].schema), .kind = b[i].kind, .timeout_ms = ts->timeout_ms};
        ech_status st = push(ts, &t, err);
        if (st != ECH_OK)
            return st;
    }
    if (which & ECH_TOOL_RUN_SHELL) {
        ts->approve = approve;
        ts->approve_user = user;
    }
    return ECH_OK;
}

/* ---- tool files --------------------------------------------------------------------------- */

static const char *str_of(json_object *o, const char *key)
{
    json_object *v;
    if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

static ech_status add_one(ech_toolset *ts, json_object *def, const char *base_dir, const char *where,
                          ech_error *err)
{
    if (!json_object_is_type(def, json_type_object))
        return ech_error_set(err, ECH_ERR_FORMAT, "%s: a tool must be a JSON object", where);
    json_object *fn = def, *v;
    /* also accept OpenAI's {"type": "function", "function": {...}} with the command beside it */
    if (json_object_object_get_ex(def, "function", &v) && json_object_is_type(v, json_type_object))
        fn = v;
    const char *name = str_of(fn, "name");
    if (!name || !valid_name(name))
        return ech_error_set(err, ECH_ERR_FORMAT, "%s: a tool needs a \"name\" of 1 to 64 letters, digits, '_' or '-'",
                             where);
    if (find(ts, name))
        return ech_error_set(err, ECH_ERR_INVALID, "%s: there already is a tool named %s", where, name);
    json_object *params = NULL;
    if (json_object_object_get_ex(fn, "parameters", &params) && !json_object_is_type(params, json_type_object))
        return ech_error_set(err, ECH_ERR_FORMAT, "%s: tool %s: \"parameters\" must be a JSON Schema object", where,
                             name);
    tool t = {.kind = KIND_EXEC, .timeout_ms = ts->timeout_ms};
    json_object *cmd;
    if (!json_object_object_get_ex(def, "command", &cmd))
        return ech_error_set(err, ECH_ERR_FORMAT, "%s: tool %s has no \"command\"", where, name);
    if (json_object_is_type(cmd, json_type_string) && json_object_get_string_len(cmd) > 0) {
        t.argv = calloc(4, sizeof *t.argv);
        if (t.argv) {
            t.argv[0] = strdup("/bin/sh");
            t.argv[1] = strdup("-c");
            t.argv[2] = strdup(json_object_get_string(cmd));
        }
    } else if (json_object_is_type(cmd, json_type_array) && json_object_array_length(cmd) > 0) {
        size_t n = json_object_array_length(cmd);
        t.argv = calloc(n + 1, sizeof *t.argv);
        for (size_t i = 0; t.argv && i < n; i++) {
            json_object *a = json_object_array_get_idx(cmd, i);
            if (!json_object_is_type(a, json_type_string) || (i == 0 && !json_object_get_string_len(a))) {
                tool_free(&t);
                return ech_error_set(err, ECH_ERR_FORMAT, "%s: tool %s: \"command\" must be strings", where, name);
            }
            const char *s = json_object_get_string(a);
            if (i == 0 && base_dir && s[0] != '/' && strchr(s, '/')) {
                size_t l = strlen(base_dir) + strlen(s) + 2;
                t.argv[0] = malloc(l);
                if (t.argv[0])
                    snprintf(t.argv[0], l, "%s/%s", base_dir, s);
            } else {
                t.argv[i] = strdup(s);
            }
        }
    } else {
        return ech_error_set(err, ECH_ERR_FORMAT,
                             "%s: tool %s: \"command\" must be an array of strings or a shell command string", where,
                             name);
    }
    if (json_object_object_get_ex(def, "timeout", &v)) {
        double s = json_object_get_double(v);
        if (!(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) || !(s > 0) ||
            s > 86400) {
            tool_free(&t);
            return ech_error_set(err, ECH_ERR_FORMAT, "%s: tool %s: \"timeout\" must be seconds, more than 0", where,
                                 name);
        }
        t.timeout_ms = (int)(s * 1000 + 0.5);
    }
    const char *desc = str_of(fn, "description");
    t.name = strdup(name);
    t.description = strdup(desc ? desc : "");
    t.parameters = params ? json_object_get(params) : NULL;
    t.dir = strdup(base_dir ? base_dir : ".");
    return push(ts, &t, err);
}

ech_status ech_toolset_add_json(ech_toolset *ts, json_object *def, const char *base_dir, ech_error *err)
{
    if (json_object_is_type(def, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(def); i++) {
            ech_status st = add_one(ts, json_object_array_get_idx(def, i), base_dir, "tool file", err);
            if (st != ECH_OK)
                return st;
        }
        return ECH_OK;
    }
    return add_one(ts, def, base_dir, "tool file", err);
}

/* Parse a whole JSON file (an object or array); NULL with err set. */
static json_object *read_json_file(const char *path, ech_error *err)
{
    ech_mapfile mf;
    if (ech_mapfile_open(&mf, path, err) != ECH_OK)
        return NULL;
    if (mf.size > MAX_TOOL_FILE) {
        ech_error_set(err, ECH_ERR_RANGE, "%s: over %d bytes; not a tool or MCP file", path, MAX_TOOL_FILE);
        ech_mapfile_close(&mf);
        return NULL;
    }
    json_tokener *tok = json_tokener_new();
    json_object *j = tok ? json_tokener_parse_ex(tok, (const char *)mf.data, (int)mf.size) : NULL;
    if (!tok || !j || json_tokener_get_error(tok) != json_tokener_success) {
        ech_error_set(err, ECH_ERR_FORMAT, "%s: not valid JSON: %s", path,
                      tok ? json_tokener_error_desc(json_tokener_get_error(tok)) : "out of memory");
        json_object_put(j);
        j = NULL;
    }
    json_tokener_free(tok);
    ech_mapfile_close(&mf);
    return j;
}

ech_status ech_toolset_add_file(ech_toolset *ts, const char *path, ech_error *err)
{
    json_object *j = read_json_file(path, err);
    if (!j)
        return err ? err->code : ECH_ERR_FORMAT;
    char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    ech_status st = ech_toolset_add_json(ts, j, slash ? dir : ".", err);
    if (st != ECH_OK && err && !strstr(err->msg, path)) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        ech_error_set(err, st, "%s: %s", path, strncmp(msg, "tool file: ", 11) == 0 ? msg + 11 : msg);
    }
    free(dir);
    json_object_put(j);
    return st;
}

/* ---- MCP -------------------------------------------------------------------------------------- */

static ech_status add_server(ech_toolset *ts, const char *name, ech_mcp *m, ech_error *err)
{
    json_object *list;
    ech_status st = ech_mcp_list_tools(m, &list, err);
    if (st != ECH_OK) {
        ech_mcp_close(m);
        return st;
    }
    ech_mcp **v = realloc(ts->servers, (ts->n_servers + 1) * sizeof *v);
    if (!v) {
        ech_mcp_close(m);
        json_object_put(list);
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    }
    ts->servers = v;
    size_t idx = ts->n_servers++;
    ts->servers[idx] = m;
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *d = json_object_array_get_idx(list, i), *schema = NULL;
        const char *rname = str_of(d, "name");
        char *local = sanitize(NULL, rname);
        if (find(ts, local)) {
            free(local);
            local = sanitize(name, rname);
        }
        if (find(ts, local)) {
            ech_log(ECH_LOG_WARN, "mcp %s: tool %s skipped: its name is taken", name, rname);
            free(local);
            continue;
        }
        json_object_object_get_ex(d, "inputSchema", &schema);
        const char *desc = str_of(d, "description");
        tool t = {.name = local, .description = strdup(desc ? desc : ""),
                  .parameters = json_object_is_type(schema, json_type_object) ? json_object_get(schema) : NULL,
                  .kind = KIND_MCP, .timeout_ms = ts->timeout_ms, .server = idx, .remote_name = strdup(rname)};
        st = push(ts, &t, err);
        if (st != ECH_OK)
            break;
    }
    json_object_put(list);
    return st;
}

ech_status ech_toolset_add_mcp_url(ech_toolset *ts, const char *name, const char *url, const char *const *headers,
                                   ech_error *err)
{
    ech_mcp_opts o = {.name = name, .url = url, .headers = headers, .stderr_fd = -1};
    ech_mcp *m;
    ech_status st = ech_mcp_connect(&o, &m, err);
    return st == ECH_OK ? add_server(ts, name ? name : url, m, err) : st;
}

/* {"K": "V", ...} as a NULL-terminated array of "K<sep>V" strings (malloc'ed). */
static char **pairs(json_object *o, const char *sep, const char *where, ech_error *err)
{
    size_t n = json_object_object_length(o), i = 0;
    char **v = calloc(n + 1, sizeof *v);
    if (!v) {
        ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    json_object_object_foreach(o, k, val) {
        if (!json_object_is_type(val, json_type_string)) {
            ech_error_set(err, ECH_ERR_FORMAT, "%s: \"%s\" must be a string", where, k);
            for (size_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return NULL;
        }
        size_t l = strlen(k) + strlen(sep) + (size_t)json_object_get_string_len(val) + 1;
        v[i] = malloc(l);
        if (v[i])
            snprintf(v[i], l, "%s%s%s", k, sep, json_object_get_string(val));
        i++;
    }
    return v;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static ech_status add_config_server(ech_toolset *ts, const char *path, const char *name, json_object *c,
                                    ech_error *err)
{
    char where[300];
    snprintf(where, sizeof where, "%s: server %s", path, name);
    if (!json_object_is_type(c, json_type_object))
        return ech_error_set(err, ECH_ERR_FORMAT, "%s: must be an object", where);
    json_object *v;
    if (json_object_object_get_ex(c, "disabled", &v) && json_object_get_boolean(v))
        return ECH_OK;
    const char *type = str_of(c, "type"), *url = str_of(c, "url");
    if (type && strcmp(type, "sse") == 0)
        return ech_error_set(err, ECH_ERR_UNSUPPORTED,
                             "%s: the old HTTP+SSE transport is not supported; use Streamable HTTP", where);
    if (url) {
        char **headers = NULL;
        if (json_object_object_get_ex(c, "headers", &v) && !(headers = pairs(v, ": ", where, err)))
            return err ? err->code : ECH_ERR_FORMAT;
        ech_status st = ech_toolset_add_mcp_url(ts, name, url, (const char *const *)headers, err);
        free_strv(headers);
        return st;
    }
    const char *command = str_of(c, "command");
    if (!command || !*command)
        return ech_error_set(err, ECH_ERR_FORMAT, "%s: needs a \"command\" (or a \"url\")", where);
    json_object *args = NULL;
    json_object_object_get_ex(c, "args", &args);
    size_t na = json_object_is_type(args, json_type_array) ? json_object_array_length(args) : 0;
    if (args && !json_object_is_type(args, json_type_array))
        return ech_error_set(err, ECH_ERR_FORMAT, "%s: \"args\" must be an array of strings", where);
    const char **argv = calloc(na + 2, sizeof *argv);
    if (!argv)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    argv[0] = command;
    for (size_t i = 0; i < na; i++) {
        json_object *a = json_object_array_get_idx(args, i);
        if (!json_object_is_type(a, json_type_string)) {
            free(argv);
            return ech_error_set(err, ECH_ERR_FORMAT, "%s: \"args\" must be an array of strings", where);
        }
        argv[i + 1] = json_object_get_string(a);
    }
    char **env = NULL;
    if (json_object_object_get_ex(c, "env", &v) && !(env = pairs(v, "=", where, err))) {
        free(argv);
        return err ? err->code : ECH_ERR_FORMAT;
    }
    for (size_t i = 0; env && env[i] && ts->secrets; i++) {
        const char *eq = strchr(env[i], '=');
        if (ech_secret_name(env[i], (size_t)(eq - env[i])))
            ech_secrets_add(ts->secrets, eq + 1);
    }
    ech_mcp_opts o = {.name = name, .argv = argv, .env = (const char *const *)env, .stderr_fd = ts->mcp_stderr_fd,
                      .secrets = ts->secrets};
    ech_mcp *m;
    ech_status st = ech_mcp_connect(&o, &m, err);
    free(argv);
    free_strv(env);
    if (st == ECH_ERR_NOT_FOUND && err) {   /* the command is missing: say which server wanted it */
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        ech_error_set(err, st, "%s: %s", where, msg);
    }
    return st == ECH_OK ? add_server(ts, name, m, err) : st;
}

ech_status ech_toolset_add_mcp_config(ech_toolset *ts, const char *path, ech_error *err)
{
    json_object *j = read_json_file(path, err), *servers;
    if (!j)
        return err ? err->code : ECH_ERR_FORMAT;
    ech_status st = ECH_OK;
    if (!json_object_object_get_ex(j, "mcpServers", &servers) || !json_object_is_type(servers, json_type_object)) {
        st = ech_error_set(err, ECH_ERR_FORMAT, "%s: expected {\"mcpServers\": {NAME: {\"command\": ...}}}", path);
    } else {
        json_object_object_foreach(servers, name, c) {
            st = add_config_server(ts, path, name, c, err);
            if (st != ECH_OK)
                break;
        }
    }
    json_object_put(j);
    return st;
}

json_object *ech_toolset_definitions(const ech_toolset *ts)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < ts->n; i++) {
        json_object *f = json_object_new_object(), *d = json_object_new_object();
        json_object_object_add(f, "name", json_object_new_string(ts->t[i].name));
        json_object_object_add(f, "description", json_object_new_string(ts->t[i].description));
        json_object_object_add(f, "parameters", json_object_get(ts->t[i].parameters));
        json_object_object_add(d, "type", json_object_new_string("function"));
        json_object_object_add(d, "function", f);
        json_object_array_add(a, d);
    }
    return a;
}

/* ---- calls --------------------------------------------------------------------------------- */

/* Keep at most `cap` bytes of b (not splitting a UTF-8 sequence) and say
 * how much was cut, counting `more` bytes already dropped elsewhere. */
static void cap_text(ech_buf *b, size_t cap, size_t more)
{
    if (b->len <= cap && !more)
        return;
    size_t keep = b->len <= cap ? b->len : cap;
    while (keep > 0 && keep < b->len && ((unsigned char)b->data[keep] & 0xC0) == 0x80)
        keep--;
    size_t cut = b->len - keep + more;
    b->len = keep;
    b->data[keep] = '\0';
    ech_buf_printf(b, "\n[output truncated: %zu more bytes not shown]", cut);
}

static void say_error(ech_tool_result *r, ech_buf *b, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say_error(ech_tool_result *r, ech_buf *b, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ech_buf_clear(b);
    ech_buf_printf(b, "error: %s", msg);
    r->is_error = 1;
}

static int64_t int_arg(json_object *args, const char *key, int64_t def)
{
    json_object *v;
    if (json_object_object_get_ex(args, key, &v) && json_object_is_type(v, json_type_int))
        return json_object_get_int64(v);
    return def;
}

static void run_read_file(ech_toolset *ts, json_object *args, ech_tool_result *r, ech_buf *b)
{
    const char *path = str_of(args, "path");
    int64_t offset = int_arg(args, "offset", 0);
    if (!path || !*path)
        { say_error(r, b, "read_file needs \"path\", a string"); return; }
    if (offset < 0)
        { say_error(r, b, "\"offset\" must not be negative"); return; }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat sb;
    if (fd < 0)
        { say_error(r, b, "cannot open %s: %s", path, strerror(errno)); return; }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        { say_error(r, b, "%s is not a regular file%s", path, S_ISDIR(sb.st_mode) ? " (a directory: use list_directory)" : ""); return; }
    }
    size_t want = ts->cap;
    if (ech_buf_reserve(b, want) != ECH_OK) {
        close(fd);
        { say_error(r, b, "out of memory"); return; }
    }
    ssize_t got = offset < sb.st_size ? pread(fd, b->data, want, (off_t)offset) : 0;
    int e = errno;
    close(fd);
    if (got < 0)
        { say_error(r, b, "cannot read %s: %s", path, strerror(e)); return; }
    b->len = (size_t)got;
    b->data[b->len] = '\0';
    if (memchr(b->data, '\0', b->len)) {
        ech_buf_clear(b);
        ech_buf_printf(b, "%s is a binary file of %lld bytes; not shown", path, (long long)sb.st_size);
        return;
    }
    long long end = offset + got;
    if (end < sb.st_size || offset > 0)
        ech_buf_printf(b, "\n[bytes %lld to %lld of %lld%s]", (long long)offset, end, (long long)sb.st_size,
                       end < sb.st_size ? "; pass offset to read on" : "");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void run_list_directory(ech_toolset *ts, json_object *args, ech_tool_result *r, ech_buf *b)
{
    const char *path = str_of(args, "path");
    if (!path || !*path)
        path = ".";
    DIR *d = opendir(path);
    if (!d)
        { say_error(r, b, "cannot list %s: %s", path, strerror(errno)); return; }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **v = realloc(names, cap * sizeof *v);
            if (!v)
                break;
            names = v;
        }
        int is_dir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
            struct stat sb;
            is_dir = fstatat(dirfd(d), e->d_name, &sb, 0) == 0 && S_ISDIR(sb.st_mode);
        }
        size_t l = strlen(e->d_name) + 2;
        names[n] = malloc(l);
        if (names[n])
            snprintf(names[n++], l, "%s%s", e->d_name, is_dir ? "/" : "");
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        if (b->len + strlen(names[i]) + 1 <= ts->cap) {
            ech_buf_printf(b, "%s\n", names[i]);
            shown++;
        }
        free(names[i]);
    }
    if (shown < n)
        ech_buf_printf(b, "[%zu more entries not shown]\n", n - shown);
    free(names);
    if (!n)
        ech_buf_printf(b, "(%s is empty)", path);
}

/* Run argv and render what it did. */
static void run_process(ech_toolset *ts, const tool *t, char *const *argv, const char *input, size_t input_len,
                        ech_tool_result *r, ech_buf *b)
{
    char envbuf[4200];
    const char *env[2] = {NULL, NULL};
    if (t->dir) {
        snprintf(envbuf, sizeof envbuf, "ECH_TOOL_DIR=%s", t->dir);
        env[0] = envbuf;
    }
    ech_proc_result pr;
    ech_error err;
    if (ech_proc_run((const char *const *)argv, env, input, input_len, t->timeout_ms, ts->cap, &pr, &err) != ECH_OK)
        { say_error(r, b, "%s", err.msg); return; }
    char st[80];
    int failed = pr.timed_out || !WIFEXITED(pr.status) || WEXITSTATUS(pr.status) != 0;
    if (pr.timed_out)
        ech_buf_printf(b, "error: the tool did not finish within %.3g s and was stopped\n", t->timeout_ms / 1e3);
    else if (failed)
        ech_buf_printf(b, "error: the tool failed (%s)\n", ech_proc_describe_status(pr.status, st, sizeof st));
    ech_buf_append(b, pr.out.data ? pr.out.data : "", pr.out.len);
    size_t dropped = pr.out_dropped;
    if ((failed || t->kind == KIND_RUN_SHELL) && pr.err.len) {
        ech_buf_printf(b, "%s[stderr]\n", b->len && b->data[b->len - 1] != '\n' ? "\n" : "");
        ech_buf_append(b, pr.err.data, pr.err.len);
        dropped += pr.err_dropped;
    }
    if (!failed && !b->len)
        ech_buf_puts(b, "(no output)");   /* an empty result reads to models like a missing one */
    cap_text(b, ts->cap, dropped);
    r->is_error = failed;
    ech_proc_result_free(&pr);
}

static void run_mcp(ech_toolset *ts, const tool *t, json_object *args, ech_tool_result *r, ech_buf *b)
{
    ech_mcp_result mr;
    ech_error err;
    if (ech_mcp_call_tool(ts->servers[t->server], t->remote_name, args, t->timeout_ms, &mr, &err) != ECH_OK)
        { say_error(r, b, "%s", err.msg); return; }
    if (mr.is_error)
        ech_buf_puts(b, "error: ");
    ech_buf_puts(b, mr.text ? mr.text : "");
    r->is_error = mr.is_error;
    ech_mcp_result_free(&mr);
    cap_text(b, ts->cap, 0);
}

/* The model's arguments as an object, or NULL with the reason in b. */
static json_object *parse_args(const tool *t, const char *arguments, ech_tool_result *r, ech_buf *b)
{
    size_t n = arguments ? strlen(arguments) : 0;
    size_t i = 0;
    while (i < n && (arguments[i] == ' ' || arguments[i] == '\n' || arguments[i] == '\t' || arguments[i] == '\r'))
        i++;
    if (i == n)
        return json_object_new_object();
    json_tokener *tok = json_tokener_new();
    json_object *j = tok && n <= INT32_MAX ? json_tokener_parse_ex(tok, arguments, (int)n) : NULL;
    int bad = !tok || !j || json_tokener_get_error(tok) != json_tokener_success;
    if (!bad) {
        size_t end = json_tokener_get_parse_end(tok);
        while (end < n && (arguments[end] == ' ' || arguments[end] == '\n' || arguments[end] == '\t' ||
                           arguments[end] == '\r'))
            end++;
        bad = end < n;
    }
    const char *why = tok ? json_tokener_error_desc(json_tokener_get_error(tok)) : "out of memory";
    if (tok && json_tokener_get_error(tok) == json_tokener_continue)
        why = "unexpected end of input";
    if (bad || !json_object_is_type(j, json_type_object)) {
        say_error(r, b, "the arguments for %s are not a JSON object (%s); call it again with a JSON object "
                        "that matches its parameters",
                  t->name, bad ? why : "another JSON value");
        json_object_put(j);
        j = NULL;
    }
    json_tokener_free(tok);
    if (!j)
        return NULL;
    json_object *req;
    if (json_object_object_get_ex(t->parameters, "required", &req) && json_object_is_type(req, json_type_array)) {
        for (size_t k = 0; k < json_object_array_length(req); k++) {
            json_object *p = json_object_array_get_idx(req, k);
            if (json_object_is_type(p, json_type_string) && !json_object_object_get_ex(j, json_object_get_string(p), NULL)) {
                say_error(r, b, "%s needs the argument \"%s\"", t->name, json_object_get_string(p));
                json_object_put(j);
                return NULL;
            }
        }
    }
    return j;
}

ech_status ech_toolset_call(ech_toolset *ts, const char *name, const char *arguments, ech_tool_result *r)
{
    memset(r, 0, sizeof *r);
    long long start = ech_now_ms();
    ech_buf b = {0};
    tool *t = name ? find(ts, name) : NULL;
    json_object *args = NULL;
    if (!t) {
        say_error(r, &b, "there is no tool named \"%s\"; the tools are:", name ? name : "");
        for (size_t i = 0; i < ts->n; i++)
            ech_buf_printf(&b, "%s %s", i ? "," : "", ts->t[i].name);
    } else if ((args = parse_args(t, arguments, r, &b)) != NULL) {
        switch (t->kind) {
        case KIND_READ_FILE:   /* these two keep to the cap themselves and say so */
            run_read_file(ts, args, r, &b);
            break;
        case KIND_LIST_DIRECTORY:
            run_list_directory(ts, args, r, &b);
            break;
        case KIND_RUN_SHELL: {
            const char *cmd = str_of(args, "command");
            if (!cmd || !*cmd) {
                say_error(r, &b, "run_shell needs \"command\", a string");
            } else if (ts->approve && !ts->approve(ts->approve_user, t->name, cmd)) {
                say_error(r, &b, "the user did not allow this command to run");
            } else {
                char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)cmd, NULL};
                run_process(ts, t, argv, NULL, 0, r, &b);
            }
            break;
        }
        case KIND_EXEC: {
            const char *line = ech_json_line(args);
            size_t n = strlen(line);
            char *input = malloc(n + 2);
            if (input) {
                memcpy(input, line, n);
                input[n] = '\n';
                input[n + 1] = '\0';
                run_process(ts, t, t->argv, input, n + 1, r, &b);
                free(input);
            } else {
                say_error(r, &b, "out of memory");
            }
            break;
        }
        case KIND_MCP:
            run_mcp(ts, t, args, r, &b);
            break;
        }
    }
    json_object_put(args);
    if (!b.data && ech_buf_puts(&b, "") != ECH_OK)
        return ECH_ERR_NOMEM;
    if (ts->secrets && ts->secrets->n) {
        r->content = ech_secrets_redact(ts->secrets, b.data, b.len, NULL);
        ech_buf_free(&b);
        if (!r->content)
            return ECH_ERR_NOMEM;
    } else {
        r->content = ech_buf_steal(&b);
    }
    r->seconds = (double)(ech_now_ms() - start) / 1e3;
    return ECH_OK;
}

void ech_tool_result_free(ech_tool_result *r)
{
    free(r->content);
    r->content = NULL;
}
