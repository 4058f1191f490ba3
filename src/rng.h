/* rng.h: the only GSL user. Seeded Gaussian and uniform fills.
 *
 * The generator is GSL's mt19937 seeded with (seed, stream) mixed into one
 * word, so separate streams (sketch columns, matrix factors) are independent
 * of each other and of thread scheduling. Arguments are validated here so
 * GSL's aborting error handler can never fire. */
#ifndef MPOC_RNG_H
#define MPOC_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "mpoc_status.h"

/* x[i·stride] for i < n ← standard normal draws of stream (seed, stream). */
mpoc_status mpoc_rng_gaussian(uint64_t seed, uint64_t stream, float *x, size_t n, size_t stride);

/* x[i] ← Student-t draws with nu degrees of freedom (heavy tails). */
mpoc_status mpoc_rng_student_t(uint64_t seed, uint64_t stream, double nu, float *x, size_t n);

/* x[i] ← uniform draws in [0, 1) of stream (seed, stream), in double. */
mpoc_status mpoc_rng_uniform(uint64_t seed, uint64_t stream, double *x, size_t n);

/* Name of the generator, for reports ("gsl mt19937"). */
const char *mpoc_rng_name(void);

#endif
