/* unicode.h - the Unicode facts the tokenizers need, from generated tables.
 *
 * Categories, the White_Space set, simple lowercase and the first code point
 * of NFD come from lib/tok/unicode_tables.c, which tools/gen-unicode-tables.py
 * writes from the Unicode Character Database (the version is in
 * ech_unicode_version).  The conventions are llama.cpp's, because its
 * pre-tokenizers define the token ids we must reproduce: \s is the White_Space
 * set, code points UnicodeData.txt does not list are "unassigned" (which
 * counts as [^\s\p{L}\p{N}]), and NFD keeps only the first code point.
 *
 * Internal to libech (not installed).
 */
#ifndef ECH_TOK_UNICODE_H
#define ECH_TOK_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum {
    ECH_UCAT_UNASSIGNED = 0,
    ECH_UCAT_L = 1,   /* letter */
    ECH_UCAT_N = 2,   /* number */
    ECH_UCAT_P = 3,   /* punctuation */
    ECH_UCAT_S = 4,   /* symbol */
    ECH_UCAT_M = 5,   /* mark */
    ECH_UCAT_Z = 6,   /* separator */
    ECH_UCAT_C = 7,   /* control, format, private use, surrogate */
    ECH_UCAT_MASK = 7,
    ECH_UFLAG_WS = 8  /* White_Space */
};

#define ECH_UCD_SHIFT 7
#define ECH_UCD_MAX 0x110000u

extern const char ech_unicode_version[];
extern const uint16_t ech_ucd_stage1[ECH_UCD_MAX >> ECH_UCD_SHIFT];
extern const uint8_t ech_ucd_stage2[][1 << ECH_UCD_SHIFT];
extern const uint32_t ech_ucd_lower[][2];
extern const size_t ech_ucd_lower_n;
extern const uint32_t ech_ucd_nfd_table[][2];
extern const size_t ech_ucd_nfd_table_n;

/* Category and whitespace bits of `cp`; beyond U+10FFFF it is unassigned. */
static inline unsigned ech_ucd_flags(uint32_t cp)
{
    if (cp >= ECH_UCD_MAX)
        return ECH_UCAT_UNASSIGNED;
    return ech_ucd_stage2[ech_ucd_stage1[cp >> ECH_UCD_SHIFT]][cp & ((1u << ECH_UCD_SHIFT) - 1)];
}

static inline unsigned ech_ucd_cat(uint32_t cp) { return ech_ucd_flags(cp) & ECH_UCAT_MASK; }
static inline int ech_ucd_is_ws(uint32_t cp) { return (ech_ucd_flags(cp) & ECH_UFLAG_WS) != 0; }

/* Simple lowercase mapping; `cp` itself when it has none. */
uint32_t ech_ucd_tolower(uint32_t cp);

/* The first code point of the canonical decomposition of `cp` (itself when
 * it has none): what remains of an accented letter once its marks go. */
uint32_t ech_ucd_nfd_first(uint32_t cp);

/* Decode one code point the lenient way llama.cpp does: the lead byte alone
 * decides the length, continuation bytes are checked, overlong forms and
 * surrogates pass.  A byte that starts no sequence, or a truncated sequence,
 * yields U+FFFD and consumes one byte.  Requires n > 0; returns bytes used. */
size_t ech_ucd_decode_lax(const uint8_t *s, size_t n, uint32_t *cp);

/* Encode any code point up to 0x1FFFFF in 1-4 bytes (no validity checks, to
 * mirror ech_ucd_decode_lax); returns the length. */
size_t ech_ucd_encode_lax(uint32_t cp, uint8_t out[4]);

#endif
