/* numtest.h: helpers for the numeric test suites (cmocka). */
#ifndef MPOC_NUMTEST_H
#define MPOC_NUMTEST_H

#include <float.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mpoc.h"

/* A new Gaussian rows × cols matrix (fails the test on error). */
mpoc_mat nt_gaussian(size_t rows, size_t cols, uint64_t seed);
/* A new matrix with singular values (i+1)^-decay and Haar vectors. */
mpoc_mat nt_power(size_t rows, size_t cols, double decay, uint64_t seed);
/* Entry (i, j) of an MPO by the element formula, in double (independent of
 * the library's contraction). */
double nt_mpo_entry(const mpoc_mpo *mpo, size_t i, size_t j);
/* ‖a − b‖_F / ‖a‖_F in double. */
double nt_rel_diff(mpoc_mat_view a, mpoc_mat_view b);
/* Singular values of a (double LAPACK, independent of the float path), in
 * a new array of min(m, n) values, descending. */
double *nt_singular_values(mpoc_mat_view a);
/* Tolerance c·max(m,n)·FLT_EPSILON for identities on m × n data. */
double nt_tol(double c, size_t m, size_t n);

#define NT_ASSERT_OK(expr) assert_int_equal((expr), MPOC_OK)

#endif
