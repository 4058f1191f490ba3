/* mpo_internal.h: MPO helpers shared inside the library (never installed). */
#ifndef MPOC_MPO_INTERNAL_H
#define MPOC_MPO_INTERNAL_H

#include <stdint.h>

#include "mpoc_mpo.h"

/* A new buffer holding W permuted to site order [m_1, n_1, …, m_d, n_d] of
 * the shape s, zero where s pads (free()). The TT-SVD sweep and the error
 * feedback of quant.c both start from it. */
mpoc_status mpoc_mpo_permuted_copy(mpoc_mat_view w, const mpoc_shape *s, float **out);

/* dst = src's shape, gauge, ranks and discarded weights; no cores, no
 * spectra (dst is overwritten, not freed). */
void mpoc_mpo_frame(mpoc_mpo *dst, const mpoc_mpo *src);

/* A new byte mask over that permuted layout: 1 where it holds an entry of
 * W, 0 on padding (free()). Costs the mask and two offset arrays, not a
 * float copy. */
mpoc_status mpoc_mpo_real_mask(const mpoc_shape *s, uint8_t **out);

/* Test hooks of the slab-by-slab contraction behind mpoc_mpo_to_dense and
 * mpoc_mpo_rel_error (mpo.c): the largest slab buffer in floats (0: the
 * library's rule) and the plan family to use (-1: the cheapest; 0, 1, 2:
 * groups of i_0, groups of i_1, i_0 fixed with groups of i_1). Only for
 * single-threaded tests; the results must not depend on them. */
extern size_t mpoc_mpo_slab_target;
extern int mpoc_mpo_slab_family;

#endif
