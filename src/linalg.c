/* linalg.c: BLAS/LAPACK adapter (the only file that includes cblas.h or
 * lapacke.h). See linalg.h for the row-major ↔ column-major mapping. */
#include "linalg.h"

#include <cblas.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "mpoc_svd.h"
#include "util.h"

int mpoc_la_inject_gesdd_failures;
int mpoc_la_gesvd_fallbacks;

/* Reduce with QR/LQ before the SVD when one side is this many times longer:
 * sgesdd on 64 × 262144 directly costs 1.5 s where the reduction costs 20 ms. */
#define REDUCE_RATIO 2
/* Wide inputs at least this much wider than tall, and large enough for the
 * LQ to be slow, may take the double-Gram path (see svd_gram_wide). */
#define GRAM_RATIO 8
#define GRAM_MAX_SIDE 1024
#define GRAM_MIN_SIZE (1u << 18)

static bool fits_int(size_t v)
{
    return v <= (size_t)INT_MAX;
}

#define CHECK_DIMS3(a, b, c)                                                              \
    do {                                                                                  \
        if (!fits_int(a) || !fits_int(b) || !fits_int(c))                                 \
            MPOC_FAIL(MPOC_E_OVERFLOW, "matrix dimension above %d in a BLAS/LAPACK call", \
                      INT_MAX);                                                           \
    } while (0)

mpoc_status mpoc_la_gemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha,
                         const float *a, size_t lda, const float *b, size_t ldb, float beta,
                         float *c, size_t ldc)
{
    CHECK_DIMS3(m, n, k);
    CHECK_DIMS3(lda, ldb, ldc);
    if (m == 0 || n == 0)
        return MPOC_OK;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a, (int)lda,
                b, (int)ldb, beta, c, (int)ldc);
    return MPOC_OK;
}

mpoc_status mpoc_la_transpose(size_t rows, size_t cols, const float *a, size_t lda, float *b,
                              size_t ldb)
{
    CHECK_DIMS3(rows, cols, lda);
    CHECK_DIMS3(ldb, 1, 1);
    if (rows == 0 || cols == 0)
        return MPOC_OK;
    cblas_somatcopy(CblasRowMajor, CblasTrans, (int)rows, (int)cols, 1.0f, a, (int)lda, b, (int)ldb);
    return MPOC_OK;
}

static mpoc_status lapack_info(const char *routine, lapack_int info)
{
    if (info == 0)
        return MPOC_OK;
    if (info < 0) /* an illegal argument is our bug, never the data's */
        MPOC_FAIL(MPOC_E_LINALG, "%s: argument %d rejected (internal error)", routine, (int)-info);
    MPOC_FAIL(MPOC_E_LINALG, "%s: did not converge (info %d)", routine, (int)info);
}

mpoc_status mpoc_la_gram(size_t m, size_t n, const float *a, size_t lda, float *c)
{
    CHECK_DIMS3(m, n, lda);
    if (n == 0)
        return MPOC_OK;
    /* ssyrk: half the flops of the gemm; it fills the upper triangle */
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)m, 1.0f, a, (int)lda, 0.0f, c,
                (int)n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            c[i * n + j] = c[j * n + i];
    return MPOC_OK;
}

mpoc_status mpoc_la_spd_inverse(double *a, size_t n, bool *ok)
{
    CHECK_DIMS3(n, 1, 1);
    *ok = true;
    if (n == 0)
        return MPOC_OK;
    /* symmetric: row-major upper = column-major lower, so 'L' on either */
    lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)n, a, (lapack_int)n);
    if (info > 0) {
        *ok = false;
        return MPOC_OK;
    }
    MPOC_TRY(lapack_info("dpotrf", info));
    info = LAPACKE_dpotri(LAPACK_COL_MAJOR, 'L', (lapack_int)n, a, (lapack_int)n);
    if (info > 0) { /* a zero pivot after a successful dpotrf: cannot happen, but be safe */
        *ok = false;
        return MPOC_OK;
    }
    MPOC_TRY(lapack_info("dpotri", info));
    for (size_t i = 0; i < n; i++) /* column-major lower = row-major upper: mirror it down */
        for (size_t j = 0; j < i; j++)
            a[i * n + j] = a[j * n + i];
    return MPOC_OK;
}

/* Allocate the LAPACK float work array of the size a query returned. */
static float *work_array(struct mpoc_workspace *ws, float query, lapack_int *lwork)
{
    size_t n = (size_t)query + 1;
    if (query < 0.0f || n > (size_t)INT_MAX)
        return NULL;
    *lwork = (lapack_int)n;
    return mpoc_ws_floats(ws, WS_LA_WORK, n);
}

static mpoc_status householder_qr(float *a, size_t m, size_t n, size_t ld, float *r,
                                  struct mpoc_workspace *ws)
{
    CHECK_DIMS3(m, n, ld);
    if (m < n)
        MPOC_FAIL(MPOC_E_SHAPE, "QR needs a tall matrix, got %zu x %zu", m, n);
    /* Transpose into a column-major copy: LAPACK's QR of a tall column-major
     * matrix (contiguous columns) runs ~1.5x faster than the LQ of the
     * row-major view, and the two transposes cost a fraction of that. */
    size_t mn;
    if (!mpoc_mul_size(m, n, &mn))
        return MPOC_E_OVERFLOW;
    float *c = mpoc_ws_floats(ws, WS_LA_COLMAJOR, mn);
    float *tau = mpoc_ws_floats(ws, WS_LA_TAU, n);
    float q1 = 0.0f, q2 = 0.0f;
    if (!c || !tau)
        return MPOC_E_NOMEM;
    MPOC_TRY(mpoc_la_transpose(m, n, a, ld, c, m)); /* c: n × m row-major = m × n column-major */
    MPOC_TRY(lapack_info("sgeqrf", LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, (lapack_int)m, (lapack_int)n,
                                                       c, (lapack_int)m, tau, &q1, -1)));
    MPOC_TRY(lapack_info("sorgqr", LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, (lapack_int)m, (lapack_int)n,
                                                       (lapack_int)n, c, (lapack_int)m, tau, &q2, -1)));
    lapack_int lwork;
    float *work = work_array(ws, q1 > q2 ? q1 : q2, &lwork);
    if (!work)
        return MPOC_E_NOMEM;
    MPOC_TRY(lapack_info("sgeqrf", LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, (lapack_int)m, (lapack_int)n,
                                                       c, (lapack_int)m, tau, work, lwork)));
    if (r) /* column-major upper triangle: R[i][j] = c[j·m + i] */
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                r[i * n + j] = j >= i ? c[j * m + i] : 0.0f;
    MPOC_TRY(lapack_info("sorgqr", LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, (lapack_int)m, (lapack_int)n,
                                                       (lapack_int)n, c, (lapack_int)m, tau, work, lwork)));
    return mpoc_la_transpose(n, m, c, m, a, ld);
}

static mpoc_status householder_lq(float *a, size_t m, size_t n, size_t ld, float *l,
                                  struct mpoc_workspace *ws)
{
    CHECK_DIMS3(m, n, ld);
    if (m > n)
        MPOC_FAIL(MPOC_E_SHAPE, "LQ needs a wide matrix, got %zu x %zu", m, n);
    /* Row-major wide A = column-major tall Aᵀ (n × m): its QR is our LQ. */
    float *tau = mpoc_ws_floats(ws, WS_LA_TAU, m);
    float q1 = 0.0f, q2 = 0.0f;
    if (!tau)
        return MPOC_E_NOMEM;
    MPOC_TRY(lapack_info("sgeqrf", LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, (lapack_int)n,
                                                       (lapack_int)m, a, (lapack_int)ld, tau, &q1, -1)));
    MPOC_TRY(lapack_info("sorgqr", LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, (lapack_int)n, (lapack_int)m,
                                                       (lapack_int)m, a, (lapack_int)ld, tau, &q2, -1)));
    lapack_int lwork;
    float *work = work_array(ws, q1 > q2 ? q1 : q2, &lwork);
    if (!work)
        return MPOC_E_NOMEM;
    MPOC_TRY(lapack_info("sgeqrf", LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, (lapack_int)n, (lapack_int)m,
                                                       a, (lapack_int)ld, tau, work, lwork)));
    if (l) /* R of Aᵀ sits in the lower triangle of A's first m rows: L = Rᵀ */
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < m; j++)
                l[i * m + j] = j <= i ? a[i * ld + j] : 0.0f;
    return lapack_info("sorgqr", LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, (lapack_int)n, (lapack_int)m,
                                                     (lapack_int)m, a, (lapack_int)ld, tau, work, lwork));
}

static void copy_rows(float *dst, const float *src, size_t m, size_t n, size_t ld)
{
    for (size_t i = 0; i < m; i++)
        memcpy(dst + i * n, src + i * ld, n * sizeof(float));
}

/* sgesdd on Aᵀ (column-major n × m): Aᵀ = U'ΣV'ᵀ, so A = V'ΣU'ᵀ. LAPACK's U
 * (n × k, ldu = n) is our Vt and LAPACK's VT (k × m, ldvt = k) is our U. */
static lapack_int run_gesdd(float *a, size_t m, size_t n, float *u, float *s, float *vt,
                            struct mpoc_workspace *ws, mpoc_status *st)
{
    size_t k = m < n ? m : n;
    lapack_int *iwork = mpoc_ws_get(ws, WS_LA_IWORK, 8 * k * sizeof(lapack_int));
    float q = 0.0f;
    lapack_int info = LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'S', (lapack_int)n, (lapack_int)m, a,
                                          (lapack_int)n, s, vt, (lapack_int)n, u, (lapack_int)k,
                                          &q, -1, iwork);
    lapack_int lwork;
    float *work = iwork && info == 0 ? work_array(ws, q, &lwork) : NULL;
    if (!work) {
        *st = info ? lapack_info("sgesdd", info) : MPOC_E_NOMEM;
        return -1;
    }
    *st = MPOC_OK;
    if (mpoc_la_inject_gesdd_failures > 0) {
        mpoc_la_inject_gesdd_failures--;
        return 1;
    }
    return LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'S', (lapack_int)n, (lapack_int)m, a, (lapack_int)n,
                               s, vt, (lapack_int)n, u, (lapack_int)k, work, lwork, iwork);
}

static mpoc_status run_gesvd(float *a, size_t m, size_t n, float *u, float *s, float *vt,
                             struct mpoc_workspace *ws)
{
    size_t k = m < n ? m : n;
    float q = 0.0f;
    MPOC_TRY(lapack_info("sgesvd", LAPACKE_sgesvd_work(LAPACK_COL_MAJOR, 'S', 'S', (lapack_int)n,
                                                       (lapack_int)m, a, (lapack_int)n, s, vt,
                                                       (lapack_int)n, u, (lapack_int)k, &q, -1)));
    lapack_int lwork;
    float *work = work_array(ws, q, &lwork);
    if (!work)
        return MPOC_E_NOMEM;
    return lapack_info("sgesvd", LAPACKE_sgesvd_work(LAPACK_COL_MAJOR, 'S', 'S', (lapack_int)n,
                                                     (lapack_int)m, a, (lapack_int)n, s, vt,
                                                     (lapack_int)n, u, (lapack_int)k, work, lwork));
}

/* SVD without reduction. Works on a copy in `slot`; when sgesdd does not
 * converge the copy is refreshed and sgesvd runs on it. */
static mpoc_status svd_direct(const float *a, size_t m, size_t n, size_t ld, float *u, float *s,
                              float *vt, struct mpoc_workspace *ws, enum mpoc_ws_slot slot)
{
    size_t mn;
    if (!mpoc_mul_size(m, n, &mn))
        return MPOC_E_OVERFLOW;
    float *c = mpoc_ws_floats(ws, slot, mn);
    if (!c)
        return MPOC_E_NOMEM;
    copy_rows(c, a, m, n, ld);
    mpoc_status st;
    lapack_int info = run_gesdd(c, m, n, u, s, vt, ws, &st);
    if (st != MPOC_OK)
        return st;
    if (info < 0)
        return lapack_info("sgesdd", info);
    if (info == 0)
        return MPOC_OK;
    mpoc_la_gesvd_fallbacks++;
    mpoc_log_("sgesdd did not converge on a %zu x %zu matrix (info %d); retrying with sgesvd", m, n,
              (int)info);
    copy_rows(c, a, m, n, ld);
    return run_gesvd(c, m, n, u, s, vt, ws);
}

/* Tall A = Q·R: SVD of R (n × n), then U = Q·U_R. */
static mpoc_status svd_tall(const float *a, size_t m, size_t n, size_t ld, float *u, float *s,
                            float *vt, struct mpoc_workspace *ws)
{
    float *q = mpoc_ws_floats(ws, WS_SVD_COPY, m * n);
    float *r = mpoc_ws_floats(ws, WS_LA_TRI, n * n);
    float *ur = mpoc_ws_floats(ws, WS_LA_U2, n * n);
    if (!q || !r || !ur)
        return MPOC_E_NOMEM;
    copy_rows(q, a, m, n, ld);
    MPOC_TRY(mpoc_la_qr(q, m, n, n, r, ws));
    MPOC_TRY(svd_direct(r, n, n, n, ur, s, vt, ws, WS_LA_VT2));
    return mpoc_la_gemm(false, false, m, n, n, 1.0f, q, n, ur, n, 0.0f, u, n);
}

/* Wide A = L·Q: SVD of L (m × m), then Vt = Vt_L·Q. */
static mpoc_status svd_wide(const float *a, size_t m, size_t n, size_t ld, float *u, float *s,
                            float *vt, struct mpoc_workspace *ws)
{
    float *q = mpoc_ws_floats(ws, WS_SVD_COPY, m * n);
    float *l = mpoc_ws_floats(ws, WS_LA_TRI, m * m);
    float *vl = mpoc_ws_floats(ws, WS_LA_VT2, m * m);
    if (!q || !l || !vl)
        return MPOC_E_NOMEM;
    copy_rows(q, a, m, n, ld);
    MPOC_TRY(mpoc_la_lq(q, m, n, n, l, ws));
    MPOC_TRY(svd_direct(l, m, m, m, u, s, vl, ws, WS_LA_U2));
    return mpoc_la_gemm(false, false, m, n, m, 1.0f, vl, m, q, n, 0.0f, vt, n);
}

/* Gram = A·Aᵀ accumulated in double, a block of columns at a time (the
 * float data converted on the fly), so σ down to ~1e-8·σ_1 survive. */
static mpoc_status gram_double(const float *a, size_t m, size_t n, size_t ld, double *g,
                               struct mpoc_workspace *ws)
{
    const size_t nb = 2048;
    double *blk = mpoc_ws_get(ws, WS_LA_WORK, m * nb * sizeof(double));
    if (!blk)
        return MPOC_E_NOMEM;
    memset(g, 0, m * m * sizeof(double));
    for (size_t j0 = 0; j0 < n; j0 += nb) {
        size_t w = n - j0 < nb ? n - j0 : nb;
        for (size_t i = 0; i < m; i++) {
            const float *src = a + i * ld + j0;
            double *dst = blk + i * w;
#pragma omp simd
            for (size_t j = 0; j < w; j++)
                dst[j] = (double)src[j];
        }
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)m, (int)w, 1.0, blk, (int)w, 1.0, g,
                    (int)m);
    }
    return MPOC_OK;
}

/* Reorder so σ descends (row norms may swap near-equal neighbours). */
static void sort_descending(size_t m, size_t n, float *u, float *s, float *vt)
{
    for (size_t k = 1; k < m; k++)
        for (size_t q = k; q > 0 && s[q] > s[q - 1]; q--) {
            float t = s[q];
            s[q] = s[q - 1];
            s[q - 1] = t;
            for (size_t i = 0; i < m; i++) {
                t = u[i * m + q];
                u[i * m + q] = u[i * m + q - 1];
                u[i * m + q - 1] = t;
            }
            for (size_t j = 0; j < n; j++) {
                t = vt[q * n + j];
                vt[q * n + j] = vt[(q - 1) * n + j];
                vt[(q - 1) * n + j] = t;
            }
        }
}

/* ------------------------------------------------- CholeskyQR for slim QRs
 * Householder QR of a 65536 × 256 panel runs at level-2 speed (~1.3 s
 * here); CholeskyQR2 does the same with Gram matrices accumulated in double
 * (gemm speed, ~4x faster): G = AᵀA = RᵀR, A ← A·R⁻¹, once more on the
 * result (and a third time if the second R is far from I), so Q is
 * orthonormal to float precision for κ(A) up to ~1e7. A Gram that is not
 * positive definite (rank-deficient input) falls back to Householder. */

#define CHOLQR_RATIO 4
/* With strmm and a float first pass CholeskyQR2 is faster than Householder
 * from small panels on (8192 × 112: 6.5 vs 27 ms; 2048 × 64: 0.7 vs 1.4 ms;
 * one thread) and more nearly orthonormal (1.1e-7 vs 3.5e-7). */
#define CHOLQR_MIN_SIZE (1u << 14)

/* AᵀA of a tall A in double, a block of rows at a time. */
static mpoc_status gram_tall_double(const float *a, size_t m, size_t n, size_t ld, double *g,
                                    struct mpoc_workspace *ws)
{
    const size_t rb = 1024;
    double *blk = mpoc_ws_get(ws, WS_LA_WORK, rb * n * sizeof(double));
    if (!blk)
        return MPOC_E_NOMEM;
    memset(g, 0, n * n * sizeof(double));
    for (size_t i0 = 0; i0 < m; i0 += rb) {
        size_t h = m - i0 < rb ? m - i0 : rb;
        for (size_t i = 0; i < h; i++) {
            const float *src = a + (i0 + i) * ld;
            double *dst = blk + i * n;
#pragma omp simd
            for (size_t j = 0; j < n; j++)
                dst[j] = (double)src[j];
        }
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)h, 1.0, blk, (int)n, 1.0, g,
                    (int)n);
    }
    return MPOC_OK;
}

/* Cholesky of a Gram whose upper triangle (row-major) is filled: on success
 * g holds R (row-major upper, G = RᵀR) with zeros below. */
static bool cholesky_upper(double *g, size_t n)
{
    /* row-major upper = column-major lower; LAPACK's lower factor L read
     * row-major is Lᵀ = R */
    if (LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)n, g, (lapack_int)n) != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            g[i * n + j] = 0.0;
    return true;
}

/* max |R − I|: how far a pass was from already orthonormal. */
static double distance_from_identity(const double *r, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i; j < n; j++)
            worst = fmax(worst, fabs(r[i * n + j] - (i == j ? 1.0 : 0.0)));
    return worst;
}

/* AᵀA (upper triangle) by ssyrk in float, widened into g; f: n × n scratch. */
static void gram_tall_float(const float *a, size_t m, size_t n, size_t ld, float *f, double *g)
{
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)m, 1.0f, a, (int)ld, 0.0f, f,
                (int)n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i; j < n; j++)
            g[i * n + j] = (double)f[i * n + j];
}

/* κ(R) ≥ max r_ii / min r_ii: a float Gram (rounding ~1e-7 relative) only
 * resolves R for κ(A) well below 1/√ε_f ≈ 3e3. */
static bool diagonal_spread_below(const double *r, size_t n, double limit)
{
    double lo = INFINITY, hi = 0.0;
    for (size_t i = 0; i < n; i++) {
        lo = fmin(lo, r[i * n + i]);
        hi = fmax(hi, r[i * n + i]);
    }
    return hi <= limit * lo;
}

/* A ← A·R⁻¹ by a triangular solve with R (g, double upper) in float: the
 * accurate way for an ill-conditioned R. total ← t (= R·total). */
static mpoc_status solve_with_r(float *a, size_t m, size_t n, size_t ld, const double *g, float *rf,
                                const double *t, double *total, bool *ok)
{
    for (size_t i = 0; i < n * n; i++)
        rf[i] = (float)g[i];
    cblas_strsm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, (int)m, (int)n, 1.0f,
                rf, (int)n, a, (int)ld);
    memcpy(total, t, n * n * sizeof(double));
    *ok = true;
    return MPOC_OK;
}

/* One CholeskyQR pass on a tall A: A ← A·R⁻¹, total ← R·total. False when
 * the Gram is not positive definite (A untouched then). A `fast` pass takes
 * the Gram in float (ssyrk: ~2.5x cheaper than widening to double and
 * dsyrk) and is refused (false, A untouched) unless R looks well
 * conditioned; it only serves as the first pass, whose R need not be
 * accurate — the next pass, in double, makes Q orthonormal. */
static mpoc_status cholqr_pass(float *a, size_t m, size_t n, size_t ld, bool fast, double *total,
                               double *dist, bool *ok, struct mpoc_workspace *ws)
{
    double *g = mpoc_ws_get(ws, WS_LA_GRAM, n * n * sizeof(double));
    double *t = mpoc_ws_get(ws, WS_LA_RTMP, n * n * sizeof(double));
    float *rf = mpoc_ws_floats(ws, WS_LA_RF, n * n);
    if (!g || !t || !rf)
        return MPOC_E_NOMEM;
    if (fast)
        gram_tall_float(a, m, n, ld, rf, g);
    else
        MPOC_TRY(gram_tall_double(a, m, n, ld, g, ws));
    *ok = cholesky_upper(g, n) && (!fast || diagonal_spread_below(g, n, 100.0));
    if (!*ok)
        return MPOC_OK;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0, g, (int)n, total,
                (int)n, 0.0, t, (int)n);
    *dist = distance_from_identity(g, n);
    if (!diagonal_spread_below(g, n, 100.0)) /* R⁻¹ would be inaccurate: solve with R */
        return solve_with_r(a, m, n, ld, g, rf, t, total, ok);
    /* row-major upper R = column-major lower: its inverse in place */
    *ok = LAPACKE_dtrtri(LAPACK_COL_MAJOR, 'L', 'N', (lapack_int)n, g, (lapack_int)n) == 0;
    for (size_t i = 0; *ok && i < n * n; i++) {
        rf[i] = (float)g[i];
        *ok = isfinite(rf[i]);
    }
    if (!*ok) /* R⁻¹ does not fit in float: Householder takes A as it is */
        return MPOC_OK;
    memcpy(total, t, n * n * sizeof(double));
    /* A ← A·R⁻¹ as a triangular product in place: OpenBLAS runs strsm with
     * R at a fraction of the speed of strmm with R⁻¹ (strsm was ~17% of a
     * sweep's profile). Only for a well-conditioned R (diagonal spread
     * ≤ 100, checked above): multiplying by an explicit inverse leaves
     * ‖QR − A‖ ~ κ(R)·u, which a solve avoids (2.8e-5 vs 1e-7 at κ ~ 1e5). */
    cblas_strmm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, (int)m, (int)n, 1.0f,
                rf, (int)n, a, (int)ld);
    if (fast) /* a float Gram's R is only accurate to ~1e-6: a pass in double must follow */
        *dist = INFINITY;
    return MPOC_OK;
}

/* Thin QR of a slim tall A by CholeskyQR2 (see above); R (float, n × n)
 * when r is not NULL. */
static mpoc_status cholesky_qr(float *a, size_t m, size_t n, size_t ld, float *r,
                               struct mpoc_workspace *ws)
{
    double *total = mpoc_ws_get(ws, WS_LA_RTOT, n * n * sizeof(double));
    if (!total)
        return MPOC_E_NOMEM;
    memset(total, 0, n * n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        total[i * n + i] = 1.0;
    bool ok = true;
    double dist = INFINITY;
    for (int pass = 0; ok && pass < 3 && dist > 1e-3; pass++) {
        MPOC_TRY(cholqr_pass(a, m, n, ld, pass == 0, total, &dist, &ok, ws));
        if (!ok && pass == 0) /* the float Gram was not good enough: the same pass in double */
            MPOC_TRY(cholqr_pass(a, m, n, ld, false, total, &dist, &ok, ws));
    }
    if (!ok || dist > 1e-3) { /* rank-deficient or ill-conditioned: Householder on what we have */
        float *rh = mpoc_ws_floats(ws, WS_LA_RF, n * n);
        double *t = mpoc_ws_get(ws, WS_LA_RTMP, n * n * sizeof(double));
        if (!rh || !t)
            return MPOC_E_NOMEM;
        MPOC_TRY(householder_qr(a, m, n, ld, rh, ws));
        for (size_t i = 0; i < n * n; i++)
            t[i] = (double)rh[i];
        double *g = mpoc_ws_get(ws, WS_LA_GRAM, n * n * sizeof(double));
        if (!g)
            return MPOC_E_NOMEM;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0, t, (int)n,
                    total, (int)n, 0.0, g, (int)n);
        memcpy(total, g, n * n * sizeof(double));
    }
    if (r)
        for (size_t i = 0; i < n * n; i++)
            r[i] = (float)total[i];
    return MPOC_OK;
}

static bool use_cholqr(size_t tall, size_t slim)
{
    return tall >= CHOLQR_RATIO * slim && tall * slim >= CHOLQR_MIN_SIZE;
}

mpoc_status mpoc_la_qr(float *a, size_t m, size_t n, size_t ld, float *r, struct mpoc_workspace *ws)
{
    CHECK_DIMS3(m, n, ld);
    if (m < n)
        MPOC_FAIL(MPOC_E_SHAPE, "QR needs a tall matrix, got %zu x %zu", m, n);
    if (use_cholqr(m, n))
        return cholesky_qr(a, m, n, ld, r, ws);
    return householder_qr(a, m, n, ld, r, ws);
}

mpoc_status mpoc_la_lq(float *a, size_t m, size_t n, size_t ld, float *l, struct mpoc_workspace *ws)
{
    CHECK_DIMS3(m, n, ld);
    if (m > n)
        MPOC_FAIL(MPOC_E_SHAPE, "LQ needs a wide matrix, got %zu x %zu", m, n);
    if (!use_cholqr(n, m))
        return householder_lq(a, m, n, ld, l, ws);
    /* A = L·Q is Aᵀ = Qᵀ·Lᵀ: the QR of the tall transpose, in a copy */
    size_t mn = m * n;
    float *t = mpoc_ws_floats(ws, WS_LA_LQT, mn);
    float *rt = l ? mpoc_ws_floats(ws, WS_LA_TRI2, m * m) : NULL;
    if (!t || (l && !rt))
        return MPOC_E_NOMEM;
    MPOC_TRY(mpoc_la_transpose(m, n, a, ld, t, m));
    MPOC_TRY(cholesky_qr(t, n, m, m, rt, ws));
    MPOC_TRY(mpoc_la_transpose(n, m, t, m, a, ld));
    if (l) /* L = Rᵀ */
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < m; j++)
                l[i * m + j] = rt[j * m + i];
    return MPOC_OK;
}

/* Wide A (m ≪ n): U and σ² from the eigendecomposition of the double Gram
 * A·Aᵀ, then Σ·Vt = Uᵀ·A in float and σ_k = ‖row k‖. Two passes over A at
 * gemm speed instead of a level-2-bound LQ (64 × 262144: ~50 ms vs 0.5 s).
 * Rows of Vt are orthonormal to about ε·σ_1/σ_k, exact for Σ·Vt itself. */
static mpoc_status svd_gram_wide(const float *a, size_t m, size_t n, size_t ld, float *u, float *s,
                                 float *vt, struct mpoc_workspace *ws)
{
    double *g = mpoc_ws_get(ws, WS_LA_TRI, m * m * sizeof(double));
    double *lam = mpoc_ws_get(ws, WS_LA_TAU, m * sizeof(double));
    if (!g || !lam)
        return MPOC_E_NOMEM;
    MPOC_TRY(gram_double(a, m, n, ld, g, ws));
    /* row-major upper = column-major lower; eigenvalues ascend */
    lapack_int info = LAPACKE_dsyev(LAPACK_COL_MAJOR, 'V', 'L', (lapack_int)m, g, (lapack_int)m, lam);
    MPOC_TRY(lapack_info("dsyev", info));
    for (size_t k = 0; k < m; k++) /* column k of U = eigenvector m−1−k */
        for (size_t i = 0; i < m; i++)
            u[i * m + k] = (float)g[(m - 1 - k) * m + i];
    MPOC_TRY(mpoc_la_gemm(true, false, m, n, m, 1.0f, u, m, a, ld, 0.0f, vt, n));
    for (size_t k = 0; k < m; k++) {
        float *row = vt + k * n;
        double nrm = 0.0;
#pragma omp simd reduction(+ : nrm)
        for (size_t j = 0; j < n; j++)
            nrm += (double)row[j] * (double)row[j];
        nrm = sqrt(nrm);
        s[k] = (float)nrm;
        float inv = nrm > 0.0 ? (float)(1.0 / nrm) : 0.0f;
#pragma omp simd
        for (size_t j = 0; j < n; j++)
            row[j] *= inv;
    }
    sort_descending(m, n, u, s, vt);
    return MPOC_OK;
}

mpoc_status mpoc_la_svd(const float *a, size_t m, size_t n, size_t ld, float *u, float *s,
                        float *vt, bool allow_gram, struct mpoc_workspace *ws)
{
    CHECK_DIMS3(m, n, ld);
    size_t mn;
    if (!mpoc_mul_size(m, n, &mn) || mn > SIZE_MAX / sizeof(float))
        return MPOC_E_OVERFLOW;
    if (allow_gram && m <= GRAM_MAX_SIDE && n >= GRAM_RATIO * m && mn >= GRAM_MIN_SIZE)
        return svd_gram_wide(a, m, n, ld, u, s, vt, ws);
    if (m >= REDUCE_RATIO * n && n > 0)
        return svd_tall(a, m, n, ld, u, s, vt, ws);
    if (n >= REDUCE_RATIO * m && m > 0)
        return svd_wide(a, m, n, ld, u, s, vt, ws);
    return svd_direct(a, m, n, ld, u, s, vt, ws, WS_SVD_COPY);
}

void mpoc_la_set_threads(int n)
{
    if (n >= 1)
        openblas_set_num_threads(n);
}

int mpoc_la_threads(void)
{
    return openblas_get_num_threads();
}

const char *mpoc_la_describe(void)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s; core %s", openblas_get_config(), openblas_get_corename());
    return buf;
}

/* Public wrappers (mpoc_svd.h). */
void mpoc_set_threads(int n)
{
    mpoc_la_set_threads(n);
}

int mpoc_threads(void)
{
    return mpoc_la_threads();
}

const char *mpoc_blas_describe(void)
{
    return mpoc_la_describe();
}

const char *mpoc_blas_suggest_coretype(void)
{
    const char *core = openblas_get_corename();
    static const char *const generic[] = {"prescott", "core2", "nehalem", "atom", "katmai",
                                          "coppermine", "northwood", "banias", "unknown"};
    bool is_generic = false;
    for (size_t i = 0; core && i < sizeof generic / sizeof generic[0]; i++)
        is_generic |= strcasecmp(core, generic[i]) == 0;
    if (!is_generic)
        return NULL;
    __builtin_cpu_init();
    /* AVX-512 kernels run SGEMM ~1.8x faster than Haswell's here; the whole
     * test suite passes with either (make test with OPENBLAS_CORETYPE set). */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
    return NULL;
}
