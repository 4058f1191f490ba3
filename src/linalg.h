/* linalg.h: the only door to BLAS and LAPACK.
 *
 * Everything is row-major float32. LAPACK is column-major; a row-major m × n
 * matrix with row stride ld is the column-major n × m matrix Aᵀ with lda = ld,
 * so each routine runs the column-major LAPACK call on the transpose and
 * swaps roles (QR ↔ LQ, U ↔ Vᵀ): no row-major copies, no LAPACKE row-major
 * path. Dimensions above INT_MAX give MPOC_E_OVERFLOW. */
#ifndef MPOC_LINALG_H
#define MPOC_LINALG_H

#include <stdbool.h>
#include <stddef.h>

#include "mpoc_status.h"
#include "workspace.h"

/* C = alpha·op(A)·op(B) + beta·C, row-major; op(A) is m × k, op(B) k × n. */
mpoc_status mpoc_la_gemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha,
                         const float *a, size_t lda, const float *b, size_t ldb, float beta,
                         float *c, size_t ldc);

/* B (cols × rows) = Aᵀ for A rows × cols. */
mpoc_status mpoc_la_transpose(size_t rows, size_t cols, const float *a, size_t lda, float *b,
                              size_t ldb);

/* C (n × n, full, row-major) = AᵀA for A m × n with row stride lda. */
mpoc_status mpoc_la_gram(size_t m, size_t n, const float *a, size_t lda, float *c);

/* In place inverse of a symmetric positive definite A (n × n, row-major,
 * double; both triangles read as the same matrix, both written) by Cholesky.
 * *ok = false (A destroyed) when A is not numerically positive definite. */
mpoc_status mpoc_la_spd_inverse(double *a, size_t n, bool *ok);

/* Thin QR of a tall A (m ≥ n) in place: A ← Q (orthonormal columns); when r
 * is not NULL it receives R (n × n, upper triangular, row-major). */
mpoc_status mpoc_la_qr(float *a, size_t m, size_t n, size_t ld, float *r, struct mpoc_workspace *ws);

/* Thin LQ of a wide A (m ≤ n) in place: A ← Q (orthonormal rows); when l is
 * not NULL it receives L (m × m, lower triangular, row-major). */
mpoc_status mpoc_la_lq(float *a, size_t m, size_t n, size_t ld, float *l, struct mpoc_workspace *ws);

/* Full thin SVD of A (m × n, not modified): U (m × k, ld k), s (k) and Vt
 * (k × n, ld n) with k = min(m, n). Very tall or wide inputs are reduced by
 * QR/LQ first. sgesdd, then sgesvd when sgesdd does not converge.
 * allow_gram lets large, very wide inputs use the double-precision Gram
 * path: U and σ as accurate, Σ·Vt exact, but Vt rows orthonormal only to
 * ~ε·σ_1/σ_k (callers that consume Σ·Vt, like the TT-SVD sweep, want it).
 * The caller has rejected NaN/Inf. */
mpoc_status mpoc_la_svd(const float *a, size_t m, size_t n, size_t ld, float *u, float *s,
                        float *vt, bool allow_gram, struct mpoc_workspace *ws);

/* BLAS threads: set (n ≥ 1) and query. */
void mpoc_la_set_threads(int n);
int mpoc_la_threads(void);
/* "OpenBLAS <config>; core <name>" (static storage). */
const char *mpoc_la_describe(void);

/* Test hook: while positive, each sgesdd call is reported as non-converged
 * (and the counter decremented), to exercise the sgesvd fallback. */
extern int mpoc_la_inject_gesdd_failures;
/* Count of sgesvd fallbacks taken since start (for tests and reports). */
extern int mpoc_la_gesvd_fallbacks;

#endif
