/* bench.h: the mpoc benchmark harness (build/mpoc-bench).
 *
 * Every speed figure is a ratio against a baseline measured in the same run
 * (the machine is shared and noisy): SGEMM GFLOP/s for the numeric core,
 * memcpy bandwidth for model I/O. Each measurement repeats its body until a
 * time budget is spent and reports the median (zstd's benchfn discipline:
 * calibrate the loop count, time many samples, keep the work observable).
 * Results go to stdout and, with --json FILE, one JSON object per line. */
#ifndef MPOC_BENCH_H
#define MPOC_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "mpoc.h"

/* Return the status of expr from the enclosing function unless it is MPOC_OK. */
#define BENCH_TRY(expr)                     \
    do {                                    \
        mpoc_status bench_st_ = (expr);     \
        if (bench_st_ != MPOC_OK)           \
            return bench_st_;               \
    } while (0)

/* Shared state of one run. Owns the cached matrices and the JSON stream. */
typedef struct bench_ctx {
    bool quick;          /* smaller sizes and budgets (--quick) */
    int threads;         /* BLAS threads, set once at start */
    FILE *json;          /* JSON Lines output, or NULL */
    double budget;       /* default seconds per measurement */
    double sgemm_gflops; /* SGEMM peak measured in this run (0 until measured) */
    size_t sgemm_n;      /* its size */
    mpoc_mat power_w;    /* cached power-law test matrix (owned), or empty */
    size_t power_n;      /* its side (0 when empty) */
    int failures;        /* targets missed (reported, not an error) */
} bench_ctx;

/* Result of bench_time: seconds per call of the body. */
typedef struct bench_timing {
    double median, min, max; /* per call, over the samples */
    size_t samples;          /* timed samples */
    size_t iters;            /* calls per sample (calibrated) */
} bench_timing;

/* A timed body; returns MPOC_OK or a status that stops the measurement. */
typedef mpoc_status (*bench_body)(void *arg);

/* Time body(arg): one warm-up call calibrates the number of calls per sample
 * (so a sample lasts >= 20 ms); a warm-up of >= 0.5 s counts as a sample
 * (long runs are not dominated by cold caches, and repeating them costs
 * minutes). Then samples until `budget` seconds are spent and at least
 * `min_samples` are taken (at most 1000). */
mpoc_status bench_time(bench_body body, void *arg, double budget, size_t min_samples,
                       bench_timing *out);

/* Paired timing for a ratio on a noisy machine: samples of `base` and
 * `cand` alternate (base, cand, base, cand, ...), each side calibrated as in
 * bench_time, and *ratio is the median over pairs of base time / cand time,
 * so a load change hits both sides of a pair. Warm-ups of >= 0.5 s on both
 * sides count as the first pair. At least `min_pairs` pairs (<= 1000). */
mpoc_status bench_time_paired(bench_body base, void *base_arg, bench_body cand, void *cand_arg,
                              double budget, size_t min_pairs, bench_timing *t_base,
                              bench_timing *t_cand, double *ratio);

/* Monotonic wall clock in seconds. */
double bench_now(void);

/* One JSON line {"bench", "metric", "value", "unit"[, "target", "pass"]}.
 * NaN or Inf values are written as null. No-op without --json. */
void bench_emit(bench_ctx *c, const char *bench, const char *metric, double value,
                const char *unit);
/* As bench_emit with a target description and its verdict; counts misses. */
void bench_emit_check(bench_ctx *c, const char *bench, const char *metric, double value,
                      const char *unit, const char *target, bool pass);

/* "PASS" or "FAIL". */
const char *bench_verdict(bool pass);

/* Measure the SGEMM peak (n × n × n, the run's thread count) unless this
 * run already has it; fills c->sgemm_gflops. */
mpoc_status bench_need_sgemm_peak(bench_ctx *c);

/* Fill n floats with uniform values in [-scale, scale) (xorshift, seeded). */
void bench_fill_uniform(float *x, size_t n, unsigned long long seed, float scale);

/* Flop model of one truncated SVD of an m × n matrix (bench_core.c):
 * randomized with sketch l and q power iterations, or exact (a lower bound:
 * LAPACK's reduction count, singular vectors not counted). */
double bench_svd_flops(double m, double n, bool randomized, double l, unsigned q);

/* mkdtemp("/tmp/mpoc-bench-XXXXXX") into buf (>= 23 bytes); 0 or -1. */
int bench_mkdtemp(char *buf, size_t n);
/* Remove a file or a folder with everything in it (no-op for "" / NULL). */
void bench_rmtree(const char *path);

/* Child mode of mpoc-bench (bench_compress.c): `--compress-child IN OUT CHI
 * RESULT` runs one mpoc_compress for the compress benchmark's RSS figure. */
int bench_compress_child(int argc, char **argv);

/* The benchmarks (bench_*.c). Each returns 0, or 1 when it could not run. */
int bench_sgemm(bench_ctx *c);
int bench_decompose(bench_ctx *c);
int bench_apply(bench_ctx *c);
int bench_scaling(bench_ctx *c);
int bench_io(bench_ctx *c);
int bench_compress(bench_ctx *c);
int bench_llama(bench_ctx *c);

#endif
