/* mcp.h - a Model Context Protocol client: tools from MCP servers.
 *
 * Two transports: stdio (the server is a child process; newline-delimited
 * JSON-RPC 2.0 on its stdin and stdout; its stderr read line by line, to a
 * log descriptor or the log callback, never to our stdout) and Streamable HTTP (each message POSTed to
 * one URL, answered with JSON or a Server-Sent Events stream (read with
 * net/sse_parse.h); the
 * Mcp-Session-Id the server hands out is sent back on every request).
 *
 * ech_mcp_connect runs the handshake: `initialize` offering protocol
 * 2025-11-25, accepting the server's answer if it is 2025-11-25, 2025-06-18,
 * 2025-03-26 or 2024-11-05, then `notifications/initialized`.  A request that
 * runs past its timeout is abandoned with `notifications/cancelled` (a late
 * answer is ignored); a server that dies mid-request gives ECH_ERR_IO at
 * once.  Requests the server sends us are answered (`ping`; anything else
 * "method not found"), its notifications logged.
 *
 * One ech_mcp is used by one thread at a time.
 */
#ifndef ECH_AGENT_MCP_H
#define ECH_AGENT_MCP_H

#include <stddef.h>

#include <json-c/json.h>

#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The protocol versions we speak, newest (the one we offer) first. */
extern const char *const ech_mcp_versions[];

typedef struct ech_mcp_opts {
    const char *name;               /* names the server in messages and logs */
    /* stdio: */
    const char *const *argv;        /* command and arguments, NULL-terminated */
    const char *const *env;         /* "NAME=VALUE" added to our environment; may be NULL */
    int stderr_fd;                  /* the server's stderr lines are written here (secrets
                                     * replaced); -1: to ech_log at INFO */
    const struct ech_secrets *secrets; /* for stderr_fd; may be NULL (borrowed) */
    /* or Streamable HTTP: */
    const char *url;                /* http:// or https:// (then argv is ignored) */
    const char *const *headers;     /* extra "Name: value" request headers; may be NULL */
    int timeout_ms;                 /* for the handshake and tools/list (0: 30 s) */
    int stop_grace_ms;              /* ech_mcp_close: wait this long before each signal (0: 2 s) */
} ech_mcp_opts;

typedef struct ech_mcp ech_mcp;

/* Start or reach the server and complete the handshake.  *out is the
 * caller's, released with ech_mcp_close. */
ech_status ech_mcp_connect(const ech_mcp_opts *o, ech_mcp **out, ech_error *err);

/* The negotiated protocol version, and the server's own name (may be ""). */
const char *ech_mcp_protocol(const ech_mcp *m);
const char *ech_mcp_server_name(const ech_mcp *m);

/* Every tool the server has, following nextCursor through all pages (at most
 * 1000 pages): a new JSON array of the server's tool objects (name,
 * description, inputSchema, ...), each checked to have a string name. */
ech_status ech_mcp_list_tools(ech_mcp *m, json_object **tools, ech_error *err);

typedef struct ech_mcp_result {
    char *text;     /* the content rendered as text (malloc'ed) */
    int is_error;   /* the server set isError: the tool failed */
} ech_mcp_result;

/* Call tool `name` with `arguments` (an object, borrowed; NULL: {}).
 * `timeout_ms` 0 means no limit.  A tool that failed is ECH_OK with
 * res->is_error set; a protocol-level failure (unknown tool, timeout, the
 * server gone) is an error status.  Free res with ech_mcp_result_free. */
ech_status ech_mcp_call_tool(ech_mcp *m, const char *name, json_object *arguments, int timeout_ms,
                             ech_mcp_result *res, ech_error *err);
void ech_mcp_result_free(ech_mcp_result *res);

/* End the session: stdio closes the server's stdin, waits, then SIGTERM and
 * SIGKILL after the grace period; HTTP sends DELETE with the session id. */
void ech_mcp_close(ech_mcp *m);

/* ---- message handling, exposed for tests and the fuzzer ---------------- */

typedef enum ech_rpc_kind {
    ECH_RPC_REQUEST = 1,       /* method and id */
    ECH_RPC_NOTIFICATION,      /* method, no id */
    ECH_RPC_RESULT,            /* id and result */
    ECH_RPC_ERROR,             /* id (may be null) and error */
} ech_rpc_kind;

typedef struct ech_rpc_msg {
    ech_rpc_kind kind;
    json_object *root;         /* owns everything below */
    json_object *id;           /* borrowed; NULL for notifications */
    const char *method;        /* requests and notifications */
    json_object *params;       /* may be NULL */
    json_object *result;       /* ECH_RPC_RESULT */
    long long error_code;      /* ECH_RPC_ERROR */
    const char *error_message; /* ECH_RPC_ERROR; never NULL there */
} ech_rpc_msg;

/* Parse and classify one JSON-RPC 2.0 message (not a batch).  Anything else
 * (not JSON, not an object, no "jsonrpc":"2.0", an id that is not a string,
 * integer or null, a method that is not a string, both or neither of result
 * and error) is ECH_ERR_FORMAT.  On success free m with ech_rpc_msg_free. */
ech_status ech_rpc_parse(const char *text, size_t n, ech_rpc_msg *m, ech_error *err);
void ech_rpc_msg_free(ech_rpc_msg *m);

/* A tools/call result's content as text: text items as they are, other
 * items described ("[image: image/png, 1234 bytes]"), items joined by
 * newlines; structuredContent when there is no content.  malloc'ed. */
char *ech_mcp_render_content(json_object *result);

#ifdef __cplusplus
}
#endif
#endif
