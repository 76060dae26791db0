/* json.c - JSON output helpers over json-c. */
#include "config.h"
#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

json_object *ech_json_string(const char *s, size_t n)
{
    const uint8_t *u = (const uint8_t *)s;
    if (ech_utf8_valid(u, n))
        return json_object_new_string_len(s, (int)n);
    /* Worst case every byte becomes the 3-byte U+FFFD. */
    if (n > (SIZE_MAX - 1) / 3)
        return NULL;
    char *buf = malloc(n * 3 + 1);
    if (!buf)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t len = u[i] < 0x80 ? 1 : ech_utf8_decode(u + i, n - i, NULL);
        if (len) {
            memcpy(buf + o, s + i, len);
            o += len;
            i += len;
        } else {
            memcpy(buf + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    json_object *j = json_object_new_string_len(buf, (int)o);
    free(buf);
    return j;
}

char *ech_format_float(float v, char *buf, size_t n)
{
    if (fabsf(v) < 1e15f && v == (float)(int64_t)v && !(v == 0 && signbit(v))) {
        snprintf(buf, n, "%.0f", (double)v);   /* 500000, not 5e+05 */
        return buf;
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v || v != v)
            break;
    }
    return buf;
}

char *ech_format_double(double v, char *buf, size_t n)
{
    if (fabs(v) < 1e15 && v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
        snprintf(buf, n, "%.0f", v);
        return buf;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v || v != v)
            break;
    }
    return buf;
}

/* "-0" or "3" would read back as integers (losing -0.0); keep a float
 * looking like one. */
static void floatify(char *buf, size_t n)
{
    if (!strpbrk(buf, ".e") && strlen(buf) + 3 <= n)
        strcat(buf, ".0");
}

json_object *ech_json_float(float v)
{
    if (!isfinite(v))
        return NULL;   /* json-c treats a NULL member as null */
    char buf[40];
    ech_format_float(v, buf, sizeof buf);
    floatify(buf, sizeof buf);
    return json_object_new_double_s((double)v, buf);
}

json_object *ech_json_double(double v)
{
    if (!isfinite(v))
        return NULL;
    char buf[48];
    ech_format_double(v, buf, sizeof buf);
    floatify(buf, sizeof buf);
    return json_object_new_double_s(v, buf);
}

json_object *ech_json_u64(uint64_t v)
{
    return json_object_new_uint64(v);
}

const char *ech_json_line(json_object *obj)
{
    return json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}
