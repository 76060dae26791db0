/* t-net.c - model references and the cache directory (no network). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ech.h"
#include "tap.h"

static void check_models_dir(const char *want, const char *what)
{
    char *dir = NULL;
    ech_error err;
    ech_status s = ech_models_dir(&dir, &err);
    is_int(s, ECH_OK, "models dir: %s (status)", what);
    is_str(dir, want, "models dir: %s", what);
    free(dir);
}

static void test_models_dir(void)
{
    setenv("HOME", "/home/u", 1);
    unsetenv("ECH_MODELS");
    unsetenv("XDG_CACHE_HOME");
    check_models_dir("/home/u/.cache/echostra/models", "HOME fallback");
    setenv("XDG_CACHE_HOME", "/xdg/cache/", 1);
    check_models_dir("/xdg/cache/echostra/models", "XDG_CACHE_HOME over HOME");
    setenv("XDG_CACHE_HOME", "relative/cache", 1);
    check_models_dir("/home/u/.cache/echostra/models", "relative XDG_CACHE_HOME ignored");
    setenv("XDG_CACHE_HOME", "/xdg/cache", 1);
    setenv("ECH_MODELS", "/models//", 1);
    check_models_dir("/models", "ECH_MODELS over everything");
    setenv("ECH_MODELS", "", 1);
    check_models_dir("/xdg/cache/echostra/models", "empty ECH_MODELS ignored");

    unsetenv("ECH_MODELS");
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
    char *dir = (char *)"untouched";
    ech_error err;
    is_int(ech_models_dir(&dir, &err), ECH_ERR_NOT_FOUND, "no HOME: not found");
    ok(dir == NULL, "no HOME: out set to NULL");
    ok(strstr(err.msg, "ECH_MODELS") != NULL, "no HOME: message names ECH_MODELS");
}

static void check_resolve(const char *ref, const char *rev, const char *want_url, const char *want_dest)
{
    char *url = NULL, *dest = NULL;
    ech_error err;
    ech_status s = ech_model_ref_resolve(ref, rev, "/cache/", &url, &dest, &err);
    if (!ok(s == ECH_OK, "resolve %s", ref))
        printf("#   %s\n", err.msg);
    is_str(url, want_url, "url of %s", ref);
    is_str(dest, want_dest, "cache path of %s", ref);
    free(url);
    free(dest);
}

static void check_refused(const char *ref, const char *rev, const char *what)
{
    char *url = (char *)"x", *dest = (char *)"x";
    ech_error err;
    ech_status s = ech_model_ref_resolve(ref, rev, "/cache", &url, &dest, &err);
    is_int(s, ECH_ERR_INVALID, "refused: %s", what);
    ok(url == NULL && dest == NULL, "refused: %s: outputs NULL", what);
}

static void test_resolve(void)
{
    unsetenv("ECH_HF_ENDPOINT");
    check_resolve("hf:owner/repo/model.Q4_K_M.gguf", NULL,
                  "https://huggingface.co/owner/repo/resolve/main/model.Q4_K_M.gguf",
                  "/cache/hf/owner/repo/model.Q4_K_M.gguf");
    check_resolve("hf:o/r/sub dir/m+1.gguf", "v1.0",
                  "https://huggingface.co/o/r/resolve/v1.0/sub%20dir/m%2B1.gguf", "/cache/hf/o/r@v1.0/sub dir/m+1.gguf");
    check_resolve("hf:o/r/m.gguf", "refs/pr/1", "https://huggingface.co/o/r/resolve/refs%2Fpr%2F1/m.gguf",
                  "/cache/hf/o/r@refs%2Fpr%2F1/m.gguf");
    check_resolve("hf:o/r/m.gguf", "main", "https://huggingface.co/o/r/resolve/main/m.gguf",
                  "/cache/hf/o/r/m.gguf");
    setenv("ECH_HF_ENDPOINT", "http://127.0.0.1:8080/", 1);
    check_resolve("hf:o/r/m.gguf", NULL, "http://127.0.0.1:8080/o/r/resolve/main/m.gguf", "/cache/hf/o/r/m.gguf");
    setenv("ECH_HF_ENDPOINT", "ftp://mirror", 1);
    char *url = NULL;
    ech_error err;
    is_int(ech_model_ref_resolve("hf:o/r/m.gguf", NULL, "/cache", &url, NULL, &err), ECH_ERR_INVALID,
           "non-http ECH_HF_ENDPOINT refused");
    unsetenv("ECH_HF_ENDPOINT");

    check_resolve("https://Example.COM/a/b/model.gguf?download=1#x", NULL,
                  "https://Example.COM/a/b/model.gguf?download=1#x", "/cache/example.com/model.gguf");
    check_resolve("http://user:pw@127.0.0.1:8000/x%20y.gguf", NULL, "http://user:pw@127.0.0.1:8000/x%20y.gguf",
                  "/cache/127.0.0.1:8000/x y.gguf");

    /* the URL alone: no cache directory needed */
    is_int(ech_model_ref_resolve("hf:o/r/m.gguf", NULL, NULL, &url, NULL, &err), ECH_OK, "dest NULL: ok");
    is_str(url, "https://huggingface.co/o/r/resolve/main/m.gguf", "dest NULL: url");
    free(url);

    check_refused("hf:o/r/../../../etc/passwd", NULL, "'..' in the file path");
    check_refused("hf:../r/m.gguf", NULL, "'..' as owner");
    check_refused("hf:o/../m.gguf", NULL, "'..' as repo");
    check_refused("hf:/o/r/m.gguf", NULL, "absolute path");
    check_refused("hf:o//r/m.gguf", NULL, "empty component");
    check_refused("hf:o/r/m.gguf/", NULL, "trailing slash");
    check_refused("hf:o/r/./m.gguf", NULL, "'.' component");
    check_refused("hf:o/r/m\n.gguf", NULL, "control character");
    check_refused("hf:o/r/a\\..\\m.gguf", NULL, "backslash");
    check_refused("hf:o/r", NULL, "no file");
    check_refused("hf:o w/r/m.gguf", NULL, "space in owner");
    check_refused("hf:o/r/m.gguf", "../main", "'..' in the revision");
    check_refused("hf:o/r/m.gguf", "", "empty revision");
    check_refused("https://example.com/", NULL, "URL without a file");
    check_refused("https://example.com", NULL, "URL without a path");
    check_refused("https://example.com/a/..", NULL, "URL ending in '..'");
    check_refused("https://example.com/%2e%2e", NULL, "URL with encoded '..'");
    check_refused("https://example.com/a%2Fb", NULL, "URL with an encoded '/'");
    check_refused("https://example.com/a%00b", NULL, "URL with an encoded NUL");
    check_refused("https://example.com/a%zz", NULL, "URL with a bad escape");
    check_refused("https://example.com/a b", NULL, "URL with a space");
    check_refused("https://../x.gguf", NULL, "URL host '..'");
    check_refused("ftp://example.com/x.gguf", NULL, "other scheme");
    check_refused("model.gguf", NULL, "plain name");
}

static void test_download_args(void)
{
    ech_error err;
    ech_download_opts o = {.url = "file:///etc/passwd", .dest = "/tmp/x"};
    is_int(ech_download(&o, NULL, &err), ECH_ERR_INVALID, "download: file:// refused");
    o = (ech_download_opts){.url = "http://127.0.0.1/x", .dest = "/tmp/x", .sha256 = "abc"};
    is_int(ech_download(&o, NULL, &err), ECH_ERR_INVALID, "download: short sha256 refused");
    o = (ech_download_opts){.url = "http://127.0.0.1/x", .dest = "/tmp/x", .bearer_token = "a\r\nX-Evil: 1"};
    is_int(ech_download(&o, NULL, &err), ECH_ERR_INVALID, "download: token with CR/LF refused");
    o = (ech_download_opts){.url = "http://127.0.0.1/x"};
    is_int(ech_download(&o, NULL, &err), ECH_ERR_INVALID, "download: no dest refused");
}

int main(void)
{
    test_models_dir();
    test_resolve();
    test_download_args();
    return done_testing();
}
