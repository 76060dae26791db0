/* sched.c - the scheduler thread: admit, step, sample, repeat. */
#include "config.h"
#include "serve/sched.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/model.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- requests ----------------------------------------------------------- */

struct ech_sreq {
    atomic_int refs;
    atomic_bool cancel;
    int32_t *prompt;
    uint32_t n_prompt;
    ech_gen_params gp;             /* stop points at stops */
    char **stops;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ech_sreq_batch pending;        /* produced, not taken yet (under mu) */
    ech_sreq_result res;           /* under mu */
    double t_submit, t_start, t_first;
    bool queued;                   /* in the scheduler's queue (under the scheduler's mu) */
};

void ech_sreq_batch_free(ech_sreq_batch *b)
{
    free(b->v);
    free(b->top);
    ech_buf_free(&b->text);
    memset(b, 0, sizeof *b);
}

static void batch_clear(ech_sreq_batch *b)
{
    b->n = 0;
    b->n_top = 0;
    ech_buf_clear(&b->text);
}

ech_status ech_sreq_new(const int32_t *prompt, size_t n, const ech_gen_params *gp, ech_sreq **out,
                        ech_error *err)
{
    *out = NULL;
    if (n == 0 || n > UINT32_MAX)
        return ech_error_set(err, ECH_ERR_INVALID, "the prompt is empty");
    ech_sreq *r = calloc(1, sizeof *r);
    if (!r || !(r->prompt = malloc(n * sizeof *r->prompt)))
        goto nomem;
    memcpy(r->prompt, prompt, n * sizeof *prompt);
    r->n_prompt = (uint32_t)n;
    r->gp = *gp;
    if (gp->n_stop) {
        if (!(r->stops = calloc(gp->n_stop, sizeof *r->stops)))
            goto nomem;
        for (size_t i = 0; i < gp->n_stop; i++)
            if (!(r->stops[i] = strdup(gp->stop[i])))
                goto nomem;
        r->gp.stop = (const char *const *)r->stops;
    }
    atomic_init(&r->refs, 1);
    atomic_init(&r->cancel, false);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->res.n_prompt = r->n_prompt;
    *out = r;
    return ECH_OK;
nomem:
    if (r) {
        r->gp.n_stop = gp->n_stop;
        atomic_init(&r->refs, 1);
        pthread_mutex_init(&r->mu, NULL);
        pthread_cond_init(&r->cv, NULL);
        ech_sreq_unref(r);
    }
    return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
}

static void sreq_ref(ech_sreq *r) { atomic_fetch_add(&r->refs, 1); }

void ech_sreq_unref(ech_sreq *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->stops)
        for (size_t i = 0; i < r->gp.n_stop; i++)
            free(r->stops[i]);
    free(r->stops);
    free(r->prompt);
    ech_sreq_batch_free(&r->pending);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

bool ech_sreq_take(ech_sreq *r, ech_sreq_batch *batch, ech_sreq_result *res, int timeout_ms)
{
    batch_clear(batch);
    pthread_mutex_lock(&r->mu);
    if (!r->pending.n && !r->res.done && timeout_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!r->pending.n && !r->res.done)
            if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT)
                break;
    }
    /* swap buffers: the caller gets the tokens, we keep its empty buffers */
    ech_sreq_batch tmp = r->pending;
    r->pending = *batch;
    *batch = tmp;
    *res = r->res;
    bool news = batch->n > 0 || res->done;
    pthread_mutex_unlock(&r->mu);
    return news;
}

/* Scheduler side: append one token event. */
static void push_event(ech_sreq *r, const ech_gen_token *ev)
{
    pthread_mutex_lock(&r->mu);
    ech_sreq_batch *b = &r->pending;
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 16;
        ech_sreq_tok *nv = realloc(b->v, nc * sizeof *nv);
        if (!nv)
            goto out;
        b->v = nv;
        b->cap = nc;
    }
    if (b->n_top + ev->n_top > b->cap_top) {
        size_t nc = b->cap_top ? b->cap_top * 2 : 64;
        while (nc < b->n_top + ev->n_top)
            nc *= 2;
        ech_token_logprob *nt = realloc(b->top, nc * sizeof *nt);
        if (!nt)
            goto out;
        b->top = nt;
        b->cap_top = nc;
    }
    ech_sreq_tok *t = &b->v[b->n];
    *t = (ech_sreq_tok){.token = ev->token, .logprob = ev->logprob, .text_off = (uint32_t)b->text.len,
                        .text_len = (uint32_t)ev->text_len, .top_off = (uint32_t)b->n_top, .n_top = ev->n_top};
    if (ech_buf_append(&b->text, ev->text ? ev->text : "", ev->text_len) != ECH_OK)
        goto out;
    if (ev->n_top)
        memcpy(b->top + b->n_top, ev->top, ev->n_top * sizeof *ev->top);
    b->n_top += ev->n_top;
    b->n++;
    pthread_cond_broadcast(&r->cv);
out:
    pthread_mutex_unlock(&r->mu);
}

/* ---- the scheduler ---------------------------------------------------- */

typedef struct slot {
    ech_ctx *ctx;
    ech_tokens cache;              /* the tokens whose keys and values the context holds */
    ech_sreq *req;
    ech_gen_seq *seq;
    uint32_t n_fed;                /* prompt tokens in the cache */
    int32_t next;                  /* sampled, to be fed next step */
    const ech_tokens *replay;      /* replay mode: the tokens to produce */
    size_t replay_pos;
    uint64_t last_used;
} slot;

struct ech_sched {
    ech_sched_opts o;
    uint32_t n_ctx, chunk, n_vocab;
    slot *slots;
    ech_ctx **b_ctx;               /* forward_step's batch arguments (n_slots each) */
    const int32_t **b_tok;
    uint32_t *b_n;
    ech_tokens *replay;            /* n_replay tokenized scripts */
    size_t n_replay, replay_next;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;            /* queue, flags, stats */
    pthread_cond_t cv;             /* work arrived / stop */
    pthread_cond_t idle_cv;        /* a request ended */
    ech_sreq **queue;
    size_t n_queue;
    bool stop, refuse;
    uint32_t busy;
    uint64_t use_clock;
    ech_sched_stats st;
    /* generated tokens per second, bucketed by second over the last 10 s */
    uint64_t bucket_sec[10], bucket_tok[10];
};

uint32_t ech_sched_n_ctx(const ech_sched *s) { return s->n_ctx; }

static void finish(ech_sched *s, slot *sl, ech_status st, const char *msg)
{
    ech_sreq *r = sl->req;
    ech_gen_token ev;
    if (st == ECH_OK && sl->seq && ech_gen_seq_flush(sl->seq, &ev))
        push_event(r, &ev);
    double t = now_ms();
    pthread_mutex_lock(&r->mu);
    r->res.done = true;
    r->res.status = st;
    if (msg)
        snprintf(r->res.error, sizeof r->res.error, "%s", msg);
    if (sl->seq) {
        r->res.stop = ech_gen_seq_stop_reason(sl->seq);
        r->res.n_generated = ech_gen_seq_n_generated(sl->seq);
    }
    r->res.queue_ms = r->t_start - r->t_submit;
    r->res.prompt_ms = (r->t_first ? r->t_first : t) - r->t_start;
    r->res.gen_ms = r->t_first ? t - r->t_first : 0;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_mutex_lock(&s->mu);
    s->busy--;
    s->st.requests_done++;
    if (sl->seq && ech_gen_seq_stop_reason(sl->seq) == ECH_STOP_CANCELED)
        s->st.requests_canceled++;
    pthread_cond_broadcast(&s->idle_cv);
    pthread_mutex_unlock(&s->mu);
    ech_gen_seq_free(sl->seq);
    sl->seq = NULL;
    sl->req = NULL;
    ech_sreq_unref(r);
}

/* A request that never got a slot. */
static void finish_unassigned(ech_sreq *r, ech_stop_reason why)
{
    pthread_mutex_lock(&r->mu);
    r->res.done = true;
    r->res.stop = why;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    ech_sreq_unref(r);
}

static size_t common_prefix(const ech_tokens *a, const int32_t *b, size_t nb)
{
    size_t n = a->n < nb ? a->n : nb, i = 0;
    while (i < n && a->ids[i] == b[i])
        i++;
    return i;
}

/* Give queued requests free slots, best cache match first (under s->mu). */
static void admit(ech_sched *s)
{
    while (s->n_queue) {
        ech_sreq *r = s->queue[0];
        slot *best = NULL;
        size_t best_lcp = 0;
        for (uint32_t i = 0; i < s->o.n_slots; i++) {
            slot *sl = &s->slots[i];
            if (sl->req)
                continue;
            size_t lcp = common_prefix(&sl->cache, r->prompt, r->n_prompt);
            if (!best || lcp > best_lcp || (lcp == best_lcp && sl->last_used < best->last_used)) {
                best = sl;
                best_lcp = lcp;
            }
        }
        if (!best)
            return;
        memmove(s->queue, s->queue + 1, (s->n_queue - 1) * sizeof *s->queue);
        s->n_queue--;
        r->queued = false;
        if (atomic_load(&r->cancel)) {
            finish_unassigned(r, ECH_STOP_CANCELED);
            s->st.requests_done++;
            s->st.requests_canceled++;
            continue;
        }
        /* at least the last prompt token is evaluated: its logits start generation */
        size_t keep = best_lcp < r->n_prompt ? best_lcp : r->n_prompt - 1;
        if (!best->ctx)
            keep = 0;
        else
            ech_ctx_truncate(best->ctx, (uint32_t)keep);
        best->cache.n = keep;
        best->n_fed = (uint32_t)keep;
        best->req = r;
        best->last_used = ++s->use_clock;
        best->next = -1;
        ech_error err;
        if (ech_gen_seq_new(s->o.tk, s->n_vocab, &r->gp, &best->seq, &err) != ECH_OK) {
            s->busy++;
            pthread_mutex_unlock(&s->mu);
            finish(s, best, err.code, err.msg);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        ech_gen_seq_prompt(best->seq, r->prompt, r->n_prompt);
        if (s->n_replay) {
            best->replay = &s->replay[s->replay_next++ % s->n_replay];
            best->replay_pos = 0;
        }
        r->t_start = now_ms();
        pthread_mutex_lock(&r->mu);
        r->res.n_cached = (uint32_t)keep;
        pthread_mutex_unlock(&r->mu);
        s->st.cached_tokens += keep;
        s->busy++;
    }
}

typedef struct step_item {
    slot *sl;
    const int32_t *tokens;
    uint32_t n;
    ech_status st;
    ech_error err;
} step_item;

/* The one place that runs the model: one forward pass over every busy slot
 * (ech_ctx_decode_batch reads the weights once for all of them). */
static void forward_step(ech_sched *s, step_item *items, size_t n)
{
    if (s->o.replay_delay_ms) {
        struct timespec ts = {s->o.replay_delay_ms / 1000, (long)(s->o.replay_delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (!items[0].sl->ctx)
        return;   /* replay mode: no model */
    for (size_t i = 0; i < n; i++) {
        s->b_ctx[i] = items[i].sl->ctx;
        s->b_tok[i] = items[i].tokens;
        s->b_n[i] = items[i].n;
    }
    ech_error err;
    if (ech_ctx_decode_batch(s->b_ctx, s->b_tok, s->b_n, n, &err) == ECH_OK)
        return;
    /* the batch changed nothing: run the slots one by one to fail only the culprit */
    for (size_t i = 0; i < n; i++)
        items[i].st = ech_ctx_decode(items[i].sl->ctx, items[i].tokens, items[i].n, &items[i].err);
}

static void count_tokens(ech_sched *s, uint64_t n)
{
    uint64_t sec = (uint64_t)(now_ms() / 1000);
    pthread_mutex_lock(&s->mu);
    size_t b = sec % 10;
    if (s->bucket_sec[b] != sec) {
        s->bucket_sec[b] = sec;
        s->bucket_tok[b] = 0;
    }
    s->bucket_tok[b] += n;
    s->st.gen_tokens += n;
    pthread_mutex_unlock(&s->mu);
}

/* After the forward pass: sample for every slot whose prompt is in. */
static void after_step(ech_sched *s, step_item *it)
{
    slot *sl = it->sl;
    ech_sreq *r = sl->req;
    if (it->st != ECH_OK) {
        finish(s, sl, it->st, it->err.msg);
        return;
    }
    for (uint32_t i = 0; i < it->n; i++)
        ech_tokens_push(&sl->cache, it->tokens[i]);
    if (sl->n_fed < r->n_prompt) {
        sl->n_fed += it->n;
        pthread_mutex_lock(&s->mu);
        s->st.prompt_tokens += it->n;
        pthread_mutex_unlock(&s->mu);
        if (sl->n_fed < r->n_prompt)
            return;   /* more prompt next step */
    }
    if (sl->ctx && ech_ctx_n_past(sl->ctx) >= s->n_ctx) {
        ech_gen_seq_end(sl->seq, ECH_STOP_CONTEXT);
        finish(s, sl, ECH_OK, NULL);
        return;
    }
    ech_gen_token ev;
    bool emit;
    ech_error err;
    ech_status st;
    if (sl->replay) {
        const ech_tokens *rt = sl->replay;
        if (sl->replay_pos < rt->n) {
            st = ech_gen_seq_force(sl->seq, rt->ids[sl->replay_pos++], &ev, &emit, &err);
        } else {
            ech_gen_seq_end(sl->seq, ECH_STOP_EOS);
            finish(s, sl, ECH_OK, NULL);
            return;
        }
    } else {
        st = ech_gen_seq_next(sl->seq, ech_ctx_logits(sl->ctx), &ev, &emit, &err);
    }
    if (st != ECH_OK) {
        finish(s, sl, st, err.msg);
        return;
    }
    if (!r->t_first)
        r->t_first = now_ms();
    count_tokens(s, 1);
    if (emit)
        push_event(r, &ev);
    if (ech_gen_seq_done(sl->seq))
        finish(s, sl, ECH_OK, NULL);
    else
        sl->next = ev.token;
}

static void *run(void *arg)
{
    ech_sched *s = arg;
    step_item *items = calloc(s->o.n_slots, sizeof *items);
    if (!items)
        return NULL;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        admit(s);
        if (s->stop)
            break;
        if (!s->busy) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        size_t n = 0;
        for (uint32_t i = 0; i < s->o.n_slots; i++) {
            slot *sl = &s->slots[i];
            if (!sl->req)
                continue;
            if (atomic_load(&sl->req->cancel)) {
                ech_gen_seq_end(sl->seq, ECH_STOP_CANCELED);
                finish(s, sl, ECH_OK, NULL);
                continue;
            }
            step_item *it = &items[n++];
            *it = (step_item){.sl = sl};
            if (sl->n_fed < sl->req->n_prompt) {
                uint32_t left = sl->req->n_prompt - sl->n_fed;
                it->tokens = sl->req->prompt + sl->n_fed;
                it->n = left < s->chunk ? left : s->chunk;
            } else {
                it->tokens = &sl->next;
                it->n = 1;
            }
        }
        if (n)
            forward_step(s, items, n);
        for (size_t i = 0; i < n; i++)
            after_step(s, &items[i]);
        pthread_mutex_lock(&s->mu);
        s->st.steps++;
    }
    pthread_mutex_unlock(&s->mu);
    free(items);
    return NULL;
}

ech_status ech_sched_new(const ech_sched_opts *o, ech_sched **out, ech_error *err)
{
    *out = NULL;
    if (o->n_slots == 0 || (!o->model && !o->n_replay))
        return ech_error_set(err, ECH_ERR_INVALID, "the scheduler needs slots and a model");
    ech_sched *s = calloc(1, sizeof *s);
    if (!s)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    s->o = *o;
    s->chunk = o->chunk ? o->chunk : 128;
    s->n_vocab = o->model ? o->model->hp.n_vocab : (uint32_t)ech_tokenizer_n_vocab(o->tk);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->idle_cv, NULL);
    ech_status st = ECH_ERR_NOMEM;
    s->slots = calloc(o->n_slots, sizeof *s->slots);
    s->queue = calloc(o->max_queue ? o->max_queue : 1, sizeof *s->queue);
    s->b_ctx = calloc(o->n_slots, sizeof *s->b_ctx);
    s->b_tok = calloc(o->n_slots, sizeof *s->b_tok);
    s->b_n = calloc(o->n_slots, sizeof *s->b_n);
    if (!s->slots || !s->queue || !s->b_ctx || !s->b_tok || !s->b_n) {
        ech_error_set(err, st, "out of memory");
        goto fail;
    }
    if (o->model) {
        for (uint32_t i = 0; i < o->n_slots; i++)
            if ((st = ech_ctx_new(o->model, &o->cp, &s->slots[i].ctx, err)) != ECH_OK)
                goto fail;
        s->n_ctx = ech_ctx_n_ctx(s->slots[0].ctx);
    } else {
        s->n_ctx = o->cp.n_ctx ? o->cp.n_ctx : 4096;
        if (!(s->replay = calloc(o->n_replay, sizeof *s->replay))) {
            ech_error_set(err, st, "out of memory");
            goto fail;
        }
        s->n_replay = o->n_replay;
        for (size_t i = 0; i < o->n_replay; i++)
            if ((st = ech_tokenize(o->tk, o->replay[i], strlen(o->replay[i]), ECH_TOKENIZE_PARSE_SPECIAL,
                                   &s->replay[i], err)) != ECH_OK)
                goto fail;
    }
    s->st.n_slots = o->n_slots;
    if (pthread_create(&s->thread, NULL, run, s) != 0) {
        st = ech_error_set(err, ECH_ERR_IO, "cannot start the scheduler thread");
        goto fail;
    }
    s->thread_started = true;
    *out = s;
    return ECH_OK;
fail:
    ech_sched_free(s);
    return st;
}

ech_status ech_sched_submit(ech_sched *s, ech_sreq *r, ech_error *err)
{
    pthread_mutex_lock(&s->mu);
    ech_status st = ECH_OK;
    if (s->refuse || s->stop)
        st = ech_error_set(err, ECH_ERR_CANCELED, "the server is shutting down");
    else if (s->n_queue >= s->o.max_queue)
        st = ech_error_set(err, ECH_ERR_RANGE, "the request queue is full (%u waiting); try again later",
                           s->o.max_queue);
    if (st == ECH_OK) {
        sreq_ref(r);
        r->t_submit = now_ms();
        r->queued = true;
        s->queue[s->n_queue++] = r;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

void ech_sched_cancel(ech_sched *s, ech_sreq *r)
{
    atomic_store(&r->cancel, true);
    pthread_mutex_lock(&s->mu);
    if (r->queued) {
        for (size_t i = 0; i < s->n_queue; i++)
            if (s->queue[i] == r) {
                memmove(s->queue + i, s->queue + i + 1, (s->n_queue - i - 1) * sizeof *s->queue);
                s->n_queue--;
                break;
            }
        r->queued = false;
        s->st.requests_done++;
        s->st.requests_canceled++;
        pthread_cond_broadcast(&s->idle_cv);
        pthread_mutex_unlock(&s->mu);
        finish_unassigned(r, ECH_STOP_CANCELED);
        return;
    }
    pthread_mutex_unlock(&s->mu);
}

void ech_sched_drain(ech_sched *s, int grace_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += grace_ms / 1000;
    ts.tv_nsec += (long)(grace_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    s->refuse = true;
    while ((s->busy || s->n_queue) && pthread_cond_timedwait(&s->idle_cv, &s->mu, &ts) != ETIMEDOUT)
        ;
    /* out of time: cancel the rest (the thread frees their slots next step) */
    while (s->n_queue) {
        ech_sreq *r = s->queue[--s->n_queue];
        r->queued = false;
        atomic_store(&r->cancel, true);
        pthread_mutex_unlock(&s->mu);
        finish_unassigned(r, ECH_STOP_CANCELED);
        pthread_mutex_lock(&s->mu);
    }
    for (uint32_t i = 0; i < s->o.n_slots; i++)
        if (s->slots[i].req)
            atomic_store(&s->slots[i].req->cancel, true);
    while (s->busy)
        pthread_cond_wait(&s->idle_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

void ech_sched_free(ech_sched *s)
{
    if (!s)
        return;
    if (s->thread_started) {
        ech_sched_drain(s, 0);
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    for (uint32_t i = 0; s->slots && i < s->o.n_slots; i++) {
        ech_ctx_free(s->slots[i].ctx);
        ech_tokens_free(&s->slots[i].cache);
    }
    for (size_t i = 0; s->replay && i < s->o.n_replay; i++)
        ech_tokens_free(&s->replay[i]);
    free(s->replay);
    free(s->slots);
    free(s->queue);
    free(s->b_ctx);
    free(s->b_tok);
    free(s->b_n);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->idle_cv);
    free(s);
}

void ech_sched_stats_get(ech_sched *s, ech_sched_stats *st)
{
    uint64_t sec = (uint64_t)(now_ms() / 1000);
    pthread_mutex_lock(&s->mu);
    *st = s->st;
    st->busy = s->busy;
    st->queued = (uint32_t)s->n_queue;
    uint64_t tok = 0;
    /* the last 10 full seconds (the current one is still filling) */
    for (size_t i = 0; i < 10; i++)
        if (s->bucket_sec[i] && s->bucket_sec[i] < sec && s->bucket_sec[i] + 10 >= sec)
            tok += s->bucket_tok[i];
    pthread_mutex_unlock(&s->mu);
    st->tokens_per_s = (double)tok / 10.0;
}
