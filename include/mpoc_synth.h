/* mpoc_synth.h: generated test matrices with controlled spectra, for tests,
 * benchmarks and the demo. Deterministic for a given seed and BLAS thread
 * count. */
#ifndef MPOC_SYNTH_H
#define MPOC_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "mpoc_mat.h"
#include "mpoc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mpoc_spectrum {
    MPOC_SPECTRUM_GAUSSIAN = 0, /* i.i.d. N(0, 1) entries */
    MPOC_SPECTRUM_POWER = 1,    /* σ_i = (i+1)^−decay with Haar-random singular vectors */
    MPOC_SPECTRUM_LOWRANK = 2,  /* rank-`rank` power-law signal plus `noise`·N(0,1)/√max(m,n) */
    MPOC_SPECTRUM_LLM = 3       /* trained-layer-like: power law (decay), Student-t (nu) entry
                                   noise, a few outlier columns scaled by outlier_scale */
} mpoc_spectrum;

typedef struct mpoc_synth_spec {
    mpoc_spectrum kind;
    double decay;          /* power-law exponent (POWER, LOWRANK, LLM) */
    size_t rank;           /* LOWRANK signal rank */
    double noise;          /* LOWRANK / LLM noise level relative to the signal's rms */
    double nu;             /* LLM: Student-t degrees of freedom of the noise */
    size_t outlier_cols;   /* LLM: number of outlier input columns */
    double outlier_scale;  /* LLM: their scale factor */
    double rms;            /* target root-mean-square entry (0 = leave unscaled) */
} mpoc_synth_spec;

/* Defaults per kind: decay 0.5, rank 32, noise 0.05, nu 4, 1% outlier
 * columns ×8, rms 0.02 (typical LLM weight scale). */
mpoc_synth_spec mpoc_synth_default(mpoc_spectrum kind);

/* Name ("gaussian", "power", "lowrank", "llm") and its inverse. */
const char *mpoc_spectrum_name(mpoc_spectrum k);
mpoc_status mpoc_spectrum_parse(const char *s, mpoc_spectrum *out);

/* A new rows × cols matrix following spec; `out` must be unallocated. */
mpoc_status mpoc_synth_matrix(size_t rows, size_t cols, const mpoc_synth_spec *spec, uint64_t seed,
                              mpoc_mat *out);

#ifdef __cplusplus
}
#endif
#endif
