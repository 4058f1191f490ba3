/* mpo.c: TT-SVD, canonical forms, rounding, contraction, error accounting
 * and batch application of matrix-product operators.
 *
 * The permuted tensor. W [m_1..m_d, n_1..n_d] is permuted to
 * [m_1, n_1, m_2, n_2, …, m_d, n_d] (one data movement); site k then has
 * size s_k = m_k n_k and every later reshape is free in row-major storage.
 * Element (i, j) of W sits at row_off[i] + col_off[j] in the permuted
 * tensor, with row_off[i] = Σ_k i_k n_k t_k, col_off[j] = Σ_k j_k t_k and
 * t_k = ∏_{l>k} s_l. Skipping the permute gives a valid TT of a different
 * tensor and much worse compression, silently (numerics.md §1). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "linalg.h"
#include "mpoc_mpo.h"
#include "mpo_internal.h"
#include "rng.h"
#include "svd_internal.h"
#include "util.h"

/* ---------------------------------------------------------------- basics */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t site_size(const mpoc_shape *s, size_t k)
{
    return s->row_dims[k] * s->col_dims[k];
}

size_t mpoc_mpo_core_size(const mpoc_mpo *mpo, size_t k)
{
    return mpo->ranks[k] * site_size(&mpo->shape, k) * mpo->ranks[k + 1];
}

size_t mpoc_mpo_params(const mpoc_mpo *mpo)
{
    size_t p = 0;
    for (size_t k = 0; k < mpo->shape.sites; k++)
        p += mpoc_mpo_core_size(mpo, k);
    return p;
}

void mpoc_mpo_free(mpoc_mpo *mpo)
{
    if (!mpo)
        return;
    for (size_t k = 0; k < MPOC_MAX_SITES; k++) {
        free(mpo->cores[k]);
        free(mpo->spectra[k]);
    }
    memset(mpo, 0, sizeof *mpo);
}

static float *dup_floats(const float *src, size_t n)
{
    float *p = mpoc_alloc_array(n ? n : 1, sizeof(float));
    if (p && n)
        memcpy(p, src, n * sizeof(float));
    return p;
}

void mpoc_mpo_frame(mpoc_mpo *dst, const mpoc_mpo *src)
{
    memset(dst, 0, sizeof *dst);
    dst->shape = src->shape;
    dst->centre = src->centre;
    memcpy(dst->ranks, src->ranks, sizeof dst->ranks);
    memcpy(dst->discarded_sq, src->discarded_sq, sizeof dst->discarded_sq);
}

mpoc_status mpoc_mpo_copy(mpoc_mpo *dst, const mpoc_mpo *src)
{
    mpoc_mpo_frame(dst, src);
    for (size_t k = 0; k < src->shape.sites; k++) {
        dst->cores[k] = dup_floats(src->cores[k], mpoc_mpo_core_size(src, k));
        bool spec_ok = !src->spectra[k] || (dst->spectra[k] = dup_floats(src->spectra[k], src->ranks[k + 1]));
        if (!dst->cores[k] || !spec_ok) {
            mpoc_mpo_free(dst);
            return MPOC_E_NOMEM;
        }
    }
    return MPOC_OK;
}

mpoc_mpo_options mpoc_mpo_options_default(void)
{
    mpoc_mpo_options o;
    memset(&o, 0, sizeof o);
    o.svd = mpoc_svd_options_default();
    o.pad = MPOC_PAD_AUTO;
    return o;
}

/* Check an MPO's structure before using it (ranks, cores present, sizes). */
static mpoc_status check_mpo(const mpoc_mpo *mpo)
{
    const mpoc_shape *s = &mpo->shape;
    if (s->sites == 0 || s->sites > MPOC_MAX_SITES)
        MPOC_FAIL(MPOC_E_SHAPE, "MPO with %zu sites", s->sites);
    if (mpo->ranks[0] != 1 || mpo->ranks[s->sites] != 1)
        MPOC_FAIL(MPOC_E_SHAPE, "MPO boundary ranks must be 1 (got %zu, %zu)", mpo->ranks[0],
                  mpo->ranks[s->sites]);
    for (size_t k = 0; k < s->sites; k++)
        if (!mpo->cores[k] || mpo->ranks[k + 1] == 0 || site_size(s, k) == 0)
            MPOC_FAIL(MPOC_E_SHAPE, "MPO core %zu is missing or empty", k);
    return MPOC_OK;
}

/* ------------------------------------------------------ permuted indexing */

/* Index maps of a block of the permuted tensor in which row digit k takes
 * radix[k] values (1: fixed, m_k: all; radix = row_dims is the whole
 * tensor) and site k spans radix[k]·n_k entries. For the block's rows ρ
 * (row-major over its local digits): ro[ρ], where the row's entries start,
 * and wr[ρ] = Σ_k ρ_k ∏_{l>k} m_l, the row of W relative to the block's
 * first; for every column j of W: co[j]. All three live in WS_MPO_IDX. */
typedef struct site_index {
    size_t *ro, *wr, *co;
    size_t n_rows;
} site_index;

static mpoc_status site_offsets(const mpoc_shape *s, const size_t *radix, struct mpoc_workspace *ws,
                                site_index *ix)
{
    size_t n_rows = 1, n;
    for (size_t k = 0; k < s->sites; k++)
        n_rows *= radix[k]; /* ≤ padded_rows */
    if (!mpoc_mul_size(n_rows, 2, &n) || !mpoc_add_size(n, s->cols, &n) ||
        !mpoc_mul_size(n, sizeof(size_t), &n))
        return MPOC_E_OVERFLOW;
    size_t *idx = mpoc_ws_get(ws, WS_MPO_IDX, n);
    if (!idx)
        return MPOC_E_NOMEM;
    size_t t[MPOC_MAX_SITES], rs[MPOC_MAX_SITES], stride = 1, row_stride = 1;
    for (size_t k = s->sites; k-- > 0;) {
        t[k] = stride;
        rs[k] = row_stride;
        stride *= radix[k] * s->col_dims[k];
        row_stride *= s->row_dims[k];
    }
    ix->ro = idx;
    ix->wr = idx + n_rows;
    ix->co = idx + 2 * n_rows;
    ix->n_rows = n_rows;
    for (size_t i = 0; i < n_rows; i++) {
        size_t rest = i, o = 0, w = 0;
        for (size_t k = s->sites; k-- > 0;) {
            o += (rest % radix[k]) * s->col_dims[k] * t[k];
            w += (rest % radix[k]) * rs[k];
            rest /= radix[k];
        }
        ix->ro[i] = o;
        ix->wr[i] = w;
    }
    for (size_t j = 0; j < s->cols; j++) {
        size_t rest = j, o = 0;
        for (size_t k = s->sites; k-- > 0;) {
            o += (rest % s->col_dims[k]) * t[k];
            rest /= s->col_dims[k];
        }
        ix->co[j] = o;
    }
    return MPOC_OK;
}

static size_t padded_size(const mpoc_shape *s)
{
    return s->padded_rows * s->padded_cols;
}

/* P (padded, permuted) ← W; zero where padded. */
static mpoc_status permute_into(mpoc_mat_view w, const mpoc_shape *s, float *p,
                                struct mpoc_workspace *ws)
{
    site_index ix;
    MPOC_TRY(site_offsets(s, s->row_dims, ws, &ix));
    const size_t *ro = ix.ro, *co = ix.co;
    if (s->padded_rows != s->rows || s->padded_cols != s->cols)
        memset(p, 0, padded_size(s) * sizeof(float));
    for (size_t i = 0; i < s->rows; i++) {
        const float *row = w.data + i * w.ld;
        float *dst = p + ro[i];
        for (size_t j = 0; j < s->cols; j++)
            dst[co[j]] = row[j];
    }
    return MPOC_OK;
}

mpoc_status mpoc_mpo_real_mask(const mpoc_shape *s, uint8_t **out)
{
    *out = NULL;
    size_t total;
    if (!mpoc_mul_size(s->padded_rows, s->padded_cols, &total))
        return MPOC_E_OVERFLOW;
    uint8_t *mask = calloc(total ? total : 1, 1);
    mpoc_workspace *ws = NULL;
    mpoc_status st = mask ? mpoc_workspace_new(&ws) : MPOC_E_NOMEM;
    site_index ix;
    if (st == MPOC_OK)
        st = site_offsets(s, s->row_dims, ws, &ix); /* the map permute_into uses */
    for (size_t i = 0; st == MPOC_OK && i < s->rows; i++)
        for (size_t j = 0; j < s->cols; j++)
            mask[ix.ro[i] + ix.co[j]] = 1;
    mpoc_workspace_free(ws);
    if (st != MPOC_OK) {
        free(mask);
        return st;
    }
    *out = mask;
    return MPOC_OK;
}

mpoc_status mpoc_mpo_permuted_copy(mpoc_mat_view w, const mpoc_shape *s, float **out)
{
    *out = NULL;
    size_t total;
    if (!mpoc_mul_size(s->padded_rows, s->padded_cols, &total))
        return MPOC_E_OVERFLOW;
    float *t = mpoc_alloc_array(total, sizeof(float));
    mpoc_workspace *ws = NULL;
    mpoc_status st = t ? mpoc_workspace_new(&ws) : MPOC_E_NOMEM;
    if (st == MPOC_OK)
        st = permute_into(w, s, t, ws);
    mpoc_workspace_free(ws);
    if (st != MPOC_OK) {
        free(t);
        return st;
    }
    *out = t;
    return MPOC_OK;
}

/* ------------------------------------------------------------- contraction */

/* The MPO is densified one slab at a time, never whole. A slab restricts
 * some row digits: digit k takes radix_k consecutive values from first_k
 * (1: fixed, m_k: all), so site k spans extent_k = radix_k·n_k entries and
 * the slab is G_0[:, ·]·G_1[:, ·]·…·G_{d−1}[:, ·], left to right, where
 * G_k[:, ·] is the column block of G_k (as r_k × s_k r_{k+1}) holding those
 * row digits: a plain strided gemm operand. Every entry is the same chain of
 * dot products over the same ranks as in the full left-to-right
 * contraction, so the values equal it; the scratch is two slab-sized
 * buffers instead of two |W|-sized ones. Three families restrict at most
 * digits 0 and 1, where nothing is recomputed (the slabs' flops add up to
 * the full contraction's):
 *   ROWS0 — i_0 in groups of g: consecutive rows of W, in W's order;
 *   ROWS1 — i_1 in groups of g, i_0 all: core 1 is read once in all, where
 *           ROWS0 re-reads (and BLAS re-packs) it for every slab;
 *   FIXED — i_0 fixed, i_1 in groups: the smallest slabs.
 * Among the plans whose buffers fit, the one that packs the fewest core
 * floats wins (ROWS0 on ties). A slab is read in runs of n_{d−1} entries,
 * contiguous in both it and W. */
typedef struct slab_plan {
    size_t radix[MPOC_MAX_SITES];
    size_t extent[MPOC_MAX_SITES];
    size_t count;  /* slabs */
    size_t buf;    /* floats of each of the two buffers */
    double packed; /* core floats the gemms read over all slabs: the cost */
} slab_plan;

enum { SLAB_ROWS0, SLAB_ROWS1, SLAB_FIXED };

/* Below this many floats per buffer a slab need not be smaller. */
#define SLAB_MIN_FLOATS ((size_t)1 << 20)
/* Otherwise a slab buffer holds at most 1/SLAB_FRACTION of the tensor. */
#define SLAB_FRACTION 8

/* Plan of a family with group g; false when a size overflows. The largest
 * intermediate is the one after site k ≥ 1: ∏_{l≤k} extent_l × r_{k+1}. */
static bool slab_sizes(const mpoc_mpo *mpo, int family, size_t g, slab_plan *sp)
{
    const mpoc_shape *s = &mpo->shape;
    size_t lead = 1, out;
    sp->count = 1;
    sp->buf = 0;
    sp->packed = 0.0;
    for (size_t k = 0; k < s->sites; k++) {
        size_t rad = s->row_dims[k];
        if (k == 0 && family != SLAB_ROWS1)
            rad = family == SLAB_ROWS0 ? g : 1;
        if (k == 1 && family != SLAB_ROWS0)
            rad = g;
        sp->radix[k] = rad;
        sp->extent[k] = rad * s->col_dims[k];
        sp->count *= s->row_dims[k] / rad;
        if (!mpoc_mul_size(lead, sp->extent[k], &lead) || !mpoc_mul_size(lead, mpo->ranks[k + 1], &out))
            return false;
        if (k > 0 && out > sp->buf)
            sp->buf = out;
    }
    for (size_t k = 1; k < s->sites; k++)
        sp->packed += (double)sp->count * (double)mpo->ranks[k] * (double)sp->extent[k] *
                      (double)mpo->ranks[k + 1];
    return true;
}

size_t mpoc_mpo_slab_target = 0;
int mpoc_mpo_slab_family = -1;

/* a beats b: it fits and b does not, or both fit and a packs fewer core
 * floats, or neither fits and a is smaller. Ties keep the earlier plan. */
static bool slab_better(const slab_plan *a, const slab_plan *b, size_t target)
{
    bool fa = a->buf <= target, fb = b->buf <= target;
    if (fa != fb)
        return fa;
    return fa ? a->packed < b->packed : a->buf < b->buf;
}

static bool family_allowed(int f, size_t sites)
{
    if (sites < 2)
        return f == SLAB_ROWS0;
    return mpoc_mpo_slab_family < 0 || f == mpoc_mpo_slab_family;
}

/* The best plan by slab_better over every family and group size (groups
 * divide the digit's range, so all slabs of a plan share one layout). */
static mpoc_status slab_choose(const mpoc_mpo *mpo, slab_plan *best)
{
    const mpoc_shape *s = &mpo->shape;
    size_t target = padded_size(s) / SLAB_FRACTION;
    if (target < SLAB_MIN_FLOATS)
        target = SLAB_MIN_FLOATS;
    if (mpoc_mpo_slab_target)
        target = mpoc_mpo_slab_target;
    bool any = false;
    slab_plan sp;
    for (int f = SLAB_ROWS0; f <= SLAB_FIXED; f++) {
        if (!family_allowed(f, s->sites))
            continue;
        size_t m = s->row_dims[f == SLAB_ROWS0 ? 0 : 1];
        for (size_t g = m; g >= 1; g--)
            if (m % g == 0 && slab_sizes(mpo, f, g, &sp) && (!any || slab_better(&sp, best, target))) {
                *best = sp;
                any = true;
            }
    }
    if (!any)
        MPOC_FAIL(MPOC_E_OVERFLOW, "MPO contraction: an intermediate overflows");
    return MPOC_OK;
}

/* First row digit of every site in slab q (site 0 most significant) and
 * the row of W where the slab starts. */
static size_t slab_origin(const mpoc_shape *s, const slab_plan *sp, size_t q, size_t *first)
{
    size_t row0 = 0, row_stride = 1;
    for (size_t k = s->sites; k-- > 0;) {
        size_t groups = s->row_dims[k] / sp->radix[k];
        first[k] = q % groups * sp->radix[k];
        q /= groups;
        row0 += first[k] * row_stride;
        row_stride *= s->row_dims[k];
    }
    return row0;
}

/* The slab starting at digits `first` into one of bufs (a pointer into
 * core 0 when d = 1). */
static mpoc_status slab_contract(const mpoc_mpo *mpo, const slab_plan *sp, const size_t *first,
                                 float *bufs[2], const float **out)
{
    const mpoc_shape *s = &mpo->shape;
    const float *x = mpo->cores[0] + first[0] * s->col_dims[0] * mpo->ranks[1];
    size_t rows = sp->extent[0];
    for (size_t k = 1; k < s->sites; k++) {
        size_t r = mpo->ranks[k], r2 = mpo->ranks[k + 1], cols = sp->extent[k] * r2;
        const float *g = mpo->cores[k] + first[k] * s->col_dims[k] * r2;
        MPOC_TRY(mpoc_la_gemm(false, false, rows, cols, r, 1.0f, x, r, g, site_size(s, k) * r2, 0.0f,
                              bufs[k & 1], cols));
        x = bufs[k & 1];
        rows *= sp->extent[k];
    }
    *out = x;
    return MPOC_OK;
}

/* Consumer of the slabs: compare with w (rel_error) or copy out (to_dense). */
typedef struct slab_sink {
    mpoc_mat_view w;
    double diff, norm;
    float *dense; /* when not NULL: rows × cols, contiguous */
} slab_sink;

/* The rows of W in slab t against it; each row's terms are added in
 * column order, the rows in the slab's order. */
static void slab_compare(slab_sink *k, const float *t, const site_index *ix, size_t row0, size_t run)
{
    size_t cols = k->w.cols;
    double diff = k->diff, norm = k->norm;
    for (size_t i = 0; i < ix->n_rows; i++) {
        if (row0 + ix->wr[i] >= k->w.rows)
            continue; /* padding */
        const float *row = k->w.data + (row0 + ix->wr[i]) * k->w.ld, *src = t + ix->ro[i];
        for (size_t j0 = 0; j0 < cols; j0 += run) {
            const float *a = row + j0, *b = src + ix->co[j0];
            size_t len = cols - j0 < run ? cols - j0 : run;
            for (size_t q = 0; q < len; q++) {
                double d = (double)a[q] - (double)b[q];
                diff += d * d;
                norm += (double)a[q] * (double)a[q];
            }
        }
    }
    k->diff = diff;
    k->norm = norm;
}

static void slab_copy(slab_sink *k, const float *t, const site_index *ix, size_t row0, size_t run)
{
    size_t cols = k->w.cols;
    for (size_t i = 0; i < ix->n_rows; i++) {
        if (row0 + ix->wr[i] >= k->w.rows)
            continue;
        float *dst = k->dense + (row0 + ix->wr[i]) * cols;
        const float *src = t + ix->ro[i];
        for (size_t j0 = 0; j0 < cols; j0 += run)
            memcpy(dst + j0, src + ix->co[j0], (cols - j0 < run ? cols - j0 : run) * sizeof(float));
    }
}

/* Every slab of the MPO through the sink. */
static mpoc_status slab_walk(const mpoc_mpo *mpo, struct mpoc_workspace *ws, slab_sink *sink)
{
    const mpoc_shape *s = &mpo->shape;
    slab_plan sp;
    MPOC_TRY(slab_choose(mpo, &sp));
    float *bufs[2] = {NULL, NULL};
    if (s->sites > 1) {
        bufs[0] = mpoc_ws_floats(ws, WS_MPO_A, sp.buf);
        bufs[1] = mpoc_ws_floats(ws, WS_MPO_B, sp.buf);
        if (!bufs[0] || !bufs[1])
            return MPOC_E_NOMEM;
    }
    site_index ix;
    MPOC_TRY(site_offsets(s, sp.radix, ws, &ix));
    size_t run = s->col_dims[s->sites - 1];
    for (size_t q = 0; q < sp.count; q++) {
        size_t first[MPOC_MAX_SITES] = {0}, row0 = slab_origin(s, &sp, q, first);
        if (row0 >= s->rows)
            continue; /* all padding */
        const float *t;
        MPOC_TRY(slab_contract(mpo, &sp, first, bufs, &t));
        if (sink->dense)
            slab_copy(sink, t, &ix, row0, run);
        else
            slab_compare(sink, t, &ix, row0, run);
    }
    return MPOC_OK;
}

static struct mpoc_workspace *ws_or_new(struct mpoc_workspace *ws, mpoc_workspace **owned)
{
    *owned = NULL;
    if (ws)
        return ws;
    if (mpoc_workspace_new(owned) != MPOC_OK)
        return NULL;
    return *owned;
}

mpoc_status mpoc_mpo_to_dense(const mpoc_mpo *mpo, mpoc_mat *out, mpoc_workspace *user_ws)
{
    memset(out, 0, sizeof *out);
    MPOC_TRY(check_mpo(mpo));
    mpoc_workspace *owned;
    struct mpoc_workspace *ws = ws_or_new(user_ws, &owned);
    if (!ws)
        return MPOC_E_NOMEM;
    mpoc_status st = mpoc_mat_alloc(out, mpo->shape.rows, mpo->shape.cols);
    if (st == MPOC_OK) {
        slab_sink sink = {.w = mpoc_mat_view_of(out), .dense = out->data};
        st = slab_walk(mpo, ws, &sink);
        if (st != MPOC_OK)
            mpoc_mat_free(out);
    }
    mpoc_workspace_free(owned);
    return st;
}

mpoc_status mpoc_mpo_rel_error(const mpoc_mpo *mpo, mpoc_mat_view w, mpoc_workspace *user_ws,
                               double *rel_error)
{
    *rel_error = NAN;
    MPOC_TRY(check_mpo(mpo));
    if (w.rows != mpo->shape.rows || w.cols != mpo->shape.cols)
        MPOC_FAIL(MPOC_E_SHAPE, "matrix is %zu x %zu but the MPO is %zu x %zu", w.rows, w.cols,
                  mpo->shape.rows, mpo->shape.cols);
    mpoc_workspace *owned;
    struct mpoc_workspace *ws = ws_or_new(user_ws, &owned);
    if (!ws)
        return MPOC_E_NOMEM;
    slab_sink sink = {.w = w};
    mpoc_status st = slab_walk(mpo, ws, &sink);
    if (st == MPOC_OK) {
        double diff = sink.diff, norm = sink.norm;
        *rel_error = norm > 0.0 ? sqrt(diff / norm) : (diff > 0.0 ? (double)INFINITY : 0.0);
    }
    mpoc_workspace_free(owned);
    return st;
}

mpoc_status mpoc_mpo_norm(const mpoc_mpo *mpo, double *norm)
{
    *norm = NAN;
    MPOC_TRY(check_mpo(mpo));
    /* E_{k+1}[a', b'] = Σ_{a,b,σ} G[a,σ,a'] E_k[a,b] G[b,σ,b'], in double. */
    size_t rmax = 1;
    for (size_t k = 0; k <= mpo->shape.sites; k++)
        rmax = mpo->ranks[k] > rmax ? mpo->ranks[k] : rmax;
    double *e = calloc(rmax * rmax, sizeof *e), *e2 = calloc(rmax * rmax, sizeof *e2);
    double *y = NULL;
    size_t ymax = 0;
    for (size_t k = 0; k < mpo->shape.sites; k++) {
        size_t sz = site_size(&mpo->shape, k) * mpo->ranks[k + 1];
        ymax = sz > ymax ? sz : ymax;
    }
    y = calloc(rmax * ymax, sizeof *y);
    if (!e || !e2 || !y) {
        free(e), free(e2), free(y);
        return MPOC_E_NOMEM;
    }
    e[0] = 1.0;
    for (size_t k = 0; k < mpo->shape.sites; k++) {
        size_t r = mpo->ranks[k], r2 = mpo->ranks[k + 1], cols = site_size(&mpo->shape, k) * r2;
        const float *g = mpo->cores[k];
        /* Y[b, (σ a')] = Σ_a E[b, a] G[a, (σ a')] */
        for (size_t b = 0; b < r; b++)
            for (size_t c = 0; c < cols; c++) {
                double acc = 0.0;
                for (size_t a = 0; a < r; a++)
                    acc += e[b * r + a] * (double)g[a * cols + c];
                y[b * cols + c] = acc;
            }
        /* E'[a', b'] = Σ_{b,σ} Y[b, σ, a'] G[b, σ, b'] */
        size_t rows = r * site_size(&mpo->shape, k);
        for (size_t a2 = 0; a2 < r2; a2++)
            for (size_t b2 = 0; b2 < r2; b2++) {
                double acc = 0.0;
                for (size_t q = 0; q < rows; q++)
                    acc += y[q * r2 + a2] * (double)g[q * r2 + b2];
                e2[a2 * r2 + b2] = acc;
            }
        double *tmp = e;
        e = e2;
        e2 = tmp;
    }
    *norm = sqrt(e[0] > 0.0 ? e[0] : 0.0);
    free(e), free(e2), free(y);
    return MPOC_OK;
}

mpoc_status mpoc_mpo_inner(const mpoc_mpo *mpo, mpoc_mat_view w, mpoc_workspace *user_ws, double *out)
{
    *out = NAN;
    MPOC_TRY(check_mpo(mpo));
    const mpoc_shape *s = &mpo->shape;
    if (w.rows != s->rows || w.cols != s->cols)
        MPOC_FAIL(MPOC_E_SHAPE, "matrix is %zu x %zu but the MPO is %zu x %zu", w.rows, w.cols,
                  s->rows, s->cols);
    mpoc_workspace *owned;
    struct mpoc_workspace *ws = ws_or_new(user_ws, &owned);
    if (!ws)
        return MPOC_E_NOMEM;
    size_t total = padded_size(s);
    float *p = mpoc_ws_floats(ws, WS_MPO_A, total), *q = mpoc_ws_floats(ws, WS_MPO_B, total);
    mpoc_status st = p && q ? permute_into(w, s, p, ws) : MPOC_E_NOMEM;
    /* T_{k+1} (r_{k+1} × rest) = G_kᵀ ((r_k s_k) × r_{k+1})ᵀ · T_k ((r_k s_k) × rest) */
    size_t rest = total;
    for (size_t k = 0; st == MPOC_OK && k < s->sites; k++) {
        size_t rows = mpo->ranks[k] * site_size(s, k), r2 = mpo->ranks[k + 1];
        rest /= site_size(s, k);
        st = mpoc_la_gemm(true, false, r2, rest, rows, 1.0f, mpo->cores[k], r2, p, rest, 0.0f, q, rest);
        float *tmp = p;
        p = q;
        q = tmp;
    }
    if (st == MPOC_OK)
        *out = (double)p[0];
    mpoc_workspace_free(owned);
    return st;
}

/* ------------------------------------------------------------------ TT-SVD */

static mpoc_status store_spectrum(mpoc_mpo *mpo, size_t bond, const float *s, size_t r)
{
    free(mpo->spectra[bond]);
    mpo->spectra[bond] = dup_floats(s, r);
    return mpo->spectra[bond] ? MPOC_OK : MPOC_E_NOMEM;
}

/* Per-bond SVD options: the user's rules, plus the share of the global ε
 * budget left for this bond (unspent budget carries forward). */
static mpoc_svd_options bond_options(const mpoc_mpo_options *opt, double norm_sq, double spent,
                                     size_t bonds_left)
{
    mpoc_svd_options o = opt->svd;
    if (opt->eps > 0.0 && bonds_left > 0) {
        double budget = opt->eps * opt->eps * norm_sq - spent;
        double delta = budget > 0.0 ? sqrt(budget / (double)bonds_left) : 0.0;
        /* a zero budget must still truncate numerically: a tiny positive δ */
        if (delta <= 0.0)
            delta = 1e-300;
        if (o.trunc.abs_tail == 0.0 || delta < o.trunc.abs_tail)
            o.trunc.abs_tail = delta;
    }
    return o;
}

static mpoc_status check_decompose_args(mpoc_mat_view w, const mpoc_mpo_options *opt)
{
    if (!w.data || w.rows == 0 || w.cols == 0 || w.ld < w.cols)
        MPOC_FAIL(MPOC_E_SHAPE, "cannot factorize an empty or badly strided %zu x %zu matrix",
                  w.rows, w.cols);
    if (!(opt->eps >= 0.0) || !isfinite(opt->eps))
        MPOC_FAIL(MPOC_E_INVAL, "error target eps = %g must be finite and >= 0", opt->eps);
    if (opt->shape && (opt->shape->rows != w.rows || opt->shape->cols != w.cols))
        MPOC_FAIL(MPOC_E_SHAPE, "shape is for a %zu x %zu matrix, not %zu x %zu", opt->shape->rows,
                  opt->shape->cols, w.rows, w.cols);
    return mpoc_svd_check_options(&opt->svd);
}

/* The sweep proper: cur holds C_k ((r_k s_k) × R_k); each step keeps U as
 * core k and overwrites cur with diag(σ)·Vt = C_{k+1} (r_{k+1} ≤ r_k s_k
 * rows; the SVD's outputs live in other slots), so no second |W| buffer. */
static mpoc_status tt_sweep(mpoc_mpo *mpo, const mpoc_mpo_options *opt, double norm_sq,
                            struct mpoc_workspace *ws, mpoc_mpo_report *rep)
{
    const mpoc_shape *s = &mpo->shape;
    size_t total = padded_size(s), rest = total, d = s->sites;
    float *cur = mpoc_ws_floats(ws, WS_MPO_A, total);
    if (!cur)
        return MPOC_E_NOMEM;
    double spent = 0.0;
    mpo->ranks[0] = 1;
    for (size_t k = 0; k + 1 < d; k++) {
        size_t rows = mpo->ranks[k] * site_size(s, k);
        rest /= site_size(s, k);
        mpoc_svd_options o = bond_options(opt, norm_sq, spent, d - 1 - k);
        if (o.trunc.max_rank && o.trunc.max_rank > mpoc_shape_max_rank(s, k))
            rep->rank_clamped = true;
        mpoc_svd_view v;
        MPOC_TRY(mpoc_svd_ws(mpoc_view_wrap(cur, rows, rest, rest), &o, true, ws, &v));
        /* only C_k and the factors are live: the SVD's other scratch (copies
         * of C_k, Q of its QR) goes before core k is allocated beside them */
        mpoc_ws_trim(ws, WS_KEEP_BYTES, WS_BIT(WS_MPO_A) | mpoc_ws_bit_of(ws, v.u) |
                                            mpoc_ws_bit_of(ws, v.s) | mpoc_ws_bit_of(ws, v.vt));
        size_t r = v.rank;
        mpo->cores[k] = mpoc_alloc_array(rows * r, sizeof(float));
        if (!mpo->cores[k])
            return MPOC_E_NOMEM;
        for (size_t i = 0; i < rows; i++)
            memcpy(mpo->cores[k] + i * r, v.u + i * v.ldu, r * sizeof(float));
        MPOC_TRY(store_spectrum(mpo, k, v.s, r));
        mpo->ranks[k + 1] = r;
        mpo->discarded_sq[k] = v.discarded_sq;
        rep->bond_method[k] = v.used;
        spent += v.discarded_sq;
        for (size_t i = 0; i < r; i++)
            for (size_t j = 0; j < rest; j++)
                cur[i * rest + j] = v.s[i] * v.vt[i * v.ldvt + j];
        mpoc_ws_trim(ws, WS_KEEP_BYTES, WS_BIT(WS_MPO_A)); /* the next bond has other shapes */
    }
    mpo->ranks[d] = 1;
    mpo->cores[d - 1] = dup_floats(cur, mpo->ranks[d - 1] * site_size(s, d - 1));
    if (!mpo->cores[d - 1])
        return MPOC_E_NOMEM;
    mpo->centre = d - 1;
    return MPOC_OK;
}

mpoc_status mpoc_mpo_decompose_ex(mpoc_mat_view w, const mpoc_mpo_options *opt, mpoc_workspace *ws,
                                  mpoc_mpo *out, mpoc_mpo_report *report)
{
    mpoc_mpo_report local;
    mpoc_mpo_report *rep = report ? report : &local;
    memset(out, 0, sizeof *out);
    memset(rep, 0, sizeof *rep);
    rep->rel_error = NAN;
    MPOC_TRY(check_decompose_args(w, opt));
    mpoc_mat_stats stats;
    MPOC_TRY(mpoc_mat_scan(w, &stats)); /* NaN/Inf stop here, before any SVD */
    if (opt->shape)
        out->shape = *opt->shape;
    else
        MPOC_TRY(mpoc_shape_choose(w.rows, w.cols, opt->sites, opt->pad, &out->shape));
    size_t total;
    if (!mpoc_mul_size(out->shape.padded_rows, out->shape.padded_cols, &total) ||
        total > SIZE_MAX / sizeof(float))
        MPOC_FAIL(MPOC_E_OVERFLOW, "padded %zu x %zu matrix is too large",
                  out->shape.padded_rows, out->shape.padded_cols);
    double t0 = now_seconds();
    /* Each phase frees the big scratch slots it leaves (WS_KEEP_BYTES):
     * grow-only slots would make the peak the sum of every phase's scratch,
     * not the largest phase's; re-touching costs ~0.1 s per 172 MiB. First
     * a previous job's (another tensor's error or quantization). */
    mpoc_ws_trim(ws, WS_KEEP_BYTES, 0);
    float *p = mpoc_ws_floats(ws, WS_MPO_A, total);
    mpoc_status st = p ? permute_into(w, &out->shape, p, ws) : MPOC_E_NOMEM;
    double t1 = now_seconds();
    if (st == MPOC_OK)
        st = tt_sweep(out, opt, stats.sum_sq, ws, rep);
    double t2 = now_seconds();
    mpoc_ws_trim(ws, WS_KEEP_BYTES, 0); /* P and the SVD scratch */
    if (st == MPOC_OK && !opt->skip_error)
        st = mpoc_mpo_rel_error(out, w, ws, &rep->rel_error);
    mpoc_ws_trim(ws, WS_KEEP_BYTES, 0); /* the caller's next phase starts lean */
    if (st != MPOC_OK) {
        mpoc_mpo_free(out);
        return st;
    }
    double dropped = 0.0;
    for (size_t k = 0; k + 1 < out->shape.sites; k++)
        dropped += out->discarded_sq[k];
    rep->norm = sqrt(stats.sum_sq);
    rep->rel_error_dropped = stats.sum_sq > 0.0 ? sqrt(dropped / stats.sum_sq) : 0.0;
    rep->params = mpoc_mpo_params(out);
    rep->dense_params = w.rows * w.cols;
    rep->seconds_permute = t1 - t0;
    rep->seconds_svd = t2 - t1;
    rep->seconds_error = now_seconds() - t2;
    rep->workspace_bytes = mpoc_workspace_peak_bytes(ws);
    return MPOC_OK;
}

mpoc_status mpoc_mpo_decompose(mpoc_mat_view w, const mpoc_mpo_options *opt, mpoc_mpo *out,
                               mpoc_mpo_report *report)
{
    mpoc_workspace *ws;
    memset(out, 0, sizeof *out);
    MPOC_TRY(mpoc_workspace_new(&ws));
    mpoc_status st = mpoc_mpo_decompose_ex(w, opt, ws, out, report);
    mpoc_workspace_free(ws);
    return st;
}

/* ------------------------------------------------- gauge moves, rounding */

/* core_{k+1} ← M (r_new × r_{k+1}) · core_{k+1}. */
static mpoc_status absorb_left(mpoc_mpo *mpo, size_t k1, const float *m, size_t r_new)
{
    size_t cols = site_size(&mpo->shape, k1) * mpo->ranks[k1 + 1];
    float *c = mpoc_alloc_array(r_new * cols, sizeof(float));
    if (!c)
        return MPOC_E_NOMEM;
    mpoc_status st = mpoc_la_gemm(false, false, r_new, cols, mpo->ranks[k1], 1.0f, m,
                                  mpo->ranks[k1], mpo->cores[k1], cols, 0.0f, c, cols);
    if (st != MPOC_OK) {
        free(c);
        return st;
    }
    free(mpo->cores[k1]);
    mpo->cores[k1] = c;
    mpo->ranks[k1] = r_new;
    return MPOC_OK;
}

/* core_{k−1} ← core_{k−1} · M (r_k × r_new). */
static mpoc_status absorb_right(mpoc_mpo *mpo, size_t k0, const float *m, size_t r_new)
{
    size_t rows = mpo->ranks[k0] * site_size(&mpo->shape, k0), r = mpo->ranks[k0 + 1];
    float *c = mpoc_alloc_array(rows * r_new, sizeof(float));
    if (!c)
        return MPOC_E_NOMEM;
    mpoc_status st = mpoc_la_gemm(false, false, rows, r_new, r, 1.0f, mpo->cores[k0], r, m, r_new,
                                  0.0f, c, r_new);
    if (st != MPOC_OK) {
        free(c);
        return st;
    }
    free(mpo->cores[k0]);
    mpo->cores[k0] = c;
    mpo->ranks[k0 + 1] = r_new;
    return MPOC_OK;
}

/* SVD of core k as a (rows × cols) matrix with the given rules; the factors
 * stay in ws (see svd_internal.h). */
static mpoc_status core_svd(const mpoc_mpo *mpo, size_t k, bool left_matrix, const mpoc_trunc *t,
                            struct mpoc_workspace *ws, mpoc_svd_view *v)
{
    size_t s = site_size(&mpo->shape, k);
    size_t rows = left_matrix ? mpo->ranks[k] * s : mpo->ranks[k];
    size_t cols = left_matrix ? mpo->ranks[k + 1] : s * mpo->ranks[k + 1];
    mpoc_svd_options o = mpoc_svd_options_default();
    o.method = MPOC_SVD_EXACT; /* cores are small: the exact path is cheap and exact */
    o.trunc = *t;
    return mpoc_svd_ws(mpoc_view_wrap(mpo->cores[k], rows, cols, cols), &o, false, ws, v);
}

/* diag(s)·Vt (r × cols) or U·diag(s) (rows × r) into a new buffer. */
static float *scaled_factor(const mpoc_svd_view *v, bool rows_of_vt, size_t other)
{
    size_t r = v->rank;
    float *m = mpoc_alloc_array(r * other, sizeof(float));
    if (!m)
        return NULL;
    for (size_t i = 0; i < (rows_of_vt ? r : other); i++)
        for (size_t j = 0; j < (rows_of_vt ? other : r); j++)
            m[i * (rows_of_vt ? other : r) + j] =
                rows_of_vt ? v->s[i] * v->vt[i * v->ldvt + j] : v->u[i * v->ldu + j] * v->s[j];
    return m;
}

/* Make core k left-orthonormal, pushing the rest into core k+1; with a
 * truncation rule this is one step of the rounding sweep. */
static mpoc_status left_step(mpoc_mpo *mpo, size_t k, const mpoc_trunc *t, struct mpoc_workspace *ws,
                             double *discarded)
{
    size_t rows = mpo->ranks[k] * site_size(&mpo->shape, k), r = mpo->ranks[k + 1];
    mpoc_svd_view v;
    MPOC_TRY(core_svd(mpo, k, true, t, ws, &v));
    float *sv = scaled_factor(&v, true, r);
    if (!sv)
        return MPOC_E_NOMEM;
    float *u = mpoc_alloc_array(rows * v.rank, sizeof(float));
    mpoc_status st = u ? MPOC_OK : MPOC_E_NOMEM;
    for (size_t i = 0; st == MPOC_OK && i < rows; i++)
        memcpy(u + i * v.rank, v.u + i * v.ldu, v.rank * sizeof(float));
    if (st == MPOC_OK)
        st = store_spectrum(mpo, k, v.s, v.rank);
    if (st == MPOC_OK)
        st = absorb_left(mpo, k + 1, sv, v.rank);
    if (st == MPOC_OK) {
        free(mpo->cores[k]);
        mpo->cores[k] = u;
        u = NULL;
        if (discarded)
            *discarded = v.discarded_sq;
    }
    free(u);
    free(sv);
    return st;
}

/* Exact left move by QR when core k, as (r_k s_k) × r_{k+1}, is tall:
 * core_k ← Q, core_{k+1} ← R·core_{k+1}. The tensor (and so every bond
 * spectrum) is unchanged. */
static mpoc_status left_qr(mpoc_mpo *mpo, size_t k, struct mpoc_workspace *ws)
{
    size_t rows = mpo->ranks[k] * site_size(&mpo->shape, k), r = mpo->ranks[k + 1];
    float *rr = mpoc_alloc_array(r * r, sizeof(float));
    if (!rr)
        return MPOC_E_NOMEM;
    mpoc_status st = mpoc_la_qr(mpo->cores[k], rows, r, r, rr, ws);
    if (st == MPOC_OK)
        st = absorb_left(mpo, k + 1, rr, r);
    free(rr);
    return st;
}

/* Exact right move by LQ when core k, as r_k × (s_k r_{k+1}), is wide:
 * core_k ← Q, core_{k−1} ← core_{k−1}·L. */
static mpoc_status right_lq(mpoc_mpo *mpo, size_t k, struct mpoc_workspace *ws)
{
    size_t r = mpo->ranks[k], cols = site_size(&mpo->shape, k) * mpo->ranks[k + 1];
    float *l = mpoc_alloc_array(r * r, sizeof(float));
    if (!l)
        return MPOC_E_NOMEM;
    mpoc_status st = mpoc_la_lq(mpo->cores[k], r, cols, cols, l, ws);
    if (st == MPOC_OK)
        st = absorb_right(mpo, k - 1, l, r);
    free(l);
    return st;
}

/* Make core k right-orthonormal, pushing the rest into core k−1: LQ when
 * the core is wide, else an exact SVD that also trims the bond to the
 * core's rank bound. */
static mpoc_status right_step(mpoc_mpo *mpo, size_t k, struct mpoc_workspace *ws)
{
    size_t cols = site_size(&mpo->shape, k) * mpo->ranks[k + 1], r = mpo->ranks[k];
    if (r <= cols)
        return right_lq(mpo, k, ws);
    mpoc_trunc exact = {0};
    exact.keep_zeros = true;
    mpoc_svd_view v;
    MPOC_TRY(core_svd(mpo, k, false, &exact, ws, &v));
    float *us = scaled_factor(&v, false, r);
    if (!us)
        return MPOC_E_NOMEM;
    size_t rank = v.rank;
    float *vt = mpoc_alloc_array(rank * cols, sizeof(float));
    mpoc_status st = vt ? MPOC_OK : MPOC_E_NOMEM;
    for (size_t i = 0; st == MPOC_OK && i < rank; i++)
        memcpy(vt + i * cols, v.vt + i * v.ldvt, cols * sizeof(float));
    if (st == MPOC_OK)
        st = absorb_right(mpo, k - 1, us, rank);
    if (st == MPOC_OK) {
        free(mpo->cores[k]);
        mpo->cores[k] = vt;
        vt = NULL;
    }
    free(vt);
    free(us);
    return st;
}

/* Exact left move: QR when the core is tall, else an SVD step. */
static mpoc_status left_move(mpoc_mpo *mpo, size_t k, struct mpoc_workspace *ws)
{
    size_t rows = mpo->ranks[k] * site_size(&mpo->shape, k);
    if (rows >= mpo->ranks[k + 1])
        return left_qr(mpo, k, ws);
    mpoc_trunc exact = {0};
    exact.keep_zeros = true;
    return left_step(mpo, k, &exact, ws, NULL);
}

mpoc_status mpoc_mpo_canonicalize(mpoc_mpo *mpo, size_t c, mpoc_workspace *user_ws)
{
    MPOC_TRY(check_mpo(mpo));
    size_t d = mpo->shape.sites;
    if (c >= d)
        MPOC_FAIL(MPOC_E_INVAL, "centre %zu is outside the %zu sites", c, d);
    mpoc_workspace *owned;
    struct mpoc_workspace *ws = ws_or_new(user_ws, &owned);
    if (!ws)
        return MPOC_E_NOMEM;
    /* From a known centre only the cores in between move; otherwise sweep all. */
    bool known = mpo->centre != MPOC_NO_CENTRE && mpo->centre < d;
    size_t from_left = known ? (mpo->centre <= c ? mpo->centre : c) : 0;
    size_t from_right = known ? (mpo->centre >= c ? mpo->centre : c) : d - 1;
    mpoc_status st = MPOC_OK;
    for (size_t k = from_left; st == MPOC_OK && k < c; k++)
        st = left_move(mpo, k, ws);
    for (size_t k = from_right; st == MPOC_OK && k > c; k--)
        st = right_step(mpo, k, ws);
    if (st == MPOC_OK)
        mpo->centre = c;
    mpoc_workspace_free(owned);
    return st;
}

mpoc_status mpoc_mpo_round(mpoc_mpo *mpo, const mpoc_mpo_options *opt, mpoc_workspace *user_ws)
{
    MPOC_TRY(check_mpo(mpo));
    MPOC_TRY(mpoc_svd_check_options(&opt->svd));
    mpoc_workspace *owned;
    struct mpoc_workspace *ws = ws_or_new(user_ws, &owned);
    if (!ws)
        return MPOC_E_NOMEM;
    size_t d = mpo->shape.sites;
    /* 1. right-orthonormal sweep: the centre (and the whole norm) on core 0 */
    mpoc_status st = mpoc_mpo_canonicalize(mpo, 0, ws);
    double norm_sq = 0.0, spent = 0.0;
    if (st == MPOC_OK) {
        size_t n0 = mpoc_mpo_core_size(mpo, 0);
        for (size_t i = 0; i < n0; i++)
            norm_sq += (double)mpo->cores[0][i] * (double)mpo->cores[0][i];
    }
    /* 2. truncating sweep left to right: each core's SVD sees exact Schmidt values */
    for (size_t k = 0; st == MPOC_OK && k + 1 < d; k++) {
        mpoc_svd_options o = bond_options(opt, norm_sq, spent, d - 1 - k);
        double dropped = 0.0;
        st = left_step(mpo, k, &o.trunc, ws, &dropped);
        mpo->discarded_sq[k] += dropped;
        spent += dropped;
    }
    if (st == MPOC_OK)
        mpo->centre = d - 1;
    mpoc_workspace_free(owned);
    return st;
}

/* --------------------------------------------------------------- apply */

/* Gp[(o, r'), (r, i)] = G[r, i, o, r'] (transposed) or G[r, o, i, r']: the
 * output index and right bond as rows, left bond and input index as columns. */
static void permute_core(const mpoc_mpo *mpo, size_t k, bool transpose, float *gp)
{
    size_t r = mpo->ranks[k], r2 = mpo->ranks[k + 1];
    size_t m = mpo->shape.row_dims[k], n = mpo->shape.col_dims[k];
    size_t in_d = transpose ? m : n;
    const float *g = mpo->cores[k];
    for (size_t a = 0; a < r; a++)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                for (size_t b = 0; b < r2; b++) {
                    size_t o = transpose ? j : i, in = transpose ? i : j;
                    gp[(o * r2 + b) * (r * in_d) + a * in_d + in] = g[((a * m + i) * n + j) * r2 + b];
                }
}

/* Largest intermediate of the sweep (see mpoc_mpo_apply) and largest core. */
static void apply_sizes(const mpoc_mpo *mpo, bool transpose, size_t batch, size_t *zmax, size_t *gmax)
{
    const mpoc_shape *s = &mpo->shape;
    const size_t *in = transpose ? s->row_dims : s->col_dims, *out = transpose ? s->col_dims : s->row_dims;
    *zmax = 0;
    *gmax = 0;
    for (size_t k = 0; k <= s->sites; k++) {
        size_t z = mpo->ranks[k] * batch;
        for (size_t l = k; l < s->sites; l++)
            z *= in[l];
        for (size_t l = 0; l < k; l++)
            z *= out[l];
        *zmax = z > *zmax ? z : *zmax;
        if (k < s->sites && mpoc_mpo_core_size(mpo, k) > *gmax)
            *gmax = mpoc_mpo_core_size(mpo, k);
    }
}

static mpoc_status check_apply(const mpoc_mpo *mpo, mpoc_mat_view x, bool transpose, mpoc_mat_view y)
{
    size_t in = transpose ? mpo->shape.rows : mpo->shape.cols;
    size_t out = transpose ? mpo->shape.cols : mpo->shape.rows;
    if (x.cols != in || y.cols != out || x.rows != y.rows || x.rows == 0 || !x.data || !y.data ||
        x.ld < x.cols || y.ld < y.cols)
        MPOC_FAIL(MPOC_E_SHAPE, "apply: X is %zu x %zu and Y %zu x %zu, expected B x %zu and B x %zu",
                  x.rows, x.cols, y.rows, y.cols, in, out);
    return MPOC_OK;
}

/* Z_k holds [(r_k, j_k), (j_{k+1}..j_d, b, i_1..i_{k−1})]; Out = Gp·Z_k is
 * [i_k, (r_{k+1}, j_{k+1}, …, i_{k−1})], and moving i_k to the back (one
 * transpose) gives Z_{k+1}. Z_0 = Xᵀ (padded); Z_d = Y (padded). */
static mpoc_status apply_sweep(const mpoc_mpo *mpo, bool transpose, size_t batch, float *z, float *tmp,
                               float *gp, float **result)
{
    const mpoc_shape *s = &mpo->shape;
    const size_t *in = transpose ? s->row_dims : s->col_dims, *out = transpose ? s->col_dims : s->row_dims;
    size_t size = batch * (transpose ? s->padded_rows : s->padded_cols);
    for (size_t k = 0; k < s->sites; k++) {
        size_t r = mpo->ranks[k], r2 = mpo->ranks[k + 1];
        size_t l = size / (r * in[k]);
        permute_core(mpo, k, transpose, gp);
        MPOC_TRY(mpoc_la_gemm(false, false, out[k] * r2, l, r * in[k], 1.0f, gp, r * in[k], z, l,
                              0.0f, tmp, l));
        size = out[k] * r2 * l;
        MPOC_TRY(mpoc_la_transpose(out[k], size / out[k], tmp, size / out[k], z, out[k]));
    }
    *result = z;
    return MPOC_OK;
}

mpoc_status mpoc_mpo_apply(const mpoc_mpo *mpo, mpoc_mat_view x, bool transpose, mpoc_mat_view y,
                           mpoc_workspace *user_ws)
{
    MPOC_TRY(check_mpo(mpo));
    MPOC_TRY(check_apply(mpo, x, transpose, y));
    mpoc_workspace *owned;
    struct mpoc_workspace *ws = ws_or_new(user_ws, &owned);
    if (!ws)
        return MPOC_E_NOMEM;
    size_t zmax, gmax, b = x.rows;
    apply_sizes(mpo, transpose, b, &zmax, &gmax);
    float *z = mpoc_ws_floats(ws, WS_MPO_A, zmax), *tmp = mpoc_ws_floats(ws, WS_MPO_B, zmax);
    float *gp = mpoc_ws_floats(ws, WS_MPO_CORE, gmax);
    mpoc_status st = z && tmp && gp ? MPOC_OK : MPOC_E_NOMEM;
    size_t in_pad = transpose ? mpo->shape.padded_rows : mpo->shape.padded_cols;
    size_t out_pad = transpose ? mpo->shape.padded_cols : mpo->shape.padded_rows;
    if (st == MPOC_OK) { /* Z_0 = Xᵀ, zero rows for the padded inputs */
        st = mpoc_la_transpose(b, x.cols, x.data, x.ld, z, b);
        memset(z + x.cols * b, 0, (in_pad - x.cols) * b * sizeof(float));
    }
    float *res = NULL;
    if (st == MPOC_OK)
        st = apply_sweep(mpo, transpose, b, z, tmp, gp, &res);
    if (st == MPOC_OK)
        for (size_t i = 0; i < b; i++)
            memcpy(y.data + i * y.ld, res + i * out_pad, y.cols * sizeof(float));
    mpoc_workspace_free(owned);
    return st;
}

/* ------------------------------------------------------- prepared apply */

struct mpoc_mpo_plan {
    size_t sites;
    size_t in_d[MPOC_MAX_SITES], out_d[MPOC_MAX_SITES]; /* per site, after transpose */
    size_t ranks[MPOC_MAX_SITES + 1];
    size_t in, out, in_pad, out_pad;     /* X has `in` columns, Y `out` */
    mpoc_mpo_order order;                /* LEFT or RIGHT */
    double macs;                         /* per input row */
    float *cores[MPOC_MAX_SITES];        /* permuted for the order's gemm */
};

/* Multiply-adds per input row of one order, from the site dims. */
static double order_macs(const mpoc_mpo *mpo, const size_t *in, const size_t *out, bool left)
{
    size_t d = mpo->shape.sites;
    double total = 0.0;
    for (size_t k = 0; k < d; k++) {
        double c = (double)mpoc_mpo_core_size(mpo, k);
        for (size_t l = 0; l < k; l++)
            c *= (double)(left ? out[l] : in[l]);
        for (size_t l = k + 1; l < d; l++)
            c *= (double)(left ? in[l] : out[l]);
        total += c;
    }
    return total;
}

mpoc_status mpoc_mpo_apply_macs(const mpoc_mpo *mpo, bool transpose, mpoc_mpo_order order,
                                double *macs)
{
    MPOC_TRY(check_mpo(mpo));
    const mpoc_shape *s = &mpo->shape;
    const size_t *in = transpose ? s->row_dims : s->col_dims, *out = transpose ? s->col_dims : s->row_dims;
    double l = order_macs(mpo, in, out, true), r = order_macs(mpo, in, out, false);
    *macs = order == MPOC_MPO_ORDER_LEFT ? l : order == MPOC_MPO_ORDER_RIGHT ? r : fmin(l, r);
    return MPOC_OK;
}

void mpoc_mpo_plan_free(mpoc_mpo_plan *p)
{
    if (!p)
        return;
    for (size_t k = 0; k < p->sites; k++)
        free(p->cores[k]);
    free(p);
}

mpoc_mpo_order mpoc_mpo_plan_order(const mpoc_mpo_plan *p) { return p->order; }
double mpoc_mpo_plan_macs(const mpoc_mpo_plan *p) { return p->macs; }

mpoc_status mpoc_mpo_plan_new(const mpoc_mpo *mpo, bool transpose, mpoc_mpo_order order,
                              mpoc_mpo_plan **out)
{
    *out = NULL;
    MPOC_TRY(check_mpo(mpo));
    if ((unsigned)order > MPOC_MPO_ORDER_RIGHT)
        MPOC_FAIL(MPOC_E_INVAL, "MPO plan: invalid order %d", (int)order);
    const mpoc_shape *s = &mpo->shape;
    mpoc_mpo_plan *p = calloc(1, sizeof *p);
    if (!p)
        return MPOC_E_NOMEM;
    p->sites = s->sites;
    const size_t *in = transpose ? s->row_dims : s->col_dims, *o = transpose ? s->col_dims : s->row_dims;
    memcpy(p->in_d, in, s->sites * sizeof(size_t));
    memcpy(p->out_d, o, s->sites * sizeof(size_t));
    memcpy(p->ranks, mpo->ranks, (s->sites + 1) * sizeof(size_t));
    p->in = transpose ? s->rows : s->cols;
    p->out = transpose ? s->cols : s->rows;
    p->in_pad = transpose ? s->padded_rows : s->padded_cols;
    p->out_pad = transpose ? s->padded_cols : s->padded_rows;
    double l = order_macs(mpo, in, o, true), r = order_macs(mpo, in, o, false);
    p->order = order == MPOC_MPO_ORDER_AUTO ? (r < l ? MPOC_MPO_ORDER_RIGHT : MPOC_MPO_ORDER_LEFT)
                                            : order;
    p->macs = p->order == MPOC_MPO_ORDER_LEFT ? l : r;
    for (size_t k = 0; k < s->sites; k++) {
        p->cores[k] = mpoc_alloc_array(mpoc_mpo_core_size(mpo, k), sizeof(float));
        if (!p->cores[k]) {
            mpoc_mpo_plan_free(p);
            return MPOC_E_NOMEM;
        }
        if (p->order == MPOC_MPO_ORDER_LEFT)
            permute_core(mpo, k, transpose, p->cores[k]);
        else
            /* right to left reads H[(in, r'), (r, out)]: the left layout with
             * input and output swapped, i.e. that of the transposed product */
            permute_core(mpo, k, !transpose, p->cores[k]);
    }
    *out = p;
    return MPOC_OK;
}

/* Largest state of the plan's sweep for a batch of b rows (checked). */
static mpoc_status plan_zmax(const mpoc_mpo_plan *p, size_t b, size_t *zmax)
{
    *zmax = 0;
    bool left = p->order == MPOC_MPO_ORDER_LEFT;
    for (size_t k = 0; k <= p->sites; k++) { /* the state between sites k−1 and k */
        size_t z = b;
        bool ok = mpoc_mul_size(z, p->ranks[k], &z);
        for (size_t l = 0; ok && l < p->sites; l++)
            ok = mpoc_mul_size(z, (l < k) == left ? p->out_d[l] : p->in_d[l], &z);
        if (!ok)
            MPOC_FAIL(MPOC_E_OVERFLOW, "MPO plan: intermediate of batch %zu overflows", b);
        *zmax = z > *zmax ? z : *zmax;
    }
    return MPOC_OK;
}

/* Left to right (as apply_sweep, cores already permuted). z holds Z_0 = Xᵀ
 * (in_pad × b); the last transpose goes to `dst` (ld out_pad) when given. */
static mpoc_status plan_left(const mpoc_mpo_plan *p, size_t b, const float *z0, float *z,
                             float *tmp, float *dst, const float **result)
{
    size_t size = b * p->in_pad;
    const float *cur = z0;
    for (size_t k = 0; k < p->sites; k++) {
        size_t r = p->ranks[k], r2 = p->ranks[k + 1], in = p->in_d[k], o = p->out_d[k];
        size_t l = size / (r * in);
        MPOC_TRY(mpoc_la_gemm(false, false, o * r2, l, r * in, 1.0f, p->cores[k], r * in, cur, l,
                              0.0f, tmp, l));
        size = o * r2 * l;
        float *next = k + 1 == p->sites && dst ? dst : z;
        MPOC_TRY(mpoc_la_transpose(o, size / o, tmp, size / o, next, o));
        cur = next;
    }
    *result = cur;
    return MPOC_OK;
}

/* Right to left: R_k = [(out_{>k}, b, in_{<k}), (in_k, r_{k+1})]; C = R_k·H_k
 * is [(…), (r_k, out_k)], and moving out_k to the front (one transpose)
 * gives R_{k−1}. R_{d−1} = X (padded); R_{−1} = Yᵀ (out_pad × b). */
static mpoc_status plan_right(const mpoc_mpo_plan *p, size_t b, const float *x0, float *z,
                              float *tmp, const float **result)
{
    size_t size = b * p->in_pad;
    const float *cur = x0;
    for (size_t k = p->sites; k-- > 0;) {
        size_t r = p->ranks[k], r2 = p->ranks[k + 1], in = p->in_d[k], o = p->out_d[k];
        size_t q = size / (in * r2);
        MPOC_TRY(mpoc_la_gemm(false, false, q, r * o, in * r2, 1.0f, cur, in * r2, p->cores[k],
                              r * o, 0.0f, tmp, r * o));
        size = q * r * o;
        MPOC_TRY(mpoc_la_transpose(q * r, o, tmp, o, z, q * r));
        cur = z; /* the gemm has consumed z before the transpose overwrites it */
    }
    *result = cur;
    return MPOC_OK;
}

mpoc_status mpoc_mpo_plan_apply(const mpoc_mpo_plan *p, mpoc_mat_view x, mpoc_mat_view y,
                                mpoc_workspace *user_ws)
{
    if (!p || x.cols != p->in || y.cols != p->out || x.rows != y.rows || x.rows == 0 || !x.data ||
        !y.data || x.ld < x.cols || y.ld < y.cols)
        MPOC_FAIL(MPOC_E_SHAPE, "apply: X is %zu x %zu and Y %zu x %zu, expected B x %zu and B x %zu",
                  x.rows, x.cols, y.rows, y.cols, p ? p->in : 0, p ? p->out : 0);
    size_t b = x.rows, zmax;
    MPOC_TRY(plan_zmax(p, b, &zmax));
    mpoc_workspace *owned;
    struct mpoc_workspace *ws = ws_or_new(user_ws, &owned);
    if (!ws)
        return MPOC_E_NOMEM;
    float *z = mpoc_ws_floats(ws, WS_MPO_A, zmax), *tmp = mpoc_ws_floats(ws, WS_MPO_B, zmax);
    mpoc_status st = z && tmp ? MPOC_OK : MPOC_E_NOMEM;
    bool padded_in = p->in_pad != p->in, padded_out = p->out_pad != p->out;
    const float *res = NULL;
    if (st == MPOC_OK && p->order == MPOC_MPO_ORDER_LEFT) {
        /* Z_0 = Xᵀ: X itself for one unpadded row */
        const float *z0 = x.data;
        if (b > 1 || padded_in) {
            st = mpoc_la_transpose(b, x.cols, x.data, x.ld, z, b);
            memset(z + x.cols * b, 0, (p->in_pad - x.cols) * b * sizeof(float));
            z0 = z;
        }
        /* the last transpose writes Y in place when its rows are contiguous */
        bool direct = !padded_out && (b == 1 || y.ld == y.cols);
        if (st == MPOC_OK)
            st = plan_left(p, b, z0, z, tmp, direct ? y.data : NULL, &res);
        if (st == MPOC_OK && res != y.data)
            for (size_t i = 0; i < b; i++)
                memcpy(y.data + i * y.ld, res + i * p->out_pad, y.cols * sizeof(float));
    } else if (st == MPOC_OK) {
        /* R_{d−1} = X: used in place when unpadded and contiguous */
        const float *x0 = x.data;
        if (padded_in || (b > 1 && x.ld != x.cols)) {
            for (size_t i = 0; i < b; i++) {
                memcpy(z + i * p->in_pad, x.data + i * x.ld, x.cols * sizeof(float));
                memset(z + i * p->in_pad + x.cols, 0, (p->in_pad - x.cols) * sizeof(float));
            }
            x0 = z;
        }
        st = plan_right(p, b, x0, z, tmp, &res);
        /* res is Yᵀ (out_pad × b): crop and transpose into Y */
        if (st == MPOC_OK)
            st = mpoc_la_transpose(p->out, b, res, b, y.data, y.ld);
    }
    mpoc_workspace_free(owned);
    return st;
}

/* ------------------------------------------------------------------ random */

mpoc_status mpoc_mpo_random(const mpoc_shape *shape, const size_t *ranks, uint64_t seed, mpoc_mpo *out)
{
    memset(out, 0, sizeof *out);
    if (!shape || shape->sites == 0 || shape->sites > MPOC_MAX_SITES || ranks[0] != 1 ||
        ranks[shape->sites] != 1)
        MPOC_FAIL(MPOC_E_SHAPE, "random MPO: bad shape or boundary ranks");
    out->shape = *shape;
    out->centre = MPOC_NO_CENTRE;
    for (size_t k = 0; k <= shape->sites; k++) {
        if (ranks[k] == 0)
            MPOC_FAIL(MPOC_E_SHAPE, "random MPO: rank %zu is zero", k);
        out->ranks[k] = ranks[k];
    }
    for (size_t k = 0; k < shape->sites; k++) {
        size_t n = mpoc_mpo_core_size(out, k);
        out->cores[k] = mpoc_alloc_array(n, sizeof(float));
        mpoc_status st = out->cores[k] ? mpoc_rng_gaussian(seed, k, out->cores[k], n, 1) : MPOC_E_NOMEM;
        if (st != MPOC_OK) {
            mpoc_mpo_free(out);
            return st;
        }
        float scale = 1.0f / sqrtf((float)(ranks[k] * site_size(shape, k)));
        for (size_t i = 0; i < n; i++)
            out->cores[k][i] *= scale;
    }
    return MPOC_OK;
}
