/* fuzz-tokenize - libFuzzer target for lib/tok.
 *
 * The vocabularies come from $ECH_FUZZ_VOCAB, a colon-separated list of GGUF
 * files (default: the llama-spm, gpt-2, llama3, deepseek-llm and bert-bge
 * vocabs under $ECH_SHARED/vocab).  The first input byte picks the vocab and
 * the flags; the rest is the text.  Each input is tokenized twice (the ids
 * must agree and be in range), detokenized, and streamed (the stream must be
 * valid UTF-8).  See tests/fuzz/README.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ech.h"

enum { MAX_VOCABS = 8 };
static ech_tokenizer *vocabs[MAX_VOCABS];
static int n_vocabs;

static void load_one(const char *path)
{
    ech_error err;
    if (n_vocabs < MAX_VOCABS && ech_tokenizer_open(path, &vocabs[n_vocabs], &err) == ECH_OK)
        n_vocabs++;
    else
        fprintf(stderr, "fuzz-tokenize: skipping %s\n", path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *list = getenv("ECH_FUZZ_VOCAB");
    char buf[4096];
    if (list) {
        snprintf(buf, sizeof buf, "%s", list);
        for (char *save, *p = strtok_r(buf, ":", &save); p; p = strtok_r(NULL, ":", &save))
            load_one(p);
    } else {
        const char *shared = getenv("ECH_SHARED");
        static const char *const names[] = {"llama-spm", "gpt-2", "llama3", "deepseek-llm", "bert-bge"};
        for (size_t i = 0; shared && i < sizeof names / sizeof names[0]; i++) {
            snprintf(buf, sizeof buf, "%s/vocab/ggml-vocab-%s.gguf", shared, names[i]);
            load_one(buf);
        }
    }
    if (!n_vocabs) {
        fprintf(stderr, "fuzz-tokenize: no vocab; set ECH_FUZZ_VOCAB or ECH_SHARED\n");
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const ech_tokenizer *tk = vocabs[data[0] % n_vocabs];
    unsigned flags = (data[0] >> 4) & 3;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    ech_tokens a = {0}, b = {0};
    if (ech_tokenize(tk, text, len, flags, &a, NULL) || ech_tokenize(tk, text, len, flags, &b, NULL))
        abort();
    if (a.n != b.n || (a.n && memcmp(a.ids, b.ids, a.n * sizeof *a.ids)))
        abort();   /* not deterministic */
    for (size_t i = 0; i < a.n; i++)
        if (a.ids[i] < 0 || (size_t)a.ids[i] >= ech_tokenizer_n_vocab(tk))
            abort();
    ech_buf out = {0};
    if (ech_detokenize(tk, a.ids, a.n, data[0] & 1 ? ECH_DETOK_SPECIAL : 0, &out, NULL))
        abort();
    ech_detok_stream s;
    ech_detok_stream_init(&s, tk, 0);
    ech_buf st = {0};
    for (size_t i = 0; i < a.n; i++)
        if (ech_detok_stream_push(&s, a.ids[i], &st))
            abort();
    ech_detok_stream_flush(&s, &st);
    if (!ech_utf8_valid((const uint8_t *)st.data, st.len))
        abort();
    ech_buf_free(&out);
    ech_buf_free(&st);
    ech_tokens_free(&a);
    ech_tokens_free(&b);
    return 0;
}
