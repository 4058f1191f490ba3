/* mpoc_mpo.h: matrix-product operators (tensor-train matrices).
 *
 * A weight W (rows × cols = [out, in]) is viewed, after optional zero padding
 * to padded_rows × padded_cols, as a 2d-way tensor with row index
 * i ↔ (i_1..i_d) and column index j ↔ (j_1..j_d), C order, i_1 and j_1 most
 * significant (numpy's reshape convention). Core k (0-based) has layout
 * [r_k, m_k, n_k, r_{k+1}] (C order) with r_0 = r_d = 1, and
 *     W[i, j] = G_0[0, i_1, j_1, :] · G_1[:, i_2, j_2, :] ··· G_{d−1}[:, i_d, j_d, 0].
 * Padding is invisible: reconstructions have exactly rows × cols entries. */
#ifndef MPOC_MPO_H
#define MPOC_MPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpoc_mat.h"
#include "mpoc_status.h"
#include "mpoc_svd.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MPOC_MAX_SITES 32
#define MPOC_NO_CENTRE ((size_t)-1)

/* How rows and columns split into sites. */
typedef struct mpoc_shape {
    size_t sites;                      /* d, 1 ≤ d ≤ MPOC_MAX_SITES */
    size_t row_dims[MPOC_MAX_SITES];   /* m_k; ∏ m_k = padded_rows */
    size_t col_dims[MPOC_MAX_SITES];   /* n_k; ∏ n_k = padded_cols */
    size_t rows, cols;                 /* the matrix's own shape */
    size_t padded_rows, padded_cols;   /* ≥ rows, cols; extra entries are zero */
} mpoc_shape;

typedef enum mpoc_pad_policy {
    MPOC_PAD_AUTO = 0,  /* pad (≤ 12.5%) only when the exact factors are badly unbalanced */
    MPOC_PAD_NEVER = 1, /* uneven sites: a large prime becomes a site of its own */
    MPOC_PAD_ALWAYS = 2 /* pad to the best balanced size within 12.5% */
} mpoc_pad_policy;

/* Choose a split of rows × cols into `sites` sites (0 = automatic: enough
 * sites that each site's m_k·n_k is about 256, at least 2). Row and column
 * factors are balanced around dim^(1/d); the pad policy decides between
 * uneven factors and zero padding. */
mpoc_status mpoc_shape_choose(size_t rows, size_t cols, size_t sites, mpoc_pad_policy pad,
                              mpoc_shape *out);
/* An explicit split; ∏ row_dims ≥ rows and ∏ col_dims ≥ cols (the excess is
 * zero padding). MPOC_E_SHAPE with a reason otherwise. */
mpoc_status mpoc_shape_explicit(size_t rows, size_t cols, size_t sites, const size_t *row_dims,
                                const size_t *col_dims, mpoc_shape *out);
/* Parse "8x8x8x8:8x8x8x8" (row factors : column factors) into an explicit split. */
mpoc_status mpoc_shape_parse(const char *spec, size_t rows, size_t cols, mpoc_shape *out);
/* Largest useful rank of bond k (between sites k and k+1, 0 ≤ k < d−1):
 * min(∏_{l≤k} m_l n_l, ∏_{l>k} m_l n_l), saturated at SIZE_MAX. */
size_t mpoc_shape_max_rank(const mpoc_shape *s, size_t bond);

/* An MPO. Owns its cores and spectra. Zero-initialise before first use;
 * free with mpoc_mpo_free. */
typedef struct mpoc_mpo {
    mpoc_shape shape;
    size_t ranks[MPOC_MAX_SITES + 1];     /* r_0..r_d, r_0 = r_d = 1 */
    float *cores[MPOC_MAX_SITES];         /* core k: r_k × m_k × n_k × r_{k+1}, C order */
    size_t centre;                        /* orthogonality centre, or MPOC_NO_CENTRE: cores
                                             before it are left-orthonormal (as (r m n) × r'
                                             matrices), cores after it right-orthonormal */
    float *spectra[MPOC_MAX_SITES];       /* bond k: the ranks[k+1] singular values kept when
                                             bond k was last truncated (NULL if unknown) */
    double discarded_sq[MPOC_MAX_SITES];  /* bond k: energy (Σσ²) dropped there, absolute */
} mpoc_mpo;

void mpoc_mpo_free(mpoc_mpo *mpo);
mpoc_status mpoc_mpo_copy(mpoc_mpo *dst, const mpoc_mpo *src);
/* Σ_k r_k m_k n_k r_{k+1}. */
size_t mpoc_mpo_params(const mpoc_mpo *mpo);
/* Elements of core k (r_k m_k n_k r_{k+1}). */
size_t mpoc_mpo_core_size(const mpoc_mpo *mpo, size_t k);

typedef struct mpoc_mpo_options {
    mpoc_svd_options svd;  /* SVD path and per-bond rules: χ (max_rank), τ (rel_cutoff),
                              w (discarded_weight, of the bond's input norm²), δ (abs_tail) */
    double eps;            /* global relative Frobenius target ε (0 = off): each of the d−1
                              bonds gets δ_k² = (ε²‖W‖² − spent)/(bonds left), so
                              ‖W − Ŵ‖ ≤ ε‖W‖ (Oseledets 2011, with carry-forward) */
    size_t sites;          /* 0 = automatic (ignored when shape is given) */
    mpoc_pad_policy pad;
    const mpoc_shape *shape; /* explicit split (borrowed), or NULL */
    bool skip_error;       /* do not measure the true error (saves one contraction) */
} mpoc_mpo_options;

/* Defaults: no truncation beyond numerical zeros, automatic shape, AUTO SVD. */
mpoc_mpo_options mpoc_mpo_options_default(void);

typedef struct mpoc_mpo_report {
    double norm;             /* ‖W‖_F (double) */
    double rel_error;        /* measured ‖W − Ŵ‖_F / ‖W‖_F (cropped to rows × cols);
                                NaN when skip_error (0 for W = 0) */
    double rel_error_dropped;/* √(Σ_bonds discarded) / ‖W‖: what the dropped values imply */
    size_t params, dense_params;
    mpoc_svd_method bond_method[MPOC_MAX_SITES]; /* path that truncated each bond */
    bool rank_clamped;       /* χ exceeded a bond's largest useful rank somewhere */
    double seconds_permute, seconds_svd, seconds_error; /* phase timings */
    size_t workspace_bytes;  /* peak scratch */
} mpoc_mpo_report;

/* TT-SVD of w (left to right). The result is left-canonical with the centre
 * on the last core. Rejects NaN/Inf (MPOC_E_NUMERIC) before any SVD.
 * `report` may be NULL. Scratch is allocated once per call. */
mpoc_status mpoc_mpo_decompose(mpoc_mat_view w, const mpoc_mpo_options *opt, mpoc_mpo *out,
                               mpoc_mpo_report *report);
/* As mpoc_mpo_decompose with caller scratch (reused across calls). */
mpoc_status mpoc_mpo_decompose_ex(mpoc_mat_view w, const mpoc_mpo_options *opt,
                                  mpoc_workspace *ws, mpoc_mpo *out, mpoc_mpo_report *report);

/* Rounding (TT-rounding, Oseledets 2011 Alg. 2) in place: right-to-left
 * orthogonalization, then a left-to-right truncating SVD sweep with the
 * rules of opt (eps is relative to the MPO's own norm). Ranks never grow;
 * the centre ends on the last core. `ws` may be NULL. */
mpoc_status mpoc_mpo_round(mpoc_mpo *mpo, const mpoc_mpo_options *opt, mpoc_workspace *ws);

/* Move the orthogonality centre to core c (exact; bond dimensions may only
 * shrink where they exceed their largest useful rank). `ws` may be NULL. */
mpoc_status mpoc_mpo_canonicalize(mpoc_mpo *mpo, size_t c, mpoc_workspace *ws);

/* Contract to a new dense rows × cols matrix. */
mpoc_status mpoc_mpo_to_dense(const mpoc_mpo *mpo, mpoc_mat *out, mpoc_workspace *ws);

/* ‖W − Ŵ‖_F / ‖W‖_F, with the difference accumulated in double element by
 * element (not inferred from the discarded values). 0 when W = Ŵ = 0. */
mpoc_status mpoc_mpo_rel_error(const mpoc_mpo *mpo, mpoc_mat_view w, mpoc_workspace *ws,
                               double *rel_error);

/* ‖Ŵ‖_F without densifying (transfer matrices, double). Over the padded
 * tensor: equal to the cropped norm when the shape has no padding. */
mpoc_status mpoc_mpo_norm(const mpoc_mpo *mpo, double *norm);

/* ⟨W, Ŵ⟩ = Σ W_ij Ŵ_ij without densifying the MPO (W is contracted into
 * the cores site by site). */
mpoc_status mpoc_mpo_inner(const mpoc_mpo *mpo, mpoc_mat_view w, mpoc_workspace *ws, double *out);

/* Batch application without densifying: Y = X·Ŵᵀ (x: B × cols, y: B × rows),
 * or with transpose Y = X·Ŵ (x: B × rows, y: B × cols). `ws` may be NULL. */
mpoc_status mpoc_mpo_apply(const mpoc_mpo *mpo, mpoc_mat_view x, bool transpose, mpoc_mat_view y,
                           mpoc_workspace *ws);

/* ---- prepared application (for operators applied many times) ----------
 *
 * mpoc_mpo_apply permutes every core on each call and always sweeps left
 * to right. A plan does that work once: it keeps the cores permuted for the
 * gemm of each site and picks the cheaper contraction order. Left to right
 * (site 0 first), site k costs B·|G_k|·(∏_{l<k} out_l)(∏_{l>k} in_l)
 * multiply-adds for a batch of B rows; right to left (site d−1 first) the
 * mirror, B·|G_k|·(∏_{l<k} in_l)(∏_{l>k} out_l) (in/out: the column/row
 * dims of W, swapped with transpose). Each site is one gemm and one
 * transpose; the input and output transposes are skipped where the layout
 * allows (batch 1, unpadded contiguous rows). */
typedef enum mpoc_mpo_order {
    MPOC_MPO_ORDER_AUTO = 0,  /* the order with fewer multiply-adds (left on ties) */
    MPOC_MPO_ORDER_LEFT = 1,  /* site 0 first */
    MPOC_MPO_ORDER_RIGHT = 2  /* site d−1 first */
} mpoc_mpo_order;

typedef struct mpoc_mpo_plan mpoc_mpo_plan;

/* Multiply-adds per input row of Y = X·Ŵᵀ (transpose: X·Ŵ) in `order`
 * (AUTO: the cheaper). MPOC_E_SHAPE for an inconsistent MPO. */
mpoc_status mpoc_mpo_apply_macs(const mpoc_mpo *mpo, bool transpose, mpoc_mpo_order order,
                                double *macs);

/* A plan for Y = X·Ŵᵀ (transpose: Y = X·Ŵ). Copies what it needs (the
 * permuted cores: as much memory as the MPO); mpo may be freed after. */
mpoc_status mpoc_mpo_plan_new(const mpoc_mpo *mpo, bool transpose, mpoc_mpo_order order,
                              mpoc_mpo_plan **out);
/* Free; accepts NULL. */
void mpoc_mpo_plan_free(mpoc_mpo_plan *p);
/* The order the plan uses (LEFT or RIGHT, never AUTO) and its
 * multiply-adds per input row. */
mpoc_mpo_order mpoc_mpo_plan_order(const mpoc_mpo_plan *p);
double mpoc_mpo_plan_macs(const mpoc_mpo_plan *p);
/* As mpoc_mpo_apply with the plan's MPO and transpose flag: x is B × in,
 * y is B × out (distinct memory). `ws` may be NULL (scratch allocated per
 * call); a plan may be used by several threads with one ws each. */
mpoc_status mpoc_mpo_plan_apply(const mpoc_mpo_plan *p, mpoc_mat_view x, mpoc_mat_view y,
                                mpoc_workspace *ws);

/* ---- merging adjacent sites (src/mpo_merge.c) ----------------------------
 *
 * Groups of consecutive sites contracted into single cores: group i holds
 * sizes[i] sites (Σ sizes = d) and becomes a core of dims (∏ m, ∏ n) with
 * the bonds at the group's ends. The tensor is unchanged (up to float
 * rounding); the MPO gets fewer, larger cores. Used for batched products,
 * whose multiply-adds fall when a heavy middle core (bonds r on both sides,
 * ~r² per element) is merged with a neighbour. */

/* Multiply-adds per input row (cheaper direction, as mpoc_mpo_apply_macs)
 * and parameters of mpo with its sites grouped by sizes, without building
 * it. MPOC_E_INVAL when the sizes do not partition the sites. */
mpoc_status mpoc_mpo_merge_cost(const mpoc_mpo *mpo, bool transpose, size_t n_groups,
                                const size_t *sizes, double *macs, double *params);

/* The grouping with the fewest multiply-adds among those with at least two
 * groups and at most max_params parameters (the original grouping, one site
 * per group, when nothing beats it; also for more than 12 sites, where the
 * 2^(d−1) groupings are not enumerated). sizes holds MPOC_MAX_SITES. */
mpoc_status mpoc_mpo_merge_choose(const mpoc_mpo *mpo, bool transpose, double max_params,
                                  size_t *n_groups, size_t *sizes);

/* out = mpo with its sites grouped by sizes (new cores; no centre, no
 * spectra). MPOC_E_INVAL / MPOC_E_SHAPE / MPOC_E_OVERFLOW / MPOC_E_NOMEM. */
mpoc_status mpoc_mpo_merge_sites(const mpoc_mpo *mpo, size_t n_groups, const size_t *sizes,
                                 mpoc_mpo *out);

/* A random MPO with the given shape and bond ranks (ranks[0..d], ends 1),
 * Gaussian cores scaled by 1/√(r_k m_k n_k), seeded. Not canonical. */
mpoc_status mpoc_mpo_random(const mpoc_shape *shape, const size_t *ranks, uint64_t seed,
                            mpoc_mpo *out);

#ifdef __cplusplus
}
#endif
#endif
