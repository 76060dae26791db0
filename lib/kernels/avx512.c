/* avx512.c - AVX-512 (F/BW/VL/DQ + VNNI + VBMI) kernels. */
#include "config.h"

#include "kernels/dispatch.h"

void ech_avx512_fill(ech_type_kernels *k, ech_kset *g)
{
    (void)k;
    (void)g;
}
