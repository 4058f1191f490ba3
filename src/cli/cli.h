/* cli.h: the mpoc command's subcommands and shared helpers.
 * The CLI sees only the public headers (include/); it is the only place that
 * prints, installs the stderr logger and turns statuses into exit codes. */
#ifndef MPOC_CLI_H
#define MPOC_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpoc.h"

/* Exit codes: 0 success, 1 failure of the job (bad input file, numeric
 * failure, I/O), 2 usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Each subcommand: argv[0] is the subcommand name. Returns an exit code. */
int cli_cmd_factor(int argc, char **argv);
int cli_cmd_synth_matrix(int argc, char **argv);
int cli_cmd_inspect(int argc, char **argv);
int cli_cmd_convert(int argc, char **argv);

/* Print "mpoc <cmd>: <formatted message>" on stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Report a failed library call: the logged reasons were already printed;
 * this adds the status line when nothing was logged. Returns CLI_FAIL. */
int cli_fail(const char *cmd, mpoc_status st, const char *what);

/* Strict number parsers: the whole string must be a number in range. */
bool cli_parse_u64(const char *s, uint64_t *out);
bool cli_parse_size(const char *s, size_t *out);
bool cli_parse_double(const char *s, double *out);

/* True when stderr is a terminal (progress output is shown only then). */
bool cli_stderr_is_tty(void);

#endif
