/* mpoc_svd.h: truncated SVD of a row-major float32 matrix, exact or
 * randomized, with every truncation rule users know.
 *
 * A = U·diag(s)·Vt with U (m × k, orthonormal columns), s (k, descending,
 * non-negative) and Vt (k × n, orthonormal rows). Signs are fixed so that the
 * largest-|·| entry of each column of U is positive (first index on ties), so
 * the same input, options and BLAS thread count give the same bytes. */
#ifndef MPOC_SVD_H
#define MPOC_SVD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpoc_mat.h"
#include "mpoc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Truncation rules. Each active rule gives a largest acceptable rank; the
 * kept rank is the smallest of them and at least 1 (the tightest wins).
 * Singular values σ_i ≤ σ_1·max(m,n)·FLT_EPSILON are zero and always dropped
 * (numpy's matrix_rank convention), unless keep_zeros is set. */
typedef struct mpoc_trunc {
    size_t max_rank;         /* χ: keep at most this many; 0 = no limit */
    double rel_cutoff;       /* τ: drop σ_i < τ·σ_1; 0 = off */
    double discarded_weight; /* w: smallest r with Σ_{i>r}σ_i² ≤ w·‖A‖²; 0 = off */
    double abs_tail;         /* δ: smallest r with Σ_{i>r}σ_i² ≤ δ²; 0 = off */
    bool keep_zeros;         /* keep numerically zero values (exact re-gauging) */
} mpoc_trunc;

typedef enum mpoc_svd_method {
    MPOC_SVD_AUTO = 0,       /* randomized when the kept rank is small against min(m,n) */
    MPOC_SVD_EXACT = 1,      /* LAPACK sgesdd, sgesvd when it does not converge */
    MPOC_SVD_RANDOMIZED = 2  /* Halko–Martinsson–Tropp range finder, adaptive when
                                the rank is not known in advance */
} mpoc_svd_method;

typedef struct mpoc_svd_options {
    mpoc_trunc trunc;
    mpoc_svd_method method;
    size_t oversample;    /* p: extra sketch columns (default 10) */
    unsigned power_iters; /* q: power iterations, re-orthonormalized (default 2) */
    uint64_t seed;        /* Gaussian sketch seed (GSL mt19937) */
} mpoc_svd_options;

/* Defaults: no truncation, AUTO, p = 10, q = 2, seed 0x6d706f63. */
mpoc_svd_options mpoc_svd_options_default(void);

/* Name of a method ("auto", "exact", "randomized"), and the reverse. */
const char *mpoc_svd_method_name(mpoc_svd_method m);
mpoc_status mpoc_svd_method_parse(const char *s, mpoc_svd_method *out);

typedef struct mpoc_svd_result {
    size_t m, n;            /* input shape */
    size_t rank;            /* kept rank k */
    float *u;               /* m × k row-major (owned) */
    float *s;               /* k singular values, descending (owned) */
    float *vt;              /* k × n row-major (owned) */
    double total_sq;        /* ‖A‖_F² in double */
    double discarded_sq;    /* ‖A − U·diag(s)·Vt‖_F², from the dropped values */
    mpoc_svd_method used;   /* EXACT or RANDOMIZED: the path that produced it */
} mpoc_svd_result;

/* Opaque grow-only scratch shared by successive calls (one per thread). */
typedef struct mpoc_workspace mpoc_workspace;
mpoc_status mpoc_workspace_new(mpoc_workspace **out);
void mpoc_workspace_free(mpoc_workspace *ws);
/* High-water mark of the workspace's allocations, in bytes. */
size_t mpoc_workspace_peak_bytes(const mpoc_workspace *ws);

/* Truncated SVD of a (not modified). Rejects NaN/Inf with MPOC_E_NUMERIC
 * before LAPACK sees them; MPOC_E_LINALG when LAPACK fails after the gesvd
 * fallback. Allocates the result; free with mpoc_svd_result_free. */
mpoc_status mpoc_svd(mpoc_mat_view a, const mpoc_svd_options *opt, mpoc_svd_result *out);

/* As mpoc_svd with caller scratch reused across calls (one per thread). */
mpoc_status mpoc_svd_ex(mpoc_mat_view a, const mpoc_svd_options *opt,
                        mpoc_workspace *ws, mpoc_svd_result *out);

void mpoc_svd_result_free(mpoc_svd_result *r);

/* BLAS threads used by every numeric routine (n ≥ 1), and the current count.
 * Results are byte-identical for a given thread count; recorded in outputs. */
void mpoc_set_threads(int n);
int mpoc_threads(void);
/* The BLAS/LAPACK build and kernel in use, for reports (static storage). */
const char *mpoc_blas_describe(void);
/* A better OpenBLAS kernel for this CPU when OpenBLAS fell back to a generic
 * one (it does on CPUs newer than its build, e.g. "Prescott" on Emerald
 * Rapids, 5-10x slower): "SkylakeX" when the CPU has AVX-512 (F, BW, DQ,
 * VL), "Haswell" when it has AVX2 and FMA, else NULL.
 * OpenBLAS reads OPENBLAS_CORETYPE only at load time, so a program that wants
 * it sets the variable and re-executes itself; the library never does. */
const char *mpoc_blas_suggest_coretype(void);

/* The rank the rules choose for singular values s[0..n) (descending) of a
 * matrix with ‖A‖² = total_sq and largest dimension max_dim; `residual_sq` is
 * the energy not represented by s (0 for a full spectrum). Stores the
 * discarded energy (residual_sq + Σ dropped s²) in *discarded_sq. */
size_t mpoc_trunc_rank(const mpoc_trunc *t, const float *s, size_t n, double total_sq,
                       double residual_sq, size_t max_dim, double *discarded_sq);

#ifdef __cplusplus
}
#endif
#endif
