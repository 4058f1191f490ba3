/* svd_internal.h: the truncated SVD with its outputs left in the workspace,
 * for callers (TT-SVD, rounding) that consume them immediately. */
#ifndef MPOC_SVD_INTERNAL_H
#define MPOC_SVD_INTERNAL_H

#include "mpoc_svd.h"
#include "workspace.h"

typedef struct mpoc_svd_view {
    size_t rank;          /* kept rank r */
    float *u;             /* m × r, row stride ldu (workspace memory) */
    size_t ldu;
    float *s;             /* r values, descending */
    float *vt;            /* r × n, row stride ldvt (workspace memory) */
    size_t ldvt;
    double total_sq;      /* ‖A‖² */
    double discarded_sq;  /* energy dropped */
    mpoc_svd_method used;
} mpoc_svd_view;

/* Truncated SVD of a; the outputs live in ws slots WS_SVD_U/S/VT/COPY and
 * stay valid until the next call using ws. a must not live in ws. With
 * gram_ok, very wide inputs may use the double-Gram path, whose Vt rows are
 * orthonormal only to ~ε·σ_1/σ_k while Σ·Vt is exact (see linalg.h). */
mpoc_status mpoc_svd_ws(mpoc_mat_view a, const mpoc_svd_options *opt, bool gram_ok,
                        struct mpoc_workspace *ws, mpoc_svd_view *out);

/* Validate options; logs the offending field. */
mpoc_status mpoc_svd_check_options(const mpoc_svd_options *opt);

#endif
