/* cmd_synth.c: `mpoc synth DIR`: a deterministic LLaMA-shaped model with
 * trained-like statistics, as a Hugging Face folder. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char synth_model_usage[] =
    "usage: mpoc synth DIR [options]\n"
    "\n"
    "Write DIR/model.safetensors and DIR/config.json: a LLaMA-shaped model (Hugging Face\n"
    "names, tied classifier) whose matrices have trained-like statistics (power-law\n"
    "spectra, heavy-tailed entries, a few outlier columns). Deterministic.\n"
    "  --dim N (64)  --hidden N (172)  --layers N (5)  --heads N (8)  --kv-heads N (4)\n"
    "  --vocab N (512)  --seed S (1)  --dtype f32|f16|bf16 (f32)  --force\n";

enum { Y_DIM = 400, Y_HIDDEN, Y_LAYERS, Y_HEADS, Y_KV, Y_VOCAB, Y_SEED, Y_DTYPE, Y_FORCE, Y_HELP };

static const struct option synth_model_options[] = {
    {"dim", required_argument, NULL, Y_DIM},       {"hidden", required_argument, NULL, Y_HIDDEN},
    {"layers", required_argument, NULL, Y_LAYERS}, {"heads", required_argument, NULL, Y_HEADS},
    {"kv-heads", required_argument, NULL, Y_KV},   {"vocab", required_argument, NULL, Y_VOCAB},
    {"seed", required_argument, NULL, Y_SEED},     {"dtype", required_argument, NULL, Y_DTYPE},
    {"force", no_argument, NULL, Y_FORCE},         {"help", no_argument, NULL, Y_HELP},
    {NULL, 0, NULL, 0},
};

static bool take(int c, const char *v, mpoc_llama_shape *s, bool *force)
{
    switch (c) {
    case Y_DIM: return cli_parse_size(v, &s->dim) && s->dim > 0;
    case Y_HIDDEN: return cli_parse_size(v, &s->hidden) && s->hidden > 0;
    case Y_LAYERS: return cli_parse_size(v, &s->layers) && s->layers > 0;
    case Y_HEADS: return cli_parse_size(v, &s->heads) && s->heads > 0;
    case Y_KV: return cli_parse_size(v, &s->kv_heads) && s->kv_heads > 0;
    case Y_VOCAB: return cli_parse_size(v, &s->vocab) && s->vocab > 0;
    case Y_SEED: return cli_parse_u64(v, &s->seed);
    case Y_DTYPE:
        return mpoc_dtype_from_name(v, &s->dtype) == MPOC_OK &&
               (s->dtype == MPOC_DTYPE_F32 || s->dtype == MPOC_DTYPE_F16 || s->dtype == MPOC_DTYPE_BF16);
    case Y_FORCE: *force = true; return true;
    default: return false;
    }
}

int cli_cmd_synth(int argc, char **argv)
{
    mpoc_llama_shape s = mpoc_llama_shape_default();
    bool force = false;
    optind = 1;
    opterr = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", synth_model_options, NULL)) != -1) {
        if (c == Y_HELP || c == 'h') {
            fputs(synth_model_usage, stdout);
            return CLI_OK;
        }
        if (c == '?')
            return CLI_USAGE;
        if (!take(c, optarg, &s, &force)) {
            cli_error("synth", "invalid value '%s' for --%s", optarg ? optarg : "",
                      synth_model_options[c - Y_DIM].name);
            return CLI_USAGE;
        }
    }
    if (optind + 1 != argc) {
        fputs(synth_model_usage, stderr);
        return CLI_USAGE;
    }
    mpoc_write_policy pol = {force, NULL, 0};
    mpoc_status st = mpoc_synth_llama(&s, argv[optind], &pol);
    if (st != MPOC_OK)
        return cli_fail("synth", st, argv[optind]);
    printf("%s: LLaMA-shaped model, dim %zu, hidden %zu, %zu layers, %zu/%zu heads, vocab %zu, %s\n",
           argv[optind], s.dim, s.hidden, s.layers, s.heads, s.kv_heads, s.vocab,
           mpoc_dtype_name(s.dtype));
    return CLI_OK;
}
