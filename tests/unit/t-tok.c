/* t-tok.c - unit tests for lib/tok (filled in below). */
#include "config.h"
#include "ech.h"
#include "tap.h"
int main(void)
{
    ok(ech_tokenizer_unicode_version()[0] == '1', "unicode version");
    return done_testing();
}
