/* tools.h - the tools an agent may call: built-ins, executables, MCP.
 *
 * A toolset holds tools from three sources under one name space:
 *   built-ins   read_file, list_directory, run_shell (the last only when the
 *               program allows it, or asks a person through a callback);
 *   executables described by tool files: {"name", "description",
 *               "parameters" (JSON Schema), "command" (an argv array, or a
 *               string for /bin/sh -c), optional "timeout" (seconds)}; the
 *               arguments go to the command's stdin as JSON, its stdout is
 *               the result, a non-zero exit makes it an error result;
 *   MCP servers from a {"mcpServers": {NAME: {command, args, env} or
 *               {url, headers}}} file or a URL; a tool whose name is taken
 *               is renamed NAME__TOOL.
 * Names sent to the model keep to [A-Za-z0-9_-] (others become '_').
 *
 * ech_toolset_call never fails for what a tool or the model did wrong:
 * unknown tools, arguments that are not a JSON object or lack a required
 * property, failures, timeouts and crashes all come back as an error result
 * whose text tells the model what happened.  Every call has a timeout and
 * its result is capped (the cut is said in the text).  Results have every
 * secret (see redact.h) replaced.
 */
#ifndef ECH_AGENT_TOOLS_H
#define ECH_AGENT_TOOLS_H

#include <stddef.h>

#include <json-c/json.h>

#include "agent/redact.h"
#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Asked before run_shell runs `command`; nonzero allows it. */
typedef int (*ech_tool_approve_fn)(void *user, const char *tool, const char *command);

typedef struct ech_toolset_opts {
    int timeout_ms;             /* per call, unless a tool file says otherwise (0: 60 s) */
    size_t output_cap;          /* bytes of a result kept (0: 64 KiB) */
    int mcp_stderr_fd;          /* MCP servers' stderr (-1: ech_log at INFO) */
    ech_secrets *secrets;       /* replaced in results, and secret values of MCP servers'
                                 * configured env are added to it; may be NULL (borrowed) */
} ech_toolset_opts;

typedef struct ech_toolset ech_toolset;

ech_status ech_toolset_new(const ech_toolset_opts *o, ech_toolset **out, ech_error *err);
/* Close every MCP server and free the set. */
void ech_toolset_free(ech_toolset *ts);

enum {
    ECH_TOOL_READ_FILE = 1,
    ECH_TOOL_LIST_DIRECTORY = 2,
    ECH_TOOL_RUN_SHELL = 4,
};
/* Add the built-ins in `which`.  run_shell asks `approve` before each
 * command when it is not NULL, and runs without asking when it is. */
ech_status ech_toolset_add_builtins(ech_toolset *ts, unsigned which, ech_tool_approve_fn approve, void *user,
                                    ech_error *err);

/* Add the tool (an object) or tools (an array) of a tool file.  A relative
 * command path with a '/' is taken relative to the file's directory. */
ech_status ech_toolset_add_file(ech_toolset *ts, const char *path, ech_error *err);
/* The same for a parsed definition (borrowed); `base_dir` may be NULL. */
ech_status ech_toolset_add_json(ech_toolset *ts, json_object *def, const char *base_dir, ech_error *err);

/* Start every server of an MCP configuration file and add their tools. */
ech_status ech_toolset_add_mcp_config(ech_toolset *ts, const char *path, ech_error *err);
/* Reach one Streamable HTTP MCP server and add its tools. */
ech_status ech_toolset_add_mcp_url(ech_toolset *ts, const char *name, const char *url, const char *const *headers,
                                   ech_error *err);

size_t ech_toolset_count(const ech_toolset *ts);
/* The tools in OpenAI's format: [{"type":"function","function":{name,
 * description, parameters}}, ...]; a new reference. */
json_object *ech_toolset_definitions(const ech_toolset *ts);

typedef struct ech_tool_result {
    char *content;      /* the text for the model (malloc'ed) */
    int is_error;
    double seconds;
} ech_tool_result;

/* Run tool `name` with `arguments` (the model's JSON text; NULL or "" means
 * {}).  ECH_OK unless memory ran out. */
ech_status ech_toolset_call(ech_toolset *ts, const char *name, const char *arguments, ech_tool_result *r);
void ech_tool_result_free(ech_tool_result *r);

#ifdef __cplusplus
}
#endif
#endif
