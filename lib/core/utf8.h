/* utf8.h - the UTF-8 rules everything else relies on.
 *
 * Model files, prompts and network input carry arbitrary bytes; these
 * helpers tell a valid sequence from a broken one (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF).
 */
#ifndef ECH_CORE_UTF8_H
#define ECH_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Length (1-4) of the valid UTF-8 sequence at the start of s[0..n), storing
 * its code point in *cp (may be NULL); 0 if the bytes there are not valid. */
size_t ech_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

/* Encode `cp` into out[0..4); returns the length, 0 for an invalid code point. */
size_t ech_utf8_encode(uint32_t cp, uint8_t out[4]);

/* 1 if all of s[0..n) is valid UTF-8, else 0. */
int ech_utf8_valid(const uint8_t *s, size_t n);

#ifdef __cplusplus
}
#endif
#endif
