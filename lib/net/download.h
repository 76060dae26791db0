/* download.h - fetch a model file over HTTP(S): resumable, verified, atomic.
 *
 * Data goes to "<dest>.part" and is renamed to <dest> only once it is whole
 * and its SHA-256 matches what is expected (given by the caller, or stated by
 * the server in X-Linked-Etag / ETag / Digest headers, as the Hugging Face
 * Hub does for large files).  A cut transfer leaves the .part file behind and
 * the next call resumes it with an HTTP Range request.  A digest mismatch
 * removes the .part file: nothing unverified is left in place.
 */
#ifndef ECH_NET_DOWNLOAD_H
#define ECH_NET_DOWNLOAD_H

#include <stdint.h>

#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called as bytes arrive: `done` of `total` (0 when unknown), counting bytes
 * resumed from an earlier attempt.  Return nonzero to cancel. */
typedef int (*ech_download_progress_fn)(void *user, uint64_t done, uint64_t total);

typedef struct ech_download_opts {
    const char *url;               /* http:// or https:// */
    const char *dest;              /* final path of the file */
    const char *sha256;            /* expected digest (64 hex digits) or NULL */
    const char *bearer_token;      /* Authorization: Bearer ..., or NULL */
    ech_download_progress_fn progress; /* may be NULL */
    void *progress_user;
    long connect_timeout_s;        /* 0: 30 s */
    long low_speed_timeout_s;      /* abort if under 1 KiB/s for this long; 0: 60 s */
} ech_download_opts;

typedef struct ech_download_result {
    uint64_t bytes;                /* size of the finished file */
    uint64_t resumed_from;         /* bytes reused from an earlier .part file */
    char sha256[65];               /* digest of the finished file */
    int verified;                  /* 1 if checked against a caller or server digest */
} ech_download_result;

/* Download `o->url` to `o->dest`, creating its missing parent directories.
 * Redirects are followed (at most 10, http and https only); the bearer token
 * is not sent on to another host.  ECH_ERR_HTTP for an HTTP error status (the
 * message names it), ECH_ERR_NET for transport failures, ECH_ERR_CHECKSUM for
 * a digest mismatch, ECH_ERR_CANCELED if the progress callback stopped it. */
ech_status ech_download(const ech_download_opts *o, ech_download_result *res, ech_error *err);

/* Where models are cached: $ECH_MODELS, else $XDG_CACHE_HOME/echostra/models,
 * else $HOME/.cache/echostra/models.  Returns a malloc'ed path (caller frees). */
ech_status ech_models_dir(char **out, ech_error *err);

/* Turn a model reference into a URL and a cache path (both malloc'ed; the
 * caller frees them):
 *   hf:OWNER/REPO/PATH  -> $ECH_HF_ENDPOINT (default https://huggingface.co)
 *                          /OWNER/REPO/resolve/REVISION/PATH,
 *                          cached as DIR/hf/OWNER/REPO/PATH (REVISION main)
 *                          or DIR/hf/OWNER/REPO@REVISION/PATH (others, with
 *                          '/' in REVISION written %2F)
 *   http(s)://HOST/...  -> itself, cached as DIR/HOST/<last path segment>
 * `revision` NULL means "main".  Components with "..", empty names or
 * control characters are refused (ECH_ERR_INVALID).  `models_dir` NULL means
 * ech_models_dir(); `dest` may be NULL when only the URL is wanted. */
ech_status ech_model_ref_resolve(const char *ref, const char *revision, const char *models_dir,
                                 char **url, char **dest, ech_error *err);

#ifdef __cplusplus
}
#endif
#endif
