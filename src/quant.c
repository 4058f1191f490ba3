/* quant.c: storage precision of MPO cores and quantization with error
 * feedback (see mpoc_quant.h and docs/format.md §6). Numeric layer: uses the
 * dtype codecs and the BLAS adapter, never I/O. */
#include "mpoc_quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "linalg.h"
#include "mpo_internal.h"
#include "util.h"

static const char *const quant_names[MPOC_QUANT_COUNT_] = {"f32", "f16", "bf16", "q8_0", "q4_0"};
static const mpoc_dtype quant_dtypes[MPOC_QUANT_COUNT_] = {
    MPOC_DTYPE_F32, MPOC_DTYPE_F16, MPOC_DTYPE_BF16, MPOC_DTYPE_Q8_0, MPOC_DTYPE_Q4_0};

const char *mpoc_quant_name(mpoc_quant_type t)
{
    return (unsigned)t < MPOC_QUANT_COUNT_ ? quant_names[t] : "?";
}

mpoc_status mpoc_quant_parse(const char *s, mpoc_quant_type *out)
{
    for (int i = 0; s && i < MPOC_QUANT_COUNT_; i++)
        if (!strcasecmp(s, quant_names[i])) {
            *out = (mpoc_quant_type)i;
            return MPOC_OK;
        }
    MPOC_FAIL(MPOC_E_INVAL, "unknown core type '%s' (f32, f16, bf16, q8_0, q4_0)", s ? s : "");
}

mpoc_dtype mpoc_quant_dtype(mpoc_quant_type t)
{
    return (unsigned)t < MPOC_QUANT_COUNT_ ? quant_dtypes[t] : MPOC_DTYPE_COUNT_;
}

mpoc_status mpoc_quant_from_dtype(mpoc_dtype d, mpoc_quant_type *out)
{
    for (int i = 0; i < MPOC_QUANT_COUNT_; i++)
        if (quant_dtypes[i] == d) {
            *out = (mpoc_quant_type)i;
            return MPOC_OK;
        }
    MPOC_FAIL(MPOC_E_UNSUPPORTED, "dtype %s is not a core storage type", mpoc_dtype_name(d));
}

static bool is_block(mpoc_quant_type t)
{
    return t == MPOC_QUANT_Q8_0 || t == MPOC_QUANT_Q4_0;
}

mpoc_status mpoc_quant_padded(mpoc_quant_type t, size_t n, size_t *out)
{
    if ((unsigned)t >= MPOC_QUANT_COUNT_)
        MPOC_FAIL(MPOC_E_INVAL, "invalid core type %d", (int)t);
    uint64_t p;
    if (!is_block(t)) {
        *out = n;
        return MPOC_OK;
    }
    if (!mpoc_round_up_u64(n, MPOC_QUANT_BLOCK, &p) || p > SIZE_MAX)
        return MPOC_E_OVERFLOW;
    *out = (size_t)p;
    return MPOC_OK;
}

mpoc_status mpoc_quant_nbytes(mpoc_quant_type t, size_t n, size_t *bytes)
{
    size_t p;
    uint64_t b;
    MPOC_TRY(mpoc_quant_padded(t, n, &p));
    MPOC_TRY(mpoc_dtype_nbytes(quant_dtypes[t], p, &b));
    if (b > SIZE_MAX)
        return MPOC_E_OVERFLOW;
    *bytes = (size_t)b;
    return MPOC_OK;
}

mpoc_status mpoc_quant_encode(mpoc_quant_type t, const float *src, size_t n, void *dst)
{
    size_t p;
    MPOC_TRY(mpoc_quant_padded(t, n, &p));
    for (size_t i = 0; i < n; i++)
        if (!isfinite(src[i]))
            MPOC_FAIL(MPOC_E_NUMERIC, "core value %zu is not finite", i);
    if (p == n)
        return mpoc_dtype_from_f32(quant_dtypes[t], src, n, dst);
    float *tmp = mpoc_calloc_array(p, sizeof(float));
    if (!tmp)
        return MPOC_E_NOMEM;
    memcpy(tmp, src, n * sizeof(float));
    mpoc_status st = mpoc_dtype_from_f32(quant_dtypes[t], tmp, p, dst);
    free(tmp);
    return st;
}

mpoc_status mpoc_quant_decode(mpoc_quant_type t, const void *src, size_t n, float *dst)
{
    size_t p;
    MPOC_TRY(mpoc_quant_padded(t, n, &p));
    if (p == n)
        return mpoc_dtype_to_f32(quant_dtypes[t], src, n, dst);
    float *tmp = mpoc_alloc_array(p, sizeof(float));
    if (!tmp)
        return MPOC_E_NOMEM;
    mpoc_status st = mpoc_dtype_to_f32(quant_dtypes[t], src, p, tmp);
    if (st == MPOC_OK)
        memcpy(dst, tmp, n * sizeof(float));
    free(tmp);
    return st;
}

mpoc_quant_options mpoc_quant_options_default(void)
{
    mpoc_quant_options o = {MPOC_QUANT_Q8_0, MPOC_QUANT_F16, false};
    return o;
}

void mpoc_qmpo_free(mpoc_qmpo *q)
{
    if (!q)
        return;
    mpoc_mpo_free(&q->mpo);
    for (size_t k = 0; k < MPOC_MAX_SITES; k++)
        free(q->data[k]);
    memset(q, 0, sizeof *q);
}

size_t mpoc_qmpo_bytes(const mpoc_qmpo *q)
{
    size_t b = 0;
    for (size_t k = 0; k < q->mpo.shape.sites; k++)
        b += q->nbytes[k];
    return b;
}

/* ------------------------------------------------------------ one core */

static size_t site_size(const mpoc_shape *s, size_t k)
{
    return s->row_dims[k] * s->col_dims[k];
}

/* Store `core` (n floats) as type t in q's slot k: bytes, and the decoded
 * values written back over `core`. *eta gets ‖Δ‖/‖core‖. */
static mpoc_status store_core(mpoc_qmpo *q, size_t k, mpoc_quant_type t, float *core, size_t n,
                              double *eta)
{
    size_t nb;
    MPOC_TRY(mpoc_quant_nbytes(t, n, &nb));
    uint8_t *bytes = malloc(nb ? nb : 1);
    if (!bytes)
        return MPOC_E_NOMEM;
    mpoc_status st = mpoc_quant_encode(t, core, n, bytes);
    float *deq = st == MPOC_OK ? mpoc_alloc_array(n, sizeof(float)) : NULL;
    if (st == MPOC_OK && !deq)
        st = MPOC_E_NOMEM;
    if (st == MPOC_OK)
        st = mpoc_quant_decode(t, bytes, n, deq);
    if (st != MPOC_OK) {
        free(bytes);
        free(deq);
        return st;
    }
    double d2 = 0.0, n2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)core[i] - (double)deq[i];
        d2 += d * d;
        n2 += (double)core[i] * (double)core[i];
    }
    *eta = n2 > 0.0 ? sqrt(d2 / n2) : 0.0;
    memcpy(core, deq, n * sizeof(float));
    free(deq);
    free(q->data[k]);
    q->data[k] = bytes;
    q->nbytes[k] = nb;
    q->types[k] = t;
    return MPOC_OK;
}

mpoc_status mpoc_qmpo_from_stored(const mpoc_shape *shape, const size_t *ranks,
                                  const mpoc_quant_type *types, const uint8_t *const *data,
                                  const size_t *nbytes, mpoc_qmpo *out)
{
    memset(out, 0, sizeof *out);
    if (shape->sites == 0 || shape->sites > MPOC_MAX_SITES || ranks[0] != 1 ||
        ranks[shape->sites] != 1)
        MPOC_FAIL(MPOC_E_SHAPE, "quantized MPO: bad sites or boundary ranks");
    out->mpo.shape = *shape;
    memcpy(out->mpo.ranks, ranks, (shape->sites + 1) * sizeof *ranks);
    out->mpo.centre = MPOC_NO_CENTRE;
    mpoc_status st = MPOC_OK;
    for (size_t k = 0; st == MPOC_OK && k < shape->sites; k++) {
        size_t n = 0, nb;
        bool ok = ranks[k] > 0 && ranks[k + 1] > 0 && mpoc_mul_size(ranks[k], site_size(shape, k), &n) &&
                  mpoc_mul_size(n, ranks[k + 1], &n);
        if (!ok) {
            st = MPOC_E_OVERFLOW;
            break;
        }
        st = mpoc_quant_nbytes(types[k], n, &nb);
        if (st == MPOC_OK && nb != nbytes[k]) {
            mpoc_log_("core %zu: %zu bytes stored where %s of %zu values needs %zu", k, nbytes[k],
                      mpoc_quant_name(types[k]), n, nb);
            st = MPOC_E_FORMAT;
        }
        if (st != MPOC_OK)
            break;
        out->mpo.cores[k] = mpoc_alloc_array(n, sizeof(float));
        out->data[k] = malloc(nb ? nb : 1);
        if (!out->mpo.cores[k] || !out->data[k]) {
            st = MPOC_E_NOMEM;
            break;
        }
        memcpy(out->data[k], data[k], nb);
        out->nbytes[k] = nb;
        out->types[k] = types[k];
        st = mpoc_quant_decode(types[k], data[k], n, out->mpo.cores[k]);
    }
    if (st != MPOC_OK)
        mpoc_qmpo_free(out);
    return st;
}

/* ------------------------------------------------------- error feedback */

/* Z ((r_k s_k) × r_{k+1}) = Y contracted from the right with cores
 * k+1..d−1 of mpo (Y: r_k × s_k × … × s_{d−1}, C order). */
static mpoc_status right_contract(const mpoc_mpo *mpo, size_t k, const float *y, size_t y_len,
                                  float **z_out)
{
    const mpoc_shape *s = &mpo->shape;
    size_t d = s->sites, len = y_len;
    float *cur = NULL;
    const float *in = y;
    for (size_t l = d - 1; l > k; l--) {
        size_t sl = site_size(s, l), r_r = mpo->ranks[l + 1], r_l = mpo->ranks[l];
        size_t cols = sl * r_r, rows = len / cols, n_out;
        if (!mpoc_mul_size(rows, r_l, &n_out)) {
            free(cur);
            return MPOC_E_OVERFLOW;
        }
        float *next = mpoc_alloc_array(n_out, sizeof(float));
        if (!next) {
            free(cur);
            return MPOC_E_NOMEM;
        }
        mpoc_status st = mpoc_la_gemm(false, true, rows, r_l, cols, 1.0f, in, cols, mpo->cores[l],
                                      cols, 0.0f, next, r_l);
        free(cur);
        if (st != MPOC_OK) {
            free(next);
            return st;
        }
        cur = next;
        in = cur;
        len = n_out;
    }
    if (!cur) { /* k = d − 1: Z is Y itself */
        cur = mpoc_alloc_array(len, sizeof(float));
        if (!cur)
            return MPOC_E_NOMEM;
        memcpy(cur, y, len * sizeof(float));
    }
    *z_out = cur;
    return MPOC_OK;
}

/* G ← M⁻¹·G on the left bond index: G is r × c (row-major), M r × r SPD.
 * M⁻¹ is formed in double from the Cholesky factor (M is the Gram matrix of
 * a nearly orthonormal left environment, so well conditioned; a tiny
 * relative ridge keeps a rank-deficient one, e.g. from an all-zero block of
 * W, finite), then applied with one gemm. O(r³ + r²c). */
static mpoc_status solve_gram(const float *m, size_t r, float *g, size_t c)
{
    size_t rr, rc;
    if (!mpoc_mul_size(r, r, &rr) || !mpoc_mul_size(r, c, &rc))
        return MPOC_E_OVERFLOW;
    double *l = mpoc_calloc_array(rr, sizeof(double));
    double *li = mpoc_calloc_array(rr, sizeof(double));
    float *inv = mpoc_alloc_array(rr, sizeof(float));
    float *tmp = mpoc_alloc_array(rc, sizeof(float));
    mpoc_status st = (l && li && inv && tmp) ? MPOC_OK : MPOC_E_NOMEM;
    if (st == MPOC_OK) {
        double trace = 0.0;
        for (size_t i = 0; i < r; i++)
            trace += (double)m[i * r + i];
        double ridge = trace > 0.0 ? 1e-10 * trace / (double)r : 1e-30;
        for (size_t i = 0; i < r; i++) /* M = L Lᵀ */
            for (size_t j = 0; j <= i; j++) {
                double v = 0.5 * ((double)m[i * r + j] + (double)m[j * r + i]) + (i == j ? ridge : 0.0);
                for (size_t p = 0; p < j; p++)
                    v -= l[i * r + p] * l[j * r + p];
                l[i * r + j] = i == j ? sqrt(v > ridge ? v : ridge) : v / l[j * r + j];
            }
        for (size_t j = 0; j < r; j++) /* L⁻¹, lower triangular, column by column */
            for (size_t i = j; i < r; i++) {
                double v = i == j ? 1.0 : 0.0;
                for (size_t p = j; p < i; p++)
                    v -= l[i * r + p] * li[p * r + j];
                li[i * r + j] = v / l[i * r + i];
            }
        for (size_t i = 0; i < r; i++) /* M⁻¹ = L⁻ᵀ L⁻¹ */
            for (size_t j = 0; j <= i; j++) {
                double v = 0.0;
                for (size_t p = i; p < r; p++)
                    v += li[p * r + i] * li[p * r + j];
                inv[i * r + j] = inv[j * r + i] = (float)v;
            }
        memcpy(tmp, g, rc * sizeof(float));
        st = mpoc_la_gemm(false, false, r, c, r, 1.0f, inv, r, tmp, c, 0.0f, g, c);
    }
    free(l);
    free(li);
    free(inv);
    free(tmp);
    return st;
}

/* State of the left-to-right sweep: Y = Lᵀ·T (r_k × rest) and the Gram
 * matrix M = LᵀL (r_k × r_k) of the quantized left environment L. */
typedef struct fb_state {
    float *y;
    size_t y_len;
    float *m;
} fb_state;

/* Fold the stored core k (r × s × r') into Y and M. */
static mpoc_status fb_advance(fb_state *f, const mpoc_mpo *q, size_t k)
{
    size_t r = q->ranks[k], r2 = q->ranks[k + 1], rs = r * site_size(&q->shape, k);
    size_t rest = f->y_len / rs;
    const float *g = q->cores[k];
    float *y2 = mpoc_alloc_array(r2 * rest, sizeof(float));
    float *tmp = mpoc_alloc_array(rs * r2, sizeof(float));
    float *m2 = mpoc_alloc_array(r2 * r2, sizeof(float));
    mpoc_status st = (y2 && tmp && m2) ? MPOC_OK : MPOC_E_NOMEM;
    if (st == MPOC_OK) /* Y' = Gᵀ Y: (rs × r2)ᵀ (rs × rest) */
        st = mpoc_la_gemm(true, false, r2, rest, rs, 1.0f, g, r2, f->y, rest, 0.0f, y2, rest);
    if (st == MPOC_OK) /* tmp = M · G as r × (s r2) */
        st = mpoc_la_gemm(false, false, r, rs / r * r2, r, 1.0f, f->m, r, g, rs / r * r2, 0.0f,
                          tmp, rs / r * r2);
    if (st == MPOC_OK) /* M' = Gᵀ tmp, both as rs × r2 */
        st = mpoc_la_gemm(true, false, r2, r2, rs, 1.0f, g, r2, tmp, r2, 0.0f, m2, r2);
    free(tmp);
    if (st != MPOC_OK) {
        free(y2);
        free(m2);
        return st;
    }
    free(f->y);
    free(f->m);
    f->y = y2;
    f->y_len = r2 * rest;
    f->m = m2;
    return MPOC_OK;
}

/* Core k re-fitted: G = M⁻¹ (Lᵀ T Rᵀ), then (k < d−1) its orthonormal
 * factor Q of G = QR, the R being absorbed by the next re-fit. */
static mpoc_status fb_refit(const fb_state *f, const mpoc_mpo *ref, size_t k, float *core,
                            mpoc_workspace *ws)
{
    size_t d = ref->shape.sites, r = ref->ranks[k], r2 = ref->ranks[k + 1];
    size_t rs = r * site_size(&ref->shape, k);
    float *z;
    MPOC_TRY(right_contract(ref, k, f->y, f->y_len, &z));
    mpoc_status st = solve_gram(f->m, r, z, rs / r * r2);
    if (st == MPOC_OK && k + 1 < d && rs >= r2)
        st = mpoc_la_qr(z, rs, r2, r2, NULL, ws);
    if (st == MPOC_OK)
        memcpy(core, z, rs * r2 * sizeof(float));
    free(z);
    return st;
}

static mpoc_status check_target(const mpoc_mpo *mpo, mpoc_mat_view w)
{
    if (!mpo || mpo->shape.sites == 0 || mpo->shape.sites > MPOC_MAX_SITES)
        MPOC_FAIL(MPOC_E_INVAL, "quantize: invalid MPO");
    if (w.rows != mpo->shape.rows || w.cols != mpo->shape.cols || !w.data)
        MPOC_FAIL(MPOC_E_SHAPE, "quantize: target is %zu x %zu but the MPO is %zu x %zu", w.rows,
                  w.cols, mpo->shape.rows, mpo->shape.cols);
    for (size_t k = 0; k < mpo->shape.sites; k++)
        if (!mpo->cores[k])
            MPOC_FAIL(MPOC_E_INVAL, "quantize: core %zu missing", k);
    return MPOC_OK;
}

static mpoc_status quant_feedback(mpoc_qmpo *q, mpoc_mat_view w, const mpoc_quant_options *opt,
                                  mpoc_workspace *ws, mpoc_quant_report *rep)
{
    mpoc_mpo *m = &q->mpo;
    size_t d = m->shape.sites;
    /* cores 1..d−1 right-orthonormal: the right environment of every re-fit */
    MPOC_TRY(mpoc_mpo_canonicalize(m, 0, ws));
    fb_state f = {0};
    mpoc_status st = mpoc_mpo_permuted_copy(w, &m->shape, &f.y);
    f.y_len = m->shape.padded_rows * m->shape.padded_cols;
    f.m = mpoc_alloc_array(1, sizeof(float));
    if (st == MPOC_OK && !f.m)
        st = MPOC_E_NOMEM;
    if (f.m)
        f.m[0] = 1.0f;
    for (size_t k = 0; st == MPOC_OK && k < d; k++) {
        st = fb_refit(&f, m, k, m->cores[k], ws);
        if (st == MPOC_OK)
            st = store_core(q, k, k + 1 < d ? opt->core : opt->centre, m->cores[k],
                            mpoc_mpo_core_size(m, k), &rep->core_rel_error[k]);
        if (st == MPOC_OK && k + 1 < d)
            st = fb_advance(&f, m, k);
    }
    free(f.y);
    free(f.m);
    return st;
}

static mpoc_status quant_independent(mpoc_qmpo *q, const mpoc_quant_options *opt,
                                     mpoc_workspace *ws, mpoc_quant_report *rep)
{
    mpoc_mpo *m = &q->mpo;
    size_t d = m->shape.sites;
    MPOC_TRY(mpoc_mpo_canonicalize(m, d - 1, ws));
    for (size_t k = 0; k < d; k++)
        MPOC_TRY(store_core(q, k, k + 1 < d ? opt->core : opt->centre, m->cores[k],
                            mpoc_mpo_core_size(m, k), &rep->core_rel_error[k]));
    return MPOC_OK;
}

mpoc_status mpoc_quant_mpo(const mpoc_mpo *mpo, mpoc_mat_view w, const mpoc_quant_options *opt,
                           mpoc_workspace *ws, mpoc_qmpo *out, mpoc_quant_report *rep)
{
    memset(out, 0, sizeof *out);
    mpoc_quant_report local;
    if (!rep)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    rep->rel_error = NAN;
    MPOC_TRY(check_target(mpo, w));
    if ((unsigned)opt->core >= MPOC_QUANT_COUNT_ || (unsigned)opt->centre >= MPOC_QUANT_COUNT_)
        MPOC_FAIL(MPOC_E_INVAL, "quantize: invalid core type");
    mpoc_workspace *owned = NULL;
    if (!ws) {
        MPOC_TRY(mpoc_workspace_new(&owned));
        ws = owned;
    }
    mpoc_status st = mpoc_mpo_copy(&out->mpo, mpo);
    if (st == MPOC_OK)
        st = opt->no_feedback ? quant_independent(out, opt, ws, rep)
                                      : quant_feedback(out, w, opt, ws, rep);
    if (st == MPOC_OK) {
        out->mpo.centre = MPOC_NO_CENTRE; /* quantization broke the gauge */
        for (size_t k = 0; k + 1 < out->mpo.shape.sites; k++) {
            free(out->mpo.spectra[k]); /* stale */
            out->mpo.spectra[k] = NULL;
        }
        rep->bytes = mpoc_qmpo_bytes(out);
        st = mpoc_mpo_rel_error(&out->mpo, w, ws, &rep->rel_error);
    }
    if (st != MPOC_OK)
        mpoc_qmpo_free(out);
    mpoc_workspace_free(owned);
    return st;
}
