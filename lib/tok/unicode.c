/* unicode.c - lookups over the generated Unicode tables. */
#include "config.h"

#include "tok/unicode.h"

static uint32_t pair_lookup(const uint32_t (*pairs)[2], size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pairs[mid][0] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && pairs[lo][0] == cp ? pairs[lo][1] : cp;
}

uint32_t ech_ucd_tolower(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    return pair_lookup(ech_ucd_lower, ech_ucd_lower_n, cp);
}

uint32_t ech_ucd_nfd_first(uint32_t cp)
{
    if (cp < 0xC0)
        return cp;
    /* Hangul syllables decompose arithmetically into jamo; the first is the
     * leading consonant (Unicode 15, section 3.12). */
    if (cp >= 0xAC00 && cp < 0xAC00 + 11172)
        return 0x1100 + (cp - 0xAC00) / 588;
    return pair_lookup(ech_ucd_nfd_table, ech_ucd_nfd_table_n, cp);
}

size_t ech_ucd_decode_lax(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t b = s[0];
    size_t len;
    uint32_t v;
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b < 0xC0 || b >= 0xF8)
        goto bad;
    if (b < 0xE0)
        len = 2, v = b & 0x1F;
    else if (b < 0xF0)
        len = 3, v = b & 0x0F;
    else
        len = 4, v = b & 0x07;
    if (len > n)
        goto bad;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            goto bad;
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
bad:
    *cp = 0xFFFD;
    return 1;
}

size_t ech_ucd_encode_lax(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | ((cp >> 18) & 0x07));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}
