/* t-client.c - the SSE decoder and the stream accumulator (tool-call
 * reassembly), without a network.  Expected results are read off the WHATWG
 * HTML standard's event-stream examples and the OpenAI streaming format. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ech.h"
#include "net/chat_result.h"
#include "tap.h"

/* ---- the SSE decoder -------------------------------------------------------------- */

typedef struct seen {
    ech_buf log;            /* "event|data|id\n" per dispatched event */
    int stop_after;         /* return nonzero at this event (1-based); 0: never */
    int n;
} seen;

static int on_msg(void *user, const ech_sse_message *m)
{
    seen *s = user;
    ech_buf_append(&s->log, m->event, m->event_len);
    ech_buf_putc(&s->log, '|');
    ech_buf_append(&s->log, m->data, m->data_len);
    ech_buf_putc(&s->log, '|');
    ech_buf_append(&s->log, m->last_id, m->last_id_len);
    ech_buf_putc(&s->log, '\n');
    ok(m->data[m->data_len] == '\0' && m->event[m->event_len] == '\0', "event %d: data and type NUL-terminated",
       s->n + 1);
    return ++s->n == s->stop_after;
}

/* Decode `in` fed in pieces of `step` bytes (0: all at once); the log, or
 * NULL when the parser failed (status in *st). */
static char *decode(const char *in, size_t len, size_t step, size_t max_event, ech_status *st, int *pending)
{
    ech_sse_parser p;
    ech_sse_parser_init(&p, max_event);
    seen s = {0};
    *st = ECH_OK;
    ech_error err;
    for (size_t i = 0; *st == ECH_OK && i < len; i += step ? step : len) {
        size_t n = step && len - i > step ? step : len - i;
        *st = ech_sse_parser_feed(&p, in + i, n, on_msg, &s, &err);
    }
    int pend = ech_sse_parser_finish(&p);
    if (pending)
        *pending = pend;
    ech_sse_parser_free(&p);
    char *out = ech_buf_steal(&s.log);
    return out;
}

/* The same events whatever the split. */
static void check_sse(const char *what, const char *in, size_t len, const char *want)
{
    static const size_t steps[] = {0, 1, 2, 3, 7};
    for (size_t k = 0; k < sizeof steps / sizeof *steps; k++) {
        ech_status st;
        char *got = decode(in, len, steps[k], 0, &st, NULL);
        is_int(st, ECH_OK, "%s (pieces of %zu): status", what, steps[k]);
        is_str(got, want, "%s (pieces of %zu)", what, steps[k]);
        free(got);
    }
}
#define CHECK_SSE(what, lit, want) check_sse(what, lit, sizeof lit - 1, want)

static void test_sse(void)
{
    /* the standard's examples */
    CHECK_SSE("multi-line data", "data: YHOO\ndata: +2\ndata: 10\n\n", "message|YHOO\n+2\n10|\n");
    CHECK_SSE("comments, ids, one space stripped",
              ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
              "message|first event|1\nmessage|second event|\nmessage| third event|\n");
    CHECK_SSE("empty data lines; an unterminated event is dropped", "data\n\ndata\ndata\n\ndata:",
              "message||\nmessage|\n|\n");
    CHECK_SSE("event type", "event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\ndata: x\n\n",
              "add|73857293|\nremove|2153|\nmessage|x|\n");
    /* line ends */
    CHECK_SSE("CRLF", "data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n", "message|a\nb|\nmessage|c|\n");
    CHECK_SSE("CR alone", "data: a\rdata: b\r\rdata: c\r\r", "message|a\nb|\nmessage|c|\n");
    CHECK_SSE("mixed line ends", "data: a\r\n\ndata: b\n\r\ndata: c\r\r\n", "message|a|\nmessage|b|\nmessage|c|\n");
    /* what does not dispatch */
    CHECK_SSE("no data: nothing", "event: x\nid: 5\n\n: just a comment\n\nretry: 10\n\n", "");
    CHECK_SSE("event type does not leak into the next event", "event: x\n\ndata: y\n\n", "message|y|\n");
    CHECK_SSE("unknown fields ignored", "foo: bar\ndata: d\nerror: {}\n\n", "message|d|\n");
    CHECK_SSE("field names are exact", "Data: no\ndata : no\n data: no\ndata: yes\n\n", "message|yes|\n");
    CHECK_SSE("the last id carries over", "id: 7\ndata: a\n\ndata: b\n\n", "message|a|7\nmessage|b|7\n");
    CHECK_SSE("an id with NUL is ignored", "id: 3\n\nid: a\0b\ndata: x\n\n", "message|x|3\n");
    CHECK_SSE("a value may hold colons", "data: {\"a\":\"b:c\"}\n\n", "message|{\"a\":\"b:c\"}|\n");
    /* the byte order mark */
    CHECK_SSE("BOM dropped at the start", "\xEF\xBB\xBF" "data: a\n\n", "message|a|\n");
    CHECK_SSE("a second BOM is data", "\xEF\xBB\xBF" "data: \xEF\xBB\xBF" "b\n\n", "message|\xEF\xBB\xBF" "b|\n");
    CHECK_SSE("half a BOM is kept as line bytes", "\xEF\xBB" "data: a\n\ndata: b\n\n", "message|b|\n");
    CHECK_SSE("OpenAI [DONE]", "data: {\"x\":1}\n\ndata: [DONE]\n\n", "message|{\"x\":1}|\nmessage|[DONE]|\n");

    /* retry */
    ech_sse_parser p;
    ech_sse_parser_init(&p, 0);
    ech_error err;
    const char *retries = "retry: 1500\n\nretry: 15x\n\nretry:\n\n";
    ech_sse_parser_feed(&p, retries, strlen(retries), NULL, NULL, &err);
    is_int(p.retry_ms, 1500, "retry: digits only; others ignored");
    const char *huge = "retry: 99999999999999999999\n";
    ech_sse_parser_feed(&p, huge, strlen(huge), NULL, NULL, &err);
    ok(p.retry_ms > 0, "retry: a huge value saturates, never overflows");
    is_int(p.n_comments, 0, "no comments counted");
    ech_sse_parser_free(&p);

    /* limits, stop, pending */
    ech_status st;
    int pending = 0;
    char *got = decode("data: 0123456789\n\n", 18, 0, 8, &st, NULL);
    is_int(st, ECH_ERR_RANGE, "an event over max_event: ECH_ERR_RANGE");
    free(got);
    got = decode("data: 0123\ndata: 4567\ndata: 89ab\n\n", 34, 5, 16, &st, NULL);
    is_int(st, ECH_ERR_RANGE, "data lines adding up over max_event: ECH_ERR_RANGE");
    free(got);
    got = decode("data: a\n\ndata: b", 16, 0, 0, &st, &pending);
    is_int(pending, 1, "finish reports an incomplete last event");
    is_str(got, "message|a|\n", "the incomplete event is not dispatched");
    free(got);

    ech_sse_parser_init(&p, 0);
    seen s = {.stop_after = 1};
    st = ech_sse_parser_feed(&p, "data: a\n\ndata: b\n\n", 18, on_msg, &s, &err);
    is_int(st, ECH_ERR_CANCELED, "the callback stops the parser");
    is_int(s.n, 1, "no event after the stop");
    ech_buf_free(&s.log);
    ech_sse_parser_free(&p);
}

/* ---- the stream accumulator ------------------------------------------------------------ */

typedef struct events {
    ech_buf log;
    int stop_at;
    int n;
} events;

static int on_event(void *user, const ech_chat_event *ev)
{
    events *e = user;
    switch (ev->kind) {
    case ECH_CHAT_DELTA: ech_buf_printf(&e->log, "D%zu:%.*s\n", ev->choice, (int)ev->len, ev->text); break;
    case ECH_CHAT_REASONING: ech_buf_printf(&e->log, "R%zu:%.*s\n", ev->choice, (int)ev->len, ev->text); break;
    case ECH_CHAT_TOOL_CALL:
        ech_buf_printf(&e->log, "T%zu.%zu:%s,%s,%s\n", ev->choice, ev->tool_index, ev->tool_call->id,
                       ev->tool_call->name, ev->tool_call->arguments);
        break;
    case ECH_CHAT_FINISH: ech_buf_printf(&e->log, "F%zu:%s\n", ev->choice, ev->finish_reason); break;
    case ECH_CHAT_USAGE: ech_buf_printf(&e->log, "U:%ld/%ld\n", ev->usage->prompt_tokens, ev->usage->completion_tokens); break;
    }
    return ++e->n == e->stop_at;
}

/* Feed `chunks` (data payloads) through an accumulator; the final status. */
static ech_status run_acc(bool completion, const char *const *chunks, size_t n, events *ev, ech_chat_response *resp,
                          ech_client_error *ce, ech_error *err)
{
    ech_chat_acc *a = ech_chat_acc_new(completion, on_event, ev);
    ech_status s = ECH_OK;
    for (size_t i = 0; s == ECH_OK && i < n; i++)
        s = ech_chat_acc_event(a, "message", chunks[i], strlen(chunks[i]), ce, err);
    if (s == ECH_OK)
        s = ech_chat_acc_finish(a, resp, err);
    ech_chat_acc_free(a);
    return s;
}

#define C(delta, fin) "{\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" fin "}]}"

static void test_toolcalls(void)
{
    /* two calls whose fragments interleave, a repeated id and name, whitespace in arguments */
    const char *chunks[] = {
        C("{\"role\":\"assistant\",\"content\":null}", "null"),
        C("{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}", "null"),
        C("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\"\"}}]}", "null"),
        C("{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\",\"function\":{\"name\":\"ls\",\"arguments\":\"{}\"}}]}", "null"),
        C("{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"function\":{\"name\":\"get_weather\",\"arguments\":\": \\\"Paris\\\"}\"}}]}", "null"),
        C("{}", "\"tool_calls\""),
        "{\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4,\"total_tokens\":13}}",
        "[DONE]",
        "{\"ignored\":\"after done\"}",
    };
    events ev = {0};
    ech_chat_response r;
    ech_client_error ce = {0};
    ech_error err;
    ech_status s = run_acc(false, chunks, sizeof chunks / sizeof *chunks, &ev, &r, &ce, &err);
    is_int(s, ECH_OK, "tool-call stream accumulates");
    is_str(ev.log.data, "T0.0:call_1,get_weather,{\"city\": \"Paris\"}\nT0.1:call_2,ls,{}\nF0:tool_calls\nU:9/4\n",
           "events: each call once, complete, before FINISH; then usage");
    is_int(r.n_choices, 1, "one choice");
    is_int(r.choices[0].n_tool_calls, 2, "two calls");
    ok(r.choices[0].content == NULL, "content null stays NULL");
    is_str(r.choices[0].tool_calls[0].arguments, "{\"city\": \"Paris\"}", "arguments joined in order");
    is_str(r.choices[0].tool_calls[1].id, "call_2", "second call's id");
    is_str(r.choices[0].finish_reason, "tool_calls", "finish reason");
    ok(r.usage.present && r.usage.total_tokens == 13, "usage");
    is_str(r.id, "x", "id from the first chunk");
    json_object *m = ech_chat_choice_message_json(&r.choices[0]);
    is_str(ech_json_line(m),
           "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":"
           "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"Paris\\\"}\"}},{\"id\":\"call_2\",\"type\":"
           "\"function\",\"function\":{\"name\":\"ls\",\"arguments\":\"{}\"}}]}",
           "the message to append to a conversation");
    json_object_put(m);
    ech_chat_response_free(&r);
    ech_buf_free(&ev.log);

    /* no index (some servers): a new id starts a new call; no finish_reason: delivered at the end */
    const char *noidx[] = {
        C("{\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\":\"}}]}", "null"),
        C("{\"tool_calls\":[{\"function\":{\"arguments\":\"1}\"}}]}", "null"),
        C("{\"tool_calls\":[{\"id\":\"b\",\"function\":{\"name\":\"g\",\"arguments\":{\"y\":2}}}]}", "null"),
    };
    memset(&ev, 0, sizeof ev);
    s = run_acc(false, noidx, 3, &ev, &r, &ce, &err);
    is_int(s, ECH_OK, "calls without index");
    is_str(ev.log.data, "T0.0:a,f,{\"x\":1}\nT0.1:b,g,{\"y\":2}\n", "split by id; object arguments serialised");
    ech_chat_response_free(&r);
    ech_buf_free(&ev.log);

    /* text, reasoning, two choices */
    const char *text[] = {
        "{\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hmm\"}},{\"index\":1,\"delta\":{\"content\":\"B\"}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A1\"}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A2\"},\"finish_reason\":\"stop\"},{\"index\":1,\"delta\":{},\"finish_reason\":\"length\"}]}",
    };
    memset(&ev, 0, sizeof ev);
    s = run_acc(false, text, 3, &ev, &r, &ce, &err);
    is_int(s, ECH_OK, "text stream");
    is_str(ev.log.data, "R0:hmm\nD1:B\nD0:A1\nD0:A2\nF0:stop\nF1:length\n", "text events per choice");
    ok(r.n_choices == 2 && r.choices[0].content && !strcmp(r.choices[0].content, "A1A2") &&
       !strcmp(r.choices[0].reasoning, "hmm") && !strcmp(r.choices[1].content, "B"), "choices assembled");
    ech_chat_response_free(&r);
    ech_buf_free(&ev.log);

    /* completions */
    const char *comp[] = {"{\"choices\":[{\"index\":0,\"text\":\"Once\"}]}",
                          "{\"choices\":[{\"index\":0,\"text\":\" upon\",\"finish_reason\":\"length\"}]}"};
    ech_chat_acc *a = ech_chat_acc_new(true, on_event, &ev);
    memset(&ev, 0, sizeof ev);
    for (size_t i = 0; i < 2; i++)
        ech_chat_acc_event(a, "message", comp[i], strlen(comp[i]), &ce, &err);
    ech_completion_response cr;
    is_int(ech_chat_acc_finish_completion(a, &cr, &err), ECH_OK, "completion stream");
    ok(cr.n_choices == 1 && !strcmp(cr.choices[0].text, "Once upon") && !strcmp(cr.choices[0].finish_reason, "length"),
       "completion text joined");
    ech_completion_response_free(&cr);
    ech_chat_acc_free(a);
    ech_buf_free(&ev.log);
}

static void check_bad(const char *what, const char *chunk, ech_status want, const char *msg_part)
{
    const char *chunks[] = {chunk};
    events ev = {0};
    ech_chat_response r;
    ech_client_error ce = {0};
    ech_error err = {0};
    ech_status s = run_acc(false, chunks, 1, &ev, &r, &ce, &err);
    is_int(s, want, "%s: status", what);
    if (!ok(strstr(err.msg, msg_part) != NULL, "%s: message names it", what))
        printf("#   %s\n", err.msg);
    ech_buf_free(&ev.log);
    if (s == ECH_OK)
        ech_chat_response_free(&r);
}

static void test_bad_streams(void)
{
    check_bad("invalid JSON", "{\"choices\":", ECH_ERR_FORMAT, "stream chunk 1: invalid JSON");
    check_bad("trailing garbage", "{} x", ECH_ERR_FORMAT, "invalid JSON");
    check_bad("not an object", "[1]", ECH_ERR_FORMAT, "not a JSON object");
    check_bad("choices not an array", "{\"choices\":{}}", ECH_ERR_FORMAT, "not an array");
    check_bad("delta not an object", "{\"choices\":[{\"delta\":3}]}", ECH_ERR_FORMAT, "not an object");
    check_bad("huge choice index", "{\"choices\":[{\"index\":1000000,\"delta\":{}}]}", ECH_ERR_RANGE, "out of range");
    check_bad("negative tool index", "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":-1}]}}]}", ECH_ERR_RANGE,
              "out of range");
    check_bad("huge tool index", "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":99999999}]}}]}", ECH_ERR_RANGE,
              "out of range");
    check_bad("error object", "{\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"code\":503}}",
              ECH_ERR_HTTP, "server error: overloaded");
    check_bad("error string", "{\"error\":\"plain words\"}", ECH_ERR_HTTP, "plain words");

    /* error fields reach the typed error */
    const char *chunks[] = {"{\"error\":{\"message\":\"m\",\"type\":\"t\",\"code\":\"c\",\"param\":\"p\"}}"};
    events ev = {0};
    ech_client_error ce = {0};
    ech_error err;
    run_acc(false, chunks, 1, &ev, NULL, &ce, &err);
    ok(ce.kind == ECH_CLIENT_SERVER && !strcmp(ce.message, "m") && !strcmp(ce.type, "t") && !strcmp(ce.code, "c") &&
       !strcmp(ce.param, "p"), "in-stream error fields");

    /* a callback that stops */
    const char *two[] = {C("{\"content\":\"a\"}", "null"), C("{\"content\":\"b\"}", "null")};
    ev.stop_at = 1;
    is_int(run_acc(false, two, 2, &ev, NULL, &ce, &err), ECH_ERR_CANCELED, "callback stops the stream");
    is_str(ev.log.data, "D0:a\n", "nothing after the stop");
    ech_buf_free(&ev.log);
}

static void test_whole(void)
{
    ech_error err;
    const char *whole =
        "{\"id\":\"c\",\"model\":\"m\",\"created\":5,\"choices\":[{\"index\":1,\"message\":{\"content\":\"two\"},"
        "\"finish_reason\":\"stop\"},{\"index\":0,\"message\":{\"content\":null,\"tool_calls\":[{\"id\":\"k\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}],"
        "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":1}}}";
    json_object *j = ech_client_parse_json(whole, strlen(whole), &err);
    ok(j != NULL, "whole reply parses");
    ech_chat_response r;
    is_int(ech_chat_response_from_json(j, &r, &err), ECH_OK, "chat reply");
    ok(r.n_choices == 2 && r.choices[0].index == 0 && r.choices[0].n_tool_calls == 1 && r.choices[1].index == 1 &&
       !strcmp(r.choices[1].content, "two"), "choices ordered by index");
    ok(r.created == 5 && r.usage.cached_tokens == 1, "created, cached tokens");
    events ev = {0};
    is_int(ech_chat_response_replay(&r, on_event, &ev, &err), ECH_OK, "replay");
    is_str(ev.log.data, "T0.0:k,f,{}\nF0:tool_calls\nD1:two\nF1:stop\nU:1/2\n", "replayed as stream events");
    ech_buf_free(&ev.log);
    ech_chat_response_free(&r);
    json_object_put(j);
    j = ech_client_parse_json("{\"choices\":[{\"index\":0}]}", 24, &err);
    is_int(ech_chat_response_from_json(j, &r, &err), ECH_ERR_FORMAT, "a choice without message");
    json_object_put(j);
    ok(ech_client_parse_json("{\"a\":\"\0\"}", 9, &err) == NULL, "NUL in JSON text refused");
}

static void test_client_config(void)
{
    ech_client *c;
    ech_error err;
    setenv("ECH_BASE_URL", "http://example.invalid:1/v1///", 1);
    setenv("OPENAI_BASE_URL", "http://other.invalid/v1", 1);
    is_int(ech_client_new(NULL, &c, &err), ECH_OK, "client from the environment");
    is_str(ech_client_base_url(c), "http://example.invalid:1/v1", "ECH_BASE_URL first, trailing slashes dropped");
    ech_client_free(c);
    unsetenv("ECH_BASE_URL");
    ech_client_new(NULL, &c, &err);
    is_str(ech_client_base_url(c), "http://other.invalid/v1", "then OPENAI_BASE_URL");
    ech_client_free(c);
    unsetenv("OPENAI_BASE_URL");
    ech_client_new(NULL, &c, &err);
    is_str(ech_client_base_url(c), "http://127.0.0.1:8080/v1", "then the default");
    ech_client_free(c);
    ech_client_opts o = {.base_url = "file:///etc/passwd"};
    is_int(ech_client_new(&o, &c, &err), ECH_ERR_INVALID, "non-http base URL refused");
    o = (ech_client_opts){.api_key = "a\nb"};
    is_int(ech_client_new(&o, &c, &err), ECH_ERR_INVALID, "control characters in the key refused");
    o = (ech_client_opts){.base_url = "http://127.0.0.1:9/v1"};
    ech_client_new(&o, &c, &err);
    ech_chat_request req = {0};
    ech_chat_response r;
    is_int(ech_client_chat(c, &req, NULL, NULL, &r, &err), ECH_ERR_INVALID, "a chat without messages is refused");
    is_int(ech_client_last_error(c)->kind, ECH_CLIENT_LOCAL, "as a local error");
    ech_client_free(c);
}

int main(void)
{
    test_sse();
    test_toolcalls();
    test_bad_streams();
    test_whole();
    test_client_config();
    return done_testing();
}
