/* cmd_sweep.c: `mpoc sweep INPUT [options]`: the compression–error trade-off
 * of a model or a .npy matrix over a grid of settings, with the baselines,
 * as JSON Lines or CSV records (docs/sweep.md), and optional SVG plots. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char sweep_usage[] =
    "usage: mpoc sweep INPUT [options]\n"
    "\n"
    "Measure size and error over a grid of settings (sites x chi x eps x quant) for\n"
    "every selected tensor of a model (safetensors, sharded, GGUF) or for a .npy\n"
    "matrix, against the baselines at the same bytes: truncated SVD with f16 factors\n"
    "(svd) and ggml block quantization of the dense matrix (q8_0, q4_0). Each tensor\n"
    "is factorized once per sites value at the largest chi / smallest eps and rounded\n"
    "down for the others. Records go to stdout (docs/sweep.md); diagnostics to stderr.\n"
    "\n"
    "grid (LIST: 8,16,32 or ranges 8:512:x2, 64:256:+64, mixed with commas):\n"
    "  --chi LIST           bond dimensions (default 8:256:x2 when --eps is not given)\n"
    "  --eps LIST           global relative error targets, each in (0, 1)\n"
    "  --quant LIST         core types f32,f16,bf16,q8_0,q4_0 (default f16,q8_0,q4_0)\n"
    "  --sites LIST         sites per MPO (default automatic)\n"
    "  --centre-quant T     type of the core carrying the norm (default f16)\n"
    "  --no-feedback        quantize cores independently\n"
    "  --svd auto|exact|randomized  --seed S   SVD path and sketch seed (auto, 1)\n"
    "  --no-baselines       MPO records only\n"
    "  --separate           decompose every setting from scratch (what separate runs\n"
    "                       cost; for comparison)\n"
    "selection (models):\n"
    "  --include GLOB       tensors to sweep (repeatable; default: attention and MLP\n"
    "                       projection weights, as mpoc compress)\n"
    "  --exclude GLOB       tensors to leave out (repeatable)\n"
    "  --min-size N         smallest matrix in elements (default 1024)\n"
    "model-level eval (models only):\n"
    "  --eval REF           add to every setting's totals the KL divergence of the\n"
    "                       compressed model against REF (kl_mean, kl_max, top1): the\n"
    "                       model is run with each swept matrix as the setting's MPO\n"
    "                       (on its cores), its svd baseline and q8_0/q4_0 (dense),\n"
    "                       teacher-forced on tokens sampled from REF\n"
    "  --eval-sample N      sequences sampled from REF (default 8)\n"
    "  --eval-length L      tokens per sequence, BOS first (default 64)\n"
    "  --eval-seed S        sampling seed (default 1)\n"
    "  --eval-tokens FILE   raw little-endian int32 ids instead (as mpoc eval --tokens)\n"
    "output:\n"
    "  --format jsonl|csv   record format (default jsonl)\n"
    "  --out FILE           write the records to FILE (atomically) instead of stdout\n"
    "  --plot FILE.svg      error vs bits per weight: one curve per MPO core type and\n"
    "                       per baseline, Pareto front marked (totals over tensors)\n"
    "  --plot-chi FILE.svg  error vs chi\n"
    "  --force              replace existing output files\n"
    "  --threads N          tensors in parallel (models) or BLAS threads (.npy)\n"
    "  --quiet              no progress on stderr\n";

typedef struct sweep_args {
    const char *input, *out, *plot, *plot_chi;
    size_t *chi, n_chi, *sites, n_sites;
    double *eps;
    size_t n_eps;
    mpoc_quant_type quant[MPOC_QUANT_COUNT_];
    size_t n_quant;
    const char *include[64], *exclude[64];
    size_t n_include, n_exclude;
    mpoc_sweep_options sw;
    uint64_t min_size;
    bool csv, force, quiet;
    size_t threads;
    const char *eval_ref, *eval_tokens;
    size_t eval_n_seq, eval_length;
    uint64_t eval_seed;
    bool eval_sample_set;
} sweep_args;

enum { OPT_CHI = 256, OPT_EPS, OPT_QUANT, OPT_SITES, OPT_CENTRE, OPT_NOFB, OPT_SVD, OPT_SEED,
       OPT_NOBASE, OPT_SEPARATE, OPT_INCLUDE, OPT_EXCLUDE, OPT_MINSIZE, OPT_FORMAT, OPT_OUT,
       OPT_PLOT, OPT_PLOTCHI, OPT_FORCE, OPT_THREADS, OPT_QUIET, OPT_HELP, OPT_CENTER,
       OPT_EVAL, OPT_EVAL_SAMPLE, OPT_EVAL_LENGTH, OPT_EVAL_SEED, OPT_EVAL_TOKENS };

static const struct option sweep_options[] = {
    {"chi", required_argument, NULL, OPT_CHI},
    {"eps", required_argument, NULL, OPT_EPS},
    {"quant", required_argument, NULL, OPT_QUANT},
    {"sites", required_argument, NULL, OPT_SITES},
    {"centre-quant", required_argument, NULL, OPT_CENTRE},
    {"no-feedback", no_argument, NULL, OPT_NOFB},
    {"svd", required_argument, NULL, OPT_SVD},
    {"seed", required_argument, NULL, OPT_SEED},
    {"no-baselines", no_argument, NULL, OPT_NOBASE},
    {"separate", no_argument, NULL, OPT_SEPARATE},
    {"include", required_argument, NULL, OPT_INCLUDE},
    {"exclude", required_argument, NULL, OPT_EXCLUDE},
    {"min-size", required_argument, NULL, OPT_MINSIZE},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"out", required_argument, NULL, OPT_OUT},
    {"plot", required_argument, NULL, OPT_PLOT},
    {"plot-chi", required_argument, NULL, OPT_PLOTCHI},
    {"force", no_argument, NULL, OPT_FORCE},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"help", no_argument, NULL, OPT_HELP},
    {"center-quant", required_argument, NULL, OPT_CENTER},
    {"eval", required_argument, NULL, OPT_EVAL},
    {"eval-sample", required_argument, NULL, OPT_EVAL_SAMPLE},
    {"eval-length", required_argument, NULL, OPT_EVAL_LENGTH},
    {"eval-seed", required_argument, NULL, OPT_EVAL_SEED},
    {"eval-tokens", required_argument, NULL, OPT_EVAL_TOKENS},
    {NULL, 0, NULL, 0},
};

bool cli_parse_quant_list(const char *s, mpoc_quant_type *out, size_t *n)
{
    char buf[256];
    if (!s || strlen(s) >= sizeof buf)
        return false;
    strcpy(buf, s);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        mpoc_quant_type t;
        if (mpoc_quant_parse(tok, &t) != MPOC_OK || *n >= MPOC_QUANT_COUNT_)
            return false;
        bool dup = false;
        for (size_t i = 0; i < *n; i++)
            dup |= out[i] == t;
        if (!dup)
            out[(*n)++] = t;
    }
    return *n > 0;
}

static bool take_option(int c, const char *v, sweep_args *a)
{
    bool ok = true;
    switch (c) {
    case OPT_CHI:
        free(a->chi);
        ok = mpoc_parse_size_list(v, &a->chi, &a->n_chi) == MPOC_OK;
        for (size_t i = 0; ok && i < a->n_chi; i++)
            ok = a->chi[i] > 0;
        break;
    case OPT_EPS:
        free(a->eps);
        ok = mpoc_parse_double_list(v, &a->eps, &a->n_eps) == MPOC_OK;
        for (size_t i = 0; ok && i < a->n_eps; i++)
            ok = a->eps[i] > 0.0 && a->eps[i] < 1.0;
        break;
    case OPT_QUANT: ok = cli_parse_quant_list(v, a->quant, &a->n_quant); break;
    case OPT_SITES:
        free(a->sites);
        ok = mpoc_parse_size_list(v, &a->sites, &a->n_sites) == MPOC_OK;
        for (size_t i = 0; ok && i < a->n_sites; i++)
            ok = a->sites[i] >= 1 && a->sites[i] <= MPOC_MAX_SITES;
        break;
    case OPT_CENTER:
    case OPT_CENTRE: ok = mpoc_quant_parse(v, &a->sw.centre) == MPOC_OK; break;
    case OPT_NOFB: a->sw.no_feedback = true; break;
    case OPT_SVD: ok = mpoc_svd_method_parse(v, &a->sw.svd.method) == MPOC_OK; break;
    case OPT_SEED: ok = cli_parse_u64(v, &a->sw.svd.seed); break;
    case OPT_NOBASE: a->sw.baselines = false; break;
    case OPT_SEPARATE: a->sw.separate = true; break;
    case OPT_INCLUDE: ok = a->n_include < 64; if (ok) a->include[a->n_include++] = v; break;
    case OPT_EXCLUDE: ok = a->n_exclude < 64; if (ok) a->exclude[a->n_exclude++] = v; break;
    case OPT_MINSIZE: ok = cli_parse_u64(v, &a->min_size); break;
    case OPT_FORMAT: ok = !strcmp(v, "jsonl") || !strcmp(v, "csv"); a->csv = !strcmp(v, "csv"); break;
    case OPT_OUT: a->out = v; break;
    case OPT_PLOT: a->plot = v; break;
    case OPT_PLOTCHI: a->plot_chi = v; break;
    case OPT_FORCE: a->force = true; break;
    case OPT_THREADS: ok = cli_parse_size(v, &a->threads) && a->threads >= 1 && a->threads <= 1024; break;
    case OPT_QUIET: a->quiet = true; break;
    case OPT_EVAL: a->eval_ref = v; break;
    case OPT_EVAL_SAMPLE:
        ok = cli_parse_size(v, &a->eval_n_seq) && a->eval_n_seq >= 1 && a->eval_n_seq <= 1000000;
        a->eval_sample_set = true;
        break;
    case OPT_EVAL_LENGTH:
        ok = cli_parse_size(v, &a->eval_length) && a->eval_length >= 2 && a->eval_length <= 1000000;
        break;
    case OPT_EVAL_SEED: ok = cli_parse_u64(v, &a->eval_seed); break;
    case OPT_EVAL_TOKENS: a->eval_tokens = v; break;
    default: ok = false;
    }
    if (!ok && v)
        cli_error("sweep", "invalid value '%s' for --%s", v, sweep_options[c - OPT_CHI].name);
    return ok;
}

static void free_args(sweep_args *a)
{
    free(a->chi);
    free(a->eps);
    free(a->sites);
}

static int parse_args(int argc, char **argv, sweep_args *a)
{
    memset(a, 0, sizeof *a);
    a->sw = mpoc_sweep_options_default();
    a->min_size = 1024;
    a->eval_n_seq = 8;
    a->eval_length = 64;
    a->eval_seed = 1;
    optind = 1;
    opterr = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", sweep_options, NULL)) != -1) {
        if (c == OPT_HELP || c == 'h') {
            fputs(sweep_usage, stdout);
            return -1;
        }
        if (c == '?' || !take_option(c, optarg, a))
            return CLI_USAGE;
    }
    if (optind + 1 != argc) {
        fputs(sweep_usage, stderr);
        return CLI_USAGE;
    }
    a->input = argv[optind];
    if ((a->eval_tokens || a->eval_sample_set) && !a->eval_ref) {
        cli_error("sweep", "--eval-sample and --eval-tokens need --eval REF");
        return CLI_USAGE;
    }
    if (a->eval_tokens && a->eval_sample_set) {
        cli_error("sweep", "--eval-tokens and --eval-sample are exclusive");
        return CLI_USAGE;
    }
    if (!a->n_chi && !a->n_eps && mpoc_parse_size_list("8:256:x2", &a->chi, &a->n_chi) != MPOC_OK)
        return CLI_FAIL;
    if (!a->n_quant)
        cli_parse_quant_list("f16,q8_0,q4_0", a->quant, &a->n_quant);
    a->sw.chi = a->chi;
    a->sw.n_chi = a->n_chi;
    a->sw.eps = a->eps;
    a->sw.n_eps = a->n_eps;
    a->sw.quant = a->quant;
    a->sw.n_quant = a->n_quant;
    a->sw.sites = a->sites;
    a->sw.n_sites = a->n_sites;
    return CLI_OK;
}

/* Where records go, and the totals kept for the plots. */
typedef struct sink {
    FILE *f;
    bool csv;
    mpoc_sweep_record *tot;
    size_t n_tot, cap_tot;
} sink;

static mpoc_status sink_emit(void *user, const mpoc_sweep_record *rec)
{
    sink *s = user;
    cli_sweep_write_record(s->f, s->csv, rec);
    if (strcmp(rec->tensor, "*") != 0)
        return MPOC_OK;
    if (s->n_tot == s->cap_tot) {
        size_t nc = s->cap_tot ? 2 * s->cap_tot : 64;
        mpoc_sweep_record *p = realloc(s->tot, nc * sizeof *p);
        if (!p)
            return MPOC_E_NOMEM;
        s->tot = p;
        s->cap_tot = nc;
    }
    s->tot[s->n_tot++] = *rec;
    return MPOC_OK;
}

static void progress(void *user, const char *tensor, size_t done, size_t total)
{
    (void)user;
    fprintf(stderr, "\r\033[K[%zu/%zu] %s", done, total, tensor);
    if (done == total)
        fputc('\n', stderr);
    fflush(stderr);
}

static bool is_npy(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char m[6] = {0};
    bool yes = f && fread(m, 1, 6, f) == 6 && !memcmp(m, "\x93NUMPY", 6);
    if (f)
        fclose(f);
    return yes;
}

static mpoc_status sweep_npy(const sweep_args *a, sink *s)
{
    mpoc_mat w;
    mpoc_status st = mpoc_npy_read(a->input, &w);
    if (st != MPOC_OK)
        return st;
    const char *name = strrchr(a->input, '/') ? strrchr(a->input, '/') + 1 : a->input;
    mpoc_sweep_result r, tot;
    memset(&tot, 0, sizeof tot);
    st = mpoc_sweep_matrix(mpoc_mat_view_of(&w), name, 0, &a->sw, NULL, &r);
    mpoc_mat_free(&w);
    for (size_t i = 0; st == MPOC_OK && i < r.n; i++)
        st = sink_emit(s, &r.records[i]);
    if (st == MPOC_OK)
        st = mpoc_sweep_totals(r.records, r.n, &a->sw, &tot);
    for (size_t i = 0; st == MPOC_OK && i < tot.n; i++)
        st = sink_emit(s, &tot.records[i]);
    mpoc_sweep_result_free(&r);
    mpoc_sweep_result_free(&tot);
    return st;
}

/* ---- model-level eval tokens -------------------------------------------- */

/* Token sequences for --eval: the rules of `mpoc eval --tokens` (a file
 * starting with BOS holds sequences of L ids each starting with BOS; any
 * other file is a stream cut into chunks of L − 1 ids, each after BOS), or
 * sampled from the reference. */
static int eval_tokens_file(const sweep_args *a, int32_t bos, int32_t **ids, size_t *n_seq)
{
    return cli_read_token_sequences("sweep", a->eval_tokens, bos, a->eval_length, ids, n_seq);
}

static int eval_prepare(const sweep_args *a, mpoc_llama **ref, int32_t **ids, size_t *n_seq)
{
    mpoc_status st = mpoc_llama_open(a->eval_ref, NULL, ref);
    if (st != MPOC_OK)
        return cli_fail("sweep", st, a->eval_ref);
    const mpoc_llama_config *cfg = mpoc_llama_config_of(*ref);
    if (a->eval_length > cfg->max_seq_len) {
        cli_error("sweep", "--eval-length %zu exceeds the context of %s (%zu)", a->eval_length,
                  a->eval_ref, cfg->max_seq_len);
        return CLI_FAIL;
    }
    if (a->eval_tokens) {
        if (eval_tokens_file(a, cfg->bos_id, ids, n_seq) != CLI_OK)
            return CLI_FAIL;
    } else {
        *n_seq = a->eval_n_seq;
        *ids = malloc(a->eval_n_seq * a->eval_length * sizeof **ids);
        if (!*ids)
            return cli_fail("sweep", MPOC_E_NOMEM, "tokens");
        st = mpoc_llama_sample(*ref, a->eval_n_seq, a->eval_length, a->eval_seed, *ids);
        if (st != MPOC_OK)
            return cli_fail("sweep", st, a->eval_ref);
    }
    for (size_t i = 0; i < *n_seq * a->eval_length; i++)
        if ((*ids)[i] < 0 || (size_t)(*ids)[i] >= cfg->vocab_size) {
            cli_error("sweep", "%s: token id %ld (sequence %zu) is outside the vocabulary [0, %zu)",
                      a->eval_tokens ? a->eval_tokens : "sampled tokens", (long)(*ids)[i],
                      i / a->eval_length, cfg->vocab_size);
            return CLI_FAIL;
        }
    return CLI_OK;
}

static mpoc_status sweep_model(const sweep_args *a, sink *s, const mpoc_llama *ref,
                               const int32_t *ids, size_t n_seq)
{
    mpoc_sweep_model_options mo = mpoc_sweep_model_options_default();
    mo.sweep = a->sw;
    mo.include = a->include;
    mo.n_include = a->n_include;
    mo.exclude = a->exclude;
    mo.n_exclude = a->n_exclude;
    mo.min_size = a->min_size;
    mo.threads = (int)a->threads;
    mo.emit = sink_emit;
    mo.emit_user = s;
    mo.eval_ref = ref;
    mo.eval_tokens = ids;
    mo.eval_n_seq = n_seq;
    mo.eval_length = a->eval_length;
    if (!a->quiet && cli_stderr_is_tty())
        mo.progress = progress;
    return mpoc_sweep_model(a->input, &mo);
}

static int write_outputs(const sweep_args *a, sink *s, char *buf, size_t len)
{
    const char *inputs[1] = {a->input};
    mpoc_write_policy pol = {a->force, inputs, 1};
    if (a->out) {
        mpoc_status st = mpoc_write_file(a->out, buf, len, &pol);
        if (st != MPOC_OK)
            return cli_fail("sweep", st, a->out);
    }
    char title[256];
    const char *base = strrchr(a->input, '/') ? strrchr(a->input, '/') + 1 : a->input;
    snprintf(title, sizeof title, "%s: error vs size", base);
    int rc = CLI_OK;
    if (a->plot)
        rc = cli_sweep_plot("sweep", s->tot, s->n_tot, false, title, a->plot, &pol);
    snprintf(title, sizeof title, "%s: error vs chi", base);
    if (rc == CLI_OK && a->plot_chi)
        rc = cli_sweep_plot("sweep", s->tot, s->n_tot, true, title, a->plot_chi, &pol);
    return rc;
}

int cli_cmd_sweep(int argc, char **argv)
{
    sweep_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_OK) {
        free_args(&a);
        return rc < 0 ? CLI_OK : rc;
    }
    bool npy = is_npy(a.input);
    if (npy && a.threads)
        mpoc_set_threads((int)a.threads);
    if (npy && a.eval_ref) {
        cli_error("sweep", "--eval needs a model, not a .npy matrix");
        free_args(&a);
        return CLI_USAGE;
    }
    mpoc_llama *ref = NULL;
    int32_t *ids = NULL;
    size_t n_seq = 0;
    if (a.eval_ref && eval_prepare(&a, &ref, &ids, &n_seq) != CLI_OK) {
        mpoc_llama_free(ref);
        free(ids);
        free_args(&a);
        return CLI_FAIL;
    }
    char *buf = NULL;
    size_t len = 0;
    sink s = {a.out ? open_memstream(&buf, &len) : stdout, a.csv, NULL, 0, 0};
    if (!s.f) {
        mpoc_llama_free(ref);
        free(ids);
        free_args(&a);
        cli_error("sweep", "out of memory");
        return CLI_FAIL;
    }
    if (a.csv)
        cli_sweep_csv_header(s.f);
    mpoc_status st = npy ? sweep_npy(&a, &s) : sweep_model(&a, &s, ref, ids, n_seq);
    mpoc_llama_free(ref);
    free(ids);
    if (a.out)
        fclose(s.f);
    else
        fflush(stdout);
    rc = st == MPOC_OK ? write_outputs(&a, &s, buf, len) : cli_fail("sweep", st, a.input);
    free(buf);
    free(s.tot);
    free_args(&a);
    return rc;
}
