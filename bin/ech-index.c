/* ech-index - build, extend, prune and compact an HNSW vector index file. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "ech.h"

enum { OPT_OUTPUT = 'o', OPT_M = 'M', OPT_THREADS = 't', OPT_VERBOSE = 'v', OPT_METRIC = 0x101,
       OPT_EFC, OPT_EFS, OPT_FVECS, OPT_APPEND, OPT_DELETE, OPT_COMPACT, OPT_SEED };

static const ech_cli_opt options[] = {
    {OPT_OUTPUT, 'o', "output", "FILE", "the index file to write (or to change, with --append/--delete/--compact)"},
    {OPT_METRIC, 0, "metric", "NAME", "cosine (default), l2 (squared Euclidean) or ip (inner product)"},
    {OPT_M, 'M', "M", "N", "links per node on the upper levels, 2N on level 0 (default 16)"},
    {OPT_EFC, 0, "ef-construction", "N", "candidates while linking a node (default 200)"},
    {OPT_EFS, 0, "ef-search", "N", "candidates per query stored as the default for ech-search (default 64)"},
    {OPT_THREADS, 't', "threads", "N", "build with N threads (default: all cores)"},
    {OPT_SEED, 0, "seed", "N", "seed of the level draws (default 100)"},
    {OPT_FVECS, 0, "fvecs", NULL, "the input is .fvecs (the default for names ending in .fvecs)"},
    {OPT_APPEND, 0, "append", NULL, "add the input to the existing index FILE"},
    {OPT_DELETE, 0, "delete", "ID", "tombstone the element with this id (repeatable; no input is read "
                                    "unless --append is given too)"},
    {OPT_COMPACT, 0, "compact", NULL, "rebuild FILE without its deleted elements"},
    {OPT_VERBOSE, 'v', "verbose", NULL, "say what was done on stderr"},
    ECH_CLI_STANDARD_OPTS,
    {0, 0, NULL, NULL, NULL},
};

static ech_cli cli = {
    .prog = "ech-index",
    .usage = "-o FILE [OPTION]... [INPUT]...",
    .about = "Build an HNSW vector index from embeddings: NDJSON records such as ech-embed\n"
             "writes ({\"id\":..., \"embedding\":[...], \"text\":..., \"source\":...}) or .fvecs,\n"
             "from the INPUT files or stdin.  \"text\", \"source\" and \"chunk\" are stored with\n"
             "each element; records without an \"id\" are numbered.  The file is replaced\n"
             "atomically: on any error the old one is left as it was.",
    .opts = options,
};

/* Everything read, in buffers that grow; items point into them once reading ends. */
typedef struct records {
    float *vecs;
    size_t n, cap;
    uint32_t dim;
    ech_key_kind kind;
    uint64_t *nums;
    ech_buf strs, pays;
    size_t *str_off, *pay_off;  /* n + 1 */
} records;

static void records_free(records *r)
{
    free(r->vecs);
    free(r->nums);
    free(r->str_off);
    free(r->pay_off);
    ech_buf_free(&r->strs);
    ech_buf_free(&r->pays);
}

static int records_push(records *r, const ech_vec_record *rec, uint64_t auto_id)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        float *v = realloc(r->vecs, cap * r->dim * sizeof *v);
        if (v)
            r->vecs = v;
        uint64_t *nums = realloc(r->nums, cap * sizeof *nums);
        if (nums)
            r->nums = nums;
        size_t *so = realloc(r->str_off, (cap + 1) * sizeof *so);
        if (so)
            r->str_off = so;
        size_t *po = realloc(r->pay_off, (cap + 1) * sizeof *po);
        if (po)
            r->pay_off = po;
        if (!v || !nums || !so || !po)
            return -1;
        if (r->cap == 0)
            r->str_off[0] = r->pay_off[0] = 0;
        r->cap = cap;
    }
    memcpy(r->vecs + r->n * r->dim, rec->vec, r->dim * sizeof *r->vecs);
    if (rec->key.kind == ECH_KEY_STRING) {
        if (ech_buf_append(&r->strs, rec->key.str, rec->key.len))
            return -1;
        r->nums[r->n] = 0;
    } else {
        r->nums[r->n] = rec->key.kind == ECH_KEY_U64 ? rec->key.num : auto_id;
    }
    if (rec->payload && ech_buf_append(&r->pays, rec->payload, rec->payload_len))
        return -1;
    r->str_off[r->n + 1] = r->strs.len;
    r->pay_off[r->n + 1] = r->pays.len;
    r->n++;
    return 0;
}

static int read_input(const char *path, int fvecs, records *r, uint64_t first_id)
{
    ech_vec_reader *rd;
    ech_error err;
    if (ech_vec_reader_open(path, fvecs, &rd, &err)) {
        ech_cli_error(&cli, "%s", err.msg);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0;; i++) {
        ech_vec_record rec;
        int done;
        if (ech_vec_reader_next(rd, &rec, &done, &err)) {
            ech_cli_error(&cli, "%s", err.msg);
            rc = -1;
            break;
        }
        if (done)
            break;
        const char *name = path && strcmp(path, "-") ? path : "stdin";
        if (r->dim == 0)
            r->dim = (uint32_t)rec.dim;
        if (rec.dim != r->dim) {
            ech_cli_error(&cli, "%s: record %zu has dimension %zu, expected %u (dimension mismatch)", name, i + 1,
                          rec.dim, r->dim);
            rc = -1;
            break;
        }
        ech_key_kind kind = rec.key.kind == ECH_KEY_STRING ? ECH_KEY_STRING : ECH_KEY_U64;
        if (r->kind == ECH_KEY_NONE)
            r->kind = kind;
        if (kind != r->kind) {
            ech_cli_error(&cli, "%s: record %zu: %s id after %s ids (one kind per index)", name, i + 1,
                          kind == ECH_KEY_STRING ? "a string" : "a number or missing", r->kind == ECH_KEY_STRING ? "string" : "number");
            rc = -1;
            break;
        }
        if (records_push(r, &rec, first_id + r->n)) {
            ech_cli_error(&cli, "out of memory");
            rc = -1;
            break;
        }
    }
    ech_vec_reader_close(rd);
    return rc;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int parse_u32(const char *opt, const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    unsigned long long v;
    if (ech_cli_parse_u64(&cli, opt, s, &v))
        return -1;
    if (v < lo || v > hi) {
        ech_cli_usage_error(&cli, "%s must be between %u and %u", opt, lo, hi);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* deletes: room for argc --delete arguments, owned by main */
static int run(int argc, char **argv, const char **deletes)
{
    ech_index_params p;
    ech_index_params_default(&p);
    const char *out = NULL;
    int fvecs = -1, append = 0, compact = 0, verbose = 0, threads = 0, set_params = 0;
    size_t n_del = 0;
    int c;
    uint32_t u, efs = 0;
    while ((c = ech_cli_next(&cli, argc, argv)) != -1) {
        switch (c) {
        case OPT_OUTPUT: out = cli.optarg; break;
        case OPT_METRIC: {
            int m = ech_metric_parse(cli.optarg);
            if (m < 0)
                return ech_cli_usage_error(&cli, "unknown metric \"%s\" (cosine, l2 or ip)", cli.optarg);
            p.metric = (ech_metric)m;
            set_params = 1;
            break;
        }
        case OPT_M:
            if (parse_u32("-M", cli.optarg, 2, ECH_INDEX_MAX_M, &p.M))
                return ECH_EXIT_USAGE;
            set_params = 1;
            break;
        case OPT_EFC:
            if (parse_u32("--ef-construction", cli.optarg, 1, ECH_INDEX_MAX_EF, &p.ef_construction))
                return ECH_EXIT_USAGE;
            set_params = 1;
            break;
        case OPT_EFS:
            if (parse_u32("--ef-search", cli.optarg, 1, ECH_INDEX_MAX_EF, &efs))
                return ECH_EXIT_USAGE;
            break;
        case OPT_THREADS:
            if (parse_u32("-t", cli.optarg, 1, 4096, &u))
                return ECH_EXIT_USAGE;
            threads = (int)u;
            break;
        case OPT_SEED: {
            unsigned long long v;
            if (ech_cli_parse_u64(&cli, "--seed", cli.optarg, &v))
                return ECH_EXIT_USAGE;
            p.seed = v;
            set_params = 1;
            break;
        }
        case OPT_FVECS: fvecs = 1; break;
        case OPT_APPEND: append = 1; break;
        case OPT_DELETE: deletes[n_del++] = cli.optarg; break;
        case OPT_COMPACT: compact = 1; break;
        case OPT_VERBOSE: verbose = 1; break;
        case ECH_OPT_HELP: ech_cli_help(&cli, stdout); return ECH_EXIT_OK;
        case ECH_OPT_VERSION: ech_cli_version(&cli); return ECH_EXIT_OK;
        default: return ECH_EXIT_USAGE;
        }
    }
    if (!out)
        return ech_cli_usage_error(&cli, "an output file is required (-o FILE)");
    int modify = append || n_del || compact;
    if (modify && set_params)
        return ech_cli_usage_error(&cli, "--metric, -M, --ef-construction and --seed are fixed when the index "
                                         "is built; they cannot change with --append/--delete/--compact");
    int read_inputs = !modify || append;
    if (!read_inputs && cli.optind < argc)
        return ech_cli_usage_error(&cli, "unexpected operand \"%s\" (--delete and --compact read no input; add "
                                         "--append to add records too)", argv[cli.optind]);

    ech_error err;
    ech_index *idx = NULL;
    int rc = ECH_EXIT_FAIL;
    records r = {0};
    double t0 = now();
    if (modify) {
        if (ech_index_open(out, &idx, &err)) {
            ech_cli_error(&cli, "%s", err.msg);
            goto done;
        }
        ech_index_params ip;
        ech_index_get_params(idx, &ip);
        r.dim = ip.dim;
        r.kind = ech_index_key_kind(idx);
        p = ip;
    }
    /* deletes first, so that --delete ID --append can replace an element */
    for (size_t i = 0; i < n_del; i++) {
        ech_index_key key = {.kind = ech_index_key_kind(idx), .str = deletes[i], .len = strlen(deletes[i])};
        if (key.kind == ECH_KEY_U64) {
            char *end;
            errno = 0;
            key.num = strtoull(deletes[i], &end, 10);
            if (errno || end == deletes[i] || *end || deletes[i][0] == '-') {
                ech_cli_error(&cli, "--delete %s: the index has number ids", deletes[i]);
                goto done;
            }
        }
        if (ech_index_delete(idx, &key, &err)) {
            ech_cli_error(&cli, "--delete %s: %s", deletes[i], err.msg);
            goto done;
        }
    }
    if (read_inputs) {
        uint64_t first_id = idx ? ech_index_size(idx) : 0;
        if (cli.optind == argc) {
            if (read_input(NULL, fvecs, &r, first_id))
                goto done;
        }
        for (int i = cli.optind; i < argc; i++)
            if (read_input(argv[i], fvecs, &r, first_id))
                goto done;
        if (idx) {
            ech_index_params ip;
            ech_index_get_params(idx, &ip);
            if (r.n && r.dim != ip.dim) {
                ech_cli_error(&cli, "the input has dimension %u, the index %u (dimension mismatch)", r.dim, ip.dim);
                goto done;
            }
        } else {
            if (r.n == 0) {
                ech_cli_error(&cli, "no records in the input");
                goto done;
            }
            p.dim = r.dim;
            if (ech_index_new(&p, &idx, &err)) {
                ech_cli_error(&cli, "%s", err.msg);
                goto done;
            }
        }
        ech_index_item *items = malloc((r.n ? r.n : 1) * sizeof *items);
        if (!items) {
            ech_cli_error(&cli, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < r.n; i++) {
            items[i].key = r.kind == ECH_KEY_STRING
                               ? (ech_index_key){.kind = ECH_KEY_STRING, .str = r.strs.data + r.str_off[i],
                                                 .len = r.str_off[i + 1] - r.str_off[i]}
                               : (ech_index_key){.kind = ECH_KEY_U64, .num = r.nums[i]};
            items[i].vec = r.vecs + i * r.dim;
            items[i].payload = r.pay_off[i + 1] > r.pay_off[i] ? r.pays.data + r.pay_off[i] : NULL;
            items[i].payload_len = r.pay_off[i + 1] - r.pay_off[i];
        }
        ech_status st = ech_index_add(idx, items, r.n, threads, &err);
        free(items);
        if (st) {
            ech_cli_error(&cli, "%s", err.msg);
            goto done;
        }
    }
    if (compact) {
        ech_index *cidx;
        if (ech_index_compact(idx, threads, &cidx, &err)) {
            ech_cli_error(&cli, "%s", err.msg);
            goto done;
        }
        ech_index_free(idx);
        idx = cidx;
    }
    if (efs)
        ech_index_set_ef_search(idx, efs);
    double t1 = now();
    if (ech_index_save(idx, out, &err)) {
        ech_cli_error(&cli, "%s", err.msg);
        goto done;
    }
    if (verbose) {
        ech_index_params ip;
        ech_index_get_params(idx, &ip);
        fprintf(stderr, "%s: %s: %zu elements (%zu live), %u dimensions, %s, M %u, efConstruction %u; "
                        "%zu records read, %zu deleted; %.2f s, written in %.2f s\n",
                cli.prog, out, ech_index_size(idx), ech_index_live(idx), ip.dim, ech_metric_name(ip.metric), ip.M,
                ip.ef_construction, r.n, n_del, t1 - t0, now() - t1);
    }
    rc = ECH_EXIT_OK;
done:
    records_free(&r);
    ech_index_free(idx);
    return rc;
}

int main(int argc, char **argv)
{
    const char **deletes = calloc((size_t)argc, sizeof *deletes);
    if (!deletes) {
        ech_cli_error(&cli, "out of memory");
        return ECH_EXIT_FAIL;
    }
    int rc = run(argc, argv, deletes);
    free(deletes);
    return rc;
}
