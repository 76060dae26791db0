/* t-serve.c - the pure parts of ech-serve: tool-call parsing, SSE/NDJSON
 * framing, request validation, message normalisation. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ech.h"
#include "serve/request.h"
#include "serve/sse.h"
#include "serve/toolcall.h"
#include "tap.h"

static void parse(ech_tool_family f, const char *text, ech_buf *content, ech_tool_calls *calls)
{
    ech_buf_clear(content);
    ech_tool_calls_free(calls);
    ech_tool_parse(f, text, strlen(text), content, calls);
}

static void test_toolcall(void)
{
    ech_buf c = {0};
    ech_tool_calls k = {0};
    is_int(ech_tool_family_detect("{{ '<tool_call>' }}", 19), ECH_TOOLS_HERMES, "detect hermes");
    const char *l3 = "<|start_header_id|>ipython{\"name\": ..., \"parameters\": ...}";
    is_int(ech_tool_family_detect(l3, strlen(l3)), ECH_TOOLS_LLAMA3, "detect llama3");
    is_int(ech_tool_family_detect("{{ messages }}", 14), ECH_TOOLS_NONE, "detect none");

    parse(ECH_TOOLS_HERMES, "Sure.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call>", &c, &k);
    is_int(k.n, 1, "hermes: one call");
    ok(k.n && !strcmp(k.v[0].name, "f") && !strcmp(k.v[0].arguments, "{\"x\":1}"), "hermes: name and arguments");
    is_str(c.data, "Sure.", "hermes: content around the call");
    parse(ECH_TOOLS_HERMES, "<tool_call>{\"name\":\"a\",\"arguments\":\"{}\"}</tool_call><tool_call>{\"name\":\"b\"}</tool_call>", &c, &k);
    ok(k.n == 2 && !strcmp(k.v[1].name, "b") && !strcmp(k.v[1].arguments, "{}"), "hermes: two calls, string and missing arguments");
    parse(ECH_TOOLS_HERMES, "<tool_call>{\"name\":\"a\",\"arguments\":{}}", &c, &k);
    is_int(k.n, 1, "hermes: an unterminated last call at end of text still parses");
    parse(ECH_TOOLS_HERMES, "<tool_call>{\"name\": \"a\", \"argu</tool_call>", &c, &k);
    ok(k.n == 0 && !strcmp(c.data, "<tool_call>{\"name\": \"a\", \"argu</tool_call>"), "hermes: malformed stays content");
    parse(ECH_TOOLS_HERMES, "<tool_call>[1,2]</tool_call>", &c, &k);
    is_int(k.n, 0, "hermes: a non-object is not a call");
    parse(ECH_TOOLS_HERMES, "just text", &c, &k);
    ok(k.n == 0 && !strcmp(c.data, "just text"), "hermes: plain text");

    parse(ECH_TOOLS_LLAMA3, " {\"name\": \"f\", \"parameters\": {\"a\": [1]}}", &c, &k);
    ok(k.n == 1 && !strcmp(k.v[0].arguments, "{\"a\":[1]}"), "llama3: parameters");
    parse(ECH_TOOLS_LLAMA3, "<|python_tag|>{\"name\": \"f\", \"parameters\": {}}; {\"name\": \"g\", \"parameters\": {}}", &c, &k);
    ok(k.n == 2 && !strcmp(k.v[1].name, "g"), "llama3: python_tag and two calls");
    parse(ECH_TOOLS_LLAMA3, "{\"name\": \"f\"} and then text", &c, &k);
    ok(k.n == 0 && !strcmp(c.data, "{\"name\": \"f\"} and then text"), "llama3: trailing text means no call");
    parse(ECH_TOOLS_LLAMA3, "Hello {\"name\": \"f\"}", &c, &k);
    is_int(k.n, 0, "llama3: text first means no call");

    /* streaming: content released early, calls held */
    ech_tool_stream ts;
    ech_buf out = {0};
    ech_tool_stream_init(&ts, ECH_TOOLS_HERMES);
    const char *pieces[] = {"Hi ", "there <tool", "_call>{\"name\":", "\"f\"}</tool_call>"};
    size_t after[4];
    for (size_t i = 0; i < 4; i++) {
        ech_tool_stream_feed(&ts, pieces[i], strlen(pieces[i]), &out);
        after[i] = out.len;
    }
    ok(after[0] == 3 && after[1] == 9 && after[3] == 9, "stream: text before a marker prefix is released, the rest held");
    ech_buf_clear(&c);
    ech_tool_calls_free(&k);
    ech_tool_stream_finish(&ts, &c, &k);
    ok(k.n == 1 && c.len == 0, "stream: the held call parses at the end");
    ech_tool_stream_free(&ts);
    ech_tool_stream_init(&ts, ECH_TOOLS_HERMES);
    ech_buf_clear(&out);
    ech_tool_stream_feed(&ts, "a <tool", 7, &out);
    ech_tool_stream_feed(&ts, "box>", 4, &out);
    ech_buf_clear(&c);
    ech_tool_stream_finish(&ts, &c, &k);
    ok(out.len + c.len == 11, "stream: a false marker prefix comes out as text");
    ech_tool_stream_free(&ts);
    ech_buf_free(&out);

    /* normalisation for templates */
    json_object *m = json_tokener_parse("[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]},"
                                        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\":1}\"}}]}]");
    json_object *n = ech_tool_normalize_messages(m);
    json_object *m0 = json_object_array_get_idx(n, 0), *m1 = json_object_array_get_idx(n, 1), *v;
    json_object_object_get_ex(m0, "content", &v);
    is_str(json_object_get_string(v), "ab", "normalize: content parts joined");
    json_object_object_get_ex(m1, "content", &v);
    is_str(json_object_get_string(v), "", "normalize: null content is \"\"");
    json_object *tc = json_object_array_get_idx(json_object_object_get(m1, "tool_calls"), 0);
    v = json_object_object_get(json_object_object_get(tc, "function"), "arguments");
    ok(json_object_is_type(v, json_type_object), "normalize: argument text becomes an object");
    json_object_put(n);
    json_object_put(m);
    m = json_tokener_parse("[{\"role\":\"developer\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"hi\"}]");
    n = ech_tool_normalize_messages(m);
    is_str(json_object_get_string(json_object_object_get(json_object_array_get_idx(n, 0), "role")), "system",
           "normalize: developer is system");
    is_str(json_object_get_string(json_object_object_get(json_object_array_get_idx(n, 1), "role")), "user",
           "normalize: other roles stay");
    json_object_put(n);
    json_object_put(m);
    /* a forced call: the opener plus the model's continuation parses as one call */
    ech_buf pre = {0};
    size_t off = 0, len = 0;
    ok(ech_tool_prefill(ECH_TOOLS_HERMES, "a\"b", &pre, &off, &len) == ECH_OK &&
       !strcmp(pre.data, "<tool_call>\n{\"name\": \"a\\\"b\", \"arguments\": ") &&
       len == 6 && !memcmp(pre.data + off, "\"a\\\"b\"", 6), "prefill: hermes opener, name escaped and located");
    ech_buf_append(&pre, "{\"x\": 1}}\n</tool_call>", 22);
    parse(ECH_TOOLS_HERMES, pre.data, &c, &k);
    ok(k.n == 1 && !strcmp(k.v[0].name, "a\"b") && !strcmp(k.v[0].arguments, "{\"x\":1}"), "prefill + continuation parse");
    ech_buf_clear(&pre);
    ech_tool_prefill(ECH_TOOLS_LLAMA3, NULL, &pre, NULL, NULL);
    ech_buf_append(&pre, "f\", \"parameters\": {}}", 21);
    parse(ECH_TOOLS_LLAMA3, pre.data, &c, &k);
    ok(k.n == 1 && !strcmp(k.v[0].name, "f"), "prefill: llama3 opener without a name");
    ok(ech_tool_prefill(ECH_TOOLS_NONE, NULL, &pre, NULL, NULL) == ECH_ERR_INVALID, "prefill: no family, no opener");
    ech_buf_free(&pre);
    char id[32];
    ech_tool_call_id(id, sizeof id);
    ok(strlen(id) == 29 && !strncmp(id, "call_", 5), "tool call ids look like call_XXXX");
    ech_tool_calls_free(&k);
    ech_buf_free(&c);
}

static void test_sse(void)
{
    ech_buf b = {0};
    json_object *o = json_tokener_parse("{\"a\":\"x\\ny/z\"}");
    ech_sse_event(&b, o);
    is_str(b.data, "data: {\"a\":\"x\\ny/z\"}\n\n", "sse: one line, newline escaped, no \\/");
    ech_buf_clear(&b);
    ech_sse_done(&b);
    is_str(b.data, "data: [DONE]\n\n", "sse: done");
    ech_buf_clear(&b);
    ech_ndjson_line(&b, o);
    is_str(b.data, "{\"a\":\"x\\ny/z\"}\n", "ndjson: one line");
    ech_buf_clear(&b);
    ech_sse_comment(&b, "ping\nevil");
    is_str(b.data, ": ping\n\n", "sse: a comment cannot inject lines");
    json_object_put(o);
    ech_buf_free(&b);
}

static ech_status gen(const char *body, ech_api_kind kind, ech_api_gen *g, ech_api_error *e, json_object **j)
{
    ech_sampler_params d = ech_sampler_default_params();
    ech_status st = ech_api_parse_body(body, strlen(body), j, e);
    if (st != ECH_OK)
        return st;
    return ech_api_parse_gen(*j, kind, &d, g, e);
}

static void expect_fail(const char *body, ech_api_kind kind, int status, const char *param, const char *what)
{
    ech_api_gen g;
    ech_api_error e = {0};
    json_object *j = NULL;
    ech_status st = gen(body, kind, &g, &e, &j);
    ok(st != ECH_OK && e.status == status && (!param || (e.param && !strcmp(e.param, param))) && e.msg[0],
       "rejects %s (%d %s: %s)", what, e.status, e.param ? e.param : "-", e.msg);
    json_object_put(j);
}

static void test_request(void)
{
    ech_api_gen g;
    ech_api_error e;
    json_object *j = NULL;
    ok(gen("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.5,\"top_k\":3,\"seed\":7,"
           "\"stop\":[\"a\",\"b\"],\"max_completion_tokens\":9,\"stream\":true,\"stream_options\":{\"include_usage\":true},"
           "\"logprobs\":true,\"top_logprobs\":4,\"whatever\":1,\"top_p\":null}", ECH_API_CHAT, &g, &e, &j) == ECH_OK,
       "a full chat request parses");
    ok(g.gp.sampling.temp == 0.5f && g.gp.sampling.top_k == 3 && g.gp.sampling.seed == 7 && g.gp.n_stop == 2 &&
       g.gp.n_predict == 9 && g.stream && g.include_usage && g.gp.top_logprobs == 4, "fields land in the params");
    json_object_put(j);
    ok(gen("{\"prompt\":\"x\"}", ECH_API_OLLAMA_GENERATE, &g, &e, &j) == ECH_OK && g.stream, "ollama streams by default");
    json_object_put(j);
    ok(gen("{\"prompt\":\"x\",\"stream\":false,\"options\":{\"num_predict\":5,\"temperature\":0}}", ECH_API_OLLAMA_GENERATE,
           &g, &e, &j) == ECH_OK && !g.stream && g.gp.n_predict == 5 && g.gp.sampling.temp == 0, "ollama options");
    json_object_put(j);
    ok(gen("{\"prompt\":[[1,2],[3]],\"max_tokens\":3.0}", ECH_API_COMPLETION, &g, &e, &j) == ECH_OK, "3.0 is an integer; token-id prompts");
    json_object_put(j);

    expect_fail("{", ECH_API_CHAT, 400, NULL, "truncated JSON");
    expect_fail("{\"a\":1,}", ECH_API_CHAT, 400, NULL, "trailing commas (strict JSON)");
    expect_fail("{\"a\":\"\xff\"}", ECH_API_CHAT, 400, NULL, "invalid UTF-8");
    expect_fail("{} {}", ECH_API_CHAT, 400, NULL, "two values");
    expect_fail("\"str\"", ECH_API_CHAT, 400, NULL, "a non-object");
    expect_fail("{}", ECH_API_CHAT, 400, "messages", "missing messages");
    expect_fail("{\"messages\":[{\"role\":1}]}", ECH_API_CHAT, 400, "messages", "a non-string role");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", ECH_API_CHAT, 400, "messages", "image parts");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"1\"}", ECH_API_CHAT, 400, "temperature", "a string temperature");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":-1}", ECH_API_CHAT, 400, "temperature", "a negative temperature");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1.5}", ECH_API_CHAT, 400, "max_tokens", "fractional max_tokens");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":-3}", ECH_API_CHAT, 400, "max_tokens", "negative max_tokens");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}", ECH_API_CHAT, 400, "stream", "a string stream");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":3}", ECH_API_CHAT, 400, "top_logprobs", "top_logprobs without logprobs");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":{}}", ECH_API_CHAT, 400, "tools", "tools as an object");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"required\"}", ECH_API_CHAT, 400, "tool_choice", "tool_choice without tools");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_object\"}}", ECH_API_CHAT, 400, "response_format", "json mode");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"a\",1]}", ECH_API_CHAT, 400, "stop", "a non-string stop");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"model\":3}", ECH_API_CHAT, 400, "model", "a numeric model");
    expect_fail("{\"prompt\":[]}", ECH_API_COMPLETION, 400, "prompt", "an empty prompt array");
    expect_fail("{\"prompt\":\"x\",\"echo\":true}", ECH_API_COMPLETION, 400, "echo", "echo");
    expect_fail("{\"prompt\":[\"a\",\"b\"],\"stream\":true}", ECH_API_COMPLETION, 400, "prompt", "streaming several prompts");
    expect_fail("{\"prompt\":\"x\",\"n\":3}", ECH_API_COMPLETION, 400, "n", "n=3");
    expect_fail("{\"prompt\":5}", ECH_API_OLLAMA_GENERATE, 400, "prompt", "a numeric Ollama prompt");
    expect_fail("{\"prompt\":\"x\",\"options\":[]}", ECH_API_OLLAMA_GENERATE, 400, "options", "Ollama options as an array");
}

int main(void)
{
    test_toolcall();
    test_sse();
    test_request();
    return done_testing();
}
