/* store.c - the index file: one header, eight sections, a CRC-32C.
 *
 * Layout (little-endian), every section 64-byte aligned:
 *     0   "ECHINDEX"            8   u32 version (1)      12  u32 header size (256)
 *     16  u32 dim               20  u32 metric           24  u32 M
 *     28  u32 ef_construction   32  u32 ef_search        36  u32 key kind
 *     40  u64 n                 48  u64 n_deleted        56  u32 entry
 *     60  i32 max_level         64  u64 seed             72  u64 rng state
 *     80  u32 flags (1: u64 key i is i, no key section)   84  u32 0
 *     88  8 x {u64 offset, u64 size}: level0, upper_off, upper, keys (u64),
 *         key_off, key_blob, pay_off, pay_blob (size 0: absent)
 *     252 u32 CRC-32C of the bytes from 256 to the end, continued over the
 *         header bytes 0..252 (so the body can be streamed first)
 * Opening checks every field, section bound, offset table and link (a
 * file with a valid checksum may still be hostile), then searches the
 * mapping in place.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/index_impl.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ECH_X86 1
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the index file format is little-endian; this host is not"
#endif

#define HDR_SIZE 256
#define CRC_AT 252
#define N_SECT 8
#define FLAG_IDENTITY_KEYS 1u
static const char magic[8] = {'E', 'C', 'H', 'I', 'N', 'D', 'E', 'X'};

/* ---- CRC-32C (Castagnoli) ------------------------------------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return crc;
}

#ifdef ECH_X86
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
    uint64_t c = crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
    }
    uint32_t c32 = (uint32_t)c;
    for (; n; n--, p++)
        c32 = _mm_crc32_u8(c32, *p);
    return c32;
}
#endif

/* Continue a CRC-32C (start with 0) over n bytes. */
static uint32_t crc32c(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
#ifdef ECH_X86
    static int hw = -1;
    if (hw < 0)
        hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    if (hw)
        return ~crc_hw(crc, data, n);
#endif
    return ~crc_sw(crc, data, n);
}

uint32_t ech_index_crc32c(uint32_t crc, const void *data, size_t n);
uint32_t ech_index_crc32c(uint32_t crc, const void *data, size_t n) { return crc32c(crc, data, n); }

/* ---- writing ---------------------------------------------------------------- */

typedef struct sink {
    FILE *f;        /* or NULL: into mem */
    uint8_t *mem;
    size_t pos;
    uint32_t crc;
    int failed;
} sink;

static void emit(sink *s, const void *p, size_t n)
{
    if (s->failed || n == 0)
        return;
    s->crc = crc32c(s->crc, p, n);
    if (s->f) {
        if (fwrite(p, 1, n, s->f) != n)
            s->failed = 1;
    } else {
        memcpy(s->mem + s->pos, p, n);
    }
    s->pos += n;
}

static void pad64(sink *s)
{
    static const uint8_t zero[64];
    emit(s, zero, (64 - s->pos % 64) % 64);
}

static void put32(uint8_t *h, size_t at, uint32_t v) { memcpy(h + at, &v, 4); }
static void put64(uint8_t *h, size_t at, uint64_t v) { memcpy(h + at, &v, 8); }
static uint32_t get32(const uint8_t *h, size_t at)
{
    uint32_t v;
    memcpy(&v, h + at, 4);
    return v;
}
static uint64_t get64(const uint8_t *h, size_t at)
{
    uint64_t v;
    memcpy(&v, h + at, 8);
    return v;
}

typedef struct plan {
    const void *data[N_SECT];
    size_t size[N_SECT];
    uint64_t off[N_SECT];
    size_t total;
    uint32_t flags;
} plan;

static void make_plan(const ech_index *idx, plan *pl)
{
    size_t n = idx->n;
    memset(pl, 0, sizeof *pl);
    int identity = idx->key_kind == ECH_KEY_U64;
    for (size_t i = 0; identity && idx->keys && i < n; i++)
        identity = idx->keys[i] == i;
    int payloads = idx->pay_off && n && idx->pay_off[n] > 0;
    pl->flags = identity ? FLAG_IDENTITY_KEYS : 0;
    pl->data[0] = idx->level0, pl->size[0] = n * idx->block;
    pl->data[1] = idx->upper_off, pl->size[1] = (n + 1) * 4;
    pl->data[2] = idx->upper, pl->size[2] = (size_t)idx->upper_off[n] * 4;
    if (idx->key_kind == ECH_KEY_U64 && !identity)
        pl->data[3] = idx->keys, pl->size[3] = n * 8;
    if (idx->key_kind == ECH_KEY_STRING) {
        pl->data[4] = idx->key_off, pl->size[4] = (n + 1) * 8;
        pl->data[5] = idx->key_blob, pl->size[5] = (size_t)idx->key_off[n];
    }
    if (payloads) {
        pl->data[6] = idx->pay_off, pl->size[6] = (n + 1) * 8;
        pl->data[7] = idx->pay_blob, pl->size[7] = (size_t)idx->pay_off[n];
    }
    size_t pos = HDR_SIZE;
    for (int i = 0; i < N_SECT; i++) {
        if (!pl->size[i])
            continue;
        pos = (pos + 63) / 64 * 64;
        pl->off[i] = pos;
        pos += pl->size[i];
    }
    pl->total = pos;
}

static void make_header(const ech_index *idx, const plan *pl, uint8_t *h)
{
    memset(h, 0, HDR_SIZE);
    memcpy(h, magic, 8);
    put32(h, 8, 1);
    put32(h, 12, HDR_SIZE);
    put32(h, 16, idx->p.dim);
    put32(h, 20, (uint32_t)idx->p.metric);
    put32(h, 24, idx->p.M);
    put32(h, 28, idx->p.ef_construction);
    put32(h, 32, idx->p.ef_search);
    put32(h, 36, (uint32_t)idx->key_kind);
    put64(h, 40, idx->n);
    put64(h, 48, idx->n_deleted);
    put32(h, 56, idx->entry);
    put32(h, 60, (uint32_t)idx->max_level);
    put64(h, 64, idx->p.seed);
    put64(h, 72, idx->rng);
    put32(h, 80, pl->flags);
    for (int i = 0; i < N_SECT; i++) {
        put64(h, 88 + 16 * (size_t)i, pl->off[i]);
        put64(h, 96 + 16 * (size_t)i, pl->size[i]);
    }
}

/* Stream the body (after the header) into s; returns the header with its CRC. */
static void write_body(const ech_index *idx, const plan *pl, sink *s, uint8_t *hdr)
{
    make_header(idx, pl, hdr);
    s->pos = HDR_SIZE;
    s->crc = 0;
    for (int i = 0; i < N_SECT; i++) {
        if (!pl->size[i])
            continue;
        pad64(s);
        emit(s, pl->data[i], pl->size[i]);
    }
    put32(hdr, CRC_AT, crc32c(s->crc, hdr, CRC_AT));
}

ech_status ech_index_save_mem(const ech_index *idx, uint8_t **data, size_t *size, ech_error *err)
{
    plan pl;
    make_plan(idx, &pl);
    uint8_t *mem = calloc(1, pl.total);
    if (!mem)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    sink s = {.mem = mem};
    write_body(idx, &pl, &s, mem);
    *data = mem;
    *size = pl.total;
    return ECH_OK;
}

ech_status ech_index_save(const ech_index *idx, const char *path, ech_error *err)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    /* the temporary file sits next to the target so that rename is atomic */
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp-XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        ech_status st = ech_error_set(err, ECH_ERR_IO, "%s: cannot create a temporary file: %s", path,
                                      strerror(errno));
        free(tmp);
        return st;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return ech_error_set(err, ECH_ERR_IO, "%s: %s", path, strerror(errno));
    }
    plan pl;
    make_plan(idx, &pl);
    uint8_t hdr[HDR_SIZE];
    sink s = {.f = f};
    static const uint8_t zero[HDR_SIZE];
    int failed = fwrite(zero, 1, HDR_SIZE, f) != HDR_SIZE;
    write_body(idx, &pl, &s, hdr);
    failed |= s.failed;
    failed |= fflush(f) != 0;
    failed |= pwrite(fd, hdr, HDR_SIZE, 0) != HDR_SIZE;
    failed |= fsync(fd) != 0;
    /* mkstemp made it 0600: take the old file's mode, or rw-r--r-- (best effort) */
    struct stat old;
    fchmod(fd, stat(path, &old) == 0 ? old.st_mode & 07777 : 0644);
    int saved = errno;
    failed |= fclose(f) != 0;
    if (failed || rename(tmp, path) != 0) {
        if (!failed)
            saved = errno;
        unlink(tmp);
        free(tmp);
        return ech_error_set(err, ECH_ERR_IO, "%s: writing the index failed: %s", path,
                             saved ? strerror(saved) : "write error");
    }
    free(tmp);
    return ECH_OK;
}

/* ---- reading ------------------------------------------------------------------- */

static ech_status bad(ech_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ech_status bad(ech_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ech_error_set(err, ECH_ERR_FORMAT, "not a valid index file: %s", msg);
}

static ech_status validate(ech_index *idx, const uint8_t *d, size_t size, ech_error *err)
{
    if (size < HDR_SIZE)
        return bad(err, "%zu bytes is shorter than the %d-byte header (truncated?)", size, HDR_SIZE);
    if (memcmp(d, magic, 8) != 0)
        return bad(err, "no ECHINDEX magic at offset 0");
    if (get32(d, 8) != 1)
        return ech_error_set(err, ECH_ERR_UNSUPPORTED, "index file version %u is not supported (1 is)",
                             get32(d, 8));
    if (get32(d, 12) != HDR_SIZE)
        return bad(err, "header size %u at offset 12", get32(d, 12));
    uint32_t crc = crc32c(crc32c(0, d + HDR_SIZE, size - HDR_SIZE), d, CRC_AT);
    if (crc != get32(d, CRC_AT))
        return ech_error_set(err, ECH_ERR_CHECKSUM,
                             "index file checksum mismatch (stored %08x, computed %08x): corrupt or truncated",
                             get32(d, CRC_AT), crc);
    ech_index_params p = {.dim = get32(d, 16), .metric = (ech_metric)get32(d, 20), .M = get32(d, 24),
                          .ef_construction = get32(d, 28), .ef_search = get32(d, 32), .seed = get64(d, 64)};
    if (get32(d, 20) > ECH_METRIC_IP)
        return bad(err, "unknown metric %u at offset 20", get32(d, 20));
    ech_error perr;
    if (ech_index_check_params(&p, &perr))
        return bad(err, "%s", perr.msg);
    idx->p = p;
    ech_index_layout(idx);
    uint32_t kind = get32(d, 36), flags = get32(d, 80);
    uint64_t n = get64(d, 40), n_del = get64(d, 48);
    uint32_t entry = get32(d, 56);
    int32_t max_level = (int32_t)get32(d, 60);
    if (n > ECH_INDEX_MAX_ELEMENTS || n_del > n)
        return bad(err, "element counts %llu/%llu at offset 40", (unsigned long long)n, (unsigned long long)n_del);
    if (kind > ECH_KEY_STRING || (kind == ECH_KEY_NONE && n) || (n == 0 && kind != ECH_KEY_NONE && 0))
        return bad(err, "key kind %u at offset 36", kind);
    if (flags & ~FLAG_IDENTITY_KEYS || ((flags & FLAG_IDENTITY_KEYS) && kind != ECH_KEY_U64))
        return bad(err, "flags %#x at offset 80", flags);
    if (n == 0 ? entry != ECH_NO_ELEM || max_level != -1 : entry >= n || max_level < 0 || max_level > ECH_INDEX_MAX_LEVEL)
        return bad(err, "entry point %u / top level %d at offset 56", entry, (int)max_level);

    /* expected section sizes */
    size_t want[N_SECT];
    if (n > SIZE_MAX / idx->block)
        return bad(err, "level-0 size overflows");
    want[0] = (size_t)n * idx->block;
    want[1] = ((size_t)n + 1) * 4;
    want[2] = SIZE_MAX;  /* from upper_off */
    want[3] = kind == ECH_KEY_U64 && !(flags & FLAG_IDENTITY_KEYS) ? (size_t)n * 8 : 0;
    want[4] = kind == ECH_KEY_STRING ? ((size_t)n + 1) * 8 : 0;
    want[5] = SIZE_MAX;
    want[6] = SIZE_MAX;  /* 0 or (n + 1) * 8 */
    want[7] = SIZE_MAX;
    const uint8_t *sect[N_SECT];
    size_t ssize[N_SECT];
    uint64_t prev_end = HDR_SIZE;
    for (int i = 0; i < N_SECT; i++) {
        uint64_t off = get64(d, 88 + 16 * (size_t)i), sz = get64(d, 96 + 16 * (size_t)i);
        if (sz == 0) {
            if (off != 0)
                return bad(err, "empty section %d has offset %llu", i, (unsigned long long)off);
            sect[i] = NULL, ssize[i] = 0;
        } else {
            if (off % 64 || off < prev_end || off > size || sz > size - off)
                return bad(err, "section %d (offset %llu, %llu bytes) is outside the %zu-byte file or misplaced", i,
                           (unsigned long long)off, (unsigned long long)sz, size);
            prev_end = off + sz;
            sect[i] = d + off, ssize[i] = (size_t)sz;
        }
        if (want[i] != SIZE_MAX && ssize[i] != want[i])
            return bad(err, "section %d has %zu bytes, expected %zu", i, ssize[i], want[i]);
    }
    if (ssize[6] != 0 && ssize[6] != ((size_t)n + 1) * 8)
        return bad(err, "payload offsets have %zu bytes, expected %zu", ssize[6], ((size_t)n + 1) * 8);
    if (ssize[6] == 0 && ssize[7] != 0)
        return bad(err, "payload bytes without payload offsets");
    if (kind != ECH_KEY_STRING && ssize[5] != 0)
        return bad(err, "key bytes in an index of number keys");

    const uint32_t *uo = (const uint32_t *)(const void *)sect[1];
    if (uo[0] != 0)
        return bad(err, "upper-level offsets do not start at 0");
    uint32_t lw = p.M + 1;
    for (uint64_t i = 0; i < n; i++) {
        if (uo[i + 1] < uo[i] || (uo[i + 1] - uo[i]) % lw || (uo[i + 1] - uo[i]) / lw > (uint32_t)max_level)
            return bad(err, "upper-level offset of element %llu", (unsigned long long)i);
    }
    if (ssize[2] != (size_t)uo[n] * 4)
        return bad(err, "upper-level links have %zu bytes, expected %zu", ssize[2], (size_t)uo[n] * 4);
    idx->level0 = (uint8_t *)(uintptr_t)sect[0];
    idx->upper_off = (uint32_t *)(uintptr_t)uo;
    idx->upper = (uint32_t *)(uintptr_t)sect[2];
    idx->n = idx->cap = (size_t)n;
    if (n && ech_idx_level(idx, entry) != max_level)
        return bad(err, "the entry point %u is not on the top level %d", entry, (int)max_level);
    size_t deleted = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t *l0 = ech_idx_links0(idx, i);
        uint32_t head = l0[0];
        if ((head & ~(ECH_HEAD_COUNT | ECH_HEAD_DELETED)) || (head & ECH_HEAD_COUNT) > idx->M0)
            return bad(err, "level-0 list of element %u: head %#x", i, head);
        deleted += (head & ECH_HEAD_DELETED) != 0;
        for (uint32_t j = 0; j < (head & ECH_HEAD_COUNT); j++)
            if (l0[1 + j] >= n)
                return bad(err, "level-0 link %u of element %u points past the end", j, i);
        int lv = ech_idx_level(idx, i);
        for (int l = 1; l <= lv; l++) {
            const uint32_t *lst = ech_idx_links(idx, i, l);
            if (lst[0] > p.M)
                return bad(err, "level-%d list of element %u has %u links", l, i, lst[0]);
            for (uint32_t j = 0; j < lst[0]; j++)
                if (lst[1 + j] >= n || ech_idx_level(idx, lst[1 + j]) < l)
                    return bad(err, "level-%d link %u of element %u points to a missing node", l, j, i);
        }
    }
    if (deleted != n_del)
        return bad(err, "%zu deleted elements, the header says %llu", deleted, (unsigned long long)n_del);

    idx->key_kind = (ech_key_kind)kind;
    idx->keys = (uint64_t *)(uintptr_t)sect[3];
    if (kind == ECH_KEY_STRING) {
        const uint64_t *ko = (const uint64_t *)(const void *)sect[4];
        if (ko[0] != 0)
            return bad(err, "key offsets do not start at 0");
        for (uint64_t i = 0; i < n; i++)
            if (ko[i + 1] <= ko[i] || ko[i + 1] - ko[i] > ECH_INDEX_MAX_KEY)
                return bad(err, "key offset of element %llu", (unsigned long long)i);
        if (ko[n] != ssize[5])
            return bad(err, "key bytes end at %llu, the section has %zu", (unsigned long long)ko[n], ssize[5]);
        idx->key_off = (uint64_t *)(uintptr_t)ko;
        idx->key_blob = (char *)(uintptr_t)sect[5];
    }
    if (ssize[6]) {
        const uint64_t *po = (const uint64_t *)(const void *)sect[6];
        if (po[0] != 0)
            return bad(err, "payload offsets do not start at 0");
        for (uint64_t i = 0; i < n; i++)
            if (po[i + 1] < po[i])
                return bad(err, "payload offset of element %llu", (unsigned long long)i);
        if (po[n] != ssize[7])
            return bad(err, "payload bytes end at %llu, the section has %zu", (unsigned long long)po[n], ssize[7]);
        idx->pay_off = (uint64_t *)(uintptr_t)po;
        idx->pay_blob = (char *)(uintptr_t)sect[7];
    }
    idx->n_deleted = deleted;
    idx->entry = entry;
    idx->max_level = max_level;
    idx->rng = get64(d, 72);
    idx->upper_cap = uo[n];
    idx->key_blob_cap = ssize[5];
    idx->pay_blob_cap = ssize[7];
    return ECH_OK;
}

static ech_status open_common(const void *data, size_t size, ech_mapfile *mf, ech_index **out, ech_error *err)
{
    *out = NULL;
    if ((uintptr_t)data % 8)
        return ech_error_set(err, ECH_ERR_INVALID, "index data must be 8-byte aligned");
    ech_index *idx = calloc(1, sizeof *idx);
    if (!idx)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&idx->global, NULL);
    idx->mapped = 1;
    ech_status st = validate(idx, data, size, err);
    if (st) {
        pthread_mutex_destroy(&idx->global);
        free(idx);
        return st;
    }
    if (mf)
        idx->map = *mf;
    *out = idx;
    return ECH_OK;
}

ech_status ech_index_open_mem(const void *data, size_t size, ech_index **out, ech_error *err)
{
    return open_common(data, size, NULL, out, err);
}

ech_status ech_index_open(const char *path, ech_index **out, ech_error *err)
{
    ech_mapfile mf;
    *out = NULL;
    ech_status st = ech_mapfile_open(&mf, path, err);
    if (st)
        return st;
    static const uint64_t empty = 0;
    st = open_common(mf.data ? (const void *)mf.data : (const void *)&empty, mf.size, &mf, out, err);
    if (st) {
        if (err) {
            char msg[sizeof err->msg];
            memcpy(msg, err->msg, sizeof msg);
            ech_error_set(err, st, "%s: %.*s", path, (int)(sizeof msg - 1), msg);
        }
        ech_mapfile_close(&mf);
    }
    return st;
}
