/* ech-search - the nearest neighbours of query embeddings in an index file. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ech.h"

enum { OPT_K = 'k', OPT_MODEL = 'm', OPT_THREADS = 't', OPT_EF = 0x101, OPT_FILTER, OPT_FVECS, OPT_EXACT };

static const ech_cli_opt options[] = {
    {OPT_K, 'k', "k", "N", "results per query (default 10)"},
    {OPT_EF, 0, "ef", "N", "candidates per query (default: the index's efSearch); more is slower and finds more"},
    {OPT_FILTER, 0, "filter", "FIELD=PREFIX", "only results whose payload FIELD (or \"id\") starts with PREFIX"},
    {OPT_FVECS, 0, "fvecs", NULL, "the queries are .fvecs (the default for names ending in .fvecs)"},
    {OPT_EXACT, 0, "exact", NULL, "compare with every element instead of walking the graph"},
    {OPT_MODEL, 'm', "model", "FILE", "the queries are text, one per line, embedded with this model (as ech-embed does)"},
    {OPT_THREADS, 't', "threads", "N", "threads for -m (default: the number of cores)"},
    ECH_CLI_STANDARD_OPTS,
    {0, 0, NULL, NULL, NULL},
};

static ech_cli cli = {
    .prog = "ech-search",
    .usage = "INDEX [OPTION]... [QUERIES]...",
    .about = "Search an index made by ech-index for the nearest neighbours of each query\n"
             "embedding (NDJSON records with an \"embedding\", as ech-embed writes them, or\n"
             ".fvecs; from the QUERIES files or stdin), or of text lines embedded with -m.\n"
             "Prints one line per query:\n"
             "{\"query\":i,\"results\":[{\"id\":...,\"score\":...,\"text\":...}]}, nearest first;\n"
             "score is the cosine similarity, the inner product, or the squared L2 distance.",
    .opts = options,
};

typedef struct filter {
    const char *field;
    const char *prefix;
    size_t prefix_len;
} filter;

static int has_prefix(const char *s, size_t n, const filter *f)
{
    return n >= f->prefix_len && memcmp(s, f->prefix, f->prefix_len) == 0;
}

static int filter_match(const ech_index *idx, uint32_t elem, void *ctx)
{
    const filter *f = ctx;
    if (strcmp(f->field, "id") == 0) {
        ech_index_key k;
        ech_index_key_at(idx, elem, &k);
        if (k.kind == ECH_KEY_STRING)
            return has_prefix(k.str, k.len, f);
        char num[32];
        snprintf(num, sizeof num, "%llu", (unsigned long long)k.num);
        return has_prefix(num, strlen(num), f);
    }
    size_t len;
    const char *pay = ech_index_payload(idx, elem, &len);
    if (!pay)
        return 0;
    json_tokener *tok = json_tokener_new();
    json_object *o = tok ? json_tokener_parse_ex(tok, pay, (int)len) : NULL;
    json_tokener_free(tok);
    json_object *v;
    int match = 0;
    if (o && json_object_object_get_ex(o, f->field, &v) && !json_object_is_type(v, json_type_null)) {
        const char *s = json_object_get_string(v);  /* numbers too, as JSON text */
        match = has_prefix(s, strlen(s), f);
    }
    json_object_put(o);
    return match;
}

static json_object *result_json(const ech_index *idx, ech_metric metric, const ech_index_hit *h)
{
    json_object *r = json_object_new_object();
    ech_index_key k;
    ech_index_key_at(idx, h->elem, &k);
    json_object_object_add(r, "id", k.kind == ECH_KEY_STRING ? ech_json_string(k.str, k.len) : ech_json_u64(k.num));
    json_object_object_add(r, "score", ech_json_float(ech_dist_to_score(metric, h->dist)));
    size_t len;
    const char *pay = ech_index_payload(idx, h->elem, &len);
    if (pay) {
        json_tokener *tok = json_tokener_new();
        json_object *o = tok ? json_tokener_parse_ex(tok, pay, (int)len) : NULL;
        json_tokener_free(tok);
        if (o && json_object_is_type(o, json_type_object)) {
            json_object_object_foreach(o, key, val)
            {
                if (strcmp(key, "id") && strcmp(key, "score"))
                    json_object_object_add(r, key, json_object_get(val));
            }
        }
        json_object_put(o);
    }
    return r;
}

/* What every query needs: the index, its searcher and the options. */
typedef struct query_ctx {
    ech_index *idx;
    ech_index_params p;
    ech_index_searcher *s;
    ech_index_hit *hits;
    size_t k;
    uint32_t ef;
    int exact;
    filter *flt;
} query_ctx;

/* Search for vec and print the query's line; text (may be NULL) is the
 * query's own text when it was embedded here.  0, or -1 after a message. */
static int search_one(query_ctx *q, const float *vec, const ech_index_key *key, const char *text, size_t qno)
{
    ech_error err;
    size_t nh;
    ech_index_filter_fn fn = q->flt->field ? filter_match : NULL;
    ech_status st = q->exact ? ech_index_search_exact(q->idx, vec, q->k, fn, q->flt, q->hits, &nh, &err)
                             : ech_index_search(q->s, vec, q->k, q->ef, fn, q->flt, q->hits, &nh, &err);
    if (st) {
        ech_cli_error(&cli, "query %zu: %s", qno, err.msg);
        return -1;
    }
    json_object *o = json_object_new_object(), *arr = json_object_new_array();
    json_object_object_add(o, "query", json_object_new_int64((int64_t)qno));
    if (key && key->kind == ECH_KEY_STRING)
        json_object_object_add(o, "query_id", ech_json_string(key->str, key->len));
    else if (key && key->kind == ECH_KEY_U64)
        json_object_object_add(o, "query_id", ech_json_u64(key->num));
    if (text)
        json_object_object_add(o, "query_text", ech_json_string(text, strlen(text)));
    for (size_t j = 0; j < nh; j++)
        json_object_array_add(arr, result_json(q->idx, q->p.metric, &q->hits[j]));
    json_object_object_add(o, "results", arr);
    const char *line = ech_json_line(o);
    int bad = !line || fputs(line, stdout) < 0 || putchar('\n') == EOF;
    json_object_put(o);
    if (bad) {
        ech_cli_error(&cli, "write error on stdout");
        return -1;
    }
    return 0;
}

/* -m: each non-empty line of `in` (NULL: stdin) is a query text, embedded
 * with the model as ech-embed does (its pooling, normalised). */
static int text_queries(query_ctx *q, ech_embedder *e, const ech_tokenizer *tk, const char *in, size_t *qno)
{
    FILE *f = in ? fopen(in, "r") : stdin;
    if (!f) {
        ech_cli_error(&cli, "%s: %s", in, strerror(errno));
        return -1;
    }
    float *vec = malloc(sizeof(float) * ech_embedder_dim(e));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = vec ? 0 : -1;
    ech_error err;
    while (rc == 0 && (n = getline(&line, &cap, f)) != -1) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        const char *t = line;
        size_t len = (size_t)n;
        if (ech_embed_texts(e, tk, &t, &len, 1, vec, NULL, &err)) {
            ech_cli_error(&cli, "query %zu: %s", *qno, err.msg);
            rc = -1;
        } else if ((rc = search_one(q, vec, NULL, line, *qno)) == 0) {
            (*qno)++;
        }
    }
    if (rc == 0 && ferror(f)) {
        ech_cli_error(&cli, "%s: read error", in ? in : "stdin");
        rc = -1;
    }
    free(line);
    free(vec);
    if (in)
        fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned long long k = 10, ef = 0, threads = 0;
    int fvecs = -1, exact = 0;
    const char *model_path = NULL, *filter_arg = NULL;
    filter flt = {0};
    int c;
    while ((c = ech_cli_next(&cli, argc, argv)) != -1) {
        switch (c) {
        case OPT_K:
            if (ech_cli_parse_u64(&cli, "-k", cli.optarg, &k) || k < 1 || k > 100000)
                return ech_cli_usage_error(&cli, "-k must be between 1 and 100000");
            break;
        case OPT_EF:
            if (ech_cli_parse_u64(&cli, "--ef", cli.optarg, &ef) || ef < 1 || ef > ECH_INDEX_MAX_EF)
                return ech_cli_usage_error(&cli, "--ef must be between 1 and %u", ECH_INDEX_MAX_EF);
            break;
        case OPT_FILTER: {
            const char *eq = strchr(cli.optarg, '=');
            if (!eq || eq == cli.optarg)
                return ech_cli_usage_error(&cli, "--filter wants FIELD=PREFIX, not \"%s\"", cli.optarg);
            filter_arg = cli.optarg; /* copied once the options are all valid */
            break;
        }
        case OPT_FVECS: fvecs = 1; break;
        case OPT_EXACT: exact = 1; break;
        case OPT_MODEL: model_path = cli.optarg; break;
        case OPT_THREADS:
            if (ech_cli_parse_u64(&cli, "-t", cli.optarg, &threads) || threads < 1 || threads > 1024)
                return ech_cli_usage_error(&cli, "-t must be between 1 and 1024");
            break;
        case ECH_OPT_HELP: ech_cli_help(&cli, stdout); return ECH_EXIT_OK;
        case ECH_OPT_VERSION: ech_cli_version(&cli); return ECH_EXIT_OK;
        default: return ECH_EXIT_USAGE;
        }
    }
    if (cli.optind >= argc)
        return ech_cli_usage_error(&cli, "an index file is required");
    if (model_path && fvecs == 1)
        return ech_cli_usage_error(&cli, "-m reads text queries; --fvecs does not go with it");
    const char *path = argv[cli.optind++];
    if (filter_arg) {
        const char *eq = strchr(filter_arg, '=');
        if (!(flt.field = strndup(filter_arg, (size_t)(eq - filter_arg)))) {
            ech_cli_error(&cli, "out of memory");
            return ECH_EXIT_FAIL;
        }
        flt.prefix = eq + 1;
        flt.prefix_len = strlen(eq + 1);
    }
    ech_error err;
    ech_index *idx;
    if (ech_index_open(path, &idx, &err)) {
        ech_cli_error(&cli, "%s", err.msg);
        free((char *)flt.field);
        return ECH_EXIT_FAIL;
    }
    ech_index_params p;
    ech_index_get_params(idx, &p);
    ech_index_searcher *s = NULL;
    ech_index_hit *hits = malloc(k * sizeof *hits);
    int rc = ECH_EXIT_OK;
    if (!hits || ech_index_searcher_new(idx, &s, &err)) {
        ech_cli_error(&cli, "out of memory");
        rc = ECH_EXIT_FAIL;
    }
    query_ctx q = {.idx = idx, .p = p, .s = s, .hits = hits, .k = k, .ef = (uint32_t)ef, .exact = exact, .flt = &flt};
    ech_model *m = NULL;
    ech_tokenizer *tk = NULL;
    ech_embedder *e = NULL;
    if (rc == ECH_EXIT_OK && model_path) {
        ech_embed_params ep = ech_embed_default_params();
        ep.n_threads = (int)threads;
        if (ech_model_open(model_path, &m, &err) || ech_tokenizer_load(m->gguf, &tk, &err) ||
            ech_embedder_new(m, &ep, &e, &err)) {
            ech_cli_error(&cli, "%s", err.msg);
            rc = ECH_EXIT_FAIL;
        } else if (ech_embedder_dim(e) != p.dim) {
            ech_cli_error(&cli, "%s embeds %u dimensions, the index has %u (dimension mismatch)", model_path,
                          ech_embedder_dim(e), p.dim);
            rc = ECH_EXIT_FAIL;
        }
    }
    size_t qno = 0;
    for (int i = cli.optind; rc == ECH_EXIT_OK && i <= argc; i++) {
        if (i == argc && argc > cli.optind)
            break;
        const char *in = i < argc ? argv[i] : NULL;
        if (e) {
            if (text_queries(&q, e, tk, in, &qno))
                rc = ECH_EXIT_FAIL;
            continue;
        }
        ech_vec_reader *rd;
        if (ech_vec_reader_open(in, fvecs, &rd, &err)) {
            ech_cli_error(&cli, "%s", err.msg);
            rc = ECH_EXIT_FAIL;
            break;
        }
        for (;;) {
            ech_vec_record rec;
            int done;
            if (ech_vec_reader_next(rd, &rec, &done, &err)) {
                ech_cli_error(&cli, "%s", err.msg);
                rc = ECH_EXIT_FAIL;
                break;
            }
            if (done)
                break;
            if (rec.dim != p.dim) {
                ech_cli_error(&cli, "query %zu has dimension %zu, the index %u (dimension mismatch)", qno, rec.dim,
                              p.dim);
                rc = ECH_EXIT_FAIL;
                break;
            }
            if (search_one(&q, rec.vec, &rec.key, NULL, qno)) {
                rc = ECH_EXIT_FAIL;
                break;
            }
            qno++;
        }
        ech_vec_reader_close(rd);
    }
    ech_embedder_free(e);
    ech_tokenizer_free(tk);
    ech_model_close(m);
    if (fflush(stdout) != 0 && rc == ECH_EXIT_OK) {
        ech_cli_error(&cli, "write error on stdout");
        rc = ECH_EXIT_FAIL;
    }
    ech_index_searcher_free(s);
    free(hits);
    free((char *)flt.field);
    ech_index_free(idx);
    return rc;
}
