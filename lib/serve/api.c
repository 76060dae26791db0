/* api.c - the endpoints: OpenAI (/v1/...), Ollama (/api/...), and utilities.
 *
 * A generation request is validated (request.c), rendered and tokenized
 * here on the connection's thread, checked against the context, queued on
 * the scheduler, and then either streamed (SSE or NDJSON, one event per
 * batch of tokens) or collected into one JSON reply.  The client's socket
 * is watched while we wait: when it closes, the request is canceled.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include "chat/template.h"
#include "core/arena.h"
#include "core/json.h"
#include "ech.h"
#include "gen/prompt.h"
#include "serve/embeddings.h"
#include "serve/http.h"
#include "serve/request.h"
#include "serve/sse.h"
#include "serve/toolcall.h"

enum { MAX_PROMPTS = 16, WAIT_MS = 50 };

static const char INVALID[] = "invalid_request_error";

/* ---- small helpers ------------------------------------------------------ */

static void random_id(char *buf, size_t n, const char *prefix)
{
    unsigned char r[12];
    randombytes_buf(r, sizeof r);
    size_t at = (size_t)snprintf(buf, n, "%s", prefix);
    for (size_t i = 0; i < sizeof r && at + 2 < n; i++, at += 2)
        snprintf(buf + at, n - at, "%02x", r[i]);
}

static void iso_time(char *buf, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, n - k, ".%06ldZ", ts.tv_nsec / 1000);
}

static json_object *jstr(const char *s) { return ech_json_string(s, strlen(s)); }

static const char *finish_name(ech_stop_reason r, bool tool_calls)
{
    if (tool_calls)
        return "tool_calls";
    return r == ECH_STOP_LENGTH || r == ECH_STOP_CONTEXT ? "length" : "stop";
}

/* ---- a generation job ------------------------------------------------- */

/* A job lives in its own arena (`arena`, freed with it); `step` holds the
 * scratch of one batch of tokens and is reset for the next. */
typedef struct job {
    ech_arena arena;
    ech_arena step;
    ech_server *srv;
    json_object *body;             /* keeps the strings in g alive */
    ech_api_gen g;
    char id[64];
    time_t created;
    ech_sreq *req[MAX_PROMPTS];
    ech_sreq_result res[MAX_PROMPTS];
    size_t n_req;
    ech_sreq_batch batch;
    ech_tool_family tf;            /* NONE unless tools were given */
    ech_tool_stream ts;
    int fd;
    /* streaming */
    ech_buf out;
    size_t out_pos;
    ech_buf shown;                 /* one batch's text that may be shown (reused) */
    bool finished;
    /* collecting (per prompt) */
    ech_buf text[MAX_PROMPTS];
    json_object *lp[MAX_PROMPTS];  /* chat: logprobs.content; completions: logprobs object */
    size_t text_off[MAX_PROMPTS];
} job;

static job *job_new(void)
{
    ech_arena a;
    ech_arena_init(&a, 4096);
    job *j = ech_arena_calloc(&a, 1, sizeof *j, 0);
    if (!j) {
        ech_arena_free(&a);
        return NULL;
    }
    j->arena = a;
    ech_arena_init(&j->step, 4096);
    return j;
}

static void job_free(job *j)
{
    for (size_t i = 0; i < j->n_req; i++) {
        if (!j->res[i].done)
            ech_sched_cancel(j->srv->sched, j->req[i]);
        ech_sreq_unref(j->req[i]);
    }
    for (size_t i = 0; i < MAX_PROMPTS; i++) {
        ech_buf_free(&j->text[i]);
        json_object_put(j->lp[i]);
    }
    ech_sreq_batch_free(&j->batch);
    ech_tool_stream_free(&j->ts);
    ech_buf_free(&j->out);
    ech_buf_free(&j->shown);
    json_object_put(j->body);
    ech_arena_free(&j->step);
    ech_arena a = j->arena;   /* j itself lives in it */
    ech_arena_free(&a);
}

static json_object *bytes_array(const char *p, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_int((unsigned char)p[i]));
    return a;
}

/* OpenAI chat logprobs entries for the tokens in j->batch, appended to `arr`. */
static void chat_logprobs(job *j, json_object *arr)
{
    const ech_tokenizer *tk = j->srv->tk;
    for (size_t i = 0; i < j->batch.n; i++) {
        const ech_sreq_tok *t = &j->batch.v[i];
        if (t->token < 0)
            continue;
        ech_str pc = ech_tokenizer_piece(tk, t->token);
        json_object *e = json_object_new_object();
        json_object_object_add(e, "token", ech_json_string(pc.ptr ? pc.ptr : "", pc.len));
        json_object_object_add(e, "logprob", ech_json_float(t->logprob));
        json_object_object_add(e, "bytes", bytes_array(pc.ptr, pc.len));
        json_object *top = json_object_new_array();
        for (uint32_t k = 0; k < t->n_top; k++) {
            const ech_token_logprob *a = &j->batch.top[t->top_off + k];
            ech_str ap = ech_tokenizer_piece(tk, a->token);
            json_object *x = json_object_new_object();
            json_object_object_add(x, "token", ech_json_string(ap.ptr ? ap.ptr : "", ap.len));
            json_object_object_add(x, "logprob", ech_json_float(a->logprob));
            json_object_object_add(x, "bytes", bytes_array(ap.ptr, ap.len));
            json_object_array_add(top, x);
        }
        json_object_object_add(e, "top_logprobs", top);
        json_object_array_add(arr, e);
    }
}

/* Legacy completions logprobs: parallel arrays. */
static json_object *completion_logprobs_new(void)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "tokens", json_object_new_array());
    json_object_object_add(o, "token_logprobs", json_object_new_array());
    json_object_object_add(o, "top_logprobs", json_object_new_array());
    json_object_object_add(o, "text_offset", json_object_new_array());
    return o;
}

static void completion_logprobs(job *j, json_object *o, size_t *offset)
{
    const ech_tokenizer *tk = j->srv->tk;
    json_object *toks, *lps, *tops, *offs;
    json_object_object_get_ex(o, "tokens", &toks);
    json_object_object_get_ex(o, "token_logprobs", &lps);
    json_object_object_get_ex(o, "top_logprobs", &tops);
    json_object_object_get_ex(o, "text_offset", &offs);
    for (size_t i = 0; i < j->batch.n; i++) {
        const ech_sreq_tok *t = &j->batch.v[i];
        if (t->token < 0)
            continue;
        ech_str pc = ech_tokenizer_piece(tk, t->token);
        json_object_array_add(toks, ech_json_string(pc.ptr ? pc.ptr : "", pc.len));
        json_object_array_add(lps, ech_json_float(t->logprob));
        json_object *top = json_object_new_object();
        for (uint32_t k = 0; k < t->n_top; k++) {
            const ech_token_logprob *a = &j->batch.top[t->top_off + k];
            ech_str ap = ech_tokenizer_piece(tk, a->token);
            char *key = ech_arena_strndup(&j->step, ap.ptr ? ap.ptr : "", ap.len);
            if (key)
                json_object_object_add(top, key, ech_json_float(a->logprob));
        }
        json_object_array_add(tops, top);
        json_object_array_add(offs, json_object_new_int64((int64_t)*offset));
        *offset += t->text_len;
    }
}

static json_object *usage_json(const ech_sreq_result *r, size_t n)
{
    uint64_t p = 0, c = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        p += r[i].n_prompt;
        c += r[i].n_generated;
        k += r[i].n_cached;
    }
    json_object *u = json_object_new_object();
    json_object_object_add(u, "prompt_tokens", json_object_new_int64((int64_t)p));
    json_object_object_add(u, "completion_tokens", json_object_new_int64((int64_t)c));
    json_object_object_add(u, "total_tokens", json_object_new_int64((int64_t)(p + c)));
    json_object *d = json_object_new_object();
    json_object_object_add(d, "cached_tokens", json_object_new_int64((int64_t)k));
    json_object_object_add(u, "prompt_tokens_details", d);
    return u;
}

static json_object *tool_calls_json(const ech_tool_calls *calls, bool ollama)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < calls->n; i++) {
        json_object *c = json_object_new_object(), *fn = json_object_new_object();
        json_object_object_add(fn, "name", jstr(calls->v[i].name));
        if (ollama) {
            /* Ollama gives arguments as an object */
            json_object *args = json_tokener_parse(calls->v[i].arguments);
            json_object_object_add(fn, "arguments", args ? args : json_object_new_object());
        } else {
            char id[32];
            ech_tool_call_id(id, sizeof id);
            json_object_object_add(c, "id", jstr(id));
            json_object_object_add(c, "type", jstr("function"));
            json_object_object_add(fn, "arguments", jstr(calls->v[i].arguments));
        }
        json_object_object_add(c, "function", fn);
        json_object_array_add(a, c);
    }
    return a;
}

/* The common head of OpenAI chunks and replies. */
static json_object *openai_head(job *j, const char *object)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", jstr(j->id));
    json_object_object_add(o, "object", jstr(object));
    json_object_object_add(o, "created", json_object_new_int64((int64_t)j->created));
    json_object_object_add(o, "model", jstr(j->srv->model_id));
    json_object_object_add(o, "system_fingerprint", jstr("echostra-" PACKAGE_VERSION));
    return o;
}

static json_object *ollama_head(job *j)
{
    char t[48];
    iso_time(t, sizeof t);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "model", jstr(j->g.model ? j->g.model : j->srv->model_id));
    json_object_object_add(o, "created_at", jstr(t));
    return o;
}

static void ollama_stats(json_object *o, const ech_sreq_result *r, bool tool_calls)
{
    int64_t ns = 1000000;
    json_object_object_add(o, "done_reason", jstr(finish_name(r->stop, false)));
    (void)tool_calls;
    json_object_object_add(o, "done", json_object_new_boolean(1));
    json_object_object_add(o, "total_duration", json_object_new_int64((int64_t)((r->queue_ms + r->prompt_ms + r->gen_ms) * ns)));
    json_object_object_add(o, "load_duration", json_object_new_int64(0));
    json_object_object_add(o, "prompt_eval_count", json_object_new_int64(r->n_prompt));
    json_object_object_add(o, "prompt_eval_duration", json_object_new_int64((int64_t)(r->prompt_ms * ns)));
    json_object_object_add(o, "eval_count", json_object_new_int64(r->n_generated));
    json_object_object_add(o, "eval_duration", json_object_new_int64((int64_t)(r->gen_ms * ns)));
}

static json_object *ollama_message(const char *text, size_t len)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", jstr("assistant"));
    json_object_object_add(m, "content", ech_json_string(text, len));
    return m;
}

/* ---- streaming -------------------------------------------------------- */

static bool is_ollama(const job *j) { return j->g.kind == ECH_API_OLLAMA_CHAT || j->g.kind == ECH_API_OLLAMA_GENERATE; }

static void emit(job *j, json_object *o)
{
    if (is_ollama(j))
        ech_ndjson_line(&j->out, o);
    else
        ech_sse_event(&j->out, o);
    json_object_put(o);
}

static json_object *chat_chunk(job *j, json_object *delta, json_object *logprobs, const char *finish)
{
    json_object *o = openai_head(j, "chat.completion.chunk");
    json_object *ch = json_object_new_object();
    json_object_object_add(ch, "index", json_object_new_int(0));
    json_object_object_add(ch, "delta", delta);
    json_object_object_add(ch, "logprobs", logprobs);
    json_object_object_add(ch, "finish_reason", finish ? jstr(finish) : NULL);
    json_object *a = json_object_new_array();
    json_object_array_add(a, ch);
    json_object_object_add(o, "choices", a);
    return o;
}

static json_object *text_delta(const char *s, size_t n)
{
    json_object *d = json_object_new_object();
    json_object_object_add(d, "content", ech_json_string(s, n));
    return d;
}

static json_object *completion_chunk(job *j, const char *text, size_t n, json_object *logprobs, const char *finish)
{
    json_object *o = openai_head(j, "text_completion");
    json_object *ch = json_object_new_object();
    json_object_object_add(ch, "text", ech_json_string(text, n));
    json_object_object_add(ch, "index", json_object_new_int(0));
    json_object_object_add(ch, "logprobs", logprobs);
    json_object_object_add(ch, "finish_reason", finish ? jstr(finish) : NULL);
    json_object *a = json_object_new_array();
    json_object_array_add(a, ch);
    json_object_object_add(o, "choices", a);
    return o;
}

/* Format what one take() brought. */
static void stream_batch(job *j)
{
    ech_arena_reset(&j->step);
    /* the tokens' texts lie one after the other in batch.text */
    ech_buf_clear(&j->shown);
    ech_tool_stream_feed(&j->ts, j->batch.text.data ? j->batch.text.data : "", j->batch.text.len, &j->shown);
    const ech_buf shown = j->shown;
    const char *s = shown.data ? shown.data : "";
    switch (j->g.kind) {
    case ECH_API_CHAT: {
        json_object *lp = NULL;
        if (j->g.logprobs) {
            lp = json_object_new_object();
            json_object *arr = json_object_new_array();
            chat_logprobs(j, arr);
            json_object_object_add(lp, "content", arr);
        }
        if (shown.len || lp)
            emit(j, chat_chunk(j, text_delta(s, shown.len), lp, NULL));
        break;
    }
    case ECH_API_COMPLETION: {
        json_object *lp = NULL;
        if (j->g.logprobs) {
            lp = completion_logprobs_new();
            completion_logprobs(j, lp, &j->text_off[0]);
        }
        if (shown.len || lp)
            emit(j, completion_chunk(j, s, shown.len, lp, NULL));
        break;
    }
    case ECH_API_OLLAMA_CHAT:
        if (shown.len) {
            json_object *o = ollama_head(j);
            json_object_object_add(o, "message", ollama_message(s, shown.len));
            json_object_object_add(o, "done", json_object_new_boolean(0));
            emit(j, o);
        }
        break;
    case ECH_API_OLLAMA_GENERATE:
        if (shown.len) {
            json_object *o = ollama_head(j);
            json_object_object_add(o, "response", ech_json_string(s, shown.len));
            json_object_object_add(o, "done", json_object_new_boolean(0));
            emit(j, o);
        }
        break;
    }
}

static void stream_error(job *j, const ech_sreq_result *r)
{
    json_object *err = json_object_new_object();
    json_object_object_add(err, "message", jstr(r->error[0] ? r->error : ech_strerror(r->status)));
    json_object_object_add(err, "type", jstr("server_error"));
    json_object_object_add(err, "code", NULL);
    json_object *o = json_object_new_object();
    if (is_ollama(j)) {
        json_object_object_add(o, "error", jstr(r->error[0] ? r->error : ech_strerror(r->status)));
        json_object_put(err);
    } else {
        json_object_object_add(o, "error", err);
    }
    emit(j, o);
}

static void stream_end(job *j)
{
    const ech_sreq_result *r = &j->res[0];
    if (r->status != ECH_OK) {
        stream_error(j, r);
        if (!is_ollama(j))
            ech_sse_done(&j->out);
        return;
    }
    ech_buf tail = {0};
    ech_tool_calls calls = {0};
    ech_tool_stream_finish(&j->ts, &tail, &calls);
    const char *ts = tail.data ? tail.data : "";
    const char *fin = finish_name(r->stop, calls.n > 0);
    switch (j->g.kind) {
    case ECH_API_CHAT: {
        if (tail.len)
            emit(j, chat_chunk(j, text_delta(ts, tail.len), NULL, NULL));
        json_object *tc = calls.n ? tool_calls_json(&calls, false) : NULL;
        for (size_t i = 0; i < calls.n; i++) {
            /* the call's head (id, name), then its arguments, keyed by index */
            json_object *c = json_object_array_get_idx(tc, i), *fn, *args;
            json_object_object_get_ex(c, "function", &fn);
            json_object_object_get_ex(fn, "arguments", &args);
            json_object *head = json_object_new_object(), *hfn = json_object_new_object();
            json_object_object_add(head, "index", json_object_new_int((int)i));
            json_object_object_add(head, "id", json_object_get(json_object_object_get(c, "id")));
            json_object_object_add(head, "type", jstr("function"));
            json_object_object_add(hfn, "name", json_object_get(json_object_object_get(fn, "name")));
            json_object_object_add(hfn, "arguments", jstr(""));
            json_object_object_add(head, "function", hfn);
            json_object *d = json_object_new_object(), *arr = json_object_new_array();
            json_object_array_add(arr, head);
            json_object_object_add(d, "tool_calls", arr);
            emit(j, chat_chunk(j, d, NULL, NULL));
            json_object *frag = json_object_new_object(), *ffn = json_object_new_object();
            json_object_object_add(frag, "index", json_object_new_int((int)i));
            json_object_object_add(ffn, "arguments", json_object_get(args));
            json_object_object_add(frag, "function", ffn);
            d = json_object_new_object();
            arr = json_object_new_array();
            json_object_array_add(arr, frag);
            json_object_object_add(d, "tool_calls", arr);
            emit(j, chat_chunk(j, d, NULL, NULL));
        }
        json_object_put(tc);
        emit(j, chat_chunk(j, json_object_new_object(), NULL, fin));
        break;
    }
    case ECH_API_COMPLETION:
        emit(j, completion_chunk(j, ts, tail.len, NULL, fin));
        break;
    case ECH_API_OLLAMA_CHAT: {
        if (tail.len || calls.n) {
            json_object *o = ollama_head(j), *m = ollama_message(ts, tail.len);
            if (calls.n)
                json_object_object_add(m, "tool_calls", tool_calls_json(&calls, true));
            json_object_object_add(o, "message", m);
            json_object_object_add(o, "done", json_object_new_boolean(0));
            emit(j, o);
        }
        json_object *o = ollama_head(j);
        json_object_object_add(o, "message", ollama_message("", 0));
        ollama_stats(o, r, calls.n > 0);
        emit(j, o);
        break;
    }
    case ECH_API_OLLAMA_GENERATE: {
        json_object *o = ollama_head(j);
        json_object_object_add(o, "response", ech_json_string(ts, tail.len));
        ollama_stats(o, r, false);
        emit(j, o);
        break;
    }
    }
    if (!is_ollama(j)) {
        if (j->g.include_usage) {
            json_object *o = openai_head(j, j->g.kind == ECH_API_CHAT ? "chat.completion.chunk" : "text_completion");
            json_object_object_add(o, "choices", json_object_new_array());
            json_object_object_add(o, "usage", usage_json(j->res, 1));
            emit(j, o);
        }
        ech_sse_done(&j->out);
    }
    ech_tool_calls_free(&calls);
    ech_buf_free(&tail);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    job *j = cls;
    for (;;) {
        if (j->out_pos < j->out.len) {
            size_t n = j->out.len - j->out_pos;
            if (n > max)
                n = max;
            memcpy(buf, j->out.data + j->out_pos, n);
            j->out_pos += n;
            if (j->out_pos == j->out.len) {
                ech_buf_clear(&j->out);
                j->out_pos = 0;
            }
            return (ssize_t)n;
        }
        if (j->finished)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (ech_http_peer_closed(j->fd)) {
            ech_sched_cancel(j->srv->sched, j->req[0]);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (ech_sreq_take(j->req[0], &j->batch, &j->res[0], WAIT_MS)) {
            if (j->batch.n)
                stream_batch(j);
            if (j->res[0].done) {
                if (j->res[0].stop == ECH_STOP_CANCELED && j->res[0].status == ECH_OK && atomic_load(&j->srv->stopping)) {
                    ech_sreq_result r = j->res[0];
                    r.status = ECH_ERR_CANCELED;
                    snprintf(r.error, sizeof r.error, "the server is shutting down");
                    j->res[0] = r;
                }
                stream_end(j);
                j->finished = true;
            }
        }
    }
}

static void stream_free(void *cls) { job_free(cls); }

/* ---- collecting ------------------------------------------------------- */

static void collect_batch(job *j, size_t k)
{
    ech_arena_reset(&j->step);
    ech_buf_append(&j->text[k], j->batch.text.data ? j->batch.text.data : "", j->batch.text.len);
    if (!j->g.logprobs)
        return;
    if (j->g.kind == ECH_API_CHAT) {
        if (!j->lp[k])
            j->lp[k] = json_object_new_array();
        chat_logprobs(j, j->lp[k]);
    } else if (j->g.kind == ECH_API_COMPLETION) {
        if (!j->lp[k])
            j->lp[k] = completion_logprobs_new();
        completion_logprobs(j, j->lp[k], &j->text_off[k]);
    }
}

/* Wait for every request of the job; false if the client went away. */
static bool collect(job *j)
{
    for (size_t k = 0; k < j->n_req; k++)
        while (!j->res[k].done) {
            if (ech_http_peer_closed(j->fd))
                return false;
            if (ech_sreq_take(j->req[k], &j->batch, &j->res[k], WAIT_MS) && j->batch.n)
                collect_batch(j, k);
        }
    return true;
}

static enum MHD_Result reply_collected(ech_http *h, job *j)
{
    for (size_t k = 0; k < j->n_req; k++)
        if (j->res[k].status != ECH_OK)
            return ech_http_errorf(h, 500, "server_error", NULL, "generation failed: %s",
                                   j->res[k].error[0] ? j->res[k].error : ech_strerror(j->res[k].status));
    if (atomic_load(&j->srv->stopping))
        for (size_t k = 0; k < j->n_req; k++)
            if (j->res[k].stop == ECH_STOP_CANCELED)
                return ech_http_errorf(h, 503, "server_error", "shutting_down", "the server is shutting down");
    const ech_sreq_result *r = &j->res[0];
    json_object *o;
    if (j->g.kind == ECH_API_CHAT || j->g.kind == ECH_API_OLLAMA_CHAT) {
        ech_buf content = {0};
        ech_tool_calls calls = {0};
        ech_tool_parse(j->tf, j->text[0].data ? j->text[0].data : "", j->text[0].len, &content, &calls);
        if (j->g.kind == ECH_API_CHAT) {
            o = openai_head(j, "chat.completion");
            json_object *msg = json_object_new_object();
            json_object_object_add(msg, "role", jstr("assistant"));
            json_object_object_add(msg, "content", calls.n && !content.len ? NULL
                                   : ech_json_string(content.data ? content.data : "", content.len));
            if (calls.n)
                json_object_object_add(msg, "tool_calls", tool_calls_json(&calls, false));
            json_object *ch = json_object_new_object();
            json_object_object_add(ch, "index", json_object_new_int(0));
            json_object_object_add(ch, "message", msg);
            json_object *lp = NULL;
            if (j->g.logprobs) {
                lp = json_object_new_object();
                json_object_object_add(lp, "content", j->lp[0] ? json_object_get(j->lp[0]) : json_object_new_array());
            }
            json_object_object_add(ch, "logprobs", lp);
            json_object_object_add(ch, "finish_reason", jstr(finish_name(r->stop, calls.n > 0)));
            json_object *a = json_object_new_array();
            json_object_array_add(a, ch);
            json_object_object_add(o, "choices", a);
            json_object_object_add(o, "usage", usage_json(j->res, 1));
        } else {
            o = ollama_head(j);
            json_object *m = ollama_message(content.data ? content.data : "", content.len);
            if (calls.n)
                json_object_object_add(m, "tool_calls", tool_calls_json(&calls, true));
            json_object_object_add(o, "message", m);
            ollama_stats(o, r, calls.n > 0);
        }
        ech_tool_calls_free(&calls);
        ech_buf_free(&content);
    } else if (j->g.kind == ECH_API_COMPLETION) {
        o = openai_head(j, "text_completion");
        json_object *a = json_object_new_array();
        for (size_t k = 0; k < j->n_req; k++) {
            json_object *ch = json_object_new_object();
            json_object_object_add(ch, "text", ech_json_string(j->text[k].data ? j->text[k].data : "", j->text[k].len));
            json_object_object_add(ch, "index", json_object_new_int((int)k));
            json_object_object_add(ch, "logprobs", j->g.logprobs ? (j->lp[k] ? json_object_get(j->lp[k]) : completion_logprobs_new()) : NULL);
            json_object_object_add(ch, "finish_reason", jstr(finish_name(j->res[k].stop, false)));
            json_object_array_add(a, ch);
        }
        json_object_object_add(o, "choices", a);
        json_object_object_add(o, "usage", usage_json(j->res, j->n_req));
    } else {
        o = ollama_head(j);
        json_object_object_add(o, "response", ech_json_string(j->text[0].data ? j->text[0].data : "", j->text[0].len));
        ollama_stats(o, r, false);
    }
    return ech_http_json(h, 200, o);
}

/* ---- prompts ---------------------------------------------------------- */

/* `prefill` (may be NULL) is appended to the rendering: the start of the
 * assistant's reply, which the model continues.  Its bytes at
 * [lit_off, lit_off + lit_len) are tokenized as text (a name from the
 * request), the rest with special tokens. */
static ech_status render_chat(ech_server *s, json_object *messages, json_object *tools, const ech_buf *prefill,
                              size_t lit_off, size_t lit_len, ech_tokens *out, ech_api_error *e)
{
    json_object *msgs = ech_tool_normalize_messages(messages);
    ech_prompt_opts po = {.messages = msgs, .tools = tools, .add_generation_prompt = true,
                          .template_src = s->o.template_src, .template_len = s->o.template_len};
    char *text = NULL;
    size_t len = 0;
    ech_error err;
    ech_status st = ech_prompt_render(s->gguf, &po, &text, &len, NULL, &err);
    if (st != ECH_OK) {
        json_object_put(msgs);
        if (st == ECH_ERR_NOMEM)
            return ech_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        /* the template refused the conversation (raise_exception), or a limit hit */
        return ech_api_fail(e, 400, INVALID, "invalid_value", "messages", "the chat template cannot render these messages: %s", err.msg);
    }
    if (prefill && prefill->len) {
        char *t = realloc(text, len + prefill->len + 1);
        if (!t) {
            free(text);
            json_object_put(msgs);
            return ech_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        }
        text = t;
        memcpy(text + len, prefill->data, prefill->len);
        len += prefill->len;
        text[len] = '\0';
        if (lit_len) {
            /* the tokenizer keeps message contents literal, in order: the
             * name is one more, found after the last real message */
            json_object *m = json_object_new_object();
            json_object_object_add(m, "content", ech_json_string(prefill->data + lit_off, lit_len));
            json_object_array_add(msgs, m);
        }
    }
    st = ech_prompt_tokenize(s->tk, text, len, msgs, out, &err);
    free(text);
    json_object_put(msgs);
    if (st != ECH_OK)
        return ech_api_fail(e, 500, "server_error", NULL, NULL, "tokenizing the prompt failed: %s", err.msg);
    return ECH_OK;
}

/* The tools the template sees: all, none, or the one named by tool_choice. */
static json_object *tools_for(const ech_api_gen *g)
{
    if (!g->tools || g->tool_choice == ECH_TOOL_NONE)
        return NULL;
    if (g->tool_choice != ECH_TOOL_NAMED)
        return json_object_get(g->tools);
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(g->tools); i++) {
        json_object *t = json_object_array_get_idx(g->tools, i), *fn, *name;
        if (json_object_object_get_ex(t, "function", &fn) && json_object_object_get_ex(fn, "name", &name) &&
            !strcmp(json_object_get_string(name), g->tool_name))
            json_object_array_add(a, json_object_get(t));
    }
    return a;
}

/* tool_choice "required" or a named function: the reply starts with the
 * family's call opener (we have no grammar to constrain sampling, so the
 * model is put inside a call instead of being asked to begin one). */
static ech_status forced_call(ech_server *s, const ech_api_gen *g, json_object *tools, ech_buf *prefill,
                              size_t *lit_off, size_t *lit_len, ech_api_error *e)
{
    if (g->tool_choice != ECH_TOOL_REQUIRED && g->tool_choice != ECH_TOOL_NAMED)
        return ECH_OK;
    if (s->tools == ECH_TOOLS_NONE)
        return ech_api_fail(e, 400, INVALID, "unsupported_value", "tool_choice",
                            "this model's chat template has no tool-call syntax ech-serve knows (Hermes or Llama 3), "
                            "so a tool call cannot be required; use \"auto\"");
    if (g->tool_choice == ECH_TOOL_NAMED && json_object_array_length(tools) == 0)
        return ech_api_fail(e, 400, INVALID, "invalid_value", "tool_choice",
                            "tool_choice names the function '%s', which is not in 'tools'", g->tool_name);
    if (ech_tool_prefill(s->tools, g->tool_choice == ECH_TOOL_NAMED ? g->tool_name : NULL, prefill, lit_off,
                         lit_len) != ECH_OK) {
        ech_buf_free(prefill);
        return ech_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    }
    return ECH_OK;
}

static ech_status tokens_of(ech_server *s, json_object *p, ech_tokens *out, ech_api_error *e)
{
    if (json_object_is_type(p, json_type_string)) {
        ech_error err;
        if (ech_tokenize(s->tk, json_object_get_string(p), (size_t)json_object_get_string_len(p),
                         ECH_TOKENIZE_ADD_SPECIAL | ECH_TOKENIZE_PARSE_SPECIAL, out, &err) != ECH_OK)
            return ech_api_fail(e, 500, "server_error", NULL, NULL, "tokenizing the prompt failed: %s", err.msg);
        return ECH_OK;
    }
    size_t nv = ech_tokenizer_n_vocab(s->tk);
    for (size_t i = 0; i < json_object_array_length(p); i++) {
        int64_t id = json_object_get_int64(json_object_array_get_idx(p, i));
        if (id < 0 || (uint64_t)id >= nv)
            return ech_api_fail(e, 400, INVALID, "invalid_value", "prompt", "token id %" PRId64 " is outside the vocabulary (0..%zu)", id, nv - 1);
        ech_tokens_push(out, (ech_token)id);
    }
    return ECH_OK;
}

static ech_status check_fit(ech_server *s, const ech_api_gen *g, size_t n_prompt, ech_api_error *e)
{
    uint32_t n_ctx = ech_sched_n_ctx(s->sched);
    if (n_prompt == 0)
        return ech_api_fail(e, 400, INVALID, "invalid_value", "prompt", "the prompt is empty");
    if (n_prompt >= n_ctx)
        return ech_api_fail(e, 400, INVALID, "context_length_exceeded", g->messages ? "messages" : "prompt",
                            "the prompt has %zu tokens but the context holds %u; shorten it (no tokens were dropped)",
                            n_prompt, n_ctx);
    if (g->max_tokens > 0 && n_prompt + (uint64_t)g->max_tokens > n_ctx)
        return ech_api_fail(e, 400, INVALID, "context_length_exceeded", "max_tokens",
                            "the prompt (%zu tokens) plus max_tokens (%" PRId64 ") exceeds the context of %u tokens",
                            n_prompt, g->max_tokens, n_ctx);
    return ECH_OK;
}

static enum MHD_Result generate(ech_http *h, ech_api_kind kind)
{
    ech_server *s = h->srv;
    ech_api_error e;
    json_object *body;
    if (!s->sched)
        return ech_http_errorf(h, 400, INVALID, "model_not_supported",
                               "model %s (%s) is an embedding model: it serves /v1/embeddings only", s->model_id,
                               ech_arch_name(s->model->hp.arch));
    if (ech_api_parse_body(h->body, h->body_len, &body, &e) != ECH_OK)
        return ech_http_error(h, &e);
    job *j = job_new();
    if (!j) {
        json_object_put(body);
        return ech_http_errorf(h, 500, "server_error", NULL, "out of memory");
    }
    j->srv = s;
    j->body = body;
    j->created = time(NULL);
    j->fd = ech_http_fd(h);
    random_id(j->id, sizeof j->id, kind == ECH_API_CHAT ? "chatcmpl-" : "cmpl-");
    ech_api_gen *g = &j->g;
    enum MHD_Result ret;
    ech_tokens prompts[MAX_PROMPTS] = {{0}};
    size_t n_prompts = 1;
    if (ech_api_parse_gen(body, kind, &s->sdefault, g, &e) != ECH_OK)
        goto fail;
    if (g->model && !ech_server_model_matches(s, g->model)) {
        ech_api_fail(&e, 404, INVALID, "model_not_found", "model", "the model '%s' does not exist; this server serves '%s'",
                     g->model, s->model_id);
        goto fail;
    }
    if (g->max_tokens < 0 && s->o.n_predict >= 0)
        g->gp.n_predict = s->o.n_predict;
    json_object *tools = NULL;
    ech_buf prefill = {0};
    if (kind == ECH_API_CHAT || kind == ECH_API_OLLAMA_CHAT) {
        tools = tools_for(g);
        if (tools && s->tools != ECH_TOOLS_NONE)
            j->tf = s->tools;
        size_t lit_off = 0, lit_len = 0;
        if (forced_call(s, g, tools, &prefill, &lit_off, &lit_len, &e) != ECH_OK) {
            json_object_put(tools);
            goto fail;
        }
        ech_status st = render_chat(s, g->messages, tools, &prefill, lit_off, lit_len, &prompts[0], &e);
        json_object_put(tools);
        if (st != ECH_OK) {
            ech_buf_free(&prefill);
            goto fail;
        }
    } else if (kind == ECH_API_OLLAMA_GENERATE) {
        if (g->raw) {
            if (tokens_of(s, g->prompt, &prompts[0], &e) != ECH_OK)
                goto fail;
        } else {
            json_object *msgs = json_object_new_array();
            if (g->system) {
                json_object *m = json_object_new_object();
                json_object_object_add(m, "role", jstr("system"));
                json_object_object_add(m, "content", jstr(g->system));
                json_object_array_add(msgs, m);
            }
            json_object *m = json_object_new_object();
            json_object_object_add(m, "role", jstr("user"));
            json_object_object_add(m, "content", json_object_get(g->prompt));
            json_object_array_add(msgs, m);
            ech_status st = render_chat(s, msgs, NULL, NULL, 0, 0, &prompts[0], &e);
            json_object_put(msgs);
            if (st != ECH_OK)
                goto fail;
        }
    } else {
        json_object *p = g->prompt;
        if (json_object_is_type(p, json_type_array) &&
            !json_object_is_type(json_object_array_get_idx(p, 0), json_type_int)) {
            n_prompts = json_object_array_length(p);
            if (n_prompts > MAX_PROMPTS) {
                ech_api_fail(&e, 400, INVALID, "invalid_value", "prompt", "at most %d prompts per request", MAX_PROMPTS);
                goto fail;
            }
            for (size_t i = 0; i < n_prompts; i++)
                if (tokens_of(s, json_object_array_get_idx(p, i), &prompts[i], &e) != ECH_OK)
                    goto fail;
        } else if (tokens_of(s, p, &prompts[0], &e) != ECH_OK) {
            goto fail;
        }
    }
    ech_tool_stream_init(&j->ts, g->stream ? j->tf : ECH_TOOLS_NONE);
    if (prefill.len) {
        /* the reply begins with the opener we wrote for the model: parse it
         * with the rest (streaming holds it back like any call) */
        ech_buf none = {0};
        if (g->stream)
            ech_tool_stream_feed(&j->ts, prefill.data, prefill.len, &none);
        else
            ech_buf_append(&j->text[0], prefill.data, prefill.len);
        ech_buf_free(&none);
        ech_buf_free(&prefill);
    }
    for (size_t i = 0; i < n_prompts; i++)
        if (check_fit(s, g, prompts[i].n, &e) != ECH_OK)
            goto fail;
    for (size_t i = 0; i < n_prompts; i++) {
        ech_error err;
        ech_status st = ech_sreq_new(prompts[i].ids, prompts[i].n, &g->gp, &j->req[i], &err);
        if (st == ECH_OK) {
            j->n_req++;
            j->res[i].n_prompt = (uint32_t)prompts[i].n;
            st = ech_sched_submit(s->sched, j->req[i], &err);
        }
        if (st != ECH_OK) {
            if (st == ECH_ERR_RANGE)
                ech_api_fail(&e, 503, "server_error", "queue_full", NULL, "%s", err.msg);
            else if (st == ECH_ERR_CANCELED)
                ech_api_fail(&e, 503, "server_error", "shutting_down", NULL, "%s", err.msg);
            else
                ech_api_fail(&e, 500, "server_error", NULL, NULL, "%s", err.msg);
            /* the ones already queued: cancel them */
            for (size_t k = 0; k < j->n_req; k++)
                j->res[k].done = false;
            goto fail;
        }
    }
    for (size_t i = 0; i < n_prompts; i++)
        ech_tokens_free(&prompts[i]);
    if (g->stream) {
        if (kind == ECH_API_CHAT) {
            json_object *d = json_object_new_object();
            json_object_object_add(d, "role", jstr("assistant"));
            json_object_object_add(d, "content", jstr(""));
            emit(j, chat_chunk(j, d, NULL, NULL));
        }
        return ech_http_stream(h, is_ollama(j) ? "application/x-ndjson" : "text/event-stream", stream_read, j, stream_free);
    }
    if (!collect(j)) {
        job_free(j);
        return MHD_NO;   /* the client is gone: close */
    }
    ret = reply_collected(h, j);
    job_free(j);
    return ret;
fail:
    for (size_t i = 0; i < MAX_PROMPTS; i++)
        ech_tokens_free(&prompts[i]);
    job_free(j);
    return ech_http_error(h, &e);
}

/* ---- the other endpoints ------------------------------------------------ */

static enum MHD_Result health(ech_http *h)
{
    json_object *o = json_object_new_object();
    bool stopping = atomic_load(&h->srv->stopping);
    json_object_object_add(o, "status", jstr(stopping ? "shutting down" : "ok"));
    return ech_http_json(h, stopping ? 503 : 200, o);
}

static json_object *model_json(ech_server *s)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "id", jstr(s->model_id));
    json_object_object_add(m, "object", jstr("model"));
    json_object_object_add(m, "created", json_object_new_int64((int64_t)s->created));
    json_object_object_add(m, "owned_by", jstr("echostra"));
    return m;
}

static enum MHD_Result models(ech_http *h)
{
    json_object *o = json_object_new_object(), *a = json_object_new_array();
    json_object_array_add(a, model_json(h->srv));
    json_object_object_add(o, "object", jstr("list"));
    json_object_object_add(o, "data", a);
    return ech_http_json(h, 200, o);
}

static enum MHD_Result model_one(ech_http *h, const char *name)
{
    if (!ech_server_model_matches(h->srv, name))
        return ech_http_errorf(h, 404, INVALID, "model_not_found", "the model '%s' does not exist; this server serves '%s'",
                               name, h->srv->model_id);
    return ech_http_json(h, 200, model_json(h->srv));
}

static enum MHD_Result tags(ech_http *h)
{
    ech_server *s = h->srv;
    char t[64] = "1970-01-01T00:00:00Z";
    struct tm tm;
    if (gmtime_r(&s->created, &tm))
        strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object *m = json_object_new_object(), *d = json_object_new_object();
    char name[300];
    snprintf(name, sizeof name, "%s:latest", s->model_id);
    json_object_object_add(m, "name", jstr(name));
    json_object_object_add(m, "model", jstr(name));
    json_object_object_add(m, "modified_at", jstr(t));
    json_object_object_add(m, "size", json_object_new_int64((int64_t)s->model_size));
    json_object_object_add(m, "digest", jstr(""));
    json_object_object_add(d, "format", jstr("gguf"));
    ech_str arch = {0};
    if (ech_gguf_get_str(s->gguf, "general.architecture", &arch) == ECH_OK)
        json_object_object_add(d, "family", ech_json_string(arch.ptr, arch.len));
    json_object_object_add(m, "details", d);
    json_object *o = json_object_new_object(), *a = json_object_new_array();
    json_object_array_add(a, m);
    json_object_object_add(o, "models", a);
    return ech_http_json(h, 200, o);
}

static enum MHD_Result metrics(ech_http *h)
{
    ech_sched_stats st;
    memset(&st, 0, sizeof st);
    if (h->srv->sched)
        ech_sched_stats_get(h->srv->sched, &st);
    ech_buf b = {0};
    ech_metrics_render(&h->srv->metrics, &st, &b);
    enum MHD_Result r = ech_http_text(h, 200, "text/plain; version=0.0.4", b.data ? b.data : "", b.len);
    ech_buf_free(&b);
    return r;
}

static enum MHD_Result tokenize(ech_http *h)
{
    ech_api_error e;
    json_object *body, *content, *v;
    if (ech_api_parse_body(h->body, h->body_len, &body, &e) != ECH_OK)
        return ech_http_error(h, &e);
    bool add_special = false, parse_special = true, pieces = false;
    enum MHD_Result r;
    if (!json_object_object_get_ex(body, "content", &content) || !json_object_is_type(content, json_type_string)) {
        r = ech_http_errorf(h, 400, INVALID, "invalid_type", "'content' must be a string");
        goto out;
    }
    const char *keys[] = {"add_special", "parse_special", "with_pieces"};
    bool *vals[] = {&add_special, &parse_special, &pieces};
    for (size_t i = 0; i < 3; i++)
        if (json_object_object_get_ex(body, keys[i], &v) && v) {
            if (!json_object_is_type(v, json_type_boolean)) {
                r = ech_http_errorf(h, 400, INVALID, "invalid_type", "'%s' must be true or false", keys[i]);
                goto out;
            }
            *vals[i] = json_object_get_boolean(v);
        }
    ech_tokens t = {0};
    ech_error err;
    if (ech_tokenize(h->srv->tk, json_object_get_string(content), (size_t)json_object_get_string_len(content),
                     (add_special ? ECH_TOKENIZE_ADD_SPECIAL : 0) | (parse_special ? ECH_TOKENIZE_PARSE_SPECIAL : 0),
                     &t, &err) != ECH_OK) {
        r = ech_http_errorf(h, 500, "server_error", NULL, "%s", err.msg);
        goto out;
    }
    json_object *o = json_object_new_object(), *a = json_object_new_array();
    for (size_t i = 0; i < t.n; i++) {
        if (pieces) {
            ech_str p = ech_tokenizer_piece(h->srv->tk, t.ids[i]);
            json_object *x = json_object_new_object();
            json_object_object_add(x, "id", json_object_new_int(t.ids[i]));
            json_object_object_add(x, "piece", ech_json_string(p.ptr ? p.ptr : "", p.len));
            json_object_array_add(a, x);
        } else {
            json_object_array_add(a, json_object_new_int(t.ids[i]));
        }
    }
    ech_tokens_free(&t);
    json_object_object_add(o, "tokens", a);
    r = ech_http_json(h, 200, o);
out:
    json_object_put(body);
    return r;
}

static enum MHD_Result detokenize(ech_http *h)
{
    ech_api_error e;
    json_object *body, *toks;
    if (ech_api_parse_body(h->body, h->body_len, &body, &e) != ECH_OK)
        return ech_http_error(h, &e);
    enum MHD_Result r;
    ech_tokens t = {0};
    if (!json_object_object_get_ex(body, "tokens", &toks) || !json_object_is_type(toks, json_type_array)) {
        r = ech_http_errorf(h, 400, INVALID, "invalid_type", "'tokens' must be an array of token ids");
        goto out;
    }
    size_t nv = ech_tokenizer_n_vocab(h->srv->tk);
    for (size_t i = 0; i < json_object_array_length(toks); i++) {
        json_object *x = json_object_array_get_idx(toks, i);
        int64_t id = json_object_get_int64(x);
        if (!json_object_is_type(x, json_type_int) || id < 0 || (uint64_t)id >= nv) {
            r = ech_http_errorf(h, 400, INVALID, "invalid_value", "tokens[%zu] is not a token id (0..%zu)", i, nv - 1);
            goto out;
        }
        ech_tokens_push(&t, (ech_token)id);
    }
    ech_buf b = {0};
    ech_error err;
    if (ech_detokenize(h->srv->tk, t.ids, t.n, 0, &b, &err) != ECH_OK) {
        r = ech_http_errorf(h, 400, INVALID, "invalid_value", "%s", err.msg);
        goto out;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "content", ech_json_string(b.data ? b.data : "", b.len));
    ech_buf_free(&b);
    r = ech_http_json(h, 200, o);
out:
    ech_tokens_free(&t);
    json_object_put(body);
    return r;
}

static enum MHD_Result version(ech_http *h)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "version", jstr(PACKAGE_VERSION));
    return ech_http_json(h, 200, o);
}

/* ---- routes ----------------------------------------------------------- */

typedef struct route {
    const char *method, *path;
    enum MHD_Result (*fn)(ech_http *h);
} route;

static enum MHD_Result chat(ech_http *h) { return generate(h, ECH_API_CHAT); }
static enum MHD_Result completions(ech_http *h) { return generate(h, ECH_API_COMPLETION); }
static enum MHD_Result ollama_chat(ech_http *h) { return generate(h, ECH_API_OLLAMA_CHAT); }
static enum MHD_Result ollama_generate(ech_http *h) { return generate(h, ECH_API_OLLAMA_GENERATE); }

static const route routes[] = {
    {"GET", "/health", health},
    {"GET", "/metrics", metrics},
    {"GET", "/v1/models", models},
    {"POST", "/v1/chat/completions", chat},
    {"POST", "/v1/completions", completions},
    {"POST", "/v1/embeddings", ech_api_embeddings},
    {"POST", "/tokenize", tokenize},
    {"POST", "/detokenize", detokenize},
    {"POST", "/api/chat", ollama_chat},
    {"POST", "/api/generate", ollama_generate},
    {"GET", "/api/tags", tags},
    {"GET", "/api/version", version},
};

enum MHD_Result ech_api_dispatch(ech_http *h)
{
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(h->path, routes[i].path) != 0)
            continue;
        path_known = true;
        if (!strcmp(h->method, routes[i].method) || (!strcmp(h->method, "HEAD") && !strcmp(routes[i].method, "GET")))
            return routes[i].fn(h);
    }
    if (!strncmp(h->path, "/v1/models/", 11) && h->path[11] && (!strcmp(h->method, "GET") || !strcmp(h->method, "HEAD")))
        return model_one(h, h->path + 11);
    if (path_known)
        return ech_http_errorf(h, 405, INVALID, "method_not_allowed", "%s is not allowed on %s", h->method, h->path);
    return ech_http_errorf(h, 404, INVALID, "not_found", "no route %s %s", h->method, h->path);
}
