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
int cli_cmd_compress(int argc, char **argv);
int cli_cmd_decompress(int argc, char **argv);
int cli_cmd_prune(int argc, char **argv);
int cli_cmd_synth(int argc, char **argv);
int cli_cmd_generate(int argc, char **argv);
int cli_cmd_eval(int argc, char **argv);
int cli_cmd_sweep(int argc, char **argv);
int cli_cmd_bench(int argc, char **argv);

/* Print "mpoc <cmd>: <formatted message>" on stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Report a failed library call: the logged reasons were already printed;
 * this adds the status line when nothing was logged. Returns CLI_FAIL. */
int cli_fail(const char *cmd, mpoc_status st, const char *what);

/* Strict number parsers: the whole string must be a number in range. */
bool cli_parse_u64(const char *s, uint64_t *out);
bool cli_parse_size(const char *s, size_t *out);
bool cli_parse_double(const char *s, double *out);

/* Token sequences from a file of little-endian int32 ids (rules in
 * src/cli/tokens.c); *ids holds *n_seq × length ids (free()). Errors are
 * printed with `cmd`. */
int cli_read_token_sequences(const char *cmd, const char *path, int32_t bos, size_t length,
                             int32_t **ids, size_t *n_seq);

/* True when stderr is a terminal (progress output is shown only then). */
bool cli_stderr_is_tty(void);

/* Sweep records and plots (sweep_out.c), shared by sweep and bench. */
#include <stdio.h>
void cli_sweep_csv_header(FILE *f);
void cli_sweep_write_record(FILE *f, bool csv, const mpoc_sweep_record *r);
int cli_sweep_plot(const char *cmd, const mpoc_sweep_record *recs, size_t n, bool by_chi,
                   const char *title, const char *path, const mpoc_write_policy *pol);
/* "f16,q8_0" into distinct core types (at most MPOC_QUANT_COUNT_). */
bool cli_parse_quant_list(const char *s, mpoc_quant_type *out, size_t *n);

#endif
