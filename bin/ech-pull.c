/* ech-pull - download a model into the cache (or a given path) and print
 * where it is.  The work is ech_download(); this file adds the command line,
 * the cache short-cut, a progress bar and Ctrl-C. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ech.h"

enum { OPT_OUTPUT = 'o', OPT_QUIET = 'q', OPT_SHA256 = 0x101, OPT_REVISION, OPT_FORCE };

static const ech_cli_opt options[] = {
    {OPT_OUTPUT, 'o', "output", "PATH", "write the file to PATH instead of the model cache"},
    {OPT_SHA256, 0, "sha256", "HEX", "require this SHA-256 (64 hex digits)"},
    {OPT_REVISION, 0, "revision", "REV", "Hub branch, tag or commit for hf: references (default main)"},
    {OPT_FORCE, 0, "force", NULL, "download again even if the file is already there"},
    {OPT_QUIET, 'q', "quiet", NULL, "no progress bar"},
    ECH_CLI_STANDARD_OPTS,
    {0, 0, NULL, NULL, NULL},
};

static ech_cli cli = {
    .prog = "ech-pull",
    .usage = "[OPTION]... REF",
    .about = "Download a model and print its path.  REF is hf:OWNER/REPO/FILE (a file of a\n"
             "Hugging Face repository), an http(s) URL, or the path of a local file.\n"
             "Downloads resume where they stopped and are checked against the SHA-256\n"
             "the server states or --sha256 gives.",
    .opts = options,
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* ---- progress bar ----------------------------------------------------------- */

typedef struct progress {
    int draw;                 /* stderr is a terminal and not --quiet */
    const char *label;
    double started, last;
    uint64_t first_done;
    int drawn;
} progress;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human_bytes(double n, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (n >= 1024 && u < 4)
        n /= 1024, u++;
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", n, units[u]);
}

static int terminal_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
        return ws.ws_col;
    return 80;
}

static int on_progress(void *user, uint64_t done, uint64_t total)
{
    if (interrupted)
        return 1;
    progress *p = user;
    if (!p->draw)
        return 0;
    double t = now_s();
    if (!p->started || done < p->first_done) {   /* first call, or restarted from zero */
        p->started = t;
        p->first_done = done;
    }
    if (p->drawn && t - p->last < 0.1 && !(total && done >= total))
        return 0;
    p->last = t;
    if (total && done > total)
        total = done;

    char have[32], all[32] = "?", rate[32] = "", eta[32] = "";
    human_bytes((double)done, have, sizeof have);
    if (total)
        human_bytes((double)total, all, sizeof all);
    double elapsed = t - p->started;
    double speed = elapsed > 0.5 ? (double)(done - p->first_done) / elapsed : 0;
    if (speed > 0) {
        human_bytes(speed, rate, sizeof rate);
        strcat(rate, "/s");
        if (total > done) {
            double left = (double)(total - done) / speed;
            if (left < 360000)
                snprintf(eta, sizeof eta, "%d:%02d:%02d", (int)left / 3600, (int)left / 60 % 60, (int)left % 60);
        }
    }
    char right[128];
    int pct = total ? (int)(100.0 * (double)done / (double)total) : 0;
    snprintf(right, sizeof right, " %3d%% %s / %s %s %s", pct, have, all, rate, eta);

    /* label, a bar filling the rest of the line, then the numbers */
    int width = terminal_width() - 1;
    int label_w = (int)strlen(p->label);
    if (label_w > width / 4)
        label_w = width / 4;
    int bar_w = width - label_w - 3 - (int)strlen(right);
    char bar[256];
    if (bar_w > (int)sizeof bar - 1)
        bar_w = (int)sizeof bar - 1;
    if (bar_w < 0)
        bar_w = 0;
    int fill = total ? (int)((double)bar_w * (double)done / (double)total) : 0;
    for (int i = 0; i < bar_w; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[bar_w] = '\0';
    fprintf(stderr, "\r%.*s [%s]%s\033[K", label_w, p->label, bar, right);
    fflush(stderr);
    p->drawn = 1;
    return 0;
}

static void progress_end(progress *p)
{
    if (p->drawn)
        fputc('\n', stderr);
    p->drawn = 0;
}

/* ---- the command ------------------------------------------------------------ */

typedef struct pull_opts {
    const char *output, *sha256, *revision;
    int force, quiet;
} pull_opts;

static int print_path(const char *path)
{
    char *abs = realpath(path, NULL);
    if (!abs) {
        ech_cli_error(&cli, "%s: %s", path, strerror(errno));
        return ECH_EXIT_FAIL;
    }
    printf("%s\n", abs);
    free(abs);
    return ECH_EXIT_OK;
}

static int is_regular_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A file already in place: check it if asked, then name it. */
static int use_existing(const char *path, const pull_opts *o)
{
    if (o->sha256) {
        char got[ECH_SHA256_HEX_LEN + 1];
        ech_error err;
        if (ech_sha256_file(path, got, &err) != ECH_OK) {
            ech_cli_error(&cli, "%s", err.msg);
            return ECH_EXIT_FAIL;
        }
        if (strcasecmp(got, o->sha256) != 0) {
            ech_cli_error(&cli, "%s: SHA-256 is %s, expected %s (--force downloads it again)", path, got,
                          o->sha256);
            return ECH_EXIT_FAIL;
        }
    }
    return print_path(path);
}

static int is_remote_ref(const char *ref)
{
    return strncmp(ref, "hf:", 3) == 0 || strncasecmp(ref, "http://", 7) == 0 ||
           strncasecmp(ref, "https://", 8) == 0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int pull(const char *ref, const pull_opts *o)
{
    if (!is_remote_ref(ref)) {
        if (is_regular_file(ref))
            return use_existing(ref, o);
        ech_cli_error(&cli, "%s: %s (and not hf:OWNER/REPO/FILE or an http(s) URL)", ref,
                      access(ref, F_OK) == 0 ? "not a regular file" : "no such file");
        return ECH_EXIT_FAIL;
    }
    char *url = NULL, *dest = NULL;
    ech_error err;
    ech_status s = ech_model_ref_resolve(ref, o->revision, NULL, &url, o->output ? NULL : &dest, &err);
    if (s != ECH_OK) {
        ech_cli_error(&cli, "%s", err.msg);
        return s == ECH_ERR_INVALID ? ECH_EXIT_USAGE : ECH_EXIT_FAIL;
    }
    if (o->output && !(dest = strdup(o->output))) {
        free(url);
        ech_cli_error(&cli, "out of memory");
        return ECH_EXIT_FAIL;
    }

    int rc;
    if (!o->force && is_regular_file(dest)) {
        rc = use_existing(dest, o);
        goto done;
    }
    if (o->force) {   /* start from zero, not from an old .part file */
        size_t n = strlen(dest) + sizeof ".part";
        char *part = malloc(n);
        if (part) {
            snprintf(part, n, "%s.part", dest);
            unlink(part);
            free(part);
        }
    }

    /* The Hub token goes only to the Hub: hf: references are resolved
     * against its endpoint, plain URLs may point anywhere. */
    const char *token = getenv("HF_TOKEN");
    if (strncmp(ref, "hf:", 3) != 0 || (token && !*token))
        token = NULL;

    progress bar = {.draw = !o->quiet && isatty(STDERR_FILENO), .label = base_name(dest)};
    ech_download_opts dl = {
        .url = url,
        .dest = dest,
        .sha256 = o->sha256,
        .bearer_token = token,
        .progress = on_progress,
        .progress_user = &bar,
    };
    ech_download_result res;
    s = ech_download(&dl, &res, &err);
    progress_end(&bar);
    if (s == ECH_ERR_CANCELED && interrupted) {
        ech_cli_error(&cli, "interrupted; %s.part is kept and the next pull resumes it", dest);
        rc = ECH_EXIT_FAIL;
    } else if (s != ECH_OK) {
        ech_cli_error(&cli, "%s", err.msg);
        rc = ECH_EXIT_FAIL;
    } else {
        rc = print_path(dest);
    }
done:
    free(url);
    free(dest);
    return rc;
}

int main(int argc, char **argv)
{
    pull_opts o = {0};
    int c;
    while ((c = ech_cli_next(&cli, argc, argv)) != -1) {
        switch (c) {
        case OPT_OUTPUT: o.output = cli.optarg; break;
        case OPT_SHA256: o.sha256 = cli.optarg; break;
        case OPT_REVISION: o.revision = cli.optarg; break;
        case OPT_FORCE: o.force = 1; break;
        case OPT_QUIET: o.quiet = 1; break;
        case ECH_OPT_HELP: ech_cli_help(&cli, stdout); return ECH_EXIT_OK;
        case ECH_OPT_VERSION: ech_cli_version(&cli); return ECH_EXIT_OK;
        default: return ECH_EXIT_USAGE;
        }
    }
    if (argc - cli.optind != 1)
        return ech_cli_usage_error(&cli, argc == cli.optind ? "no model reference given"
                                                            : "one model reference at a time");
    if (o.sha256 && !ech_sha256_hex_valid(o.sha256))
        return ech_cli_usage_error(&cli, "--sha256: expected 64 hex digits, got '%s'", o.sha256);
    if (o.output && !*o.output)
        return ech_cli_usage_error(&cli, "--output: empty path");
    struct stat st;
    if (o.output && stat(o.output, &st) == 0 && S_ISDIR(st.st_mode))
        return ech_cli_usage_error(&cli, "--output: %s is a directory; give a file name", o.output);

    /* No SA_RESTART: a blocked poll in libcurl returns, and the progress
     * callback stops the transfer, keeping the .part file for later. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int rc = pull(argv[cli.optind], &o);
    if (fflush(stdout) != 0) {
        ech_cli_error(&cli, "write error on stdout");
        rc = ECH_EXIT_FAIL;
    }
    return rc;
}
