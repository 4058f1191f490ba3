/* test_sweep.c: the sweep engine (mpoc_sweep.h). Sweep records equal
 * separate decompose + quantize runs at the same settings; baselines agree
 * with independent computations (double-precision singular values, a
 * scalar q8_0 reference); best-at-size, totals, list parsing, refusals. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numtest.h"
#include "testlog.h"

/* ------------------------------------------------------------ lists */

static void test_lists(void **state)
{
    (void)state;
    size_t *v, n;
    NT_ASSERT_OK(mpoc_parse_size_list("8,16,32", &v, &n));
    assert_int_equal(n, 3);
    assert_int_equal(v[2], 32);
    free(v);
    NT_ASSERT_OK(mpoc_parse_size_list("8:512:x2", &v, &n));
    assert_int_equal(n, 7);
    assert_int_equal(v[0], 8);
    assert_int_equal(v[6], 512);
    free(v);
    NT_ASSERT_OK(mpoc_parse_size_list("64:256:+64,8,64", &v, &n));
    assert_int_equal(n, 5); /* 64 128 192 256 8: the repeated 64 dropped */
    assert_int_equal(v[3], 256);
    assert_int_equal(v[4], 8);
    free(v);
    NT_ASSERT_OK(mpoc_parse_size_list("4:6", &v, &n));
    assert_int_equal(n, 3);
    free(v);
    NT_ASSERT_OK(mpoc_parse_size_list("10:100:x3", &v, &n));
    assert_int_equal(n, 3); /* 10 30 90 */
    assert_int_equal(v[2], 90);
    free(v);
    const char *bad[] = {"", "8:4", "x", "8:64:x1", "8:64:y2", "-1", "1.5", "8,,16", "8:64:+0",
                         "0:64:x2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mpoc_parse_size_list(bad[i], &v, &n), MPOC_E_INVAL);
    double *d;
    NT_ASSERT_OK(mpoc_parse_double_list("0.001:0.1:x10", &d, &n));
    assert_int_equal(n, 3);
    assert_true(fabs(d[2] - 0.1) < 1e-12);
    free(d);
    NT_ASSERT_OK(mpoc_parse_double_list("0.05,0.1:0.3:+0.1", &d, &n));
    assert_int_equal(n, 4);
    free(d);
    assert_int_equal(mpoc_parse_double_list("0.1:nan", &d, &n), MPOC_E_INVAL);
}

/* ------------------------------------------------------------ vs separate runs */

static mpoc_sweep_options grid(const size_t *chi, size_t nc, const mpoc_quant_type *q, size_t nq,
                               const size_t *sites)
{
    mpoc_sweep_options o = mpoc_sweep_options_default();
    o.chi = chi;
    o.n_chi = nc;
    o.quant = q;
    o.n_quant = nq;
    o.sites = sites;
    o.n_sites = 1;
    return o;
}

/* What a separate run does: decompose at the setting, then quantize. */
static void separate_run(mpoc_mat_view w, const mpoc_sweep_options *o, const mpoc_sweep_setting *s,
                         double *err, uint64_t *bytes, size_t *ranks)
{
    mpoc_mpo_options mo = mpoc_mpo_options_default();
    mo.svd = o->svd;
    mo.svd.trunc.max_rank = s->chi;
    mo.eps = s->eps;
    mo.sites = s->sites;
    mpoc_mpo m;
    mpoc_qmpo q;
    memset(&q, 0, sizeof q);
    NT_ASSERT_OK(mpoc_mpo_decompose(w, &mo, &m, NULL));
    mpoc_quant_options qo = mpoc_quant_options_default();
    qo.core = s->quant;
    qo.centre = o->centre;
    qo.no_feedback = o->no_feedback;
    mpoc_quant_report qr;
    NT_ASSERT_OK(mpoc_quant_mpo(&m, w, &qo, NULL, &q, &qr));
    *err = qr.rel_error;
    *bytes = mpoc_qmpo_bytes(&q);
    memcpy(ranks, q.mpo.ranks, (q.mpo.shape.sites + 1) * sizeof *ranks);
    mpoc_qmpo_free(&q);
    mpoc_mpo_free(&m);
}

static void test_equals_separate_runs(void **state)
{
    (void)state;
    mpoc_mat w = nt_power(128, 256, 1.0, 11);
    mpoc_mat_view v = mpoc_mat_view_of(&w);
    const size_t chi[] = {4, 8, 16}, sites[] = {3};
    const mpoc_quant_type q[] = {MPOC_QUANT_Q8_0, MPOC_QUANT_Q4_0};
    for (int mode = 0; mode < 4; mode++) {
        int sep = mode & 1;
        mpoc_sweep_options o = grid(chi, 3, q, 2, sites);
        o.separate = sep;
        o.no_feedback = mode >= 2; /* the gauge handed to the quantizer matters here */
        mpoc_sweep_result r;
        NT_ASSERT_OK(mpoc_sweep_matrix(v, "w", 0, &o, NULL, &r));
        assert_int_equal(r.n, 6 * 4);
        for (size_t i = 0; i < r.n; i++) {
            const mpoc_sweep_record *rec = &r.records[i];
            if (rec->method != MPOC_SWEEP_MPO)
                continue;
            double err;
            uint64_t bytes;
            size_t ranks[MPOC_MAX_SITES + 1];
            separate_run(v, &o, &rec->set, &err, &bytes, ranks);
            /* chi binds at every bond here: same ranks, hence the same bytes */
            assert_int_equal(rec->sites, 3);
            assert_memory_equal(rec->ranks, ranks, 4 * sizeof(size_t));
            assert_int_equal(rec->bytes, bytes);
            assert_true(rec->bits_per_weight > 0);
            /* the parent setting (largest chi) and every separate-mode record are
             * the separate run itself; rounded ones are within a few percent */
            double tol = sep || rec->set.chi == 16 ? 1e-6 * err : 0.03 * err;
            if (fabs(rec->rel_error - err) > tol)
                fail_msg("chi %zu %s mode %d: sweep %.6g, separate %.6g", rec->set.chi,
                         mpoc_quant_name(rec->set.quant), mode, rec->rel_error, err);
        }
        mpoc_sweep_result_free(&r);
    }
    mpoc_mat_free(&w);
}

static void test_eps_settings(void **state)
{
    (void)state;
    mpoc_mat w = nt_power(96, 160, 0.8, 5);
    const double eps[] = {0.2, 0.35, 0.5};
    const mpoc_quant_type q[] = {MPOC_QUANT_F32};
    mpoc_sweep_options o = mpoc_sweep_options_default();
    o.eps = eps;
    o.n_eps = 3;
    o.quant = q;
    o.n_quant = 1;
    o.centre = MPOC_QUANT_F32;
    o.baselines = false;
    mpoc_sweep_result r;
    NT_ASSERT_OK(mpoc_sweep_matrix(mpoc_mat_view_of(&w), "w", 0, &o, NULL, &r));
    assert_int_equal(r.n, 3);
    uint64_t prev = UINT64_MAX;
    for (size_t i = 0; i < r.n; i++) {
        assert_true(r.records[i].rel_error_trunc <= eps[i] * 1.0001);
        assert_true(r.records[i].bytes <= prev); /* looser target, fewer bytes */
        prev = r.records[i].bytes;
    }
    mpoc_sweep_result_free(&r);
    mpoc_mat_free(&w);
}

/* ------------------------------------------------------------ baselines */

static void test_svd_baseline(void **state)
{
    (void)state;
    mpoc_mat w = nt_power(80, 120, 0.7, 3);
    mpoc_mat_view v = mpoc_mat_view_of(&w);
    double *sv = nt_singular_values(v), total = 0;
    for (size_t i = 0; i < 80; i++)
        total += sv[i] * sv[i];
    mpoc_svd_options so = mpoc_svd_options_default();
    so.method = MPOC_SVD_EXACT;
    so.trunc.max_rank = 40;
    mpoc_svd_result res;
    NT_ASSERT_OK(mpoc_svd(v, &so, &res));
    size_t ranks[] = {0, 1, 10, 40};
    for (size_t k = 0; k < 4; k++) {
        double e, t, tail = 0;
        NT_ASSERT_OK(mpoc_sweep_svd_error(v, &res, ranks[k], &e, &t));
        for (size_t i = ranks[k]; i < 80; i++)
            tail += sv[i] * sv[i];
        double want = sqrt(tail / total);
        assert_true(fabs(t - want) <= 1e-4 * want + 1e-6);
        /* f16 factors add rounding noise of ~2^-11 relative: small, not zero */
        assert_true(e >= want * (1 - 1e-4));
        assert_true(sqrt(fmax(e * e - want * want, 0)) < 2e-3);
    }
    double e, t;
    assert_int_equal(mpoc_sweep_svd_error(v, &res, 41, &e, &t), MPOC_E_INVAL);
    mpoc_svd_result_free(&res);
    free(sv);
    mpoc_mat_free(&w);
}

/* ggml's scalar q8_0 reference: d = amax/127 (stored f16), q = round(x/d). */
static double ref_q8_error(mpoc_mat_view w)
{
    double diff = 0, norm = 0;
    for (size_t i = 0; i < w.rows; i++)
        for (size_t b = 0; b < w.cols; b += 32) {
            float amax = 0;
            for (size_t j = b; j < b + 32 && j < w.cols; j++)
                amax = fmaxf(amax, fabsf(w.data[i * w.ld + j]));
            float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
            float dh = mpoc_f16_to_f32(mpoc_f32_to_f16(d));
            for (size_t j = b; j < b + 32 && j < w.cols; j++) {
                float x = w.data[i * w.ld + j], y = roundf(x * id) * dh;
                diff += ((double)x - y) * ((double)x - y);
                norm += (double)x * x;
            }
        }
    return sqrt(diff / norm);
}

static void test_block_baselines(void **state)
{
    (void)state;
    mpoc_mat w = nt_gaussian(33, 100, 9); /* 100 columns: rows padded to 128 */
    mpoc_mat_view v = mpoc_mat_view_of(&w);
    double e;
    uint64_t bytes;
    NT_ASSERT_OK(mpoc_sweep_block_error(v, MPOC_SWEEP_Q8_0, &e, &bytes));
    assert_int_equal(bytes, 33 * 4 * 34);
    double want = ref_q8_error(v);
    assert_true(fabs(e - want) <= 1e-6 * want);
    assert_true(e < 0.0054 * 1.5); /* numerics.md §9: 0.54% on Gaussian data */
    NT_ASSERT_OK(mpoc_sweep_block_error(v, MPOC_SWEEP_Q4_0, &e, &bytes));
    assert_int_equal(bytes, 33 * 4 * 18);
    assert_true(e > 0.04 && e < 0.086 * 1.4);
    assert_int_equal(mpoc_sweep_block_error(v, MPOC_SWEEP_SVD, &e, &bytes), MPOC_E_INVAL);
    mpoc_mat_free(&w);
}

/* The svd baseline of a sweep never spends more bytes than the MPO. */
static void test_baseline_records(void **state)
{
    (void)state;
    mpoc_mat w = nt_power(64, 192, 0.5, 2);
    const size_t chi[] = {2, 8, 32}, sites[] = {0};
    const mpoc_quant_type q[] = {MPOC_QUANT_Q8_0};
    mpoc_sweep_options o = grid(chi, 3, q, 1, sites);
    mpoc_sweep_result r;
    NT_ASSERT_OK(mpoc_sweep_matrix(mpoc_mat_view_of(&w), "w", 1000, &o, NULL, &r));
    for (size_t s = 0; s < 3; s++) {
        const mpoc_sweep_record *g = &r.records[4 * s];
        assert_int_equal(g[0].method, MPOC_SWEEP_MPO);
        assert_int_equal(g[1].method, MPOC_SWEEP_SVD);
        assert_int_equal(g[2].method, MPOC_SWEEP_Q8_0);
        assert_int_equal(g[3].method, MPOC_SWEEP_Q4_0);
        assert_true(g[1].bytes <= g[0].bytes);
        assert_true(g[1].bytes + 2 * (64 + 192) > g[0].bytes || g[1].ranks[0] == 64);
        assert_int_equal(g[2].bytes, 64 * 6 * 34);
        assert_int_equal(g[0].original_bytes, 1000);
        size_t nbest = 0;
        for (size_t k = 0; k < 4; k++) {
            nbest += g[k].best;
            assert_int_equal(g[k].best_method, g[0].best_method);
            assert_int_equal(g[k].setting, s);
        }
        assert_int_equal(nbest, 1);
    }
    mpoc_sweep_result_free(&r);
    mpoc_mat_free(&w);
}

/* The keep hooks hand out exactly what the records measure: the setting's
 * dequantized MPO (its error and params are the mpo record's) and SVD
 * factors whose rank-r prefix gives the svd record's error; the block
 * round-trip is what the q8_0/q4_0 records measure. */
typedef struct kept {
    mpoc_mpo mpo[3];
    size_t n_mpo, n_svd, rank;
    mpoc_mat prod[3]; /* l[:, :r]·rt[:r, :] for each setting's r */
    size_t r[3];
} kept;

static mpoc_status keep_mpo_cb(void *user, size_t setting, const mpoc_qmpo *q)
{
    kept *k = user;
    assert_true(setting < 3);
    k->n_mpo++;
    return mpoc_mpo_copy(&k->mpo[setting], &q->mpo);
}

static mpoc_status keep_svd_cb(void *user, const float *l, const float *rt, size_t rows,
                               size_t cols, size_t rank)
{
    kept *k = user;
    k->n_svd++;
    k->rank = rank;
    for (int s = 0; s < 3; s++) { /* products for ranks 1, 4 and the full rank kept */
        size_t r = s == 0 ? 1 : s == 1 ? 4 : rank;
        k->r[s] = r;
        NT_ASSERT_OK(mpoc_mat_zeros(&k->prod[s], rows, cols));
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++) {
                double acc = 0;
                for (size_t c = 0; c < r; c++)
                    acc += (double)l[i * rank + c] * rt[c * cols + j];
                k->prod[s].data[i * cols + j] = (float)acc;
            }
    }
    return MPOC_OK;
}

static void test_keep_hooks(void **state)
{
    (void)state;
    mpoc_mat w = nt_power(48, 80, 0.5, 3);
    mpoc_mat_view v = mpoc_mat_view_of(&w);
    const size_t chi[] = {2, 4, 16}, sites[] = {0};
    const mpoc_quant_type q[] = {MPOC_QUANT_Q8_0};
    mpoc_sweep_options o = grid(chi, 3, q, 1, sites);
    kept k;
    memset(&k, 0, sizeof k);
    o.keep_mpo = keep_mpo_cb;
    o.keep_svd = keep_svd_cb;
    o.keep_user = &k;
    mpoc_sweep_result r;
    NT_ASSERT_OK(mpoc_sweep_matrix(v, "w", 0, &o, NULL, &r));
    assert_int_equal(k.n_mpo, 3);
    assert_int_equal(k.n_svd, 1);
    size_t rmax = 0;
    for (size_t s = 0; s < 3; s++) {
        const mpoc_sweep_record *g = &r.records[4 * s];
        double e;
        NT_ASSERT_OK(mpoc_mpo_rel_error(&k.mpo[s], v, NULL, &e));
        assert_true(fabs(e - g[0].rel_error) <= 1e-4 * g[0].rel_error);
        assert_int_equal(mpoc_mpo_params(&k.mpo[s]), g[0].params);
        rmax = g[1].ranks[0] > rmax ? g[1].ranks[0] : rmax;
        assert_false(g[0].has_eval);
    }
    assert_true(k.rank >= rmax && rmax >= 4);
    for (size_t s = 0; s < 3; s++) /* the prefix of rank r is the rank-r baseline */
        for (size_t t = 0; t < 3; t++)
            if (r.records[4 * t + 1].ranks[0] == k.r[s]) {
                double e = mpoc_mat_diff_norm(v, mpoc_mat_view_of(&k.prod[s])) / mpoc_mat_norm(v);
                assert_true(fabs(e - r.records[4 * t + 1].rel_error) <= 1e-4);
            }
    for (int m = MPOC_SWEEP_Q8_0; m <= MPOC_SWEEP_Q4_0; m++) {
        mpoc_mat c;
        NT_ASSERT_OK(mpoc_mat_copy(&c, v));
        NT_ASSERT_OK(mpoc_sweep_block_roundtrip(mpoc_mat_view_of(&c), (mpoc_sweep_method)m));
        double e = mpoc_mat_diff_norm(v, mpoc_mat_view_of(&c)) / mpoc_mat_norm(v);
        assert_true(fabs(e - r.records[m].rel_error) <= 1e-6 * e);
        mpoc_mat_free(&c);
    }
    assert_int_equal(mpoc_sweep_block_roundtrip(v, MPOC_SWEEP_SVD), MPOC_E_INVAL);
    for (int s = 0; s < 3; s++) {
        mpoc_mpo_free(&k.mpo[s]);
        mpoc_mat_free(&k.prod[s]);
    }
    mpoc_sweep_result_free(&r);
    mpoc_mat_free(&w);
}

/* ------------------------------------------------------------ best, totals */

static void test_best_at_size(void **state)
{
    (void)state;
    mpoc_sweep_record g[4];
    memset(g, 0, sizeof g);
    const uint64_t bytes[4] = {100, 96, 1000, 90};
    const double err[4] = {0.5, 0.4, 0.01, 0.6};
    for (int i = 0; i < 4; i++) {
        g[i].method = (mpoc_sweep_method)i;
        g[i].bytes = bytes[i];
        g[i].rel_error = err[i];
    }
    mpoc_sweep_mark_best(g, 4); /* q8_0 is better but larger: not at this size */
    assert_true(g[1].best && !g[0].best && !g[2].best && !g[3].best);
    assert_int_equal(g[3].best_method, MPOC_SWEEP_SVD);
    g[0].bytes = 2000;
    mpoc_sweep_mark_best(g, 4);
    assert_true(g[2].best);
    g[1].rel_error = g[0].rel_error = 0.001; /* tie: mpo first */
    mpoc_sweep_mark_best(g, 4);
    assert_true(g[0].best);
}

static void test_totals(void **state)
{
    (void)state;
    mpoc_mat a = nt_power(64, 64, 1.0, 1), b = nt_power(32, 128, 0.5, 2);
    const size_t chi[] = {4, 16}, sites[] = {2};
    const mpoc_quant_type q[] = {MPOC_QUANT_F16};
    mpoc_sweep_options o = grid(chi, 2, q, 1, sites);
    mpoc_sweep_result ra, rb, all, tot;
    NT_ASSERT_OK(mpoc_sweep_matrix(mpoc_mat_view_of(&a), "a", 0, &o, NULL, &ra));
    NT_ASSERT_OK(mpoc_sweep_matrix(mpoc_mat_view_of(&b), "b", 0, &o, NULL, &rb));
    memset(&all, 0, sizeof all);
    memset(&tot, 0, sizeof tot);
    all.n = ra.n + rb.n;
    all.records = calloc(all.n, sizeof *all.records);
    memcpy(all.records, ra.records, ra.n * sizeof *ra.records);
    memcpy(all.records + ra.n, rb.records, rb.n * sizeof *rb.records);
    NT_ASSERT_OK(mpoc_sweep_totals(all.records, all.n, &o, &tot));
    assert_int_equal(tot.n, 8);
    for (size_t i = 0; i < tot.n; i++) {
        const mpoc_sweep_record *t = &tot.records[i], *x = &ra.records[i], *y = &rb.records[i];
        assert_string_equal(t->tensor, "*");
        assert_int_equal(t->tensor_index, 2);
        assert_int_equal(t->method, x->method);
        assert_int_equal(t->bytes, x->bytes + y->bytes);
        double want = sqrt((4096 * x->rel_error * x->rel_error + 4096 * y->rel_error * y->rel_error) / 8192);
        assert_true(fabs(t->rel_error - want) < 1e-12);
        assert_true(fabs(t->bits_per_weight - 8.0 * (double)t->bytes / 8192) < 1e-12);
    }
    mpoc_sweep_result_free(&ra);
    mpoc_sweep_result_free(&rb);
    mpoc_sweep_result_free(&all);
    mpoc_sweep_result_free(&tot);
    mpoc_mat_free(&a);
    mpoc_mat_free(&b);
}

/* ------------------------------------------------------------ determinism, refusals */

static void test_deterministic(void **state)
{
    (void)state;
    mpoc_mat w = nt_power(64, 96, 0.6, 4);
    const size_t chi[] = {4, 12}, sites[] = {0};
    const mpoc_quant_type q[] = {MPOC_QUANT_Q4_0, MPOC_QUANT_Q8_0};
    mpoc_sweep_options o = grid(chi, 2, q, 2, sites);
    mpoc_sweep_result r1, r2;
    NT_ASSERT_OK(mpoc_sweep_matrix(mpoc_mat_view_of(&w), "w", 0, &o, NULL, &r1));
    NT_ASSERT_OK(mpoc_sweep_matrix(mpoc_mat_view_of(&w), "w", 0, &o, NULL, &r2));
    assert_int_equal(r1.n, r2.n);
    for (size_t i = 0; i < r1.n; i++) {
        r1.records[i].seconds = r2.records[i].seconds = 0;
        r1.records[i].seconds_factor = r2.records[i].seconds_factor = 0;
        assert_int_equal(r1.records[i].bytes, r2.records[i].bytes);
        assert_true(r1.records[i].rel_error == r2.records[i].rel_error);
    }
    mpoc_sweep_result_free(&r1);
    mpoc_sweep_result_free(&r2);
    mpoc_mat_free(&w);
}

static void test_refusals(void **state)
{
    (void)state;
    tl_install();
    mpoc_mat w = nt_gaussian(16, 16, 1);
    mpoc_sweep_result r;
    mpoc_sweep_options o = mpoc_sweep_options_default();
    const double bad_eps[] = {1.5};
    o.eps = bad_eps;
    o.n_eps = 1;
    assert_int_equal(mpoc_sweep_matrix(mpoc_mat_view_of(&w), "w", 0, &o, NULL, &r), MPOC_E_INVAL);
    assert_true(tl_contains("not in [0, 1)"));
    o = mpoc_sweep_options_default();
    o.n_chi = 2; /* a count without values */
    assert_int_equal(mpoc_sweep_matrix(mpoc_mat_view_of(&w), "w", 0, &o, NULL, &r), MPOC_E_INVAL);
    o = mpoc_sweep_options_default();
    w.data[5] = NAN;
    assert_int_equal(mpoc_sweep_matrix(mpoc_mat_view_of(&w), "w", 0, &o, NULL, &r), MPOC_E_NUMERIC);
    mpoc_mat_free(&w);
    assert_int_equal(mpoc_sweep_setting_count(&o), 1);
    double g;
    NT_ASSERT_OK(mpoc_sgemm_gflops(64, &g));
    assert_true(g > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_equals_separate_runs),
        cmocka_unit_test(test_eps_settings),
        cmocka_unit_test(test_svd_baseline),
        cmocka_unit_test(test_block_baselines),
        cmocka_unit_test(test_baseline_records),
        cmocka_unit_test(test_keep_hooks),
        cmocka_unit_test(test_best_at_size),
        cmocka_unit_test(test_totals),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests_name("sweep", tests, NULL, NULL);
}
