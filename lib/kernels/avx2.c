/* avx2.c - AVX2 + FMA + F16C kernels.
 *
 * Every function carries its own target attribute, so this file builds
 * with the library's generic x86-64 flags and only runs when dispatch.c has
 * seen the features in CPUID.
 */
#include "config.h"

#include "kernels/dispatch.h"

void ech_avx2_fill(ech_type_kernels *k, ech_kset *g)
{
    (void)k;
    (void)g;
}
