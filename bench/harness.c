/* harness.c: timing helper, JSON Lines output, command line and main of
 * build/mpoc-bench. See bench.h and docs/benchmarks.md. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MIN_SAMPLE_SECONDS 0.02
#define LONG_WARMUP_SECONDS 0.5
#define MAX_SAMPLES 1000


double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarize(double *t, size_t n, size_t iters, bench_timing *out)
{
    qsort(t, n, sizeof *t, cmp_double);
    out->samples = n;
    out->iters = iters;
    out->min = t[0];
    out->max = t[n - 1];
    out->median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* One warm-up call of body: its time, and the calls per sample it implies. */
static mpoc_status warm_up(bench_body body, void *arg, double *seconds, size_t *iters)
{
    double t0 = bench_now();
    mpoc_status st = body(arg);
    *seconds = bench_now() - t0;
    *iters = 1;
    if (*seconds < MIN_SAMPLE_SECONDS)
        *iters = (size_t)ceil(MIN_SAMPLE_SECONDS / (*seconds > 1e-9 ? *seconds : 1e-9));
    return st;
}

static mpoc_status sample(bench_body body, void *arg, size_t iters, double *seconds)
{
    double t0 = bench_now();
    for (size_t i = 0; i < iters; i++)
        BENCH_TRY(body(arg));
    *seconds = (bench_now() - t0) / (double)iters;
    return MPOC_OK;
}

mpoc_status bench_time_paired(bench_body base, void *base_arg, bench_body cand, void *cand_arg,
                              double budget, size_t min_pairs, bench_timing *t_base,
                              bench_timing *t_cand, double *ratio)
{
    static double tb[MAX_SAMPLES], tc[MAX_SAMPLES], r[MAX_SAMPLES];
    size_t n = 0, ib, ic;
    double wb, wc;
    memset(t_base, 0, sizeof *t_base);
    memset(t_cand, 0, sizeof *t_cand);
    *ratio = NAN;
    double start = bench_now();
    BENCH_TRY(warm_up(base, base_arg, &wb, &ib));
    BENCH_TRY(warm_up(cand, cand_arg, &wc, &ic));
    if (wb >= LONG_WARMUP_SECONDS && wc >= LONG_WARMUP_SECONDS) {
        tb[n] = wb, tc[n] = wc, r[n] = wb / wc;
        n++;
    } else {
        start = bench_now();
    }
    while (n < MAX_SAMPLES && (n < min_pairs || bench_now() - start < budget)) {
        BENCH_TRY(sample(base, base_arg, ib, &tb[n]));
        BENCH_TRY(sample(cand, cand_arg, ic, &tc[n]));
        r[n] = tb[n] / tc[n];
        n++;
    }
    summarize(tb, n, ib, t_base);
    summarize(tc, n, ic, t_cand);
    qsort(r, n, sizeof *r, cmp_double);
    *ratio = n % 2 ? r[n / 2] : 0.5 * (r[n / 2 - 1] + r[n / 2]);
    return MPOC_OK;
}

mpoc_status bench_time(bench_body body, void *arg, double budget, size_t min_samples,
                       bench_timing *out)
{
    static double t[MAX_SAMPLES];
    size_t n = 0, iters;
    double warm;
    memset(out, 0, sizeof *out);
    double start = bench_now();
    BENCH_TRY(warm_up(body, arg, &warm, &iters));
    if (warm >= LONG_WARMUP_SECONDS)
        t[n++] = warm;
    else
        start = bench_now();
    while (n < MAX_SAMPLES && (n < min_samples || bench_now() - start < budget))
        BENCH_TRY(sample(body, arg, iters, &t[n++]));
    summarize(t, n, iters, out);
    return MPOC_OK;
}

const char *bench_verdict(bool pass)
{
    return pass ? "PASS" : "FAIL";
}

static void emit(bench_ctx *c, const char *bench, const char *metric, double value,
                 const char *unit, const char *target, int pass)
{
    if (!c->json)
        return;
    json_t *o = json_object();
    json_object_set_new(o, "bench", json_string(bench));
    json_object_set_new(o, "metric", json_string(metric));
    json_object_set_new(o, "value", isfinite(value) ? json_real(value) : json_null());
    json_object_set_new(o, "unit", json_string(unit));
    if (target) {
        json_object_set_new(o, "target", json_string(target));
        json_object_set_new(o, "pass", json_boolean(pass));
    }
    json_object_set_new(o, "quick", json_boolean(c->quick));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (s) {
        fprintf(c->json, "%s\n", s);
        free(s);
    }
    json_decref(o);
}

void bench_emit(bench_ctx *c, const char *bench, const char *metric, double value,
                const char *unit)
{
    emit(c, bench, metric, value, unit, NULL, 0);
}

void bench_emit_check(bench_ctx *c, const char *bench, const char *metric, double value,
                      const char *unit, const char *target, bool pass)
{
    if (!pass)
        c->failures++;
    emit(c, bench, metric, value, unit, target, pass ? 1 : 0);
}

void bench_fill_uniform(float *x, size_t n, unsigned long long seed, float scale)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        /* top 24 bits → [0, 1), then [-scale, scale) */
        float u = (float)(s >> 40) * (1.0f / 16777216.0f);
        x[i] = (2.0f * u - 1.0f) * scale;
    }
}

/* ---- command line ------------------------------------------------------- */

typedef struct bench_entry {
    const char *name;
    int (*run)(bench_ctx *c);
    const char *summary;
} bench_entry;

static const bench_entry benches[] = {
    {"sgemm", bench_sgemm, "SGEMM GFLOP/s peak of this run (the numeric baseline)"},
    {"decompose", bench_decompose, "4 sites, chi 64, power-law W: exact vs randomized SVD path"},
    {"apply", bench_apply, "MPO x batch of 32 vectors vs dense sgemm with W"},
    {"scaling", bench_scaling, "time ~ n^k of both SVD paths (2 sites, fitted log-log)"},
    {"io", bench_io, "model read and float32 conversion vs memcpy bandwidth (F32, BF16, Q4_K)"},
    {"compress", bench_compress,
     "LLaMA-7B-shaped layer at chi 256, q8_0: s/layer, peak RSS, SGEMM fraction; multi-GB RSS"},
    {"llama", bench_llama, "tokens/s dense vs MPO containers (fixture, ~100M generated model)"},
};
#define N_BENCHES (sizeof benches / sizeof benches[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: mpoc-bench [NAME...] [--quick] [--json FILE] [--threads N]\n\n"
               "benchmarks (all when none is named):\n");
    for (size_t i = 0; i < N_BENCHES; i++)
        fprintf(f, "  %-10s %s\n", benches[i].name, benches[i].summary);
    fprintf(f, "\nEvery speed figure is a ratio against a baseline measured in the same run.\n");
}

/* OpenBLAS reads OPENBLAS_CORETYPE only when it loads: when it picked a
 * generic kernel, set a better one and re-execute (as the mpoc CLI does). */
static void tune_blas(char **argv)
{
    const char *core = mpoc_blas_suggest_coretype();
    if (!core || getenv("OPENBLAS_CORETYPE") || getenv("MPOC_BLAS_TUNED"))
        return;
    setenv("OPENBLAS_CORETYPE", core, 1);
    setenv("MPOC_BLAS_TUNED", "1", 1);
    execv("/proc/self/exe", argv);
    fprintf(stderr, "mpoc-bench: re-exec with OPENBLAS_CORETYPE=%s failed (%s); "
                    "continuing with the generic kernel\n", core, strerror(errno));
}

static void log_stderr(void *user, const char *message)
{
    (void)user;
    fprintf(stderr, "mpoc: %s\n", message);
}

/* mkdir -p of the folder holding `path` (one level is enough for build/bench). */
static void make_parent(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        mkdir(dir, 0777);
    }
}

typedef struct args {
    bool selected[N_BENCHES];
    bool any;
    bool quick;
    const char *json;
    int threads;
} args;

static int parse_args(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    a->threads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            a->quick = true;
        } else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
            a->json = argv[++i];
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 256) {
                fprintf(stderr, "mpoc-bench: --threads wants 1..256, not '%s'\n", argv[i]);
                return 2;
            }
            a->threads = (int)v;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return -1;
        } else {
            size_t k = 0;
            while (k < N_BENCHES && strcmp(argv[i], benches[k].name))
                k++;
            if (k == N_BENCHES) {
                fprintf(stderr, "mpoc-bench: unknown benchmark or option '%s'\n", argv[i]);
                usage(stderr);
                return 2;
            }
            a->selected[k] = a->any = true;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    tune_blas(argv);
    if (argc > 1 && !strcmp(argv[1], "--compress-child"))
        return bench_compress_child(argc, argv);
    args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc < 0 ? 0 : rc;
    mpoc_log_set(log_stderr, NULL);
    bench_ctx c;
    memset(&c, 0, sizeof c);
    c.quick = a.quick;
    c.threads = a.threads;
    c.budget = a.quick ? 0.5 : 2.0;
    if (a.json) {
        make_parent(a.json);
        c.json = fopen(a.json, "w");
        if (!c.json) {
            fprintf(stderr, "mpoc-bench: cannot write %s: %s\n", a.json, strerror(errno));
            return 1;
        }
    }
    mpoc_set_threads(c.threads);
    const char *core = getenv("OPENBLAS_CORETYPE");
    const char *how = !core ? "auto-detected, OPENBLAS_CORETYPE unset"
                      : getenv("MPOC_BLAS_TUNED") ? "OPENBLAS_CORETYPE set by mpoc-bench's re-exec"
                                                  : "OPENBLAS_CORETYPE from the environment";
    double load[3] = {0, 0, 0};
    printf("mpoc-bench %s%s\n", MPOC_VERSION_STRING, c.quick ? " (quick)" : "");
    printf("BLAS: %s\n", mpoc_blas_describe());
    printf("kernel: %s (%s); BLAS threads: %d; CPUs online: %ld\n", core ? core : "?", how,
           mpoc_threads(), sysconf(_SC_NPROCESSORS_ONLN));
    if (getloadavg(load, 3) == 3)
        printf("load average at start: %.2f %.2f %.2f (the machine is shared: compare ratios)\n",
               load[0], load[1], load[2]);
    printf("timing: median of repeated samples, about %.1f s per measurement\n\n", c.budget);
    if (c.json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:b}", "bench", "run", "version",
                              MPOC_VERSION_STRING, "blas", mpoc_blas_describe(), "kernel",
                              core ? core : "auto", "threads", mpoc_threads(), "quick", c.quick);
        if (o) {
            json_dumpf(o, c.json, JSON_COMPACT | JSON_PRESERVE_ORDER);
            fputc('\n', c.json);
            json_decref(o);
        }
    }
    int errors = 0;
    double t0 = bench_now();
    for (size_t i = 0; i < N_BENCHES; i++) {
        if (a.any && !a.selected[i])
            continue;
        printf("== %s: %s\n", benches[i].name, benches[i].summary);
        fflush(stdout);
        if (benches[i].run(&c)) {
            printf("   %s: could not run (see above)\n", benches[i].name);
            errors++;
        }
        printf("\n");
        fflush(stdout);
    }
    if (getloadavg(load, 3) == 3)
        printf("load average at end: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
    printf("total %.1f s; %d target(s) missed; %d benchmark(s) failed to run\n",
           bench_now() - t0, c.failures, errors);
    mpoc_mat_free(&c.power_w);
    if (c.json)
        fclose(c.json);
    return errors ? 1 : 0;
}
