/* synth.c: matrices with controlled spectra (see mpoc_synth.h).
 * Haar-random singular vectors come from the QR of a Gaussian matrix. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "linalg.h"
#include "mpoc_svd.h"
#include "mpoc_synth.h"
#include "rng.h"
#include "util.h"

static const char *const spectrum_names[] = {"gaussian", "power", "lowrank", "llm"};

const char *mpoc_spectrum_name(mpoc_spectrum k)
{
    return (unsigned)k < 4 ? spectrum_names[k] : "?";
}

mpoc_status mpoc_spectrum_parse(const char *s, mpoc_spectrum *out)
{
    for (unsigned i = 0; i < 4; i++)
        if (s && !strcasecmp(s, spectrum_names[i])) {
            *out = (mpoc_spectrum)i;
            return MPOC_OK;
        }
    MPOC_FAIL(MPOC_E_INVAL, "unknown spectrum '%s' (gaussian, power, lowrank or llm)", s ? s : "");
}

mpoc_synth_spec mpoc_synth_default(mpoc_spectrum kind)
{
    mpoc_synth_spec s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.decay = 0.5;
    s.rank = 32;
    s.noise = 0.05;
    s.nu = 4.0;
    s.outlier_cols = 0; /* 0 = 1% of the columns, at least 1 */
    s.outlier_scale = 8.0;
    s.rms = 0.02;
    return s;
}

/* n × k with orthonormal columns (k ≤ n), Haar distributed. */
static mpoc_status random_orthonormal(size_t n, size_t k, uint64_t seed, uint64_t stream, float **out,
                                      struct mpoc_workspace *ws)
{
    float *q = mpoc_alloc_array(n * k, sizeof(float));
    if (!q)
        return MPOC_E_NOMEM;
    mpoc_status st = mpoc_rng_gaussian(seed, stream, q, n * k, 1);
    if (st == MPOC_OK)
        st = mpoc_la_qr(q, n, k, k, NULL, ws);
    if (st != MPOC_OK) {
        free(q);
        return st;
    }
    *out = q;
    return MPOC_OK;
}

/* out = U·diag(σ)·Vᵀ with σ_i = (i+1)^−decay for i < k. */
static mpoc_status power_law(size_t m, size_t n, size_t k, double decay, uint64_t seed, float *out)
{
    mpoc_workspace *ws;
    MPOC_TRY(mpoc_workspace_new(&ws));
    float *u = NULL, *v = NULL;
    mpoc_status st = random_orthonormal(m, k, seed, 1, &u, ws);
    if (st == MPOC_OK)
        st = random_orthonormal(n, k, seed, 2, &v, ws);
    float *sigma = st == MPOC_OK ? mpoc_alloc_array(k, sizeof(float)) : NULL;
    if (st == MPOC_OK && !sigma)
        st = MPOC_E_NOMEM;
    if (st == MPOC_OK) {
        for (size_t j = 0; j < k; j++)
            sigma[j] = (float)pow((double)(j + 1), -decay);
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < k; j++)
                u[i * k + j] *= sigma[j];
        st = mpoc_la_gemm(false, true, m, n, k, 1.0f, u, k, v, k, 0.0f, out, n);
    }
    free(sigma);
    free(u);
    free(v);
    mpoc_workspace_free(ws);
    return st;
}

static double rms_of(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * (double)x[i];
    return sqrt(s / (double)n);
}

/* x += level·rms(x)·noise, noise Gaussian or Student-t (nu > 0). */
static mpoc_status add_noise(float *x, size_t n, double level, double nu, uint64_t seed)
{
    float *e = mpoc_alloc_array(n, sizeof(float));
    if (!e)
        return MPOC_E_NOMEM;
    mpoc_status st = nu > 0.0 ? mpoc_rng_student_t(seed, 3, nu, e, n) : mpoc_rng_gaussian(seed, 3, e, n, 1);
    double scale = level * rms_of(x, n) / (nu > 2.0 ? sqrt(nu / (nu - 2.0)) : 1.0);
    for (size_t i = 0; st == MPOC_OK && i < n; i++)
        x[i] += (float)(scale * (double)e[i]);
    free(e);
    return st;
}

static mpoc_status check_spec(const mpoc_synth_spec *s)
{
    if ((unsigned)s->kind > MPOC_SPECTRUM_LLM)
        MPOC_FAIL(MPOC_E_INVAL, "unknown spectrum kind %d", (int)s->kind);
    if (!isfinite(s->decay) || s->decay < 0.0 || !isfinite(s->noise) || s->noise < 0.0 ||
        !isfinite(s->rms) || s->rms < 0.0 || !isfinite(s->outlier_scale) || s->outlier_scale <= 0.0)
        MPOC_FAIL(MPOC_E_INVAL, "spectrum parameters must be finite and non-negative");
    if (s->kind == MPOC_SPECTRUM_LLM && !(s->nu > 2.0))
        MPOC_FAIL(MPOC_E_INVAL, "heavy-tailed noise needs nu > 2 (finite variance), got %g", s->nu);
    return MPOC_OK;
}

static mpoc_status fill(size_t m, size_t n, const mpoc_synth_spec *spec, uint64_t seed, float *w)
{
    size_t k = m < n ? m : n;
    switch (spec->kind) {
    case MPOC_SPECTRUM_GAUSSIAN:
        return mpoc_rng_gaussian(seed, 0, w, m * n, 1);
    case MPOC_SPECTRUM_POWER:
        return power_law(m, n, k, spec->decay, seed, w);
    case MPOC_SPECTRUM_LOWRANK:
        MPOC_TRY(power_law(m, n, spec->rank < k ? (spec->rank ? spec->rank : 1) : k, spec->decay, seed, w));
        return add_noise(w, m * n, spec->noise, 0.0, seed);
    case MPOC_SPECTRUM_LLM: {
        MPOC_TRY(power_law(m, n, k, spec->decay, seed, w));
        MPOC_TRY(add_noise(w, m * n, spec->noise, spec->nu, seed));
        size_t outliers = spec->outlier_cols ? spec->outlier_cols : (n + 99) / 100;
        for (size_t c = 0; c < outliers && c < n; c++) {
            size_t col = (size_t)((c * 2654435761u + seed) % n); /* spread, deterministic */
            for (size_t i = 0; i < m; i++)
                w[i * n + col] *= (float)spec->outlier_scale;
        }
        return MPOC_OK;
    }
    }
    return MPOC_E_INVAL;
}

mpoc_status mpoc_synth_matrix(size_t rows, size_t cols, const mpoc_synth_spec *spec, uint64_t seed,
                              mpoc_mat *out)
{
    memset(out, 0, sizeof *out);
    MPOC_TRY(check_spec(spec));
    MPOC_TRY(mpoc_mat_alloc(out, rows, cols));
    mpoc_status st = fill(rows, cols, spec, seed, out->data);
    if (st == MPOC_OK && spec->rms > 0.0) {
        double r = rms_of(out->data, rows * cols);
        float f = r > 0.0 ? (float)(spec->rms / r) : 1.0f;
        for (size_t i = 0; i < rows * cols; i++)
            out->data[i] *= f;
    }
    if (st != MPOC_OK)
        mpoc_mat_free(out);
    return st;
}
