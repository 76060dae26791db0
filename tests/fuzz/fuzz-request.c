/* fuzz-request.c - libFuzzer target for request validation (lib/serve/request.c).
 *
 * The input is a request body.  For every endpoint kind it is either
 * accepted, or refused with a 4xx status and a message; accepted requests
 * have sane parameters (stop strings in bounds, top_logprobs <= 20).  The
 * template normalisation of accepted messages must not crash.  Violations
 * abort.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/request.h"
#include "serve/toolcall.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ech_api_error e = {0};
    json_object *body = NULL;
    if (ech_api_parse_body((const char *)data, size, &body, &e) != ECH_OK) {
        check(e.status >= 400 && e.status < 500 && e.msg[0]);
        return 0;
    }
    ech_sampler_params d = {.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1,
                            .penalty_last_n = 64};
    for (int k = ECH_API_CHAT; k <= ECH_API_OLLAMA_GENERATE; k++) {
        ech_api_gen g;
        memset(&e, 0, sizeof e);
        if (ech_api_parse_gen(body, (ech_api_kind)k, &d, &g, &e) != ECH_OK) {
            check(e.status >= 400 && e.status < 500 && e.msg[0]);
            continue;
        }
        check(g.gp.n_stop <= ECH_API_MAX_STOP && g.gp.top_logprobs <= 20);
        for (size_t i = 0; i < g.gp.n_stop; i++)
            check(g.gp.stop[i] && g.gp.stop[i][0]);
        if (g.messages)
            json_object_put(ech_tool_normalize_messages(g.messages));
    }
    json_object_put(body);
    return 0;
}
