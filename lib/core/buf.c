/* buf.c - growable byte buffer. */
#include "core/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ech_status ech_buf_reserve(ech_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - 1 - b->len)
        return ECH_ERR_RANGE;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return ECH_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return ECH_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return ECH_OK;
}

ech_status ech_buf_append(ech_buf *b, const void *p, size_t n)
{
    ech_status st = ech_buf_reserve(b, n);
    if (st != ECH_OK)
        return st;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return ECH_OK;
}

ech_status ech_buf_puts(ech_buf *b, const char *s)
{
    return ech_buf_append(b, s, strlen(s));
}

ech_status ech_buf_putc(ech_buf *b, char c)
{
    return ech_buf_append(b, &c, 1);
}

ech_status ech_buf_printf(ech_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return ECH_ERR_INVALID;
    ech_status st = ech_buf_reserve(b, (size_t)n);
    if (st != ECH_OK)
        return st;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return ECH_OK;
}

void ech_buf_clear(ech_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void ech_buf_free(ech_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *ech_buf_steal(ech_buf *b)
{
    char *p = b->data;
    if (!p)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
