/* test_svd.c: the truncated SVD engine against independent methods
 * (double-precision LAPACK singular values, dense reconstruction). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"
#include "numtest.h"

/* U·diag(s)·Vt as a new matrix. */
static mpoc_mat reconstruct(const mpoc_svd_result *r)
{
    mpoc_mat out;
    NT_ASSERT_OK(mpoc_mat_zeros(&out, r->m, r->n));
    for (size_t i = 0; i < r->m; i++)
        for (size_t k = 0; k < r->rank; k++)
            for (size_t j = 0; j < r->n; j++)
                out.data[i * r->n + j] += r->u[i * r->rank + k] * r->s[k] * r->vt[k * r->n + j];
    return out;
}

/* max |QᵀQ − I| over the k columns of Q (rows × k, ld k) or rows of Vt. */
static double orth_defect(const float *q, size_t rows, size_t k, bool columns)
{
    double worst = 0.0;
    for (size_t a = 0; a < k; a++)
        for (size_t b = 0; b < k; b++) {
            double dot = 0.0;
            for (size_t i = 0; i < rows; i++)
                dot += columns ? (double)q[i * k + a] * q[i * k + b]
                               : (double)q[a * rows + i] * q[b * rows + i];
            worst = fmax(worst, fabs(dot - (a == b ? 1.0 : 0.0)));
        }
    return worst;
}

static void check_exact_case(size_t m, size_t n, uint64_t seed)
{
    mpoc_mat a = nt_gaussian(m, n, seed);
    mpoc_svd_options o = mpoc_svd_options_default();
    o.method = MPOC_SVD_EXACT;
    mpoc_svd_result r;
    NT_ASSERT_OK(mpoc_svd(mpoc_mat_view_of(&a), &o, &r));
    size_t k = m < n ? m : n;
    assert_int_equal(r.rank, k);
    double *ref = nt_singular_values(mpoc_mat_view_of(&a));
    for (size_t i = 0; i < k; i++)
        assert_true(fabs(r.s[i] - ref[i]) <= nt_tol(10, m, n) * ref[0]);
    assert_true(orth_defect(r.u, m, k, true) < nt_tol(10, m, n));
    assert_true(orth_defect(r.vt, n, k, false) < nt_tol(10, m, n));
    mpoc_mat back = reconstruct(&r);
    assert_true(nt_rel_diff(mpoc_mat_view_of(&a), mpoc_mat_view_of(&back)) < nt_tol(10, m, n));
    free(ref);
    mpoc_mat_free(&back);
    mpoc_mat_free(&a);
    mpoc_svd_result_free(&r);
}

/* Square, tall and wide inputs (the latter two via the QR/LQ reduction). */
static void test_exact_matches_lapack_double(void **state)
{
    (void)state;
    check_exact_case(40, 40, 1);
    check_exact_case(200, 13, 2);
    check_exact_case(13, 200, 3);
    check_exact_case(1, 17, 4);
    check_exact_case(17, 1, 5);
    check_exact_case(1, 1, 6);
}

/* Eckart–Young: the truncation error is the tail of the spectrum. */
static void test_truncation_error_is_tail(void **state)
{
    (void)state;
    mpoc_mat a = nt_power(120, 90, 0.7, 11);
    double *ref = nt_singular_values(mpoc_mat_view_of(&a));
    for (size_t chi = 1; chi <= 90; chi += 17) {
        mpoc_svd_options o = mpoc_svd_options_default();
        o.method = MPOC_SVD_EXACT;
        o.trunc.max_rank = chi;
        mpoc_svd_result r;
        NT_ASSERT_OK(mpoc_svd(mpoc_mat_view_of(&a), &o, &r));
        assert_int_equal(r.rank, chi);
        double tail = 0.0;
        for (size_t i = chi; i < 90; i++)
            tail += ref[i] * ref[i];
        mpoc_mat back = reconstruct(&r);
        double err = mpoc_mat_diff_norm(mpoc_mat_view_of(&a), mpoc_mat_view_of(&back));
        double norm = mpoc_mat_norm(mpoc_mat_view_of(&a));
        assert_true(fabs(err - sqrt(tail)) <= nt_tol(20, 120, 90) * norm);
        assert_true(fabs(sqrt(r.discarded_sq) - sqrt(tail)) <= nt_tol(20, 120, 90) * norm);
        mpoc_mat_free(&back);
        mpoc_svd_result_free(&r);
    }
    free(ref);
    mpoc_mat_free(&a);
}

/* Each rule alone picks the rank its definition says. */
static void test_rules_pick_defined_ranks(void **state)
{
    (void)state;
    float s[6] = {10, 5, 2, 1, 0.5f, 0.1f};
    double total = 100 + 25 + 4 + 1 + 0.25 + 0.01, disc;
    mpoc_trunc t = {0};
    assert_int_equal(mpoc_trunc_rank(&t, s, 6, total, 0, 6, &disc), 6);
    t.max_rank = 3;
    assert_int_equal(mpoc_trunc_rank(&t, s, 6, total, 0, 6, &disc), 3);
    assert_true(fabs(disc - 1.26) < 1e-6);
    memset(&t, 0, sizeof t);
    t.rel_cutoff = 0.15; /* keeps 10, 5, 2 (2 >= 1.5) */
    assert_int_equal(mpoc_trunc_rank(&t, s, 6, total, 0, 6, &disc), 3);
    memset(&t, 0, sizeof t);
    t.discarded_weight = 1.3 / total; /* tail after 3 is 1.26 <= 1.3; after 2 it is 5.26 */
    assert_int_equal(mpoc_trunc_rank(&t, s, 6, total, 0, 6, &disc), 3);
    memset(&t, 0, sizeof t);
    t.abs_tail = sqrt(0.27); /* tail after 4 = 0.26, after 3 = 1.26 */
    assert_int_equal(mpoc_trunc_rank(&t, s, 6, total, 0, 6, &disc), 4);
    t.max_rank = 2; /* the tightest wins */
    assert_int_equal(mpoc_trunc_rank(&t, s, 6, total, 0, 6, &disc), 2);
    memset(&t, 0, sizeof t);
    t.abs_tail = 1e-9; /* unreachable with a residual: all kept */
    assert_int_equal(mpoc_trunc_rank(&t, s, 6, total, 0.5, 6, &disc), 6);
    float z[3] = {1, 1e-9f, 0}; /* numerical zeros are dropped */
    memset(&t, 0, sizeof t);
    assert_int_equal(mpoc_trunc_rank(&t, z, 3, 1, 0, 3, &disc), 1);
    t.keep_zeros = true;
    assert_int_equal(mpoc_trunc_rank(&t, z, 3, 1, 0, 3, &disc), 3);
}

/* A matrix of known rank: both paths find it and reconstruct it. */
static void test_randomized_agrees_on_known_rank(void **state)
{
    (void)state;
    size_t m = 600, n = 500, rank = 20;
    mpoc_mat u = nt_gaussian(m, rank, 21), v = nt_gaussian(rank, n, 22), a;
    NT_ASSERT_OK(mpoc_mat_zeros(&a, m, n));
    for (size_t i = 0; i < m; i++)
        for (size_t k = 0; k < rank; k++)
            for (size_t j = 0; j < n; j++)
                a.data[i * n + j] += u.data[i * rank + k] * v.data[k * n + j];
    mpoc_svd_result r[2];
    for (int p = 0; p < 2; p++) {
        mpoc_svd_options o = mpoc_svd_options_default();
        o.method = p ? MPOC_SVD_RANDOMIZED : MPOC_SVD_EXACT;
        o.trunc.rel_cutoff = 1e-4; /* rank unknown in advance: adaptive sketch */
        NT_ASSERT_OK(mpoc_svd(mpoc_mat_view_of(&a), &o, &r[p]));
        assert_int_equal(r[p].rank, rank);
        assert_int_equal(r[p].used, p ? MPOC_SVD_RANDOMIZED : MPOC_SVD_EXACT);
        mpoc_mat back = reconstruct(&r[p]);
        assert_true(nt_rel_diff(mpoc_mat_view_of(&a), mpoc_mat_view_of(&back)) < 1e-5);
        mpoc_mat_free(&back);
    }
    for (size_t i = 0; i < rank; i++)
        assert_true(fabs(r[0].s[i] - r[1].s[i]) <= 1e-5 * r[0].s[0]);
    mpoc_svd_result_free(&r[0]);
    mpoc_svd_result_free(&r[1]);
    mpoc_mat_free(&u), mpoc_mat_free(&v), mpoc_mat_free(&a);
}

/* On a decaying spectrum the randomized error is close to optimal, and the
 * reported discarded energy is the true residual. */
static void test_randomized_near_optimal(void **state)
{
    (void)state;
    mpoc_mat a = nt_power(512, 400, 0.5, 31);
    mpoc_svd_options o = mpoc_svd_options_default();
    o.trunc.max_rank = 32;
    mpoc_svd_result ex, rs;
    o.method = MPOC_SVD_EXACT;
    NT_ASSERT_OK(mpoc_svd(mpoc_mat_view_of(&a), &o, &ex));
    o.method = MPOC_SVD_RANDOMIZED;
    NT_ASSERT_OK(mpoc_svd(mpoc_mat_view_of(&a), &o, &rs));
    mpoc_mat be = reconstruct(&ex), br = reconstruct(&rs);
    double ee = mpoc_mat_diff_norm(mpoc_mat_view_of(&a), mpoc_mat_view_of(&be));
    double er = mpoc_mat_diff_norm(mpoc_mat_view_of(&a), mpoc_mat_view_of(&br));
    assert_true(er >= ee * (1 - 1e-5));
    assert_true(er <= ee * 1.03);
    assert_true(fabs(sqrt(rs.discarded_sq) - er) <= 1e-3 * er);
    assert_true(orth_defect(rs.u, 512, 32, true) < 1e-5);
    mpoc_mat_free(&be), mpoc_mat_free(&br), mpoc_mat_free(&a);
    mpoc_svd_result_free(&ex);
    mpoc_svd_result_free(&rs);
}

/* An ε-style absolute tail on the randomized path: grown until it holds. */
static void test_randomized_adaptive_meets_tail(void **state)
{
    (void)state;
    mpoc_mat a = nt_power(1100, 1100, 1.0, 41);
    double norm = mpoc_mat_norm(mpoc_mat_view_of(&a));
    mpoc_svd_options o = mpoc_svd_options_default();
    o.method = MPOC_SVD_RANDOMIZED;
    o.trunc.abs_tail = 0.05 * norm;
    mpoc_svd_result r;
    NT_ASSERT_OK(mpoc_svd(mpoc_mat_view_of(&a), &o, &r));
    mpoc_mat back = reconstruct(&r);
    double err = mpoc_mat_diff_norm(mpoc_mat_view_of(&a), mpoc_mat_view_of(&back));
    assert_true(err <= 0.05 * norm * (1 + 1e-4));
    assert_true(r.rank > 64); /* more than the first sketch held */
    mpoc_mat_free(&back), mpoc_mat_free(&a);
    mpoc_svd_result_free(&r);
}

static void test_sign_rule_and_determinism(void **state)
{
    (void)state;
    mpoc_mat a = nt_gaussian(70, 50, 51);
    mpoc_svd_options o = mpoc_svd_options_default();
    mpoc_svd_result r1, r2;
    NT_ASSERT_OK(mpoc_svd(mpoc_mat_view_of(&a), &o, &r1));
    NT_ASSERT_OK(mpoc_svd(mpoc_mat_view_of(&a), &o, &r2));
    assert_memory_equal(r1.u, r2.u, 70 * r1.rank * sizeof(float));
    assert_memory_equal(r1.vt, r2.vt, r1.rank * 50 * sizeof(float));
    for (size_t k = 0; k < r1.rank; k++) {
        size_t best = 0;
        for (size_t i = 1; i < 70; i++)
            if (fabsf(r1.u[i * r1.rank + k]) > fabsf(r1.u[best * r1.rank + k]))
                best = i;
        assert_true(r1.u[best * r1.rank + k] > 0);
    }
    mpoc_svd_result_free(&r1), mpoc_svd_result_free(&r2);
    mpoc_mat_free(&a);
}

static void test_non_finite_rejected(void **state)
{
    (void)state;
    mpoc_mat a = nt_gaussian(8, 8, 61);
    mpoc_svd_options o = mpoc_svd_options_default();
    mpoc_svd_result r;
    a.data[9] = INFINITY;
    assert_int_equal(mpoc_svd(mpoc_mat_view_of(&a), &o, &r), MPOC_E_NUMERIC);
    a.data[9] = NAN;
    assert_int_equal(mpoc_svd(mpoc_mat_view_of(&a), &o, &r), MPOC_E_NUMERIC);
    assert_null(r.u);
    mpoc_mat_free(&a);
}

/* Zero, huge and tiny inputs: sensible, finite results. */
static void test_extreme_scales(void **state)
{
    (void)state;
    mpoc_mat a;
    mpoc_svd_options o = mpoc_svd_options_default();
    mpoc_svd_result r;
    NT_ASSERT_OK(mpoc_mat_zeros(&a, 5, 7));
    NT_ASSERT_OK(mpoc_svd(mpoc_mat_view_of(&a), &o, &r));
    assert_int_equal(r.rank, 1);
    assert_true(r.s[0] == 0.0f);
    mpoc_svd_result_free(&r);
    mpoc_mat_free(&a);
    const float scales[2] = {1e36f, 1e-36f};
    for (int t = 0; t < 2; t++) {
        a = nt_gaussian(20, 10, 71);
        for (size_t i = 0; i < 200; i++)
            a.data[i] *= scales[t];
        NT_ASSERT_OK(mpoc_svd(mpoc_mat_view_of(&a), &o, &r));
        assert_int_equal(r.rank, 10);
        mpoc_mat back = reconstruct(&r);
        assert_true(nt_rel_diff(mpoc_mat_view_of(&a), mpoc_mat_view_of(&back)) < 1e-5);
        mpoc_mat_free(&back);
        mpoc_svd_result_free(&r);
        mpoc_mat_free(&a);
    }
}

/* sgesdd reported as non-converged: the sgesvd fallback gives the answer. */
static void test_gesvd_fallback(void **state)
{
    (void)state;
    mpoc_mat a = nt_gaussian(30, 20, 81);
    mpoc_svd_options o = mpoc_svd_options_default();
    o.method = MPOC_SVD_EXACT;
    mpoc_svd_result r;
    int before = mpoc_la_gesvd_fallbacks;
    mpoc_la_inject_gesdd_failures = 1;
    NT_ASSERT_OK(mpoc_svd(mpoc_mat_view_of(&a), &o, &r));
    assert_int_equal(mpoc_la_gesvd_fallbacks, before + 1);
    double *ref = nt_singular_values(mpoc_mat_view_of(&a));
    for (size_t i = 0; i < 20; i++)
        assert_true(fabs(r.s[i] - ref[i]) <= nt_tol(10, 30, 20) * ref[0]);
    free(ref);
    mpoc_svd_result_free(&r);
    mpoc_mat_free(&a);
}

/* QR/LQ of slim matrices large enough for the CholeskyQR2 path, including
 * an ill-conditioned one and a rank-deficient one (Householder fallback):
 * Q orthonormal and A = QR to float precision. */
static void check_qr(size_t m, size_t n, int kind, bool wide)
{
    size_t rows = wide ? n : m, cols = wide ? m : n; /* A is rows × cols */
    mpoc_mat a = nt_gaussian(rows, cols, 100 + (uint64_t)kind);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            size_t slim = wide ? i : j; /* index along the short side */
            if (kind == 1) /* condition number ~1e5 */
                a.data[i * cols + j] *= powf(10.0f, -5.0f * (float)slim / (float)(n - 1));
            if (kind == 2 && slim == n / 2) /* an exactly zero direction */
                a.data[i * cols + j] = 0.0f;
        }
    mpoc_mat q;
    NT_ASSERT_OK(mpoc_mat_copy(&q, mpoc_mat_view_of(&a)));
    float *r = malloc(n * n * sizeof(float));
    mpoc_workspace *ws;
    NT_ASSERT_OK(mpoc_workspace_new(&ws));
    if (wide)
        NT_ASSERT_OK(mpoc_la_lq(q.data, n, m, m, r, ws));
    else
        NT_ASSERT_OK(mpoc_la_qr(q.data, m, n, n, r, ws));
    double defect = 0, recon = 0, norm = mpoc_mat_norm(mpoc_mat_view_of(&a));
    for (size_t x = 0; x < n; x++)
        for (size_t y = 0; y < n; y++) {
            double dot = 0;
            for (size_t t = 0; t < m; t++)
                dot += wide ? (double)q.data[x * m + t] * q.data[y * m + t]
                            : (double)q.data[t * n + x] * q.data[t * n + y];
            if (kind != 2 || (x != n / 2 && y != n / 2)) /* the zero direction's Q column is arbitrary */
                defect = fmax(defect, fabs(dot - (x == y)));
        }
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            double acc = 0; /* QR: Σ_k Q[i,k] R[k,j]; LQ: Σ_k L[i,k] Q[k,j] */
            for (size_t k = 0; k < n; k++)
                acc += wide ? (double)r[i * n + k] * q.data[k * m + j] : (double)q.data[i * n + k] * r[k * n + j];
            double d = acc - a.data[i * cols + j];
            recon += d * d;
        }
    assert_true(defect < nt_tol(10, m, n));
    assert_true(sqrt(recon) <= nt_tol(10, m, n) * norm);
    mpoc_workspace_free(ws);
    free(r);
    mpoc_mat_free(&a), mpoc_mat_free(&q);
}

static void test_slim_qr_lq(void **state)
{
    (void)state;
    for (int kind = 0; kind < 3; kind++) {
        check_qr(16384, 64, kind, false);
        check_qr(16384, 64, kind, true);
    }
}

static void test_bad_options(void **state)
{
    (void)state;
    mpoc_mat a = nt_gaussian(4, 4, 91);
    mpoc_svd_options o = mpoc_svd_options_default();
    mpoc_svd_result r;
    o.trunc.rel_cutoff = 2;
    assert_int_equal(mpoc_svd(mpoc_mat_view_of(&a), &o, &r), MPOC_E_INVAL);
    o = mpoc_svd_options_default();
    o.trunc.abs_tail = -1;
    assert_int_equal(mpoc_svd(mpoc_mat_view_of(&a), &o, &r), MPOC_E_INVAL);
    mpoc_svd_method m;
    assert_int_equal(mpoc_svd_method_parse("fast", &m), MPOC_E_INVAL);
    NT_ASSERT_OK(mpoc_svd_method_parse("Randomized", &m));
    assert_int_equal(m, MPOC_SVD_RANDOMIZED);
    mpoc_mat_free(&a);
}

static void test_status_strings(void **state)
{
    (void)state;
    for (int s = 0; s < MPOC_STATUS_COUNT; s++) {
        const char *msg = mpoc_strerror((mpoc_status)s);
        assert_non_null(msg);
        assert_string_not_equal(msg, "unknown status");
    }
    assert_string_equal(mpoc_strerror((mpoc_status)999), "unknown status");
}

int main(void)
{
    mpoc_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_matches_lapack_double),
        cmocka_unit_test(test_truncation_error_is_tail),
        cmocka_unit_test(test_rules_pick_defined_ranks),
        cmocka_unit_test(test_randomized_agrees_on_known_rank),
        cmocka_unit_test(test_randomized_near_optimal),
        cmocka_unit_test(test_randomized_adaptive_meets_tail),
        cmocka_unit_test(test_sign_rule_and_determinism),
        cmocka_unit_test(test_non_finite_rejected),
        cmocka_unit_test(test_extreme_scales),
        cmocka_unit_test(test_gesvd_fallback),
        cmocka_unit_test(test_slim_qr_lq),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_status_strings),
    };
    return cmocka_run_group_tests_name("svd", tests, NULL, NULL);
}
