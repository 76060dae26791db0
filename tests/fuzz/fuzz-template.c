/* fuzz-template.c - libFuzzer target for the chat-template interpreter.
 *
 * The input is a template.  It must either be refused with a message or
 * compile; a compiled template is rendered on a conversation with tools and
 * a tool call, under small limits, and must either render or fail with a
 * message -- never crash, hang or exhaust memory.  Violations abort.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ech.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static json_object *messages, *tools, *vars;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!messages) {
        messages = json_tokener_parse(
            "[{\"role\":\"system\",\"content\":\"sys\"},{\"role\":\"user\",\"content\":\"hi \\u00e9\"},"
            "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
            "\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1,\"b\":[true,null,2.5]}}}]},"
            "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"ok\"},"
            "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]");
        tools = json_tokener_parse(
            "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"d\","
            "\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}}}]");
        vars = json_tokener_parse("{\"enable_thinking\": false}");
        check(messages && tools && vars);
    }
    ech_chat_template *t;
    ech_error err;
    if (ech_chat_template_compile((const char *)data, size, &t, &err) != ECH_OK) {
        check(err.msg[0] != '\0' && t == NULL);
        return 0;
    }
    ech_chat_input in = {
        .messages = messages, .tools = tools, .vars = vars, .add_generation_prompt = true,
        .bos_token = "<s>", .eos_token = "</s>", .now = 1735689600,
        .max_output = 1 << 20, .max_memory = 32 << 20, .max_steps = 200000,
    };
    char *out = NULL;
    size_t len = 0;
    ech_status st = ech_chat_render(t, &in, &out, &len, &err);
    if (st == ECH_OK)
        check(out != NULL && len <= in.max_output && out[len] == '\0');
    else
        check(out == NULL && err.msg[0] != '\0' && err.code == st);
    free(out);
    ech_chat_template_free(t);
    return 0;
}
