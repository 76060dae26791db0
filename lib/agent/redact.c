/* redact.c - secret values replaced in text. */
#include "config.h"

#include "agent/redact.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"

extern char **environ;

enum { MIN_SECRET = 6 };

static const char REDACTED[] = "[REDACTED]";

int ech_secret_name(const char *name, size_t len)
{
    static const char *const words[] = {"KEY", "TOKEN", "SECRET", "PASSWORD"};
    for (size_t w = 0; w < sizeof words / sizeof *words; w++) {
        size_t wl = strlen(words[w]);
        for (size_t i = 0; i + wl <= len; i++)
            if (strncasecmp(name + i, words[w], wl) == 0)
                return 1;
    }
    return 0;
}

static int plain_value(const char *v)
{
    if (strcasecmp(v, "true") == 0 || strcasecmp(v, "false") == 0)
        return 1;
    for (; *v; v++)
        if (*v < '0' || *v > '9')
            return 0;
    return 1;
}

ech_status ech_secrets_add(ech_secrets *s, const char *value)
{
    size_t len = value ? strlen(value) : 0;
    if (len < MIN_SECRET || plain_value(value))
        return ECH_OK;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], value) == 0)
            return ECH_OK;
    char **v = realloc(s->v, (s->n + 1) * sizeof *v);
    if (!v)
        return ECH_ERR_NOMEM;
    s->v = v;
    char *copy = strdup(value);
    if (!copy)
        return ECH_ERR_NOMEM;
    /* keep longest first */
    size_t at = s->n;
    while (at > 0 && strlen(s->v[at - 1]) < len) {
        s->v[at] = s->v[at - 1];
        at--;
    }
    s->v[at] = copy;
    s->n++;
    return ECH_OK;
}

ech_status ech_secrets_from_env(ech_secrets *s)
{
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq && ech_secret_name(*e, (size_t)(eq - *e)) && ech_secrets_add(s, eq + 1) != ECH_OK)
            return ECH_ERR_NOMEM;
    }
    return ECH_OK;
}

char *ech_secrets_redact(const ech_secrets *s, const char *text, size_t n, size_t *out_len)
{
    ech_buf b = {0};
    if (ech_buf_reserve(&b, n) != ECH_OK)
        return NULL;
    size_t i = 0;
    while (i < n) {
        size_t hit = 0;
        for (size_t k = 0; k < s->n && !hit; k++) {
            size_t l = strlen(s->v[k]);
            if (l <= n - i && memcmp(text + i, s->v[k], l) == 0)
                hit = l;
        }
        ech_status st = hit ? ech_buf_append(&b, REDACTED, sizeof REDACTED - 1) : ech_buf_putc(&b, text[i]);
        if (st != ECH_OK) {
            ech_buf_free(&b);
            return NULL;
        }
        i += hit ? hit : 1;
    }
    if (out_len)
        *out_len = b.len;
    return ech_buf_steal(&b);
}

void ech_secrets_free(ech_secrets *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}
