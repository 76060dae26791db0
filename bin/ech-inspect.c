/* ech-inspect - show what is inside GGUF model files. */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ech.h"

enum { OPT_JSON = 0x101, OPT_FULL, OPT_TENSORS, OPT_METADATA, OPT_KEY, OPT_SHA256 };

static const ech_cli_opt options[] = {
    {OPT_JSON, 0, "json", NULL, "print JSON (one document per file, NDJSON for several)"},
    {OPT_FULL, 0, "full", NULL, "do not abbreviate long arrays and strings"},
    {OPT_TENSORS, 0, "tensors", NULL, "show only the tensor table"},
    {OPT_METADATA, 0, "metadata", NULL, "show only the metadata table"},
    {OPT_KEY, 'k', "key", "KEY", "print the value of one metadata key"},
    {OPT_SHA256, 0, "sha256", NULL, "also print the SHA-256 of the whole file"},
    ECH_CLI_STANDARD_OPTS,
    {0, 0, NULL, NULL, NULL},
};

static ech_cli cli = {
    .prog = "ech-inspect",
    .usage = "[OPTION]... [FILE]...",
    .about = "Print a summary, the metadata and the tensor table of GGUF model files.\n"
             "With no FILE, read a GGUF file, or a list of paths (one per line), from stdin.",
    .opts = options,
};

typedef struct inspect_opts {
    int json, full, tensors, metadata, sha256;
    const char *key;
} inspect_opts;

enum { SHORT_ITEMS = 8, SHORT_CHARS = 60, JSON_ITEMS = 32 };

static void human_size(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4)
        v /= 1024, u++;
    snprintf(buf, len, u ? "%.2f %s" : "%.0f %s", v, units[u]);
}

static void human_count(uint64_t n, char *buf, size_t len)
{
    if (n >= 1000000000)
        snprintf(buf, len, "%.2f B", (double)n / 1e9);
    else if (n >= 1000000)
        snprintf(buf, len, "%.2f M", (double)n / 1e6);
    else if (n >= 1000)
        snprintf(buf, len, "%.2f K", (double)n / 1e3);
    else
        snprintf(buf, len, "%" PRIu64, n);
}

static void print_summary(const char *path, const ech_gguf *g, const char *sha)
{
    ech_model_summary s;
    char a[64], b[64];
    ech_gguf_summarize(g, &s);
    printf("%s\n", path);
#define STR(x) (int)(x).len, (x).ptr ? (x).ptr : ""
    printf("  %-17s %.*s\n", "architecture", STR(s.architecture));
    if (s.name.ptr)
        printf("  %-17s %.*s\n", "name", STR(s.name));
    human_count(s.n_params, a, sizeof a);
    printf("  %-17s %s (%" PRIu64 ")\n", "parameters", a, s.n_params);
    if (s.file_type >= 0)
        printf("  %-17s %s (%" PRId64 ")\n", "file type",
               s.file_type_name ? s.file_type_name : "unknown", s.file_type);
    if (s.context_length)
        printf("  %-17s %" PRIu64 "\n", "context length", s.context_length);
    if (s.n_layers)
        printf("  %-17s %" PRIu64 "\n", "layers", s.n_layers);
    if (s.n_embd)
        printf("  %-17s %" PRIu64 "\n", "embedding", s.n_embd);
    if (s.n_heads)
        printf("  %-17s %" PRIu64 " (%" PRIu64 " kv)\n", "heads", s.n_heads,
               s.n_heads_kv ? s.n_heads_kv : s.n_heads);
    if (s.n_vocab || s.tokenizer_model.ptr)
        printf("  %-17s %" PRIu64 " tokens, tokenizer %.*s\n", "vocabulary", s.n_vocab,
               s.tokenizer_model.ptr ? (int)s.tokenizer_model.len : 1,
               s.tokenizer_model.ptr ? s.tokenizer_model.ptr : "-");
    printf("  %-17s %s\n", "chat template", s.has_chat_template ? "yes" : "no");
    human_size(ech_gguf_size(g), a, sizeof a);
    human_size(s.tensor_bytes, b, sizeof b);
    printf("  %-17s %zu bytes (%s; tensors %s)\n", "size", ech_gguf_size(g), a, b);
    if (s.n_params)
        printf("  %-17s %.2f\n", "bits per weight", s.bits_per_weight);
    printf("  %-17s v%" PRIu32 ", %zu keys, %zu tensors, alignment %" PRIu32 ", data at %" PRIu64 "\n",
           "gguf", ech_gguf_version(g), ech_gguf_n_kv(g), ech_gguf_n_tensors(g),
           ech_gguf_alignment(g), ech_gguf_data_offset(g));
    if (sha)
        printf("  %-17s %s\n", "sha256", sha);
#undef STR
}

static void type_label(const ech_gguf_value *v, char *buf, size_t len)
{
    if (v->type == ECH_GGUF_ARR)
        snprintf(buf, len, "arr[%s]", ech_gguf_type_name(v->a.type));
    else
        snprintf(buf, len, "%s", ech_gguf_type_name(v->type));
}

static int print_metadata(const ech_gguf *g, const inspect_opts *o)
{
    size_t w = 3;
    for (size_t i = 0; i < ech_gguf_n_kv(g); i++) {
        size_t n = strlen(ech_gguf_kv_at(g, i)->key);
        if (n > w)
            w = n;
    }
    if (w > 48)
        w = 48;
    printf("\nmetadata (%zu):\n  %-*s %-10s %s\n", ech_gguf_n_kv(g), (int)w, "KEY", "TYPE", "VALUE");
    for (size_t i = 0; i < ech_gguf_n_kv(g); i++) {
        const ech_gguf_kv *kv = ech_gguf_kv_at(g, i);
        char type[32];
        type_label(&kv->value, type, sizeof type);
        char *text = ech_gguf_value_to_text(&kv->value, o->full ? 0 : SHORT_ITEMS,
                                            o->full ? 0 : SHORT_CHARS);
        if (!text)
            return -1;
        printf("  %-*s %-10s %s\n", (int)w, kv->key, type, text);
        free(text);
    }
    return 0;
}

static void print_tensors(const ech_gguf *g)
{
    size_t w = 4;
    for (size_t i = 0; i < ech_gguf_n_tensors(g); i++) {
        size_t n = strlen(ech_gguf_tensor_at(g, i)->name);
        if (n > w)
            w = n;
    }
    if (w > 48)
        w = 48;
    printf("\ntensors (%zu):\n  %-*s %-8s %-24s %12s %12s\n", ech_gguf_n_tensors(g), (int)w, "NAME",
           "TYPE", "SHAPE", "OFFSET", "BYTES");
    for (size_t i = 0; i < ech_gguf_n_tensors(g); i++) {
        const ech_gguf_tensor *t = ech_gguf_tensor_at(g, i);
        char shape[96] = "";
        size_t len = 0;
        for (uint32_t d = 0; d < t->n_dims && len < sizeof shape; d++)
            len += (size_t)snprintf(shape + len, sizeof shape - len, "%s%" PRIu64, d ? " x " : "", t->ne[d]);
        printf("  %-*s %-8s %-24s %12" PRIu64 " %12" PRIu64 "\n", (int)w, t->name, ech_type_name(t->type),
               shape, ech_gguf_data_offset(g) + t->offset, t->nbytes);
    }
}

/* --key: scalars plainly (strings as raw bytes), arrays one element a line. */
static int print_key(const ech_gguf *g, const char *path, const inspect_opts *o)
{
    const ech_gguf_kv *kv = ech_gguf_find(g, o->key);
    if (!kv) {
        ech_cli_error(&cli, "%s: no metadata key '%s'", path, o->key);
        return ECH_EXIT_FAIL;
    }
    const ech_gguf_value *v = &kv->value;
    if (o->json || (v->type == ECH_GGUF_ARR && v->a.type == ECH_GGUF_ARR)) {
        json_object *j = ech_gguf_value_to_json(v, 0);
        printf("%s\n", j ? ech_json_line(j) : "null");
        json_object_put(j);
    } else if (v->type == ECH_GGUF_STR) {
        fwrite(v->s.ptr, 1, v->s.len, stdout);
        putchar('\n');
    } else if (v->type == ECH_GGUF_ARR) {
        for (uint64_t i = 0; i < v->a.n; i++) {
            if (v->a.type == ECH_GGUF_STR) {
                fwrite(v->a.strs[i].ptr, 1, v->a.strs[i].len, stdout);
                putchar('\n');
            } else {
                ech_gguf_value item = {.type = ECH_GGUF_ARR, .a = v->a};
                item.a.raw = (const uint8_t *)v->a.raw + i * ech_gguf_type_size(v->a.type);
                item.a.n = 1;
                char *text = ech_gguf_value_to_text(&item, 0, 0);
                if (text) {   /* "[x]" -> "x" */
                    text[strlen(text) - 1] = '\0';
                    printf("%s\n", text + 1);
                }
                free(text);
            }
        }
    } else {
        char *text = ech_gguf_value_to_text(v, 0, 0);
        printf("%s\n", text ? text : "");
        free(text);
    }
    return ECH_EXIT_OK;
}

static int print_json(const ech_gguf *g, const char *path, const char *sha, const inspect_opts *o)
{
    json_object *doc = json_object_new_object();
    if (!doc)
        return ECH_EXIT_FAIL;
    uint64_t items = o->full ? 0 : JSON_ITEMS;
    int all = !o->tensors && !o->metadata;
    json_object_object_add(doc, "path", ech_json_string(path, strlen(path)));
    if (all) {
        ech_model_summary s;
        ech_gguf_summarize(g, &s);
        json_object_object_add(doc, "size", ech_json_u64(ech_gguf_size(g)));
        json_object_object_add(doc, "version", json_object_new_int64(ech_gguf_version(g)));
        json_object_object_add(doc, "alignment", json_object_new_int64(ech_gguf_alignment(g)));
        json_object_object_add(doc, "data_offset", ech_json_u64(ech_gguf_data_offset(g)));
        json_object_object_add(doc, "metadata_count", ech_json_u64(ech_gguf_n_kv(g)));
        json_object_object_add(doc, "tensor_count", ech_json_u64(ech_gguf_n_tensors(g)));
        json_object_object_add(doc, "summary", ech_model_summary_to_json(&s));
        if (sha)
            json_object_object_add(doc, "sha256", json_object_new_string(sha));
    }
    if (all || o->metadata) {
        json_object *md = json_object_new_array_ext((int)ech_gguf_n_kv(g));
        for (size_t i = 0; i < ech_gguf_n_kv(g); i++)
            json_object_array_add(md, ech_gguf_kv_to_json(ech_gguf_kv_at(g, i), items));
        json_object_object_add(doc, "metadata", md);
    }
    if (all || o->tensors) {
        json_object *ts = json_object_new_array_ext((int)ech_gguf_n_tensors(g));
        for (size_t i = 0; i < ech_gguf_n_tensors(g); i++)
            json_object_array_add(ts, ech_gguf_tensor_to_json(g, ech_gguf_tensor_at(g, i)));
        json_object_object_add(doc, "tensors", ts);
    }
    const char *line = ech_json_line(doc);
    int rc = line && printf("%s\n", line) >= 0 ? ECH_EXIT_OK : ECH_EXIT_FAIL;
    json_object_put(doc);
    return rc;
}

static int inspect(const ech_gguf *g, const char *path, const inspect_opts *o, int first)
{
    if (o->key)
        return print_key(g, path, o);
    char sha[ECH_SHA256_HEX_LEN + 1];
    if (o->sha256)
        ech_sha256_hex(ech_gguf_bytes(g), ech_gguf_size(g), sha);
    if (o->json)
        return print_json(g, path, o->sha256 ? sha : NULL, o);
    if (!first)
        putchar('\n');
    int all = !o->tensors && !o->metadata;
    if (all)
        print_summary(path, g, o->sha256 ? sha : NULL);
    else
        printf("%s\n", path);
    if ((all || o->metadata) && print_metadata(g, o) != 0)
        return ECH_EXIT_FAIL;
    if (all || o->tensors)
        print_tensors(g);
    return ECH_EXIT_OK;
}

static int inspect_path(const char *path, const inspect_opts *o, int first)
{
    ech_gguf *g;
    ech_error err;
    if (ech_gguf_open(path, &g, &err) != ECH_OK) {
        ech_cli_error(&cli, "%s", err.msg);
        return ECH_EXIT_FAIL;
    }
    int rc = inspect(g, path, o, first);
    ech_gguf_close(g);
    return rc;
}

/* No operands: stdin is either a GGUF image or a list of paths. */
static int inspect_stdin(const inspect_opts *o)
{
    ech_mapfile in;
    ech_error err;
    if (isatty(0))
        return ech_cli_usage_error(&cli, "no FILE given and stdin is a terminal");
    if (ech_mapfile_open_fd(&in, 0, "<stdin>", 1, &err) != ECH_OK) {
        ech_cli_error(&cli, "%s", err.msg);
        return ECH_EXIT_FAIL;
    }
    int rc = ECH_EXIT_OK;
    if (in.size >= 4 && memcmp(in.data, "GGUF", 4) == 0) {
        ech_gguf *g;
        if (ech_gguf_parse(in.data, in.size, &g, &err) != ECH_OK) {
            ech_cli_error(&cli, "<stdin>: %s", err.msg);
            rc = ECH_EXIT_FAIL;
        } else {
            rc = inspect(g, "<stdin>", o, 1);
            ech_gguf_close(g);
        }
    } else {
        const char *p = (const char *)in.data, *end = p + in.size;
        int first = 1;
        while (p && p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
            if (len && p[len - 1] == '\r')
                len--;
            if (len) {
                char *path = strndup(p, len);
                if (!path || inspect_path(path, o, first) != ECH_EXIT_OK)
                    rc = ECH_EXIT_FAIL;
                first = 0;
                free(path);
            }
            p = nl ? nl + 1 : end;
        }
    }
    ech_mapfile_close(&in);
    return rc;
}

int main(int argc, char **argv)
{
    inspect_opts o = {0};
    int c;
    while ((c = ech_cli_next(&cli, argc, argv)) != -1) {
        switch (c) {
        case OPT_JSON: o.json = 1; break;
        case OPT_FULL: o.full = 1; break;
        case OPT_TENSORS: o.tensors = 1; break;
        case OPT_METADATA: o.metadata = 1; break;
        case OPT_KEY: o.key = cli.optarg; break;
        case OPT_SHA256: o.sha256 = 1; break;
        case ECH_OPT_HELP: ech_cli_help(&cli, stdout); return ECH_EXIT_OK;
        case ECH_OPT_VERSION: ech_cli_version(&cli); return ECH_EXIT_OK;
        default: return ECH_EXIT_USAGE;
        }
    }
    int rc;
    if (cli.optind >= argc) {
        rc = inspect_stdin(&o);
    } else {
        rc = ECH_EXIT_OK;
        for (int i = cli.optind; i < argc; i++)
            if (inspect_path(argv[i], &o, i == cli.optind) != ECH_EXIT_OK)
                rc = ECH_EXIT_FAIL;
    }
    if (fflush(stdout) != 0) {
        ech_cli_error(&cli, "write error on stdout");
        rc = ECH_EXIT_FAIL;
    }
    return rc;
}
