/* status.c - status codes and error details. */
#include "core/status.h"

#include <stdio.h>
#include <string.h>

static const char *const status_text[ECH_STATUS_COUNT] = {
    [ECH_OK] = "success",
    [ECH_ERR_NOMEM] = "out of memory",
    [ECH_ERR_IO] = "input/output error",
    [ECH_ERR_INVALID] = "invalid argument",
    [ECH_ERR_FORMAT] = "malformed input",
    [ECH_ERR_UNSUPPORTED] = "unsupported format or feature",
    [ECH_ERR_NOT_FOUND] = "not found",
    [ECH_ERR_RANGE] = "value out of range",
    [ECH_ERR_NET] = "network error",
    [ECH_ERR_HTTP] = "HTTP error",
    [ECH_ERR_CHECKSUM] = "checksum mismatch",
    [ECH_ERR_CANCELED] = "canceled",
};

const char *ech_strerror(ech_status s)
{
    if ((unsigned)s >= ECH_STATUS_COUNT)
        return "unknown status";
    return status_text[s];
}

ech_status ech_error_vset(ech_error *err, ech_status code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        if (fmt)
            vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        else
            snprintf(err->msg, sizeof err->msg, "%s", ech_strerror(code));
    }
    return code;
}

ech_status ech_error_set(ech_error *err, ech_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ech_error_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void ech_error_clear(ech_error *err)
{
    if (err) {
        err->code = ECH_OK;
        err->msg[0] = '\0';
    }
}
