/* fuzz-mcp.c - libFuzzer target for MCP's JSON-RPC message handling
 * (lib/agent/mcp.c).
 *
 * The input is what a server might send: parsed whole and line by line (as
 * the stdio transport splits it).  Accepted messages must be classified
 * consistently (requests and notifications have a method, errors a message,
 * results a result member); a result's content must render to a string
 * without crashing.  Violations abort.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/mcp.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static void one(const char *p, size_t n)
{
    ech_rpc_msg m;
    ech_error err;
    ech_status st = ech_rpc_parse(p, n, &m, &err);
    if (st != ECH_OK) {
        check(m.root == NULL && err.msg[0]);
        return;
    }
    check(m.root != NULL);
    switch (m.kind) {
    case ECH_RPC_REQUEST:
        check(m.method && m.id);
        break;
    case ECH_RPC_NOTIFICATION:
        check(m.method && !m.id);
        break;
    case ECH_RPC_RESULT:
        check(m.id && json_object_object_get_ex(m.root, "result", NULL));
        if (json_object_is_type(m.result, json_type_object)) {
            char *text = ech_mcp_render_content(m.result);
            check(text != NULL);
            free(text);
        }
        break;
    case ECH_RPC_ERROR:
        check(m.error_message != NULL);
        break;
    default:
        check(0);
    }
    ech_rpc_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *t = (const char *)data;
    one(t, size);
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || t[i] == '\n') {
            if (i > start)
                one(t + start, i - start);
            start = i + 1;
        }
    }
    return 0;
}
