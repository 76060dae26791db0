/* ech-embed - text embeddings with a GGUF model, as NDJSON or .fvecs. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "ech.h"

enum {
    OPT_MODEL = 'm', OPT_THREADS = 't', OPT_CTX = 'c', OPT_BATCH = 'b', OPT_VERBOSE = 'v',
    OPT_POOLING = 0x101, OPT_NO_NORMALIZE, OPT_CHUNK, OPT_OVERLAP, OPT_LINES, OPT_TRUNCATE, OPT_BINARY, OPT_NO_TEXT,
    OPT_START_ID,
};

static const ech_cli_opt options[] = {
    {OPT_MODEL, 'm', "model", "FILE", "embedding model (GGUF: bert, nomic-bert, llama, qwen2, qwen3)"},
    {OPT_LINES, 0, "lines", NULL, "every line of the input is a text of its own (blank lines are skipped)"},
    {OPT_CHUNK, 0, "chunk", "N", "split every text into chunks of at most N tokens"},
    {OPT_OVERLAP, 0, "overlap", "M", "with --chunk: consecutive chunks share about M tokens (default 0)"},
    {OPT_TRUNCATE, 0, "truncate", NULL, "embed only the start of a text longer than the context (else: error)"},
    {OPT_POOLING, 0, "pooling", "HOW", "mean, cls or last (default: the model's; mean if it has none)"},
    {OPT_NO_NORMALIZE, 0, "no-normalize", NULL, "do not scale the embeddings to unit length"},
    {OPT_BINARY, 0, "binary", NULL, "write float32 .fvecs (dimension, then the floats) instead of NDJSON"},
    {OPT_NO_TEXT, 0, "no-text", NULL, "leave the text out of the NDJSON records"},
    {OPT_START_ID, 0, "start-id", "N", "the first record's id (default 0)"},
    {OPT_CTX, 'c', "ctx", "N", "longest text in tokens (default: the model's, at most 8192)"},
    {OPT_BATCH, 'b', "batch", "N", "tokens per forward pass, several texts together (default 2048)"},
    {OPT_THREADS, 't', "threads", "N", "threads (default: the number of cores)"},
    {OPT_VERBOSE, 'v', "verbose", NULL, "print the model, counts and timings to stderr"},
    ECH_CLI_STANDARD_OPTS,
    {0, 0, NULL, NULL, NULL},
};

static ech_cli cli = {
    .prog = "ech-embed",
    .usage = "-m MODEL [OPTION]... [FILE]...",
    .about = "Print an embedding of each FILE (one text per file), or of each line with --lines.\n"
             "With no FILE, or when FILE is -, read standard input (all of it is one text).\n"
             "Output: one NDJSON record per text or chunk,\n"
             "  {\"id\":N,\"source\":FILE,\"chunk\":K,\"text\":...,\"embedding\":[...]}",
    .opts = options,
};

/* one text waiting for its embedding */
typedef struct pending {
    uint64_t id;
    const char *source;       /* borrowed from argv or a literal */
    uint64_t line;            /* --lines: 1-based line number, else 0 */
    uint32_t chunk;
    int truncated;
    char *text;               /* owned */
    size_t text_len;
    ech_tokens toks;          /* owned */
} pending;

typedef struct state {
    ech_embedder *e;
    const ech_tokenizer *tk;
    uint32_t chunk, overlap, n_special;
    int lines, truncate, binary, no_text, failed, write_error;
    uint64_t next_id, n_texts, n_tokens;
    pending *q;
    size_t nq, capq;
    uint64_t q_tokens;
    float *out;
    size_t out_rows;
    ech_buf line;             /* one NDJSON record */
} state;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_record(state *s, const pending *p, const float *v, uint32_t dim)
{
    if (s->binary) {
        int32_t d = (int32_t)dim;
        if (fwrite(&d, sizeof d, 1, stdout) != 1 || fwrite(v, sizeof(float), dim, stdout) != dim)
            return -1;
        return 0;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", ech_json_u64(p->id));
    json_object_object_add(o, "source", ech_json_string(p->source, strlen(p->source)));
    if (p->line)
        json_object_object_add(o, "line", ech_json_u64(p->line));
    json_object_object_add(o, "chunk", json_object_new_int64(p->chunk));
    if (p->truncated)
        json_object_object_add(o, "truncated", json_object_new_boolean(1));
    if (!s->no_text)
        json_object_object_add(o, "text", ech_json_string(p->text, p->text_len));
    /* the head as json-c writes it, then the floats in their shortest exact form */
    const char *head = ech_json_line(o);
    size_t hl = strlen(head);
    s->line.len = 0;
    ech_status st = ech_buf_append(&s->line, head, hl - 1);
    json_object_put(o);
    st = st ? st : ech_buf_append(&s->line, ",\"embedding\":[", 14);
    char num[32];
    for (uint32_t i = 0; st == ECH_OK && i < dim; i++) {
        ech_format_float(v[i], num, sizeof num);
        if (i)
            st = ech_buf_append(&s->line, ",", 1);
        st = st ? st : ech_buf_append(&s->line, num, strlen(num));
    }
    st = st ? st : ech_buf_append(&s->line, "]}\n", 3);
    if (st != ECH_OK || fwrite(s->line.data, 1, s->line.len, stdout) != s->line.len)
        return -1;
    return 0;
}

/* Embed what is queued and print it in order. */
static int flush_queue(state *s)
{
    if (!s->nq)
        return 0;
    const uint32_t dim = ech_embedder_dim(s->e);
    const ech_token **seq = malloc(s->nq * sizeof *seq);
    uint32_t *n = malloc(s->nq * sizeof *n);
    if (s->out_rows < s->nq) {
        free(s->out);
        s->out = malloc(sizeof(float) * s->nq * dim);
        s->out_rows = s->out ? s->nq : 0;
    }
    int rc = 0;
    ech_error err;
    if (!seq || !n || !s->out) {
        ech_cli_error(&cli, "out of memory");
        rc = -1;
    } else {
        for (size_t i = 0; i < s->nq; i++) {
            seq[i] = s->q[i].toks.ids;
            n[i] = (uint32_t)s->q[i].toks.n;
        }
        if (ech_embed_tokens(s->e, seq, n, s->nq, s->out, &err) != ECH_OK) {
            ech_cli_error(&cli, "%s", err.msg);
            rc = -1;
        }
    }
    for (size_t i = 0; rc == 0 && i < s->nq; i++) {
        if (write_record(s, &s->q[i], s->out + i * dim, dim) != 0) {
            s->write_error = 1;
            rc = -1;
        }
        s->n_texts++;
        s->n_tokens += s->q[i].toks.n;
    }
    if (rc == 0 && fflush(stdout) != 0) {
        s->write_error = 1;
        rc = -1;
    }
    for (size_t i = 0; i < s->nq; i++) {
        free(s->q[i].text);
        ech_tokens_free(&s->q[i].toks);
    }
    s->nq = 0;
    s->q_tokens = 0;
    free(seq);
    free(n);
    return rc;
}

/* Queue one text (span of a document) to embed; flush when a batch is full. */
static int enqueue(state *s, const char *source, uint64_t line, uint32_t chunk, int truncated, const char *text,
                   size_t len, ech_tokens *toks)
{
    if (s->nq == s->capq) {
        size_t nc = s->capq ? 2 * s->capq : 64;
        pending *p = realloc(s->q, nc * sizeof *p);
        if (!p) {
            ech_cli_error(&cli, "out of memory");
            return -1;
        }
        s->q = p;
        s->capq = nc;
    }
    pending *p = &s->q[s->nq];
    memset(p, 0, sizeof *p);
    p->text = malloc(len + 1);
    if (!p->text) {
        ech_cli_error(&cli, "out of memory");
        return -1;
    }
    memcpy(p->text, text, len);
    p->text[len] = '\0';
    p->text_len = len;
    p->id = s->next_id++;
    p->source = source;
    p->line = line;
    p->chunk = chunk;
    p->truncated = truncated;
    p->toks = *toks;
    memset(toks, 0, sizeof *toks);
    s->nq++;
    s->q_tokens += p->toks.n;
    if (s->q_tokens >= 8192 || s->nq >= 512)
        return flush_queue(s);
    return 0;
}

static int tokenize(state *s, const char *text, size_t len, ech_tokens *t)
{
    ech_error err;
    t->n = 0;
    if (ech_tokenize(s->tk, text, len, ECH_TOKENIZE_ADD_SPECIAL, t, &err) != ECH_OK) {
        ech_cli_error(&cli, "%s", err.msg);
        return -1;
    }
    return 0;
}

/* where: "FILE" or "FILE:LINE" for messages */
static void where(char *buf, size_t n, const char *source, uint64_t line)
{
    if (line)
        snprintf(buf, n, "%s:%llu", source, (unsigned long long)line);
    else
        snprintf(buf, n, "%s", source);
}

/* One text: embedded whole, in chunks, truncated, or refused. */
static int document(state *s, const char *source, uint64_t line, const char *text, size_t len)
{
    /* the newline that ends a file is not part of its text */
    if (len && text[len - 1] == '\n')
        len--;
    if (len && text[len - 1] == '\r')
        len--;
    size_t k = 0;
    while (k < len && strchr(" \t\n\r\f\v", text[k]))
        k++;
    char at[4200];
    where(at, sizeof at, source, line);
    if (k == len) {
        if (!s->lines)
            fprintf(stderr, "%s: %s: no text, nothing to embed\n", cli.prog, at);
        return 0;
    }
    const uint32_t n_ctx = ech_embedder_n_ctx(s->e);
    ech_tokens t = {0};
    int rc = 0;
    if (!s->chunk) {
        if (tokenize(s, text, len, &t) != 0)
            return -1;
        if (t.n <= n_ctx)
            return enqueue(s, source, line, 0, 0, text, len, &t);
        if (!s->truncate) {
            ech_cli_error(&cli, "%s: %zu tokens, more than the model's context of %u; use --chunk N to split "
                          "it or --truncate to embed only its start", at, t.n, n_ctx);
            ech_tokens_free(&t);
            s->failed = 1;
            return 0;
        }
    }
    /* chunks, or the first chunk of a text that is too long (--truncate) */
    const uint32_t room = n_ctx > s->n_special ? n_ctx - s->n_special : 1;
    const uint32_t max = s->chunk && s->chunk < room ? s->chunk : room;
    ech_span *sp = NULL;
    size_t nsp = 0;
    ech_error err;
    if (ech_embed_chunks(s->tk, text, len, max, s->chunk && s->overlap < max ? s->overlap : 0, &sp, &nsp, &err) !=
        ECH_OK) {
        ech_cli_error(&cli, "%s: %s", at, err.msg);
        ech_tokens_free(&t);
        s->failed = 1;
        return 0;
    }
    if (!s->chunk && nsp > 1)
        nsp = 1;
    for (size_t i = 0; rc == 0 && i < nsp; i++) {
        if ((rc = tokenize(s, text + sp[i].off, sp[i].len, &t)) == 0)
            rc = enqueue(s, source, line, (uint32_t)i, !s->chunk, text + sp[i].off, sp[i].len, &t);
    }
    free(sp);
    ech_tokens_free(&t);
    return rc;
}

static int input(state *s, const char *path)
{
    const int is_stdin = !strcmp(path, "-");
    const char *source = path;
    if (s->lines) {
        FILE *f = is_stdin ? stdin : fopen(path, "rb");
        if (!f) {
            /* like cat: say so, go on with the other files, exit 1 */
            ech_cli_error(&cli, "%s: %s", path, strerror(errno));
            s->failed = 1;
            return 0;
        }
        char *buf = NULL;
        size_t cap = 0;
        ssize_t n;
        uint64_t lineno = 0;
        int rc = 0;
        while (rc == 0 && (n = getline(&buf, &cap, f)) >= 0) {
            lineno++;
            rc = document(s, source, lineno, buf, (size_t)n);
        }
        if (rc == 0 && ferror(f)) {
            ech_cli_error(&cli, "%s: %s", path, strerror(errno));
            rc = -1;
        }
        free(buf);
        if (!is_stdin)
            fclose(f);
        return rc;
    }
    ech_mapfile mf;
    ech_error err;
    ech_status st = is_stdin ? ech_mapfile_open_fd(&mf, 0, "<stdin>", 1, &err) : ech_mapfile_open(&mf, path, &err);
    if (st != ECH_OK) {
        ech_cli_error(&cli, "%s", err.msg);
        s->failed = 1;
        return 0;
    }
    int rc = document(s, source, 0, mf.data ? (const char *)mf.data : "", mf.size);
    ech_mapfile_close(&mf);
    return rc;
}

static int parse_u32(const char *opt, const char *s, unsigned long long lo, unsigned long long hi, uint32_t *out)
{
    unsigned long long v;
    if (ech_cli_parse_u64(&cli, opt, s, &v) != 0)
        return -1;
    if (v < lo || v > hi) {
        ech_cli_usage_error(&cli, "%s: expected %llu to %llu, got %s", opt, lo, hi, s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL;
    ech_embed_params ep = ech_embed_default_params();
    state s = {0};
    int verbose = 0, overlap_set = 0;
    uint32_t v32;
    unsigned long long start_id = 0;
    ech_error err;
    int c;
    while ((c = ech_cli_next(&cli, argc, argv)) != -1) {
        const char *a = cli.optarg;
        switch (c) {
        case OPT_MODEL: model_path = a; break;
        case OPT_LINES: s.lines = 1; break;
        case OPT_CHUNK: if (parse_u32("--chunk", a, 1, 1u << 24, &s.chunk)) return ECH_EXIT_USAGE; break;
        case OPT_OVERLAP: if (parse_u32("--overlap", a, 0, 1u << 24, &s.overlap)) return ECH_EXIT_USAGE; overlap_set = 1; break;
        case OPT_TRUNCATE: s.truncate = 1; break;
        case OPT_POOLING:
            if (ech_pooling_parse(a, &ep.pooling, &err) != ECH_OK || ep.pooling == ECH_POOLING_MODEL)
                return ech_cli_usage_error(&cli, "--pooling: expected mean, cls or last, got '%s'", a);
            break;
        case OPT_NO_NORMALIZE: ep.normalize = false; break;
        case OPT_BINARY: s.binary = 1; break;
        case OPT_NO_TEXT: s.no_text = 1; break;
        case OPT_START_ID: if (ech_cli_parse_u64(&cli, "--start-id", a, &start_id)) return ECH_EXIT_USAGE; break;
        case OPT_CTX: if (parse_u32("--ctx", a, 1, 1u << 20, &ep.n_ctx)) return ECH_EXIT_USAGE; break;
        case OPT_BATCH: if (parse_u32("--batch", a, 1, 1u << 20, &ep.n_batch)) return ECH_EXIT_USAGE; break;
        case OPT_THREADS: if (parse_u32("-t", a, 1, 1024, &v32)) return ECH_EXIT_USAGE; ep.n_threads = (int)v32; break;
        case OPT_VERBOSE: verbose = 1; break;
        case ECH_OPT_HELP: ech_cli_help(&cli, stdout); return ECH_EXIT_OK;
        case ECH_OPT_VERSION: ech_cli_version(&cli); return ECH_EXIT_OK;
        default: return ECH_EXIT_USAGE;
        }
    }
    if (!model_path)
        return ech_cli_usage_error(&cli, "no model given (-m FILE)");
    if (overlap_set && !s.chunk)
        return ech_cli_usage_error(&cli, "--overlap needs --chunk");
    if (s.chunk && s.overlap >= s.chunk)
        return ech_cli_usage_error(&cli, "--overlap %u must be smaller than --chunk %u", s.overlap, s.chunk);
    if (s.chunk && s.truncate)
        return ech_cli_usage_error(&cli, "--chunk and --truncate do not go together");
    s.next_id = start_id;

    double t0 = now_s();
    ech_model *m = NULL;
    ech_tokenizer *tk = NULL;
    if (ech_model_open(model_path, &m, &err) != ECH_OK || ech_tokenizer_load(m->gguf, &tk, &err) != ECH_OK ||
        ech_embedder_new(m, &ep, &s.e, &err) != ECH_OK) {
        ech_cli_error(&cli, "%s", err.msg);
        ech_tokenizer_free(tk);
        ech_model_close(m);
        return ECH_EXIT_FAIL;
    }
    s.tk = tk;
    s.n_special = ech_embed_n_special(tk);
    if (s.chunk && s.chunk + s.n_special > ech_embedder_n_ctx(s.e))
        fprintf(stderr, "%s: --chunk %u and %u special tokens exceed the context of %u; chunks of %u tokens\n",
                cli.prog, s.chunk, s.n_special, ech_embedder_n_ctx(s.e), ech_embedder_n_ctx(s.e) - s.n_special);
    if (verbose)
        fprintf(stderr, "%s: %s (%s), %u dimensions, %s pooling%s, context %u\n", cli.prog, model_path,
                ech_arch_name(m->hp.arch), ech_embedder_dim(s.e), ech_pooling_name(ech_embedder_pooling(s.e)),
                ep.normalize ? ", normalised" : "", ech_embedder_n_ctx(s.e));
    double t1 = now_s();
    int rc = 0;
    if (cli.optind >= argc)
        rc = input(&s, "-");
    for (int i = cli.optind; rc == 0 && i < argc; i++)
        rc = input(&s, argv[i]);
    if (rc == 0)
        rc = flush_queue(&s);
    if (s.write_error)
        ech_cli_error(&cli, "write error: %s", strerror(errno));
    double t2 = now_s();
    if (verbose)
        fprintf(stderr, "%s: %llu texts, %llu tokens in %.3f s (%.1f texts/s, %.0f tokens/s); load %.3f s\n", cli.prog,
                (unsigned long long)s.n_texts, (unsigned long long)s.n_tokens, t2 - t1,
                (double)s.n_texts / (t2 - t1 > 0 ? t2 - t1 : 1), (double)s.n_tokens / (t2 - t1 > 0 ? t2 - t1 : 1),
                t1 - t0);
    for (size_t i = 0; i < s.nq; i++) {
        free(s.q[i].text);
        ech_tokens_free(&s.q[i].toks);
    }
    free(s.q);
    free(s.out);
    ech_buf_free(&s.line);
    ech_embedder_free(s.e);
    ech_tokenizer_free(tk);
    ech_model_close(m);
    return rc != 0 || s.failed ? ECH_EXIT_FAIL : ECH_EXIT_OK;
}
