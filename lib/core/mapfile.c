/* mapfile.c - mmap regular files, slurp streams. */
#include "config.h"
#include "core/mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static ech_status read_stream(ech_mapfile *mf, int fd, const char *name, ech_error *err)
{
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return ech_error_set(err, ECH_ERR_NOMEM, "%s: out of memory", name);
    for (;;) {
        if (len == cap) {
            if (cap > SIZE_MAX / 2) {
                free(buf);
                return ech_error_set(err, ECH_ERR_RANGE, "%s: stream too large", name);
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return ech_error_set(err, ECH_ERR_NOMEM, "%s: out of memory reading stream", name);
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            return ech_error_set(err, ECH_ERR_IO, "%s: %s", name, strerror(e));
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    mf->data = buf;
    mf->size = len;
    mf->is_mapped = 0;
    if (len == 0) {
        free(buf);
        mf->data = NULL;
    }
    return ECH_OK;
}

ech_status ech_mapfile_open_fd(ech_mapfile *mf, int fd, const char *name,
                               int allow_stream, ech_error *err)
{
    struct stat st;
    memset(mf, 0, sizeof *mf);
    if (fstat(fd, &st) != 0)
        return ech_error_set(err, ECH_ERR_IO, "%s: %s", name, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return ech_error_set(err, ECH_ERR_IO, "%s: is a directory", name);
    if (!S_ISREG(st.st_mode)) {
        if (allow_stream)
            return read_stream(mf, fd, name, err);
        return ech_error_set(err, ECH_ERR_IO, "%s: not a regular file", name);
    }
    if ((uintmax_t)st.st_size > SIZE_MAX)
        return ech_error_set(err, ECH_ERR_RANGE, "%s: file too large to map", name);
    if (st.st_size == 0)
        return ECH_OK;   /* nothing to map; data stays NULL */
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return ech_error_set(err, ECH_ERR_IO, "%s: mmap: %s", name, strerror(errno));
    mf->data = p;
    mf->size = (size_t)st.st_size;
    mf->is_mapped = 1;
    return ECH_OK;
}

ech_status ech_mapfile_open(ech_mapfile *mf, const char *path, ech_error *err)
{
    memset(mf, 0, sizeof *mf);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ech_error_set(err, errno == ENOENT ? ECH_ERR_NOT_FOUND : ECH_ERR_IO,
                             "%s: %s", path, strerror(errno));
    ech_status st = ech_mapfile_open_fd(mf, fd, path, 0, err);
    close(fd);   /* a mapping outlives its descriptor */
    return st;
}

void ech_mapfile_close(ech_mapfile *mf)
{
    if (!mf)
        return;
    if (mf->data) {
        if (mf->is_mapped)
            munmap((void *)mf->data, mf->size);
        else
            free((void *)mf->data);
    }
    memset(mf, 0, sizeof *mf);
}
