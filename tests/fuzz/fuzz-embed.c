/* fuzz-embed.c - libFuzzer target for what ech-embed and /v1/embeddings parse.
 *
 * The first byte picks the parser:
 *   even: the rest is a /v1/embeddings body (lib/serve/embed_request.c); it
 *         is accepted with 1..2048 inputs, each a non-empty text or token
 *         ids below n_vocab, or refused with a 4xx status and a message.
 *   odd:  the rest (after two bytes giving the chunk size and overlap) is a
 *         text for ech_embed_chunks (lib/gen/chunk.c), with the WordPiece
 *         and a SentencePiece vocab: chunks lie in the text, in order, start
 *         after the previous start, have 1..max tokens, and what lies
 *         outside every chunk gives no tokens (whitespace, control
 *         characters): no text is lost.
 * Vocabs come from ECH_FUZZ_VOCAB (colon-separated GGUF paths) or
 * $ECH_SHARED/vocab.  Violations abort.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/embed.h"
#include "serve/embeddings.h"
#include "tok/tokenizer.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static ech_tokenizer *vocabs[4];
static size_t n_vocabs;

static void load_vocabs(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    char list[4096];
    const char *env = getenv("ECH_FUZZ_VOCAB"), *shared = getenv("ECH_SHARED");
    if (env)
        snprintf(list, sizeof list, "%s", env);
    else
        snprintf(list, sizeof list, "%s/vocab/ggml-vocab-bert-bge.gguf:%s/vocab/ggml-vocab-llama-spm.gguf",
                 shared ? shared : "../shared", shared ? shared : "../shared");
    for (char *p = strtok(list, ":"); p && n_vocabs < 4; p = strtok(NULL, ":"))
        if (ech_tokenizer_open(p, &vocabs[n_vocabs], NULL) == ECH_OK)
            n_vocabs++;
    if (!n_vocabs) {
        fprintf(stderr, "fuzz-embed: no vocab (set ECH_SHARED or ECH_FUZZ_VOCAB)\n");
        abort();
    }
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* text[a, b) is whitespace and words that give no tokens */
static void check_empty(const ech_tokenizer *tk, const char *text, size_t a, size_t b)
{
    while (a < b) {
        while (a < b && is_space(text[a]))
            a++;
        size_t w = a;
        while (w < b && !is_space(text[w]))
            w++;
        if (w > a) {
            ech_tokens t = {0};
            check(ech_tokenize(tk, text + a, w - a, 0, &t, NULL) == ECH_OK && t.n == 0);
            ech_tokens_free(&t);
        }
        a = w;
    }
}

static void fuzz_request(const uint8_t *data, size_t size)
{
    ech_api_error e = {0};
    json_object *body = NULL;
    if (ech_api_parse_body((const char *)data, size, &body, &e) != ECH_OK) {
        check(e.status >= 400 && e.status < 500 && e.msg[0]);
        return;
    }
    ech_embed_request r;
    memset(&e, 0, sizeof e);
    if (ech_embed_request_parse(body, 30522, &r, &e) != ECH_OK) {
        check(e.status >= 400 && e.status < 500 && e.msg[0]);
    } else {
        check(r.n >= 1 && r.n <= ECH_API_MAX_EMBED_INPUTS);
        for (size_t i = 0; i < r.n; i++) {
            if (r.in[i].ids) {
                check(r.in[i].n_ids > 0);
                for (size_t k = 0; k < r.in[i].n_ids; k++)
                    check(r.in[i].ids[k] >= 0 && r.in[i].ids[k] < 30522);
            } else {
                check(r.in[i].text && r.in[i].len > 0);
            }
        }
        ech_embed_request_free(&r);
    }
    json_object_put(body);
}

static void fuzz_chunks(const uint8_t *data, size_t size)
{
    if (size < 2)
        return;
    const uint32_t max = 1 + data[0] % 48, overlap = data[1] % max;
    const char *text = (const char *)data + 2;
    const size_t len = size - 2;
    for (size_t v = 0; v < n_vocabs; v++) {
        ech_span *sp = NULL;
        size_t n = 0;
        ech_status st = ech_embed_chunks(vocabs[v], text, len, max, overlap, &sp, &n, NULL);
        if (st != ECH_OK) {
            check(st == ECH_ERR_RANGE && !sp && !n);   /* a character needing more tokens than max */
            continue;
        }
        size_t covered = 0;   /* bytes before this are inside some chunk or whitespace */
        for (size_t i = 0; i < n; i++) {
            check(sp[i].len > 0 && sp[i].off + sp[i].len <= len);
            check(i == 0 || sp[i].off > sp[i - 1].off);
            check_empty(vocabs[v], text, covered, sp[i].off);
            if (sp[i].off + sp[i].len > covered)
                covered = sp[i].off + sp[i].len;
            ech_tokens t = {0};
            check(ech_tokenize(vocabs[v], text + sp[i].off, sp[i].len, 0, &t, NULL) == ECH_OK);
            check(t.n >= 1 && t.n <= max);
            ech_tokens_free(&t);
        }
        check_empty(vocabs[v], text, covered, len);
        free(sp);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0) {
        fuzz_request(data + 1, size - 1);
    } else {
        load_vocabs();
        fuzz_chunks(data + 1, size - 1);
    }
    return 0;
}
