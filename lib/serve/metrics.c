/* metrics.c - Prometheus exposition. */
#include "config.h"
#include "serve/metrics.h"

#include <inttypes.h>

static const unsigned codes[ECH_METRICS_CODES] = {200, 204, 400, 401, 403, 404, 405, 413, 429, 500, 501, 503};

void ech_metrics_request(ech_metrics *m, unsigned status)
{
    size_t i = 0;
    while (i < ECH_METRICS_CODES && codes[i] != status)
        i++;
    atomic_fetch_add(&m->by_code[i], 1);
}

ech_status ech_metrics_render(ech_metrics *m, const ech_sched_stats *s, ech_buf *out)
{
    ech_status st = ech_buf_puts(out, "# HELP ech_requests_total HTTP requests answered, by status code.\n"
                                      "# TYPE ech_requests_total counter\n");
    for (size_t i = 0; i <= ECH_METRICS_CODES && st == ECH_OK; i++) {
        uint64_t n = atomic_load(&m->by_code[i]);
        if (i < ECH_METRICS_CODES)
            st = ech_buf_printf(out, "ech_requests_total{code=\"%u\"} %" PRIu64 "\n", codes[i], n);
        else
            st = ech_buf_printf(out, "ech_requests_total{code=\"other\"} %" PRIu64 "\n", n);
    }
    if (st != ECH_OK)
        return st;
    return ech_buf_printf(out,
        "# HELP ech_requests_in_flight Requests being handled now.\n# TYPE ech_requests_in_flight gauge\n"
        "ech_requests_in_flight %d\n"
        "# HELP ech_streams_total Streamed responses started.\n# TYPE ech_streams_total counter\n"
        "ech_streams_total %" PRIu64 "\n"
        "# HELP ech_prompt_tokens_total Prompt tokens evaluated (cached ones excluded).\n"
        "# TYPE ech_prompt_tokens_total counter\nech_prompt_tokens_total %" PRIu64 "\n"
        "# HELP ech_cached_tokens_total Prompt tokens reused from a slot's KV cache.\n"
        "# TYPE ech_cached_tokens_total counter\nech_cached_tokens_total %" PRIu64 "\n"
        "# HELP ech_generated_tokens_total Tokens generated.\n"
        "# TYPE ech_generated_tokens_total counter\nech_generated_tokens_total %" PRIu64 "\n"
        "# HELP ech_generations_total Generations ended (any reason).\n"
        "# TYPE ech_generations_total counter\nech_generations_total %" PRIu64 "\n"
        "# HELP ech_generations_canceled_total Generations stopped because the client went away.\n"
        "# TYPE ech_generations_canceled_total counter\nech_generations_canceled_total %" PRIu64 "\n"
        "# HELP ech_decode_steps_total Batched forward passes.\n"
        "# TYPE ech_decode_steps_total counter\nech_decode_steps_total %" PRIu64 "\n"
        "# HELP ech_tokens_per_second Generated tokens per second over the last 10 s.\n"
        "# TYPE ech_tokens_per_second gauge\nech_tokens_per_second %.3f\n"
        "# HELP ech_queue_depth Requests waiting for a slot.\n# TYPE ech_queue_depth gauge\nech_queue_depth %u\n"
        "# HELP ech_slots_busy Slots running a request.\n# TYPE ech_slots_busy gauge\nech_slots_busy %u\n"
        "# HELP ech_slots_total Slots (--parallel).\n# TYPE ech_slots_total gauge\nech_slots_total %u\n",
        atomic_load(&m->in_flight), (uint64_t)atomic_load(&m->streams), s->prompt_tokens, s->cached_tokens,
        s->gen_tokens, s->requests_done, s->requests_canceled, s->steps, s->tokens_per_s, s->queued, s->busy,
        s->n_slots);
}
