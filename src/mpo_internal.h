/* mpo_internal.h: MPO helpers shared inside the library (never installed). */
#ifndef MPOC_MPO_INTERNAL_H
#define MPOC_MPO_INTERNAL_H

#include "mpoc_mpo.h"

/* A new buffer holding W permuted to site order [m_1, n_1, …, m_d, n_d] of
 * the shape s, zero where s pads (free()). The TT-SVD sweep and the error
 * feedback of quant.c both start from it. */
mpoc_status mpoc_mpo_permuted_copy(mpoc_mat_view w, const mpoc_shape *s, float **out);

#endif
