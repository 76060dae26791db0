/* download.c - resumable, verified, atomic downloads over libcurl's easy API.
 *
 * One transfer writes to "<dest>.part" (locked with flock so two pulls of
 * the same file cannot interleave) while a SHA-256 state follows the bytes,
 * so the finished file is never read twice.  Response headers are parsed as
 * they arrive: the digest the server states, the status of each response on
 * the redirect chain, and whether a Range request was honoured.
 */
#include "config.h"
#include "net/download.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "core/buf.h"
#include "core/digest.h"
#include "ech.h"

enum {
    DEFAULT_CONNECT_TIMEOUT_S = 30,
    DEFAULT_LOW_SPEED_TIME_S = 60,
    LOW_SPEED_LIMIT_BPS = 1024,
    MAX_REDIRECTS = 10,
    MAX_COMPONENT = 255,        /* NAME_MAX on the file systems we care about */
    MAX_REF = 4096,
    HEADER_LINE_MAX = 1024,     /* longer header lines carry nothing we read */
};

/* ---- process-wide libcurl initialisation ---------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static ech_status ensure_curl(ech_error *err)
{
    if (pthread_once(&curl_once, curl_init_once) != 0 || curl_init_result != CURLE_OK)
        return ech_error_set(err, ECH_ERR_NET, "cannot initialise libcurl: %s",
                             curl_easy_strerror(curl_init_result));
    return ECH_OK;
}

/* ---- small helpers ------------------------------------------------------- */

static int has_prefix_nocase(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static int is_http_url(const char *s)
{
    return has_prefix_nocase(s, "http://") || has_prefix_nocase(s, "https://");
}

static void bytes_to_hex(const unsigned char bin[crypto_hash_sha256_BYTES], char out[ECH_SHA256_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < crypto_hash_sha256_BYTES; i++) {
        out[2 * i] = digits[bin[i] >> 4];
        out[2 * i + 1] = digits[bin[i] & 15];
    }
    out[ECH_SHA256_HEX_LEN] = '\0';
}

static void hex_lower(const char *in, char out[ECH_SHA256_HEX_LEN + 1])
{
    for (size_t i = 0; i < ECH_SHA256_HEX_LEN; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[ECH_SHA256_HEX_LEN] = '\0';
}

/* Create every missing directory above `path` (like mkdir -p of its dirname). */
static ech_status mkdir_parents(const char *path, ech_error *err)
{
    char *copy = strdup(path);
    if (!copy)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    char *slash = strrchr(copy, '/');
    if (!slash || slash == copy) {   /* relative to ".", or directly under "/" */
        free(copy);
        return ECH_OK;
    }
    *slash = '\0';
    for (char *p = copy + 1; ; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(copy, 0777) != 0 && errno != EEXIST) {
            ech_status s = ech_error_set(err, ECH_ERR_IO, "cannot create directory %s: %s", copy,
                                         strerror(errno));
            free(copy);
            return s;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    free(copy);
    return ECH_OK;
}

/* Make a rename durable; best effort, as not every file system allows it. */
static void sync_parent_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    char *slash = strrchr(copy, '/');
    const char *dir = ".";
    if (slash) {
        slash[slash == copy ? 1 : 0] = '\0';
        dir = copy;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(copy);
}

static ech_status write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return ECH_ERR_IO;
        }
        data += n;
        len -= (size_t)n;
    }
    return ECH_OK;
}

/* ---- parsing response headers ------------------------------------------- */

/* An entity tag holding a SHA-256: optional W/, optional quotes, 64 hex. */
static int etag_sha256(const char *v, char out[ECH_SHA256_HEX_LEN + 1])
{
    if (strncmp(v, "W/", 2) == 0)
        v += 2;
    size_t len = strlen(v);
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"')
        v++, len -= 2;
    if (len != ECH_SHA256_HEX_LEN)
        return 0;
    char tmp[ECH_SHA256_HEX_LEN + 1];
    memcpy(tmp, v, len);
    tmp[len] = '\0';
    if (!ech_sha256_hex_valid(tmp))
        return 0;
    hex_lower(tmp, out);
    return 1;
}

/* Find "sha-256=" in a Digest (RFC 3230: sha-256=B64) or Repr-Digest
 * (RFC 9530: sha-256=:B64:) value and decode its base64 into hex. */
static int digest_sha256(const char *v, char out[ECH_SHA256_HEX_LEN + 1])
{
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (has_prefix_nocase(p, "sha-256=")) {
            p += strlen("sha-256=");
            int colon = *p == ':';
            p += colon;
            size_t n = strcspn(p, colon ? ":" : ", \t;");
            unsigned char bin[crypto_hash_sha256_BYTES];
            size_t bin_len = 0;
            if (sodium_base642bin(bin, sizeof bin, p, n, NULL, &bin_len, NULL,
                                  sodium_base64_VARIANT_ORIGINAL) != 0 || bin_len != sizeof bin)
                return 0;
            bytes_to_hex(bin, out);
            return 1;
        }
        p += strcspn(p, ",");
    }
    return 0;
}

/* Reason phrases for HTTP/2 and HTTP/3, which send none. */
static const char *reason_for(long code)
{
    switch (code) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 410: return "Gone";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
    }
}

/* ---- one transfer ---------------------------------------------------------- */

typedef struct transfer {
    const ech_download_opts *o;
    ech_error *err;
    int fd;
    uint64_t offset;            /* bytes already in the .part file when asked */
    uint64_t have;              /* bytes in the .part file now */
    crypto_hash_sha256_state hash;

    /* The response being received; reset at each status line. */
    long status;
    char reason[64];
    int has_location;
    int has_range;
    uint64_t range_start;
    uint64_t range_total;       /* the N of Content-Range ".../N" */
    int has_length;
    uint64_t length;            /* Content-Length */
    char etag[ECH_SHA256_HEX_LEN + 1];
    char repr[ECH_SHA256_HEX_LEN + 1];

    /* Facts that outlive one response: the Hub states the digest on its
     * redirect, not on the CDN's answer. */
    char linked[ECH_SHA256_HEX_LEN + 1];

    int final;                  /* the final response's headers are done */
    uint64_t total;             /* full size of the file, 0 if unknown */
    int restarted;              /* the server ignored Range: started over */

    /* Why a callback stopped the transfer (checked before curl's code). */
    enum { STOP_NONE, STOP_HTTP, STOP_CANCEL, STOP_ERROR, STOP_COMPLETE, STOP_RETRY } stop;
    ech_status stop_code;       /* for STOP_ERROR; err may be NULL */
} transfer;

static ech_status truncate_part(transfer *t)
{
    if (ftruncate(t->fd, 0) != 0 || lseek(t->fd, 0, SEEK_SET) != 0)
        return ECH_ERR_IO;
    t->have = 0;
    crypto_hash_sha256_init(&t->hash);
    return ECH_OK;
}

/* The final response's headers are in: decide what its body means. */
static int begin_body(transfer *t)
{
    const char *url = t->o->url;
    if (t->status == 416 && t->offset > 0) {
        /* Nothing left after our offset: either the .part file already holds
         * all N bytes of "Content-Range: bytes *" "/N", or it is longer than
         * the file is now and we must start over. */
        int complete = t->has_range && t->range_total == t->offset;
        t->stop = complete ? STOP_COMPLETE : STOP_RETRY;
        t->total = complete ? t->range_total : 0;
        return 0;
    }
    if (t->status < 200 || t->status > 299) {
        t->stop = STOP_HTTP;
        return 0;
    }
    if (t->status == 206) {
        if (!t->has_range || t->range_start != t->offset) {
            t->stop_code = ech_error_set(t->err, ECH_ERR_NET, "%s: server resumed at the wrong offset", url);
            t->stop = STOP_ERROR;
            return 0;
        }
        t->total = t->range_total;
    } else if (t->status == 200) {
        if (t->offset > 0) {   /* Range ignored: the body is the whole file */
            if (truncate_part(t) != ECH_OK) {
                t->stop_code = ech_error_set(t->err, ECH_ERR_IO, "%s.part: %s", t->o->dest, strerror(errno));
                t->stop = STOP_ERROR;
                return 0;
            }
            t->restarted = 1;
        }
        t->total = t->has_length ? t->length : 0;
    } else {
        t->stop_code = ech_error_set(t->err, ECH_ERR_HTTP, "%s: unexpected HTTP %ld", url, t->status);
        t->stop = STOP_ERROR;
        return 0;
    }
    t->final = 1;
    return 1;
}

static int parse_u64(const char *s, char **end, uint64_t *out)
{
    if (!isdigit((unsigned char)*s))
        return 0;
    errno = 0;
    unsigned long long v = strtoull(s, end, 10);
    if (errno)
        return 0;
    *out = v;
    return 1;
}

static void parse_status_line(transfer *t, const char *line)
{
    t->status = 0;
    t->reason[0] = '\0';
    t->has_location = t->has_range = t->has_length = 0;
    t->range_start = t->range_total = t->length = 0;
    t->etag[0] = t->repr[0] = '\0';
    const char *sp = strchr(line, ' ');
    if (!sp)
        return;
    char *end;
    t->status = strtol(sp + 1, &end, 10);
    while (*end == ' ')
        end++;
    snprintf(t->reason, sizeof t->reason, "%s", end);
    if (!t->reason[0])
        snprintf(t->reason, sizeof t->reason, "%s", reason_for(t->status));
}

static void parse_content_range(transfer *t, const char *v)
{
    /* "bytes START-END/TOTAL" or "bytes * /TOTAL" */
    if (!has_prefix_nocase(v, "bytes "))
        return;
    v += strlen("bytes ");
    char *end;
    uint64_t start = 0, last = 0, total = 0;
    if (*v == '*') {
        end = (char *)v + 1;
    } else {
        if (!parse_u64(v, &end, &start) || *end != '-' || !parse_u64(end + 1, &end, &last) || last < start)
            return;
    }
    if (*end != '/' || !parse_u64(end + 1, &end, &total))
        return;
    t->has_range = 1;
    t->range_start = start;
    t->range_total = total;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *user)
{
    transfer *t = user;
    size_t len = size * nitems;   /* size is 1 by libcurl's contract */
    char line[HEADER_LINE_MAX];
    if (len >= sizeof line)
        return len;
    memcpy(line, buf, len);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    line[len] = '\0';

    if (strncmp(line, "HTTP/", 5) == 0) {
        parse_status_line(t, line);
        return size * nitems;
    }
    if (len == 0) {   /* end of one response's headers */
        int interim = t->status >= 100 && t->status < 200;
        int followed = t->has_location && (t->status == 301 || t->status == 302 || t->status == 303 ||
                                           t->status == 307 || t->status == 308);
        if (interim || followed || t->final)
            return size * nitems;
        return begin_body(t) ? size * nitems : 0;
    }
    char *colon = strchr(line, ':');
    if (!colon)
        return size * nitems;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    const char *name = line;
    if (!strcasecmp(name, "x-linked-etag"))
        (void)etag_sha256(v, t->linked);
    else if (!strcasecmp(name, "etag"))
        (void)etag_sha256(v, t->etag);
    else if (!strcasecmp(name, "repr-digest") || !strcasecmp(name, "digest"))
        (void)digest_sha256(v, t->repr);
    else if (!strcasecmp(name, "content-range"))
        parse_content_range(t, v);
    else if (!strcasecmp(name, "content-length"))
        t->has_length = parse_u64(v, &colon, &t->length);
    else if (!strcasecmp(name, "location"))
        t->has_location = 1;
    return size * nitems;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    transfer *t = user;
    size_t len = size * nmemb;
    if (!t->final)   /* a body without a final response: refuse it */
        return 0;
    if (write_all(t->fd, data, len) != ECH_OK) {
        t->stop_code = ech_error_set(t->err, ECH_ERR_IO, "%s.part: %s", t->o->dest, strerror(errno));
        t->stop = STOP_ERROR;
        return 0;
    }
    crypto_hash_sha256_update(&t->hash, (const unsigned char *)data, len);
    t->have += len;
    return len;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    transfer *t = user;
    if (t->o->progress && t->o->progress(t->o->progress_user, t->have, t->final ? t->total : 0)) {
        t->stop = STOP_CANCEL;
        return 1;
    }
    return 0;
}

/* Feed the bytes already in the .part file to the hash. */
static ech_status hash_prefix(transfer *t)
{
    static _Thread_local unsigned char chunk[1 << 16];
    crypto_hash_sha256_init(&t->hash);
    if (lseek(t->fd, 0, SEEK_SET) != 0)
        return ECH_ERR_IO;
    uint64_t left = t->offset;
    while (left) {
        size_t want = left < sizeof chunk ? (size_t)left : sizeof chunk;
        ssize_t n = read(t->fd, chunk, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return ECH_ERR_IO;
        crypto_hash_sha256_update(&t->hash, chunk, (size_t)n);
        left -= (uint64_t)n;
    }
    t->have = t->offset;
    return ECH_OK;
}

/* Run one request from the current end of the .part file. */
static ech_status run_transfer(CURL *curl, transfer *t, struct curl_slist *headers)
{
    ech_error *err = t->err;
    const ech_download_opts *o = t->o;
    struct stat st;
    if (fstat(t->fd, &st) != 0)
        return ech_error_set(err, ECH_ERR_IO, "%s.part: %s", o->dest, strerror(errno));
    t->offset = (uint64_t)st.st_size;
    if (hash_prefix(t) != ECH_OK)
        return ech_error_set(err, ECH_ERR_IO, "%s.part: cannot read: %s", o->dest, strerror(errno));
    if (lseek(t->fd, 0, SEEK_END) < 0)
        return ech_error_set(err, ECH_ERR_IO, "%s.part: %s", o->dest, strerror(errno));
    t->status = 0;
    t->final = 0;
    t->total = 0;
    t->stop = STOP_NONE;
    t->linked[0] = '\0';

    char errbuf[CURL_ERROR_SIZE] = "";
    char agent[64];
    snprintf(agent, sizeof agent, "echostra/%s", ech_version());
    long connect_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : DEFAULT_CONNECT_TIMEOUT_S;
    long slow_s = o->low_speed_timeout_s > 0 ? o->low_speed_timeout_s : DEFAULT_LOW_SPEED_TIME_S;

    curl_easy_reset(curl);
    CURLcode rc = CURLE_OK;
#define SET(opt, val) \
    if (rc == CURLE_OK) \
        rc = curl_easy_setopt(curl, opt, val)
    SET(CURLOPT_URL, o->url);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_USERAGENT, agent);
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
#if LIBCURL_VERSION_NUM >= 0x075500   /* 7.85: the string forms replace the bitmasks */
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_CONNECTTIMEOUT, connect_s);
    SET(CURLOPT_LOW_SPEED_LIMIT, (long)LOW_SPEED_LIMIT_BPS);
    SET(CURLOPT_LOW_SPEED_TIME, slow_s);
    SET(CURLOPT_NOSIGNAL, 1L);   /* a library must not touch signal handlers */
    /* A proxy's "200 Connection established" would pass for the answer. */
    SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, t);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, t);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, t);
    SET(CURLOPT_NOPROGRESS, 0L);
    /* Models are compressed already; an encoded body would not match Range. */
    SET(CURLOPT_HTTP_CONTENT_DECODING, 0L);
    /* CURLOPT_RANGE rather than RESUME_FROM: libcurl fails a resumed
     * transfer answered with 200, where we want to take the whole body. */
    char range[32];
    snprintf(range, sizeof range, "%llu-", (unsigned long long)t->offset);
    if (t->offset > 0)
        SET(CURLOPT_RANGE, range);
#undef SET
    if (rc != CURLE_OK)
        return ech_error_set(err, ECH_ERR_NET, "%s: %s", o->url, curl_easy_strerror(rc));

    rc = curl_easy_perform(curl);
    switch (t->stop) {
    case STOP_CANCEL:
        return ech_error_set(err, ECH_ERR_CANCELED, "%s: canceled", o->url);
    case STOP_ERROR:
        return t->stop_code;
    case STOP_HTTP:
        return ech_error_set(err, ECH_ERR_HTTP, "%s: HTTP %ld%s%s", o->url, t->status,
                             t->reason[0] ? " " : "", t->reason);
    case STOP_COMPLETE:
        return ECH_OK;
    case STOP_RETRY:
        return ECH_ERR_RANGE;   /* the caller starts over; no message needed */
    case STOP_NONE:
        break;
    }
    if (rc != CURLE_OK)
        return ech_error_set(err, ECH_ERR_NET, "%s: %s", o->url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    if (!t->final)
        return ech_error_set(err, ECH_ERR_NET, "%s: no response", o->url);
    if (t->total && t->have != t->total)
        return ech_error_set(err, ECH_ERR_NET, "%s: transfer ended after %llu of %llu bytes", o->url,
                             (unsigned long long)t->have, (unsigned long long)t->total);
    return ECH_OK;
}

/* Compare the finished file with every digest we were given. */
static ech_status check_digests(const transfer *t, const char *got, int *verified, ech_error *err)
{
    char want[ECH_SHA256_HEX_LEN + 1] = "";
    if (t->o->sha256)
        hex_lower(t->o->sha256, want);
    const struct { const char *hex, *source; } claims[] = {
        {want, "--sha256"},
        {t->linked, "X-Linked-Etag"},
        {t->repr, "Digest header"},
        {t->etag, "ETag"},
    };
    *verified = 0;
    for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++) {
        if (!claims[i].hex[0])
            continue;
        if (strcmp(claims[i].hex, got) != 0)
            return ech_error_set(err, ECH_ERR_CHECKSUM,
                                 "%s: SHA-256 mismatch: expected %s (%s), got %s; download discarded",
                                 t->o->url, claims[i].hex, claims[i].source, got);
        *verified = 1;
    }
    return ECH_OK;
}

static int has_ctl_or_newline(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

ech_status ech_download(const ech_download_opts *o, ech_download_result *res, ech_error *err)
{
    if (res)
        memset(res, 0, sizeof *res);
    if (!o || !o->url || !o->dest || !*o->dest)
        return ech_error_set(err, ECH_ERR_INVALID, "ech_download: url and dest are required");
    if (!is_http_url(o->url) || has_ctl_or_newline(o->url))
        return ech_error_set(err, ECH_ERR_INVALID, "%s: not an http(s) URL", o->url);
    if (o->sha256 && !ech_sha256_hex_valid(o->sha256))
        return ech_error_set(err, ECH_ERR_INVALID, "expected SHA-256 is not 64 hex digits: %s", o->sha256);
    if (o->bearer_token && has_ctl_or_newline(o->bearer_token))
        return ech_error_set(err, ECH_ERR_INVALID, "the bearer token contains control characters");
    ech_status s = ensure_curl(err);
    if (s != ECH_OK)
        return s;
    if ((s = mkdir_parents(o->dest, err)) != ECH_OK)
        return s;

    ech_buf part = {0};
    if (ech_buf_printf(&part, "%s.part", o->dest) != ECH_OK)
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    int fd = open(part.data, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        s = ech_error_set(err, ECH_ERR_IO, "%s: %s", part.data, strerror(errno));
        ech_buf_free(&part);
        return s;
    }
    /* Only contention is fatal: some network file systems cannot lock. */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
        s = ech_error_set(err, ECH_ERR_IO, "%s: another download is writing this file", part.data);
        close(fd);
        ech_buf_free(&part);
        return s;
    }

    struct curl_slist *headers = NULL;
    CURL *curl = curl_easy_init();
    transfer t = {.o = o, .err = err, .fd = fd};
    if (!curl) {
        s = ech_error_set(err, ECH_ERR_NET, "cannot create a libcurl handle");
        goto fail;
    }
    if (o->bearer_token) {
        /* A custom Authorization header: libcurl drops it when a redirect
         * leaves the host, so a CDN never sees the token. */
        ech_buf auth = {0};
        struct curl_slist *grown = NULL;
        if (ech_buf_printf(&auth, "Authorization: Bearer %s", o->bearer_token) == ECH_OK)
            grown = curl_slist_append(NULL, auth.data);
        sodium_memzero(auth.data, auth.len);
        ech_buf_free(&auth);
        if (!grown) {
            s = ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
            goto fail;
        }
        headers = grown;
    }

    for (int attempt = 0;; attempt++) {
        s = run_transfer(curl, &t, headers);
        if (s == ECH_ERR_RANGE && t.stop == STOP_RETRY && attempt == 0) {
            if (truncate_part(&t) != ECH_OK) {
                s = ech_error_set(err, ECH_ERR_IO, "%s: %s", part.data, strerror(errno));
                goto fail;
            }
            continue;
        }
        if (s == ECH_ERR_RANGE && t.stop == STOP_RETRY)
            s = ech_error_set(err, ECH_ERR_NET, "%s: server refused to resume and to restart", o->url);
        break;
    }
    if (s != ECH_OK)
        goto fail;

    unsigned char digest[crypto_hash_sha256_BYTES];
    char got[ECH_SHA256_HEX_LEN + 1];
    crypto_hash_sha256_final(&t.hash, digest);
    bytes_to_hex(digest, got);
    int verified = 0;
    if ((s = check_digests(&t, got, &verified, err)) != ECH_OK) {
        unlink(part.data);
        goto fail;
    }
    if (fsync(fd) != 0) {
        s = ech_error_set(err, ECH_ERR_IO, "%s: %s", part.data, strerror(errno));
        goto fail;
    }
    if (rename(part.data, o->dest) != 0) {
        s = ech_error_set(err, ECH_ERR_IO, "cannot rename %s to %s: %s", part.data, o->dest, strerror(errno));
        goto fail;
    }
    sync_parent_dir(o->dest);
    if (res) {
        res->bytes = t.have;
        res->resumed_from = t.restarted ? 0 : t.offset;   /* offset of the last attempt */
        memcpy(res->sha256, got, sizeof res->sha256);
        res->verified = verified;
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    close(fd);   /* releases the lock */
    ech_buf_free(&part);
    return ECH_OK;

fail:
    /* An empty .part file only records that we tried: do not leave it. */
    {
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_size == 0)
            unlink(part.data);
    }
    curl_slist_free_all(headers);
    if (curl)
        curl_easy_cleanup(curl);
    close(fd);
    ech_buf_free(&part);
    return s;
}

/* ---- where models live ------------------------------------------------------ */

static ech_status join_path(char **out, const char *dir, const char *tail, ech_error *err)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    ech_buf b = {0};
    if (ech_buf_append(&b, dir, n) != ECH_OK ||
        (tail && (ech_buf_putc(&b, '/') != ECH_OK || ech_buf_puts(&b, tail) != ECH_OK))) {
        ech_buf_free(&b);
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    }
    *out = ech_buf_steal(&b);
    return ECH_OK;
}

ech_status ech_models_dir(char **out, ech_error *err)
{
    if (!out)
        return ech_error_set(err, ECH_ERR_INVALID, "ech_models_dir: out is NULL");
    *out = NULL;
    const char *v = getenv("ECH_MODELS");
    if (v && *v)
        return join_path(out, v, NULL, err);
    v = getenv("XDG_CACHE_HOME");
    if (v && v[0] == '/')   /* the XDG spec: relative paths are to be ignored */
        return join_path(out, v, "echostra/models", err);
    v = getenv("HOME");
    if (v && *v)
        return join_path(out, v, ".cache/echostra/models", err);
    return ech_error_set(err, ECH_ERR_NOT_FOUND,
                         "no model cache directory: set ECH_MODELS, XDG_CACHE_HOME or HOME");
}

/* ---- model references --------------------------------------------------------- */

/* One path component we are willing to create on disk. */
static int component_ok(const char *s, size_t n)
{
    if (n == 0 || n > MAX_COMPONENT)
        return 0;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
            return 0;
    }
    return 1;
}

/* Every '/'-separated component of s[0..n) is acceptable; counts them. */
static int components_ok(const char *s, size_t n, size_t *count)
{
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            if (!component_ok(s + start, i - start))
                return 0;
            k++;
            start = i + 1;
        }
    }
    *count = k;
    return 1;
}

/* Hub owner and repository names: letters, digits, '-', '_', '.'. */
static int hub_name_ok(const char *s, size_t n)
{
    if (!component_ok(s, n))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
            return 0;
    return 1;
}

/* Append s[0..n) percent-encoded; '/' stays literal only if keep_slash. */
static ech_status put_encoded(ech_buf *b, const char *s, size_t n, int keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        ech_status st;
        if (isalnum(c) || strchr("-._~", c) || (keep_slash && c == '/'))
            st = ech_buf_putc(b, (char)c);
        else {
            char esc[3] = {'%', digits[c >> 4], digits[c & 15]};
            st = ech_buf_append(b, esc, 3);
        }
        if (st != ECH_OK)
            return st;
    }
    return ECH_OK;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode %XX escapes of s[0..n) into a new string; NULL if malformed or
 * out of memory (*nomem tells which). */
static char *percent_decode(const char *s, size_t n, size_t *out_len, int *nomem)
{
    char *out = malloc(n + 1);
    *nomem = !out;
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            out[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[k++] = s[i];
        }
    }
    out[k] = '\0';
    *out_len = k;
    return out;
}

static ech_status resolve_hub(const char *spec, const char *revision, const char *models_dir,
                              char **url, char **dest, ech_error *err)
{
    const char *ref_for_msg = spec - 3;   /* "hf:" precedes spec */
    size_t n = strlen(spec), count = 0;
    if (spec[0] == '/' || !components_ok(spec, n, &count))
        return ech_error_set(err, ECH_ERR_INVALID,
                             "%s: refused: empty, '.', '..' or control characters in a path component",
                             ref_for_msg);
    if (count < 3)
        return ech_error_set(err, ECH_ERR_INVALID, "%s: expected hf:OWNER/REPO/FILE", ref_for_msg);
    size_t owner_len = strcspn(spec, "/");
    const char *repo = spec + owner_len + 1;
    size_t repo_len = strcspn(repo, "/");
    const char *file = repo + repo_len + 1;
    if (!hub_name_ok(spec, owner_len) || !hub_name_ok(repo, repo_len))
        return ech_error_set(err, ECH_ERR_INVALID,
                             "%s: owner and repository names are letters, digits, '-', '_' and '.'",
                             ref_for_msg);
    if (!revision)
        revision = "main";
    size_t rev_count;
    if (!components_ok(revision, strlen(revision), &rev_count))
        return ech_error_set(err, ECH_ERR_INVALID, "revision '%s' refused: empty, '.', '..' or control characters",
                             revision);

    const char *endpoint = getenv("ECH_HF_ENDPOINT");
    if (!endpoint || !*endpoint)
        endpoint = "https://huggingface.co";
    if (!is_http_url(endpoint) || has_ctl_or_newline(endpoint))
        return ech_error_set(err, ECH_ERR_INVALID, "ECH_HF_ENDPOINT is not an http(s) URL: %s", endpoint);
    size_t ep_len = strlen(endpoint);
    while (ep_len && endpoint[ep_len - 1] == '/')
        ep_len--;

    ech_buf u = {0}, d = {0};
    ech_status s = ECH_OK;
    if (ech_buf_append(&u, endpoint, ep_len) || ech_buf_putc(&u, '/') ||
        ech_buf_append(&u, spec, owner_len) || ech_buf_putc(&u, '/') ||
        ech_buf_append(&u, repo, repo_len) || ech_buf_puts(&u, "/resolve/") ||
        put_encoded(&u, revision, strlen(revision), 0) || ech_buf_putc(&u, '/') ||
        put_encoded(&u, file, strlen(file), 1))
        s = ECH_ERR_NOMEM;
    if (s == ECH_OK && dest) {
        size_t dir_len = strlen(models_dir);
        while (dir_len > 1 && models_dir[dir_len - 1] == '/')
            dir_len--;
        /* main lives at hf/OWNER/REPO/PATH; any other revision gets its own
         * tree, hf/OWNER/REPO@REV/PATH, so revisions never satisfy each other */
        int is_main = strcmp(revision, "main") == 0;
        if (ech_buf_append(&d, models_dir, dir_len) || ech_buf_puts(&d, "/hf/") ||
            ech_buf_append(&d, spec, owner_len + 1 + repo_len) ||
            (!is_main && (ech_buf_putc(&d, '@') || put_encoded(&d, revision, strlen(revision), 0))) ||
            ech_buf_putc(&d, '/') || ech_buf_puts(&d, file))
            s = ECH_ERR_NOMEM;
    }
    if (s != ECH_OK) {
        ech_buf_free(&u);
        ech_buf_free(&d);
        return ech_error_set(err, s, "out of memory");
    }
    *url = ech_buf_steal(&u);
    if (dest)
        *dest = ech_buf_steal(&d);
    return ECH_OK;
}

static ech_status resolve_url(const char *ref, const char *models_dir, char **url, char **dest,
                              ech_error *err)
{
    for (const char *p = ref; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return ech_error_set(err, ECH_ERR_INVALID, "URL contains spaces or control characters");
    const char *host = strstr(ref, "://") + 3;
    size_t authority_len = strcspn(host, "/?#");
    const char *at = memchr(host, '@', authority_len);
    if (at) {   /* drop user:password@ from the cache name */
        authority_len -= (size_t)(at + 1 - host);
        host = at + 1;
    }
    if (!component_ok(host, authority_len))
        return ech_error_set(err, ECH_ERR_INVALID, "%s: no usable host name", ref);
    const char *path = host + authority_len;
    size_t path_len = strcspn(path, "?#");
    const char *slash = NULL;
    for (size_t i = 0; i < path_len; i++)
        if (path[i] == '/')
            slash = path + i;
    if (!slash || slash + 1 == path + path_len)
        return ech_error_set(err, ECH_ERR_INVALID, "%s: the URL names no file", ref);
    int nomem = 0;
    size_t name_len = 0;
    char *name = percent_decode(slash + 1, (size_t)(path + path_len - slash - 1), &name_len, &nomem);
    if (!name)
        return nomem ? ech_error_set(err, ECH_ERR_NOMEM, "out of memory")
                     : ech_error_set(err, ECH_ERR_INVALID, "%s: malformed %%-escape", ref);
    if (name_len != strlen(name) || !component_ok(name, name_len)) {
        free(name);
        return ech_error_set(err, ECH_ERR_INVALID, "%s: refused file name (empty, '.', '..', '/' or control characters)",
                             ref);
    }
    ech_buf u = {0}, d = {0};
    ech_status s = ech_buf_puts(&u, ref);
    if (s == ECH_OK && dest) {
        size_t dir_len = strlen(models_dir);
        while (dir_len > 1 && models_dir[dir_len - 1] == '/')
            dir_len--;
        s = ech_buf_append(&d, models_dir, dir_len);
        if (s == ECH_OK)
            s = ech_buf_putc(&d, '/');
        for (size_t i = 0; s == ECH_OK && i < authority_len; i++)
            s = ech_buf_putc(&d, (char)tolower((unsigned char)host[i]));
        if (s == ECH_OK)
            s = ech_buf_putc(&d, '/');
        if (s == ECH_OK)
            s = ech_buf_puts(&d, name);
    }
    free(name);
    if (s != ECH_OK) {
        ech_buf_free(&u);
        ech_buf_free(&d);
        return ech_error_set(err, ECH_ERR_NOMEM, "out of memory");
    }
    *url = ech_buf_steal(&u);
    if (dest)
        *dest = ech_buf_steal(&d);
    return ECH_OK;
}

ech_status ech_model_ref_resolve(const char *ref, const char *revision, const char *models_dir,
                                 char **url, char **dest, ech_error *err)
{
    if (!ref || !url)
        return ech_error_set(err, ECH_ERR_INVALID, "ech_model_ref_resolve: ref and url are required");
    *url = NULL;
    if (dest)
        *dest = NULL;
    if (strlen(ref) > MAX_REF)
        return ech_error_set(err, ECH_ERR_INVALID, "model reference too long");
    char *own_dir = NULL;
    if (dest && !models_dir) {
        ech_status s = ech_models_dir(&own_dir, err);
        if (s != ECH_OK)
            return s;
        models_dir = own_dir;
    }
    ech_status s;
    if (strncmp(ref, "hf:", 3) == 0)
        s = resolve_hub(ref + 3, revision, models_dir, url, dest, err);
    else if (is_http_url(ref))
        s = resolve_url(ref, models_dir, url, dest, err);
    else
        s = ech_error_set(err, ECH_ERR_INVALID,
                          "%s: not a model reference (expected hf:OWNER/REPO/FILE or an http(s) URL)", ref);
    free(own_dir);
    return s;
}
