/* mpoc_sweep.h: the compression–error trade-off of a matrix or a model,
 * measured over a grid of settings, against the baselines a user would pick
 * instead (docs/sweep.md is the narrative and the record format).
 *
 * A setting is (sites, χ, ε, quant). For each sites value the matrix is
 * factorized ONCE (TT-SVD) at the loosest truncation of the grid (largest χ,
 * smallest ε) and that parent is brought once into right-canonical form;
 * each (χ, ε) pair is a copy of it rounded down (TT-rounding) and each core
 * type a quantization of that with error feedback. The setting equal to the
 * parent's truncation IS the parent, so it matches a separate decompose +
 * quantize run (mpoc compress) exactly; the others match it to within the
 * quasi-optimality of rounding (ranks, hence bytes, equal whenever χ binds;
 * errors within a few percent, docs/sweep.md).
 *
 * Every record reports what would be stored: the measured relative Frobenius
 * error of the dequantized cores (padding cropped) against the original, and
 * the real bytes (cores and scales). Baselines at each setting, computed here:
 *   svd   truncated SVD W ≈ L·R, L = U_r·diag(√σ), R = diag(√σ)·V_rᵀ stored
 *         as f16, 2·r·(rows+cols) bytes, r the largest rank whose bytes do
 *         not exceed the MPO's (r = 0: nothing stored, error 1);
 *   q8_0, q4_0  the dense matrix in ggml blocks of 32 along each row (a row
 *         whose length is not a multiple of 32 is zero-padded to one),
 *         34 / 18 bytes per block; their size does not depend on the setting.
 * "Best at that size": among the setting's records whose bytes are ≤ the
 * MPO record's bytes (the setting's size), the one with the lowest error
 * (ties: mpo, svd, q8_0, q4_0 in that order). */
#ifndef MPOC_SWEEP_H
#define MPOC_SWEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpoc_io.h"
#include "mpoc_llama.h"
#include "mpoc_mat.h"
#include "mpoc_mpo.h"
#include "mpoc_quant.h"
#include "mpoc_status.h"
#include "mpoc_svd.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mpoc_sweep_method {
    MPOC_SWEEP_MPO = 0,
    MPOC_SWEEP_SVD = 1,
    MPOC_SWEEP_Q8_0 = 2,
    MPOC_SWEEP_Q4_0 = 3,
    MPOC_SWEEP_METHOD_COUNT_
} mpoc_sweep_method;

/* "mpo", "svd", "q8_0", "q4_0" ("?" if invalid); never NULL. */
const char *mpoc_sweep_method_name(mpoc_sweep_method m);

/* How block-quantized cores count on disk. GGML: whole blocks of 34 (Q8_0)
 * or 18 (Q4_0) bytes, the form GGUF containers hold. SPLIT: the safetensors
 * container form (docs/format.md): codes without the last block's padding
 * (n bytes for Q8_0, ⌈n/2⌉ for Q4_0) plus one F16 scale per block. */
typedef enum mpoc_sweep_layout {
    MPOC_SWEEP_LAYOUT_GGML = 0,
    MPOC_SWEEP_LAYOUT_SPLIT = 1
} mpoc_sweep_layout;

/* Optional hooks that hand out what a setting would store, for callers that
 * evaluate it further (mpoc_sweep_model's model-level eval). Called from the
 * thread running mpoc_sweep_matrix, before the object is freed; a non-OK
 * return fails the sweep. keep_mpo: the dequantized MPO of each setting (q
 * is borrowed: copy what you keep). keep_svd: once per matrix (with
 * baselines, when some setting's svd rank is > 0), the f16-rounded factors
 * of the largest rank any setting uses: l is rows × rank (row stride rank),
 * rt is rank × cols; the rank-r baseline of a setting (its svd record's
 * ranks[0]) is l[:, :r]·rt[:r, :]. */
typedef mpoc_status (*mpoc_sweep_keep_mpo_fn)(void *user, size_t setting, const mpoc_qmpo *q);
typedef mpoc_status (*mpoc_sweep_keep_svd_fn)(void *user, const float *l, const float *rt,
                                              size_t rows, size_t cols, size_t rank);

typedef struct mpoc_sweep_options {
    const size_t *chi;            /* χ values, 0 = no limit (borrowed); none: {0} */
    size_t n_chi;
    const double *eps;            /* ε values, 0 = off, else in (0, 1); none: {0} */
    size_t n_eps;
    const mpoc_quant_type *quant; /* core types; none: {Q8_0} */
    size_t n_quant;
    const size_t *sites;          /* sites values, 0 = automatic; none: {0} */
    size_t n_sites;
    mpoc_quant_type centre;       /* the core carrying the norm (default F16) */
    bool no_feedback;             /* quantize cores independently */
    mpoc_svd_options svd;         /* SVD path, sketch and seed (trunc is ignored) */
    mpoc_pad_policy pad;
    bool baselines;               /* svd, q8_0, q4_0 records (default true) */
    bool separate;                /* reference mode: decompose every setting from
                                     scratch, as separate runs would (for timing the
                                     sweep against them) */
    mpoc_sweep_layout layout;     /* bytes of block cores (default GGML) */
    mpoc_sweep_keep_mpo_fn keep_mpo; /* NULL: none (see above) */
    mpoc_sweep_keep_svd_fn keep_svd; /* NULL: none */
    void *keep_user;                 /* passed to both */
} mpoc_sweep_options;

/* Defaults: empty lists (one setting: no truncation, Q8_0), F16 centre,
 * feedback, AUTO SVD with seed 1 (as mpoc compress), baselines on. */
mpoc_sweep_options mpoc_sweep_options_default(void);

/* Number of settings of the grid: max(1,n_sites)·max(1,n_chi)·max(1,n_eps)·
 * max(1,n_quant). Setting s enumerates sites (outermost), χ, ε, quant
 * (innermost), each in the order given. */
size_t mpoc_sweep_setting_count(const mpoc_sweep_options *opt);

typedef struct mpoc_sweep_setting {
    size_t sites;                 /* as requested (0 = automatic) */
    size_t chi;                   /* 0 = no limit */
    double eps;                   /* 0 = off */
    mpoc_quant_type quant;
} mpoc_sweep_setting;

/* Setting s (< mpoc_sweep_setting_count) of the grid. */
mpoc_sweep_setting mpoc_sweep_setting_at(const mpoc_sweep_options *opt, size_t s);

/* One measured point. Totals over tensors have tensor "*". */
typedef struct mpoc_sweep_record {
    const char *tensor;           /* borrowed (see the function that hands it out) */
    size_t tensor_index;          /* position among the swept tensors (totals: count) */
    size_t setting;               /* index in the grid */
    mpoc_sweep_setting set;
    mpoc_sweep_method method;
    size_t rows, cols;            /* the matrix (totals: 0) */
    size_t sites;                 /* mpo: sites actually used; others 0 */
    size_t n_ranks;               /* mpo: d+1 (r_0..r_d); svd: 1 (r); q8_0/q4_0: 0 */
    size_t ranks[MPOC_MAX_SITES + 1];
    uint64_t params;              /* values stored: Σ core sizes, r·(rows+cols), rows·cols */
    uint64_t bytes;               /* stored bytes, scales included */
    uint64_t original_bytes;      /* the original tensor's bytes */
    uint64_t elems;               /* rows·cols (totals: Σ) */
    double bits_per_weight;       /* 8·bytes / elems */
    double compression;           /* original_bytes / bytes (Inf when bytes = 0) */
    double rel_error;             /* ‖W − Ŵ‖_F/‖W‖_F of what is stored, measured
                                     (totals: √(Σ n_i e_i² / Σ n_i)) */
    double rel_error_trunc;       /* mpo: before quantization; svd: before f16; else NaN */
    double seconds;               /* this record's own work (round + quantize +
                                     measure; baselines: their reconstruction) */
    double seconds_factor;        /* shared work it used: the parent TT-SVD (mpo), the
                                     SVD (svd); 0 for q8_0/q4_0 */
    bool best;                    /* lowest error at the setting's size (above) */
    mpoc_sweep_method best_method;/* the setting's best method (same on all its records) */
    /* Model-level figures (totals of mpoc_sweep_model with an eval reference;
     * has_eval false elsewhere): the model with every swept matrix replaced
     * by this record's method at this setting, teacher-forced against the
     * reference (mpoc_llama_eval): mean and max KL(P_ref ‖ P_cand) in nats
     * per predicted token and top-1 agreement. */
    bool has_eval;
    double kl_mean, kl_max, top1;
} mpoc_sweep_record;

/* A list of records. Owns `records` (not the strings they point to). */
typedef struct mpoc_sweep_result {
    mpoc_sweep_record *records;
    size_t n;
    double seconds_factor[MPOC_MAX_SITES + 1]; /* per sites value, in list order: the
                                                  parent TT-SVD + re-gauging wall time */
    double seconds_svd;           /* the svd baseline's SVD */
    double seconds_total;         /* wall time of the whole call */
} mpoc_sweep_result;

void mpoc_sweep_result_free(mpoc_sweep_result *r);

/* Sweep one matrix: per setting one mpo record, then (with baselines) svd,
 * q8_0 and q4_0 records, setting by setting, with `best` filled in. `name`
 * (borrowed; must outlive the result) labels the records; original_bytes is
 * the size of the tensor as it was stored (0: 4·rows·cols). `ws` may be
 * NULL. Records are deterministic for the same input, options and BLAS
 * thread count (except the seconds fields). MPOC_E_INVAL for a bad option,
 * MPOC_E_NUMERIC for NaN/Inf in w. Allocates: a few copies of w. */
mpoc_status mpoc_sweep_matrix(mpoc_mat_view w, const char *name, uint64_t original_bytes,
                              const mpoc_sweep_options *opt, mpoc_workspace *ws,
                              mpoc_sweep_result *out);

/* Per-setting totals over the records of several tensors (tensor "*",
 * tensor_index = number of tensors): bytes, params, elems and seconds
 * summed, errors size-weighted, `best` recomputed on the totals. Appends to
 * out (which may hold earlier records). */
mpoc_status mpoc_sweep_totals(const mpoc_sweep_record *recs, size_t n,
                              const mpoc_sweep_options *opt, mpoc_sweep_result *out);

/* Mark `best` and best_method over records [0, n) that belong to ONE
 * setting of one tensor (or of the totals). */
void mpoc_sweep_mark_best(mpoc_sweep_record *recs, size_t n);

/* Baselines on their own (also used by the tests). Relative error of the
 * rank-r SVD with f16 factors given the SVD `res` of w (r ≤ res->rank, else
 * MPOC_E_INVAL; r = 0 gives 1), measured on the dense product, and the
 * error of the float factors from the singular values (*rel_error_trunc).
 * Then the error of w stored as q8_0 / q4_0 (method MPOC_SWEEP_Q8_0 or
 * _Q4_0) and its bytes. Both allocate scratch of about one copy of w. */
mpoc_status mpoc_sweep_svd_error(mpoc_mat_view w, const mpoc_svd_result *res, size_t r,
                                 double *rel_error, double *rel_error_trunc);
mpoc_status mpoc_sweep_block_error(mpoc_mat_view w, mpoc_sweep_method m, double *rel_error,
                                   uint64_t *bytes);
/* What the q8_0 / q4_0 baseline stores, decoded: w with each row zero-padded
 * to whole blocks of 32, quantized and dequantized, cropped back (in place:
 * w is rows × cols with row stride ld). */
mpoc_status mpoc_sweep_block_roundtrip(mpoc_mat_view w, mpoc_sweep_method m);

/* Bytes of an MPO stored with `types` under `layout` (cores and scales). */
mpoc_status mpoc_sweep_qmpo_bytes(const mpoc_qmpo *q, mpoc_sweep_layout layout, uint64_t *bytes);

/* Single-precision GEMM speed of this machine with the current BLAS
 * threads: the best of a few n × n × n products, in GFLOP/s (2n³ flops). */
mpoc_status mpoc_sgemm_gflops(size_t n, double *gflops);

/* ---- lists and files ---------------------------------------------------- */

/* Parse a list of values: comma-separated items, each a value or a range
 * "a:b:xF" (a, a·F, a·F², … ≤ b; F > 1), "a:b:+S" (a, a+S, … ≤ b; S > 0)
 * or "a:b" (step +1). Values keep their order; repeats are dropped; at most
 * 4096. The size form needs non-negative integers (geometric steps are
 * rounded to the nearest integer). Allocates *out (free with free()).
 * MPOC_E_INVAL with the offending item logged. */
mpoc_status mpoc_parse_size_list(const char *spec, size_t **out, size_t *n);
mpoc_status mpoc_parse_double_list(const char *spec, double **out, size_t *n);

/* Write n bytes to `path` atomically (temp file, fsync, rename) under
 * `policy` (NULL: no overwrite). */
mpoc_status mpoc_write_file(const char *path, const void *data, size_t n,
                            const mpoc_write_policy *policy);

/* ---- whole models ------------------------------------------------------ */

/* Receives records in a deterministic order: each swept tensor's records in
 * input order, then the totals. Strings are borrowed for the call. A
 * non-OK return stops the sweep with that status. */
typedef mpoc_status (*mpoc_sweep_emit_fn)(void *user, const mpoc_sweep_record *rec);
/* Called once per tensor as it completes (serialized), for progress bars. */
typedef void (*mpoc_sweep_progress_fn)(void *user, const char *tensor, size_t done,
                                       size_t total);

typedef struct mpoc_sweep_model_options {
    mpoc_sweep_options sweep;     /* layout is chosen from the model's format */
    const char *const *include;   /* name globs replacing mpoc_pipeline_default_select */
    size_t n_include;
    const char *const *exclude;   /* globs removed from the selection */
    size_t n_exclude;
    uint64_t min_size;            /* smallest matrix (elements), default 1024 */
    int threads;                  /* tensors in parallel (0: OpenMP default); BLAS
                                     runs on one thread, as in mpoc_compress */
    mpoc_sweep_emit_fn emit;      /* required */
    void *emit_user;
    mpoc_sweep_progress_fn progress; /* may be NULL */
    void *progress_user;
    /* Model-level evaluation (NULL: off). With a reference model and token
     * sequences, every setting's totals get has_eval, kl_mean, kl_max, top1:
     * the model at `path` is opened as a LLaMA model (mpoc_llama_open) with
     * each swept matrix supplied by the record's method (mpo: the setting's
     * dequantized MPO, run on its cores; svd: the rank-r f16 factors'
     * product; q8_0/q4_0: the block-quantized matrix, computed once for all
     * settings) and compared with eval_ref over the tokens (mpoc_llama_eval).
     * The unswept tensors stay as stored. Memory: the dequantized MPOs of
     * every setting and the SVD factors are kept until the totals. */
    const mpoc_llama *eval_ref;
    const int32_t *eval_tokens;   /* eval_n_seq × eval_length ids, each row from BOS */
    size_t eval_n_seq, eval_length;
} mpoc_sweep_model_options;

mpoc_sweep_model_options mpoc_sweep_model_options_default(void);

/* Sweep every selected tensor of the model at `path` (any format
 * mpoc_model_open reads), selected exactly as mpoc_compress selects
 * (2-D, readable dtype, ≥ min_size elements, both dims ≥ 2). Records go to
 * opt->emit. MPOC_E_NOTFOUND (logged) when nothing is selected. */
mpoc_status mpoc_sweep_model(const char *path, const mpoc_sweep_model_options *opt);

#ifdef __cplusplus
}
#endif
#endif
