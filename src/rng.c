/* rng.c: GSL generators behind a tiny interface (see rng.h). */
#include "rng.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "internal.h"

/* splitmix64 finalizer: spreads (seed, stream) over the seed word. */
static unsigned long mix(uint64_t seed, uint64_t stream)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (stream + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (unsigned long)(z & 0xffffffffUL) | 1UL; /* mt19937 uses 32 bits */
}

static gsl_rng *make(uint64_t seed, uint64_t stream)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (r)
        gsl_rng_set(r, mix(seed, stream));
    return r;
}

mpoc_status mpoc_rng_gaussian(uint64_t seed, uint64_t stream, float *x, size_t n, size_t stride)
{
    if (n && (!x || stride == 0))
        MPOC_FAIL(MPOC_E_INVAL, "gaussian fill: no buffer or zero stride");
    gsl_rng *r = make(seed, stream);
    if (!r)
        return MPOC_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        x[i * stride] = (float)gsl_ran_gaussian_ziggurat(r, 1.0);
    gsl_rng_free(r);
    return MPOC_OK;
}

mpoc_status mpoc_rng_student_t(uint64_t seed, uint64_t stream, double nu, float *x, size_t n)
{
    if (!(nu > 0.0))
        MPOC_FAIL(MPOC_E_INVAL, "Student-t needs nu > 0, got %g", nu);
    gsl_rng *r = make(seed, stream);
    if (!r)
        return MPOC_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        x[i] = (float)gsl_ran_tdist(r, nu);
    gsl_rng_free(r);
    return MPOC_OK;
}

mpoc_status mpoc_rng_uniform(uint64_t seed, uint64_t stream, double *x, size_t n)
{
    if (n && !x)
        MPOC_FAIL(MPOC_E_INVAL, "uniform fill: no buffer");
    gsl_rng *r = make(seed, stream);
    if (!r)
        return MPOC_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        x[i] = gsl_rng_uniform(r);
    gsl_rng_free(r);
    return MPOC_OK;
}

const char *mpoc_rng_name(void)
{
    return "gsl mt19937 (ziggurat gaussian)";
}
