/* digest.c - SHA-256 through libsodium. */
#include "config.h"
#include "core/digest.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

static void to_hex(const unsigned char *d, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < crypto_hash_sha256_BYTES; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[ECH_SHA256_HEX_LEN] = '\0';
}

void ech_sha256_hex(const void *data, size_t n, char hex[ECH_SHA256_HEX_LEN + 1])
{
    crypto_hash_sha256_state st;
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&st);
    /* feed in bounded pieces: the length argument is an unsigned long long
     * but huge single calls gain nothing */
    const unsigned char *p = data;
    while (n) {
        size_t k = n > (1u << 24) ? (1u << 24) : n;
        crypto_hash_sha256_update(&st, p, k);
        p += k;
        n -= k;
    }
    crypto_hash_sha256_final(&st, d);
    to_hex(d, hex);
}

ech_status ech_sha256_file(const char *path, char hex[ECH_SHA256_HEX_LEN + 1], ech_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ech_error_set(err, errno == ENOENT ? ECH_ERR_NOT_FOUND : ECH_ERR_IO,
                             "%s: %s", path, strerror(errno));
    crypto_hash_sha256_state st;
    unsigned char d[crypto_hash_sha256_BYTES];
    static _Thread_local unsigned char buf[1 << 16];
    crypto_hash_sha256_init(&st);
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        crypto_hash_sha256_update(&st, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return ech_error_set(err, ECH_ERR_IO, "%s: read error", path);
    crypto_hash_sha256_final(&st, d);
    to_hex(d, hex);
    return ECH_OK;
}

int ech_sha256_hex_valid(const char *s)
{
    size_t i = 0;
    for (; s[i]; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return i == ECH_SHA256_HEX_LEN;
}
