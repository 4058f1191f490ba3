/* numtest.c: see numtest.h. */
#include "numtest.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

mpoc_mat nt_gaussian(size_t rows, size_t cols, uint64_t seed)
{
    mpoc_synth_spec s = mpoc_synth_default(MPOC_SPECTRUM_GAUSSIAN);
    s.rms = 0.0;
    mpoc_mat m;
    NT_ASSERT_OK(mpoc_synth_matrix(rows, cols, &s, seed, &m));
    return m;
}

mpoc_mat nt_power(size_t rows, size_t cols, double decay, uint64_t seed)
{
    mpoc_synth_spec s = mpoc_synth_default(MPOC_SPECTRUM_POWER);
    s.decay = decay;
    s.rms = 0.0;
    mpoc_mat m;
    NT_ASSERT_OK(mpoc_synth_matrix(rows, cols, &s, seed, &m));
    return m;
}

double nt_mpo_entry(const mpoc_mpo *mpo, size_t i, size_t j)
{
    const mpoc_shape *s = &mpo->shape;
    size_t di[MPOC_MAX_SITES], dj[MPOC_MAX_SITES];
    for (size_t k = s->sites; k-- > 0;) {
        di[k] = i % s->row_dims[k];
        i /= s->row_dims[k];
        dj[k] = j % s->col_dims[k];
        j /= s->col_dims[k];
    }
    size_t rmax = 1;
    for (size_t k = 0; k <= s->sites; k++)
        rmax = mpo->ranks[k] > rmax ? mpo->ranks[k] : rmax;
    double *v = calloc(rmax, sizeof *v), *w = calloc(rmax, sizeof *w);
    v[0] = 1.0;
    for (size_t k = 0; k < s->sites; k++) {
        size_t r = mpo->ranks[k], r2 = mpo->ranks[k + 1], m = s->row_dims[k], n = s->col_dims[k];
        for (size_t b = 0; b < r2; b++) {
            double acc = 0.0;
            for (size_t a = 0; a < r; a++)
                acc += v[a] * (double)mpo->cores[k][((a * m + di[k]) * n + dj[k]) * r2 + b];
            w[b] = acc;
        }
        memcpy(v, w, r2 * sizeof *v);
    }
    double out = v[0];
    free(v);
    free(w);
    return out;
}

double nt_rel_diff(mpoc_mat_view a, mpoc_mat_view b)
{
    double n = mpoc_mat_norm(a);
    double d = mpoc_mat_diff_norm(a, b);
    return n > 0 ? d / n : d;
}

double *nt_singular_values(mpoc_mat_view a)
{
    size_t m = a.rows, n = a.cols, k = m < n ? m : n;
    double *copy = malloc(m * n * sizeof *copy), *s = malloc(k * sizeof *s);
    double *superb = malloc((k + 1) * sizeof *superb);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++)
            copy[i * n + j] = (double)a.data[i * a.ld + j];
    int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', (int)m, (int)n, copy, (int)n, s, NULL, 1,
                              NULL, 1, superb);
    assert_int_equal(info, 0);
    free(copy);
    free(superb);
    return s;
}

double nt_tol(double c, size_t m, size_t n)
{
    return c * (double)(m > n ? m : n) * (double)FLT_EPSILON;
}
