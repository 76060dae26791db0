/* status.h - status codes and error details shared by all of libech.
 *
 * Every fallible libech function returns an ech_status.  Functions that can
 * say more (parsers, I/O) also take an optional `ech_error *` that receives a
 * human-readable message naming what went wrong and where.  The library never
 * prints, exits or aborts on bad input: it reports, and the caller decides.
 */
#ifndef ECH_CORE_STATUS_H
#define ECH_CORE_STATUS_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ech_status {
    ECH_OK = 0,
    ECH_ERR_NOMEM,        /* an allocation failed */
    ECH_ERR_IO,           /* the OS refused a read, write, open or map */
    ECH_ERR_INVALID,      /* the caller passed an invalid argument */
    ECH_ERR_FORMAT,       /* the input is malformed (truncated, inconsistent) */
    ECH_ERR_UNSUPPORTED,  /* well-formed, but a version or feature we do not handle */
    ECH_ERR_NOT_FOUND,    /* a key, tensor, file or resource does not exist */
    ECH_ERR_RANGE,        /* a value is out of range or a size would overflow */
    ECH_ERR_NET,          /* a network transfer failed (DNS, connect, reset) */
    ECH_ERR_HTTP,         /* the server answered with an HTTP error status */
    ECH_ERR_CHECKSUM,     /* data did not match its digest */
    ECH_ERR_CANCELED,     /* the operation was stopped on request */
    ECH_STATUS_COUNT
} ech_status;

/* A static English description of `s`; never NULL, never to be freed. */
const char *ech_strerror(ech_status s);

/* Details of a failure.  Callers allocate it (usually on the stack); libech
 * fills it.  `msg` is NUL-terminated and already includes the reason. */
typedef struct ech_error {
    ech_status code;
    char msg[320];
} ech_error;

/* Record `code` and a printf-style message in `err` (which may be NULL) and
 * return `code`, so a failing path can say `return ech_error_set(...)`. */
ech_status ech_error_set(ech_error *err, ech_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
ech_status ech_error_vset(ech_error *err, ech_status code, const char *fmt, va_list ap);

/* Reset `err` to ECH_OK with an empty message. */
void ech_error_clear(ech_error *err);

#ifdef __cplusplus
}
#endif
#endif
