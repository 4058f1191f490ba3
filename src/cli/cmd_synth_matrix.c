/* cmd_synth_matrix.c: `mpoc synth-matrix OUT.npy`: a generated matrix with a
 * controlled spectrum, for demos, tests and benchmarks. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char synth_usage[] =
    "usage: mpoc synth-matrix OUT.npy --rows M --cols N [options]\n"
    "\n"
    "Write a deterministic float32 test matrix.\n"
    "  --spectrum gaussian|power|lowrank|llm   (default power)\n"
    "      power:   singular values (i+1)^-decay with random singular vectors\n"
    "      lowrank: rank --rank power-law signal plus --noise Gaussian noise\n"
    "      llm:     power law plus Student-t (--nu) noise and outlier columns\n"
    "  --decay A  --rank K  --noise X  --nu V  --rms R (entry scale, default 0.02)\n"
    "  --seed S   --force (replace OUT.npy)\n";

enum { S_ROWS = 300, S_COLS, S_SPEC, S_DECAY, S_RANK, S_NOISE, S_NU, S_RMS, S_SEED, S_FORCE, S_HELP };

static const struct option synth_options[] = {
    {"rows", required_argument, NULL, S_ROWS},     {"cols", required_argument, NULL, S_COLS},
    {"spectrum", required_argument, NULL, S_SPEC}, {"decay", required_argument, NULL, S_DECAY},
    {"rank", required_argument, NULL, S_RANK},     {"noise", required_argument, NULL, S_NOISE},
    {"nu", required_argument, NULL, S_NU},         {"rms", required_argument, NULL, S_RMS},
    {"seed", required_argument, NULL, S_SEED},     {"force", no_argument, NULL, S_FORCE},
    {"help", no_argument, NULL, S_HELP},           {NULL, 0, NULL, 0},
};

typedef struct synth_args {
    size_t rows, cols;
    uint64_t seed;
    bool force;
    mpoc_synth_spec spec;
} synth_args;

static bool take(int c, const char *v, synth_args *a)
{
    switch (c) {
    case S_ROWS: return cli_parse_size(v, &a->rows) && a->rows > 0;
    case S_COLS: return cli_parse_size(v, &a->cols) && a->cols > 0;
    case S_SPEC: {
        mpoc_spectrum k;
        if (mpoc_spectrum_parse(v, &k) != MPOC_OK)
            return false;
        mpoc_synth_spec d = mpoc_synth_default(k);
        d.decay = a->spec.decay, d.rank = a->spec.rank, d.noise = a->spec.noise;
        d.nu = a->spec.nu, d.rms = a->spec.rms;
        a->spec = d;
        return true;
    }
    case S_DECAY: return cli_parse_double(v, &a->spec.decay) && a->spec.decay >= 0.0;
    case S_RANK: return cli_parse_size(v, &a->spec.rank) && a->spec.rank > 0;
    case S_NOISE: return cli_parse_double(v, &a->spec.noise) && a->spec.noise >= 0.0;
    case S_NU: return cli_parse_double(v, &a->spec.nu) && a->spec.nu > 2.0;
    case S_RMS: return cli_parse_double(v, &a->spec.rms) && a->spec.rms >= 0.0;
    case S_SEED: return cli_parse_u64(v, &a->seed);
    case S_FORCE: a->force = true; return true;
    default: return false;
    }
}

int cli_cmd_synth_matrix(int argc, char **argv)
{
    synth_args a;
    memset(&a, 0, sizeof a);
    a.spec = mpoc_synth_default(MPOC_SPECTRUM_POWER);
    a.seed = 1;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", synth_options, NULL)) != -1) {
        if (c == S_HELP || c == 'h') {
            fputs(synth_usage, stdout);
            return CLI_OK;
        }
        if (c == '?' || !take(c, optarg, &a)) {
            if (c != '?')
                cli_error("synth-matrix", "invalid value '%s' for --%s", optarg ? optarg : "",
                          synth_options[c - S_ROWS].name);
            return CLI_USAGE;
        }
    }
    if (optind + 1 != argc || !a.rows || !a.cols) {
        fputs(synth_usage, stderr);
        return CLI_USAGE;
    }
    mpoc_mat w;
    mpoc_status st = mpoc_synth_matrix(a.rows, a.cols, &a.spec, a.seed, &w);
    mpoc_write_policy pol = {a.force, NULL, 0};
    if (st == MPOC_OK)
        st = mpoc_npy_write(argv[optind], mpoc_mat_view_of(&w), &pol);
    mpoc_mat_free(&w);
    if (st != MPOC_OK)
        return cli_fail("synth-matrix", st, argv[optind]);
    return CLI_OK;
}
