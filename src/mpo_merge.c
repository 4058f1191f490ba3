/* mpo_merge.c: merging runs of adjacent MPO sites into one (mpoc_mpo.h).
 *
 * Applying an MPO to a batch costs, per input row, Σ_k |G_k| times the
 * product of the output dims left of k and the input dims right of k (or
 * the mirror). A middle core with bonds r on both sides therefore costs
 * ~ r²·(site dims)·(other dims): with growing χ this passes the dense m·n
 * long before the parameter count does. Contracting the middle and last
 * cores into one replaces the r² term by r·(their dims): more parameters,
 * far fewer multiply-adds. mpoc_mpo_merge_choose picks the grouping with
 * the fewest multiply-adds under a parameter cap, so batched products can
 * run on a merged copy while single rows keep the smaller original. The
 * merged MPO is still applied core by core: never densified (the cap keeps
 * it well below the dense size). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "linalg.h"
#include "mpoc_mpo.h"
#include "util.h"

/* Groupings are enumerated (2^(d−1)); beyond this many sites, none. */
#define MERGE_MAX_ENUM_SITES 12

typedef struct merged_dims {
    size_t sites;
    size_t m[MPOC_MAX_SITES], n[MPOC_MAX_SITES], r[MPOC_MAX_SITES + 1];
} merged_dims;

/* Dims and bonds of mpo with its sites grouped by `sizes` (checked). */
static mpoc_status group_dims(const mpoc_mpo *mpo, size_t n_groups, const size_t *sizes,
                              merged_dims *g)
{
    const mpoc_shape *s = &mpo->shape;
    size_t k = 0;
    g->sites = n_groups;
    g->r[0] = 1;
    for (size_t i = 0; i < n_groups; i++) {
        if (sizes[i] == 0 || sizes[i] > s->sites - k)
            MPOC_FAIL(MPOC_E_INVAL, "merge: group %zu of size %zu does not fit %zu sites", i,
                      sizes[i], s->sites);
        g->m[i] = g->n[i] = 1;
        for (size_t j = 0; j < sizes[i]; j++, k++)
            if (!mpoc_mul_size(g->m[i], s->row_dims[k], &g->m[i]) ||
                !mpoc_mul_size(g->n[i], s->col_dims[k], &g->n[i]))
                return MPOC_E_OVERFLOW;
        g->r[i + 1] = mpo->ranks[k];
    }
    if (k != s->sites)
        MPOC_FAIL(MPOC_E_INVAL, "merge: groups cover %zu of %zu sites", k, s->sites);
    return MPOC_OK;
}

/* Multiply-adds per input row of the cheaper direction, and parameters. */
static void grouped_cost(const merged_dims *g, bool transpose, double *macs, double *params)
{
    const size_t *in = transpose ? g->m : g->n, *out = transpose ? g->n : g->m;
    double left = 0.0, right = 0.0;
    *params = 0.0;
    for (size_t k = 0; k < g->sites; k++) {
        double core = (double)g->r[k] * (double)g->m[k] * (double)g->n[k] * (double)g->r[k + 1];
        double cl = core, cr = core;
        for (size_t l = 0; l < k; l++) {
            cl *= (double)out[l];
            cr *= (double)in[l];
        }
        for (size_t l = k + 1; l < g->sites; l++) {
            cl *= (double)in[l];
            cr *= (double)out[l];
        }
        left += cl;
        right += cr;
        *params += core;
    }
    *macs = fmin(left, right);
}

mpoc_status mpoc_mpo_merge_cost(const mpoc_mpo *mpo, bool transpose, size_t n_groups,
                                const size_t *sizes, double *macs, double *params)
{
    merged_dims g;
    MPOC_TRY(group_dims(mpo, n_groups, sizes, &g));
    grouped_cost(&g, transpose, macs, params);
    return MPOC_OK;
}

/* Group sizes of the grouping whose bit k (k < d−1) says "cut after site k". */
static size_t sizes_of_cuts(size_t d, unsigned long cuts, size_t *sizes)
{
    size_t n = 0, len = 1;
    for (size_t k = 0; k + 1 < d; k++, len++)
        if (cuts >> k & 1ul) {
            sizes[n++] = len;
            len = 0;
        }
    sizes[n++] = len;
    return n;
}

mpoc_status mpoc_mpo_merge_choose(const mpoc_mpo *mpo, bool transpose, double max_params,
                                  size_t *n_groups, size_t *sizes)
{
    size_t d = mpo->shape.sites;
    if (d == 0 || d > MPOC_MAX_SITES)
        MPOC_FAIL(MPOC_E_SHAPE, "merge: MPO with %zu sites", d);
    *n_groups = d;
    for (size_t k = 0; k < d; k++)
        sizes[k] = 1;
    if (d > MERGE_MAX_ENUM_SITES)
        return MPOC_OK;
    double best_macs, best_params;
    MPOC_TRY(mpoc_mpo_merge_cost(mpo, transpose, d, sizes, &best_macs, &best_params));
    size_t trial[MPOC_MAX_SITES];
    unsigned long all = (1ul << (d - 1)) - 1ul;
    for (unsigned long cuts = 0; cuts < all; cuts++) { /* `all` itself: the original */
        size_t n = sizes_of_cuts(d, cuts, trial);
        double macs, params;
        MPOC_TRY(mpoc_mpo_merge_cost(mpo, transpose, n, trial, &macs, &params));
        if (n < 2 || params > max_params || macs >= best_macs)
            continue; /* one group would be the dense matrix itself */
        best_macs = macs;
        *n_groups = n;
        memcpy(sizes, trial, n * sizeof *sizes);
    }
    return MPOC_OK;
}

/* T [r_a, M, N, r] · G [r, m, n, r'] → [r_a, M·m, N·n, r'] (row digits of
 * the earlier sites most significant, as in a shape's dims). */
static mpoc_status absorb_core(const float *t, size_t ra, size_t mm, size_t nn, size_t r,
                               const float *g, size_t m, size_t n, size_t r2, float **out)
{
    size_t rows, cols, total;
    if (!mpoc_mul_size(ra * mm, nn, &rows) || !mpoc_mul_size(m * n, r2, &cols) ||
        !mpoc_mul_size(rows, cols, &total))
        return MPOC_E_OVERFLOW;
    float *prod = mpoc_alloc_array(total, sizeof(float)); /* [r_a, M, N, m, n, r'] */
    float *res = mpoc_alloc_array(total, sizeof(float));
    mpoc_status st = prod && res ? MPOC_OK : MPOC_E_NOMEM;
    if (st == MPOC_OK)
        st = mpoc_la_gemm(false, false, rows, cols, r, 1.0f, t, r, g, cols, 0.0f, prod, cols);
    for (size_t a = 0; st == MPOC_OK && a < ra; a++)
        for (size_t I = 0; I < mm; I++)
            for (size_t J = 0; J < nn; J++)
                for (size_t i = 0; i < m; i++) {
                    const float *src = prod + (((a * mm + I) * nn + J) * m + i) * n * r2;
                    for (size_t j = 0; j < n; j++)
                        memcpy(res + (((a * mm + I) * m + i) * (nn * n) + J * n + j) * r2,
                               src + j * r2, r2 * sizeof(float));
                }
    free(prod);
    if (st != MPOC_OK) {
        free(res);
        return st;
    }
    *out = res;
    return MPOC_OK;
}

/* Contract sites first..first+count−1 of mpo into one core. */
static mpoc_status merge_group(const mpoc_mpo *mpo, size_t first, size_t count, float **out)
{
    const mpoc_shape *s = &mpo->shape;
    size_t ra = mpo->ranks[first], mm = s->row_dims[first], nn = s->col_dims[first];
    size_t n0 = mpoc_mpo_core_size(mpo, first);
    float *t = mpoc_alloc_array(n0, sizeof(float));
    if (!t)
        return MPOC_E_NOMEM;
    memcpy(t, mpo->cores[first], n0 * sizeof(float));
    for (size_t k = first + 1; k < first + count; k++) {
        float *next;
        mpoc_status st = absorb_core(t, ra, mm, nn, mpo->ranks[k], mpo->cores[k], s->row_dims[k],
                                     s->col_dims[k], mpo->ranks[k + 1], &next);
        free(t);
        if (st != MPOC_OK)
            return st;
        t = next;
        mm *= s->row_dims[k]; /* bounded: absorb_core checked the products */
        nn *= s->col_dims[k];
    }
    *out = t;
    return MPOC_OK;
}

mpoc_status mpoc_mpo_merge_sites(const mpoc_mpo *mpo, size_t n_groups, const size_t *sizes,
                                 mpoc_mpo *out)
{
    memset(out, 0, sizeof *out);
    merged_dims g;
    MPOC_TRY(group_dims(mpo, n_groups, sizes, &g));
    for (size_t k = 0; k < mpo->shape.sites; k++)
        if (!mpo->cores[k])
            MPOC_FAIL(MPOC_E_SHAPE, "merge: MPO core %zu is missing", k);
    MPOC_TRY(mpoc_shape_explicit(mpo->shape.rows, mpo->shape.cols, n_groups, g.m, g.n,
                                 &out->shape));
    memcpy(out->ranks, g.r, (n_groups + 1) * sizeof(size_t));
    out->centre = MPOC_NO_CENTRE;
    size_t first = 0;
    for (size_t i = 0; i < n_groups; i++) {
        mpoc_status st = merge_group(mpo, first, sizes[i], &out->cores[i]);
        if (st != MPOC_OK) {
            mpoc_mpo_free(out);
            return st;
        }
        first += sizes[i];
    }
    return MPOC_OK;
}
