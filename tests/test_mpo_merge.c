/* test_mpo_merge.c: merging adjacent MPO sites (src/mpo_merge.c) and the
 * merged plan of MPO linear operators for batches. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mpoc.h"
#include "support/numtest.h"

/* A random MPO on an explicit split (rows/cols may be padded). */
static mpoc_mpo random_mpo(size_t rows, size_t cols, size_t d, const size_t *m, const size_t *n,
                           const size_t *ranks, uint64_t seed)
{
    mpoc_shape sh;
    NT_ASSERT_OK(mpoc_shape_explicit(rows, cols, d, m, n, &sh));
    mpoc_mpo mpo;
    NT_ASSERT_OK(mpoc_mpo_random(&sh, ranks, seed, &mpo));
    return mpo;
}

/* Max |a − b| over the matrix, against max |a|: entries by the independent
 * double element formula of the support library. */
static double rel_entry_diff(const mpoc_mpo *a, const mpoc_mpo *b)
{
    double diff = 0.0, scale = 0.0;
    for (size_t i = 0; i < a->shape.rows; i++)
        for (size_t j = 0; j < a->shape.cols; j++) {
            double x = nt_mpo_entry(a, i, j), y = nt_mpo_entry(b, i, j);
            diff = fmax(diff, fabs(x - y));
            scale = fmax(scale, fabs(x));
        }
    return diff / scale;
}

/* Every grouping of a 4-site padded MPO gives the same matrix, with the
 * parameters and multiply-adds mpoc_mpo_merge_cost predicts. */
static void test_merge_all_groupings(void **state)
{
    (void)state;
    const size_t m[4] = {2, 3, 2, 2}, n[4] = {3, 2, 2, 3}, ranks[5] = {1, 4, 5, 3, 1};
    mpoc_mpo mpo = random_mpo(23, 31, 4, m, n, ranks, 7); /* 24 × 36 padded */
    const size_t groupings[][4] = {{1, 1, 1, 1}, {2, 1, 1, 0}, {1, 2, 1, 0}, {1, 1, 2, 0},
                                   {2, 2, 0, 0}, {3, 1, 0, 0}, {1, 3, 0, 0}, {4, 0, 0, 0}};
    const size_t counts[] = {4, 3, 3, 3, 2, 2, 2, 1};
    for (size_t g = 0; g < sizeof counts / sizeof *counts; g++) {
        mpoc_mpo merged;
        NT_ASSERT_OK(mpoc_mpo_merge_sites(&mpo, counts[g], groupings[g], &merged));
        assert_int_equal(merged.shape.sites, counts[g]);
        assert_int_equal(merged.shape.padded_rows, 24);
        assert_int_equal(merged.shape.padded_cols, 36);
        assert_true(rel_entry_diff(&mpo, &merged) <= nt_tol(16, 24, 36));
        for (int t = 0; t < 2; t++) {
            double macs, params, want;
            NT_ASSERT_OK(mpoc_mpo_merge_cost(&mpo, t, counts[g], groupings[g], &macs, &params));
            NT_ASSERT_OK(mpoc_mpo_apply_macs(&merged, t, MPOC_MPO_ORDER_AUTO, &want));
            assert_true(macs == want);
            assert_true(params == (double)mpoc_mpo_params(&merged));
        }
        mpoc_mpo_free(&merged);
    }
    mpoc_mpo_free(&mpo);
}

/* The chosen grouping is the brute-force optimum under the cap, never a
 * single group, and the original when the cap forbids any merge. */
static void test_merge_choose(void **state)
{
    (void)state;
    const size_t m[3] = {16, 8, 8}, n[3] = {16, 8, 8}, ranks[4] = {1, 32, 32, 1};
    mpoc_mpo mpo = random_mpo(1024, 1024, 3, m, n, ranks, 3);
    size_t ng, sizes[MPOC_MAX_SITES];
    double base, best_macs, best_params;
    NT_ASSERT_OK(mpoc_mpo_apply_macs(&mpo, false, MPOC_MPO_ORDER_AUTO, &base));
    NT_ASSERT_OK(mpoc_mpo_merge_choose(&mpo, false, 1e12, &ng, sizes));
    NT_ASSERT_OK(mpoc_mpo_merge_cost(&mpo, false, ng, sizes, &best_macs, &best_params));
    assert_true(ng >= 2);
    const size_t cand[][3] = {{1, 1, 1}, {2, 1, 0}, {1, 2, 0}};
    const size_t cn[] = {3, 2, 2};
    for (size_t c = 0; c < 3; c++) {
        double macs, params;
        NT_ASSERT_OK(mpoc_mpo_merge_cost(&mpo, false, cn[c], cand[c], &macs, &params));
        assert_true(best_macs <= macs);
    }
    /* the middle core (32·64·32) dominates: merging it with the last wins */
    assert_int_equal(ng, 2);
    assert_int_equal(sizes[0], 1);
    assert_int_equal(sizes[1], 2);
    assert_true(best_macs * 3.0 < base);
    NT_ASSERT_OK(mpoc_mpo_merge_choose(&mpo, false, 1.0, &ng, sizes)); /* nothing fits */
    assert_int_equal(ng, 3);
    mpoc_mpo_free(&mpo);
}

static void test_merge_bad_groups(void **state)
{
    (void)state;
    const size_t m[3] = {2, 2, 2}, n[3] = {2, 2, 2}, ranks[4] = {1, 2, 2, 1};
    mpoc_mpo mpo = random_mpo(8, 8, 3, m, n, ranks, 5), out;
    const size_t short_[2] = {1, 1}, long_[2] = {2, 2}, zero[3] = {1, 0, 2};
    assert_int_equal(mpoc_mpo_merge_sites(&mpo, 2, short_, &out), MPOC_E_INVAL);
    assert_int_equal(mpoc_mpo_merge_sites(&mpo, 2, long_, &out), MPOC_E_INVAL);
    assert_int_equal(mpoc_mpo_merge_sites(&mpo, 3, zero, &out), MPOC_E_INVAL);
    mpoc_mpo_free(&mpo);
}

/* An MPO operator runs batches on its merged plan: fewer multiply-adds than
 * for one row, and the same product as the dense matrix. */
static void test_linear_batch_plan(void **state)
{
    (void)state;
    const size_t m[3] = {16, 8, 8}, n[3] = {16, 8, 8}, ranks[4] = {1, 16, 16, 1};
    mpoc_mpo mpo = random_mpo(1000, 1024, 3, m, n, ranks, 11); /* rows padded */
    mpoc_mat dense;
    NT_ASSERT_OK(mpoc_mpo_to_dense(&mpo, &dense, NULL));
    mpoc_linear *l;
    NT_ASSERT_OK(mpoc_linear_new_mpo(&mpo, &l));
    assert_true(mpoc_linear_macs(l, 32) * 1.25 <= mpoc_linear_macs(l, 1));
    mpoc_mat x = nt_gaussian(32, 1024, 2);
    float *y = malloc(32 * 1000 * sizeof(float)), *y1 = malloc(1000 * sizeof(float));
    assert_true(y && y1);
    NT_ASSERT_OK(mpoc_linear_apply(l, mpoc_mat_view_of(&x), mpoc_view_wrap(y, 32, 1000, 1000),
                                   NULL));
    double err = 0.0, scale = 0.0;
    for (size_t b = 0; b < 32; b++)
        for (size_t i = 0; i < 1000; i++) {
            double acc = 0.0;
            for (size_t j = 0; j < 1024; j++)
                acc += (double)dense.data[i * 1024 + j] * x.data[b * 1024 + j];
            err = fmax(err, fabs(acc - y[b * 1000 + i]));
            scale = fmax(scale, fabs(acc));
        }
    assert_true(err <= nt_tol(32, 1000, 1024) * scale);
    /* one row (the unmerged plan) agrees with the batch */
    NT_ASSERT_OK(mpoc_linear_apply(l, mpoc_view_wrap(x.data + 5 * 1024, 1, 1024, 1024),
                                   mpoc_view_wrap(y1, 1, 1000, 1000), NULL));
    for (size_t i = 0; i < 1000; i++)
        assert_true(fabs(y1[i] - y[5 * 1000 + i]) <= nt_tol(32, 1000, 1024) * scale);
    free(y);
    free(y1);
    mpoc_mat_free(&x);
    mpoc_mat_free(&dense);
    mpoc_linear_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_all_groupings),
        cmocka_unit_test(test_merge_choose),
        cmocka_unit_test(test_merge_bad_groups),
        cmocka_unit_test(test_linear_batch_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
