/* shape.c: splitting rows and columns into MPO sites (integers only).
 *
 * Each side is split into d factors by a greedy divisor search: the first
 * factor is the divisor closest (in log) to n^(1/d), then the rest is split
 * into d−1 the same way. Dimensions with a large prime factor (172 = 4·43,
 * 11008 = 2^8·43) give unbalanced factors; the pad policy may then round the
 * dimension up (≤ 12.5%) to one that splits evenly, zero-filled. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mpoc_mpo.h"
#include "util.h"

#define TARGET_SITE_SIZE 256.0
#define MAX_PAD_FRACTION 8 /* pad at most n/8 */
#define BAD_BALANCE 2.0    /* largest factor / ideal factor above which we pad */

/* Divisor of n closest to `ideal` in log distance (smaller on ties). */
static size_t closest_divisor(size_t n, double ideal)
{
    size_t best = 1;
    double best_d = INFINITY;
    for (size_t f = 1; f * f <= n; f++) {
        if (n % f)
            continue;
        size_t pair[2] = {f, n / f};
        for (int t = 0; t < 2; t++) {
            double dist = fabs(log((double)pair[t]) - log(ideal));
            if (dist < best_d - 1e-12 || (fabs(dist - best_d) <= 1e-12 && pair[t] < best)) {
                best_d = dist;
                best = pair[t];
            }
        }
    }
    return best;
}

/* Split n into d factors, largest first. */
static void split_dim(size_t n, size_t d, size_t *dims)
{
    size_t rest = n;
    for (size_t k = 0; k < d; k++) {
        size_t left = d - k;
        dims[k] = left == 1 ? rest : closest_divisor(rest, pow((double)rest, 1.0 / (double)left));
        rest /= dims[k];
    }
    /* largest first: the big (prime) site at the front keeps the left
     * unfoldings wide, where the QR/LQ-reduced SVD is cheap */
    for (size_t a = 0; a < d; a++)
        for (size_t b = a + 1; b < d; b++)
            if (dims[b] > dims[a]) {
                size_t t = dims[a];
                dims[a] = dims[b];
                dims[b] = t;
            }
}

/* How far the largest factor is above the ideal n^(1/d). */
static double imbalance(size_t n, size_t d, const size_t *dims)
{
    double ideal = pow((double)n, 1.0 / (double)d);
    return ideal > 0.0 ? (double)dims[0] / ideal : 1.0;
}

/* Best split of n or of a padded n' ≤ n + n/8, by the pad policy. */
static void choose_side(size_t n, size_t d, mpoc_pad_policy pad, size_t *padded, size_t *dims)
{
    split_dim(n, d, dims);
    *padded = n;
    double score = imbalance(n, d, dims);
    if (pad == MPOC_PAD_NEVER || (pad == MPOC_PAD_AUTO && score <= BAD_BALANCE))
        return;
    size_t trial[MPOC_MAX_SITES];
    for (size_t np = n + 1; np <= n + n / MAX_PAD_FRACTION; np++) {
        split_dim(np, d, trial);
        double sc = imbalance(np, d, trial);
        if (sc < score - 1e-9) {
            score = sc;
            *padded = np;
            memcpy(dims, trial, d * sizeof *dims);
        }
    }
}

static size_t auto_sites(size_t rows, size_t cols)
{
    double total = log((double)rows) + log((double)cols);
    size_t d = (size_t)ceil(total / log(TARGET_SITE_SIZE) - 1e-9);
    if (d < 2)
        d = 2;
    return d > MPOC_MAX_SITES ? MPOC_MAX_SITES : d;
}

static void finish(mpoc_shape *s)
{
    s->padded_rows = s->padded_cols = 1;
    for (size_t k = 0; k < s->sites; k++) {
        s->padded_rows *= s->row_dims[k];
        s->padded_cols *= s->col_dims[k];
    }
}

mpoc_status mpoc_shape_choose(size_t rows, size_t cols, size_t sites, mpoc_pad_policy pad,
                              mpoc_shape *out)
{
    memset(out, 0, sizeof *out);
    if (rows == 0 || cols == 0)
        MPOC_FAIL(MPOC_E_SHAPE, "cannot split a %zu x %zu matrix", rows, cols);
    if (sites > MPOC_MAX_SITES)
        MPOC_FAIL(MPOC_E_INVAL, "%zu sites requested; at most %d are supported", sites, MPOC_MAX_SITES);
    if (rows > SIZE_MAX / 2 || cols > SIZE_MAX / 2)
        return MPOC_E_OVERFLOW;
    out->sites = sites ? sites : auto_sites(rows, cols);
    out->rows = rows;
    out->cols = cols;
    size_t pr, pc;
    choose_side(rows, out->sites, pad, &pr, out->row_dims);
    choose_side(cols, out->sites, pad, &pc, out->col_dims);
    finish(out);
    return MPOC_OK;
}

mpoc_status mpoc_shape_explicit(size_t rows, size_t cols, size_t sites, const size_t *row_dims,
                                const size_t *col_dims, mpoc_shape *out)
{
    memset(out, 0, sizeof *out);
    if (sites == 0 || sites > MPOC_MAX_SITES)
        MPOC_FAIL(MPOC_E_SHAPE, "%zu sites: must be between 1 and %d", sites, MPOC_MAX_SITES);
    uint64_t pr = 1, pc = 1;
    for (size_t k = 0; k < sites; k++) {
        if (row_dims[k] == 0 || col_dims[k] == 0)
            MPOC_FAIL(MPOC_E_SHAPE, "site %zu has a zero dimension", k);
        if (!mpoc_mul_u64(pr, row_dims[k], &pr) || !mpoc_mul_u64(pc, col_dims[k], &pc) ||
            pr > SIZE_MAX / 2 || pc > SIZE_MAX / 2)
            MPOC_FAIL(MPOC_E_OVERFLOW, "site dimensions multiply past the size limit");
    }
    if (pr < rows || pc < cols)
        MPOC_FAIL(MPOC_E_SHAPE, "split %llu x %llu does not cover the %zu x %zu matrix",
                  (unsigned long long)pr, (unsigned long long)pc, rows, cols);
    out->sites = sites;
    out->rows = rows;
    out->cols = cols;
    memcpy(out->row_dims, row_dims, sites * sizeof *row_dims);
    memcpy(out->col_dims, col_dims, sites * sizeof *col_dims);
    finish(out);
    return MPOC_OK;
}

/* Parse "AxBxC" into dims; returns the count or 0 on a syntax error. */
static size_t parse_factors(const char *s, const char *end, size_t *dims)
{
    size_t n = 0;
    while (s < end) {
        if (!isdigit((unsigned char)*s) || n == MPOC_MAX_SITES)
            return 0;
        size_t v = 0;
        while (s < end && isdigit((unsigned char)*s)) {
            if (v > (SIZE_MAX - 9) / 10)
                return 0;
            v = v * 10 + (size_t)(*s++ - '0');
        }
        dims[n++] = v;
        if (s < end && *s++ != 'x')
            return 0;
        if (s == end && s[-1] == 'x')
            return 0;
    }
    return n;
}

mpoc_status mpoc_shape_parse(const char *spec, size_t rows, size_t cols, mpoc_shape *out)
{
    memset(out, 0, sizeof *out);
    const char *colon = spec ? strchr(spec, ':') : NULL;
    if (!colon)
        MPOC_FAIL(MPOC_E_INVAL, "shape '%s': expected ROWFACTORS:COLFACTORS such as 8x8x8:8x8x8",
                  spec ? spec : "");
    size_t rd[MPOC_MAX_SITES], cd[MPOC_MAX_SITES];
    size_t nr = parse_factors(spec, colon, rd);
    size_t nc = parse_factors(colon + 1, colon + strlen(colon), cd);
    if (nr == 0 || nc == 0)
        MPOC_FAIL(MPOC_E_INVAL, "shape '%s': factors must be positive integers joined by 'x' "
                  "(at most %d)", spec, MPOC_MAX_SITES);
    if (nr != nc)
        MPOC_FAIL(MPOC_E_SHAPE, "shape '%s': %zu row factors but %zu column factors (use 1s to even them)",
                  spec, nr, nc);
    return mpoc_shape_explicit(rows, cols, nr, rd, cd, out);
}

size_t mpoc_shape_max_rank(const mpoc_shape *s, size_t bond)
{
    uint64_t left = 1, right = 1;
    for (size_t k = 0; k < s->sites; k++) {
        uint64_t site = (uint64_t)s->row_dims[k] * s->col_dims[k];
        uint64_t *side = k <= bond ? &left : &right;
        if (!mpoc_mul_u64(*side, site, side))
            *side = UINT64_MAX;
    }
    uint64_t r = left < right ? left : right;
    return r > SIZE_MAX ? SIZE_MAX : (size_t)r;
}
