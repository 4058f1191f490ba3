/* sweep.c: the sweep engine over one matrix (mpoc_sweep.h): factorize once
 * per sites value, round down and quantize per setting, baselines at the
 * same bytes, best-at-size marking and totals. Numeric layer: no model I/O
 * (src/sweep_model.c joins it to the model readers). */
#include "mpoc_sweep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "linalg.h"
#include "mpo_internal.h"
#include "util.h"

static const char *const method_names[MPOC_SWEEP_METHOD_COUNT_] = {"mpo", "svd", "q8_0", "q4_0"};

const char *mpoc_sweep_method_name(mpoc_sweep_method m)
{
    return (unsigned)m < MPOC_SWEEP_METHOD_COUNT_ ? method_names[m] : "?";
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

mpoc_sweep_options mpoc_sweep_options_default(void)
{
    mpoc_sweep_options o;
    memset(&o, 0, sizeof o);
    o.centre = MPOC_QUANT_F16;
    o.svd = mpoc_svd_options_default();
    o.svd.seed = 1; /* as mpoc_compress_options_default */
    o.pad = MPOC_PAD_AUTO;
    o.baselines = true;
    o.layout = MPOC_SWEEP_LAYOUT_GGML;
    return o;
}

static size_t at_least_1(size_t n)
{
    return n ? n : 1;
}

size_t mpoc_sweep_setting_count(const mpoc_sweep_options *opt)
{
    return at_least_1(opt->n_sites) * at_least_1(opt->n_chi) * at_least_1(opt->n_eps) *
           at_least_1(opt->n_quant);
}

mpoc_sweep_setting mpoc_sweep_setting_at(const mpoc_sweep_options *opt, size_t s)
{
    mpoc_sweep_setting r;
    size_t nq = at_least_1(opt->n_quant), ne = at_least_1(opt->n_eps), nc = at_least_1(opt->n_chi);
    r.quant = opt->n_quant ? opt->quant[s % nq] : MPOC_QUANT_Q8_0;
    s /= nq;
    r.eps = opt->n_eps ? opt->eps[s % ne] : 0.0;
    s /= ne;
    r.chi = opt->n_chi ? opt->chi[s % nc] : 0;
    s /= nc;
    r.sites = opt->n_sites ? opt->sites[s] : 0;
    return r;
}

static mpoc_status validate(const mpoc_sweep_options *o)
{
    if ((o->n_chi && !o->chi) || (o->n_eps && !o->eps) || (o->n_quant && !o->quant) ||
        (o->n_sites && !o->sites))
        MPOC_FAIL(MPOC_E_INVAL, "sweep: a list has a count but no values");
    if (o->n_sites > MPOC_MAX_SITES + 1 || o->n_chi > 4096 || o->n_eps > 4096 || o->n_quant > 64)
        MPOC_FAIL(MPOC_E_INVAL, "sweep: too many values in a list (sites ≤ %d, χ and ε ≤ 4096)",
                  MPOC_MAX_SITES + 1);
    for (size_t i = 0; i < o->n_eps; i++)
        if (!(o->eps[i] >= 0.0 && o->eps[i] < 1.0))
            MPOC_FAIL(MPOC_E_INVAL, "sweep: ε = %g is not in [0, 1)", o->eps[i]);
    for (size_t i = 0; i < o->n_quant; i++)
        if ((unsigned)o->quant[i] >= MPOC_QUANT_COUNT_)
            MPOC_FAIL(MPOC_E_INVAL, "sweep: invalid core type %d", (int)o->quant[i]);
    for (size_t i = 0; i < o->n_sites; i++)
        if (o->sites[i] > MPOC_MAX_SITES)
            MPOC_FAIL(MPOC_E_INVAL, "sweep: %zu sites (at most %d)", o->sites[i], MPOC_MAX_SITES);
    if ((unsigned)o->centre >= MPOC_QUANT_COUNT_)
        MPOC_FAIL(MPOC_E_INVAL, "sweep: invalid centre type %d", (int)o->centre);
    if (mpoc_sweep_setting_count(o) > 1000000)
        MPOC_FAIL(MPOC_E_INVAL, "sweep: more than a million settings");
    return MPOC_OK;
}

void mpoc_sweep_result_free(mpoc_sweep_result *r)
{
    if (!r)
        return;
    free(r->records);
    memset(r, 0, sizeof *r);
}

static mpoc_status push(mpoc_sweep_result *r, size_t *cap, const mpoc_sweep_record *rec)
{
    if (r->n == *cap) {
        size_t nc = *cap ? 2 * *cap : 16;
        mpoc_sweep_record *p = realloc(r->records, nc * sizeof *p);
        if (!p)
            return MPOC_E_NOMEM;
        r->records = p;
        *cap = nc;
    }
    r->records[r->n++] = *rec;
    return MPOC_OK;
}

/* ------------------------------------------------------------ sizes */

static void finish_sizes(mpoc_sweep_record *r)
{
    r->bits_per_weight = r->elems ? 8.0 * (double)r->bytes / (double)r->elems : (double)NAN;
    r->compression = r->bytes ? (double)r->original_bytes / (double)r->bytes : (double)INFINITY;
}

mpoc_status mpoc_sweep_qmpo_bytes(const mpoc_qmpo *q, mpoc_sweep_layout layout, uint64_t *bytes)
{
    uint64_t total = 0;
    for (size_t k = 0; k < q->mpo.shape.sites; k++) {
        uint64_t b = q->nbytes[k];
        mpoc_quant_type t = q->types[k];
        if (layout == MPOC_SWEEP_LAYOUT_SPLIT && (t == MPOC_QUANT_Q8_0 || t == MPOC_QUANT_Q4_0)) {
            uint64_t n = mpoc_mpo_core_size(&q->mpo, k), blocks = (n + 31) / 32;
            b = (t == MPOC_QUANT_Q8_0 ? n : (n + 1) / 2) + 2 * blocks;
        }
        if (!mpoc_add_u64(total, b, &total))
            MPOC_FAIL(MPOC_E_OVERFLOW, "sweep: stored bytes overflow");
    }
    *bytes = total;
    return MPOC_OK;
}

/* ------------------------------------------------------------ baselines */

mpoc_status mpoc_sweep_block_error(mpoc_mat_view w, mpoc_sweep_method m, double *rel_error,
                                   uint64_t *bytes)
{
    if (m != MPOC_SWEEP_Q8_0 && m != MPOC_SWEEP_Q4_0)
        MPOC_FAIL(MPOC_E_INVAL, "sweep: %s is not a block baseline", mpoc_sweep_method_name(m));
    mpoc_dtype dt = m == MPOC_SWEEP_Q8_0 ? MPOC_DTYPE_Q8_0 : MPOC_DTYPE_Q4_0;
    size_t padded = (w.cols + 31) / 32 * 32, blocks = padded / 32;
    uint64_t row_bytes = (uint64_t)blocks * (m == MPOC_SWEEP_Q8_0 ? 34u : 18u), total;
    if (!mpoc_mul_u64(row_bytes, w.rows, &total))
        MPOC_FAIL(MPOC_E_OVERFLOW, "sweep: %zu x %zu block bytes overflow", w.rows, w.cols);
    float *row = mpoc_alloc_array(2 * padded, sizeof(float));
    uint8_t *enc = malloc((size_t)row_bytes);
    mpoc_status st = row && enc ? MPOC_OK : MPOC_E_NOMEM;
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; st == MPOC_OK && i < w.rows; i++) {
        const float *src = w.data + i * w.ld;
        memset(row, 0, padded * sizeof(float));
        memcpy(row, src, w.cols * sizeof(float));
        st = mpoc_dtype_from_f32(dt, row, padded, enc);
        if (st == MPOC_OK)
            st = mpoc_dtype_to_f32(dt, enc, padded, row + padded);
        for (size_t j = 0; st == MPOC_OK && j < w.cols; j++) {
            double d = (double)src[j] - (double)row[padded + j];
            diff += d * d;
            norm += (double)src[j] * (double)src[j];
        }
    }
    free(row);
    free(enc);
    if (st != MPOC_OK)
        return st;
    *rel_error = norm > 0.0 ? sqrt(diff / norm) : 0.0;
    *bytes = total;
    return MPOC_OK;
}

mpoc_status mpoc_sweep_block_roundtrip(mpoc_mat_view w, mpoc_sweep_method m)
{
    if (m != MPOC_SWEEP_Q8_0 && m != MPOC_SWEEP_Q4_0)
        MPOC_FAIL(MPOC_E_INVAL, "sweep: %s is not a block baseline", mpoc_sweep_method_name(m));
    if (!w.data || w.ld < w.cols)
        MPOC_FAIL(MPOC_E_SHAPE, "sweep: malformed %zu x %zu matrix", w.rows, w.cols);
    mpoc_dtype dt = m == MPOC_SWEEP_Q8_0 ? MPOC_DTYPE_Q8_0 : MPOC_DTYPE_Q4_0;
    size_t padded = (w.cols + 31) / 32 * 32, blocks = padded / 32;
    float *row = mpoc_alloc_array(padded, sizeof(float));
    uint8_t *enc = malloc(blocks * 34);
    mpoc_status st = row && enc ? MPOC_OK : MPOC_E_NOMEM;
    for (size_t i = 0; st == MPOC_OK && i < w.rows; i++) {
        float *dst = w.data + i * w.ld;
        memset(row, 0, padded * sizeof(float));
        memcpy(row, dst, w.cols * sizeof(float));
        st = mpoc_dtype_from_f32(dt, row, padded, enc);
        if (st == MPOC_OK)
            st = mpoc_dtype_to_f32(dt, enc, padded, row);
        if (st == MPOC_OK)
            memcpy(dst, row, w.cols * sizeof(float));
    }
    free(row);
    free(enc);
    return st;
}

/* L = U_r·diag(√σ) and R = diag(√σ)·V_rᵀ rounded through f16. */
static void f16_factors(const mpoc_svd_result *res, size_t r, float *l, float *rt)
{
    size_t m = res->m, n = res->n;
    for (size_t i = 0; i < m; i++)
        for (size_t k = 0; k < r; k++) {
            float v = res->u[i * res->rank + k] * sqrtf(res->s[k]);
            l[i * r + k] = mpoc_f16_to_f32(mpoc_f32_to_f16(v));
        }
    for (size_t k = 0; k < r; k++)
        for (size_t j = 0; j < n; j++) {
            float v = sqrtf(res->s[k]) * res->vt[k * n + j];
            rt[k * n + j] = mpoc_f16_to_f32(mpoc_f32_to_f16(v));
        }
}

mpoc_status mpoc_sweep_svd_error(mpoc_mat_view w, const mpoc_svd_result *res, size_t r,
                                 double *rel_error, double *rel_error_trunc)
{
    if (res->m != w.rows || res->n != w.cols || r > res->rank)
        MPOC_FAIL(MPOC_E_INVAL, "sweep: rank %zu from an SVD of rank %zu (%zu x %zu) for %zu x %zu",
                  r, res->rank, res->m, res->n, w.rows, w.cols);
    double norm = mpoc_mat_norm(w);
    if (r == 0 || norm == 0.0) {
        *rel_error = *rel_error_trunc = norm > 0.0 ? 1.0 : 0.0;
        return MPOC_OK;
    }
    double kept = 0.0;
    for (size_t k = 0; k < r; k++)
        kept += (double)res->s[k] * (double)res->s[k];
    *rel_error_trunc = sqrt(fmax(res->total_sq - kept, 0.0) / res->total_sq);
    size_t m = w.rows, n = w.cols;
    float *l = mpoc_alloc_array(m, r * sizeof(float));
    float *rt = mpoc_alloc_array(r, n * sizeof(float));
    float *d = mpoc_alloc_array(m, n * sizeof(float));
    mpoc_status st = l && rt && d ? MPOC_OK : MPOC_E_NOMEM;
    if (st == MPOC_OK) {
        f16_factors(res, r, l, rt);
        st = mpoc_la_gemm(false, false, m, n, r, 1.0f, l, r, rt, n, 0.0f, d, n);
    }
    if (st == MPOC_OK)
        *rel_error = mpoc_mat_diff_norm(w, mpoc_view_wrap(d, m, n, n)) / norm;
    free(l);
    free(rt);
    free(d);
    return st;
}

/* ------------------------------------------------------------ best at size */

void mpoc_sweep_mark_best(mpoc_sweep_record *recs, size_t n)
{
    uint64_t size = UINT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (recs[i].method == MPOC_SWEEP_MPO)
            size = recs[i].bytes;
    size_t best = n;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].bytes > size || isnan(recs[i].rel_error))
            continue;
        if (best == n || recs[i].rel_error < recs[best].rel_error ||
            (recs[i].rel_error == recs[best].rel_error && recs[i].method < recs[best].method))
            best = i;
    }
    for (size_t i = 0; i < n; i++) {
        recs[i].best = i == best;
        recs[i].best_method = best < n ? recs[best].method : MPOC_SWEEP_MPO;
    }
}

/* ------------------------------------------------------------ one matrix */

typedef struct sweep_ctx {
    mpoc_mat_view w;
    const mpoc_sweep_options *o;
    mpoc_workspace *ws;
    mpoc_sweep_record base;       /* tensor, rows, cols, elems, original bytes */
    double norm;
} sweep_ctx;

/* The loosest truncation of the grid: the parent every setting rounds from. */
static void parent_rules(const mpoc_sweep_options *o, size_t *chi, double *eps)
{
    *chi = 0;
    for (size_t i = 0; i < o->n_chi; i++) {
        if (o->chi[i] == 0) {
            *chi = 0;
            break;
        }
        if (o->chi[i] > *chi)
            *chi = o->chi[i];
    }
    *eps = o->n_eps ? 1.0 : 0.0;
    for (size_t i = 0; i < o->n_eps; i++)
        *eps = fmin(*eps, o->eps[i]);
}

static mpoc_mpo_options mpo_opts(const sweep_ctx *c, size_t sites, size_t chi, double eps)
{
    mpoc_mpo_options m = mpoc_mpo_options_default();
    m.svd = c->o->svd;
    memset(&m.svd.trunc, 0, sizeof m.svd.trunc);
    m.svd.trunc.max_rank = chi;
    m.eps = eps;
    m.sites = sites;
    m.pad = c->o->pad;
    return m;
}

static mpoc_quant_options quant_opts(const sweep_ctx *c, mpoc_quant_type core)
{
    mpoc_quant_options qo = mpoc_quant_options_default();
    qo.core = core;
    qo.centre = c->o->centre;
    qo.no_feedback = c->o->no_feedback;
    return qo;
}

/* The record of setting s from its quantized MPO. */
static mpoc_status fill_record(const sweep_ctx *c, const mpoc_qmpo *q, const mpoc_quant_report *qr,
                               double trunc_err, mpoc_sweep_record *rec)
{
    MPOC_TRY(mpoc_sweep_qmpo_bytes(q, c->o->layout, &rec->bytes));
    rec->method = MPOC_SWEEP_MPO;
    rec->sites = q->mpo.shape.sites;
    rec->n_ranks = rec->sites + 1;
    memcpy(rec->ranks, q->mpo.ranks, rec->n_ranks * sizeof(size_t));
    rec->params = mpoc_mpo_params(&q->mpo);
    rec->rel_error = qr->rel_error;
    rec->rel_error_trunc = trunc_err;
    finish_sizes(rec);
    if (c->o->keep_mpo)
        return c->o->keep_mpo(c->o->keep_user, rec->setting, q);
    return MPOC_OK;
}

static mpoc_status mpo_record(const sweep_ctx *c, const mpoc_mpo *m, double trunc_err,
                              const mpoc_sweep_setting *s, mpoc_sweep_record *rec)
{
    mpoc_quant_options qo = quant_opts(c, s->quant);
    mpoc_qmpo q;
    mpoc_quant_report qr;
    mpoc_status st = mpoc_quant_mpo(m, c->w, &qo, c->ws, &q, &qr);
    if (st == MPOC_OK)
        st = fill_record(c, &q, &qr, trunc_err, rec);
    mpoc_qmpo_free(&q);
    return st;
}

/* One (χ, ε) pair of a sites value: its unquantized MPO, shared by every
 * core type of the grid. */
typedef struct pair_mpo {
    size_t chi;
    double eps;
    mpoc_mpo m;
    double err;      /* measured ‖W − Ŵ‖/‖W‖ */
    double secs;     /* rounding, re-gauging and the error measurement */
} pair_mpo;

/* The parent with bond 0 in its Schmidt basis, for the χ-only pairs: from
 * the SVD U·diag(σ)·Vᵀ of core 0 (the parent is right-canonical, so σ are
 * the bond's Schmidt values), core 0 = U·diag(σ) and core 1 = Vᵀ·core 1 —
 * the same tensor, still right-canonical. Truncating bond 0 to χ, the first
 * thing rounding does, is then a prefix of the two cores (schmidt_prefix),
 * and mpoc_mpo_round is left the SVD of an s₀ × χ core with orthogonal
 * columns instead of the full s₀ × r₁ core plus its χ × r₁ × (s₁ r₂)
 * absorption, for every pair. */
typedef struct schmidt_parent {
    mpoc_mpo m;
    float *sigma; /* the m.ranks[1] Schmidt values of bond 0 */
} schmidt_parent;

static void schmidt_free(schmidt_parent *sp)
{
    mpoc_mpo_free(&sp->m);
    free(sp->sigma);
    memset(sp, 0, sizeof *sp);
}

/* A new MPO with the shape, gauge and bookkeeping of src, ranks[1] = r1 and
 * no cores or spectra yet. */
static void mpo_frame(const mpoc_mpo *src, size_t r1, mpoc_mpo *out)
{
    mpoc_mpo_frame(out, src);
    out->ranks[1] = r1;
}

static mpoc_status schmidt_build(const sweep_ctx *c, const mpoc_mpo *right, schmidt_parent *sp)
{
    memset(sp, 0, sizeof *sp);
    const mpoc_shape *sh = &right->shape;
    size_t s0 = sh->row_dims[0] * sh->col_dims[0], r1 = right->ranks[1];
    size_t rest = sh->row_dims[1] * sh->col_dims[1] * right->ranks[2];
    mpoc_svd_options so = mpoc_svd_options_default();
    so.method = MPOC_SVD_EXACT; /* as mpoc_mpo_round's own SVD of a core */
    mpoc_svd_result svd;
    MPOC_TRY(mpoc_svd_ex(mpoc_view_wrap(right->cores[0], s0, r1, r1), &so, c->ws, &svd));
    size_t k = svd.rank;
    mpo_frame(right, k, &sp->m);
    sp->m.discarded_sq[0] += svd.discarded_sq; /* numerically zero values only */
    mpoc_status st = MPOC_OK;
    for (size_t j = 0; st == MPOC_OK && j < sh->sites; j++) { /* k ≤ r₁: sizes ≤ the parent's */
        size_t n = j == 0 ? s0 * k : j == 1 ? k * rest : mpoc_mpo_core_size(right, j);
        sp->m.cores[j] = mpoc_alloc_array(n, sizeof(float));
        st = sp->m.cores[j] ? MPOC_OK : MPOC_E_NOMEM;
        if (st == MPOC_OK && j >= 2)
            memcpy(sp->m.cores[j], right->cores[j], n * sizeof(float));
    }
    for (size_t i = 0; st == MPOC_OK && i < s0; i++) /* U·diag(σ) */
        for (size_t j = 0; j < k; j++)
            sp->m.cores[0][i * k + j] = svd.u[i * k + j] * svd.s[j];
    if (st == MPOC_OK) /* Vᵀ·core 1 */
        st = mpoc_la_gemm(false, false, k, rest, r1, 1.0f, svd.vt, r1, right->cores[1], rest, 0.0f,
                          sp->m.cores[1], rest);
    sp->sigma = svd.s;
    svd.s = NULL;
    mpoc_svd_result_free(&svd);
    if (st != MPOC_OK)
        schmidt_free(sp);
    return st;
}

/* out = sp truncated at bond 0 to χ: the first χ columns of core 0 and rows
 * of core 1, the dropped Schmidt weight booked as rounding would book it. */
static mpoc_status schmidt_prefix(const schmidt_parent *sp, size_t chi, mpoc_mpo *out)
{
    const mpoc_mpo *m = &sp->m;
    size_t k = m->ranks[1], q = chi < k ? chi : k;
    size_t s0 = m->shape.row_dims[0] * m->shape.col_dims[0];
    size_t rest = m->shape.row_dims[1] * m->shape.col_dims[1] * m->ranks[2];
    mpo_frame(m, q, out);
    for (size_t i = q; i < k; i++)
        out->discarded_sq[0] += (double)sp->sigma[i] * (double)sp->sigma[i];
    for (size_t j = 0; j < m->shape.sites; j++) {
        size_t n = j == 0 ? s0 * q : j == 1 ? q * rest : mpoc_mpo_core_size(m, j);
        out->cores[j] = mpoc_alloc_array(n, sizeof(float));
        if (!out->cores[j]) {
            mpoc_mpo_free(out);
            return MPOC_E_NOMEM;
        }
        if (j >= 1) /* core 1: its first q rows; later cores whole */
            memcpy(out->cores[j], m->cores[j], n * sizeof(float));
    }
    for (size_t i = 0; i < s0; i++)
        memcpy(out->cores[0] + i * q, m->cores[0] + i * k, q * sizeof(float));
    return MPOC_OK;
}

/* Round a copy of `src` (measured error src_err against W) to the rules of p
 * — or, for a χ-only pair with `sp`, its Schmidt prefix. */
static mpoc_status round_pair(const sweep_ctx *c, const mpoc_mpo *src, const schmidt_parent *sp,
                              double src_err, size_t sites, pair_mpo *p)
{
    mpoc_mpo_options mo = mpo_opts(c, sites, p->chi, p->eps);
    if (sp && p->eps == 0.0 && p->chi > 0)
        MPOC_TRY(schmidt_prefix(sp, p->chi, &p->m));
    else
        MPOC_TRY(mpoc_mpo_copy(&p->m, src));
    if (p->eps > 0.0) { /* the source spent part of the budget: round with the rest */
        double snorm;
        MPOC_TRY(mpoc_mpo_norm(src, &snorm));
        double left = sqrt(fmax(p->eps * p->eps - src_err * src_err, 0.0));
        mo.eps = snorm > 0.0 ? fmin(left * c->norm / snorm, 0.999) : 0.0;
    }
    MPOC_TRY(mpoc_mpo_round(&p->m, &mo, c->ws));
    return mpoc_mpo_rel_error(&p->m, c->w, c->ws, &p->err);
}

/* Unquantized MPOs of every (χ, ε) pair. The parent is decomposed once and
 * brought once into right-canonical form (centre on core 0); every other
 * pair is rounded from that copy, which leaves mpoc_mpo_round only its
 * truncating sweep (its orthogonalization finds the centre in place) and
 * ends left-canonical, the gauge of a decomposition. With error feedback
 * every pair is handed over right-canonical: mpoc_quant_mpo moves the centre
 * to core 0 before its re-fits anyway, so that is done once per pair instead
 * of once per core type, with the same result. The parent's own pair is
 * exactly what a separate decompose + quantize run quantizes. (Rounding in a
 * chain, each χ from the next larger one, would be cheaper but lands up to
 * 0.5% below what a separate run reaches on generated matrices: the sweep
 * would no longer predict `mpoc compress`.) */
static mpoc_status build_pairs(const sweep_ctx *c, size_t sites, pair_mpo *pairs, size_t np,
                               double *secs_parent)
{
    size_t pchi;
    double peps;
    parent_rules(c->o, &pchi, &peps);
    bool feedback = !c->o->no_feedback, others = false;
    for (size_t i = 0; i < np; i++)
        others |= pairs[i].chi != pchi || pairs[i].eps != peps;
    mpoc_mpo parent, right;
    mpoc_mpo_report rep;
    memset(&parent, 0, sizeof parent);
    memset(&right, 0, sizeof right);
    double t0 = now_seconds();
    mpoc_mpo_options po = mpo_opts(c, sites, pchi, peps);
    MPOC_TRY(mpoc_mpo_decompose_ex(c->w, &po, c->ws, &parent, &rep));
    mpoc_status st = MPOC_OK;
    if (others || feedback) {
        st = mpoc_mpo_copy(&right, &parent);
        if (st == MPOC_OK)
            st = mpoc_mpo_canonicalize(&right, 0, c->ws);
    }
    schmidt_parent sp;
    memset(&sp, 0, sizeof sp);
    if (st == MPOC_OK && others && parent.shape.sites > 1)
        st = schmidt_build(c, &right, &sp);
    *secs_parent = now_seconds() - t0;
    for (size_t i = 0; st == MPOC_OK && i < np; i++) {
        pair_mpo *p = &pairs[i];
        double t1 = now_seconds();
        if (p->chi == pchi && p->eps == peps) {
            st = mpoc_mpo_copy(&p->m, feedback ? &right : &parent);
            p->err = rep.rel_error;
        } else {
            st = round_pair(c, &right, sp.m.cores[0] ? &sp : NULL, rep.rel_error, sites, p);
            if (st == MPOC_OK && feedback)
                st = mpoc_mpo_canonicalize(&p->m, 0, c->ws);
        }
        p->secs = now_seconds() - t1;
    }
    schmidt_free(&sp);
    mpoc_mpo_free(&parent);
    mpoc_mpo_free(&right);
    return st;
}

/* Separate mode: every setting decomposed from scratch, as separate runs. */
static mpoc_status sweep_separate(const sweep_ctx *c, size_t first, size_t count,
                                  mpoc_sweep_record *recs)
{
    mpoc_status st = MPOC_OK;
    for (size_t i = 0; st == MPOC_OK && i < count; i++) {
        mpoc_sweep_setting s = mpoc_sweep_setting_at(c->o, first + i);
        mpoc_sweep_record *rec = &recs[i];
        *rec = c->base;
        rec->setting = first + i;
        rec->set = s;
        mpoc_mpo_options mo = mpo_opts(c, s.sites, s.chi, s.eps);
        mpoc_mpo m;
        mpoc_mpo_report rep;
        memset(&m, 0, sizeof m);
        double t0 = now_seconds();
        st = mpoc_mpo_decompose_ex(c->w, &mo, c->ws, &m, &rep);
        double t1 = now_seconds();
        if (st == MPOC_OK)
            st = mpo_record(c, &m, rep.rel_error, &s, rec);
        rec->seconds = now_seconds() - t1;
        rec->seconds_factor = t1 - t0;
        mpoc_mpo_free(&m);
    }
    return st;
}

/* The nq settings of one pair (its core types, consecutive in the grid from
 * setting `first`): one mpoc_quant_mpo_multi call, so the work every core
 * type shares is done once (and tg, W prepared for the sites value's
 * shape, once for all pairs). Each record's `seconds` is an equal share of
 * the pair's rounding and of that call. */
static mpoc_status pair_records(const sweep_ctx *c, const pair_mpo *p, mpoc_quant_target *tg,
                                size_t first, size_t nq, double secs_parent, mpoc_sweep_record *recs)
{
    mpoc_quant_options *qo = calloc(nq, sizeof *qo);
    mpoc_qmpo *q = calloc(nq, sizeof *q);
    mpoc_quant_report *qr = calloc(nq, sizeof *qr);
    mpoc_status st = qo && q && qr ? MPOC_OK : MPOC_E_NOMEM;
    for (size_t j = 0; st == MPOC_OK && j < nq; j++) {
        mpoc_sweep_setting s = mpoc_sweep_setting_at(c->o, first + j);
        qo[j] = quant_opts(c, s.quant);
        recs[j] = c->base;
        recs[j].setting = first + j;
        recs[j].set = s;
        recs[j].seconds_factor = secs_parent;
    }
    double t0 = now_seconds();
    if (st == MPOC_OK)
        st = mpoc_quant_mpo_multi(&p->m, c->w, tg, qo, nq, c->ws, q, qr);
    double share = (now_seconds() - t0 + p->secs) / (double)nq;
    bool made = st == MPOC_OK;
    for (size_t j = 0; made && j < nq; j++) {
        recs[j].seconds = share;
        if (st == MPOC_OK)
            st = fill_record(c, &q[j], &qr[j], p->err, &recs[j]);
        mpoc_qmpo_free(&q[j]);
    }
    free(qo);
    free(q);
    free(qr);
    return st;
}

/* Pair indices by descending parameter count (ties in grid order): the
 * order their quantizations run in, so the target's scratch is sized once
 * by the first. Records go to their settings' places whatever the order. */
typedef struct size_key {
    uint64_t params;
    size_t index;
} size_key;

static int by_params_desc(const void *a, const void *b)
{
    const size_key *x = a, *y = b;
    if (x->params != y->params)
        return x->params > y->params ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static size_t *largest_first(const pair_mpo *pairs, size_t np)
{
    size_key *k = calloc(np, sizeof *k);
    size_t *order = calloc(np, sizeof *order);
    if (k && order) {
        for (size_t i = 0; i < np; i++) {
            k[i].params = mpoc_mpo_params(&pairs[i].m);
            k[i].index = i;
        }
        qsort(k, np, sizeof *k, by_params_desc);
        for (size_t i = 0; i < np; i++)
            order[i] = k[i].index;
    } else {
        free(order);
        order = NULL;
    }
    free(k);
    return order;
}

/* Every setting of one sites value (settings [first, first + count), in
 * grid order: χ, then ε, then quant innermost). */
static mpoc_status sweep_sites(const sweep_ctx *c, size_t first, size_t count,
                               mpoc_sweep_record *recs, double *secs_parent)
{
    const mpoc_sweep_options *o = c->o;
    *secs_parent = 0.0;
    if (o->separate)
        return sweep_separate(c, first, count, recs);
    size_t nq = at_least_1(o->n_quant), np = count / nq;
    pair_mpo *pairs = calloc(np, sizeof *pairs);
    if (!pairs)
        return MPOC_E_NOMEM;
    for (size_t i = 0; i < np; i++) {
        mpoc_sweep_setting s = mpoc_sweep_setting_at(o, first + i * nq);
        pairs[i].chi = s.chi;
        pairs[i].eps = s.eps;
    }
    mpoc_sweep_setting s0 = mpoc_sweep_setting_at(o, first);
    mpoc_status st = build_pairs(c, s0.sites, pairs, np, secs_parent);
    mpoc_quant_target *tg = NULL;
    double t0 = now_seconds();
    if (st == MPOC_OK && !o->no_feedback) /* every pair has the parent's shape */
        st = mpoc_quant_target_new(c->w, &pairs[0].m.shape, &tg);
    double share = (now_seconds() - t0) / (double)np; /* charged to every pair alike */
    size_t *order = st == MPOC_OK ? largest_first(pairs, np) : NULL;
    if (st == MPOC_OK && !order)
        st = MPOC_E_NOMEM;
    for (size_t n = 0; st == MPOC_OK && n < np; n++) {
        size_t i = order[n];
        pairs[i].secs += share;
        st = pair_records(c, &pairs[i], tg, first + i * nq, nq, *secs_parent, recs + i * nq);
    }
    free(order);
    mpoc_quant_target_free(tg);
    for (size_t i = 0; i < np; i++)
        mpoc_mpo_free(&pairs[i].m);
    free(pairs);
    return st;
}

typedef struct svd_cache {
    size_t n, r[64];
    double err[64], trunc[64];
} svd_cache;

static mpoc_status svd_record(const sweep_ctx *c, const mpoc_svd_result *res, svd_cache *cache,
                              uint64_t size, mpoc_sweep_record *rec)
{
    size_t per = 2 * (c->w.rows + c->w.cols);
    size_t r = res ? (size_t)(size / per) : 0;
    if (res && r > res->rank)
        r = res->rank;
    rec->method = MPOC_SWEEP_SVD;
    rec->n_ranks = 1;
    rec->ranks[0] = r;
    rec->params = (uint64_t)r * (c->w.rows + c->w.cols);
    rec->bytes = (uint64_t)r * per;
    double t0 = now_seconds(), err, trunc;
    size_t i = 0;
    while (i < cache->n && cache->r[i] != r)
        i++;
    if (i < cache->n) {
        err = cache->err[i];
        trunc = cache->trunc[i];
    } else if (r == 0) {
        err = trunc = c->norm > 0.0 ? 1.0 : 0.0;
    } else {
        MPOC_TRY(mpoc_sweep_svd_error(c->w, res, r, &err, &trunc));
        if (cache->n < 64) {
            cache->r[cache->n] = r;
            cache->err[cache->n] = err;
            cache->trunc[cache->n++] = trunc;
        }
    }
    rec->rel_error = err;
    rec->rel_error_trunc = trunc;
    rec->seconds = now_seconds() - t0;
    finish_sizes(rec);
    return MPOC_OK;
}

/* Hand the f16 factors of the whole computed SVD to the caller's hook. */
static mpoc_status keep_factors(const sweep_ctx *c, const mpoc_svd_result *svd)
{
    size_t m = c->w.rows, n = c->w.cols, r = svd->rank;
    float *l = mpoc_alloc_array(m, (r ? r : 1) * sizeof(float));
    float *rt = mpoc_alloc_array(r ? r : 1, n * sizeof(float));
    mpoc_status st = l && rt ? MPOC_OK : MPOC_E_NOMEM;
    if (st == MPOC_OK) {
        f16_factors(svd, r, l, rt);
        st = c->o->keep_svd(c->o->keep_user, l, rt, m, n, r);
    }
    free(l);
    free(rt);
    return st;
}

/* Baseline records for every setting, after the mpo records. */
static mpoc_status add_baselines(const sweep_ctx *c, mpoc_sweep_record *mpo_recs, size_t ns,
                                 mpoc_sweep_record *out, mpoc_sweep_result *res_out)
{
    uint64_t maxb = 0;
    for (size_t s = 0; s < ns; s++)
        if (mpo_recs[s].bytes > maxb)
            maxb = mpo_recs[s].bytes;
    size_t m = c->w.rows, n = c->w.cols, per = 2 * (m + n);
    size_t rmax = (size_t)(maxb / per), full = m < n ? m : n;
    if (rmax > full)
        rmax = full;
    mpoc_svd_result svd;
    memset(&svd, 0, sizeof svd);
    double t0 = now_seconds();
    if (rmax > 0) {
        mpoc_svd_options so = c->o->svd;
        memset(&so.trunc, 0, sizeof so.trunc);
        so.trunc.max_rank = rmax;
        MPOC_TRY(mpoc_svd_ex(c->w, &so, c->ws, &svd));
    }
    res_out->seconds_svd = now_seconds() - t0;
    mpoc_sweep_record q[2];
    mpoc_status st = MPOC_OK;
    if (rmax > 0 && c->o->keep_svd)
        st = keep_factors(c, &svd);
    for (int b = 0; st == MPOC_OK && b < 2; b++) {
        q[b] = c->base;
        q[b].method = b ? MPOC_SWEEP_Q4_0 : MPOC_SWEEP_Q8_0;
        double t1 = now_seconds();
        st = mpoc_sweep_block_error(c->w, q[b].method, &q[b].rel_error, &q[b].bytes);
        q[b].seconds = now_seconds() - t1;
        q[b].params = q[b].elems;
        q[b].rel_error_trunc = NAN;
        finish_sizes(&q[b]);
    }
    svd_cache cache;
    memset(&cache, 0, sizeof cache);
    for (size_t s = 0; st == MPOC_OK && s < ns; s++) {
        mpoc_sweep_record *o = &out[3 * s];
        o[0] = c->base;
        o[0].setting = mpo_recs[s].setting;
        o[0].set = mpo_recs[s].set;
        o[0].seconds_factor = res_out->seconds_svd;
        st = svd_record(c, rmax > 0 ? &svd : NULL, &cache, mpo_recs[s].bytes, &o[0]);
        for (int b = 0; b < 2; b++) {
            o[1 + b] = q[b];
            o[1 + b].setting = mpo_recs[s].setting;
            o[1 + b].set = mpo_recs[s].set;
        }
    }
    mpoc_svd_result_free(&svd);
    return st;
}

static mpoc_status check_input(mpoc_mat_view w, double *norm)
{
    if (w.rows == 0 || w.cols == 0 || !w.data || w.ld < w.cols)
        MPOC_FAIL(MPOC_E_SHAPE, "sweep: empty or malformed %zu x %zu matrix", w.rows, w.cols);
    mpoc_mat_stats st;
    MPOC_TRY(mpoc_mat_scan(w, &st));
    *norm = sqrt(st.sum_sq);
    return MPOC_OK;
}

/* Interleave: per setting, its mpo record then its baselines; mark best. */
static mpoc_status assemble(const mpoc_sweep_record *mpo, const mpoc_sweep_record *base, size_t ns,
                            bool baselines, mpoc_sweep_result *out)
{
    size_t per = baselines ? 4 : 1, total;
    if (!mpoc_mul_size(ns, per, &total))
        return MPOC_E_OVERFLOW;
    out->records = calloc(total, sizeof *out->records);
    if (!out->records)
        return MPOC_E_NOMEM;
    for (size_t s = 0; s < ns; s++) {
        mpoc_sweep_record *g = &out->records[s * per];
        g[0] = mpo[s];
        for (size_t b = 1; b < per; b++) {
            g[b] = base[3 * s + b - 1];
            g[b].sites = g[0].sites;
        }
        mpoc_sweep_mark_best(g, per);
    }
    out->n = total;
    return MPOC_OK;
}

mpoc_status mpoc_sweep_matrix(mpoc_mat_view w, const char *name, uint64_t original_bytes,
                              const mpoc_sweep_options *opt, mpoc_workspace *ws,
                              mpoc_sweep_result *out)
{
    memset(out, 0, sizeof *out);
    MPOC_TRY(validate(opt));
    double t0 = now_seconds();
    sweep_ctx c;
    memset(&c, 0, sizeof c);
    c.w = w;
    c.o = opt;
    MPOC_TRY(check_input(w, &c.norm));
    mpoc_workspace *own_ws = NULL;
    if (!ws)
        MPOC_TRY(mpoc_workspace_new(&own_ws));
    c.ws = ws ? ws : own_ws;
    c.base.tensor = name ? name : "";
    c.base.rows = w.rows;
    c.base.cols = w.cols;
    c.base.elems = (uint64_t)w.rows * w.cols;
    c.base.original_bytes = original_bytes ? original_bytes : 4 * c.base.elems;
    c.base.rel_error_trunc = NAN;
    size_t ns = mpoc_sweep_setting_count(opt), nsites = at_least_1(opt->n_sites);
    size_t per_sites = ns / nsites;
    mpoc_sweep_record *mpo = calloc(ns, sizeof *mpo);
    mpoc_sweep_record *base = opt->baselines ? calloc(3 * ns, sizeof *base) : NULL;
    mpoc_status st = mpo && (base || !opt->baselines) ? MPOC_OK : MPOC_E_NOMEM;
    for (size_t i = 0; st == MPOC_OK && i < nsites; i++) {
        double secs = 0.0;
        st = sweep_sites(&c, i * per_sites, per_sites, mpo + i * per_sites, &secs);
        if (i <= MPOC_MAX_SITES)
            out->seconds_factor[i] = secs;
    }
    if (st == MPOC_OK && opt->baselines)
        st = add_baselines(&c, mpo, ns, base, out);
    if (st == MPOC_OK)
        st = assemble(mpo, base, ns, opt->baselines, out);
    free(mpo);
    free(base);
    mpoc_workspace_free(own_ws);
    if (st != MPOC_OK) {
        mpoc_log_("sweep of '%s' (%zu x %zu) failed: %s", c.base.tensor, w.rows, w.cols,
                  mpoc_strerror(st));
        mpoc_sweep_result_free(out);
        return st;
    }
    out->seconds_total = now_seconds() - t0;
    return MPOC_OK;
}

/* ------------------------------------------------------------ totals */

typedef struct total_acc {
    mpoc_sweep_record r;
    double err_sq, trunc_sq;
    bool seen;
} total_acc;

static void acc_add(total_acc *a, const mpoc_sweep_record *r)
{
    if (!a->seen) {
        memset(&a->r, 0, sizeof a->r);
        a->r.tensor = "*";
        a->r.setting = r->setting;
        a->r.set = r->set;
        a->r.method = r->method;
        a->seen = true;
    }
    a->r.tensor_index++;
    a->r.params += r->params;
    a->r.bytes += r->bytes;
    a->r.original_bytes += r->original_bytes;
    a->r.elems += r->elems;
    a->r.seconds += r->seconds;
    a->r.seconds_factor += r->seconds_factor;
    a->err_sq += (double)r->elems * r->rel_error * r->rel_error;
    a->trunc_sq += (double)r->elems * r->rel_error_trunc * r->rel_error_trunc;
}

mpoc_status mpoc_sweep_totals(const mpoc_sweep_record *recs, size_t n,
                              const mpoc_sweep_options *opt, mpoc_sweep_result *out)
{
    MPOC_TRY(validate(opt));
    size_t ns = mpoc_sweep_setting_count(opt), nm = MPOC_SWEEP_METHOD_COUNT_;
    total_acc *acc = calloc(ns * nm, sizeof *acc);
    if (!acc)
        return MPOC_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].setting >= ns || (unsigned)recs[i].method >= nm) {
            free(acc);
            MPOC_FAIL(MPOC_E_INVAL, "sweep totals: record %zu is not of this grid", i);
        }
        acc_add(&acc[recs[i].setting * nm + recs[i].method], &recs[i]);
    }
    size_t cap = out->n;
    mpoc_status st = MPOC_OK;
    for (size_t s = 0; st == MPOC_OK && s < ns; s++) {
        size_t first = out->n;
        for (size_t m = 0; st == MPOC_OK && m < nm; m++) {
            total_acc *a = &acc[s * nm + m];
            if (!a->seen)
                continue;
            double e = (double)a->r.elems;
            a->r.rel_error = e > 0 ? sqrt(a->err_sq / e) : 0.0;
            a->r.rel_error_trunc = e > 0 ? sqrt(a->trunc_sq / e) : (double)NAN;
            finish_sizes(&a->r);
            st = push(out, &cap, &a->r);
        }
        if (st == MPOC_OK)
            mpoc_sweep_mark_best(out->records + first, out->n - first);
    }
    free(acc);
    return st;
}

/* ------------------------------------------------------------ SGEMM peak */

mpoc_status mpoc_sgemm_gflops(size_t n, double *gflops)
{
    if (n < 16 || n > 16384)
        MPOC_FAIL(MPOC_E_INVAL, "sgemm peak: size %zu not in [16, 16384]", n);
    float *a = mpoc_alloc_array(n, n * sizeof(float));
    float *b = mpoc_alloc_array(n, n * sizeof(float));
    float *cm = mpoc_alloc_array(n, n * sizeof(float));
    mpoc_status st = a && b && cm ? MPOC_OK : MPOC_E_NOMEM;
    for (size_t i = 0; st == MPOC_OK && i < n * n; i++) {
        a[i] = (float)((i * 7919u) % 1000u) * 1e-3f - 0.5f;
        b[i] = (float)((i * 104729u) % 997u) * 1e-3f - 0.5f;
    }
    double best = INFINITY;
    for (int rep = 0; st == MPOC_OK && rep < 4; rep++) {
        double t0 = now_seconds();
        st = mpoc_la_gemm(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, cm, n);
        best = fmin(best, now_seconds() - t0);
    }
    free(a);
    free(b);
    free(cm);
    if (st != MPOC_OK)
        return st;
    *gflops = 2.0 * (double)n * (double)n * (double)n / fmax(best, 1e-9) * 1e-9;
    return MPOC_OK;
}

/* ------------------------------------------------------------ lists */

#define LIST_MAX 4096

typedef struct dlist {
    double *v;
    size_t n;
} dlist;

static mpoc_status list_add(dlist *l, double x, bool integral)
{
    if (integral)
        x = (double)llround(x);
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == x)
            return MPOC_OK;
    if (l->n >= LIST_MAX)
        MPOC_FAIL(MPOC_E_INVAL, "list: more than %d values", LIST_MAX);
    l->v[l->n++] = x;
    return MPOC_OK;
}

static bool parse_num(const char *s, size_t len, bool integral, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (*end || !isfinite(v) || v < 0.0 || (integral && (v != floor(v) || v > 1e15)))
        return false;
    *out = v;
    return true;
}

/* One item: a value or a range. */
static mpoc_status list_item(dlist *l, const char *s, size_t len, bool integral)
{
    const char *c1 = memchr(s, ':', len);
    double a, b, step = 1.0;
    if (!c1) {
        if (!parse_num(s, len, integral, &a))
            MPOC_FAIL(MPOC_E_INVAL, "list: '%.*s' is not a %s", (int)len, s,
                      integral ? "non-negative integer" : "non-negative number");
        return list_add(l, a, integral);
    }
    const char *rest = c1 + 1, *e = s + len;
    const char *c2 = memchr(rest, ':', (size_t)(e - rest));
    bool geometric = false;
    bool ok = parse_num(s, (size_t)(c1 - s), integral, &a) &&
              parse_num(rest, (size_t)((c2 ? c2 : e) - rest), integral, &b);
    if (ok && c2) {
        const char *st = c2 + 1;
        geometric = st < e && (*st == 'x' || *st == '*');
        ok = st < e && (geometric || *st == '+') &&
             parse_num(st + 1, (size_t)(e - st - 1), false, &step);
    }
    if (!ok || a > b || (geometric ? !(step > 1.0) || a <= 0.0 : !(step > 0.0)))
        MPOC_FAIL(MPOC_E_INVAL, "list: bad range '%.*s' (a:b, a:b:+S with S > 0, a:b:xF with "
                  "F > 1 and a > 0)", (int)len, s);
    for (size_t k = 0;; k++) {
        double x = geometric ? a * pow(step, (double)k) : a + step * (double)k;
        if (x > b * (1.0 + 1e-12))
            break;
        MPOC_TRY(list_add(l, x, integral));
    }
    return MPOC_OK;
}

static mpoc_status parse_list(const char *spec, bool integral, dlist *l)
{
    if (!spec || !*spec)
        MPOC_FAIL(MPOC_E_INVAL, "list: empty");
    l->v = malloc(LIST_MAX * sizeof *l->v);
    l->n = 0;
    if (!l->v)
        return MPOC_E_NOMEM;
    const char *p = spec;
    mpoc_status st = MPOC_OK;
    while (st == MPOC_OK) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        st = list_item(l, p, len, integral);
        if (!comma)
            break;
        p = comma + 1;
    }
    if (st != MPOC_OK) {
        free(l->v);
        l->v = NULL;
    }
    return st;
}

mpoc_status mpoc_parse_size_list(const char *spec, size_t **out, size_t *n)
{
    dlist l;
    MPOC_TRY(parse_list(spec, true, &l));
    *out = malloc(l.n * sizeof **out);
    if (!*out) {
        free(l.v);
        return MPOC_E_NOMEM;
    }
    for (size_t i = 0; i < l.n; i++)
        (*out)[i] = (size_t)l.v[i];
    *n = l.n;
    free(l.v);
    return MPOC_OK;
}

mpoc_status mpoc_parse_double_list(const char *spec, double **out, size_t *n)
{
    dlist l;
    MPOC_TRY(parse_list(spec, false, &l));
    *out = l.v;
    *n = l.n;
    return MPOC_OK;
}
