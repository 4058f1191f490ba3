/* mat.c: owning matrices, views, and one-pass statistics in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mpoc_mat.h"
#include "util.h"

mpoc_status mpoc_mat_alloc(mpoc_mat *m, size_t rows, size_t cols)
{
    memset(m, 0, sizeof *m);
    if (rows == 0 || cols == 0)
        MPOC_FAIL(MPOC_E_SHAPE, "matrix of %zu x %zu: both dimensions must be at least 1", rows, cols);
    size_t n;
    if (!mpoc_mul_size(rows, cols, &n) || n > SIZE_MAX / sizeof(float))
        MPOC_FAIL(MPOC_E_OVERFLOW, "matrix of %zu x %zu floats does not fit in memory", rows, cols);
    m->data = mpoc_alloc_array(n, sizeof(float));
    if (!m->data)
        MPOC_FAIL(MPOC_E_NOMEM, "cannot allocate a %zu x %zu float matrix", rows, cols);
    m->rows = rows;
    m->cols = cols;
    return MPOC_OK;
}

mpoc_status mpoc_mat_zeros(mpoc_mat *m, size_t rows, size_t cols)
{
    MPOC_TRY(mpoc_mat_alloc(m, rows, cols));
    memset(m->data, 0, rows * cols * sizeof(float));
    return MPOC_OK;
}

mpoc_status mpoc_mat_copy(mpoc_mat *dst, mpoc_mat_view src)
{
    MPOC_TRY(mpoc_mat_alloc(dst, src.rows, src.cols));
    for (size_t i = 0; i < src.rows; i++)
        memcpy(dst->data + i * src.cols, src.data + i * src.ld, src.cols * sizeof(float));
    return MPOC_OK;
}

void mpoc_mat_free(mpoc_mat *m)
{
    if (!m)
        return;
    free(m->data);
    memset(m, 0, sizeof *m);
}

mpoc_mat_view mpoc_mat_view_of(const mpoc_mat *m)
{
    mpoc_mat_view v = {m->rows, m->cols, m->cols, m->data};
    return v;
}

mpoc_mat_view mpoc_view_wrap(float *data, size_t rows, size_t cols, size_t ld)
{
    mpoc_mat_view v = {rows, cols, ld, data};
    return v;
}

mpoc_mat_view mpoc_view_sub(mpoc_mat_view v, size_t r0, size_t c0, size_t nr, size_t nc)
{
    mpoc_mat_view s = {nr, nc, v.ld, v.data + r0 * v.ld + c0};
    return s;
}

mpoc_status mpoc_mat_scan(mpoc_mat_view v, mpoc_mat_stats *st)
{
    memset(st, 0, sizeof *st);
    float amax = 0.0f;
    double ssq = 0.0;
    for (size_t i = 0; i < v.rows; i++) {
        const float *row = v.data + i * v.ld;
        float rmax = 0.0f;
        double rs = 0.0;
        /* NaN or Inf make rs non-finite, found below; max ignores them */
#pragma omp simd reduction(max : rmax) reduction(+ : rs)
        for (size_t j = 0; j < v.cols; j++) {
            float a = fabsf(row[j]);
            rmax = a > rmax ? a : rmax;
            rs += (double)row[j] * (double)row[j];
        }
        if (!isfinite(rs)) { /* rare: find and count the culprits */
            for (size_t j = 0; j < v.cols; j++) {
                if (isfinite(row[j]))
                    continue;
                if (st->n_nan + st->n_inf == 0) {
                    st->first_bad_row = i;
                    st->first_bad_col = j;
                }
                if (isnan(row[j]))
                    st->n_nan++;
                else
                    st->n_inf++;
            }
            continue;
        }
        amax = rmax > amax ? rmax : amax;
        ssq += rs;
    }
    st->max_abs = amax;
    st->sum_sq = ssq;
    if (st->n_nan || st->n_inf)
        MPOC_FAIL(MPOC_E_NUMERIC, "%zu NaN and %zu Inf values; first at row %zu, column %zu",
                  st->n_nan, st->n_inf, st->first_bad_row, st->first_bad_col);
    return MPOC_OK;
}

double mpoc_mat_norm(mpoc_mat_view v)
{
    double s = 0.0;
    for (size_t i = 0; i < v.rows; i++) {
        const float *row = v.data + i * v.ld;
        for (size_t j = 0; j < v.cols; j++)
            s += (double)row[j] * (double)row[j];
    }
    return sqrt(s);
}

double mpoc_mat_dot(mpoc_mat_view a, mpoc_mat_view b)
{
    if (a.rows != b.rows || a.cols != b.cols)
        return NAN;
    double s = 0.0;
    for (size_t i = 0; i < a.rows; i++) {
        const float *ra = a.data + i * a.ld, *rb = b.data + i * b.ld;
        for (size_t j = 0; j < a.cols; j++)
            s += (double)ra[j] * (double)rb[j];
    }
    return s;
}

double mpoc_mat_diff_norm(mpoc_mat_view a, mpoc_mat_view b)
{
    if (a.rows != b.rows || a.cols != b.cols)
        return NAN;
    double s = 0.0;
    for (size_t i = 0; i < a.rows; i++) {
        const float *ra = a.data + i * a.ld, *rb = b.data + i * b.ld;
        for (size_t j = 0; j < a.cols; j++) {
            double d = (double)ra[j] - (double)rb[j];
            s += d * d;
        }
    }
    return sqrt(s);
}
