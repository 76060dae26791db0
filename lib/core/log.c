/* log.c - route diagnostics to the program's callback. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

static ech_log_fn log_fn;
static void *log_user;
static ech_log_level log_max = ECH_LOG_WARN;

void ech_log_set(ech_log_fn fn, void *user, ech_log_level max_level)
{
    log_fn = fn;
    log_user = user;
    log_max = max_level;
}

void ech_log(ech_log_level level, const char *fmt, ...)
{
    if (!log_fn || level > log_max)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_fn(level, buf, log_user);
}
