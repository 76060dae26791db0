/* fuzz-net.c - libFuzzer target for the text parsers in lib/net/download.c:
 * HTTP response header lines (status line, ETag / X-Linked-Etag, Digest /
 * Repr-Digest, Content-Range, Content-Length) and model references
 * (hf:OWNER/REPO/PATH, URLs) with revisions.
 *
 * The source is included so its static parsers can be driven directly; the
 * blank line that would start a body (and touch files) is never fed.
 */
#include "net/download.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    /* 1. every non-blank line as a response header line */
    transfer t;
    memset(&t, 0, sizeof t);
    t.fd = -1;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        size_t len = next ? (size_t)(next - line) + 1 : strlen(line);
        if (next)
            next++;
        int blank = strspn(line, "\r\n") >= len;   /* on_header would start a body */
        if (!blank)
            on_header(line, 1, len, &t);
        if (t.linked[0] && !ech_sha256_hex_valid(t.linked))
            abort();
        if (t.etag[0] && !ech_sha256_hex_valid(t.etag))
            abort();
        if (t.repr[0] && !ech_sha256_hex_valid(t.repr))
            abort();
    }

    /* 2. first line as a model reference, second as a revision */
    char *nl = strchr(text, '\n');
    const char *rev = NULL;
    if (nl) {
        *nl = '\0';
        rev = nl + 1;
        char *nl2 = strchr(nl + 1, '\n');
        if (nl2)
            *nl2 = '\0';
    }
    char *url = NULL, *dest = NULL;
    ech_error err;
    if (ech_model_ref_resolve(text, rev, "/cache", &url, &dest, &err) == ECH_OK) {
        if (!url || !dest || strstr(dest, "/../") || !is_http_url(url))
            abort();
    }
    free(url);
    free(dest);
    free(text);
    return 0;
}
