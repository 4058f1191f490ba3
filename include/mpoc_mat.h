/* mpoc_mat.h: row-major float32 matrices and non-owning strided views.
 *
 * Element (i, j) of a view lives at data[i * ld + j]; ld >= cols. Views never
 * own memory: they borrow from an mpoc_mat or from caller memory and must not
 * outlive it. Norms, inner products and error sums accumulate in double. */
#ifndef MPOC_MAT_H
#define MPOC_MAT_H

#include <stddef.h>
#include <stdint.h>

#include "mpoc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A non-owning row-major view: rows × cols with row stride ld (elements). */
typedef struct mpoc_mat_view {
    size_t rows, cols, ld;
    float *data; /* borrowed; rows × ld floats are addressable */
} mpoc_mat_view;

/* An owning, contiguous row-major matrix (ld == cols). `data` is owned and
 * freed by mpoc_mat_free. A zero-initialised mpoc_mat is empty and valid. */
typedef struct mpoc_mat {
    size_t rows, cols;
    float *data; /* rows × cols floats, 64-byte aligned */
} mpoc_mat;

/* Allocate an uninitialised rows × cols matrix (rows, cols >= 1).
 * MPOC_E_OVERFLOW when rows·cols·4 does not fit, MPOC_E_NOMEM. */
mpoc_status mpoc_mat_alloc(mpoc_mat *m, size_t rows, size_t cols);
/* As mpoc_mat_alloc, zero-filled. */
mpoc_status mpoc_mat_zeros(mpoc_mat *m, size_t rows, size_t cols);
/* Deep copy of a view into a new contiguous matrix. */
mpoc_status mpoc_mat_copy(mpoc_mat *dst, mpoc_mat_view src);
/* Free the data and reset to empty; accepts NULL and empty matrices. */
void mpoc_mat_free(mpoc_mat *m);

/* View constructors (no allocation, no checks beyond what the types say). */
mpoc_mat_view mpoc_mat_view_of(const mpoc_mat *m);
mpoc_mat_view mpoc_view_wrap(float *data, size_t rows, size_t cols, size_t ld);
/* Rows [r0, r0+nr) and columns [c0, c0+nc) of v; caller keeps them in range. */
mpoc_mat_view mpoc_view_sub(mpoc_mat_view v, size_t r0, size_t c0, size_t nr, size_t nc);

/* One pass over a view: counts of NaN and Inf, max |x| over finite values,
 * and Σx² in double. */
typedef struct mpoc_mat_stats {
    size_t n_nan, n_inf;
    float max_abs;
    double sum_sq;
    size_t first_bad_row, first_bad_col; /* position of the first NaN/Inf */
} mpoc_mat_stats;

/* Fills *st; returns MPOC_E_NUMERIC (with the position logged) when the view
 * holds a NaN or Inf, MPOC_OK otherwise. */
mpoc_status mpoc_mat_scan(mpoc_mat_view v, mpoc_mat_stats *st);

/* Frobenius norm, accumulated in double. */
double mpoc_mat_norm(mpoc_mat_view v);
/* Σ a_ij b_ij in double; a and b must have the same shape (else NaN). */
double mpoc_mat_dot(mpoc_mat_view a, mpoc_mat_view b);
/* ‖a − b‖_F in double; same shape required (else NaN). */
double mpoc_mat_diff_norm(mpoc_mat_view a, mpoc_mat_view b);

#ifdef __cplusplus
}
#endif
#endif
