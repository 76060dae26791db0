/* chat-template.c - how long one chat-template render takes.
 *
 *   bench/chat-template TEMPLATE.jinja|MODEL.gguf [N_MESSAGES [ITERATIONS]]
 *
 * Builds a conversation of N_MESSAGES (default 20: a system message, then
 * user/assistant turns of a few sentences each), compiles the template once
 * and renders it ITERATIONS times (default 20000); prints the compile time,
 * the mean and best render time in microseconds, and the prompt size.
 * bench/chat-template.sh runs it next to Python's jinja2 on the same input.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ech.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* The same conversation bench/chat-template.sh gives jinja2. */
static json_object *bench_messages(int n)
{
    json_object *msgs = json_object_new_array();
    for (int i = 0; i < n; i++) {
        char text[512];
        const char *role = i == 0 ? "system" : (i % 2 ? "user" : "assistant");
        if (i == 0)
            snprintf(text, sizeof text, "You are a helpful assistant. Answer briefly and precisely.");
        else if (i % 2)
            snprintf(text, sizeof text, "Question %d: how do Unix pipes pass data between two processes, "
                     "and what happens when the reader is slower than the writer?", i);
        else
            snprintf(text, sizeof text, "Answer %d: the kernel keeps a buffer (64 KiB on Linux); the writer "
                     "blocks when it is full and resumes as the reader drains it.", i);
        json_object *m = json_object_new_object();
        json_object_object_add(m, "role", json_object_new_string(role));
        json_object_object_add(m, "content", json_object_new_string(text));
        json_object_array_add(msgs, m);
    }
    return msgs;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s TEMPLATE.jinja|MODEL.gguf [N_MESSAGES [ITERATIONS]]\n", argv[0]);
        return 2;
    }
    int nmsg = argc > 2 ? atoi(argv[2]) : 20, iters = argc > 3 ? atoi(argv[3]) : 20000;
    ech_error err;
    char *src = NULL;
    size_t len = 0;
    ech_gguf *g = NULL;
    size_t plen = strlen(argv[1]);
    if (plen > 5 && !strcmp(argv[1] + plen - 5, ".gguf")) {
        ech_str s;
        if (ech_gguf_open(argv[1], &g, &err) != ECH_OK || ech_chat_gguf_source(g, NULL, &s, &err) != ECH_OK) {
            fprintf(stderr, "%s: %s\n", argv[1], err.msg);
            return 1;
        }
        src = malloc(s.len + 1);
        memcpy(src, s.ptr, s.len);
        len = s.len;
    } else {
        FILE *f = fopen(argv[1], "rb");
        if (!f) {
            perror(argv[1]);
            return 1;
        }
        src = malloc(1 << 20);
        len = fread(src, 1, 1 << 20, f);
        fclose(f);
    }
    ech_chat_template *t = NULL;
    double t0 = now_us();
    int ncomp = 200;
    for (int i = 0; i < ncomp; i++) {
        ech_chat_template_free(t);
        if (ech_chat_template_compile(src, len, &t, &err) != ECH_OK) {
            fprintf(stderr, "compile: %s\n", err.msg);
            return 1;
        }
    }
    double compile_us = (now_us() - t0) / ncomp;
    json_object *msgs = bench_messages(nmsg);
    ech_chat_input in = {.messages = msgs, .add_generation_prompt = true, .bos_token = "<|begin_of_text|>",
                         .eos_token = "<|eot_id|>", .now = 1735689600};
    char *out = NULL;
    size_t outlen = 0;
    double best = 1e30, total = 0;
    for (int i = 0; i < iters; i++) {
        double a = now_us();
        if (ech_chat_render(t, &in, &out, &outlen, &err) != ECH_OK) {
            fprintf(stderr, "render: %s\n", err.msg);
            return 1;
        }
        double d = now_us() - a;
        total += d;
        if (d < best)
            best = d;
        free(out);
    }
    printf("messages=%d iterations=%d compile_us=%.1f render_mean_us=%.2f render_best_us=%.2f prompt_bytes=%zu\n",
           nmsg, iters, compile_us, total / iters, best, outlen);
    json_object_put(msgs);
    ech_chat_template_free(t);
    ech_gguf_close(g);
    free(src);
    return 0;
}
