/* digest.h - SHA-256 of buffers and files (libsodium), as lowercase hex. */
#ifndef ECH_CORE_DIGEST_H
#define ECH_CORE_DIGEST_H

#include <stddef.h>

#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ECH_SHA256_HEX_LEN 64

/* Write the 64 hex digits and a NUL to `hex`. */
void ech_sha256_hex(const void *data, size_t n, char hex[ECH_SHA256_HEX_LEN + 1]);

/* Hash the file at `path` by streaming it (constant memory). */
ech_status ech_sha256_file(const char *path, char hex[ECH_SHA256_HEX_LEN + 1], ech_error *err);

/* 1 if `s` is 64 hex digits (either case), else 0. */
int ech_sha256_hex_valid(const char *s);

#ifdef __cplusplus
}
#endif
#endif
