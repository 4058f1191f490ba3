/* test_mpo.c: TT-SVD, rounding, canonical forms, contraction and batch
 * application, checked against independent computations: the element
 * formula in double (nt_mpo_entry), double-precision LAPACK spectra, and
 * plain dense products. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mpo_internal.h"
#include "numtest.h"

/* ‖W − Ŵ‖/‖W‖ with Ŵ from the element formula, in double. */
static double true_rel_error(const mpoc_mpo *mpo, mpoc_mat_view w)
{
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; i < w.rows; i++)
        for (size_t j = 0; j < w.cols; j++) {
            double a = w.data[i * w.ld + j], d = a - nt_mpo_entry(mpo, i, j);
            diff += d * d;
            norm += a * a;
        }
    return norm > 0 ? sqrt(diff / norm) : sqrt(diff);
}

static mpoc_mat dense_of(const mpoc_mpo *mpo)
{
    mpoc_mat d;
    NT_ASSERT_OK(mpoc_mpo_to_dense(mpo, &d, NULL));
    return d;
}

static mpoc_shape shape_of(size_t sites, const size_t *m, const size_t *n)
{
    size_t rows = 1, cols = 1;
    for (size_t k = 0; k < sites; k++)
        rows *= m[k], cols *= n[k];
    mpoc_shape s;
    NT_ASSERT_OK(mpoc_shape_explicit(rows, cols, sites, m, n, &s));
    return s;
}

static mpoc_mpo_options exact_options(void)
{
    mpoc_mpo_options o = mpoc_mpo_options_default();
    o.svd.method = MPOC_SVD_EXACT;
    return o;
}

/* max |GᵀG − I| of core k as a left (true) or right (false) isometry. */
static double isometry_defect(const mpoc_mpo *mpo, size_t k, bool left)
{
    size_t s = mpo->shape.row_dims[k] * mpo->shape.col_dims[k];
    size_t r = mpo->ranks[k], r2 = mpo->ranks[k + 1];
    size_t rows = left ? r * s : r, cols = left ? r2 : s * r2;
    const float *g = mpo->cores[k];
    size_t dim = left ? cols : rows, len = left ? rows : cols;
    double worst = 0.0;
    for (size_t a = 0; a < dim; a++)
        for (size_t b = 0; b < dim; b++) {
            double dot = 0.0;
            for (size_t q = 0; q < len; q++)
                dot += left ? (double)g[q * cols + a] * g[q * cols + b]
                            : (double)g[a * cols + q] * g[b * cols + q];
            worst = fmax(worst, fabs(dot - (a == b)));
        }
    return worst;
}

/* A random MPO of known ranks is recovered at those ranks to round-off. */
static void test_recovers_known_ranks(void **state)
{
    (void)state;
    size_t m[4] = {3, 4, 2, 3}, n[4] = {2, 3, 4, 2}, ranks[5] = {1, 3, 5, 4, 1};
    mpoc_shape s = shape_of(4, m, n);
    mpoc_mpo truth, got;
    NT_ASSERT_OK(mpoc_mpo_random(&s, ranks, 7, &truth));
    mpoc_mat w = dense_of(&truth);
    mpoc_mpo_options o = exact_options();
    o.shape = &s;
    mpoc_mpo_report rep;
    NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&w), &o, &got, &rep));
    for (size_t k = 0; k <= 4; k++)
        assert_int_equal(got.ranks[k], ranks[k]);
    assert_true(rep.rel_error <= 1e-5);
    assert_true(true_rel_error(&got, mpoc_mat_view_of(&w)) <= 1e-5);
    assert_int_equal(got.centre, 3);
    for (size_t k = 0; k < 3; k++)
        assert_true(isometry_defect(&got, k, true) < nt_tol(10, 48, 48));
    mpoc_mpo_free(&truth), mpoc_mpo_free(&got);
    mpoc_mat_free(&w);
}

/* Also on the randomized path, where the ranks are found adaptively. */
static void test_recovers_known_ranks_randomized(void **state)
{
    (void)state;
    size_t m[2] = {16, 16}, n[2] = {16, 16}, ranks[3] = {1, 8, 1};
    mpoc_shape s = shape_of(2, m, n);
    mpoc_mpo truth, got[2];
    NT_ASSERT_OK(mpoc_mpo_random(&s, ranks, 8, &truth));
    mpoc_mat w = dense_of(&truth);
    for (int p = 0; p < 2; p++) {
        mpoc_mpo_options o = mpoc_mpo_options_default();
        o.svd.method = p ? MPOC_SVD_RANDOMIZED : MPOC_SVD_EXACT;
        o.svd.trunc.rel_cutoff = 1e-4;
        o.shape = &s;
        mpoc_mpo_report rep;
        NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&w), &o, &got[p], &rep));
        assert_int_equal(got[p].ranks[1], 8);
        assert_int_equal(rep.bond_method[0], o.svd.method);
        assert_true(rep.rel_error <= 1e-5);
    }
    mpoc_mat a = dense_of(&got[0]), b = dense_of(&got[1]);
    assert_true(nt_rel_diff(mpoc_mat_view_of(&a), mpoc_mat_view_of(&b)) < 1e-5);
    mpoc_mat_free(&a), mpoc_mat_free(&b), mpoc_mat_free(&w);
    mpoc_mpo_free(&truth), mpoc_mpo_free(&got[0]), mpoc_mpo_free(&got[1]);
}

/* The ε guarantee on 100 random cases per ε, random and power-law matrices;
 * the reported error is the true one. */
static void test_eps_guarantee(void **state)
{
    (void)state;
    const double eps[3] = {1e-1, 1e-2, 1e-4};
    for (int e = 0; e < 3; e++)
        for (uint64_t c = 0; c < 100; c++) {
            size_t rows = 8 + (c * 7) % 40, cols = 8 + (c * 13) % 40, sites = 2 + c % 3;
            mpoc_mat w = c % 2 ? nt_power(rows, cols, 0.5 + 0.1 * (double)(c % 5), 100 + c)
                               : nt_gaussian(rows, cols, 100 + c);
            mpoc_mpo_options o = mpoc_mpo_options_default();
            o.eps = eps[e];
            o.sites = sites;
            o.svd.method = c % 4 == 3 ? MPOC_SVD_RANDOMIZED : MPOC_SVD_AUTO;
            mpoc_mpo mpo;
            mpoc_mpo_report rep;
            NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&w), &o, &mpo, &rep));
            double truth = true_rel_error(&mpo, mpoc_mat_view_of(&w));
            assert_true(truth <= eps[e] * (1 + 1e-5));
            assert_true(rep.rel_error <= eps[e] * (1 + 1e-5));
            assert_true(fabs(rep.rel_error - truth) <= 1e-5 * truth + 1e-7);
            mpoc_mpo_free(&mpo);
            mpoc_mat_free(&w);
        }
}

/* Smaller ε never gives smaller ranks or a larger error. */
static void test_eps_monotone(void **state)
{
    (void)state;
    mpoc_mat w = nt_power(64, 48, 0.6, 5);
    size_t prev[MPOC_MAX_SITES + 1] = {0};
    double prev_err = INFINITY;
    const double eps[5] = {0.5, 0.2, 0.1, 0.03, 0.01};
    for (int e = 0; e < 5; e++) {
        mpoc_mpo_options o = exact_options();
        o.eps = eps[e];
        o.sites = 3;
        mpoc_mpo mpo;
        mpoc_mpo_report rep;
        NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&w), &o, &mpo, &rep));
        for (size_t k = 0; k <= 3; k++)
            assert_true(mpo.ranks[k] >= prev[k]);
        assert_true(rep.rel_error <= prev_err * (1 + 1e-6));
        memcpy(prev, mpo.ranks, sizeof mpo.ranks);
        prev_err = rep.rel_error;
        mpoc_mpo_free(&mpo);
    }
    mpoc_mat_free(&w);
}

/* Two sites: the error is the Eckart–Young tail of the rearranged matrix
 * R[(i1 j1), (i2 j2)] = W[i1 m2 + i2, j1 n2 + j2] (Van Loan–Pitsianis). */
static void test_two_sites_eckart_young(void **state)
{
    (void)state;
    size_t m[2] = {3, 4}, n[2] = {4, 5};
    mpoc_shape s = shape_of(2, m, n);
    mpoc_mat w = nt_gaussian(12, 20, 9), r;
    NT_ASSERT_OK(mpoc_mat_alloc(&r, 12, 20));
    for (size_t i = 0; i < 12; i++)
        for (size_t j = 0; j < 20; j++)
            r.data[((i / 4) * 4 + j / 5) * 20 + (i % 4) * 5 + j % 5] = w.data[i * 20 + j];
    double *sig = nt_singular_values(mpoc_mat_view_of(&r));
    double norm = mpoc_mat_norm(mpoc_mat_view_of(&w));
    for (size_t chi = 1; chi <= 12; chi++) {
        mpoc_mpo_options o = exact_options();
        o.shape = &s;
        o.svd.trunc.max_rank = chi;
        mpoc_mpo mpo;
        mpoc_mpo_report rep;
        NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&w), &o, &mpo, &rep));
        double tail = 0;
        for (size_t i = chi; i < 12; i++)
            tail += sig[i] * sig[i];
        assert_true(fabs(rep.rel_error - sqrt(tail) / norm) <= nt_tol(20, 12, 20));
        assert_true(fabs(true_rel_error(&mpo, mpoc_mat_view_of(&w)) - sqrt(tail) / norm) <= nt_tol(20, 12, 20));
        mpoc_mpo_free(&mpo);
    }
    free(sig);
    mpoc_mat_free(&w), mpoc_mat_free(&r);
}

/* Structure: the identity has all bond ranks 1; A ⊗ B has rank 1 at d = 2. */
static void test_structured_ranks(void **state)
{
    (void)state;
    mpoc_mat id;
    NT_ASSERT_OK(mpoc_mat_zeros(&id, 64, 64));
    for (size_t i = 0; i < 64; i++)
        id.data[i * 64 + i] = 1;
    for (size_t d = 2; d <= 3; d++) {
        mpoc_mpo_options o = exact_options();
        o.sites = d;
        mpoc_mpo mpo;
        mpoc_mpo_report rep;
        NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&id), &o, &mpo, &rep));
        for (size_t k = 0; k <= d; k++)
            assert_int_equal(mpo.ranks[k], 1);
        assert_true(rep.rel_error < 1e-6);
        mpoc_mpo_free(&mpo);
    }
    mpoc_mat a = nt_gaussian(4, 6, 1), b = nt_gaussian(5, 3, 2), kron;
    NT_ASSERT_OK(mpoc_mat_alloc(&kron, 20, 18));
    for (size_t i = 0; i < 20; i++)
        for (size_t j = 0; j < 18; j++)
            kron.data[i * 18 + j] = a.data[(i / 5) * 6 + j / 3] * b.data[(i % 5) * 3 + j % 3];
    size_t m[2] = {4, 5}, n[2] = {6, 3};
    mpoc_shape s = shape_of(2, m, n);
    mpoc_mpo_options o = exact_options();
    o.shape = &s;
    mpoc_mpo mpo;
    mpoc_mpo_report rep;
    NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&kron), &o, &mpo, &rep));
    assert_int_equal(mpo.ranks[1], 1);
    assert_true(rep.rel_error < 1e-6);
    mpoc_mpo_free(&mpo);
    mpoc_mat_free(&id), mpoc_mat_free(&a), mpoc_mat_free(&b), mpoc_mat_free(&kron);
}

/* Rounding never raises a bond, keeps ε relative to the MPO, is idempotent. */
static void test_rounding(void **state)
{
    (void)state;
    mpoc_mat w = nt_power(64, 64, 0.3, 3);
    mpoc_mpo_options o = exact_options();
    o.sites = 3;
    mpoc_mpo full;
    NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&w), &o, &full, NULL));
    mpoc_mat dense_full = dense_of(&full);
    const size_t chis[3] = {32, 8, 3};
    for (int c = 0; c < 3; c++) {
        mpoc_mpo r1, r2;
        NT_ASSERT_OK(mpoc_mpo_copy(&r1, &full));
        mpoc_mpo_options ro = mpoc_mpo_options_default();
        ro.svd.trunc.max_rank = chis[c];
        NT_ASSERT_OK(mpoc_mpo_round(&r1, &ro, NULL));
        for (size_t k = 0; k <= 3; k++) {
            assert_true(r1.ranks[k] <= full.ranks[k]);
            assert_true(r1.ranks[k] <= chis[c]);
        }
        NT_ASSERT_OK(mpoc_mpo_copy(&r2, &r1));
        NT_ASSERT_OK(mpoc_mpo_round(&r2, &ro, NULL));
        assert_memory_equal(r1.ranks, r2.ranks, sizeof r1.ranks);
        mpoc_mat d1 = dense_of(&r1), d2 = dense_of(&r2);
        assert_true(nt_rel_diff(mpoc_mat_view_of(&d1), mpoc_mat_view_of(&d2)) < nt_tol(50, 64, 64));
        mpoc_mat_free(&d1), mpoc_mat_free(&d2);
        mpoc_mpo_free(&r1), mpoc_mpo_free(&r2);
    }
    mpoc_mpo r3;
    NT_ASSERT_OK(mpoc_mpo_copy(&r3, &full));
    mpoc_mpo_options eo = mpoc_mpo_options_default();
    eo.eps = 0.2;
    NT_ASSERT_OK(mpoc_mpo_round(&r3, &eo, NULL));
    double err;
    NT_ASSERT_OK(mpoc_mpo_rel_error(&r3, mpoc_mat_view_of(&dense_full), NULL, &err));
    assert_true(err <= 0.2 * (1 + 1e-5));
    assert_true(err > 0.01); /* it did truncate */
    mpoc_mpo_free(&r3), mpoc_mpo_free(&full);
    mpoc_mat_free(&dense_full), mpoc_mat_free(&w);
}

/* Canonical forms: every non-centre core is an isometry, the tensor does not
 * change, and the norm sits in the centre. */
static void test_canonical_forms(void **state)
{
    (void)state;
    size_t m[4] = {2, 3, 2, 2}, n[4] = {3, 2, 2, 3}, ranks[5] = {1, 4, 6, 5, 1};
    mpoc_shape s = shape_of(4, m, n);
    mpoc_mpo mpo;
    NT_ASSERT_OK(mpoc_mpo_random(&s, ranks, 4, &mpo));
    mpoc_mat ref = dense_of(&mpo);
    double ref_norm = mpoc_mat_norm(mpoc_mat_view_of(&ref));
    const size_t order[5] = {2, 0, 3, 1, 3};
    for (int t = 0; t < 5; t++) {
        size_t c = order[t];
        NT_ASSERT_OK(mpoc_mpo_canonicalize(&mpo, c, NULL));
        assert_int_equal(mpo.centre, c);
        for (size_t k = 0; k < 4; k++)
            if (k != c)
                assert_true(isometry_defect(&mpo, k, k < c) < nt_tol(20, 36, 36));
        mpoc_mat d = dense_of(&mpo);
        assert_true(nt_rel_diff(mpoc_mat_view_of(&ref), mpoc_mat_view_of(&d)) < nt_tol(20, 24, 36));
        double cn = 0;
        for (size_t i = 0; i < mpoc_mpo_core_size(&mpo, c); i++)
            cn += (double)mpo.cores[c][i] * mpo.cores[c][i];
        assert_true(fabs(sqrt(cn) - ref_norm) <= nt_tol(20, 24, 36) * ref_norm);
        mpoc_mat_free(&d);
    }
    assert_int_equal(mpoc_mpo_canonicalize(&mpo, 4, NULL), MPOC_E_INVAL);
    mpoc_mat_free(&ref);
    mpoc_mpo_free(&mpo);
}

/* Contraction, norm and inner product agree with the element formula. */
static void test_contraction_norm_inner(void **state)
{
    (void)state;
    size_t m[3] = {3, 2, 4}, n[3] = {2, 5, 3}, ranks[4] = {1, 5, 7, 1};
    mpoc_shape s = shape_of(3, m, n);
    mpoc_mpo mpo;
    NT_ASSERT_OK(mpoc_mpo_random(&s, ranks, 5, &mpo));
    mpoc_mat d = dense_of(&mpo);
    double maxdiff = 0, nsq = 0;
    for (size_t i = 0; i < 24; i++)
        for (size_t j = 0; j < 30; j++) {
            double e = nt_mpo_entry(&mpo, i, j);
            maxdiff = fmax(maxdiff, fabs(e - d.data[i * 30 + j]));
            nsq += e * e;
        }
    assert_true(maxdiff <= nt_tol(10, 24, 30) * sqrt(nsq));
    double norm, inner;
    NT_ASSERT_OK(mpoc_mpo_norm(&mpo, &norm));
    assert_true(fabs(norm - sqrt(nsq)) <= 1e-6 * sqrt(nsq));
    mpoc_mat w = nt_gaussian(24, 30, 6);
    NT_ASSERT_OK(mpoc_mpo_inner(&mpo, mpoc_mat_view_of(&w), NULL, &inner));
    double ref = mpoc_mat_dot(mpoc_mat_view_of(&w), mpoc_mat_view_of(&d));
    assert_true(fabs(inner - ref) <= 1e-5 * mpoc_mat_norm(mpoc_mat_view_of(&w)) * sqrt(nsq));
    mpoc_mat_free(&d), mpoc_mat_free(&w);
    mpoc_mpo_free(&mpo);
}

/* One slab configuration of test_error_by_slabs: the dense MPO against the
 * element formula, and the error against the double reference. */
static void check_slab_plan(const mpoc_mpo *mpo, mpoc_mat_view w, double truth, double *err)
{
    mpoc_mat d = dense_of(mpo);
    double maxdiff = 0, nsq = 0;
    for (size_t i = 0; i < w.rows; i++)
        for (size_t j = 0; j < w.cols; j++) {
            double e = nt_mpo_entry(mpo, i, j);
            maxdiff = fmax(maxdiff, fabs(e - d.data[i * w.cols + j]));
            nsq += e * e;
        }
    assert_true(maxdiff <= nt_tol(10, w.rows, w.cols) * sqrt(nsq));
    mpoc_mat_free(&d);
    mpoc_workspace *ws;
    NT_ASSERT_OK(mpoc_workspace_new(&ws));
    NT_ASSERT_OK(mpoc_mpo_rel_error(mpo, w, ws, err));
    assert_true(fabs(*err - truth) <= 1e-4 * truth);
    double again; /* a reused workspace gives the same value */
    NT_ASSERT_OK(mpoc_mpo_rel_error(mpo, w, ws, &again));
    assert_true(again == *err);
    mpoc_workspace_free(ws);
}

/* The error and the dense matrix are computed slab by slab (groups of the
 * first row digit, of the second, or the first fixed): every plan, from
 * one-row slabs to the whole tensor, on padded and unpadded shapes of 1-5
 * sites, against the element formula in double. W = MPO + 1e-3 noise, so
 * a misplaced or missing block would show as an O(1) error. */
static void test_error_by_slabs(void **state)
{
    (void)state;
    static const size_t m[5][5] = {{7}, {5, 7}, {3, 4, 2}, {2, 3, 2, 2}, {2, 2, 3, 2, 2}};
    static const size_t n[5][5] = {{5}, {6, 4}, {2, 3, 5}, {3, 2, 2, 3}, {2, 3, 2, 2, 2}};
    static const size_t ranks[5][6] = {{1, 1}, {1, 9, 1}, {1, 5, 7, 1}, {1, 4, 6, 5, 1}, {1, 3, 5, 6, 4, 1}};
    static const size_t rows[5] = {6, 33, 24, 21, 48}, cols[5] = {5, 24, 28, 31, 45};
    for (size_t c = 0; c < 5; c++) {
        size_t sites = c + 1;
        mpoc_shape s;
        NT_ASSERT_OK(mpoc_shape_explicit(rows[c], cols[c], sites, m[c], n[c], &s));
        mpoc_mpo mpo;
        NT_ASSERT_OK(mpoc_mpo_random(&s, ranks[c], 40 + c, &mpo));
        mpoc_mat w = nt_gaussian(rows[c], cols[c], 50 + c);
        for (size_t i = 0; i < rows[c]; i++)
            for (size_t j = 0; j < cols[c]; j++)
                w.data[i * cols[c] + j] = (float)(nt_mpo_entry(&mpo, i, j) + 1e-3 * w.data[i * cols[c] + j]);
        double truth = true_rel_error(&mpo, mpoc_mat_view_of(&w)), first = NAN;
        size_t total = s.padded_rows * s.padded_cols;
        size_t targets[4] = {1, total / 4, total / 2, total};
        for (int f = -1; f <= 2; f++)
            for (size_t t = 0; t < 4; t++) {
                mpoc_mpo_slab_family = f;
                mpoc_mpo_slab_target = targets[t];
                double err;
                check_slab_plan(&mpo, mpoc_mat_view_of(&w), truth, &err);
                if (isnan(first))
                    first = err;
                /* plans differ in summation order, and BLAS kernels may round
                 * products of other shapes differently (generic kernel) */
                assert_true(fabs(err - first) <= 1e-6 * first);
            }
        mpoc_mpo_slab_family = -1;
        mpoc_mpo_slab_target = 0;
        mpoc_mat_free(&w);
        mpoc_mpo_free(&mpo);
    }
}

/* Batch application equals the dense product, both orientations, padded. */
static void test_apply_matches_dense(void **state)
{
    (void)state;
    size_t m[3] = {2, 3, 3}, n[3] = {4, 2, 2}, ranks[4] = {1, 4, 3, 1};
    mpoc_shape full = shape_of(3, m, n), padded;
    NT_ASSERT_OK(mpoc_shape_explicit(17, 13, 3, m, n, &padded)); /* 18 × 16 padded */
    const mpoc_shape *shapes[2] = {&full, &padded};
    for (int p = 0; p < 2; p++) {
        mpoc_mpo mpo;
        NT_ASSERT_OK(mpoc_mpo_random(shapes[p], ranks, 10 + (uint64_t)p, &mpo));
        mpoc_mat w = dense_of(&mpo);
        size_t rows = w.rows, cols = w.cols, b = 5;
        for (int t = 0; t < 2; t++) {
            size_t in = t ? rows : cols, out = t ? cols : rows;
            mpoc_mat x = nt_gaussian(b, in, 20), y;
            NT_ASSERT_OK(mpoc_mat_alloc(&y, b, out));
            NT_ASSERT_OK(mpoc_mpo_apply(&mpo, mpoc_mat_view_of(&x), t == 1, mpoc_mat_view_of(&y), NULL));
            double maxdiff = 0, scale = 0;
            for (size_t q = 0; q < b; q++)
                for (size_t o = 0; o < out; o++) {
                    double acc = 0;
                    for (size_t i = 0; i < in; i++)
                        acc += (double)x.data[q * in + i] * (t ? w.data[i * cols + o] : w.data[o * cols + i]);
                    maxdiff = fmax(maxdiff, fabs(acc - y.data[q * out + o]));
                    scale = fmax(scale, fabs(acc));
                }
            assert_true(maxdiff <= 1e-5 * scale);
            mpoc_mat_free(&x), mpoc_mat_free(&y);
        }
        mpoc_mat x = nt_gaussian(2, cols + 1, 1), y;
        NT_ASSERT_OK(mpoc_mat_alloc(&y, 2, rows));
        assert_int_equal(mpoc_mpo_apply(&mpo, mpoc_mat_view_of(&x), false, mpoc_mat_view_of(&y), NULL),
                         MPOC_E_SHAPE);
        mpoc_mat_free(&x), mpoc_mat_free(&y), mpoc_mat_free(&w);
        mpoc_mpo_free(&mpo);
    }
}

/* Y = X·Wᵀ (t = 0) or X·W (t = 1) in double, against the float result y
 * (row stride ldy): largest difference relative to the largest entry. */
static double apply_error(const mpoc_mat *w, mpoc_mat_view x, int t, const float *y, size_t ldy)
{
    size_t in = t ? w->rows : w->cols, out = t ? w->cols : w->rows;
    double maxdiff = 0, scale = 0;
    for (size_t q = 0; q < x.rows; q++)
        for (size_t o = 0; o < out; o++) {
            double acc = 0;
            for (size_t i = 0; i < in; i++)
                acc += (double)x.data[q * x.ld + i] *
                       (t ? w->data[i * w->cols + o] : w->data[o * w->cols + i]);
            maxdiff = fmax(maxdiff, fabs(acc - y[q * ldy + o]));
            scale = fmax(scale, fabs(acc));
        }
    return maxdiff / scale;
}

/* Prepared application: both orders, both orientations, padded and
 * unpadded shapes, batch 1 and larger, strided outputs; AUTO picks the
 * order with fewer multiply-adds, and the counts follow the formula. */
static void test_plan_matches_dense(void **state)
{
    (void)state;
    size_t m[3] = {2, 3, 5}, n[3] = {6, 2, 2}, ranks[4] = {1, 4, 3, 1};
    mpoc_shape full = shape_of(3, m, n), padded, one;
    NT_ASSERT_OK(mpoc_shape_explicit(29, 23, 3, m, n, &padded)); /* 30 × 24 padded */
    size_t m1[1] = {7}, n1[1] = {5}, r1[2] = {1, 1};
    one = shape_of(1, m1, n1);
    const mpoc_shape *shapes[3] = {&full, &padded, &one};
    for (int p = 0; p < 3; p++) {
        mpoc_mpo mpo;
        NT_ASSERT_OK(mpoc_mpo_random(shapes[p], p == 2 ? r1 : ranks, 30 + (uint64_t)p, &mpo));
        mpoc_mat w = dense_of(&mpo);
        for (int t = 0; t < 2; t++) {
            size_t in = t ? w.rows : w.cols, out = t ? w.cols : w.rows;
            double macs[3];
            for (int o = 0; o < 3; o++)
                NT_ASSERT_OK(mpoc_mpo_apply_macs(&mpo, t == 1, (mpoc_mpo_order)o, &macs[o]));
            assert_true(macs[0] == fmin(macs[1], macs[2]));
            if (p == 0 && t == 0) { /* by hand: |G_k|·(out before)·(in after) and the mirror */
                assert_true(macs[1] == 48.0 * 4 + 72.0 * 2 * 2 + 30.0 * 6);
                assert_true(macs[2] == 48.0 * 15 + 72.0 * 6 * 5 + 30.0 * 12);
            }
            for (int o = 0; o < 3; o++) {
                mpoc_mpo_plan *plan;
                NT_ASSERT_OK(mpoc_mpo_plan_new(&mpo, t == 1, (mpoc_mpo_order)o, &plan));
                mpoc_mpo_order got = mpoc_mpo_plan_order(plan);
                assert_true(got == (o ? (mpoc_mpo_order)o
                                      : macs[2] < macs[1] ? MPOC_MPO_ORDER_RIGHT : MPOC_MPO_ORDER_LEFT));
                assert_true(mpoc_mpo_plan_macs(plan) == macs[o]);
                size_t batches[3] = {1, 2, 7};
                for (int bi = 0; bi < 3; bi++) {
                    size_t b = batches[bi];
                    mpoc_mat x = nt_gaussian(b, in, 40 + (uint64_t)bi), y;
                    NT_ASSERT_OK(mpoc_mat_alloc(&y, b, out));
                    NT_ASSERT_OK(mpoc_mpo_plan_apply(plan, mpoc_mat_view_of(&x), mpoc_mat_view_of(&y), NULL));
                    assert_true(apply_error(&w, mpoc_mat_view_of(&x), t, y.data, out) <= 1e-5);
                    /* strided output and input: rows wider than the data */
                    float *ys = calloc(b * (out + 3), sizeof(float));
                    mpoc_mat xs = nt_gaussian(b, in + 2, 50 + (uint64_t)bi);
                    mpoc_mat_view xv = mpoc_view_wrap(xs.data, b, in, in + 2);
                    assert_non_null(ys);
                    NT_ASSERT_OK(mpoc_mpo_plan_apply(plan, xv, mpoc_view_wrap(ys, b, out, out + 3), NULL));
                    assert_true(apply_error(&w, xv, t, ys, out + 3) <= 1e-5);
                    for (size_t q = 0; q < b; q++) /* the gaps are not written */
                        for (size_t g = out; g < out + 3; g++)
                            assert_true(ys[q * (out + 3) + g] == 0.0f);
                    free(ys);
                    mpoc_mat_free(&xs), mpoc_mat_free(&x), mpoc_mat_free(&y);
                }
                mpoc_mat x = nt_gaussian(2, in + 1, 1), y;
                NT_ASSERT_OK(mpoc_mat_alloc(&y, 2, out));
                assert_int_equal(mpoc_mpo_plan_apply(plan, mpoc_mat_view_of(&x), mpoc_mat_view_of(&y), NULL),
                                 MPOC_E_SHAPE);
                mpoc_mat_free(&x), mpoc_mat_free(&y);
                mpoc_mpo_plan_free(plan);
            }
        }
        mpoc_mat_free(&w);
        mpoc_mpo_free(&mpo);
    }
    mpoc_mpo_plan *plan = NULL;
    mpoc_mpo empty;
    memset(&empty, 0, sizeof empty);
    assert_int_equal(mpoc_mpo_plan_new(&empty, false, MPOC_MPO_ORDER_AUTO, &plan), MPOC_E_SHAPE);
    assert_null(plan);
    mpoc_mpo_plan_free(NULL);
}

/* Rectangular, tiny, prime-sized, zero and rank-1 matrices. */
static void test_edge_matrices(void **state)
{
    (void)state;
    const size_t dims[][2] = {{1, 37}, {37, 1}, {1, 1}, {13, 17}, {43, 172}, {97, 5}, {2, 3}};
    for (size_t c = 0; c < sizeof dims / sizeof dims[0]; c++) {
        mpoc_mat w = nt_gaussian(dims[c][0], dims[c][1], 30 + c);
        for (size_t d = 1; d <= 3; d++) {
            mpoc_mpo_options o = mpoc_mpo_options_default();
            o.sites = d;
            mpoc_mpo mpo;
            mpoc_mpo_report rep;
            NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&w), &o, &mpo, &rep));
            assert_true(rep.rel_error <= 1e-5);
            mpoc_mat back = dense_of(&mpo);
            assert_int_equal(back.rows, dims[c][0]);
            assert_int_equal(back.cols, dims[c][1]);
            assert_true(nt_rel_diff(mpoc_mat_view_of(&w), mpoc_mat_view_of(&back)) <= 1e-5);
            mpoc_mat_free(&back);
            mpoc_mpo_free(&mpo);
        }
        mpoc_mat_free(&w);
    }
    mpoc_mat z;
    NT_ASSERT_OK(mpoc_mat_zeros(&z, 16, 16));
    mpoc_mpo_options o = mpoc_mpo_options_default();
    o.eps = 0.1;
    mpoc_mpo mpo;
    mpoc_mpo_report rep;
    NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&z), &o, &mpo, &rep));
    assert_true(rep.rel_error == 0.0);
    for (size_t k = 0; k <= mpo.shape.sites; k++)
        assert_int_equal(mpo.ranks[k], 1);
    mpoc_mpo_free(&mpo);
    for (size_t i = 0; i < 256; i++) /* rank 1: u vᵀ */
        z.data[i] = (float)((i / 16 + 1) * ((i % 16) % 5 + 1));
    o.eps = 0; /* bond ranks are products of the reshaped u and v ranks, not 1 */
    NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&z), &o, &mpo, &rep));
    assert_true(rep.rel_error <= 1e-6);
    assert_true(mpo.ranks[1] <= 2 * 4);
    mpoc_mpo_free(&mpo);
    mpoc_mat_free(&z);
}

static void test_non_finite_rejected(void **state)
{
    (void)state;
    mpoc_mat w = nt_gaussian(16, 16, 3);
    mpoc_mpo_options o = mpoc_mpo_options_default();
    mpoc_mpo mpo;
    w.data[37] = NAN;
    assert_int_equal(mpoc_mpo_decompose(mpoc_mat_view_of(&w), &o, &mpo, NULL), MPOC_E_NUMERIC);
    w.data[37] = -INFINITY;
    assert_int_equal(mpoc_mpo_decompose(mpoc_mat_view_of(&w), &o, &mpo, NULL), MPOC_E_NUMERIC);
    assert_null(mpo.cores[0]);
    w.data[37] = 0;
    o.eps = -1;
    assert_int_equal(mpoc_mpo_decompose(mpoc_mat_view_of(&w), &o, &mpo, NULL), MPOC_E_INVAL);
    mpoc_mat_free(&w);
}

/* Same input and options: identical bytes. Padding is invisible. */
static void test_deterministic_and_padding(void **state)
{
    (void)state;
    mpoc_mat w = nt_power(172, 64, 0.5, 12);
    mpoc_mpo_options o = mpoc_mpo_options_default();
    o.pad = MPOC_PAD_ALWAYS;
    o.svd.trunc.max_rank = 12;
    mpoc_mpo a, b;
    mpoc_mpo_report rep;
    NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&w), &o, &a, &rep));
    NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&w), &o, &b, NULL));
    assert_true(a.shape.padded_rows > 172);
    for (size_t k = 0; k < a.shape.sites; k++)
        assert_memory_equal(a.cores[k], b.cores[k], mpoc_mpo_core_size(&a, k) * sizeof(float));
    double truth = true_rel_error(&a, mpoc_mat_view_of(&w));
    assert_true(fabs(rep.rel_error - truth) <= 1e-5 * truth);
    mpoc_mat back = dense_of(&a);
    assert_int_equal(back.rows, 172);
    mpoc_mat_free(&back);
    mpoc_mpo_free(&a), mpoc_mpo_free(&b), mpoc_mat_free(&w);
}

int main(void)
{
    mpoc_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recovers_known_ranks),
        cmocka_unit_test(test_recovers_known_ranks_randomized),
        cmocka_unit_test(test_eps_guarantee),
        cmocka_unit_test(test_eps_monotone),
        cmocka_unit_test(test_two_sites_eckart_young),
        cmocka_unit_test(test_structured_ranks),
        cmocka_unit_test(test_rounding),
        cmocka_unit_test(test_canonical_forms),
        cmocka_unit_test(test_contraction_norm_inner),
        cmocka_unit_test(test_error_by_slabs),
        cmocka_unit_test(test_apply_matches_dense),
        cmocka_unit_test(test_plan_matches_dense),
        cmocka_unit_test(test_edge_matrices),
        cmocka_unit_test(test_non_finite_rejected),
        cmocka_unit_test(test_deterministic_and_padding),
    };
    return cmocka_run_group_tests_name("mpo", tests, NULL, NULL);
}
