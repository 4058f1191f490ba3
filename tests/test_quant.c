/* test_quant.c: core storage types (ggml block semantics, ceilings from
 * numerics.md §9), degenerate blocks, and quantization of whole MPOs: error
 * feedback must beat independent quantization at the same bytes on
 * power-law matrices; with exact (f32) storage it must not cost accuracy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"
#include "numtest.h"
#include "testlog.h"

static double codec_rel_error(mpoc_quant_type t, const float *x, size_t n)
{
    size_t nb;
    NT_ASSERT_OK(mpoc_quant_nbytes(t, n, &nb));
    unsigned char *buf = malloc(nb);
    float *y = malloc(n * sizeof *y);
    NT_ASSERT_OK(mpoc_quant_encode(t, x, n, buf));
    NT_ASSERT_OK(mpoc_quant_decode(t, buf, n, y));
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        s += (double)x[i] * x[i];
    }
    free(buf);
    free(y);
    return sqrt(d / s);
}

static void test_codec_ceilings(void **state)
{
    (void)state;
    mpoc_mat g = nt_gaussian(1, 1 << 16, 7);
    /* numerics.md §9: Gaussian Q8_0 0.54 %, Q4_0 8.6 %; margins 1.3× */
    double ceil[MPOC_QUANT_COUNT_] = {1e-7, 1e-3, 8e-3, 0.0054 * 1.3, 0.086 * 1.3};
    for (int t = 0; t < MPOC_QUANT_COUNT_; t++) {
        double e = codec_rel_error((mpoc_quant_type)t, g.data, g.cols);
        if (e > ceil[t])
            fail_msg("%s: relative error %g above %g", mpoc_quant_name((mpoc_quant_type)t), e, ceil[t]);
    }
    /* a short last block (45 values) is zero-padded, not read past the end */
    double e45 = codec_rel_error(MPOC_QUANT_Q8_0, g.data, 45);
    assert_true(e45 < 0.01);
    size_t nb;
    NT_ASSERT_OK(mpoc_quant_nbytes(MPOC_QUANT_Q8_0, 45, &nb));
    assert_int_equal(nb, 2 * 34);
    NT_ASSERT_OK(mpoc_quant_nbytes(MPOC_QUANT_Q4_0, 33, &nb));
    assert_int_equal(nb, 2 * 18);
    NT_ASSERT_OK(mpoc_quant_nbytes(MPOC_QUANT_BF16, 33, &nb));
    assert_int_equal(nb, 66);
    mpoc_mat_free(&g);
}

static void test_zero_block_and_nan(void **state)
{
    (void)state;
    float z[40] = {0}, y[40];
    unsigned char buf[2 * 34];
    for (int t = MPOC_QUANT_Q8_0; t <= MPOC_QUANT_Q4_0; t++) {
        memset(buf, 0xAB, sizeof buf);
        NT_ASSERT_OK(mpoc_quant_encode((mpoc_quant_type)t, z, 40, buf));
        assert_int_equal(buf[0], 0); /* scale ±0 (ggml's Q4_0 gives −0), no 0/0 */
        assert_int_equal(buf[1] & 0x7f, 0);
        NT_ASSERT_OK(mpoc_quant_decode((mpoc_quant_type)t, buf, 40, y));
        for (int i = 0; i < 40; i++)
            assert_true(y[i] == 0.0f);
    }
    z[3] = NAN;
    tl_reset();
    assert_int_equal(mpoc_quant_encode(MPOC_QUANT_Q8_0, z, 40, buf), MPOC_E_NUMERIC);
    assert_true(tl_contains("not finite"));
    mpoc_quant_type t;
    assert_int_equal(mpoc_quant_parse("q5_k", &t), MPOC_E_INVAL);
    NT_ASSERT_OK(mpoc_quant_parse("Q4_0", &t));
    assert_int_equal(t, MPOC_QUANT_Q4_0);
    assert_int_equal(mpoc_quant_dtype(MPOC_QUANT_Q8_0), MPOC_DTYPE_Q8_0);
}

/* Decompose w, quantize both ways; returns errors and checks the bytes. */
static void compare(mpoc_mat *w, size_t sites, size_t chi, mpoc_quant_type core, double *fb,
                    double *indep, double *trunc)
{
    mpoc_mpo_options o = mpoc_mpo_options_default();
    o.sites = sites;
    o.svd.trunc.max_rank = chi;
    mpoc_mpo mpo;
    mpoc_mpo_report rep;
    NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(w), &o, &mpo, &rep));
    mpoc_quant_options q = mpoc_quant_options_default();
    q.core = core;
    mpoc_qmpo a, b;
    mpoc_quant_report ra, rb;
    NT_ASSERT_OK(mpoc_quant_mpo(&mpo, mpoc_mat_view_of(w), &q, NULL, &a, &ra));
    q.no_feedback = true;
    NT_ASSERT_OK(mpoc_quant_mpo(&mpo, mpoc_mat_view_of(w), &q, NULL, &b, &rb));
    assert_int_equal(ra.bytes, rb.bytes);
    assert_int_equal(mpoc_qmpo_bytes(&a), ra.bytes);
    /* the stored bytes decode to exactly the cores the error was measured on */
    mpoc_qmpo c;
    NT_ASSERT_OK(mpoc_qmpo_from_stored(&a.mpo.shape, a.mpo.ranks, a.types,
                                       (const uint8_t *const *)a.data, a.nbytes, &c));
    for (size_t k = 0; k < sites; k++)
        assert_memory_equal(c.mpo.cores[k], a.mpo.cores[k], mpoc_mpo_core_size(&a.mpo, k) * sizeof(float));
    double check;
    NT_ASSERT_OK(mpoc_mpo_rel_error(&c.mpo, mpoc_mat_view_of(w), NULL, &check));
    assert_true(fabs(check - ra.rel_error) <= 1e-6 * ra.rel_error + 1e-9);
    *fb = ra.rel_error;
    *indep = rb.rel_error;
    *trunc = rep.rel_error;
    mpoc_qmpo_free(&a);
    mpoc_qmpo_free(&b);
    mpoc_qmpo_free(&c);
    mpoc_mpo_free(&mpo);
}

static void test_feedback_beats_independent(void **state)
{
    (void)state;
    struct { size_t rows, cols, sites, chi; double decay; mpoc_quant_type q; } cases[] = {
        {256, 256, 2, 64, 1.0, MPOC_QUANT_Q4_0},
        {256, 256, 2, 128, 1.5, MPOC_QUANT_Q4_0},
        {256, 256, 3, 64, 1.5, MPOC_QUANT_Q4_0},
        {256, 512, 4, 48, 2.0, MPOC_QUANT_Q4_0},
        {256, 256, 2, 128, 1.5, MPOC_QUANT_Q8_0},
        {256, 256, 3, 64, 2.0, MPOC_QUANT_Q8_0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mpoc_mat w = nt_power(cases[i].rows, cases[i].cols, cases[i].decay, 11 + i);
        double fb, ind, tr;
        compare(&w, cases[i].sites, cases[i].chi, cases[i].q, &fb, &ind, &tr);
        printf("power-law %zux%zu decay %.1f, %zu sites, chi %zu, %s: truncation %.4f, "
               "error feedback %.4f, independent %.4f\n", cases[i].rows, cases[i].cols,
               cases[i].decay, cases[i].sites, cases[i].chi, mpoc_quant_name(cases[i].q), tr, fb, ind);
        /* the quantization part (above truncation) shrinks clearly */
        double qf = sqrt(fmax(fb * fb - tr * tr, 0)), qi = sqrt(fmax(ind * ind - tr * tr, 0));
        if (!(fb < ind && qf < 0.9 * qi))
            fail_msg("feedback %g (quant part %g) does not beat independent %g (%g)", fb, qf, ind, qi);
        mpoc_mat_free(&w);
    }
}

static void test_exact_storage_keeps_truncation(void **state)
{
    (void)state;
    mpoc_mat w = nt_power(128, 192, 0.7, 5);
    mpoc_mpo_options o = mpoc_mpo_options_default();
    o.sites = 3;
    o.svd.trunc.max_rank = 24;
    mpoc_mpo mpo;
    mpoc_mpo_report rep;
    NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&w), &o, &mpo, &rep));
    mpoc_quant_options q = {MPOC_QUANT_F32, MPOC_QUANT_F32, false};
    mpoc_qmpo a;
    mpoc_quant_report ra;
    NT_ASSERT_OK(mpoc_quant_mpo(&mpo, mpoc_mat_view_of(&w), &q, NULL, &a, &ra));
    /* the re-fit is a least-squares projection: never worse than truncation */
    assert_true(ra.rel_error <= rep.rel_error * (1 + 1e-4) + 1e-6);
    assert_int_equal(ra.bytes, 4 * mpoc_mpo_params(&mpo));
    mpoc_qmpo_free(&a);
    /* a zero matrix quantizes to zeros without dividing by zero */
    mpoc_mat z;
    NT_ASSERT_OK(mpoc_mat_zeros(&z, 16, 16));
    mpoc_mpo zm;
    NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&z), &o, &zm, NULL));
    q.core = MPOC_QUANT_Q4_0;
    NT_ASSERT_OK(mpoc_quant_mpo(&zm, mpoc_mat_view_of(&z), &q, NULL, &a, &ra));
    assert_true(ra.rel_error == 0.0);
    mpoc_qmpo_free(&a);
    mpoc_mpo_free(&zm);
    mpoc_mat_free(&z);
    /* a target of the wrong shape is refused */
    mpoc_mat small = nt_gaussian(8, 8, 1);
    tl_reset();
    assert_int_equal(mpoc_quant_mpo(&mpo, mpoc_mat_view_of(&small), &q, NULL, &a, &ra), MPOC_E_SHAPE);
    mpoc_mat_free(&small);
    mpoc_mpo_free(&mpo);
    mpoc_mat_free(&w);
}

/* numerics.md §9: with canonical cores quantized independently, the
 * quantization error adds in quadrature over the cores: ε_q² ≈ Σ η_k². */
static void test_first_order_predictor(void **state)
{
    (void)state;
    mpoc_mat w = nt_power(256, 256, 1.0, 9);
    mpoc_mpo_options o = mpoc_mpo_options_default();
    o.sites = 3; /* exact: truncation adds nothing */
    mpoc_mpo mpo;
    NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&w), &o, &mpo, NULL));
    mpoc_quant_options q = {MPOC_QUANT_Q4_0, MPOC_QUANT_Q8_0, true};
    mpoc_qmpo a;
    mpoc_quant_report r;
    NT_ASSERT_OK(mpoc_quant_mpo(&mpo, mpoc_mat_view_of(&w), &q, NULL, &a, &r));
    double pred = 0;
    for (size_t k = 0; k < 3; k++)
        pred += r.core_rel_error[k] * r.core_rel_error[k];
    pred = sqrt(pred);
    printf("independent q4_0: measured %.4f, predicted sqrt(sum eta_k^2) %.4f\n", r.rel_error, pred);
    assert_true(r.rel_error > 0.8 * pred && r.rel_error < 1.25 * pred);
    mpoc_qmpo_free(&a);
    mpoc_mpo_free(&mpo);
    mpoc_mat_free(&w);
}

/* The adapter's SPD inverse against a direct check in double, its refusal of
 * an indefinite matrix, and the float Gram against a double sum. */
static void test_spd_inverse_and_gram(void **state)
{
    (void)state;
    const size_t n = 37, m = 53;
    mpoc_mat b = nt_gaussian(m, n, 21);
    double *a = malloc(n * n * sizeof *a), *inv = malloc(n * n * sizeof *inv);
    for (size_t i = 0; i < n; i++) /* A = BᵀB + 0.1 I: SPD, κ ~ 1e2 */
        for (size_t j = 0; j < n; j++) {
            double v = i == j ? 0.1 : 0.0;
            for (size_t p = 0; p < m; p++)
                v += (double)b.data[p * n + i] * b.data[p * n + j];
            a[i * n + j] = inv[i * n + j] = v;
        }
    bool ok = false;
    NT_ASSERT_OK(mpoc_la_spd_inverse(inv, n, &ok));
    assert_true(ok);
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double v = 0;
            for (size_t p = 0; p < n; p++)
                v += a[i * n + p] * inv[p * n + j];
            worst = fmax(worst, fabs(v - (i == j ? 1.0 : 0.0)));
            assert_true(inv[i * n + j] == inv[j * n + i]); /* both triangles written */
        }
    assert_true(worst < 1e-10);
    double indef[4] = {1, 0, 0, -1};
    NT_ASSERT_OK(mpoc_la_spd_inverse(indef, 2, &ok));
    assert_false(ok);
    float *g = malloc(n * n * sizeof *g);
    NT_ASSERT_OK(mpoc_la_gram(m, n, b.data, n, g));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double v = a[i * n + j] - (i == j ? 0.1 : 0.0);
            assert_true(fabs(g[i * n + j] - v) <= 1e-5 * (fabs(v) + 1.0));
        }
    free(a);
    free(inv);
    free(g);
    mpoc_mat_free(&b);
}

/* The re-fits' QR (CholeskyQR2 with a float first pass on slim panels):
 * orthonormal to float precision on a graded panel, and Q·R reproduces the
 * input. */
static double qr_orth_error(const float *q, size_t m, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++) {
            double v = 0;
            for (size_t p = 0; p < m; p++)
                v += (double)q[p * n + i] * q[p * n + j];
            worst = fmax(worst, fabs(v - (i == j ? 1.0 : 0.0)));
        }
    return worst;
}

/* ‖Q·R − A‖/‖A‖ (R upper, n × n). */
static double qr_residual(const float *q, const float *r, const float *a, size_t m, size_t n)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double v = 0;
            for (size_t p = 0; p <= j; p++)
                v += (double)q[i * n + p] * r[p * n + j];
            d += (v - a[i * n + j]) * (v - a[i * n + j]);
            s += (double)a[i * n + j] * a[i * n + j];
        }
    return sqrt(d / s);
}

/* An ill-conditioned panel with cancellation (columns graded over 6
 * decades, column 1 = column 0 + 1e-6·noise): Q·R must still reproduce A to
 * float precision. Multiplying by an explicit R⁻¹ gave 4e-4 here; the
 * CholeskyQR pass solves with R when R is not well conditioned. */
static void test_slim_qr_ill_conditioned(void **state)
{
    (void)state;
    const size_t m = 20000, n = 64;
    mpoc_mat a = nt_gaussian(m, n, 35);
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++)
            a.data[i * n + j] *= (float)pow(10.0, -6.0 * (double)j / (double)(n - 1));
        a.data[i * n + 1] = a.data[i * n] + 1e-6f * a.data[i * n + 1];
    }
    float *q = malloc(m * n * sizeof *q), *r = malloc(n * n * sizeof *r);
    memcpy(q, a.data, m * n * sizeof *q);
    mpoc_workspace *ws;
    NT_ASSERT_OK(mpoc_workspace_new(&ws));
    NT_ASSERT_OK(mpoc_la_qr(q, m, n, n, r, ws));
    double res = qr_residual(q, r, a.data, m, n);
    printf("ill-conditioned %zu x %zu: |QR - A|/|A| %.3g, |QtQ - I| %.3g\n", m, n, res,
           qr_orth_error(q, m, n));
    assert_true(res < 1e-6);
    assert_true(qr_orth_error(q, m, n) < 1e-6);
    mpoc_workspace_free(ws);
    free(q);
    free(r);
    mpoc_mat_free(&a);
}

static void test_slim_qr(void **state)
{
    (void)state;
    const size_t m = 4096, n = 48;
    mpoc_mat a = nt_gaussian(m, n, 31);
    for (size_t i = 0; i < m; i++) /* columns graded over 1.5 decades */
        for (size_t j = 0; j < n; j++)
            a.data[i * n + j] *= (float)pow(0.93, (double)j);
    float *q = malloc(m * n * sizeof *q), *r = malloc(n * n * sizeof *r);
    memcpy(q, a.data, m * n * sizeof *q);
    mpoc_workspace *ws;
    NT_ASSERT_OK(mpoc_workspace_new(&ws));
    NT_ASSERT_OK(mpoc_la_qr(q, m, n, n, r, ws));
    assert_true(qr_orth_error(q, m, n) < 5e-7);
    double d = 0, s = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double v = 0;
            for (size_t p = 0; p <= j; p++)
                v += (double)q[i * n + p] * r[p * n + j];
            d += (v - a.data[i * n + j]) * (v - a.data[i * n + j]);
            s += (double)a.data[i * n + j] * a.data[i * n + j];
        }
    assert_true(sqrt(d / s) < 5e-7);
    mpoc_workspace_free(ws);
    free(q);
    free(r);
    mpoc_mat_free(&a);
}

/* A panel already orthonormal to ~1e-6: one float-Gram pass would leave
 * QᵀQ − I at ~2.7e-7 here (measured); the pass in double that must follow
 * brings it to ~1.1e-7. */
static void test_slim_qr_nearly_orthonormal(void **state)
{
    (void)state;
    const size_t m = 16384, n = 64;
    mpoc_mat a = nt_gaussian(m, n, 33);
    float *q = malloc(m * n * sizeof *q);
    memcpy(q, a.data, m * n * sizeof *q);
    mpoc_workspace *ws;
    NT_ASSERT_OK(mpoc_workspace_new(&ws));
    NT_ASSERT_OK(mpoc_la_qr(q, m, n, n, NULL, ws));
    for (size_t i = 0; i < m * n; i++)
        q[i] += 1e-7f / 128.0f * a.data[i]; /* a.data columns have norm ~128 */
    double before = qr_orth_error(q, m, n);
    NT_ASSERT_OK(mpoc_la_qr(q, m, n, n, NULL, ws));
    double after = qr_orth_error(q, m, n);
    printf("nearly orthonormal %zu x %zu: |QtQ - I| %.3g before, %.3g after\n", m, n, before, after);
    assert_true(after < 2e-7);
    mpoc_workspace_free(ws);
    free(q);
    mpoc_mat_free(&a);
}

/* mpoc_quant_mpo_multi gives, bit for bit, what one mpoc_quant_mpo call per
 * setting gives (feedback and independent mixed; padded shapes; 2–4 sites),
 * and its error (measured from the feedback sweep's own contraction) is
 * mpoc_mpo_rel_error of the stored cores. */
static void test_multi_equals_single(void **state)
{
    (void)state;
    mpoc_mat w = nt_power(127, 211, 1.0, 17); /* primes: padded at every sites value */
    mpoc_mat_view v = mpoc_mat_view_of(&w);
    const mpoc_quant_options opts[] = {
        {MPOC_QUANT_Q8_0, MPOC_QUANT_F16, false}, {MPOC_QUANT_Q4_0, MPOC_QUANT_F16, false},
        {MPOC_QUANT_F16, MPOC_QUANT_Q8_0, false}, {MPOC_QUANT_Q4_0, MPOC_QUANT_F16, true},
        {MPOC_QUANT_F32, MPOC_QUANT_F32, false}};
    const size_t n = sizeof opts / sizeof opts[0];
    bool padded = false;
    for (size_t sites = 2; sites <= 4; sites++) {
        mpoc_mpo_options o = mpoc_mpo_options_default();
        o.sites = sites;
        o.svd.trunc.max_rank = 12;
        mpoc_mpo mpo;
        NT_ASSERT_OK(mpoc_mpo_decompose(v, &o, &mpo, NULL));
        padded |= mpo.shape.padded_rows != 127 || mpo.shape.padded_cols != 211;
        if (sites == 4) { /* centred on core 0 (read in place) gives what centring inside gives */
            mpoc_mpo c0;
            mpoc_qmpo a, b;
            mpoc_quant_report ra, rb;
            NT_ASSERT_OK(mpoc_mpo_copy(&c0, &mpo));
            NT_ASSERT_OK(mpoc_mpo_canonicalize(&c0, 0, NULL));
            NT_ASSERT_OK(mpoc_quant_mpo(&mpo, v, &opts[1], NULL, &a, &ra));
            NT_ASSERT_OK(mpoc_quant_mpo(&c0, v, &opts[1], NULL, &b, &rb));
            assert_true(ra.rel_error == rb.rel_error);
            for (size_t k = 0; k < sites; k++)
                assert_memory_equal(a.data[k], b.data[k], a.nbytes[k]);
            mpoc_qmpo_free(&a);
            mpoc_qmpo_free(&b);
            mpoc_mpo_free(&mpo);
            mpo = c0;
        }
        mpoc_qmpo multi[5], one;
        mpoc_quant_report rm[5], r1;
        mpoc_quant_target *tg = NULL; /* W prepared once: the sweep's way */
        if (sites != 3)
            NT_ASSERT_OK(mpoc_quant_target_new(v, &mpo.shape, &tg));
        NT_ASSERT_OK(mpoc_quant_mpo_multi(&mpo, v, tg, opts, n, NULL, multi, rm));
        for (size_t i = 0; i < n; i++) {
            NT_ASSERT_OK(mpoc_quant_mpo(&mpo, v, &opts[i], NULL, &one, &r1));
            assert_true(rm[i].rel_error == r1.rel_error);
            assert_int_equal(rm[i].bytes, r1.bytes);
            for (size_t k = 0; k < sites; k++) {
                assert_int_equal(multi[i].nbytes[k], one.nbytes[k]);
                assert_memory_equal(multi[i].data[k], one.data[k], one.nbytes[k]);
                assert_true(rm[i].core_rel_error[k] == r1.core_rel_error[k]);
            }
            double check;
            NT_ASSERT_OK(mpoc_mpo_rel_error(&multi[i].mpo, v, NULL, &check));
            if (fabs(check - rm[i].rel_error) > 1e-6 * check)
                fail_msg("%zu sites, setting %zu: reported %.9g, measured %.9g", sites, i,
                         rm[i].rel_error, check);
            mpoc_qmpo_free(&one);
            mpoc_qmpo_free(&multi[i]);
        }
        tl_reset();
        assert_int_equal(mpoc_quant_mpo_multi(&mpo, v, tg, opts, 2, NULL, multi, NULL), MPOC_E_INVAL);
        if (tg) { /* a target prepared for another shape is refused */
            mpoc_shape other;
            NT_ASSERT_OK(mpoc_shape_choose(127, 211, sites == 2 ? 3 : 2, MPOC_PAD_AUTO, &other));
            mpoc_quant_target_free(tg);
            NT_ASSERT_OK(mpoc_quant_target_new(v, &other, &tg));
            assert_int_equal(mpoc_quant_mpo_multi(&mpo, v, tg, opts, 1, NULL, multi, rm), MPOC_E_SHAPE);
            mpoc_quant_target_free(tg);
        }
        mpoc_mpo_free(&mpo);
    }
    assert_true(padded); /* the cropped error was exercised */
    mpoc_mat_free(&w);
}

int main(void)
{
    tl_install();
    mpoc_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_ceilings),
        cmocka_unit_test(test_zero_block_and_nan),
        cmocka_unit_test(test_feedback_beats_independent),
        cmocka_unit_test(test_exact_storage_keeps_truncation),
        cmocka_unit_test(test_first_order_predictor),
        cmocka_unit_test(test_spd_inverse_and_gram),
        cmocka_unit_test(test_slim_qr),
        cmocka_unit_test(test_slim_qr_ill_conditioned),
        cmocka_unit_test(test_slim_qr_nearly_orthonormal),
        cmocka_unit_test(test_multi_equals_single),
    };
    return cmocka_run_group_tests_name("quant", tests, NULL, NULL);
}
