/* cli.c - option tables, --help and error messages for the tools. */
#include "config.h"
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ech.h"

enum { MAX_OPTS = 64 };

int ech_cli_next(ech_cli *cli, int argc, char **argv)
{
    struct option longs[MAX_OPTS + 1];
    char shorts[3 * MAX_OPTS + 2];
    size_t nl = 0, ns = 0;
    shorts[ns++] = ':';   /* report a missing argument as ':' */
    for (const ech_cli_opt *o = cli->opts; o->id && nl < MAX_OPTS; o++) {
        longs[nl++] = (struct option){o->name, o->arg ? required_argument : no_argument, NULL, o->id};
        if (o->short_name) {
            shorts[ns++] = o->short_name;
            if (o->arg)
                shorts[ns++] = ':';
        }
    }
    longs[nl] = (struct option){0, 0, 0, 0};
    shorts[ns] = '\0';
    opterr = 0;
    int c = getopt_long(argc, argv, shorts, longs, NULL);
    cli->optarg = optarg;
    cli->optind = optind;
    if (c == -1)
        return -1;
    if (c == '?' || c == ':') {
        const char *what = optopt ? NULL : argv[optind - 1];
        char shortbuf[3] = {'-', (char)optopt, 0};
        if (!what)
            what = shortbuf;
        if (c == ':')
            ech_cli_usage_error(cli, "option '%s' needs an argument", what);
        else
            ech_cli_usage_error(cli, "unknown option '%s'", what);
        return '?';
    }
    /* short letters map to the table id */
    for (const ech_cli_opt *o = cli->opts; o->id; o++)
        if (o->short_name && o->short_name == c)
            return o->id;
    return c;
}

void ech_cli_help(const ech_cli *cli, FILE *out)
{
    fprintf(out, "Usage: %s %s\n", cli->prog, cli->usage);
    if (cli->about)
        fprintf(out, "%s\n", cli->about);
    fprintf(out, "\nOptions:\n");
    for (const ech_cli_opt *o = cli->opts; o->id; o++) {
        char left[64];
        int n = snprintf(left, sizeof left, "%s%c%s--%s%s%s",
                         o->short_name ? "-" : "   ", o->short_name ? o->short_name : ' ',
                         o->short_name ? ", " : "", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        if (n < 0)
            continue;
        if ((size_t)n > 26)
            fprintf(out, "  %s\n  %-26s %s\n", left, "", o->help);
        else
            fprintf(out, "  %-26s %s\n", left, o->help);
    }
    fprintf(out, "\nSee %s(1) for details.\n", cli->prog);
}

void ech_cli_version(const ech_cli *cli)
{
    printf("%s (echostra) %s\n", cli->prog, ech_version());
}

void ech_cli_error(const ech_cli *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli->prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int ech_cli_usage_error(const ech_cli *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli->prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", cli->prog);
    va_end(ap);
    return ECH_EXIT_USAGE;
}

int ech_cli_parse_u64(const ech_cli *cli, const char *opt, const char *s, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-') {
        ech_cli_usage_error(cli, "%s: expected a non-negative integer, got '%s'", opt, s ? s : "");
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) {
        ech_cli_usage_error(cli, "%s: expected a non-negative integer, got '%s'", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

char *ech_cli_read_file(const ech_cli *cli, const char *path, size_t *len)
{
    ech_mapfile mf;
    ech_error err;
    ech_status st = strcmp(path, "-") == 0 ? ech_mapfile_open_fd(&mf, 0, "<stdin>", 1, &err)
                                           : ech_mapfile_open(&mf, path, &err);
    if (st != ECH_OK) {
        ech_cli_error(cli, "%s", err.msg);
        return NULL;
    }
    char *s = malloc(mf.size + 1);
    if (s) {
        if (mf.size)
            memcpy(s, mf.data, mf.size);
        s[mf.size] = '\0';
        *len = mf.size;
    } else {
        ech_cli_error(cli, "out of memory");
    }
    ech_mapfile_close(&mf);
    return s;
}

json_object *ech_cli_read_json(const ech_cli *cli, const char *path, int want, const char *what)
{
    size_t len;
    char *text = ech_cli_read_file(cli, path, &len);
    if (!text)
        return NULL;
    json_tokener *tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
    json_object *j = tok ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
    if (tok && (!j || json_tokener_get_error(tok) != json_tokener_success)) {
        ech_cli_error(cli, "%s: not valid JSON: %s", path,
                      json_tokener_error_desc(json_tokener_get_error(tok)));
        json_object_put(j);
        j = NULL;
    } else if (j && !json_object_is_type(j, (json_type)want)) {
        ech_cli_error(cli, "%s: %s must be a JSON %s", path, what, want == json_type_array ? "array" : "object");
        json_object_put(j);
        j = NULL;
    }
    json_tokener_free(tok);
    free(text);
    return j;
}

json_object *ech_cli_message(const char *role, const char *content)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string(role));
    json_object_object_add(m, "content", ech_json_string(content, strlen(content)));
    return m;
}

json_object *ech_cli_conversation(const ech_cli *cli, const char *messages_path, const char *system,
                                  const char *prompt)
{
    if (messages_path)
        return ech_cli_read_json(cli, messages_path, json_type_array, "the messages");
    json_object *msgs = json_object_new_array();
    if (system)
        json_object_array_add(msgs, ech_cli_message("system", system));
    json_object_array_add(msgs, ech_cli_message("user", prompt));
    return msgs;
}
