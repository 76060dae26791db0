/* tap.h - a minimal TAP producer for the C unit tests.
 *
 *   ok(cond, "what");  is_int(got, want, "what");  done_testing();
 * Each check prints "ok N - what" or "not ok N - what" (with the values on
 * a "#" line); done_testing() prints the plan and returns the exit code.
 */
#ifndef ECH_TESTS_TAP_H
#define ECH_TESTS_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static inline int tap_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int tap_ok(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s %d - ", cond ? "ok" : "not ok", ++tap_n);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (!cond)
        tap_failed++;
    fflush(stdout);
    return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __VA_ARGS__)
#define is_int(got, want, ...)                                                          \
    do {                                                                                \
        long long g_ = (long long)(got), w_ = (long long)(want);                        \
        if (!tap_ok(g_ == w_, __VA_ARGS__))                                             \
            printf("#   got %lld, want %lld (%s:%d)\n", g_, w_, __FILE__, __LINE__);    \
    } while (0)
#define is_str(got, want, ...)                                                          \
    do {                                                                                \
        const char *g_ = (got), *w_ = (want);                                           \
        if (!tap_ok(g_ && w_ && strcmp(g_, w_) == 0, __VA_ARGS__))                      \
            printf("#   got \"%s\", want \"%s\" (%s:%d)\n", g_ ? g_ : "(null)",         \
                   w_ ? w_ : "(null)", __FILE__, __LINE__);                             \
    } while (0)

static inline void tap_skip(int n, const char *why)
{
    for (int i = 0; i < n; i++)
        printf("ok %d # SKIP %s\n", ++tap_n, why);
}

static inline int done_testing(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
