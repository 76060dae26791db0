/* ech-tokenize - text to token ids and back with a GGUF file's vocabulary. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ech.h"

enum { OPT_MODEL = 'm', OPT_JSON = 0x101, OPT_DECODE, OPT_COUNT, OPT_NO_SPECIAL, OPT_PARSE_SPECIAL,
       OPT_LINES, OPT_RENDER_SPECIAL };

static const ech_cli_opt options[] = {
    {OPT_MODEL, 'm', "model", "FILE", "GGUF file whose vocabulary to use (vocab-only files work)"},
    {OPT_JSON, 0, "json", NULL, "print one JSON object per record: text, ids, pieces"},
    {OPT_DECODE, 'd', "decode", NULL, "read token ids and print the text they stand for"},
    {OPT_COUNT, 'c', "count", NULL, "print only the number of tokens"},
    {OPT_NO_SPECIAL, 0, "no-special", NULL, "add no BOS/EOS (CLS/SEP) tokens"},
    {OPT_PARSE_SPECIAL, 0, "parse-special", NULL, "read special-token text such as <|eot_id|> as that token"},
    {OPT_LINES, 'l', "lines", NULL, "one record per input line instead of all of stdin"},
    {OPT_RENDER_SPECIAL, 0, "render-special", NULL, "--decode: print control tokens as their text"},
    ECH_CLI_STANDARD_OPTS,
    {0, 0, NULL, NULL, NULL},
};

static ech_cli cli = {
    .prog = "ech-tokenize",
    .usage = "-m FILE [OPTION]...",
    .about = "Tokenize stdin with the vocabulary of a GGUF file and print the token ids,\n"
             "space separated on one line; or, with --decode, turn ids back into text.\n"
             "The input is taken byte for byte: `echo` adds a newline, which is tokenized too.",
    .opts = options,
};

typedef struct tool_opts {
    const char *model;
    int json, decode, count, lines, render_special;
    unsigned tok_flags;
} tool_opts;

static int read_all(FILE *f, ech_buf *b)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (ech_buf_append(b, chunk, n))
            return -1;
    return ferror(f) ? -1 : 0;
}

static int print_json(json_object *o)
{
    const char *s = ech_json_line(o);
    int rc = s ? fputs(s, stdout) >= 0 && putchar('\n') != EOF : 0;
    json_object_put(o);
    return rc ? 0 : -1;
}

static int encode_record(const ech_tokenizer *tk, const tool_opts *o, const char *text, size_t len,
                         ech_tokens *ids)
{
    ech_error err;
    ids->n = 0;
    if (ech_tokenize(tk, text, len, o->tok_flags, ids, &err)) {
        ech_cli_error(&cli, "%s", err.msg);
        return ECH_EXIT_FAIL;
    }
    if (o->json) {
        json_object *obj = json_object_new_object(), *arr = json_object_new_array();
        json_object_object_add(obj, "text", ech_json_string(text, len));
        if (o->count) {
            json_object_object_add(obj, "count", json_object_new_int64((int64_t)ids->n));
            json_object_put(arr);
        } else {
            json_object *pieces = json_object_new_array();
            for (size_t i = 0; i < ids->n; i++) {
                ech_str p = ech_tokenizer_piece(tk, ids->ids[i]);
                json_object_array_add(arr, json_object_new_int(ids->ids[i]));
                json_object_array_add(pieces, ech_json_string(p.ptr, p.len));
            }
            json_object_object_add(obj, "ids", arr);
            json_object_object_add(obj, "pieces", pieces);
        }
        return print_json(obj) ? ECH_EXIT_FAIL : ECH_EXIT_OK;
    }
    if (o->count) {
        printf("%zu\n", ids->n);
        return ECH_EXIT_OK;
    }
    for (size_t i = 0; i < ids->n; i++)
        printf(i ? " %d" : "%d", (int)ids->ids[i]);
    putchar('\n');
    return ECH_EXIT_OK;
}

/* Ids separated by whitespace or commas; brackets are ignored so that a
 * JSON array reads too. */
static int parse_ids(const char *s, size_t len, ech_tokens *ids)
{
    ids->n = 0;
    for (size_t i = 0; i < len;) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == '[' || c == ']') {
            i++;
            continue;
        }
        long v = 0;
        size_t j = i;
        while (j < len && s[j] >= '0' && s[j] <= '9' && v <= INT32_MAX)
            v = v * 10 + (s[j++] - '0');
        if (j == i || v > INT32_MAX) {
            ech_cli_error(&cli, "not a token id: \"%.*s\"", (int)(len - i > 20 ? 20 : len - i), s + i);
            return ECH_EXIT_FAIL;
        }
        if (ech_tokens_push(ids, (ech_token)v)) {
            ech_cli_error(&cli, "out of memory");
            return ECH_EXIT_FAIL;
        }
        i = j;
    }
    return ECH_EXIT_OK;
}

static int decode_record(const ech_tokenizer *tk, const tool_opts *o, const char *s, size_t len,
                         ech_tokens *ids)
{
    int rc = parse_ids(s, len, ids);
    if (rc)
        return rc;
    ech_buf text = {0};
    ech_error err;
    unsigned flags = o->render_special ? ECH_DETOK_SPECIAL : 0;
    if (ech_detokenize(tk, ids->ids, ids->n, flags, &text, &err)) {
        ech_cli_error(&cli, "%s", err.msg);
        ech_buf_free(&text);
        return ECH_EXIT_FAIL;
    }
    if (o->json) {
        json_object *obj = json_object_new_object(), *arr = json_object_new_array();
        for (size_t i = 0; i < ids->n; i++)
            json_object_array_add(arr, json_object_new_int(ids->ids[i]));
        json_object_object_add(obj, "ids", arr);
        json_object_object_add(obj, "text", ech_json_string(text.data, text.len));
        if (o->count)
            json_object_object_add(obj, "count", json_object_new_int64((int64_t)ids->n));
        rc = print_json(obj) ? ECH_EXIT_FAIL : ECH_EXIT_OK;
    } else if (o->count) {
        printf("%zu\n", text.len);
    } else {
        fwrite(text.data, 1, text.len, stdout);
        if (o->lines)
            putchar('\n');
    }
    ech_buf_free(&text);
    return rc;
}

int main(int argc, char **argv)
{
    tool_opts o = {.tok_flags = ECH_TOKENIZE_ADD_SPECIAL};
    int c;
    while ((c = ech_cli_next(&cli, argc, argv)) != -1) {
        switch (c) {
        case OPT_MODEL: o.model = cli.optarg; break;
        case OPT_JSON: o.json = 1; break;
        case OPT_DECODE: o.decode = 1; break;
        case OPT_COUNT: o.count = 1; break;
        case OPT_NO_SPECIAL: o.tok_flags &= ~(unsigned)ECH_TOKENIZE_ADD_SPECIAL; break;
        case OPT_PARSE_SPECIAL: o.tok_flags |= ECH_TOKENIZE_PARSE_SPECIAL; break;
        case OPT_LINES: o.lines = 1; break;
        case OPT_RENDER_SPECIAL: o.render_special = 1; break;
        case ECH_OPT_HELP: ech_cli_help(&cli, stdout); return ECH_EXIT_OK;
        case ECH_OPT_VERSION: ech_cli_version(&cli); return ECH_EXIT_OK;
        default: return ECH_EXIT_USAGE;
        }
    }
    if (!o.model)
        return ech_cli_usage_error(&cli, "a model is required (-m FILE)");
    if (cli.optind < argc)
        return ech_cli_usage_error(&cli, "unexpected operand \"%s\" (the text is read from stdin)",
                                   argv[cli.optind]);

    ech_tokenizer *tk;
    ech_error err;
    if (ech_tokenizer_open(o.model, &tk, &err)) {
        ech_cli_error(&cli, "%s", err.msg);
        return ECH_EXIT_FAIL;
    }
    ech_buf in = {0};
    ech_tokens ids = {0};
    int rc = ECH_EXIT_OK;
    if (read_all(stdin, &in)) {
        ech_cli_error(&cli, "reading stdin: %s", errno ? strerror(errno) : "read error");
        rc = ECH_EXIT_FAIL;
    } else if (o.lines) {
        size_t start = 0;
        while (start < in.len && rc == ECH_EXIT_OK) {
            const char *nl = memchr(in.data + start, '\n', in.len - start);
            size_t end = nl ? (size_t)(nl - in.data) : in.len;
            rc = o.decode ? decode_record(tk, &o, in.data + start, end - start, &ids)
                          : encode_record(tk, &o, in.data + start, end - start, &ids);
            start = end + 1;
        }
    } else {
        rc = o.decode ? decode_record(tk, &o, in.data, in.len, &ids)
                      : encode_record(tk, &o, in.data, in.len, &ids);
    }
    ech_tokens_free(&ids);
    ech_buf_free(&in);
    ech_tokenizer_free(tk);
    if (fflush(stdout) != 0) {
        ech_cli_error(&cli, "write error on stdout");
        rc = ECH_EXIT_FAIL;
    }
    return rc;
}
