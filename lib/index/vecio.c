/* vecio.c - NDJSON embedding records (json-c) and .fvecs images. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "core/json.h"
#include "core/mapfile.h"
#include "index/vecio.h"

void ech_vec_scratch_free(ech_vec_scratch *sc)
{
    free(sc->v);
    ech_buf_free(&sc->id);
    ech_buf_free(&sc->payload);
    memset(sc, 0, sizeof *sc);
}

static ech_status parse_vector(json_object *arr, ech_vec_scratch *sc, size_t *dim, ech_error *err)
{
    size_t n = json_object_array_length(arr);
    if (n == 0)
        return ech_error_set(err, ECH_ERR_FORMAT, "the embedding is empty");
    if (n > ECH_INDEX_MAX_DIM)
        return ech_error_set(err, ECH_ERR_FORMAT, "the embedding has %zu values (at most %u)", n,
                             ECH_INDEX_MAX_DIM);
    if (n > sc->cap) {
        float *v = realloc(sc->v, n * sizeof *v);
        if (!v)
            return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
        sc->v = v, sc->cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *x = json_object_array_get_idx(arr, i);
        json_type t = json_object_get_type(x);
        if (t != json_type_double && t != json_type_int)
            return ech_error_set(err, ECH_ERR_FORMAT, "embedding value %zu is not a number", i);
        double d = json_object_get_double(x);
        float f = (float)d;
        if (!isfinite(d) || !isfinite(f))
            return ech_error_set(err, ECH_ERR_FORMAT, "embedding value %zu is NaN or infinite", i);
        sc->v[i] = f;
    }
    *dim = n;
    return ECH_OK;
}

ech_status ech_vec_parse_line(const char *line, size_t len, ech_vec_scratch *sc, ech_vec_record *rec,
                              ech_error *err)
{
    memset(rec, 0, sizeof *rec);
    if (len > ECH_VEC_MAX_LINE)
        return ech_error_set(err, ECH_ERR_FORMAT, "the line is longer than %u bytes", ECH_VEC_MAX_LINE);
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    json_object *o = json_tokener_parse_ex(tok, line, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = (size_t)json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!o || jerr != json_tokener_success) {
        json_object_put(o);
        return ech_error_set(err, ECH_ERR_FORMAT, "invalid JSON: %s",
                             jerr == json_tokener_continue ? "unexpected end of line" : json_tokener_error_desc(jerr));
    }
    for (size_t i = used; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n') {
            json_object_put(o);
            return ech_error_set(err, ECH_ERR_FORMAT, "invalid JSON: text after the value at byte %zu", i);
        }
    ech_status st = ECH_OK;
    if (json_object_is_type(o, json_type_array)) {
        st = parse_vector(o, sc, &rec->dim, err);
        rec->vec = sc->v;
        json_object_put(o);
        return st;
    }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return ech_error_set(err, ECH_ERR_FORMAT, "a record must be a JSON object or array");
    }
    json_object *emb, *id;
    if (!json_object_object_get_ex(o, "embedding", &emb) || !json_object_is_type(emb, json_type_array)) {
        json_object_put(o);
        return ech_error_set(err, ECH_ERR_FORMAT, "the record has no \"embedding\" array");
    }
    st = parse_vector(emb, sc, &rec->dim, err);
    rec->vec = sc->v;
    if (!st && json_object_object_get_ex(o, "id", &id)) {
        if (json_object_is_type(id, json_type_string)) {
            ech_buf_clear(&sc->id);
            size_t n = (size_t)json_object_get_string_len(id);
            if (n == 0 || n > ECH_INDEX_MAX_KEY)
                st = ech_error_set(err, ECH_ERR_FORMAT, "a string id must have 1 to %u bytes", ECH_INDEX_MAX_KEY);
            else if (ech_buf_append(&sc->id, json_object_get_string(id), n))
                st = ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
            rec->key = (ech_index_key){.kind = ECH_KEY_STRING, .str = sc->id.data, .len = sc->id.len};
        } else if (json_object_is_type(id, json_type_int)) {
            /* json-c keeps integers up to UINT64_MAX exactly */
            if (json_object_get_int64(id) < 0)
                st = ech_error_set(err, ECH_ERR_FORMAT, "a number id must not be negative");
            rec->key = (ech_index_key){.kind = ECH_KEY_U64, .num = json_object_get_uint64(id)};
        } else {
            st = ech_error_set(err, ECH_ERR_FORMAT, "\"id\" must be a non-negative integer or a string");
        }
    }
    /* the payload: text, source, chunk */
    static const char *const fields[] = {"text", "source", "chunk"};
    json_object *pay = NULL;
    for (size_t i = 0; !st && i < 3; i++) {
        json_object *v;
        if (!json_object_object_get_ex(o, fields[i], &v) || json_object_is_type(v, json_type_null))
            continue;
        if (!pay && !(pay = json_object_new_object())) {
            st = ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
            break;
        }
        json_object_object_add(pay, fields[i], json_object_get(v));
    }
    if (!st && pay) {
        const char *s = ech_json_line(pay);
        ech_buf_clear(&sc->payload);
        if (!s || ech_buf_puts(&sc->payload, s))
            st = ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
        rec->payload = sc->payload.data;
        rec->payload_len = sc->payload.len;
    }
    json_object_put(pay);
    json_object_put(o);
    return st;
}

ech_status ech_fvecs_check(const void *data, size_t size, uint32_t *dim, size_t *count, ech_error *err)
{
    const uint8_t *p = data;
    *dim = 0;
    *count = 0;
    if (size == 0)
        return ECH_OK;
    if (size < 4)
        return ech_error_set(err, ECH_ERR_FORMAT, "fvecs: truncated record at byte 0");
    int32_t d;
    memcpy(&d, p, 4);
    if (d < 1 || (uint32_t)d > ECH_INDEX_MAX_DIM)
        return ech_error_set(err, ECH_ERR_FORMAT, "fvecs: dimension %d at byte 0 is out of range (1..%u)", (int)d,
                             ECH_INDEX_MAX_DIM);
    size_t rec = 4 + 4 * (size_t)d;
    size_t n = size / rec;
    for (size_t i = 0; i < n; i++) {
        int32_t di;
        memcpy(&di, p + i * rec, 4);
        if (di != d)
            return ech_error_set(err, ECH_ERR_FORMAT, "fvecs: record %zu at byte %zu has dimension %d, not %d", i,
                                 i * rec, (int)di, (int)d);
    }
    if (size % rec)
        return ech_error_set(err, ECH_ERR_FORMAT, "fvecs: truncated record %zu at byte %zu (%zu of %zu bytes)", n,
                             n * rec, size % rec, rec);
    *dim = (uint32_t)d;
    *count = n;
    return ECH_OK;
}

const float *ech_fvecs_at(const void *data, uint32_t dim, size_t i)
{
    return (const float *)(const void *)((const uint8_t *)data + i * (4 + 4 * (size_t)dim) + 4);
}

/* ---- readers --------------------------------------------------------------- */

struct ech_vec_reader {
    const char *name;
    FILE *f;               /* NDJSON */
    int own_f;
    char *line;
    size_t line_cap;
    size_t lineno;
    ech_vec_scratch sc;
    ech_mapfile map;       /* .fvecs */
    int fvecs;
    uint32_t dim;
    size_t count, next;
};

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

ech_status ech_vec_reader_open(const char *path, int fvecs, ech_vec_reader **out, ech_error *err)
{
    *out = NULL;
    int is_stdin = !path || strcmp(path, "-") == 0;
    ech_vec_reader *r = calloc(1, sizeof *r);
    if (!r)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    r->name = is_stdin ? "stdin" : path;
    r->fvecs = fvecs == 1 || (fvecs < 0 && !is_stdin && ends_with(path, ".fvecs"));
    ech_status st = ECH_OK;
    if (r->fvecs) {
        if (is_stdin)
            st = ech_mapfile_open_fd(&r->map, 0, "stdin", 1, err);
        else
            st = ech_mapfile_open(&r->map, path, err);
        if (!st && ech_fvecs_check(r->map.data, r->map.size, &r->dim, &r->count, err)) {
            char msg[sizeof err->msg];
            memcpy(msg, err->msg, sizeof msg);
            st = ech_error_set(err, ECH_ERR_FORMAT, "%s: %.*s", r->name, (int)(sizeof msg - 64), msg);
        }
        /* records are 4-byte aligned in a mapping; a copied stream is malloc'ed */
    } else if (is_stdin) {
        r->f = stdin;
    } else {
        r->f = fopen(path, "r");
        r->own_f = 1;
        if (!r->f)
            st = ech_error_set(err, ECH_ERR_IO, "%s: %s", path, strerror(errno));
    }
    if (st) {
        ech_vec_reader_close(r);
        return st;
    }
    *out = r;
    return ECH_OK;
}

ech_status ech_vec_reader_next(ech_vec_reader *r, ech_vec_record *rec, int *done, ech_error *err)
{
    memset(rec, 0, sizeof *rec);
    *done = 0;
    if (r->fvecs) {
        if (r->next >= r->count) {
            *done = 1;
            return ECH_OK;
        }
        rec->vec = ech_fvecs_at(r->map.data, r->dim, r->next);
        rec->dim = r->dim;
        for (uint32_t i = 0; i < r->dim; i++)
            if (!isfinite(rec->vec[i]))
                return ech_error_set(err, ECH_ERR_FORMAT, "%s: record %zu: value %u is NaN or infinite", r->name,
                                     r->next, i);
        r->next++;
        return ECH_OK;
    }
    for (;;) {
        errno = 0;
        ssize_t n = getline(&r->line, &r->line_cap, r->f);
        if (n < 0) {
            if (ferror(r->f))
                return ech_error_set(err, ECH_ERR_IO, "%s: read error: %s", r->name, strerror(errno));
            *done = 1;
            return ECH_OK;
        }
        r->lineno++;
        size_t len = (size_t)n;
        int blank = 1;
        for (size_t i = 0; i < len && blank; i++)
            blank = r->line[i] == ' ' || r->line[i] == '\t' || r->line[i] == '\r' || r->line[i] == '\n';
        if (blank)
            continue;
        ech_error e;
        ech_status st = ech_vec_parse_line(r->line, len, &r->sc, rec, &e);
        if (st)
            return ech_error_set(err, st, "%s:%zu: %.*s", r->name, r->lineno, (int)(sizeof e.msg - 64), e.msg);
        return ECH_OK;
    }
}

void ech_vec_reader_close(ech_vec_reader *r)
{
    if (!r)
        return;
    if (r->own_f && r->f)
        fclose(r->f);
    free(r->line);
    ech_vec_scratch_free(&r->sc);
    ech_mapfile_close(&r->map);
    free(r);
}
