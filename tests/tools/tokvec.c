/* tokvec - check a vocabulary against llama.cpp-style test vectors.
 *
 *   tokvec VOCAB.gguf FILE.inp FILE.out [--parse-special] [--add-special] [--roundtrip]
 *
 * FILE.inp holds test strings, each followed by "\n__ggml_vocab_test__\n";
 * FILE.out the expected ids, one line per string, each id preceded by a
 * space.  Tokenizes every string (by default as llama.cpp's tests do: no
 * special tokens added, special-token text read as plain text), compares,
 * and detokenizes the expected ids to check the round trip.  Prints one line
 *   VOCAB: N/M ids match, K/M decode to the input
 * then the failures; exits 0 when every id list matches (and, with
 * --roundtrip, every expected list decodes back to its input).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ech.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    ech_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        ech_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return ech_buf_steal(&b);
}

static void print_escaped(const char *s, size_t n)
{
    for (size_t i = 0; i < n && i < 80; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: tokvec VOCAB.gguf FILE.inp FILE.out [--parse-special] [--add-special] [--roundtrip]\n");
        return 2;
    }
    unsigned flags = 0;
    int roundtrip = 0;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--parse-special"))
            flags |= ECH_TOKENIZE_PARSE_SPECIAL;
        else if (!strcmp(argv[i], "--add-special"))
            flags |= ECH_TOKENIZE_ADD_SPECIAL;
        else if (!strcmp(argv[i], "--roundtrip"))
            roundtrip = 1;
    }
    ech_tokenizer *tk;
    ech_error err;
    if (ech_tokenizer_open(argv[1], &tk, &err)) {
        fprintf(stderr, "tokvec: %s\n", err.msg);
        return 1;
    }
    size_t in_len, out_len;
    char *inp = slurp(argv[2], &in_len), *outp = slurp(argv[3], &out_len);
    if (!inp || !outp) {
        fprintf(stderr, "tokvec: cannot read %s or %s\n", argv[2], argv[3]);
        return 1;
    }
    static const char SEP[] = "\n__ggml_vocab_test__\n";
    const size_t sep_len = sizeof SEP - 1;
    size_t n_cases = 0, n_match = 0, n_round = 0;
    const char *p = inp, *end = inp + in_len, *o = outp, *oend = outp + out_len;
    ech_tokens ids = {0}, want = {0};
    ech_buf text = {0};
    const char *name = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
    ech_buf report = {0};
    while (p < end) {
        const char *s = memmem(p, (size_t)(end - p), SEP, sep_len);
        if (!s)
            break;
        size_t len = (size_t)(s - p);
        const char *nl = memchr(o, '\n', (size_t)(oend - o));
        const char *line_end = nl ? nl : oend;
        want.n = 0;
        for (const char *q = o; q < line_end;) {
            char *e;
            long v = strtol(q, &e, 10);
            if (e == q) {
                q++;
                continue;
            }
            ech_tokens_push(&want, (ech_token)v);
            q = e;
        }
        o = nl ? nl + 1 : oend;
        ids.n = 0;
        n_cases++;
        if (ech_tokenize(tk, p, len, flags, &ids, &err)) {
            ech_buf_printf(&report, "  case %zu: error %s\n", n_cases, err.msg);
        } else if (ids.n != want.n || memcmp(ids.ids, want.ids, ids.n * sizeof *ids.ids)) {
            fflush(stdout);
            printf("  case %zu MISMATCH \"", n_cases);
            print_escaped(p, len);
            printf("\"\n    want:");
            for (size_t i = 0; i < want.n; i++)
                printf(" %d", want.ids[i]);
            printf("\n    got: ");
            for (size_t i = 0; i < ids.n; i++)
                printf(" %d", ids.ids[i]);
            printf("\n");
        } else {
            n_match++;
        }
        ech_buf_clear(&text);
        if (ech_detokenize(tk, want.ids, want.n, 0, &text, &err) == ECH_OK && text.len == len &&
            memcmp(text.data, p, len) == 0) {
            n_round++;
        } else {
            ech_buf_printf(&report, "  case %zu decodes differently: \"", n_cases);
            for (size_t i = 0; i < text.len && i < 80; i++)
                ech_buf_putc(&report, text.data[i] == '\n' ? '|' : text.data[i]);
            ech_buf_puts(&report, "\"\n");
        }
        p = s + sep_len;
    }
    printf("%s: %zu/%zu ids match, %zu/%zu decode to the input\n", name, n_match, n_cases, n_round,
           n_cases);
    if ((getenv("TOKVEC_VERBOSE") || (roundtrip && n_round != n_cases)) && report.len)
        fputs(report.data, stdout);
    int rc = n_match == n_cases && n_cases > 0 && (!roundtrip || n_round == n_cases) ? 0 : 1;
    ech_buf_free(&report);
    ech_buf_free(&text);
    ech_tokens_free(&ids);
    ech_tokens_free(&want);
    free(inp);
    free(outp);
    ech_tokenizer_free(tk);
    return rc;
}
