/* test_shape.c: splitting dimensions into MPO sites, explicit splits and
 * their parser, and the largest useful bond ranks. */
#include <math.h>
#include <string.h>

#include "numtest.h"

static size_t product(const size_t *v, size_t n)
{
    size_t p = 1;
    for (size_t i = 0; i < n; i++)
        p *= v[i];
    return p;
}

static void check_cover(const mpoc_shape *s, size_t rows, size_t cols)
{
    assert_int_equal(s->rows, rows);
    assert_int_equal(s->cols, cols);
    assert_int_equal(product(s->row_dims, s->sites), s->padded_rows);
    assert_int_equal(product(s->col_dims, s->sites), s->padded_cols);
    assert_true(s->padded_rows >= rows && s->padded_rows <= rows + rows / 8);
    assert_true(s->padded_cols >= cols && s->padded_cols <= cols + cols / 8);
}

/* LLaMA dimensions with large prime factors: uneven sites never pad. */
static void test_uneven_sites(void **state)
{
    (void)state;
    const size_t dims[] = {172, 11008, 14336, 4096, 5632, 32000, 128256, 64, 43, 1};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        for (size_t d = 2; d <= 4; d++) {
            mpoc_shape s;
            NT_ASSERT_OK(mpoc_shape_choose(dims[i], 4096, d, MPOC_PAD_NEVER, &s));
            assert_int_equal(s.sites, d);
            assert_int_equal(s.padded_rows, dims[i]);
            check_cover(&s, dims[i], 4096);
        }
    mpoc_shape s;
    NT_ASSERT_OK(mpoc_shape_choose(11008, 4096, 3, MPOC_PAD_NEVER, &s));
    size_t expect[3] = {43, 16, 16}; /* the prime 43 becomes a site of its own */
    assert_memory_equal(s.row_dims, expect, sizeof expect);
    size_t cube[3] = {16, 16, 16};
    assert_memory_equal(s.col_dims, cube, sizeof cube);
}

/* Zero padding, when chosen, stays within 12.5% and balances the factors. */
static void test_padding(void **state)
{
    (void)state;
    mpoc_shape s;
    NT_ASSERT_OK(mpoc_shape_choose(172, 64, 2, MPOC_PAD_AUTO, &s));
    check_cover(&s, 172, 64);
    assert_true(s.padded_rows > 172); /* 4 x 43 is badly unbalanced */
    assert_true(s.row_dims[0] <= 2 * 14);
    NT_ASSERT_OK(mpoc_shape_choose(4096, 4096, 4, MPOC_PAD_AUTO, &s));
    assert_int_equal(s.padded_rows, 4096); /* balanced already: no padding */
    for (size_t k = 0; k < 4; k++)
        assert_int_equal(s.row_dims[k], 8);
    NT_ASSERT_OK(mpoc_shape_choose(14336, 11008, 3, MPOC_PAD_ALWAYS, &s));
    check_cover(&s, 14336, 11008);
}

static void test_auto_sites(void **state)
{
    (void)state;
    mpoc_shape s;
    NT_ASSERT_OK(mpoc_shape_choose(64, 64, 0, MPOC_PAD_AUTO, &s));
    assert_int_equal(s.sites, 2);
    NT_ASSERT_OK(mpoc_shape_choose(4096, 4096, 0, MPOC_PAD_AUTO, &s));
    assert_int_equal(s.sites, 3);
    NT_ASSERT_OK(mpoc_shape_choose(1, 1, 0, MPOC_PAD_AUTO, &s));
    assert_int_equal(s.sites, 2);
    assert_int_equal(mpoc_shape_choose(0, 5, 0, MPOC_PAD_AUTO, &s), MPOC_E_SHAPE);
    assert_int_equal(mpoc_shape_choose(5, 5, MPOC_MAX_SITES + 1, MPOC_PAD_AUTO, &s), MPOC_E_INVAL);
}

static void test_parse(void **state)
{
    (void)state;
    mpoc_shape s;
    NT_ASSERT_OK(mpoc_shape_parse("8x8x8x8:16x4x8x8", 4096, 4096, &s));
    assert_int_equal(s.sites, 4);
    assert_int_equal(s.col_dims[0], 16);
    NT_ASSERT_OK(mpoc_shape_parse("4x44:8x8", 172, 64, &s)); /* 176 rows: padded */
    assert_int_equal(s.padded_rows, 176);
    const char *bad[] = {"8x8", "8x8:", ":8x8", "8x:8x8", "8xx8:8x8", "8x8:8", "a:b", "0x8:8x8",
                         "8x8:8x8x", "99999999999999999999999:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_not_equal(mpoc_shape_parse(bad[i], 64, 64, &s), MPOC_OK);
    assert_int_equal(mpoc_shape_parse("4x4:8x8", 64, 64, &s), MPOC_E_SHAPE); /* 16 < 64 rows */
}

static void test_max_rank(void **state)
{
    (void)state;
    mpoc_shape s;
    NT_ASSERT_OK(mpoc_shape_parse("8x8x8x8:8x8x8x8", 4096, 4096, &s));
    assert_int_equal(mpoc_shape_max_rank(&s, 0), 64);
    assert_int_equal(mpoc_shape_max_rank(&s, 1), 4096);
    assert_int_equal(mpoc_shape_max_rank(&s, 2), 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uneven_sites), cmocka_unit_test(test_padding),
        cmocka_unit_test(test_auto_sites),   cmocka_unit_test(test_parse),
        cmocka_unit_test(test_max_rank),
    };
    return cmocka_run_group_tests_name("shape", tests, NULL, NULL);
}
