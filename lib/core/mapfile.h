/* mapfile.h - read-only views of whole files.
 *
 * Model files are mapped, never copied: the weights are used in place, the
 * page cache is shared between processes, and a 4 GB model costs no malloc.
 * Regular files are mmap'ed read-only; a pipe or other stream (only when the
 * caller asks for it) is read into memory, since it cannot be mapped.
 */
#ifndef ECH_CORE_MAPFILE_H
#define ECH_CORE_MAPFILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ech_mapfile {
    const uint8_t *data;   /* the file's bytes; NULL when size is 0 */
    size_t size;
    int is_mapped;         /* 1: mmap'ed; 0: malloc'ed copy of a stream */
} ech_mapfile;

/* Map the regular file at `path`.  On success `mf` owns the mapping until
 * ech_mapfile_close().  A directory or other non-regular file is an error. */
ech_status ech_mapfile_open(ech_mapfile *mf, const char *path, ech_error *err);

/* Map what `fd` refers to; `name` is used in messages only.  A regular file
 * is mapped; anything else (a pipe) is read to its end into memory, but only
 * if `allow_stream` is nonzero.  `fd` stays open and owned by the caller. */
ech_status ech_mapfile_open_fd(ech_mapfile *mf, int fd, const char *name,
                               int allow_stream, ech_error *err);

/* Unmap or free; `mf` becomes empty.  Safe on an empty or zeroed struct. */
void ech_mapfile_close(ech_mapfile *mf);

#ifdef __cplusplus
}
#endif
#endif
