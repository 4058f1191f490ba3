/* cmd_eval.c: `mpoc eval REF CANDIDATE`: how far a candidate model's
 * next-token distributions are from a reference's (docs/eval.md). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char eval_usage[] =
    "usage: mpoc eval REF CANDIDATE [options]\n"
    "\n"
    "Teacher-forced comparison of two LLaMA-family models over token sequences:\n"
    "mean and max KL(P_ref || P_cand) in nats per predicted token, top-1 agreement,\n"
    "perplexity of both on the tokens, and tokens/s of both. REF and CANDIDATE are\n"
    "GGUF files, safetensors files with config.json beside them or Hugging Face\n"
    "folders, in any combination, of the same model.\n"
    "\n"
    "tokens (default: --sample 64 --length 256 --seed 1):\n"
    "  --tokens FILE       raw little-endian int32 ids. A file starting with BOS is cut\n"
    "                      into sequences of --length ids, each starting with BOS (what\n"
    "                      --save-tokens writes); any other file is a stream cut into\n"
    "                      chunks of --length - 1 ids, each prefixed with BOS\n"
    "  --sample N          sample N sequences from REF at temperature 1\n"
    "  --length L          tokens per sequence, BOS included (default 256)\n"
    "  --seed S            sampling seed (default 1)\n"
    "  --save-tokens FILE  write the sequences used (int32, N x L) to FILE\n"
    "  --force             replace an existing --save-tokens FILE\n"
    "output:\n"
    "  --json              one JSON object: kl_mean, kl_max, top1, ppl_ref, ppl_cand,\n"
    "                      n_tokens, ref_tokens_per_s, cand_tokens_per_s\n"
    "  --threads N         BLAS threads (default: all cores)\n";

enum { OPT_TOKENS = 256, OPT_SAMPLE, OPT_LENGTH, OPT_SEED, OPT_SAVE, OPT_FORCE, OPT_JSON,
       OPT_THREADS, OPT_HELP };

static const struct option eval_options[] = {
    {"tokens", required_argument, NULL, OPT_TOKENS},
    {"sample", required_argument, NULL, OPT_SAMPLE},
    {"length", required_argument, NULL, OPT_LENGTH},
    {"seed", required_argument, NULL, OPT_SEED},
    {"save-tokens", required_argument, NULL, OPT_SAVE},
    {"force", no_argument, NULL, OPT_FORCE},
    {"json", no_argument, NULL, OPT_JSON},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

typedef struct eval_args {
    const char *ref, *cand, *tokens_file, *save_file;
    size_t n_seq, length, threads;
    uint64_t seed;
    bool sample_given, json, force;
} eval_args;

/* Token ids in memory: n_seq sequences of `length`. */
typedef struct token_set {
    int32_t *ids; /* n_seq × length, owned */
    size_t n_seq, length;
} token_set;

static bool take_option(int c, const char *v, eval_args *a)
{
    switch (c) {
    case OPT_TOKENS: a->tokens_file = v; return true;
    case OPT_SAMPLE: a->sample_given = true;
        return cli_parse_size(v, &a->n_seq) && a->n_seq >= 1 && a->n_seq <= 1000000;
    case OPT_LENGTH: return cli_parse_size(v, &a->length) && a->length >= 2 && a->length <= 1000000;
    case OPT_SEED: return cli_parse_u64(v, &a->seed);
    case OPT_SAVE: a->save_file = v; return true;
    case OPT_FORCE: a->force = true; return true;
    case OPT_JSON: a->json = true; return true;
    case OPT_THREADS: return cli_parse_size(v, &a->threads) && a->threads >= 1 && a->threads <= 1024;
    default: return false;
    }
}

static int parse_args(int argc, char **argv, eval_args *a)
{
    memset(a, 0, sizeof *a);
    a->n_seq = 64;
    a->length = 256;
    a->seed = 1;
    optind = 1;
    opterr = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", eval_options, NULL)) != -1) {
        if (c == OPT_HELP || c == 'h') {
            fputs(eval_usage, stdout);
            return -1;
        }
        if (c == '?')
            return CLI_USAGE;
        if (!take_option(c, optarg, a)) {
            cli_error("eval", "invalid value '%s' for --%s", optarg ? optarg : "",
                      eval_options[c - OPT_TOKENS].name);
            return CLI_USAGE;
        }
    }
    if (optind + 2 != argc) {
        fputs(eval_usage, stderr);
        return CLI_USAGE;
    }
    if (a->tokens_file && a->sample_given) {
        cli_error("eval", "--tokens and --sample are exclusive");
        return CLI_USAGE;
    }
    a->ref = argv[optind];
    a->cand = argv[optind + 1];
    return CLI_OK;
}

/* ---- tokens -------------------------------------------------------------- */

/* Cut the file's ids into sequences (see the usage text for the rule). */
static int tokens_from_file(const eval_args *a, int32_t bos, token_set *ts)
{
    ts->length = a->length;
    return cli_read_token_sequences("eval", a->tokens_file, bos, a->length, &ts->ids, &ts->n_seq);
}

static int check_ids(const eval_args *a, const token_set *ts, size_t vocab)
{
    for (size_t i = 0; i < ts->n_seq * ts->length; i++)
        if (ts->ids[i] < 0 || (size_t)ts->ids[i] >= vocab) {
            cli_error("eval", "%s: token id %ld (sequence %zu, position %zu) is outside the "
                      "vocabulary [0, %zu)", a->tokens_file ? a->tokens_file : "sampled tokens",
                      (long)ts->ids[i], i / ts->length, i % ts->length, vocab);
            return CLI_FAIL;
        }
    return CLI_OK;
}

static int save_ids(const eval_args *a, const token_set *ts)
{
    struct stat st;
    if (!a->force && stat(a->save_file, &st) == 0) {
        cli_error("eval", "%s exists (use --force to replace it)", a->save_file);
        return CLI_FAIL;
    }
    size_t len = strlen(a->save_file) + 16, n = ts->n_seq * ts->length;
    char *tmp = malloc(len);
    FILE *f = tmp ? (snprintf(tmp, len, "%s.tmp%ld", a->save_file, (long)getpid()), fopen(tmp, "wb"))
                  : NULL;
    bool ok = f != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        uint32_t v = (uint32_t)ts->ids[i];
        unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                              (unsigned char)(v >> 24)};
        ok = fwrite(b, 1, 4, f) == 4;
    }
    if (f && fclose(f) != 0)
        ok = false;
    if (ok && rename(tmp, a->save_file) != 0)
        ok = false;
    if (!ok) {
        cli_error("eval", "%s: cannot write: %s", a->save_file, strerror(errno));
        if (tmp)
            remove(tmp);
    }
    free(tmp);
    return ok ? CLI_OK : CLI_FAIL;
}

static int get_tokens(const eval_args *a, const mpoc_llama *ref, token_set *ts)
{
    const mpoc_llama_config *cfg = mpoc_llama_config_of(ref);
    if (a->tokens_file) {
        if (tokens_from_file(a, cfg->bos_id, ts) != CLI_OK)
            return CLI_FAIL;
    } else {
        ts->n_seq = a->n_seq;
        ts->length = a->length;
        ts->ids = malloc(a->n_seq * a->length * sizeof *ts->ids);
        if (!ts->ids)
            return cli_fail("eval", MPOC_E_NOMEM, "tokens");
        mpoc_status st = mpoc_llama_sample(ref, a->n_seq, a->length, a->seed, ts->ids);
        if (st != MPOC_OK)
            return cli_fail("eval", st, a->ref);
    }
    if (check_ids(a, ts, cfg->vocab_size) != CLI_OK)
        return CLI_FAIL;
    return a->save_file ? save_ids(a, ts) : CLI_OK;
}

/* ---- running ------------------------------------------------------------- */

static void print_json(const mpoc_eval_result *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "kl_mean", json_real(r->kl_mean));
    json_object_set_new(o, "kl_max", json_real(r->kl_max));
    json_object_set_new(o, "top1", json_real(r->top1));
    json_object_set_new(o, "ppl_ref", json_real(r->ppl_ref));
    json_object_set_new(o, "ppl_cand", json_real(r->ppl_cand));
    json_object_set_new(o, "n_tokens", json_integer((json_int_t)r->n_tokens));
    json_object_set_new(o, "ref_tokens_per_s",
                        json_real(r->ref_seconds > 0 ? (double)r->n_forward / r->ref_seconds : 0.0));
    json_object_set_new(o, "cand_tokens_per_s",
                        json_real(r->cand_seconds > 0 ? (double)r->n_forward / r->cand_seconds : 0.0));
    char *text = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(10));
    if (text)
        puts(text);
    free(text);
    json_decref(o);
}

static void describe(const char *role, const char *path, const mpoc_llama *m)
{
    const mpoc_llama_config *c = mpoc_llama_config_of(m);
    printf("%-10s %s (%s layout, %zu linear parameters, %zu MPO operators)\n", role, path,
           mpoc_llama_layout_name(c->layout), mpoc_llama_linear_params(m), mpoc_llama_mpo_count(m));
}

static void print_report(const eval_args *a, const mpoc_llama *ref, const mpoc_llama *cand,
                         const token_set *ts, const mpoc_eval_result *r)
{
    describe("reference:", a->ref, ref);
    describe("candidate:", a->cand, cand);
    if (a->tokens_file)
        printf("tokens:    %zu sequences x %zu from %s, %zu predicted positions\n", ts->n_seq,
               ts->length, a->tokens_file, r->n_tokens);
    else
        printf("tokens:    %zu sequences x %zu sampled from the reference (seed %llu), %zu "
               "predicted positions\n", ts->n_seq, ts->length, (unsigned long long)a->seed,
               r->n_tokens);
    printf("\nKL(P_ref || P_cand): mean %.6g nats/token, max %.6g\n", r->kl_mean, r->kl_max);
    printf("top-1 agreement:     %.4f%%\n", 100.0 * r->top1);
    printf("perplexity:          reference %.6g, candidate %.6g\n", r->ppl_ref, r->ppl_cand);
    printf("speed:               reference %.1f tokens/s, candidate %.1f tokens/s\n",
           r->ref_seconds > 0 ? (double)r->n_forward / r->ref_seconds : 0.0,
           r->cand_seconds > 0 ? (double)r->n_forward / r->cand_seconds : 0.0);
}

static int check_length(const eval_args *a, const mpoc_llama *ref, const mpoc_llama *cand)
{
    size_t ctx = mpoc_llama_config_of(ref)->max_seq_len, c2 = mpoc_llama_config_of(cand)->max_seq_len;
    ctx = c2 < ctx ? c2 : ctx;
    if (a->length > ctx) {
        cli_error("eval", "--length %zu exceeds the models' context of %zu tokens", a->length, ctx);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int run_eval(const eval_args *a, const mpoc_llama *ref, const mpoc_llama *cand)
{
    mpoc_status st = mpoc_llama_check_compatible(ref, cand);
    if (st != MPOC_OK)
        return cli_fail("eval", st, a->cand);
    if (check_length(a, ref, cand) != CLI_OK)
        return CLI_FAIL;
    token_set ts = {0};
    int rc = get_tokens(a, ref, &ts);
    mpoc_eval_result r;
    if (rc == CLI_OK) {
        st = mpoc_llama_eval(ref, cand, ts.ids, ts.n_seq, ts.length, &r);
        rc = st == MPOC_OK ? CLI_OK : cli_fail("eval", st, a->cand);
    }
    if (rc == CLI_OK && a->json)
        print_json(&r);
    else if (rc == CLI_OK)
        print_report(a, ref, cand, &ts, &r);
    free(ts.ids);
    return rc;
}

int cli_cmd_eval(int argc, char **argv)
{
    eval_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (a.threads)
        mpoc_set_threads((int)a.threads);
    mpoc_llama *ref = NULL, *cand = NULL;
    mpoc_status st = mpoc_llama_open(a.ref, NULL, &ref);
    if (st != MPOC_OK)
        return cli_fail("eval", st, a.ref);
    st = mpoc_llama_open(a.cand, NULL, &cand);
    rc = st == MPOC_OK ? run_eval(&a, ref, cand) : cli_fail("eval", st, a.cand);
    mpoc_llama_free(cand);
    mpoc_llama_free(ref);
    return rc;
}
