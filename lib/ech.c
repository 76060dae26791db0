/* ech.c - library-wide facts. */
#include "config.h"
#include "ech.h"

const char *ech_version(void)
{
    return PACKAGE_VERSION;
}
