/* t-core.c - unit tests for lib/core: status, arena, buf, utf8, json, digest, mapfile. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ech.h"
#include "tap.h"

static void test_status(void)
{
    is_str(ech_strerror(ECH_OK), "success", "strerror(OK)");
    is_str(ech_strerror(ECH_ERR_FORMAT), "malformed input", "strerror(FORMAT)");
    is_str(ech_strerror((ech_status)999), "unknown status", "strerror(out of range)");
    for (int s = 0; s < ECH_STATUS_COUNT; s++)
        ok(ech_strerror((ech_status)s)[0] != '\0', "strerror(%d) is not empty", s);
    ech_error e;
    is_int(ech_error_set(&e, ECH_ERR_RANGE, "x=%d", 42), ECH_ERR_RANGE, "error_set returns code");
    is_str(e.msg, "x=42", "error_set formats");
    is_int(ech_error_set(NULL, ECH_ERR_IO, "ignored"), ECH_ERR_IO, "error_set(NULL) is safe");
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    ech_error_set(&e, ECH_ERR_IO, "%s", big);
    is_int(strlen(e.msg), sizeof e.msg - 1, "long messages are truncated, NUL-terminated");
}

static void test_arena(void)
{
    ech_arena a;
    ech_arena_init(&a, 128);
    char *p = ech_arena_alloc(&a, 10, 1);
    ok(p != NULL, "arena alloc");
    void *q = ech_arena_alloc(&a, 8, 64);
    ok(q && ((uintptr_t)q & 63) == 0, "arena honours alignment 64");
    void *big = ech_arena_alloc(&a, 100000, 16);
    ok(big && ((uintptr_t)big & 15) == 0, "arena serves requests larger than a block");
    memset(big, 0xAB, 100000);
    ok(ech_arena_alloc(&a, 8, 3) == NULL, "non-power-of-two alignment is refused");
    ok(ech_arena_alloc(&a, SIZE_MAX - 8, 16) == NULL, "overflowing size is refused");
    ok(ech_arena_calloc(&a, SIZE_MAX / 2, 4, 0) == NULL, "calloc overflow is refused");
    int *z = ech_arena_calloc(&a, 100, sizeof(int), 0);
    int zero = 1;
    for (int i = 0; z && i < 100; i++)
        zero &= z[i] == 0;
    ok(z && zero, "calloc zero-fills");
    char *s = ech_arena_strndup(&a, "hello world", 5);
    is_str(s, "hello", "strndup copies n bytes and terminates");
    ech_arena_reset(&a);
    is_int(a.allocated, 128, "reset keeps only the first block");
    ok(ech_arena_alloc(&a, 16, 0) != NULL, "alloc after reset");
    ech_arena_free(&a);
    ok(a.head == NULL && a.allocated == 0, "free empties the arena");
    ech_arena_free(&a);
    ok(1, "double free of an arena is harmless");
}

static void test_buf(void)
{
    ech_buf b = {0};
    ech_buf_puts(&b, "abc");
    ech_buf_putc(&b, 'd');
    ech_buf_printf(&b, "%d-%s", 12, "x");
    is_str(b.data, "abcd12-x", "buf append/printf");
    is_int(b.len, 8, "buf length");
    ech_buf_append(&b, "\0z", 2);
    is_int(b.len, 10, "buf holds NUL bytes");
    ech_buf_clear(&b);
    is_int(b.len, 0, "buf clear");
    for (int i = 0; i < 10000; i++)
        ech_buf_putc(&b, 'x');
    is_int(b.len, 10000, "buf grows");
    char *s = ech_buf_steal(&b);
    ok(s && strlen(s) == 10000 && b.data == NULL, "buf steal");
    free(s);
    char *e = ech_buf_steal(&b);
    ok(e && e[0] == 0, "steal of an empty buf gives an empty string");
    free(e);
}

static void test_utf8(void)
{
    uint32_t cp;
    is_int(ech_utf8_decode((const uint8_t *)"A", 1, &cp), 1, "ascii");
    is_int(ech_utf8_decode((const uint8_t *)"\xC3\xA9", 2, &cp), 2, "2-byte");
    is_int(cp, 0xE9, "2-byte value");
    is_int(ech_utf8_decode((const uint8_t *)"\xF0\x9F\x98\x80", 4, &cp), 4, "4-byte emoji");
    is_int(cp, 0x1F600, "emoji value");
    is_int(ech_utf8_decode((const uint8_t *)"\xC0\x80", 2, &cp), 0, "overlong NUL refused");
    is_int(ech_utf8_decode((const uint8_t *)"\xED\xA0\x80", 3, &cp), 0, "surrogate refused");
    is_int(ech_utf8_decode((const uint8_t *)"\xF4\x90\x80\x80", 4, &cp), 0, "above U+10FFFF refused");
    is_int(ech_utf8_decode((const uint8_t *)"\xE2\x82", 2, &cp), 0, "truncated refused");
    is_int(ech_utf8_decode((const uint8_t *)"\x80", 1, &cp), 0, "lone continuation refused");
    uint8_t out[4];
    is_int(ech_utf8_encode(0x20AC, out), 3, "encode euro");
    ok(memcmp(out, "\xE2\x82\xAC", 3) == 0, "encode euro bytes");
    is_int(ech_utf8_encode(0xD800, out), 0, "encode surrogate refused");
    is_int(ech_utf8_encode(0x110000, out), 0, "encode out of range refused");
    ok(ech_utf8_valid((const uint8_t *)"h\xC3\xA9llo", 6), "valid string");
    ok(!ech_utf8_valid((const uint8_t *)"h\xFFllo", 5), "invalid string");
    /* every code point round-trips */
    int all = 1;
    for (uint32_t c = 0; c <= 0x10FFFF; c++) {
        size_t n = ech_utf8_encode(c, out);
        if (c >= 0xD800 && c <= 0xDFFF) {
            all &= n == 0;
            continue;
        }
        uint32_t back;
        all &= n > 0 && ech_utf8_decode(out, n, &back) == n && back == c;
    }
    ok(all, "encode/decode round trip of every code point");
}

static void test_json(void)
{
    json_object *j = ech_json_float(1e-5f);
    is_str(ech_json_line(j), "1e-05", "float printed shortest");
    json_object_put(j);
    j = ech_json_float(0.1f);
    is_str(ech_json_line(j), "0.1", "0.1f printed as 0.1");
    json_object_put(j);
    j = ech_json_double(0.1);
    is_str(ech_json_line(j), "0.1", "0.1 printed as 0.1");
    json_object_put(j);
    ok(ech_json_float(1.0f / 0.0f) == NULL, "infinity becomes null");
    j = ech_json_float(-0.0f);
    is_str(ech_json_line(j), "-0.0", "negative zero stays a float");
    json_object_put(j);
    j = ech_json_double(3.0);
    is_str(ech_json_line(j), "3.0", "whole numbers keep a decimal point");
    json_object_put(j);
    j = ech_json_string("a\xFF" "b/", 4);
    is_str(ech_json_line(j), "\"a\xEF\xBF\xBD" "b/\"", "invalid UTF-8 replaced, no slash escape");
    json_object_put(j);
    j = ech_json_u64(UINT64_MAX);
    is_str(ech_json_line(j), "18446744073709551615", "u64 max exact");
    json_object_put(j);
}

static void test_digest(void)
{
    char hex[65];
    ech_sha256_hex("abc", 3, hex);
    is_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256(abc)");
    ok(ech_sha256_hex_valid(hex), "hex digest recognised");
    ok(!ech_sha256_hex_valid("abc"), "short digest rejected");
    char path[] = "/tmp/ech-t-core-XXXXXX";
    int fd = mkstemp(path);
    ok(fd >= 0 && write(fd, "abc", 3) == 3, "temp file");
    close(fd);
    char hex2[65];
    is_int(ech_sha256_file(path, hex2, NULL), ECH_OK, "sha256 of a file");
    is_str(hex2, hex, "file digest equals buffer digest");
    ech_mapfile mf;
    ech_error e;
    is_int(ech_mapfile_open(&mf, path, &e), ECH_OK, "map a file");
    ok(mf.size == 3 && memcmp(mf.data, "abc", 3) == 0 && mf.is_mapped, "mapped bytes");
    ech_mapfile_close(&mf);
    unlink(path);
    is_int(ech_sha256_file(path, hex2, &e), ECH_ERR_NOT_FOUND, "digest of a missing file");
    is_int(ech_mapfile_open(&mf, path, &e), ECH_ERR_NOT_FOUND, "map a missing file");
    is_int(ech_mapfile_open(&mf, "/tmp", &e), ECH_ERR_IO, "map a directory");
    ok(strstr(e.msg, "directory") != NULL, "directory error says so");
    ech_mapfile_close(&mf);
    ok(1, "closing an empty mapping is harmless");
}

int main(void)
{
    test_status();
    test_arena();
    test_buf();
    test_utf8();
    test_json();
    test_digest();
    return done_testing();
}
