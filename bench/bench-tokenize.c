/* bench-tokenize - time libech's tokenizer on a text file.
 *
 *   bench-tokenize VOCAB.gguf TEXT [RUNS] [IDS_OUT]
 *
 * Prints one line: load time (open + build the tokenizer), token count, the
 * best of RUNS (default 5) tokenizations of the whole file (no special
 * tokens added, special-token text as text: what llama.cpp's
 * test-tokenizer-0 times), and tokens per second.  With IDS_OUT, writes the
 * ids one per line, as test-tokenizer-0 writes TEXT.tokcpp, for comparing.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ech.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench-tokenize VOCAB.gguf TEXT [RUNS] [IDS_OUT]\n");
        return 2;
    }
    int runs = argc > 3 ? atoi(argv[3]) : 5;
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    ech_buf text = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        ech_buf_append(&text, chunk, n);
    fclose(f);

    ech_error err;
    ech_tokenizer *tk;
    double t0 = now();
    if (ech_tokenizer_open(argv[1], &tk, &err)) {
        fprintf(stderr, "bench-tokenize: %s\n", err.msg);
        return 1;
    }
    double load = now() - t0, best = 1e30;
    ech_tokens ids = {0};
    for (int r = 0; r < (runs > 0 ? runs : 1); r++) {
        ids.n = 0;
        double a = now();
        if (ech_tokenize(tk, text.data, text.len, 0, &ids, &err)) {
            fprintf(stderr, "bench-tokenize: %s\n", err.msg);
            return 1;
        }
        double dt = now() - a;
        if (dt < best)
            best = dt;
    }
    printf("load_ms %.1f bytes %zu tokens %zu best_ms %.1f tokens_per_s %.0f\n", load * 1e3, text.len,
           ids.n, best * 1e3, (double)ids.n / best);
    if (argc > 4) {
        FILE *o = fopen(argv[4], "w");
        if (!o) {
            perror(argv[4]);
            return 1;
        }
        for (size_t i = 0; i < ids.n; i++)
            fprintf(o, "%d\n", ids.ids[i]);
        fclose(o);
    }
    ech_tokens_free(&ids);
    ech_buf_free(&text);
    ech_tokenizer_free(tk);
    return 0;
}
