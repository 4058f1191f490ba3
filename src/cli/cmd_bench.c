/* cmd_bench.c: `mpoc bench SUITE [--out DIR] [--size-scale F]`: run a bench
 * suite (bench/suites/NAME.suite, format in docs/sweep.md): per case the
 * sweep records with baselines, factorization phases, achieved GFLOP/s
 * against the SGEMM peak measured in the same run, peak RSS, Frobenius and
 * output errors, the sweep-vs-separate-runs speed ratio; cost growth with
 * size fitted as time ∝ n^k for both SVD paths. Results: a folder of JSONL,
 * CSV and SVG plots. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

static const char bench_usage[] =
    "usage: mpoc bench SUITE [options]\n"
    "\n"
    "Run a bench suite: SUITE is a name (quick, standard, llama7b-shapes: files\n"
    "bench/suites/NAME.suite) or a path to a .suite file (format: docs/sweep.md).\n"
    "Writes records.jsonl, records.csv, cases.jsonl, scaling.jsonl and SVG plots\n"
    "into the results folder (files in it are replaced) and a summary on stdout.\n"
    "  --out DIR          results folder (default bench-SUITE)\n"
    "  --size-scale F     multiply every matrix dimension by F (default 1; > 0)\n"
    "  --suites DIR       where suite names are looked up (default $MPOC_SUITES or\n"
    "                     bench/suites)\n"
    "  --threads N        BLAS threads (default: all cores)\n"
    "  --quiet            no summary on stdout\n";

#define MAX_CASES 64
#define MAX_SCALE 16

typedef struct bench_case {
    char name[64], source[512];
    bool scale;                   /* a `scale` line: sizes instead of a shape */
    size_t rows, cols;            /* case: scaled shape (0 for models) */
    size_t *sizes, n_sizes;       /* scale: scaled n values */
    size_t *chi, n_chi, *sites, n_sites;
    double *eps;
    size_t n_eps;
    mpoc_quant_type quant[MPOC_QUANT_COUNT_];
    size_t n_quant;
    uint64_t seed;
    bool separate;
    int line;
} bench_case;

typedef struct bench {
    const char *suite_path, *out_dir, *fixtures;
    double scale;
    bool quiet;
    bench_case cases[MAX_CASES];
    size_t n_cases;
    double peak_gflops;
    FILE *records_jsonl, *records_csv, *cases_jsonl, *scaling_jsonl;
    char *buf[4];
    size_t len[4];
} bench;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* ---------------------------------------------------------------- parsing */

static size_t scaled(size_t n, double f)
{
    double v = floor((double)n * f + 0.5);
    return v < 8 ? 8 : (size_t)v;
}

static bool parse_shape(const char *s, double f, size_t *r, size_t *c)
{
    char *x = strchr(s, 'x');
    if (!x)
        return false;
    char rows[32];
    size_t len = (size_t)(x - s);
    if (len == 0 || len >= sizeof rows)
        return false;
    memcpy(rows, s, len);
    rows[len] = '\0';
    if (!cli_parse_size(rows, r) || !cli_parse_size(x + 1, c) || !*r || !*c)
        return false;
    *r = scaled(*r, f);
    *c = scaled(*c, f);
    return true;
}

static bool take_setting(bench_case *c, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq)
        return false;
    const char *v = eq + 1;
    size_t klen = (size_t)(eq - kv);
#define KEY(k) (klen == strlen(k) && !strncmp(kv, k, klen))
    if (KEY("chi"))
        return mpoc_parse_size_list(v, &c->chi, &c->n_chi) == MPOC_OK;
    if (KEY("eps"))
        return mpoc_parse_double_list(v, &c->eps, &c->n_eps) == MPOC_OK;
    if (KEY("sites"))
        return mpoc_parse_size_list(v, &c->sites, &c->n_sites) == MPOC_OK;
    if (KEY("quant"))
        return cli_parse_quant_list(v, c->quant, &c->n_quant);
    if (KEY("seed"))
        return cli_parse_u64(v, &c->seed);
    if (KEY("separate")) {
        c->separate = !strcmp(v, "1");
        return c->separate || !strcmp(v, "0");
    }
#undef KEY
    return false;
}

static bool parse_line(bench *b, char *line, int lineno)
{
    char *save = NULL, *kind = strtok_r(line, " \t\r\n", &save);
    if (!kind || kind[0] == '#')
        return true;
    if (b->n_cases >= MAX_CASES) {
        cli_error("bench", "%s:%d: more than %d cases", b->suite_path, lineno, MAX_CASES);
        return false;
    }
    bench_case *c = &b->cases[b->n_cases];
    memset(c, 0, sizeof *c);
    c->seed = 1;
    c->line = lineno;
    char *name = strtok_r(NULL, " \t\r\n", &save), *src = strtok_r(NULL, " \t\r\n", &save);
    char *shape = strtok_r(NULL, " \t\r\n", &save);
    bool ok = name && src && shape && strlen(name) < sizeof c->name && strlen(src) < sizeof c->source;
    c->scale = kind && !strcmp(kind, "scale");
    ok = ok && (c->scale || !strcmp(kind, "case"));
    if (ok) {
        strcpy(c->name, name);
        strcpy(c->source, src);
        if (c->scale) {
            ok = mpoc_parse_size_list(shape, &c->sizes, &c->n_sizes) == MPOC_OK && c->n_sizes >= 2;
            for (size_t i = 0; ok && i < c->n_sizes; i++)
                c->sizes[i] = scaled(c->sizes[i], b->scale);
        } else if (strcmp(shape, "-") != 0) {
            ok = parse_shape(shape, b->scale, &c->rows, &c->cols);
        }
    }
    for (char *kv = strtok_r(NULL, " \t\r\n", &save); ok && kv; kv = strtok_r(NULL, " \t\r\n", &save))
        ok = kv[0] == '#' ? (save = NULL, true) : take_setting(c, kv);
    if (!ok) {
        cli_error("bench", "%s:%d: expected 'case NAME SOURCE ROWSxCOLS|- [key=value ...]' or "
                  "'scale NAME SOURCE SIZES [key=value ...]' (keys chi, eps, sites, quant, seed, "
                  "separate)", b->suite_path, lineno);
        return false;
    }
    b->n_cases++;
    return true;
}

static bool load_suite(bench *b)
{
    FILE *f = fopen(b->suite_path, "r");
    if (!f) {
        cli_error("bench", "%s: %s", b->suite_path, strerror(errno));
        return false;
    }
    char line[2048];
    int lineno = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof line, f))
        ok = parse_line(b, line, ++lineno);
    fclose(f);
    if (ok && b->n_cases == 0) {
        cli_error("bench", "%s: no cases", b->suite_path);
        ok = false;
    }
    return ok;
}

/* ---------------------------------------------------------------- sources */

static bool synth_spec(const char *src, mpoc_synth_spec *spec)
{
    char kind[32];
    const char *colon = strchr(src, ':');
    size_t len = colon ? (size_t)(colon - src) : strlen(src);
    if (len >= sizeof kind)
        return false;
    memcpy(kind, src, len);
    kind[len] = '\0';
    mpoc_spectrum k;
    if (mpoc_spectrum_parse(kind, &k) != MPOC_OK)
        return false;
    *spec = mpoc_synth_default(k);
    if (!colon)
        return true;
    double a = 0, c = 0;
    int n = sscanf(colon + 1, "%lf:%lf", &a, &c);
    if (k == MPOC_SPECTRUM_LOWRANK && n == 2 && a >= 1) {
        spec->rank = (size_t)a;
        spec->noise = c;
        return true;
    }
    if ((k == MPOC_SPECTRUM_POWER || k == MPOC_SPECTRUM_LLM) && n == 1 && a >= 0) {
        spec->decay = a;
        return true;
    }
    return false;
}

/* A case's matrix (generated or .npy), or its model path (*model). */
static mpoc_status case_input(const bench *b, const bench_case *c, mpoc_mat *w, char **model,
                              bool *skip)
{
    *model = NULL;
    *skip = false;
    if (!strncmp(c->source, "fixture:", 8) || !strncmp(c->source, "file:", 5)) {
        bool fix = c->source[1] == 'i' && c->source[2] == 'x';
        const char *rel = c->source + (fix ? 8 : 5);
        size_t n = strlen(b->fixtures) + strlen(rel) + 2;
        char *path = malloc(n);
        if (!path)
            return MPOC_E_NOMEM;
        snprintf(path, n, "%s/%s", fix ? b->fixtures : ".", rel);
        if (!fix && rel[0] == '/')
            snprintf(path, n, "%s", rel);
        struct stat sb;
        if (stat(path, &sb) != 0) {
            fprintf(stderr, "mpoc bench: case %s: %s not found; skipped\n", c->name, path);
            free(path);
            *skip = true;
            return MPOC_OK;
        }
        size_t pl = strlen(path);
        if (pl > 4 && !strcmp(path + pl - 4, ".npy")) {
            mpoc_status st = mpoc_npy_read(path, w);
            free(path);
            return st;
        }
        *model = path;
        return MPOC_OK;
    }
    mpoc_synth_spec spec;
    if (!synth_spec(c->source, &spec)) {
        cli_error("bench", "case %s: unknown source '%s' (gaussian, power:A, lowrank:K:NOISE, "
                  "llm[:A], fixture:PATH, file:PATH)", c->name, c->source);
        return MPOC_E_INVAL;
    }
    return mpoc_synth_matrix(c->rows, c->cols, &spec, c->seed, w);
}

static mpoc_sweep_options case_options(const bench_case *c)
{
    mpoc_sweep_options o = mpoc_sweep_options_default();
    o.chi = c->chi;
    o.n_chi = c->n_chi;
    o.eps = c->eps;
    o.n_eps = c->n_eps;
    o.sites = c->sites;
    o.n_sites = c->n_sites;
    o.quant = c->quant;
    o.n_quant = c->n_quant;
    return o;
}

/* ---------------------------------------------------------------- records */

typedef struct rec_sink {
    bench *b;
    const char *case_name;
    bool prefix;                  /* model cases: tensor names become CASE:TENSOR */
    mpoc_sweep_record *tot;       /* this case's totals, for its plots */
    size_t n_tot, cap;
} rec_sink;

static mpoc_status sink_record(void *user, const mpoc_sweep_record *rec)
{
    rec_sink *s = user;
    char name[1024];
    mpoc_sweep_record r = *rec;
    bool total = !strcmp(rec->tensor, "*");
    snprintf(name, sizeof name, "%s:%s", s->case_name, rec->tensor);
    r.tensor = s->prefix ? name : rec->tensor;
    if (s->prefix || !total) { /* a matrix case's totals repeat its records */
        cli_sweep_write_record(s->b->records_jsonl, false, &r);
        cli_sweep_write_record(s->b->records_csv, true, &r);
    }
    if (!total)
        return MPOC_OK;
    if (s->n_tot == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 64;
        mpoc_sweep_record *p = realloc(s->tot, nc * sizeof *p);
        if (!p)
            return MPOC_E_NOMEM;
        s->tot = p;
        s->cap = nc;
    }
    s->tot[s->n_tot++] = *rec;
    return MPOC_OK;
}

/* ---------------------------------------------------------------- measurements */

/* Modelled flops of a TT-SVD with these ranks: per bond an M × N unfolding,
 * 4·M·N·min(M,N) for the exact path, (4q+4)·M·N·(r+p) for the randomized. */
static double tt_svd_flops(const mpoc_mpo *m, const mpoc_mpo_report *rep, const mpoc_svd_options *so)
{
    const mpoc_shape *s = &m->shape;
    double f = 0;
    for (size_t k = 0; k + 1 < s->sites; k++) {
        double mm = (double)m->ranks[k] * (double)s->row_dims[k] * (double)s->col_dims[k], nn = 1;
        for (size_t l = k + 1; l < s->sites; l++)
            nn *= (double)s->row_dims[l] * (double)s->col_dims[l];
        if (rep->bond_method[k] == MPOC_SVD_RANDOMIZED)
            f += (4.0 * so->power_iters + 4.0) * mm * nn * (double)(m->ranks[k + 1] + so->oversample);
        else
            f += 4.0 * mm * nn * fmin(mm, nn);
    }
    return f;
}

/* ‖X·Wᵀ − X·Ŵᵀ‖ / ‖X·Wᵀ‖ on 16 Gaussian inputs, Ŵ the quantized MPO. */
static mpoc_status output_error(mpoc_mat_view w, const mpoc_mpo *m, double *err)
{
    const size_t nb = 16;
    mpoc_mat x, y;
    memset(&x, 0, sizeof x);
    memset(&y, 0, sizeof y);
    mpoc_synth_spec g = mpoc_synth_default(MPOC_SPECTRUM_GAUSSIAN);
    g.rms = 0;
    mpoc_status st = mpoc_synth_matrix(nb, w.cols, &g, 7, &x);
    if (st == MPOC_OK)
        st = mpoc_mat_alloc(&y, nb, w.rows);
    if (st == MPOC_OK)
        st = mpoc_mpo_apply(m, mpoc_mat_view_of(&x), false, mpoc_mat_view_of(&y), NULL);
    double diff = 0, norm = 0;
    for (size_t b = 0; st == MPOC_OK && b < nb; b++)
        for (size_t i = 0; i < w.rows; i++) {
            double ref = 0;
            for (size_t j = 0; j < w.cols; j++)
                ref += (double)x.data[b * w.cols + j] * (double)w.data[i * w.ld + j];
            double d = ref - (double)y.data[b * w.rows + i];
            diff += d * d;
            norm += ref * ref;
        }
    *err = norm > 0 ? sqrt(diff / norm) : 0.0;
    mpoc_mat_free(&x);
    mpoc_mat_free(&y);
    return st;
}

/* Factorization at the loosest setting of the case: phases, GFLOP/s,
 * output error of the quantized result. */
static mpoc_status measure_factor(const bench *b, const bench_case *c, mpoc_mat_view w, json_t *o)
{
    mpoc_mpo_options mo = mpoc_mpo_options_default();
    mo.svd.seed = 1;
    for (size_t i = 0; i < c->n_chi; i++)
        if (c->chi[i] > mo.svd.trunc.max_rank)
            mo.svd.trunc.max_rank = c->chi[i];
    mo.eps = c->n_eps ? 1.0 : 0.0;
    for (size_t i = 0; i < c->n_eps; i++)
        mo.eps = fmin(mo.eps, c->eps[i]);
    mo.sites = c->n_sites ? c->sites[0] : 0;
    mpoc_mpo m;
    mpoc_mpo_report rep;
    mpoc_qmpo q;
    mpoc_quant_report qr;
    memset(&q, 0, sizeof q);
    double t0 = now_s();
    mpoc_status st0 = mpoc_mpo_decompose(w, &mo, &m, &rep);
    if (st0 != MPOC_OK)
        return st0;
    double secs = now_s() - t0;
    mpoc_quant_options qo = mpoc_quant_options_default();
    qo.core = c->n_quant ? c->quant[0] : MPOC_QUANT_Q8_0;
    double t1 = now_s(), oerr = NAN;
    mpoc_status st = mpoc_quant_mpo(&m, w, &qo, NULL, &q, &qr);
    double qsecs = now_s() - t1;
    if (st == MPOC_OK)
        st = output_error(w, &q.mpo, &oerr);
    if (st == MPOC_OK) {
        double flops = tt_svd_flops(&m, &rep, &mo.svd);
        double svd_s = rep.seconds_svd > 0 ? rep.seconds_svd : secs;
        json_t *f = json_object();
        json_object_set_new(f, "chi", json_integer((json_int_t)mo.svd.trunc.max_rank));
        json_object_set_new(f, "sites", json_integer((json_int_t)m.shape.sites));
        json_t *ranks = json_array();
        for (size_t k = 0; k <= m.shape.sites; k++)
            json_array_append_new(ranks, json_integer((json_int_t)m.ranks[k]));
        json_object_set_new(f, "ranks", ranks);
        json_object_set_new(f, "seconds", json_real(secs));
        json_object_set_new(f, "seconds_permute", json_real(rep.seconds_permute));
        json_object_set_new(f, "seconds_svd", json_real(rep.seconds_svd));
        json_object_set_new(f, "seconds_error", json_real(rep.seconds_error));
        json_object_set_new(f, "seconds_quantize", json_real(qsecs));
        json_object_set_new(f, "model_gflop", json_real(flops * 1e-9));
        json_object_set_new(f, "gflops", json_real(flops * 1e-9 / svd_s));
        json_object_set_new(f, "fraction_of_sgemm_peak", json_real(flops * 1e-9 / svd_s / b->peak_gflops));
        json_object_set_new(f, "rel_error_trunc", json_real(rep.rel_error));
        json_object_set_new(f, "quant", json_string(mpoc_quant_name(qo.core)));
        json_object_set_new(f, "rel_error", json_real(qr.rel_error));
        json_object_set_new(f, "output_rel_error", json_real(oerr));
        json_object_set_new(f, "bytes", json_integer((json_int_t)qr.bytes));
        json_object_set_new(f, "compression", json_real(4.0 * (double)w.rows * (double)w.cols / (double)qr.bytes));
        json_object_set_new(o, "factor", f);
    }
    mpoc_qmpo_free(&q);
    mpoc_mpo_free(&m);
    return st;
}

/* One timed run of the case's grid without baselines: the sweep, or every
 * setting decomposed and quantized from scratch (`separate`). */
typedef struct timed_run {
    double wall, factor, own; /* the call; factorization; the rest, from the records */
} timed_run;

static mpoc_status timed_sweep(const bench_case *c, mpoc_mat_view w, bool separate, timed_run *t)
{
    mpoc_sweep_options so = case_options(c);
    so.separate = separate;
    so.baselines = false;
    mpoc_sweep_result r;
    double t0 = now_s();
    mpoc_status st = mpoc_sweep_matrix(w, c->name, 0, &so, NULL, &r);
    if (st != MPOC_OK)
        return st;
    t->wall = now_s() - t0;
    t->factor = t->own = 0;
    for (size_t i = 0; i < r.n; i++) {
        t->own += r.records[i].seconds;
        t->factor += separate ? r.records[i].seconds_factor : 0;
    }
    size_t ns = c->n_sites ? c->n_sites : 1;
    for (size_t i = 0; !separate && i < ns && i <= MPOC_MAX_SITES; i++)
        t->factor += r.seconds_factor[i]; /* the parents */
    mpoc_sweep_result_free(&r);
    return MPOC_OK;
}

/* Sweep vs separate runs timed alike: the wall clock of the same call with
 * the same options, no baselines on either side, alternated twice (sweep,
 * separate, sweep, separate) so a burst of load on the shared machine hits
 * both; the faster run of each side counts. */
static mpoc_status measure_separate(const bench_case *c, mpoc_mat_view w, json_t *o)
{
    timed_run best[2] = {{INFINITY, 0, 0}, {INFINITY, 0, 0}}, t;
    for (int rep = 0; rep < 2; rep++)
        for (int side = 0; side < 2; side++) {
            mpoc_status st = timed_sweep(c, w, side == 1, &t);
            if (st != MPOC_OK)
                return st;
            if (t.wall < best[side].wall)
                best[side] = t;
        }
    const timed_run *sw = &best[0], *sep = &best[1];
    json_t *r = json_object();
    json_object_set_new(r, "separate_seconds", json_real(sep->wall));
    json_object_set_new(r, "separate_factor_seconds", json_real(sep->factor));
    json_object_set_new(r, "separate_quantize_seconds", json_real(sep->own));
    json_object_set_new(r, "sweep_seconds", json_real(sw->wall));
    json_object_set_new(r, "sweep_factor_seconds", json_real(sw->factor));
    json_object_set_new(r, "sweep_round_quantize_seconds", json_real(sw->own));
    json_object_set_new(r, "speedup", json_real(sep->wall / fmax(sw->wall, 1e-9)));
    json_object_set_new(r, "speedup_factorization", json_real(sep->factor / fmax(sw->factor, 1e-9)));
    json_object_set_new(o, "sweep_vs_separate", r);
    return MPOC_OK;
}

/* ---------------------------------------------------------------- one case */

static int case_plots(bench *b, const bench_case *c, rec_sink *s)
{
    mpoc_write_policy pol = {true, NULL, 0};
    char path[1024], title[256];
    snprintf(path, sizeof path, "%s/%s-bpw.svg", b->out_dir, c->name);
    snprintf(title, sizeof title, "%s: error vs bits per weight", c->name);
    int rc = cli_sweep_plot("bench", s->tot, s->n_tot, false, title, path, &pol);
    if (rc == CLI_OK && c->n_chi) {
        snprintf(path, sizeof path, "%s/%s-chi.svg", b->out_dir, c->name);
        snprintf(title, sizeof title, "%s: error vs chi", c->name);
        rc = cli_sweep_plot("bench", s->tot, s->n_tot, true, title, path, &pol);
    }
    return rc;
}

static void summary_line(const bench *b, const bench_case *c, const rec_sink *s, json_t *o)
{
    if (b->quiet)
        return;
    size_t wins[MPOC_SWEEP_METHOD_COUNT_] = {0};
    for (size_t i = 0; i < s->n_tot; i++)
        if (s->tot[i].best)
            wins[s->tot[i].best_method]++;
    json_t *f = json_object_get(o, "factor"), *r = json_object_get(o, "sweep_vs_separate");
    char shape[48];
    if (c->rows)
        snprintf(shape, sizeof shape, "%zu x %zu", c->rows, c->cols);
    else
        snprintf(shape, sizeof shape, "model totals");
    printf("%-18s %-13s best at size: mpo %zu, svd %zu, q8_0 %zu, q4_0 %zu", c->name, shape, wins[0],
           wins[1], wins[2], wins[3]);
    if (f)
        printf("; factor %.2fs %.1f GFLOP/s (%.0f%% of peak)",
               json_real_value(json_object_get(f, "seconds")),
               json_real_value(json_object_get(f, "gflops")),
               100 * json_real_value(json_object_get(f, "fraction_of_sgemm_peak")));
    if (r)
        printf("; sweep %.2fx faster than separate runs",
               json_real_value(json_object_get(r, "speedup")));
    printf("\n");
}

static int run_case(bench *b, const bench_case *c)
{
    mpoc_mat w;
    memset(&w, 0, sizeof w);
    char *model = NULL;
    bool skip;
    mpoc_status st = case_input(b, c, &w, &model, &skip);
    if (st != MPOC_OK)
        return cli_fail("bench", st, c->name);
    json_t *o = json_object();
    json_object_set_new(o, "case", json_string(c->name));
    json_object_set_new(o, "source", json_string(c->source));
    rec_sink s = {b, c->name, model != NULL, NULL, 0, 0};
    mpoc_sweep_options so = case_options(c);
    double t0 = now_s();
    if (skip) {
        json_object_set_new(o, "skipped", json_true());
    } else if (model) {
        mpoc_sweep_model_options mo = mpoc_sweep_model_options_default();
        mo.sweep = so;
        mo.emit = sink_record;
        mo.emit_user = &s;
        st = mpoc_sweep_model(model, &mo);
    } else {
        mpoc_sweep_result r, tot;
        memset(&tot, 0, sizeof tot);
        st = mpoc_sweep_matrix(mpoc_mat_view_of(&w), c->name, 0, &so, NULL, &r);
        json_object_set_new(o, "rows", json_integer((json_int_t)w.rows));
        json_object_set_new(o, "cols", json_integer((json_int_t)w.cols));
        for (size_t i = 0; st == MPOC_OK && i < r.n; i++)
            st = sink_record(&s, &r.records[i]);
        if (st == MPOC_OK)
            st = mpoc_sweep_totals(r.records, r.n, &so, &tot);
        for (size_t i = 0; st == MPOC_OK && i < tot.n; i++)
            st = sink_record(&s, &tot.records[i]);
        if (st == MPOC_OK)
            st = measure_factor(b, c, mpoc_mat_view_of(&w), o);
        if (st == MPOC_OK && c->separate)
            st = measure_separate(c, mpoc_mat_view_of(&w), o);
        mpoc_sweep_result_free(&r);
        mpoc_sweep_result_free(&tot);
    }
    json_object_set_new(o, "seconds", json_real(now_s() - t0));
    json_object_set_new(o, "peak_rss_mb", json_real(peak_rss_mb()));
    int rc = st == MPOC_OK ? CLI_OK : cli_fail("bench", st, c->name);
    if (rc == CLI_OK && !skip)
        rc = case_plots(b, c, &s);
    if (rc == CLI_OK) {
        char *text = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(8));
        if (text)
            fprintf(b->cases_jsonl, "%s\n", text);
        free(text);
        if (!skip)
            summary_line(b, c, &s, o);
    }
    json_decref(o);
    free(s.tot);
    free(model);
    mpoc_mat_free(&w);
    return rc;
}

/* ---------------------------------------------------------------- scaling */

/* Least squares on (log n, log t): the exponent k of t ∝ n^k. */
static double fit_exponent(const double *n, const double *t, size_t m)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0, k = 0;
    for (size_t i = 0; i < m; i++) {
        double x = log(n[i]), y = log(t[i]);
        sx += x, sy += y, sxx += x * x, sxy += x * y, k += 1;
    }
    double den = k * sxx - sx * sx;
    return den > 0 ? (k * sxy - sx * sy) / den : (double)NAN;
}

static int run_scale(bench *b, const bench_case *c, mpoc_plot_series *ps, double (*xs)[MAX_SCALE],
                     double (*ts)[MAX_SCALE], char (*labels)[64], size_t *n_series)
{
    mpoc_synth_spec spec;
    if (!synth_spec(c->source, &spec)) {
        cli_error("bench", "scale %s: unknown source '%s'", c->name, c->source);
        return CLI_USAGE;
    }
    static const mpoc_svd_method paths[2] = {MPOC_SVD_EXACT, MPOC_SVD_RANDOMIZED};
    size_t m = c->n_sizes < MAX_SCALE ? c->n_sizes : MAX_SCALE;
    for (int p = 0; p < 2 && *n_series < 8; p++) {
        size_t si = (*n_series)++;
        for (size_t i = 0; i < m; i++) {
            size_t n = c->sizes[i];
            mpoc_mat w;
            mpoc_status st = mpoc_synth_matrix(n, n, &spec, c->seed, &w);
            mpoc_mpo_options mo = mpoc_mpo_options_default();
            mo.svd.method = paths[p];
            mo.svd.seed = 1;
            mo.svd.trunc.max_rank = c->n_chi ? c->chi[0] : 64;
            mo.skip_error = true;
            mpoc_mpo mpo;
            mpoc_mpo_report rep;
            double t0 = now_s();
            if (st == MPOC_OK)
                st = mpoc_mpo_decompose(mpoc_mat_view_of(&w), &mo, &mpo, &rep);
            double secs = now_s() - t0;
            mpoc_mat_free(&w);
            if (st != MPOC_OK)
                return cli_fail("bench", st, c->name);
            fprintf(b->scaling_jsonl, "{\"scale\":\"%s\",\"svd\":\"%s\",\"n\":%zu,\"chi\":%zu,"
                    "\"sites\":%zu,\"seconds\":%.6g,\"seconds_svd\":%.6g}\n", c->name,
                    mpoc_svd_method_name(paths[p]), n, mo.svd.trunc.max_rank, mpo.shape.sites,
                    secs, rep.seconds_svd);
            mpoc_mpo_free(&mpo);
            xs[si][i] = (double)n;
            ts[si][i] = secs;
        }
        double k = fit_exponent(xs[si], ts[si], m);
        fprintf(b->scaling_jsonl, "{\"scale\":\"%s\",\"svd\":\"%s\",\"exponent\":%.4g,\"points\":%zu}\n",
                c->name, mpoc_svd_method_name(paths[p]), k, m);
        snprintf(labels[si], 64, "%s %s (n^%.2f)", c->name, mpoc_svd_method_name(paths[p]), k);
        ps[si] = (mpoc_plot_series){labels[si], xs[si], ts[si], m};
        if (!b->quiet)
            printf("%-18s %-10s time ~ n^%.2f over n = %zu..%zu\n", c->name,
                   mpoc_svd_method_name(paths[p]), k, c->sizes[0], c->sizes[m - 1]);
    }
    return CLI_OK;
}

static int run_scaling(bench *b)
{
    mpoc_plot_series ps[8];
    double xs[8][MAX_SCALE], ts[8][MAX_SCALE];
    char labels[8][64];
    size_t ns = 0;
    int rc = CLI_OK;
    for (size_t i = 0; rc == CLI_OK && i < b->n_cases; i++)
        if (b->cases[i].scale)
            rc = run_scale(b, &b->cases[i], ps, xs, ts, labels, &ns);
    if (rc != CLI_OK || ns == 0)
        return rc;
    mpoc_plot p;
    memset(&p, 0, sizeof p);
    p.title = "TT-SVD time vs size (n x n)";
    p.x_label = "matrix size n (rows = cols)";
    p.y_label = "factorization time (s)";
    p.log_x = p.log_y = true;
    p.series = ps;
    p.n_series = ns;
    char path[1024];
    snprintf(path, sizeof path, "%s/scaling.svg", b->out_dir);
    mpoc_write_policy pol = {true, NULL, 0};
    mpoc_status st = mpoc_plot_write(path, &p, &pol);
    return st == MPOC_OK ? CLI_OK : cli_fail("bench", st, path);
}

/* ---------------------------------------------------------------- driver */

static int parse_args(int argc, char **argv, bench *b, char **path_out, size_t *threads)
{
    const char *suites = getenv("MPOC_SUITES") ? getenv("MPOC_SUITES") : "bench/suites";
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},      {"size-scale", required_argument, NULL, 's'},
        {"suites", required_argument, NULL, 'S'},   {"threads", required_argument, NULL, 't'},
        {"quiet", no_argument, NULL, 'q'},          {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'o': b->out_dir = optarg; break;
        case 's': ok = cli_parse_double(optarg, &b->scale) && b->scale > 0 && b->scale <= 16; break;
        case 'S': suites = optarg; break;
        case 't': ok = cli_parse_size(optarg, threads) && *threads >= 1 && *threads <= 1024; break;
        case 'q': b->quiet = true; break;
        case 'h': fputs(bench_usage, stdout); return -1;
        default: return CLI_USAGE;
        }
        if (!ok) {
            cli_error("bench", "invalid value '%s'", optarg);
            return CLI_USAGE;
        }
    }
    if (optind + 1 != argc) {
        fputs(bench_usage, stderr);
        return CLI_USAGE;
    }
    const char *name = argv[optind];
    size_t n = strlen(suites) + strlen(name) + 16;
    *path_out = malloc(n);
    if (!*path_out)
        return CLI_FAIL;
    if (strchr(name, '/') || strstr(name, ".suite"))
        snprintf(*path_out, n, "%s", name);
    else
        snprintf(*path_out, n, "%s/%s.suite", suites, name);
    return CLI_OK;
}

static int open_outputs(bench *b)
{
    if (mkdir(b->out_dir, 0777) != 0 && errno != EEXIST) {
        cli_error("bench", "%s: %s", b->out_dir, strerror(errno));
        return CLI_FAIL;
    }
    FILE **f[4] = {&b->records_jsonl, &b->records_csv, &b->cases_jsonl, &b->scaling_jsonl};
    for (int i = 0; i < 4; i++)
        if (!(*f[i] = open_memstream(&b->buf[i], &b->len[i])))
            return CLI_FAIL;
    cli_sweep_csv_header(b->records_csv);
    return CLI_OK;
}

static int close_outputs(bench *b, bool write)
{
    static const char *const names[4] = {"records.jsonl", "records.csv", "cases.jsonl", "scaling.jsonl"};
    FILE *f[4] = {b->records_jsonl, b->records_csv, b->cases_jsonl, b->scaling_jsonl};
    int rc = CLI_OK;
    mpoc_write_policy pol = {true, NULL, 0};
    for (int i = 0; i < 4; i++) {
        if (f[i])
            fclose(f[i]);
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", b->out_dir, names[i]);
        if (write && rc == CLI_OK && f[i]) {
            mpoc_status st = mpoc_write_file(path, b->buf[i], b->len[i], &pol);
            if (st != MPOC_OK)
                rc = cli_fail("bench", st, path);
        }
        free(b->buf[i]);
    }
    return rc;
}

static void free_cases(bench *b)
{
    for (size_t i = 0; i < b->n_cases; i++) {
        free(b->cases[i].chi);
        free(b->cases[i].eps);
        free(b->cases[i].sites);
        free(b->cases[i].sizes);
    }
}

int cli_cmd_bench(int argc, char **argv)
{
    bench *b = calloc(1, sizeof *b);
    if (!b)
        return CLI_FAIL;
    b->scale = 1.0;
    b->fixtures = getenv("MPOC_FIXTURES") ? getenv("MPOC_FIXTURES") : "../shared/fixtures";
    char *path = NULL, outbuf[512];
    size_t threads = 0;
    int rc = parse_args(argc, argv, b, &path, &threads);
    if (rc == CLI_OK) {
        b->suite_path = path;
        if (!b->out_dir) {
            const char *base = strrchr(argv[argc - 1], '/') ? strrchr(argv[argc - 1], '/') + 1 : argv[argc - 1];
            snprintf(outbuf, sizeof outbuf, "bench-%.*s", (int)strcspn(base, "."), base);
            b->out_dir = outbuf;
        }
        if (threads)
            mpoc_set_threads((int)threads);
        rc = load_suite(b) ? open_outputs(b) : CLI_USAGE;
    }
    if (rc == CLI_OK && mpoc_sgemm_gflops(1024, &b->peak_gflops) != MPOC_OK)
        rc = CLI_FAIL;
    if (rc == CLI_OK) {
        fprintf(b->cases_jsonl, "{\"suite\":\"%s\",\"size_scale\":%g,\"blas\":\"%s\",\"threads\":%d,"
                "\"sgemm_peak_gflops\":%.4g}\n", path, b->scale, mpoc_blas_describe(), mpoc_threads(),
                b->peak_gflops);
        if (!b->quiet)
            printf("suite %s (size scale %g): SGEMM peak %.1f GFLOP/s on %d BLAS threads\n", path,
                   b->scale, b->peak_gflops, mpoc_threads());
    }
    for (size_t i = 0; rc == CLI_OK && i < b->n_cases; i++)
        if (!b->cases[i].scale)
            rc = run_case(b, &b->cases[i]);
    if (rc == CLI_OK)
        rc = run_scaling(b);
    if (b->records_jsonl) {
        int rc2 = close_outputs(b, rc == CLI_OK);
        rc = rc == CLI_OK ? rc2 : rc;
    }
    if (rc == CLI_OK && !b->quiet)
        printf("results in %s/\n", b->out_dir);
    free_cases(b);
    free(path);
    free(b);
    return rc < 0 ? CLI_OK : rc;
}
