/* svd.c: exact and randomized truncated SVD with the truncation rules.
 *
 * Exact: LAPACK through linalg (sgesdd → sgesvd; QR/LQ reduction of very
 * tall or wide inputs). Randomized: Halko–Martinsson–Tropp (arXiv 0909.4061,
 * Alg. 4.4 + 5.1): Gaussian sketch, q power iterations re-orthonormalized
 * every half step (float32 collapses onto the top directions otherwise),
 * B = QᵀA, exact SVD of B. Because U·Uᵀ·A is an orthogonal projection, the
 * error of keeping r values is exactly ‖A‖² − Σ_{i≤r} σ̃_i², so every rule is
 * evaluated on the sketch; when the cut is not inside the sketch, the sketch
 * grows (doubling) or the exact path takes over. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "linalg.h"
#include "rng.h"
#include "svd_internal.h"
#include "util.h"

/* auto: randomized only where it pays (numerics.md §5.2: exact for short
 * sides below ~256 or ranks above a quarter of the short side). */
#define AUTO_MIN_SIDE 256
#define ADAPTIVE_MIN_SIDE 1024
#define ADAPTIVE_FIRST_RANK 64

mpoc_svd_options mpoc_svd_options_default(void)
{
    mpoc_svd_options o;
    memset(&o, 0, sizeof o);
    o.method = MPOC_SVD_AUTO;
    o.oversample = 10;
    o.power_iters = 2;
    o.seed = 0x6d706f63; /* "mpoc" */
    return o;
}

const char *mpoc_svd_method_name(mpoc_svd_method m)
{
    switch (m) {
    case MPOC_SVD_AUTO: return "auto";
    case MPOC_SVD_EXACT: return "exact";
    case MPOC_SVD_RANDOMIZED: return "randomized";
    }
    return "?";
}

mpoc_status mpoc_svd_method_parse(const char *s, mpoc_svd_method *out)
{
    for (int m = MPOC_SVD_AUTO; m <= MPOC_SVD_RANDOMIZED; m++)
        if (s && !strcasecmp(s, mpoc_svd_method_name((mpoc_svd_method)m))) {
            *out = (mpoc_svd_method)m;
            return MPOC_OK;
        }
    MPOC_FAIL(MPOC_E_INVAL, "unknown SVD method '%s' (auto, exact or randomized)", s ? s : "");
}

mpoc_status mpoc_svd_check_options(const mpoc_svd_options *opt)
{
    const mpoc_trunc *t = &opt->trunc;
    if (!(t->rel_cutoff >= 0.0 && t->rel_cutoff <= 1.0))
        MPOC_FAIL(MPOC_E_INVAL, "relative cutoff %g is outside [0, 1]", t->rel_cutoff);
    if (!(t->discarded_weight >= 0.0 && t->discarded_weight <= 1.0))
        MPOC_FAIL(MPOC_E_INVAL, "discarded weight %g is outside [0, 1]", t->discarded_weight);
    if (!(t->abs_tail >= 0.0) || !isfinite(t->abs_tail))
        MPOC_FAIL(MPOC_E_INVAL, "absolute tail %g must be finite and >= 0", t->abs_tail);
    if (opt->method != MPOC_SVD_AUTO && opt->method != MPOC_SVD_EXACT &&
        opt->method != MPOC_SVD_RANDOMIZED)
        MPOC_FAIL(MPOC_E_INVAL, "unknown SVD method %d", (int)opt->method);
    if (opt->oversample > 1000 || opt->power_iters > 20)
        MPOC_FAIL(MPOC_E_INVAL, "oversampling %zu / power iterations %u out of range (<= 1000 / 20)",
                  opt->oversample, opt->power_iters);
    return MPOC_OK;
}

/* Smallest r whose tail residual + Σ_{i≥r} s_i² is ≤ bound (n if none). */
static size_t rank_for_tail(const float *s, size_t n, double residual_sq, double bound)
{
    double tail = residual_sq;
    size_t r = n;
    while (r > 0) {
        double next = tail + (double)s[r - 1] * (double)s[r - 1];
        if (next > bound)
            break;
        tail = next;
        r--;
    }
    return tail <= bound ? r : n;
}

static double tail_energy(const float *s, size_t n, size_t r, double residual_sq)
{
    double t = residual_sq;
    for (size_t i = n; i > r; i--)
        t += (double)s[i - 1] * (double)s[i - 1];
    return t;
}

size_t mpoc_trunc_rank(const mpoc_trunc *t, const float *s, size_t n, double total_sq,
                       double residual_sq, size_t max_dim, double *discarded_sq)
{
    size_t r = n;
    if (n == 0) {
        *discarded_sq = residual_sq;
        return 0;
    }
    if (!t->keep_zeros) {
        double zero = (double)s[0] * (double)max_dim * (double)FLT_EPSILON;
        while (r > 0 && (double)s[r - 1] <= zero)
            r--;
    }
    if (t->max_rank && t->max_rank < r)
        r = t->max_rank;
    if (t->rel_cutoff > 0.0) {
        size_t c = 0;
        while (c < n && (double)s[c] >= t->rel_cutoff * (double)s[0])
            c++;
        r = c < r ? c : r;
    }
    if (t->discarded_weight > 0.0) {
        size_t c = rank_for_tail(s, n, residual_sq, t->discarded_weight * total_sq);
        r = c < r ? c : r;
    }
    if (t->abs_tail > 0.0) {
        size_t c = rank_for_tail(s, n, residual_sq, t->abs_tail * t->abs_tail);
        r = c < r ? c : r;
    }
    if (r == 0)
        r = 1;
    *discarded_sq = tail_energy(s, n, r, residual_sq);
    return r;
}

/* Flip singular pairs so the largest-|·| entry of each U column is positive. */
static void fix_signs(mpoc_svd_view *v, size_t m, size_t n)
{
    for (size_t j = 0; j < v->rank; j++) {
        size_t best = 0;
        float amax = -1.0f;
        for (size_t i = 0; i < m; i++) {
            float a = fabsf(v->u[i * v->ldu + j]);
            if (a > amax) {
                amax = a;
                best = i;
            }
        }
        if (v->u[best * v->ldu + j] >= 0.0f)
            continue;
        for (size_t i = 0; i < m; i++)
            v->u[i * v->ldu + j] = -v->u[i * v->ldu + j];
        for (size_t i = 0; i < n; i++)
            v->vt[j * v->ldvt + i] = -v->vt[j * v->ldvt + i];
    }
}

static bool all_finite(const float *x, size_t rows, size_t cols, size_t ld)
{
    for (size_t i = 0; i < rows; i++) {
        const float *row = x + i * ld;
        float probe = 0.0f; /* x − x is NaN exactly when x is NaN or ±Inf */
#pragma omp simd reduction(+ : probe)
        for (size_t j = 0; j < cols; j++)
            probe += row[j] - row[j];
        if (probe != 0.0f)
            return false;
    }
    return true;
}

static mpoc_status check_output(const mpoc_svd_view *v, size_t m, size_t n, size_t k)
{
    for (size_t i = 0; i < k; i++)
        if (!isfinite(v->s[i]) || v->s[i] < 0.0f || (i && v->s[i] > v->s[i - 1] * (1.0f + 1e-5f)))
            MPOC_FAIL(MPOC_E_LINALG, "SVD of a %zu x %zu matrix returned invalid singular values", m, n);
    if (!all_finite(v->u, m, v->rank, v->ldu) || !all_finite(v->vt, v->rank, n, v->ldvt))
        MPOC_FAIL(MPOC_E_LINALG, "SVD of a %zu x %zu matrix returned non-finite vectors", m, n);
    return MPOC_OK;
}

static mpoc_status svd_exact(mpoc_mat_view a, const mpoc_svd_options *opt, bool gram_ok,
                             struct mpoc_workspace *ws, mpoc_svd_view *v)
{
    size_t m = a.rows, n = a.cols, k = m < n ? m : n;
    float *u = mpoc_ws_floats(ws, WS_SVD_U, m * k);
    float *s = mpoc_ws_floats(ws, WS_SVD_S, k);
    float *vt = mpoc_ws_floats(ws, WS_SVD_VT, k * n);
    if (!u || !s || !vt)
        return MPOC_E_NOMEM;
    MPOC_TRY(mpoc_la_svd(a.data, m, n, a.ld, u, s, vt, gram_ok, ws));
    v->u = u;
    v->ldu = k;
    v->s = s;
    v->vt = vt;
    v->ldvt = n;
    v->rank = k;
    MPOC_TRY(check_output(v, m, n, k));
    v->rank = mpoc_trunc_rank(&opt->trunc, s, k, v->total_sq, 0.0, m > n ? m : n, &v->discarded_sq);
    v->used = MPOC_SVD_EXACT;
    return MPOC_OK;
}

/* Range finder: Q (m × l, orthonormal columns) in WS_RSVD_Y. */
static mpoc_status range_finder(mpoc_mat_view a, size_t l, const mpoc_svd_options *opt,
                                struct mpoc_workspace *ws, float **q_out)
{
    size_t m = a.rows, n = a.cols;
    float *omega = mpoc_ws_floats(ws, WS_RSVD_OMEGA, n * l);
    float *y = mpoc_ws_floats(ws, WS_RSVD_Y, m * l);
    float *z = mpoc_ws_floats(ws, WS_RSVD_Z, n * l);
    if (!omega || !y || !z)
        return MPOC_E_NOMEM;
    /* one stream per column: a larger sketch extends a smaller one */
    for (size_t j = 0; j < l; j++)
        MPOC_TRY(mpoc_rng_gaussian(opt->seed, j, omega + j, n, l));
    MPOC_TRY(mpoc_la_gemm(false, false, m, l, n, 1.0f, a.data, a.ld, omega, l, 0.0f, y, l));
    MPOC_TRY(mpoc_la_qr(y, m, l, l, NULL, ws));
    for (unsigned it = 0; it < opt->power_iters; it++) {
        MPOC_TRY(mpoc_la_gemm(true, false, n, l, m, 1.0f, a.data, a.ld, y, l, 0.0f, z, l));
        MPOC_TRY(mpoc_la_qr(z, n, l, l, NULL, ws));
        MPOC_TRY(mpoc_la_gemm(false, false, m, l, n, 1.0f, a.data, a.ld, z, l, 0.0f, y, l));
        MPOC_TRY(mpoc_la_qr(y, m, l, l, NULL, ws));
    }
    *q_out = y;
    return MPOC_OK;
}

/* One sketch of l columns: fills v with the truncated factors. */
static mpoc_status sketch_svd(mpoc_mat_view a, size_t l, const mpoc_svd_options *opt, bool gram_ok,
                              struct mpoc_workspace *ws, mpoc_svd_view *v)
{
    size_t m = a.rows, n = a.cols;
    float *q;
    MPOC_TRY(range_finder(a, l, opt, ws, &q));
    float *b = mpoc_ws_floats(ws, WS_RSVD_B, l * n);
    float *ub = mpoc_ws_floats(ws, WS_SVD_U, l * l);
    float *s = mpoc_ws_floats(ws, WS_SVD_S, l);
    float *vt = mpoc_ws_floats(ws, WS_SVD_VT, l * n);
    if (!b || !ub || !s || !vt)
        return MPOC_E_NOMEM;
    MPOC_TRY(mpoc_la_gemm(true, false, l, n, m, 1.0f, q, l, a.data, a.ld, 0.0f, b, n));
    MPOC_TRY(mpoc_la_svd(b, l, n, n, ub, s, vt, gram_ok, ws));
    double kept = 0.0;
    for (size_t i = 0; i < l; i++)
        kept += (double)s[i] * (double)s[i];
    double residual = v->total_sq > kept ? v->total_sq - kept : 0.0;
    v->s = s;
    v->vt = vt;
    v->ldvt = n;
    v->u = ub;
    v->ldu = l;
    v->rank = l;
    MPOC_TRY(check_output(v, l, n, l));
    v->rank = mpoc_trunc_rank(&opt->trunc, s, l, v->total_sq, residual, m > n ? m : n,
                              &v->discarded_sq);
    float *u = mpoc_ws_floats(ws, WS_SVD_COPY, m * v->rank);
    if (!u)
        return MPOC_E_NOMEM;
    MPOC_TRY(mpoc_la_gemm(false, false, m, v->rank, l, 1.0f, q, l, ub, l, 0.0f, u, v->rank));
    v->u = u;
    v->ldu = v->rank;
    v->used = MPOC_SVD_RANDOMIZED;
    return MPOC_OK;
}

/* The cut is trustworthy when it lies inside the sketch with p to spare, when
 * χ bounds it, or when the sketch spans the whole range. */
static bool cut_inside(const mpoc_svd_view *v, size_t l, size_t p, size_t full,
                       const mpoc_trunc *t)
{
    return v->rank + p <= l || (t->max_rank && v->rank >= t->max_rank) || l >= full;
}

static mpoc_status svd_randomized(mpoc_mat_view a, const mpoc_svd_options *opt, size_t limit,
                                  bool gram_ok, struct mpoc_workspace *ws, mpoc_svd_view *v,
                                  bool *handover)
{
    size_t full = a.rows < a.cols ? a.rows : a.cols, p = opt->oversample;
    size_t target = opt->trunc.max_rank ? opt->trunc.max_rank : ADAPTIVE_FIRST_RANK;
    *handover = false;
    for (;;) {
        size_t l = target + p < full ? target + p : full;
        if (l > limit) {
            *handover = true;
            return MPOC_OK;
        }
        MPOC_TRY(sketch_svd(a, l, opt, gram_ok, ws, v));
        if (cut_inside(v, l, p, full, &opt->trunc))
            return MPOC_OK;
        target *= 2;
    }
}

static bool prefer_randomized(const mpoc_svd_options *opt, size_t full, size_t *limit)
{
    size_t p = opt->oversample, chi = opt->trunc.max_rank;
    if (chi && chi + p >= full)
        return false; /* a sketch of the whole range is a slow exact SVD */
    if (opt->method == MPOC_SVD_RANDOMIZED) {
        *limit = full / 2 > 1 ? full / 2 : full; /* beyond half, exact is cheaper */
        if (chi)
            *limit = full;
        return true;
    }
    if (opt->method == MPOC_SVD_EXACT)
        return false;
    *limit = full / 4;
    if (chi)
        return full >= AUTO_MIN_SIDE && chi + p <= full / 4;
    return full >= ADAPTIVE_MIN_SIDE;
}

/* Power-of-two scale that brings max|a| near 1 (exact; undone on σ). */
static int scale_exponent(float max_abs)
{
    if (max_abs == 0.0f || (max_abs < 0x1p60f && max_abs > 0x1p-60f))
        return 0;
    int e;
    frexpf(max_abs, &e);
    return e;
}

static mpoc_status scaled_copy(mpoc_mat_view a, int e, struct mpoc_workspace *ws, mpoc_mat_view *out)
{
    float *c = mpoc_ws_floats(ws, WS_SVD_SCALED, a.rows * a.cols);
    if (!c)
        return MPOC_E_NOMEM;
    for (size_t i = 0; i < a.rows; i++)
        for (size_t j = 0; j < a.cols; j++)
            c[i * a.cols + j] = ldexpf(a.data[i * a.ld + j], -e);
    *out = mpoc_view_wrap(c, a.rows, a.cols, a.cols);
    return MPOC_OK;
}

/* Zero matrix: rank 1, zero value, unit vectors (orthonormal either way). */
static mpoc_status zero_result(size_t m, size_t n, struct mpoc_workspace *ws, mpoc_svd_view *v)
{
    v->u = mpoc_ws_floats(ws, WS_SVD_U, m);
    v->s = mpoc_ws_floats(ws, WS_SVD_S, 1);
    v->vt = mpoc_ws_floats(ws, WS_SVD_VT, n);
    if (!v->u || !v->s || !v->vt)
        return MPOC_E_NOMEM;
    memset(v->u, 0, m * sizeof(float));
    memset(v->vt, 0, n * sizeof(float));
    v->u[0] = v->vt[0] = 1.0f;
    v->s[0] = 0.0f;
    v->ldu = 1;
    v->ldvt = n;
    v->rank = 1;
    v->discarded_sq = 0.0;
    v->used = MPOC_SVD_EXACT;
    return MPOC_OK;
}

mpoc_status mpoc_svd_ws(mpoc_mat_view a, const mpoc_svd_options *opt, bool gram_ok,
                        struct mpoc_workspace *ws, mpoc_svd_view *v)
{
    memset(v, 0, sizeof *v);
    if (!a.data || a.rows == 0 || a.cols == 0 || a.ld < a.cols)
        MPOC_FAIL(MPOC_E_SHAPE, "SVD of an empty or badly strided %zu x %zu matrix", a.rows, a.cols);
    size_t mn;
    if (!mpoc_mul_size(a.rows, a.cols, &mn) || mn > SIZE_MAX / sizeof(float))
        return MPOC_E_OVERFLOW;
    MPOC_TRY(mpoc_svd_check_options(opt));
    mpoc_mat_stats st;
    MPOC_TRY(mpoc_mat_scan(a, &st)); /* NaN/Inf never reach LAPACK (it hangs on Inf) */
    if (st.max_abs == 0.0f)
        return zero_result(a.rows, a.cols, ws, v);
    int e = scale_exponent(st.max_abs);
    if (e)
        MPOC_TRY(scaled_copy(a, e, ws, &a));
    v->total_sq = e ? ldexp(st.sum_sq, -2 * e) : st.sum_sq;
    size_t full = a.rows < a.cols ? a.rows : a.cols, limit = full;
    bool handover = true;
    if (prefer_randomized(opt, full, &limit))
        MPOC_TRY(svd_randomized(a, opt, limit, gram_ok, ws, v, &handover));
    if (handover)
        MPOC_TRY(svd_exact(a, opt, gram_ok, ws, v));
    fix_signs(v, a.rows, a.cols);
    if (e) {
        for (size_t i = 0; i < v->rank; i++)
            v->s[i] = ldexpf(v->s[i], e);
        v->total_sq = st.sum_sq;
        v->discarded_sq = ldexp(v->discarded_sq, 2 * e);
    }
    return MPOC_OK;
}

mpoc_status mpoc_svd_ex(mpoc_mat_view a, const mpoc_svd_options *opt, mpoc_workspace *ws,
                        mpoc_svd_result *out)
{
    memset(out, 0, sizeof *out);
    mpoc_svd_view v;
    MPOC_TRY(mpoc_svd_ws(a, opt, false, ws, &v));
    size_t m = a.rows, n = a.cols, r = v.rank;
    out->u = mpoc_alloc_array(m * r, sizeof(float));
    out->s = mpoc_alloc_array(r, sizeof(float));
    out->vt = mpoc_alloc_array(r * n, sizeof(float));
    if (!out->u || !out->s || !out->vt) {
        mpoc_svd_result_free(out);
        return MPOC_E_NOMEM;
    }
    for (size_t i = 0; i < m; i++)
        memcpy(out->u + i * r, v.u + i * v.ldu, r * sizeof(float));
    memcpy(out->s, v.s, r * sizeof(float));
    for (size_t i = 0; i < r; i++)
        memcpy(out->vt + i * n, v.vt + i * v.ldvt, n * sizeof(float));
    out->m = m;
    out->n = n;
    out->rank = r;
    out->total_sq = v.total_sq;
    out->discarded_sq = v.discarded_sq;
    out->used = v.used;
    return MPOC_OK;
}

mpoc_status mpoc_svd(mpoc_mat_view a, const mpoc_svd_options *opt, mpoc_svd_result *out)
{
    mpoc_workspace *ws;
    memset(out, 0, sizeof *out);
    MPOC_TRY(mpoc_workspace_new(&ws));
    mpoc_status st = mpoc_svd_ex(a, opt, ws, out);
    mpoc_workspace_free(ws);
    return st;
}

void mpoc_svd_result_free(mpoc_svd_result *r)
{
    if (!r)
        return;
    free(r->u);
    free(r->s);
    free(r->vt);
    memset(r, 0, sizeof *r);
}
