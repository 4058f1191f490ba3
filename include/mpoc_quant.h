/* mpoc_quant.h: storage precision of MPO cores, and quantization of a whole
 * MPO with error feedback.
 *
 * A core of n values is stored in one of five types. The block types follow
 * ggml exactly: the C-order flattened core is cut into blocks of 32
 * consecutive values (the last block zero-padded), each block stores one F16
 * scale d and 32 codes; value = code × d (Q8_0: signed 8-bit codes, d =
 * amax/127; Q4_0: 4-bit u, value = (u − 8)·d, d = −max/8 with max the value
 * of largest magnitude). An all-zero block gives d = 0 and zero codes.
 *
 * Error feedback (docs/format.md §6 gives the algorithm): cores are quantized
 * left to right; before core k is quantized it is re-fitted by least squares
 * against the target W with the already-quantized cores 0..k−1 fixed on its
 * left and the right-orthonormal cores k+1..d−1 on its right, so the error
 * made on the left is absorbed. The last core carries the norm (the
 * singular values) and is stored at the centre precision. */
#ifndef MPOC_QUANT_H
#define MPOC_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpoc_dtype.h"
#include "mpoc_mat.h"
#include "mpoc_mpo.h"
#include "mpoc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mpoc_quant_type {
    MPOC_QUANT_F32 = 0,
    MPOC_QUANT_F16 = 1,
    MPOC_QUANT_BF16 = 2,
    MPOC_QUANT_Q8_0 = 3,
    MPOC_QUANT_Q4_0 = 4,
    MPOC_QUANT_COUNT_
} mpoc_quant_type;

/* Values per block of the block types (1 for F32/F16/BF16 is NOT used: the
 * scalar types have no blocks). */
#define MPOC_QUANT_BLOCK 32

/* "f32", "f16", "bf16", "q8_0", "q4_0" ("?" if invalid); never NULL. */
const char *mpoc_quant_name(mpoc_quant_type t);
/* Case-insensitive inverse of mpoc_quant_name. MPOC_E_INVAL otherwise. */
mpoc_status mpoc_quant_parse(const char *s, mpoc_quant_type *out);
/* The storage dtype of t (MPOC_DTYPE_F32, F16, BF16, Q8_0, Q4_0). */
mpoc_dtype mpoc_quant_dtype(mpoc_quant_type t);
/* The quant type of a dtype; MPOC_E_UNSUPPORTED for other dtypes. */
mpoc_status mpoc_quant_from_dtype(mpoc_dtype d, mpoc_quant_type *out);
/* Values stored for n values: n, or n rounded up to a whole block. */
mpoc_status mpoc_quant_padded(mpoc_quant_type t, size_t n, size_t *out);
/* Bytes of the stored form of n values (blocks: 34 or 18 per block of 32),
 * checked. */
mpoc_status mpoc_quant_nbytes(mpoc_quant_type t, size_t n, size_t *bytes);

/* Encode n finite floats as t into dst (mpoc_quant_nbytes bytes; the block
 * types zero-pad the last block). MPOC_E_NUMERIC on NaN/Inf. */
mpoc_status mpoc_quant_encode(mpoc_quant_type t, const float *src, size_t n, void *dst);
/* Decode the stored form (mpoc_quant_nbytes bytes) back to n floats. */
mpoc_status mpoc_quant_decode(mpoc_quant_type t, const void *src, size_t n, float *dst);

/* What to store and how. */
typedef struct mpoc_quant_options {
    mpoc_quant_type core;    /* isometric cores (default Q8_0) */
    mpoc_quant_type centre;  /* the core carrying the norm (default F16) */
    bool no_feedback;        /* quantize every core independently (for comparison) */
} mpoc_quant_options;

mpoc_quant_options mpoc_quant_options_default(void);

/* A quantized MPO. Owns mpo (the DEQUANTIZED cores, i.e. exactly what the
 * stored bytes decode to; centre = d−1 nominally, not exactly canonical)
 * and data[k] (the stored bytes of core k, nbytes[k] long). Zero-initialise;
 * free with mpoc_qmpo_free. */
typedef struct mpoc_qmpo {
    mpoc_mpo mpo;
    mpoc_quant_type types[MPOC_MAX_SITES];
    uint8_t *data[MPOC_MAX_SITES];
    size_t nbytes[MPOC_MAX_SITES];
} mpoc_qmpo;

void mpoc_qmpo_free(mpoc_qmpo *q);
/* Σ_k nbytes[k]: the bytes the cores take on disk (scales included). */
size_t mpoc_qmpo_bytes(const mpoc_qmpo *q);

/* Build a qmpo from stored bytes: takes ownership of nothing; copies `shape`
 * and `ranks` and decodes data[k] (nbytes[k] bytes each, validated against
 * the types). */
mpoc_status mpoc_qmpo_from_stored(const mpoc_shape *shape, const size_t *ranks,
                                  const mpoc_quant_type *types, const uint8_t *const *data,
                                  const size_t *nbytes, mpoc_qmpo *out);

typedef struct mpoc_quant_report {
    double rel_error;               /* ‖W − Ŵ_q‖/‖W‖ measured (cropped), W the target */
    double core_rel_error[MPOC_MAX_SITES]; /* η_k = ‖ΔG_k‖/‖G_k‖ of each core's rounding */
    size_t bytes;                   /* mpoc_qmpo_bytes */
} mpoc_quant_report;

/* Quantize `mpo` (not modified) against the target w (rows × cols of the
 * MPO's shape; for pruning without the original, pass the dense MPO). With
 * feedback (default) every core is re-fitted as described above before it
 * is quantized; cores 0..d−2 are stored as opt->core, core d−1 as
 * opt->centre. `ws` may be NULL; `rep` may be NULL. Cost: about one extra
 * pass of gemms over W per core (≈ r·|W| flops for the first). Allocates
 * scratch of up to about 4·|W| floats with 3 sites (docs/format.md §6: the
 * permuted W, its right contractions, the left part and the contracted
 * result for the error; with feedback that error is measured on the
 * sweep's own contraction). MPOC_E_NUMERIC when W or a core is not
 * finite. */
mpoc_status mpoc_quant_mpo(const mpoc_mpo *mpo, mpoc_mat_view w, const mpoc_quant_options *opt,
                           mpoc_workspace *ws, mpoc_qmpo *out, mpoc_quant_report *rep);

/* The target W prepared for quantizing MPOs of one shape: W permuted to
 * site order (zero padded), where W's entries lie in it, and ‖W‖². Several
 * MPOs of that shape quantized against the same W (every truncation of a
 * sweep) share it instead of each building its own, and it keeps the
 * scratch of their quantization between calls (fresh memory costs page
 * faults; quantize the largest MPO first): one call at a time per target.
 * Holds about |W| floats plus |W| bytes when the shape pads, then the
 * scratch (up to about 2·|W| floats); free with mpoc_quant_target_free. */
typedef struct mpoc_quant_target mpoc_quant_target;

mpoc_status mpoc_quant_target_new(mpoc_mat_view w, const mpoc_shape *shape, mpoc_quant_target **out);
void mpoc_quant_target_free(mpoc_quant_target *t);

/* Quantize one MPO to n settings at once (e.g. f16, q8_0 and q4_0 of the
 * same truncated MPO in a sweep): out[i] and rep[i] (n reports, required
 * when n > 1) are exactly what mpoc_quant_mpo(mpo, w, &opts[i], …) gives,
 * bit for bit, but the work that does not depend on the core type — the
 * canonical form, the permuted target, its contractions with the
 * right-orthonormal cores and the re-fit of core 0 — is done once. `target`
 * (may be NULL: built here) is this w prepared for mpo's shape
 * (MPOC_E_SHAPE for another shape); with a target and feedback for every
 * setting, W itself is not read again: w.data may then be NULL (its rows
 * and cols must still match), so a caller can free W once the target is
 * built. An MPO already centred on core 0 is read in place; any other is
 * canonicalized in a copy first. Memory: the shared right contractions
 * (the largest is freed once the next is formed) stay alive until the last
 * setting is done. On failure every out[i] is freed. */
mpoc_status mpoc_quant_mpo_multi(const mpoc_mpo *mpo, mpoc_mat_view w, mpoc_quant_target *target,
                                 const mpoc_quant_options *opts, size_t n, mpoc_workspace *ws,
                                 mpoc_qmpo *out, mpoc_quant_report *rep);

#ifdef __cplusplus
}
#endif
#endif
