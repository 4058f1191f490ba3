/* main.c: subcommand dispatch, the stderr logger and shared CLI helpers. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"inspect", cli_cmd_inspect, "list a model file's format, metadata and tensors; extract one as .npy"},
    {"convert", cli_cmd_convert, "rewrite a model as safetensors (single or sharded) or GGUF, optionally in another dtype"},
    {"factor", cli_cmd_factor, "factorize a .npy matrix into an MPO and report size and error"},
    {"generate", cli_cmd_generate, "greedy-decode a LLaMA model from BOS and print the token ids"},
    {"eval", cli_cmd_eval, "compare two LLaMA models: KL divergence, top-1 agreement, perplexity, speed"},
    {"compress", cli_cmd_compress, "compress a model's weight matrices into quantized MPO cores (same format)"},
    {"decompress", cli_cmd_decompress, "turn an mpoc container back into a dense model"},
    {"prune", cli_cmd_prune, "prune the bonds of an mpoc container further, without the original"},
    {"synth", cli_cmd_synth, "write a deterministic small LLaMA-shaped model (safetensors + config.json)"},
    {"sweep", cli_cmd_sweep, "measure error vs size over a grid of settings, against SVD and q8_0/q4_0 baselines"},
    {"bench", cli_cmd_bench, "run a bench suite: sweeps with baselines, timings, GFLOP/s, plots"},
    {"synth-matrix", cli_cmd_synth_matrix, "write a generated test matrix with a chosen spectrum as .npy"},
};

static size_t logged_count;

/* Length of the valid UTF-8 sequence at p (not a C1 control), or 0. */
static size_t utf8_printable(const unsigned char *p)
{
    size_t n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0) /* U+0080..U+009F: C1 controls */
        return 0;
    return n;
}

/* Reasons quote names and values from hostile files: control bytes (ESC or
 * CSI sequences could retitle or clear the terminal) and invalid UTF-8 are
 * shown as \xNN. */
static void stderr_logger(void *user, const char *message)
{
    (void)user;
    logged_count++;
    fputs("mpoc: ", stderr);
    const unsigned char *p = (const unsigned char *)message;
    while (*p) {
        size_t n = *p >= 0x80 ? utf8_printable(p) : (*p >= 0x20 && *p != 0x7f);
        if (n) {
            fwrite(p, 1, n, stderr);
            p += n;
        } else {
            fprintf(stderr, "\\x%02x", *p++);
        }
    }
    fputc('\n', stderr);
}

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mpoc %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_fail(const char *cmd, mpoc_status st, const char *what)
{
    if (logged_count == 0)
        cli_error(cmd, "%s: %s", what, mpoc_strerror(st));
    return CLI_FAIL;
}

bool cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = (uint64_t)v;
    return true;
}

bool cli_parse_size(const char *s, size_t *out)
{
    uint64_t v;
    if (!cli_parse_u64(s, &v) || v > SIZE_MAX)
        return false;
    *out = (size_t)v;
    return true;
}

bool cli_parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

bool cli_stderr_is_tty(void)
{
    return isatty(STDERR_FILENO) != 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mpoc COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'mpoc COMMAND --help' describes a command. mpoc %s\n", MPOC_VERSION_STRING);
}

/* OpenBLAS picks its kernel when it loads and falls back to a slow generic
 * one on CPUs newer than its build; a better one needs OPENBLAS_CORETYPE set
 * before loading, so set it and run ourselves again (once; a user's own
 * OPENBLAS_CORETYPE is respected). */
static void tune_blas(char **argv)
{
    const char *core = mpoc_blas_suggest_coretype();
    if (!core || getenv("OPENBLAS_CORETYPE") || getenv("MPOC_BLAS_TUNED"))
        return;
    setenv("OPENBLAS_CORETYPE", core, 1);
    setenv("MPOC_BLAS_TUNED", "1", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the generic kernel */
}

int main(int argc, char **argv)
{
    tune_blas(argv);
    mpoc_log_set(stderr_logger, NULL);
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("mpoc %s\n", MPOC_VERSION_STRING);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "mpoc: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
