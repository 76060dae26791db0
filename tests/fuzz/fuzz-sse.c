/* fuzz-sse.c - libFuzzer target for the event-stream decoder
 * (lib/net/sse_parse.c) and the client's stream accumulator
 * (lib/net/chat_result.c): the input is fed twice, whole and in pieces whose
 * sizes the first byte picks, through the decoder into the accumulator (as
 * chat deltas when the first byte is even, as completions when odd).  Both
 * feeds must dispatch the same events; every event's data is NUL-terminated;
 * a finished response must be consistent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "net/chat_result.h"
#include "net/sse_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct run {
    ech_buf log;
    ech_chat_acc *acc;
    ech_status acc_status;
} run;

static int on_chat(void *user, const ech_chat_event *ev)
{
    (void)user;
    if ((ev->kind == ECH_CHAT_DELTA || ev->kind == ECH_CHAT_REASONING) && ev->len && !ev->text)
        abort();
    if (ev->kind == ECH_CHAT_TOOL_CALL && (!ev->tool_call->id || !ev->tool_call->name || !ev->tool_call->arguments))
        abort();
    return 0;
}

static int on_msg(void *user, const ech_sse_message *m)
{
    run *r = user;
    if (m->data[m->data_len] != '\0' || m->event[m->event_len] != '\0' || m->last_id[m->last_id_len] != '\0')
        abort();
    ech_buf_append(&r->log, m->event, m->event_len);
    ech_buf_putc(&r->log, 0);
    ech_buf_append(&r->log, m->data, m->data_len);
    ech_buf_putc(&r->log, 0);
    if (r->acc_status == ECH_OK) {
        ech_client_error ce;
        ech_error err;
        r->acc_status = ech_chat_acc_event(r->acc, m->event, m->data, m->data_len, &ce, &err);
    }
    return 0;
}

static void feed(const uint8_t *data, size_t size, size_t step, bool completion, run *r)
{
    ech_sse_parser p;
    ech_sse_parser_init(&p, 4096);
    ech_error err;
    r->acc = ech_chat_acc_new(completion, on_chat, NULL);
    if (!r->acc)
        abort();
    ech_status s = ECH_OK;
    for (size_t i = 0; s == ECH_OK && i < size; i += step) {
        size_t n = size - i < step ? size - i : step;
        s = ech_sse_parser_feed(&p, (const char *)data + i, n, on_msg, r, &err);
    }
    ech_sse_parser_finish(&p);
    ech_sse_parser_free(&p);
    if (r->acc_status == ECH_OK) {
        if (completion) {
            ech_completion_response cr;
            if (ech_chat_acc_finish_completion(r->acc, &cr, &err) == ECH_OK) {
                for (size_t i = 0; i < cr.n_choices; i++)
                    if (!cr.choices[i].text || strlen(cr.choices[i].text) > cr.choices[i].text_len)
                        abort();
                ech_completion_response_free(&cr);
            }
        } else {
            ech_chat_response resp;
            if (ech_chat_acc_finish(r->acc, &resp, &err) == ECH_OK) {
                for (size_t i = 0; i < resp.n_choices; i++) {
                    if (i && resp.choices[i].index <= resp.choices[i - 1].index)
                        abort();
                    json_object *m = ech_chat_choice_message_json(&resp.choices[i]);
                    json_object_put(m);
                }
                ech_chat_response_free(&resp);
            }
        }
    }
    ech_chat_acc_free(r->acc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool completion = data[0] & 1;
    size_t step = 1 + data[0] % 13;
    data++, size--;
    run whole = {0}, pieces = {0};
    feed(data, size, size ? size : 1, completion, &whole);
    feed(data, size, step, completion, &pieces);
    /* the same events, unless a limit stopped one of them at a different point */
    if (whole.log.len != pieces.log.len || (whole.log.len && memcmp(whole.log.data, pieces.log.data, whole.log.len)))
        abort();
    ech_buf_free(&whole.log);
    ech_buf_free(&pieces.log);
    return 0;
}
