/* metrics.h - counters for GET /metrics (Prometheus text format 0.0.4). */
#ifndef ECH_SERVE_METRICS_H
#define ECH_SERVE_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/buf.h"
#include "serve/sched.h"

/* Status codes counted one by one; anything else counts as "other". */
enum { ECH_METRICS_CODES = 12 };

typedef struct ech_metrics {
    atomic_uint_fast64_t by_code[ECH_METRICS_CODES + 1];
    atomic_uint_fast64_t streams;       /* streamed responses started */
    atomic_int in_flight;               /* requests being handled now */
} ech_metrics;

void ech_metrics_request(ech_metrics *m, unsigned status);

/* Append the exposition text, with the scheduler's figures. */
ech_status ech_metrics_render(ech_metrics *m, const ech_sched_stats *s, ech_buf *out);

#endif
