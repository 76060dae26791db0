/* cli.h - what every ech-* tool does the same way: options, help, errors.
 *
 * Each tool declares one table of options; the table drives both parsing
 * (getopt_long underneath) and the --help text, so they cannot disagree.
 * Exit codes: 0 ok, 1 failure, 2 usage error.
 */
#ifndef ECH_BIN_CLI_H
#define ECH_BIN_CLI_H

#include <stdio.h>

enum { ECH_EXIT_OK = 0, ECH_EXIT_FAIL = 1, ECH_EXIT_USAGE = 2 };

/* Ids for the options every tool has. */
enum { ECH_OPT_HELP = 'h', ECH_OPT_VERSION = 0x100 };

typedef struct ech_cli_opt {
    int id;              /* returned by ech_cli_next: the short letter, or >= 0x100 */
    char short_name;     /* 0 if none */
    const char *name;    /* long name, without "--" */
    const char *arg;     /* NULL for a flag, else the argument's name for --help */
    const char *help;
} ech_cli_opt;

#define ECH_CLI_STANDARD_OPTS \
    {ECH_OPT_HELP, 'h', "help", NULL, "show this help and exit"}, \
    {ECH_OPT_VERSION, 0, "version", NULL, "show the version and exit"}

typedef struct ech_cli {
    const char *prog;          /* "ech-inspect" */
    const char *usage;         /* "[OPTION]... [FILE]..." */
    const char *about;         /* one paragraph for --help */
    const ech_cli_opt *opts;   /* terminated by an entry with id 0 */
    const char *optarg;        /* argument of the option just returned */
    int optind;                /* index of the first operand once done */
} ech_cli;

/* Next option id; -1 when options are done (operands start at cli->optind);
 * '?' after printing a usage message for an unknown option or missing
 * argument (the caller exits ECH_EXIT_USAGE). */
int ech_cli_next(ech_cli *cli, int argc, char **argv);

void ech_cli_help(const ech_cli *cli, FILE *out);
void ech_cli_version(const ech_cli *cli);

/* "PROG: message" on stderr. */
void ech_cli_error(const ech_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print a usage error with a hint to try --help; returns ECH_EXIT_USAGE. */
int ech_cli_usage_error(const ech_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse a non-negative integer option value; on error prints and returns -1. */
int ech_cli_parse_u64(const ech_cli *cli, const char *opt, const char *s, unsigned long long *out);

/* Read a whole file ("-": stdin) as a NUL-terminated, malloc'ed string; NULL
 * after printing why. */
char *ech_cli_read_file(const ech_cli *cli, const char *path, size_t *len);

/* Read a JSON file that must be an array or an object (`want`); NULL after
 * printing why.  `what` names it in messages ("the messages"). */
struct json_object;
struct json_object *ech_cli_read_json(const ech_cli *cli, const char *path, int want, const char *what);

/* {"role": role, "content": content} (a new reference). */
struct json_object *ech_cli_message(const char *role, const char *content);

/* The conversation a chat tool was given: the JSON array in messages_path,
 * or else [system message if any, user message `prompt`].  A new reference,
 * or NULL after printing why. */
struct json_object *ech_cli_conversation(const ech_cli *cli, const char *messages_path,
                                         const char *system, const char *prompt);

#endif
