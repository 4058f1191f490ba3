/* cmd_generate.c: `mpoc generate MODEL [--tokens N] [--json]`: greedy
 * decoding from BOS, printing token ids (a check of the model runner). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char generate_usage[] =
    "usage: mpoc generate MODEL [options]\n"
    "\n"
    "Greedy (argmax) decoding of a LLaMA-family model from its BOS token; prints\n"
    "the generated token ids (not including BOS), space-separated.\n"
    "MODEL is a GGUF file, a safetensors file with config.json beside it, or a\n"
    "Hugging Face folder.\n"
    "\n"
    "  --tokens N     tokens to generate (default 48)\n"
    "  --json         one JSON object: model, layout, bos, tokens, tokens_per_s\n"
    "  --threads N    BLAS threads (default: all cores)\n";

enum { OPT_TOKENS = 256, OPT_JSON, OPT_THREADS, OPT_HELP };

static const struct option generate_options[] = {
    {"tokens", required_argument, NULL, OPT_TOKENS},
    {"json", no_argument, NULL, OPT_JSON},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

typedef struct generate_args {
    const char *model;
    size_t n_tokens, threads;
    bool json;
} generate_args;

static int parse_args(int argc, char **argv, generate_args *a)
{
    memset(a, 0, sizeof *a);
    a->n_tokens = 48;
    optind = 1;
    opterr = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", generate_options, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case OPT_TOKENS: ok = cli_parse_size(optarg, &a->n_tokens) && a->n_tokens >= 1 &&
                              a->n_tokens <= 1000000; break;
        case OPT_JSON: a->json = true; break;
        case OPT_THREADS: ok = cli_parse_size(optarg, &a->threads) && a->threads >= 1 &&
                               a->threads <= 1024; break;
        case OPT_HELP: case 'h': fputs(generate_usage, stdout); return -1;
        default: return CLI_USAGE;
        }
        if (!ok) {
            cli_error("generate", "invalid value '%s' for --%s", optarg,
                      generate_options[c - OPT_TOKENS].name);
            return CLI_USAGE;
        }
    }
    if (optind + 1 != argc) {
        fputs(generate_usage, stderr);
        return CLI_USAGE;
    }
    a->model = argv[optind];
    return CLI_OK;
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void print_result(const generate_args *a, const mpoc_llama_config *cfg,
                         const int32_t *ids, double secs)
{
    double tps = secs > 0 ? (double)a->n_tokens / secs : 0.0;
    if (a->json) {
        json_t *o = json_object(), *arr = json_array();
        json_object_set_new(o, "model", json_string(a->model));
        json_object_set_new(o, "layout", json_string(mpoc_llama_layout_name(cfg->layout)));
        json_object_set_new(o, "bos", json_integer(cfg->bos_id));
        for (size_t i = 0; i < a->n_tokens; i++)
            json_array_append_new(arr, json_integer(ids[i]));
        json_object_set_new(o, "tokens", arr);
        json_object_set_new(o, "tokens_per_s", json_real(tps));
        char *text = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(10));
        if (text)
            puts(text);
        free(text);
        json_decref(o);
        return;
    }
    for (size_t i = 0; i < a->n_tokens; i++)
        printf("%s%ld", i ? " " : "", (long)ids[i]);
    printf("\n");
    fprintf(stderr, "mpoc generate: %zu tokens in %.3f s (%.1f tokens/s), %s layout\n",
            a->n_tokens, secs, tps, mpoc_llama_layout_name(cfg->layout));
}

int cli_cmd_generate(int argc, char **argv)
{
    generate_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (a.threads)
        mpoc_set_threads((int)a.threads);
    mpoc_llama *m;
    mpoc_status st = mpoc_llama_open(a.model, NULL, &m);
    if (st != MPOC_OK)
        return cli_fail("generate", st, a.model);
    int32_t *ids = malloc(a.n_tokens * sizeof *ids);
    if (!ids) {
        mpoc_llama_free(m);
        return cli_fail("generate", MPOC_E_NOMEM, a.model);
    }
    double t0 = wall_seconds();
    st = mpoc_llama_greedy(m, mpoc_llama_config_of(m)->bos_id, a.n_tokens, ids);
    double secs = wall_seconds() - t0;
    if (st == MPOC_OK)
        print_result(&a, mpoc_llama_config_of(m), ids, secs);
    free(ids);
    mpoc_llama_free(m);
    return st == MPOC_OK ? CLI_OK : cli_fail("generate", st, a.model);
}
