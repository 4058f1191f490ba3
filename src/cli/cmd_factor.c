/* cmd_factor.c: `mpoc factor MATRIX.npy [options]`: factorize one matrix into
 * an MPO and report what it cost in error and saved in size. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char factor_usage[] =
    "usage: mpoc factor MATRIX.npy [options]\n"
    "\n"
    "Factorize a 2-D .npy matrix (float32, float64 or float16, C order) into a\n"
    "matrix-product operator and report ranks, size and the measured error.\n"
    "\n"
    "truncation (combine freely; the tightest wins):\n"
    "  --chi N              keep at most N singular values per bond\n"
    "  --eps E              global relative Frobenius error target: ||W-W'|| <= E ||W||\n"
    "  --cutoff T           drop singular values below T times the largest of their bond\n"
    "  --discarded-weight W drop the smallest values whose squares sum to <= W of the bond's\n"
    "shape:\n"
    "  --sites D            number of sites (default: automatic, sites of ~256 entries)\n"
    "  --shape R1xR2..:C1xC2..  explicit split of rows and columns (products may exceed the\n"
    "                       matrix: the excess is zero padding, invisible in the output)\n"
    "  --pad auto|never|always  uneven sites or zero padding for awkward dimensions\n"
    "SVD:\n"
    "  --svd auto|exact|randomized   (default auto)\n"
    "  --oversample P --power-iters Q --seed S   randomized SVD parameters (10, 2, 1)\n"
    "output:\n"
    "  --json               one JSON object on stdout instead of the report\n"
    "  --save-dense OUT.npy write the reconstruction (float32) atomically\n"
    "  --force              replace an existing OUT.npy\n"
    "  --threads N          BLAS threads (default: all cores)\n";

typedef struct factor_args {
    const char *input, *save_dense, *shape_spec;
    mpoc_shape shape; /* parsed --shape; opt.shape points here */
    mpoc_mpo_options opt;
    bool json, force;
    size_t threads;
} factor_args;

enum { OPT_CHI = 256, OPT_EPS, OPT_CUTOFF, OPT_DW, OPT_SITES, OPT_SHAPE, OPT_PAD, OPT_SVD, OPT_OVERSAMPLE,
       OPT_POWER, OPT_SEED, OPT_JSON, OPT_SAVE, OPT_FORCE, OPT_THREADS, OPT_HELP };

static const struct option factor_options[] = {
    {"chi", required_argument, NULL, OPT_CHI},
    {"eps", required_argument, NULL, OPT_EPS},
    {"cutoff", required_argument, NULL, OPT_CUTOFF},
    {"discarded-weight", required_argument, NULL, OPT_DW},
    {"sites", required_argument, NULL, OPT_SITES},
    {"shape", required_argument, NULL, OPT_SHAPE},
    {"pad", required_argument, NULL, OPT_PAD},
    {"svd", required_argument, NULL, OPT_SVD},
    {"oversample", required_argument, NULL, OPT_OVERSAMPLE},
    {"power-iters", required_argument, NULL, OPT_POWER},
    {"seed", required_argument, NULL, OPT_SEED},
    {"json", no_argument, NULL, OPT_JSON},
    {"save-dense", required_argument, NULL, OPT_SAVE},
    {"force", no_argument, NULL, OPT_FORCE},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static bool parse_pad(const char *s, mpoc_pad_policy *out)
{
    static const char *const names[] = {"auto", "never", "always"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i])) {
            *out = (mpoc_pad_policy)i;
            return true;
        }
    return false;
}

/* One option; false on a bad value (message printed). */
static bool take_option(int c, const char *v, factor_args *a)
{
    mpoc_trunc *t = &a->opt.svd.trunc;
    uint64_t u;
    bool ok = true;
    switch (c) {
    case OPT_CHI: ok = cli_parse_size(v, &t->max_rank) && t->max_rank > 0; break;
    case OPT_EPS: ok = cli_parse_double(v, &a->opt.eps) && a->opt.eps > 0.0 && a->opt.eps < 1.0; break;
    case OPT_CUTOFF: ok = cli_parse_double(v, &t->rel_cutoff) && t->rel_cutoff > 0.0 && t->rel_cutoff <= 1.0; break;
    case OPT_DW: ok = cli_parse_double(v, &t->discarded_weight) && t->discarded_weight > 0.0 &&
                      t->discarded_weight < 1.0; break;
    case OPT_SITES: ok = cli_parse_size(v, &a->opt.sites) && a->opt.sites >= 1 && a->opt.sites <= MPOC_MAX_SITES; break;
    case OPT_SHAPE: a->shape_spec = v; break;
    case OPT_PAD: ok = parse_pad(v, &a->opt.pad); break;
    case OPT_SVD: ok = mpoc_svd_method_parse(v, &a->opt.svd.method) == MPOC_OK; break;
    case OPT_OVERSAMPLE: ok = cli_parse_size(v, &a->opt.svd.oversample) && a->opt.svd.oversample <= 1000; break;
    case OPT_POWER: ok = cli_parse_u64(v, &u) && u <= 20; a->opt.svd.power_iters = (unsigned)u; break;
    case OPT_SEED: ok = cli_parse_u64(v, &a->opt.svd.seed); break;
    case OPT_JSON: a->json = true; break;
    case OPT_SAVE: a->save_dense = v; break;
    case OPT_FORCE: a->force = true; break;
    case OPT_THREADS: ok = cli_parse_size(v, &a->threads) && a->threads >= 1 && a->threads <= 1024; break;
    default: ok = false;
    }
    if (!ok && v)
        cli_error("factor", "invalid value '%s' for --%s", v, factor_options[c - OPT_CHI].name);
    return ok;
}

static int parse_args(int argc, char **argv, factor_args *a)
{
    memset(a, 0, sizeof *a);
    a->opt = mpoc_mpo_options_default();
    a->opt.svd.seed = 1;
    optind = 1;
    opterr = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", factor_options, NULL)) != -1) {
        if (c == OPT_HELP || c == 'h') {
            fputs(factor_usage, stdout);
            return -1;
        }
        if (c == '?' || !take_option(c, optarg, a))
            return CLI_USAGE;
    }
    if (optind + 1 != argc) {
        fputs(factor_usage, stderr);
        return CLI_USAGE;
    }
    if (a->shape_spec && a->opt.sites) {
        cli_error("factor", "--shape and --sites are exclusive");
        return CLI_USAGE;
    }
    a->input = argv[optind];
    return CLI_OK;
}

static json_t *size_array(const size_t *v, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_integer((json_int_t)v[i]));
    return arr;
}

static void print_json(const factor_args *a, const mpoc_mpo *mpo, const mpoc_mpo_report *r, double secs)
{
    const mpoc_shape *s = &mpo->shape;
    json_t *o = json_object();
    json_object_set_new(o, "input", json_string(a->input));
    json_object_set_new(o, "rows", json_integer((json_int_t)s->rows));
    json_object_set_new(o, "cols", json_integer((json_int_t)s->cols));
    json_object_set_new(o, "sites", json_integer((json_int_t)s->sites));
    json_object_set_new(o, "row_dims", size_array(s->row_dims, s->sites));
    json_object_set_new(o, "col_dims", size_array(s->col_dims, s->sites));
    json_object_set_new(o, "padded_rows", json_integer((json_int_t)s->padded_rows));
    json_object_set_new(o, "padded_cols", json_integer((json_int_t)s->padded_cols));
    json_object_set_new(o, "ranks", size_array(mpo->ranks, s->sites + 1));
    json_t *bonds = json_array();
    for (size_t k = 0; k + 1 < s->sites; k++) {
        json_t *b = json_object();
        json_object_set_new(b, "rank", json_integer((json_int_t)mpo->ranks[k + 1]));
        json_object_set_new(b, "max_rank", json_integer((json_int_t)mpoc_shape_max_rank(s, k)));
        json_object_set_new(b, "discarded_weight",
                            json_real(r->norm > 0 ? mpo->discarded_sq[k] / (r->norm * r->norm) : 0.0));
        json_object_set_new(b, "svd", json_string(mpoc_svd_method_name(r->bond_method[k])));
        json_array_append_new(bonds, b);
    }
    json_object_set_new(o, "bonds", bonds);
    json_object_set_new(o, "params", json_integer((json_int_t)r->params));
    json_object_set_new(o, "dense_params", json_integer((json_int_t)r->dense_params));
    json_object_set_new(o, "compression", json_real((double)r->dense_params / (double)r->params));
    json_object_set_new(o, "norm", json_real(r->norm));
    json_object_set_new(o, "rel_error", json_real(r->rel_error));
    json_object_set_new(o, "rel_error_dropped", json_real(r->rel_error_dropped));
    json_object_set_new(o, "svd", json_string(mpoc_svd_method_name(a->opt.svd.method)));
    json_object_set_new(o, "seconds", json_real(secs));
    json_object_set_new(o, "seconds_svd", json_real(r->seconds_svd));
    json_object_set_new(o, "seconds_error", json_real(r->seconds_error));
    char *text = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(10));
    if (text)
        puts(text);
    free(text);
    json_decref(o);
}

static void print_dims(const size_t *d, size_t n)
{
    for (size_t k = 0; k < n; k++)
        printf("%s%zu", k ? "x" : "", d[k]);
}

static void print_report(const factor_args *a, const mpoc_mpo *mpo, const mpoc_mpo_report *r, double secs)
{
    const mpoc_shape *s = &mpo->shape;
    printf("%s: %zu x %zu, |W| = %.6g\n", a->input, s->rows, s->cols, r->norm);
    printf("shape: %zu sites, rows ", s->sites);
    print_dims(s->row_dims, s->sites);
    printf(", cols ");
    print_dims(s->col_dims, s->sites);
    if (s->padded_rows != s->rows || s->padded_cols != s->cols)
        printf(" (zero-padded to %zu x %zu)", s->padded_rows, s->padded_cols);
    printf("\n\n bond   rank  max-useful  discarded-weight  svd\n");
    for (size_t k = 0; k + 1 < s->sites; k++)
        printf(" %4zu %6zu %11zu  %16.3e  %s\n", k + 1, mpo->ranks[k + 1], mpoc_shape_max_rank(s, k),
               r->norm > 0 ? mpo->discarded_sq[k] / (r->norm * r->norm) : 0.0,
               mpoc_svd_method_name(r->bond_method[k]));
    printf("\nparams:         %zu of %zu (%.2fx fewer; %.3f MB as float32)\n", r->params, r->dense_params,
           (double)r->dense_params / (double)r->params, 4e-6 * (double)r->params);
    printf("relative error: %.6g measured (%.6g implied by the discarded values)\n", r->rel_error,
           r->rel_error_dropped);
    printf("time:           %.3f s (permute %.3f, SVDs %.3f, error check %.3f)\n", secs,
           r->seconds_permute, r->seconds_svd, r->seconds_error);
    if (r->rank_clamped)
        printf("note: --chi exceeds the largest useful rank of some bonds; they keep their maximum\n");
}

static int build_shape(factor_args *a, const mpoc_mat *w)
{
    if (!a->shape_spec)
        return CLI_OK;
    mpoc_status st = mpoc_shape_parse(a->shape_spec, w->rows, w->cols, &a->shape);
    if (st != MPOC_OK)
        return cli_fail("factor", st, "--shape");
    a->opt.shape = &a->shape;
    return CLI_OK;
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int run_factor(factor_args *a, const mpoc_mat *w)
{
    int rc = build_shape(a, w);
    if (rc != CLI_OK)
        return rc;
    mpoc_mpo mpo;
    mpoc_mpo_report rep;
    double t0 = wall_seconds();
    mpoc_status st = mpoc_mpo_decompose(mpoc_mat_view_of(w), &a->opt, &mpo, &rep);
    double secs = wall_seconds() - t0;
    if (st != MPOC_OK)
        return cli_fail("factor", st, a->input);
    if (a->json)
        print_json(a, &mpo, &rep, secs);
    else
        print_report(a, &mpo, &rep, secs);
    if (a->save_dense) {
        mpoc_mat dense;
        const char *inputs[1] = {a->input};
        mpoc_write_policy pol = {a->force, inputs, 1};
        st = mpoc_mpo_to_dense(&mpo, &dense, NULL);
        if (st == MPOC_OK)
            st = mpoc_npy_write(a->save_dense, mpoc_mat_view_of(&dense), &pol);
        mpoc_mat_free(&dense);
        if (st != MPOC_OK)
            rc = cli_fail("factor", st, a->save_dense);
    }
    mpoc_mpo_free(&mpo);
    return rc;
}

int cli_cmd_factor(int argc, char **argv)
{
    factor_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (a.threads)
        mpoc_set_threads((int)a.threads);
    mpoc_mat w;
    mpoc_status st = mpoc_npy_read(a.input, &w);
    if (st != MPOC_OK)
        return cli_fail("factor", st, a.input);
    rc = run_factor(&a, &w);
    mpoc_mat_free(&w);
    return rc;
}
