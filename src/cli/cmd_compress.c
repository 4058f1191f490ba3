/* cmd_compress.c: `mpoc compress MODEL OUT`, `mpoc decompress IN OUT` and
 * `mpoc prune IN OUT`: whole-model jobs with one line per tensor, a
 * summary, a progress bar on a terminal and an optional JSON Lines report. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char compress_usage[] =
    "usage: mpoc compress MODEL OUT [options]\n"
    "\n"
    "Factorize the weight matrices of MODEL (safetensors file, sharded checkpoint or\n"
    "GGUF) into quantized MPO cores and write a container of the same format to OUT\n"
    "(docs/compress.md, docs/format.md). Other tensors pass through byte for byte.\n"
    "\n"
    "truncation (the tightest wins; with none of them: --eps 0.1):\n"
    "  --chi N            keep at most N singular values per bond\n"
    "  --eps E            relative Frobenius error target of the factorization\n"
    "  --cutoff T         drop singular values below T times the largest of their bond\n"
    "  --sites D          sites per matrix (default automatic)\n"
    "  --svd auto|exact|randomized   SVD path (default auto, seed 1)\n"
    "storage:\n"
    "  --quant T          core type: f32 f16 bf16 q8_0 q4_0 (default q8_0)\n"
    "  --center-quant T   type of the core carrying the singular values (default f16)\n"
    "  --no-feedback      quantize cores independently (no least-squares re-fit)\n"
    "selection (default: 2-D attention/MLP projection weights, HF or GGUF names):\n"
    "  --include GLOB     compress tensors whose name matches (repeatable; replaces the default)\n"
    "  --exclude GLOB     never compress these (repeatable)\n"
    "  --min-size N       smallest matrix to compress, in elements (default 1024)\n"
    "job:\n"
    "  --threads N        tensors in parallel (default: all cores; output identical)\n"
    "  --resume           continue an interrupted run from OUT.partial/\n"
    "  --skip-bad         pass tensors with NaN/Inf through instead of stopping\n"
    "  --report FILE      JSON Lines: one object per tensor, then {\"summary\":true,...}\n"
    "  --quiet            no per-tensor lines, progress or summary\n"
    "  --force            replace an existing OUT\n";

enum { OPT_CHI = 256, OPT_EPS, OPT_CUTOFF, OPT_SITES, OPT_SVD, OPT_QUANT, OPT_CQUANT, OPT_NOFB,
       OPT_INCLUDE, OPT_EXCLUDE, OPT_MINSIZE, OPT_THREADS, OPT_RESUME, OPT_SKIPBAD, OPT_REPORT,
       OPT_QUIET, OPT_FORCE, OPT_DTYPE, OPT_KEEP, OPT_HELP };

static const struct option job_options[] = {
    {"chi", required_argument, NULL, OPT_CHI},
    {"eps", required_argument, NULL, OPT_EPS},
    {"cutoff", required_argument, NULL, OPT_CUTOFF},
    {"sites", required_argument, NULL, OPT_SITES},
    {"svd", required_argument, NULL, OPT_SVD},
    {"quant", required_argument, NULL, OPT_QUANT},
    {"center-quant", required_argument, NULL, OPT_CQUANT},
    {"no-feedback", no_argument, NULL, OPT_NOFB},
    {"include", required_argument, NULL, OPT_INCLUDE},
    {"exclude", required_argument, NULL, OPT_EXCLUDE},
    {"min-size", required_argument, NULL, OPT_MINSIZE},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"resume", no_argument, NULL, OPT_RESUME},
    {"skip-bad", no_argument, NULL, OPT_SKIPBAD},
    {"report", required_argument, NULL, OPT_REPORT},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"force", no_argument, NULL, OPT_FORCE},
    {"dtype", required_argument, NULL, OPT_DTYPE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

typedef struct job_args {
    const char *cmd, *in, *out, *report;
    mpoc_compress_options c;
    mpoc_dtype dtype;
    bool quiet, any_trunc, quant_set, cquant_set, nofb_set;
    const char **globs; /* storage for include/exclude (argc entries each) */
    const char **ex;
} job_args;

/* ---- reporting ---- */

typedef struct job_view {
    const char *cmd;
    bool quiet, tty;
    FILE *report;
    double t0;
    int bar_shown;
} job_view;

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void human(uint64_t b, char *buf, size_t cap)
{
    const char *u[] = {"B", "KB", "MB", "GB", "TB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1000.0 && i < 4) {
        v /= 1000.0;
        i++;
    }
    snprintf(buf, cap, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void shape_text(const mpoc_tensor_record *r, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < r->n_dims && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%llu", i ? "x" : "", (unsigned long long)r->shape[i]);
}

static void ranks_text(const mpoc_tensor_record *r, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t k = 0; k <= r->sites && n < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%zu", k ? "-" : "", r->ranks[k]);
}

static json_t *record_json(const mpoc_tensor_record *r)
{
    json_t *o = json_object(), *shape = json_array();
    json_object_set_new(o, "name", json_string(r->name));
    for (uint32_t i = 0; i < r->n_dims; i++)
        json_array_append_new(shape, json_integer((json_int_t)r->shape[i]));
    json_object_set_new(o, "shape", shape);
    json_object_set_new(o, "dtype", json_string(mpoc_dtype_name(r->dtype)));
    json_object_set_new(o, "passthrough", json_boolean(!r->compressed));
    if (r->note)
        json_object_set_new(o, "note", json_string(r->note));
    if (r->compressed) {
        json_t *ranks = json_array();
        for (size_t k = 0; k <= r->sites; k++)
            json_array_append_new(ranks, json_integer((json_int_t)r->ranks[k]));
        json_object_set_new(o, "sites", json_integer((json_int_t)r->sites));
        json_object_set_new(o, "ranks", ranks);
        json_object_set_new(o, "quant", json_string(mpoc_quant_name(r->core)));
        json_object_set_new(o, "center_quant", json_string(mpoc_quant_name(r->centre)));
    } else {
        json_object_set_new(o, "sites", json_null());
        json_object_set_new(o, "ranks", json_null());
        json_object_set_new(o, "quant", json_null());
    }
    json_object_set_new(o, "bytes", json_integer((json_int_t)r->bytes));
    json_object_set_new(o, "original_bytes", json_integer((json_int_t)r->original_bytes));
    json_object_set_new(o, "bits_per_weight",
                        json_real(r->elems ? 8.0 * (double)r->bytes / (double)r->elems : 0.0));
    json_object_set_new(o, "rel_error", json_real(r->compressed ? r->rel_error : 0.0));
    if (r->compressed && isfinite(r->rel_error_trunc))
        json_object_set_new(o, "rel_error_trunc", json_real(r->rel_error_trunc));
    json_object_set_new(o, "seconds", json_real(r->seconds));
    json_object_set_new(o, "resumed", json_boolean(r->resumed));
    return o;
}

static void emit_json(FILE *f, json_t *o)
{
    char *text = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (text)
        fprintf(f, "%s\n", text);
    free(text);
    fflush(f);
    json_decref(o);
}

static void clear_bar(job_view *v)
{
    if (v->bar_shown) {
        fputs("\r\033[K", stderr);
        v->bar_shown = 0;
    }
}

static void draw_bar(job_view *v, size_t done, size_t total, uint64_t bdone, uint64_t btotal)
{
    double el = wall() - v->t0, frac = btotal ? (double)bdone / (double)btotal
                                              : (total ? (double)done / (double)total : 1.0);
    int width = 30, fill = (int)(frac * width + 0.5);
    char eta[32] = "--";
    if (frac > 0.0 && frac < 1.0) {
        double s = el * (1.0 - frac) / frac;
        snprintf(eta, sizeof eta, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60.0));
    } else if (frac >= 1.0) {
        snprintf(eta, sizeof eta, "0s");
    }
    fputs("\r[", stderr);
    for (int i = 0; i < width; i++)
        fputc(i < fill ? '#' : '.', stderr);
    fprintf(stderr, "] %zu/%zu tensors, %.0f%% of the bytes, ETA %s\033[K", done, total,
            100.0 * frac, eta);
    v->bar_shown = 1;
}

static void job_line(FILE *f, const mpoc_tensor_record *r, size_t done, size_t total)
{
    char shape[64], ranks[256], before[32], after[32];
    shape_text(r, shape, sizeof shape);
    human(r->original_bytes, before, sizeof before);
    human(r->bytes, after, sizeof after);
    if (!r->compressed) {
        fprintf(f, "[%*zu/%zu] %s %s %s: passthrough, %s%s%s\n", total > 99 ? 4 : 2, done, total,
                r->name, shape, mpoc_dtype_name(r->dtype), before, r->note ? ": " : "",
                r->note ? r->note : "");
        return;
    }
    ranks_text(r, ranks, sizeof ranks);
    fprintf(f, "[%*zu/%zu] %s %s ranks %s %s/%s: %s -> %s (%.2f bpw), err %.4g, %.2f s%s\n",
            total > 99 ? 4 : 2, done, total, r->name, shape, ranks, mpoc_quant_name(r->core),
            mpoc_quant_name(r->centre), before, after,
            r->elems ? 8.0 * (double)r->bytes / (double)r->elems : 0.0, r->rel_error, r->seconds,
            r->resumed ? " (resumed)" : "");
}

static void on_progress(void *user, const mpoc_tensor_record *r, size_t done, size_t total,
                        uint64_t bdone, uint64_t btotal)
{
    job_view *v = user;
    if (v->report)
        emit_json(v->report, record_json(r));
    if (v->quiet)
        return;
    clear_bar(v);
    job_line(stderr, r, done, total);
    if (v->tty && done < total)
        draw_bar(v, done, total, bdone, btotal);
    fflush(stderr);
}

static void job_summary(FILE *f, const char *what, const mpoc_summary *s)
{
    char before[32], after[32], cb[32], ca[32];
    human(s->original_bytes, before, sizeof before);
    human(s->bytes, after, sizeof after);
    human(s->compressed_original_bytes, cb, sizeof cb);
    human(s->compressed_bytes, ca, sizeof ca);
    fprintf(f, "%s: %zu tensors (%zu compressed, %zu passed through%s%zu resumed)\n", what,
            s->tensors, s->compressed, s->passthrough, s->bad_passed ? ", NaN/Inf passed: " : ", ",
            s->bad_passed ? s->bad_passed : s->resumed);
    fprintf(f, "  size: %s -> %s (%.2fx), %.2f bits per weight overall\n", before, after,
            s->bytes ? (double)s->original_bytes / (double)s->bytes : 0.0,
            s->elems ? 8.0 * (double)s->bytes / (double)s->elems : 0.0);
    if (s->compressed)
        fprintf(f, "  compressed tensors: %s -> %s (%.2fx, %.2f bits per weight), "
                   "size-weighted error %.4g\n",
                cb, ca, s->compressed_bytes ? (double)s->compressed_original_bytes / (double)s->compressed_bytes : 0.0,
                s->compressed_elems ? 8.0 * (double)s->compressed_bytes / (double)s->compressed_elems : 0.0,
                s->rel_error);
    fprintf(f, "  time: %.2f s\n", s->seconds);
}

static json_t *summary_json(const mpoc_summary *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "summary", json_true());
    json_object_set_new(o, "tensors", json_integer((json_int_t)s->tensors));
    json_object_set_new(o, "compressed", json_integer((json_int_t)s->compressed));
    json_object_set_new(o, "passthrough", json_integer((json_int_t)s->passthrough));
    json_object_set_new(o, "bytes", json_integer((json_int_t)s->bytes));
    json_object_set_new(o, "original_bytes", json_integer((json_int_t)s->original_bytes));
    json_object_set_new(o, "compressed_bytes", json_integer((json_int_t)s->compressed_bytes));
    json_object_set_new(o, "compressed_original_bytes",
                        json_integer((json_int_t)s->compressed_original_bytes));
    json_object_set_new(o, "bits_per_weight",
                        json_real(s->elems ? 8.0 * (double)s->bytes / (double)s->elems : 0.0));
    json_object_set_new(o, "rel_error", json_real(s->rel_error));
    json_object_set_new(o, "seconds", json_real(s->seconds));
    return o;
}

/* ---- argument parsing ---- */

static bool take(int c, const char *v, job_args *a)
{
    mpoc_trunc *t = &a->c.mpo.svd.trunc;
    size_t z;
    bool ok = true;
    switch (c) {
    case OPT_CHI: ok = cli_parse_size(v, &t->max_rank) && t->max_rank > 0; a->any_trunc = true; break;
    case OPT_EPS: ok = cli_parse_double(v, &a->c.mpo.eps) && a->c.mpo.eps > 0.0 && a->c.mpo.eps < 1.0;
        a->any_trunc = true; break;
    case OPT_CUTOFF: ok = cli_parse_double(v, &t->rel_cutoff) && t->rel_cutoff > 0.0 && t->rel_cutoff <= 1.0;
        a->any_trunc = true; break;
    case OPT_SITES: ok = cli_parse_size(v, &a->c.mpo.sites) && a->c.mpo.sites >= 1 &&
                         a->c.mpo.sites <= MPOC_MAX_SITES; break;
    case OPT_SVD: ok = mpoc_svd_method_parse(v, &a->c.mpo.svd.method) == MPOC_OK; break;
    case OPT_QUANT: ok = mpoc_quant_parse(v, &a->c.quant.core) == MPOC_OK; a->quant_set = true; break;
    case OPT_CQUANT: ok = mpoc_quant_parse(v, &a->c.quant.centre) == MPOC_OK; a->cquant_set = true; break;
    case OPT_NOFB: a->c.quant.no_feedback = true; a->nofb_set = true; break;
    case OPT_INCLUDE: a->globs[a->c.n_include++] = v; break;
    case OPT_EXCLUDE: a->ex[a->c.n_exclude++] = v; break;
    case OPT_MINSIZE: ok = cli_parse_u64(v, &a->c.min_size); break;
    case OPT_THREADS: ok = cli_parse_size(v, &z) && z >= 1 && z <= 1024; a->c.threads = (int)z; break;
    case OPT_RESUME: a->c.resume = true; break;
    case OPT_SKIPBAD: a->c.skip_bad = true; break;
    case OPT_REPORT: a->report = v; break;
    case OPT_QUIET: a->quiet = true; break;
    case OPT_FORCE: a->c.policy.overwrite = true; break;
    case OPT_DTYPE:
        if (!strcmp(v, "original"))
            a->dtype = MPOC_DTYPE_COUNT_;
        else
            ok = mpoc_dtype_from_name(v, &a->dtype) == MPOC_OK &&
                 (a->dtype == MPOC_DTYPE_F32 || a->dtype == MPOC_DTYPE_F16 || a->dtype == MPOC_DTYPE_BF16);
        break;
    default: ok = false;
    }
    if (!ok)
        cli_error(a->cmd, "invalid value '%s' for --%s", v ? v : "", job_options[c - OPT_CHI].name);
    return ok;
}

/* Options each command accepts (a bit per OPT_ value). */
static bool allowed(const char *cmd, int c)
{
    if (c == OPT_HELP || c == OPT_QUIET || c == OPT_FORCE || c == OPT_REPORT)
        return true;
    if (!strcmp(cmd, "decompress"))
        return c == OPT_DTYPE;
    if (!strcmp(cmd, "prune"))
        return c == OPT_CHI || c == OPT_EPS || c == OPT_CUTOFF || c == OPT_QUANT ||
               c == OPT_CQUANT || c == OPT_NOFB;
    return c != OPT_DTYPE;
}

static int parse(int argc, char **argv, job_args *a, const char *usage)
{
    memset(a, 0, sizeof *a);
    a->cmd = argv[0];
    a->c = mpoc_compress_options_default();
    a->c.mpo.eps = 0.0;
    a->dtype = MPOC_DTYPE_COUNT_;
    a->globs = calloc((size_t)argc + 1, sizeof *a->globs);
    a->ex = calloc((size_t)argc + 1, sizeof *a->ex);
    if (!a->globs || !a->ex)
        return CLI_FAIL;
    optind = 1;
    opterr = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", job_options, NULL)) != -1) {
        if (c == OPT_HELP || c == 'h') {
            fputs(usage, stdout);
            return -1;
        }
        if (c == '?')
            return CLI_USAGE;
        if (!allowed(a->cmd, c)) {
            cli_error(a->cmd, "option --%s does not apply here", job_options[c - OPT_CHI].name);
            return CLI_USAGE;
        }
        if (!take(c, optarg, a))
            return CLI_USAGE;
    }
    if (optind + 2 != argc) {
        fputs(usage, stderr);
        return CLI_USAGE;
    }
    a->in = argv[optind];
    a->out = argv[optind + 1];
    a->c.include = a->globs;
    a->c.exclude = a->ex;
    if (!a->any_trunc && !strcmp(a->cmd, "compress"))
        a->c.mpo.eps = mpoc_compress_options_default().mpo.eps;
    if (!a->any_trunc && !strcmp(a->cmd, "prune")) {
        cli_error(a->cmd, "give at least one of --chi, --eps, --cutoff");
        return CLI_USAGE;
    }
    return CLI_OK;
}

static void free_args(job_args *a)
{
    free(a->globs);
    free(a->ex);
}

static int open_report(job_args *a, job_view *v)
{
    memset(v, 0, sizeof *v);
    v->cmd = a->cmd;
    v->quiet = a->quiet;
    v->tty = cli_stderr_is_tty();
    v->t0 = wall();
    if (a->report) {
        v->report = fopen(a->report, "w");
        if (!v->report) {
            cli_error(a->cmd, "cannot write the report %s", a->report);
            return CLI_FAIL;
        }
    }
    return CLI_OK;
}

static int finish(job_args *a, job_view *v, mpoc_status st, const mpoc_summary *s, const char *what)
{
    clear_bar(v);
    int rc = CLI_OK;
    if (st != MPOC_OK) {
        rc = cli_fail(a->cmd, st, a->in);
    } else {
        if (v->report)
            emit_json(v->report, summary_json(s));
        if (!a->quiet)
            job_summary(stderr, what, s);
    }
    if (v->report)
        fclose(v->report);
    free_args(a);
    return rc;
}

/* Parse the arguments and open the report: CLI_OK to go on, -1 after
 * --help, an exit code otherwise (everything freed then). */
static int begin_job(int argc, char **argv, const char *usage, job_args *a, job_view *v)
{
    int rc = parse(argc, argv, a, usage);
    if (rc == CLI_OK)
        rc = open_report(a, v);
    if (rc != CLI_OK)
        free_args(a);
    return rc;
}

int cli_cmd_compress(int argc, char **argv)
{
    job_args a;
    job_view v;
    int rc = begin_job(argc, argv, compress_usage, &a, &v);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    a.c.progress = on_progress;
    a.c.progress_user = &v;
    const char *stop = getenv("MPOC_TEST_STOP_AFTER"); /* simulated kill for the tests */
    if (stop)
        cli_parse_size(stop, &a.c.stop_after);
    mpoc_summary s;
    mpoc_status st = mpoc_compress(a.in, a.out, &a.c, &s);
    return finish(&a, &v, st, &s, a.out);
}

static const char decompress_usage[] =
    "usage: mpoc decompress IN OUT [--dtype f32|f16|bf16|original] [--force] [--quiet] [--report FILE]\n"
    "\n"
    "Write the dense model of an mpoc container: original names, shapes, order and\n"
    "metadata, in the container's format (GGUF or safetensors). --dtype original\n"
    "(default) restores each reconstructed tensor's original dtype; f32/f16/bf16 choose\n"
    "one. Tensors that were never factorized are copied byte for byte.\n";

int cli_cmd_decompress(int argc, char **argv)
{
    job_args a;
    job_view v;
    int rc = begin_job(argc, argv, decompress_usage, &a, &v);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    mpoc_decompress_options o = mpoc_decompress_options_default();
    o.dtype = a.dtype;
    o.policy = a.c.policy;
    o.progress = on_progress;
    o.progress_user = &v;
    mpoc_summary s;
    mpoc_status st = mpoc_decompress(a.in, a.out, &o, &s);
    return finish(&a, &v, st, &s, a.out);
}

static const char prune_usage[] =
    "usage: mpoc prune IN OUT (--chi N | --eps E | --cutoff T) [--quant T --center-quant T]\n"
    "                  [--no-feedback] [--force] [--quiet] [--report FILE]\n"
    "\n"
    "Prune the bonds of an mpoc container without the original model: dequantize the\n"
    "cores, round them (TT-rounding), re-quantize with error feedback against the\n"
    "container's reconstruction. Tensors keep their core types unless --quant or\n"
    "--center-quant is given. Errors are relative to the input container.\n";

int cli_cmd_prune(int argc, char **argv)
{
    job_args a;
    job_view v;
    int rc = begin_job(argc, argv, prune_usage, &a, &v);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    mpoc_prune_options o = mpoc_prune_options_default();
    o.mpo = a.c.mpo;
    o.quant = a.c.quant;
    o.keep_types = !a.quant_set && !a.cquant_set && !a.nofb_set;
    o.policy = a.c.policy;
    o.progress = on_progress;
    o.progress_user = &v;
    mpoc_summary s;
    mpoc_status st = mpoc_prune(a.in, a.out, &o, &s);
    return finish(&a, &v, st, &s, a.out);
}
