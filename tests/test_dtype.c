/* test_dtype.c: the dtype traits table, look-ups, sizes and converters.
 *
 * Expected values come from the format definitions written out here (block
 * bytes built by hand, values derived by hand in the comments), never from
 * our own quantizer. Fast paths are compared with their scalar references,
 * F16/BF16 exhaustively. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dtype_internal.h"
#include "mpoc_dtype.h"

/* ---- helpers ---------------------------------------------------------------- */

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* got[i] == want[i] for every i (value equality: -0 == +0). */
static void expect_values(const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!(got[i] == want[i])) {
            print_error("element %zu: got %a, want %a\n", i, (double)got[i], (double)want[i]);
            fail();
        }
    }
}

/* Bitwise identical (NaN payloads and signed zeros included). */
static void expect_same_bits(const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (bits_of(got[i]) != bits_of(want[i])) {
            print_error("element %zu: got %08x, want %08x\n", i, bits_of(got[i]),
                        bits_of(want[i]));
            fail();
        }
    }
}

static void expect_value_at(const float *got, size_t i, float want)
{
    if (!(got[i] == want)) {
        print_error("element %zu: got %a, want %a\n", i, (double)got[i], (double)want);
        fail();
    }
}

/* Dequantize one block (or n elements) of t and return the floats. */
static void to_f32_ok(mpoc_dtype t, const void *src, size_t n, float *dst)
{
    assert_int_equal(mpoc_dtype_to_f32(t, src, n, dst), MPOC_OK);
}

/* splitmix64 and Box-Muller: deterministic Gaussian data. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s) /* in (0, 1) */
{
    return ((double)(rng_next(s) >> 11) + 0.5) * 0x1.0p-53;
}

static void fill_gaussian(float *x, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        const double r = sqrt(-2.0 * log(rng_uniform(&s)));
        x[i] = (float)(r * cos(6.283185307179586 * rng_uniform(&s)));
    }
}

/* ---- traits table ----------------------------------------------------------- */

static void test_every_dtype_has_complete_entry(void **state)
{
    (void)state;
    for (int t = 0; t < MPOC_DTYPE_COUNT_; t++) {
        const mpoc_dtype_traits *info = mpoc_dtype_info((mpoc_dtype)t);
        assert_non_null(info);
        assert_non_null(info->name);
        assert_true(strlen(info->name) > 0);
        assert_string_equal(mpoc_dtype_name((mpoc_dtype)t), info->name);
        assert_true(info->block_elems >= 1);
        assert_true(info->block_bits >= 1);
        assert_true(info->ggml_type >= -1);
        /* whole-byte blocks except the sub-byte safetensors types */
        if (info->block_bits % 8 != 0)
            assert_int_equal(info->block_elems, 1);
        if (info->can_write)
            assert_true(info->can_read);
    }
}

static void test_names_ids_unique_and_round_trip(void **state)
{
    (void)state;
    for (int a = 0; a < MPOC_DTYPE_COUNT_; a++) {
        const mpoc_dtype_traits *ia = mpoc_dtype_info((mpoc_dtype)a);
        for (int b = a + 1; b < MPOC_DTYPE_COUNT_; b++) {
            const mpoc_dtype_traits *ib = mpoc_dtype_info((mpoc_dtype)b);
            assert_string_not_equal(ia->name, ib->name);
            if (ia->st_name && ib->st_name)
                assert_string_not_equal(ia->st_name, ib->st_name);
            if (ia->ggml_type >= 0)
                assert_int_not_equal(ia->ggml_type, ib->ggml_type);
        }
        mpoc_dtype out = MPOC_DTYPE_COUNT_;
        assert_int_equal(mpoc_dtype_from_name(ia->name, &out), MPOC_OK);
        assert_int_equal(out, a);
        if (ia->st_name) {
            out = MPOC_DTYPE_COUNT_;
            assert_int_equal(mpoc_dtype_from_st_name(ia->st_name, strlen(ia->st_name), &out),
                             MPOC_OK);
            assert_int_equal(out, a);
        }
        if (ia->ggml_type >= 0) {
            out = MPOC_DTYPE_COUNT_;
            assert_int_equal(mpoc_dtype_from_ggml((uint32_t)ia->ggml_type, &out), MPOC_OK);
            assert_int_equal(out, a);
        }
    }
}

/* formats.md 3.3 and ggml-common.h, typed in independently of the table. */
static void test_ggml_ids_and_block_sizes(void **state)
{
    (void)state;
    static const struct {
        uint32_t id;
        mpoc_dtype t;
        uint32_t elems, bytes;
    } want[] = {
        {0, MPOC_DTYPE_F32, 1, 4},         {1, MPOC_DTYPE_F16, 1, 2},
        {2, MPOC_DTYPE_Q4_0, 32, 18},      {3, MPOC_DTYPE_Q4_1, 32, 20},
        {6, MPOC_DTYPE_Q5_0, 32, 22},      {7, MPOC_DTYPE_Q5_1, 32, 24},
        {8, MPOC_DTYPE_Q8_0, 32, 34},      {9, MPOC_DTYPE_Q8_1, 32, 36},
        {10, MPOC_DTYPE_Q2_K, 256, 84},    {11, MPOC_DTYPE_Q3_K, 256, 110},
        {12, MPOC_DTYPE_Q4_K, 256, 144},   {13, MPOC_DTYPE_Q5_K, 256, 176},
        {14, MPOC_DTYPE_Q6_K, 256, 210},   {15, MPOC_DTYPE_Q8_K, 256, 292},
        {16, MPOC_DTYPE_IQ2_XXS, 256, 66}, {17, MPOC_DTYPE_IQ2_XS, 256, 74},
        {18, MPOC_DTYPE_IQ3_XXS, 256, 98}, {19, MPOC_DTYPE_IQ1_S, 256, 50},
        {20, MPOC_DTYPE_IQ4_NL, 32, 18},   {21, MPOC_DTYPE_IQ3_S, 256, 110},
        {22, MPOC_DTYPE_IQ2_S, 256, 82},   {23, MPOC_DTYPE_IQ4_XS, 256, 136},
        {24, MPOC_DTYPE_I8, 1, 1},         {25, MPOC_DTYPE_I16, 1, 2},
        {26, MPOC_DTYPE_I32, 1, 4},        {27, MPOC_DTYPE_I64, 1, 8},
        {28, MPOC_DTYPE_F64, 1, 8},        {29, MPOC_DTYPE_IQ1_M, 256, 56},
        {30, MPOC_DTYPE_BF16, 1, 2},       {34, MPOC_DTYPE_TQ1_0, 256, 54},
        {35, MPOC_DTYPE_TQ2_0, 256, 66},   {39, MPOC_DTYPE_MXFP4, 32, 17},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        mpoc_dtype t = MPOC_DTYPE_COUNT_;
        assert_int_equal(mpoc_dtype_from_ggml(want[i].id, &t), MPOC_OK);
        assert_int_equal(t, want[i].t);
        const mpoc_dtype_traits *info = mpoc_dtype_info(t);
        assert_int_equal(info->block_elems, want[i].elems);
        assert_int_equal(info->block_bits, want[i].bytes * 8);
        uint64_t bytes = 0;
        assert_int_equal(mpoc_dtype_nbytes(t, want[i].elems, &bytes), MPOC_OK);
        assert_int_equal(bytes, want[i].bytes);
    }
}

static void test_from_ggml_rejects_removed_and_unknown_ids(void **state)
{
    (void)state;
    static const uint32_t bad[] = {4, 5, 31, 32, 33, 36, 37, 38, 40, 41, 42, 100,
                                   0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mpoc_dtype t = MPOC_DTYPE_F32;
        assert_int_equal(mpoc_dtype_from_ggml(bad[i], &t), MPOC_E_NOTFOUND);
        assert_int_equal(t, MPOC_DTYPE_F32); /* untouched */
    }
    assert_int_equal(mpoc_dtype_from_ggml(0, NULL), MPOC_E_INVAL);
}

/* formats.md 1.3: the exact, case-sensitive safetensors strings. */
static void test_st_names_exact(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        mpoc_dtype t;
    } want[] = {
        {"F4", MPOC_DTYPE_F4},
        {"F6_E2M3", MPOC_DTYPE_F6_E2M3},
        {"F6_E3M2", MPOC_DTYPE_F6_E3M2},
        {"BOOL", MPOC_DTYPE_BOOL},
        {"U8", MPOC_DTYPE_U8},
        {"I8", MPOC_DTYPE_I8},
        {"F8_E5M2", MPOC_DTYPE_F8_E5M2},
        {"F8_E4M3", MPOC_DTYPE_F8_E4M3},
        {"F8_E8M0", MPOC_DTYPE_F8_E8M0},
        {"F8_E4M3FNUZ", MPOC_DTYPE_F8_E4M3FNUZ},
        {"F8_E5M2FNUZ", MPOC_DTYPE_F8_E5M2FNUZ},
        {"I16", MPOC_DTYPE_I16},
        {"U16", MPOC_DTYPE_U16},
        {"F16", MPOC_DTYPE_F16},
        {"BF16", MPOC_DTYPE_BF16},
        {"I32", MPOC_DTYPE_I32},
        {"U32", MPOC_DTYPE_U32},
        {"F32", MPOC_DTYPE_F32},
        {"F64", MPOC_DTYPE_F64},
        {"I64", MPOC_DTYPE_I64},
        {"U64", MPOC_DTYPE_U64},
        {"C64", MPOC_DTYPE_C64},
    };
    int n_st = 0;
    for (int t = 0; t < MPOC_DTYPE_COUNT_; t++)
        n_st += mpoc_dtype_info((mpoc_dtype)t)->st_name != NULL;
    assert_int_equal(n_st, (int)(sizeof want / sizeof want[0]));
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        mpoc_dtype t = MPOC_DTYPE_COUNT_;
        assert_int_equal(mpoc_dtype_from_st_name(want[i].s, strlen(want[i].s), &t), MPOC_OK);
        assert_int_equal(t, want[i].t);
        assert_string_equal(mpoc_dtype_info(t)->st_name, want[i].s);
    }
}

static void test_st_name_lookup_is_length_delimited_and_case_sensitive(void **state)
{
    (void)state;
    mpoc_dtype t = MPOC_DTYPE_COUNT_;
    /* a name inside a larger buffer (JSON), not NUL-terminated */
    const char json[] = "\"BF16\",\"shape\"";
    assert_int_equal(mpoc_dtype_from_st_name(json + 1, 4, &t), MPOC_OK);
    assert_int_equal(t, MPOC_DTYPE_BF16);
    assert_int_equal(mpoc_dtype_from_st_name("F32xyz", 3, &t), MPOC_OK);
    assert_int_equal(t, MPOC_DTYPE_F32);
    assert_int_equal(mpoc_dtype_from_st_name("F8_E4M3FNUZ", 7, &t), MPOC_OK);
    assert_int_equal(t, MPOC_DTYPE_F8_E4M3);
    /* prefixes, wrong case, JS-only aliases, ggml names, empty */
    static const char *const bad[] = {"F3", "f32", "Bf16", "bf16", "E8M0", "UE8", "FP4",
                                      "Q4_0", "F16 ", "", "F8_E4M3FN"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mpoc_dtype_from_st_name(bad[i], strlen(bad[i]), &t), MPOC_E_NOTFOUND);
    /* embedded NUL: "F16\0" with length 4 is not "F16" */
    assert_int_equal(mpoc_dtype_from_st_name("F16\0", 4, &t), MPOC_E_NOTFOUND);
    assert_int_equal(mpoc_dtype_from_st_name(NULL, 3, &t), MPOC_E_INVAL);
    assert_int_equal(mpoc_dtype_from_st_name("F32", 3, NULL), MPOC_E_INVAL);
}

static void test_from_name_case_insensitive(void **state)
{
    (void)state;
    mpoc_dtype t = MPOC_DTYPE_COUNT_;
    assert_int_equal(mpoc_dtype_from_name("q4_k", &t), MPOC_OK);
    assert_int_equal(t, MPOC_DTYPE_Q4_K);
    assert_int_equal(mpoc_dtype_from_name("Bf16", &t), MPOC_OK);
    assert_int_equal(t, MPOC_DTYPE_BF16);
    assert_int_equal(mpoc_dtype_from_name("iq2_xxs", &t), MPOC_OK);
    assert_int_equal(t, MPOC_DTYPE_IQ2_XXS);
    assert_int_equal(mpoc_dtype_from_name("f8_e4m3fnuz", &t), MPOC_OK);
    assert_int_equal(t, MPOC_DTYPE_F8_E4M3FNUZ);
    assert_int_equal(mpoc_dtype_from_name("q4", &t), MPOC_E_NOTFOUND);
    assert_int_equal(mpoc_dtype_from_name("q4_00", &t), MPOC_E_NOTFOUND);
    assert_int_equal(mpoc_dtype_from_name("", &t), MPOC_E_NOTFOUND);
    assert_int_equal(mpoc_dtype_from_name(NULL, &t), MPOC_E_INVAL);
    assert_int_equal(mpoc_dtype_from_name("f32", NULL), MPOC_E_INVAL);
}

static void test_invalid_enum_values(void **state)
{
    (void)state;
    const mpoc_dtype bad[] = {(mpoc_dtype)-1, MPOC_DTYPE_COUNT_, (mpoc_dtype)1000};
    float f[32] = {0};
    uint8_t b[64] = {0};
    uint64_t bytes;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(mpoc_dtype_info(bad[i]));
        assert_string_equal(mpoc_dtype_name(bad[i]), "?");
        assert_int_equal(mpoc_dtype_nbytes(bad[i], 1, &bytes), MPOC_E_INVAL);
        assert_int_equal(mpoc_dtype_to_f32(bad[i], b, 1, f), MPOC_E_INVAL);
        assert_int_equal(mpoc_dtype_from_f32(bad[i], f, 1, b), MPOC_E_INVAL);
    }
}

/* ---- sizes ------------------------------------------------------------------ */

static void test_nbytes_rules(void **state)
{
    (void)state;
    uint64_t b = 0;
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_F32, 10, &b), MPOC_OK);
    assert_int_equal(b, 40);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_F32, 0, &b), MPOC_OK);
    assert_int_equal(b, 0);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_Q4_0, 64, &b), MPOC_OK);
    assert_int_equal(b, 36);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_Q4_0, 33, &b), MPOC_E_SHAPE);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_Q6_K, 512, &b), MPOC_OK);
    assert_int_equal(b, 420);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_Q4_K, 255, &b), MPOC_E_SHAPE);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_Q4_K, 32, &b), MPOC_E_SHAPE);
    /* sub-byte: 4-bit and 6-bit elements must fill whole bytes */
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_F4, 2, &b), MPOC_OK);
    assert_int_equal(b, 1);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_F4, 3, &b), MPOC_E_SHAPE);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_F6_E2M3, 4, &b), MPOC_OK);
    assert_int_equal(b, 3);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_F6_E3M2, 2, &b), MPOC_E_SHAPE);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_F6_E3M2, 12, &b), MPOC_OK);
    assert_int_equal(b, 9);
    /* the largest sizes: exact where they fit, OVERFLOW where not */
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_F32, 1ull << 61, &b), MPOC_OK);
    assert_int_equal(b, 1ull << 63);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_F32, 1ull << 62, &b), MPOC_E_OVERFLOW);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_F64, UINT64_MAX, &b), MPOC_E_OVERFLOW);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_U8, UINT64_MAX, &b), MPOC_OK);
    assert_int_equal(b, UINT64_MAX);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_F4, UINT64_MAX - 1, &b), MPOC_OK);
    assert_int_equal(b, UINT64_MAX / 2);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_F6_E2M3, (UINT64_MAX / 8) * 4, &b), MPOC_OK);
    assert_int_equal(b, (UINT64_MAX / 8) * 3);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_Q8_0, UINT64_MAX - 31, &b),
                     MPOC_E_OVERFLOW);
    assert_int_equal(mpoc_dtype_nbytes(MPOC_DTYPE_F32, 1, NULL), MPOC_E_INVAL);
}

/* nbytes of 8 blocks is block_bits bytes for every dtype, and any count that
 * is not a whole number of blocks is refused. */
static void test_nbytes_consistent_for_every_dtype(void **state)
{
    (void)state;
    for (int t = 0; t < MPOC_DTYPE_COUNT_; t++) {
        const mpoc_dtype_traits *info = mpoc_dtype_info((mpoc_dtype)t);
        uint64_t b = 0;
        assert_int_equal(mpoc_dtype_nbytes((mpoc_dtype)t, 8ull * info->block_elems, &b),
                         MPOC_OK);
        assert_int_equal(b, info->block_bits);
        if (info->block_elems > 1)
            assert_int_equal(mpoc_dtype_nbytes((mpoc_dtype)t, info->block_elems + 1, &b),
                             MPOC_E_SHAPE);
    }
}

/* ---- the capability flags match the converters ----------------------------- */

static void test_can_read_write_match_converters(void **state)
{
    (void)state;
    enum { MAX_ELEMS = 256, MAX_BYTES = 292 };
    for (int t = 0; t < MPOC_DTYPE_COUNT_; t++) {
        const mpoc_dtype_traits *info = mpoc_dtype_info((mpoc_dtype)t);
        uint8_t zeros[MAX_BYTES] = {0};
        float out[MAX_ELEMS], in[MAX_ELEMS] = {0};
        const size_t n = info->block_bits % 8 ? 8 : info->block_elems;
        const mpoc_status r = mpoc_dtype_to_f32((mpoc_dtype)t, zeros, n, out);
        assert_int_equal(r, info->can_read ? MPOC_OK : MPOC_E_UNSUPPORTED);
        if (info->can_read) {
            /* all-zero bytes are zeros, except in E8M0, which has no zero */
            const float zero = t == MPOC_DTYPE_F8_E8M0 ? 0x1.0p-127f : 0.0f;
            for (size_t i = 0; i < n; i++)
                assert_true(out[i] == zero);
        }
        const mpoc_status w = mpoc_dtype_from_f32((mpoc_dtype)t, in, n, zeros);
        assert_int_equal(w, info->can_write ? MPOC_OK : MPOC_E_UNSUPPORTED);
    }
    /* the ones the brief requires */
    static const mpoc_dtype must_read[] = {
        MPOC_DTYPE_F32,     MPOC_DTYPE_F16,     MPOC_DTYPE_BF16,        MPOC_DTYPE_F64,
        MPOC_DTYPE_I8,      MPOC_DTYPE_U8,      MPOC_DTYPE_I16,         MPOC_DTYPE_U16,
        MPOC_DTYPE_I32,     MPOC_DTYPE_U32,     MPOC_DTYPE_I64,         MPOC_DTYPE_U64,
        MPOC_DTYPE_BOOL,    MPOC_DTYPE_F8_E4M3, MPOC_DTYPE_F8_E5M2,     MPOC_DTYPE_Q4_0,
        MPOC_DTYPE_Q4_1,    MPOC_DTYPE_Q5_0,    MPOC_DTYPE_Q5_1,        MPOC_DTYPE_Q8_0,
        MPOC_DTYPE_Q2_K,    MPOC_DTYPE_Q3_K,    MPOC_DTYPE_Q4_K,        MPOC_DTYPE_Q5_K,
        MPOC_DTYPE_Q6_K,
    };
    for (size_t i = 0; i < sizeof must_read / sizeof must_read[0]; i++)
        assert_true(mpoc_dtype_info(must_read[i])->can_read);
    static const mpoc_dtype must_write[] = {MPOC_DTYPE_F32, MPOC_DTYPE_F16, MPOC_DTYPE_BF16,
                                            MPOC_DTYPE_F64, MPOC_DTYPE_Q8_0, MPOC_DTYPE_Q4_0};
    for (size_t i = 0; i < sizeof must_write / sizeof must_write[0]; i++)
        assert_true(mpoc_dtype_info(must_write[i])->can_write);
    assert_false(mpoc_dtype_info(MPOC_DTYPE_IQ2_XXS)->can_read);
    assert_false(mpoc_dtype_info(MPOC_DTYPE_C64)->can_read);
}

static void test_conversion_argument_checks(void **state)
{
    (void)state;
    uint8_t blk[64] = {0};
    float f[64] = {0};
    assert_int_equal(mpoc_dtype_to_f32(MPOC_DTYPE_Q4_0, blk, 31, f), MPOC_E_SHAPE);
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_Q8_0, f, 33, blk), MPOC_E_SHAPE);
    assert_int_equal(mpoc_dtype_to_f32(MPOC_DTYPE_F16, NULL, 4, f), MPOC_E_INVAL);
    assert_int_equal(mpoc_dtype_to_f32(MPOC_DTYPE_F16, blk, 4, NULL), MPOC_E_INVAL);
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_F16, NULL, 4, blk), MPOC_E_INVAL);
    assert_int_equal(mpoc_dtype_to_f32(MPOC_DTYPE_F16, NULL, 0, NULL), MPOC_OK);
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_Q4_0, NULL, 0, NULL), MPOC_OK);
    /* a count whose float32 side cannot be addressed */
    assert_int_equal(mpoc_dtype_to_f32(MPOC_DTYPE_U8, blk, SIZE_MAX, f), MPOC_E_OVERFLOW);
    assert_int_equal(mpoc_dtype_to_f32(MPOC_DTYPE_F32, blk, SIZE_MAX / 2, f), MPOC_E_OVERFLOW);
}

/* ---- F16 -------------------------------------------------------------------- */

/* The IEEE binary16 definition, in double: independent of every path. */
static double f16_definition(uint16_t h)
{
    const int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    const double mag = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return sign ? -mag : mag;
}

static void test_f16_to_f32_exhaustive(void **state)
{
    (void)state;
    enum { N = 65536 };
    uint8_t *src = malloc(2 * N);
    float *fast = malloc(N * sizeof(float)), *portable = malloc(N * sizeof(float));
    float *ref = malloc(N * sizeof(float)), *api = malloc(N * sizeof(float));
    assert_non_null(src);
    assert_non_null(fast);
    assert_non_null(portable);
    assert_non_null(ref);
    assert_non_null(api);
    for (uint32_t h = 0; h < N; h++) {
        put16(src + 2 * h, (uint16_t)h);
        ref[h] = mpoc_f16_to_f32_ref((uint16_t)h);
    }
    mpoc_f16_row_to_f32_fast(src, N, fast);
    mpoc_f16_row_to_f32_portable(src, N, portable);
    to_f32_ok(MPOC_DTYPE_F16, src, N, api);
    expect_same_bits(fast, ref, N);
    expect_same_bits(portable, ref, N);
    expect_same_bits(api, ref, N);
    for (uint32_t h = 0; h < N; h++) {
        assert_int_equal(bits_of(mpoc_f16_to_f32((uint16_t)h)), bits_of(ref[h]));
        const int e = (h >> 10) & 31, m = h & 1023;
        if (e == 31 && m != 0) {
            /* NaN stays NaN, quiet, sign and payload kept */
            assert_true(isnan(ref[h]));
            assert_int_equal(bits_of(ref[h]),
                             ((h & 0x8000u) << 16) | 0x7FC00000u | ((uint32_t)m << 13));
        } else if (e == 31) {
            assert_true(isinf(ref[h]));
            assert_int_equal(signbit(ref[h]) != 0, (h >> 15) != 0);
        } else {
            assert_true((double)ref[h] == f16_definition((uint16_t)h));
            assert_int_equal(signbit(ref[h]) != 0, (h >> 15) != 0);
        }
    }
    free(src);
    free(fast);
    free(portable);
    free(ref);
    free(api);
}

static void test_f16_known_values(void **state)
{
    (void)state;
    assert_true(mpoc_f16_to_f32(0x3C00) == 1.0f);
    assert_true(mpoc_f16_to_f32(0xC000) == -2.0f);
    assert_true(mpoc_f16_to_f32(0x3800) == 0.5f);
    assert_true(mpoc_f16_to_f32(0x7BFF) == 65504.0f);
    assert_true(mpoc_f16_to_f32(0x0400) == 0x1.0p-14f);
    assert_true(mpoc_f16_to_f32(0x0001) == 0x1.0p-24f);
    assert_true(mpoc_f16_to_f32(0x03FF) == 1023.0f * 0x1.0p-24f);
    assert_int_equal(bits_of(mpoc_f16_to_f32(0x8000)), 0x80000000u);
    assert_true(isinf(mpoc_f16_to_f32(0x7C00)) && mpoc_f16_to_f32(0x7C00) > 0.0f);
    assert_true(isinf(mpoc_f16_to_f32(0xFC00)) && mpoc_f16_to_f32(0xFC00) < 0.0f);
    assert_true(isnan(mpoc_f16_to_f32(0x7E00)));
    assert_true(isnan(mpoc_f16_to_f32(0x7C01))); /* signalling NaN stays a NaN */
}

static void test_f32_to_f16_rounding(void **state)
{
    (void)state;
    /* ties go to the even neighbour: 1 + 2^-11 is halfway 0x3C00..0x3C01 */
    assert_int_equal(mpoc_f32_to_f16(1.0f + 0x1.0p-11f), 0x3C00);
    assert_int_equal(mpoc_f32_to_f16(1.0f + 3 * 0x1.0p-11f), 0x3C02);
    assert_int_equal(mpoc_f32_to_f16(1.0f + 0x1.0p-11f + 0x1.0p-23f), 0x3C01);
    assert_int_equal(mpoc_f32_to_f16(1.0f + 0x1.0p-11f - 0x1.0p-23f), 0x3C00);
    assert_int_equal(mpoc_f32_to_f16(-(1.0f + 3 * 0x1.0p-11f)), 0xBC02);
    /* carry from the mantissa into the exponent: 2 - 2^-12 → 2.0 */
    assert_int_equal(mpoc_f32_to_f16(2.0f - 0x1.0p-12f), 0x4000);
    /* overflow: 65504 is the largest; 65520 ties to "even" Inf */
    assert_int_equal(mpoc_f32_to_f16(65504.0f), 0x7BFF);
    assert_int_equal(mpoc_f32_to_f16(65519.996f), 0x7BFF);
    assert_int_equal(mpoc_f32_to_f16(65520.0f), 0x7C00);
    assert_int_equal(mpoc_f32_to_f16(1e10f), 0x7C00);
    assert_int_equal(mpoc_f32_to_f16(-1e10f), 0xFC00);
    assert_int_equal(mpoc_f32_to_f16(INFINITY), 0x7C00);
    assert_int_equal(mpoc_f32_to_f16(-INFINITY), 0xFC00);
    assert_int_equal(mpoc_f32_to_f16(FLT_MAX), 0x7C00);
    /* subnormals: units of 2^-24 */
    assert_int_equal(mpoc_f32_to_f16(0x1.0p-24f), 0x0001);
    assert_int_equal(mpoc_f32_to_f16(0x1.0p-25f), 0x0000); /* tie → even 0 */
    assert_int_equal(mpoc_f32_to_f16(0x1.000002p-25f), 0x0001);
    assert_int_equal(mpoc_f32_to_f16(1.5f * 0x1.0p-24f), 0x0002); /* tie → even 2 */
    assert_int_equal(mpoc_f32_to_f16(2.5f * 0x1.0p-24f), 0x0002); /* tie → even 2 */
    assert_int_equal(mpoc_f32_to_f16(0x1.0p-14f - 0x1.0p-25f), 0x0400); /* → min normal */
    assert_int_equal(mpoc_f32_to_f16(-0x1.0p-30f), 0x8000);
    assert_int_equal(mpoc_f32_to_f16(FLT_MIN), 0x0000);
    assert_int_equal(mpoc_f32_to_f16(-0.0f), 0x8000);
    /* NaN stays NaN (quiet), even one whose payload lives only in low bits */
    assert_int_equal(mpoc_f32_to_f16(NAN) & 0x7E00, 0x7E00);
    assert_int_equal(mpoc_f32_to_f16(float_of(0x7F800001u)), 0x7E00);
    assert_int_equal(mpoc_f32_to_f16(float_of(0xFF812345u)), 0xFE09);
}

/* Every finite half survives f16 → f32 → f16; every midpoint between two
 * neighbours rounds to the even one. */
static void test_f16_round_trip_and_midpoints(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x7C00; h++) {
        for (uint32_t s = 0; s <= 0x8000; s += 0x8000) {
            const uint16_t x = (uint16_t)(h | s);
            assert_int_equal(mpoc_f32_to_f16(mpoc_f16_to_f32(x)), x);
        }
        if (h + 1 < 0x7C00) {
            const double mid = (f16_definition((uint16_t)h) + f16_definition((uint16_t)(h + 1))) / 2;
            const uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
            assert_int_equal(mpoc_f32_to_f16((float)mid), even); /* mid is exact in float */
        }
    }
}

/* The F16C writer (when the CPU has it) against the scalar reference. */
static void test_f32_to_f16_fast_matches_reference(void **state)
{
    (void)state;
    enum { N = 1 << 18 };
    float *src = malloc(N * sizeof(float));
    uint8_t *fast = malloc(2 * N), *ref = malloc(2 * N), *api = malloc(2 * N);
    assert_non_null(src);
    assert_non_null(fast);
    assert_non_null(ref);
    assert_non_null(api);
    uint64_t s = 7;
    for (size_t i = 0; i < N; i++) {
        /* random bit patterns, and values near the f16 range boundaries */
        const uint32_t r = (uint32_t)rng_next(&s);
        src[i] = (i % 2) ? float_of(r) : float_of((r & 0x87FFFFFFu) | 0x30000000u);
    }
    mpoc_f32_row_to_f16_fast(src, N, fast);
    mpoc_f32_row_to_f16_ref(src, N, ref);
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_F16, src + 3, N - 3, api), MPOC_OK);
    for (size_t i = 0; i < N; i++) {
        if (get16(fast + 2 * i) != get16(ref + 2 * i)) {
            print_error("f32 %08x: fast %04x ref %04x\n", bits_of(src[i]), get16(fast + 2 * i),
                        get16(ref + 2 * i));
            fail();
        }
    }
    assert_memory_equal(api, ref + 6, 2 * (N - 3));
    free(src);
    free(fast);
    free(ref);
    free(api);
}

/* ---- BF16 ------------------------------------------------------------------- */

static void test_bf16_to_f32_exhaustive(void **state)
{
    (void)state;
    enum { N = 65536 };
    uint8_t *src = malloc(2 * N + 1);
    float *fast = malloc(N * sizeof(float)), *ref = malloc(N * sizeof(float));
    assert_non_null(src);
    assert_non_null(fast);
    assert_non_null(ref);
    for (uint32_t h = 0; h < N; h++)
        put16(src + 1 + 2 * h, (uint16_t)h); /* odd address: unaligned loads */
    mpoc_bf16_row_to_f32_fast(src + 1, N, fast);
    mpoc_bf16_row_to_f32_ref(src + 1, N, ref);
    expect_same_bits(fast, ref, N);
    to_f32_ok(MPOC_DTYPE_BF16, src + 1, N, fast);
    for (uint32_t h = 0; h < N; h++) {
        assert_int_equal(bits_of(fast[h]), h << 16); /* the definition */
        assert_int_equal(bits_of(mpoc_bf16_to_f32((uint16_t)h)), h << 16);
    }
    free(src);
    free(fast);
    free(ref);
}

static void test_f32_to_bf16_rounding(void **state)
{
    (void)state;
    assert_int_equal(mpoc_f32_to_bf16(1.0f), 0x3F80);
    assert_int_equal(mpoc_f32_to_bf16(1.0f + 0x1.0p-8f), 0x3F80); /* tie → even */
    assert_int_equal(mpoc_f32_to_bf16(1.0f + 3 * 0x1.0p-8f), 0x3F82); /* tie → even */
    assert_int_equal(mpoc_f32_to_bf16(1.0f + 0x1.0p-8f + 0x1.0p-20f), 0x3F81);
    assert_int_equal(mpoc_f32_to_bf16(-1.0f - 0x1.0p-8f - 0x1.0p-20f), 0xBF81);
    assert_int_equal(mpoc_f32_to_bf16(FLT_MAX), 0x7F80); /* rounds up to Inf */
    assert_int_equal(mpoc_f32_to_bf16(INFINITY), 0x7F80);
    assert_int_equal(mpoc_f32_to_bf16(-INFINITY), 0xFF80);
    assert_int_equal(mpoc_f32_to_bf16(float_of(0x00010000u)), 0x0001); /* subnormal kept */
    assert_int_equal(mpoc_f32_to_bf16(float_of(0x00008000u)), 0x0000); /* tie → even 0 */
    assert_int_equal(mpoc_f32_to_bf16(float_of(0x7F800001u)), 0x7FC0); /* sNaN → quiet */
    assert_int_equal(mpoc_f32_to_bf16(float_of(0xFFC00000u)), 0xFFC0);
    assert_int_equal(mpoc_f32_to_bf16(float_of(0x7F81FFFFu)), 0x7FC1); /* no carry to Inf */
    /* every bf16 value survives bf16 → f32 → bf16 except NaNs get quiet */
    for (uint32_t h = 0; h < 65536; h++) {
        const uint16_t back = mpoc_f32_to_bf16(mpoc_bf16_to_f32((uint16_t)h));
        const bool nan = (h & 0x7F80u) == 0x7F80u && (h & 0x7Fu) != 0;
        assert_int_equal(back, nan ? (h | 0x40u) : h);
    }
    /* the row writer is the scalar one */
    const float in[3] = {1.0f + 0x1.0p-8f, NAN, -3.0f};
    uint8_t out[6];
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_BF16, in, 3, out), MPOC_OK);
    assert_int_equal(get16(out), 0x3F80);
    assert_true(isnan(mpoc_bf16_to_f32(get16(out + 2))));
    assert_int_equal(get16(out + 4), 0xC040);
}

/* Large rows take the streaming-store path; check it (and its unaligned
 * prologue) against the references. */
static void test_half_rows_streaming_path(void **state)
{
    (void)state;
    const size_t n = (size_t)3 << 20; /* 12 MiB of float32 output */
    uint8_t *src = malloc(2 * n + 2);
    float *fast = malloc((n + 1) * sizeof(float)), *ref = malloc(n * sizeof(float));
    assert_non_null(src);
    assert_non_null(fast);
    assert_non_null(ref);
    for (size_t i = 0; i < n + 1; i++)
        put16(src + 2 * i, (uint16_t)(i * 40503u));
    mpoc_f16_row_to_f32_fast(src + 1, n, fast + 1); /* misaligned src and dst */
    for (size_t i = 0; i < n; i++)
        ref[i] = mpoc_f16_to_f32_ref(get16(src + 1 + 2 * i));
    expect_same_bits(fast + 1, ref, n);
    mpoc_bf16_row_to_f32_fast(src, n - 5, fast + 1);
    for (size_t i = 0; i < n - 5; i++)
        ref[i] = mpoc_bf16_to_f32(get16(src + 2 * i));
    expect_same_bits(fast + 1, ref, n - 5);
    free(src);
    free(fast);
    free(ref);
}

/* ---- F64, integers, BOOL ------------------------------------------------------ */

static void test_f32_f64_conversions(void **state)
{
    (void)state;
    const float in[4] = {1.5f, -0.0f, float_of(0x7FC12345u), 0x1.0p-149f};
    uint8_t buf[32];
    float out[4];
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_F32, in, 4, buf), MPOC_OK);
    to_f32_ok(MPOC_DTYPE_F32, buf, 4, out);
    expect_same_bits(out, in, 4); /* F32 is a copy, NaN payload included */
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_F64, in, 4, buf), MPOC_OK);
    to_f32_ok(MPOC_DTYPE_F64, buf, 4, out);
    assert_true(out[0] == 1.5f && signbit(out[1]) && isnan(out[2]) && out[3] == 0x1.0p-149f);
    double d[3] = {1e300, 0.1, -1e-50};
    float want[3] = {INFINITY, 0.1f, -0.0f};
    memcpy(buf, d, sizeof d); /* little-endian host */
    to_f32_ok(MPOC_DTYPE_F64, buf, 3, out);
    expect_same_bits(out, want, 3);
}

static void test_integer_types(void **state)
{
    (void)state;
    float out[4];
    const uint8_t i8[3] = {0x80, 0x7F, 0xFF};
    to_f32_ok(MPOC_DTYPE_I8, i8, 3, out);
    expect_values(out, (const float[]){-128.0f, 127.0f, -1.0f}, 3);
    to_f32_ok(MPOC_DTYPE_U8, i8, 3, out);
    expect_values(out, (const float[]){128.0f, 127.0f, 255.0f}, 3);
    const uint8_t i16[4] = {0x00, 0x80, 0xFE, 0xFF}; /* little-endian */
    to_f32_ok(MPOC_DTYPE_I16, i16, 2, out);
    expect_values(out, (const float[]){-32768.0f, -2.0f}, 2);
    to_f32_ok(MPOC_DTYPE_U16, i16, 2, out);
    expect_values(out, (const float[]){32768.0f, 65534.0f}, 2);
    const uint8_t i32[8] = {0x00, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00, 0x01};
    to_f32_ok(MPOC_DTYPE_I32, i32, 2, out);
    expect_values(out, (const float[]){-2147483648.0f, 16777216.0f}, 2); /* 2^24+1 → 2^24 */
    to_f32_ok(MPOC_DTYPE_U32, i32, 2, out);
    expect_values(out, (const float[]){2147483648.0f, 16777216.0f}, 2);
    const uint8_t i64[16] = {0x00, 0, 0, 0, 0, 0, 0, 0x80, 0xFF, 0xFF, 0xFF, 0xFF,
                             0xFF, 0xFF, 0xFF, 0xFF};
    to_f32_ok(MPOC_DTYPE_I64, i64, 2, out);
    expect_values(out, (const float[]){-0x1.0p63f, -1.0f}, 2);
    to_f32_ok(MPOC_DTYPE_U64, i64, 2, out);
    expect_values(out, (const float[]){0x1.0p63f, 0x1.0p64f}, 2);
}

static void test_bool(void **state)
{
    (void)state;
    const uint8_t ok[4] = {0, 1, 1, 0};
    float out[4];
    to_f32_ok(MPOC_DTYPE_BOOL, ok, 4, out);
    expect_values(out, (const float[]){0.0f, 1.0f, 1.0f, 0.0f}, 4);
    const uint8_t bad[3] = {0, 1, 2};
    assert_int_equal(mpoc_dtype_to_f32(MPOC_DTYPE_BOOL, bad, 3, out), MPOC_E_FORMAT);
    const uint8_t bad2[1] = {0xFF};
    assert_int_equal(mpoc_dtype_to_f32(MPOC_DTYPE_BOOL, bad2, 1, out), MPOC_E_FORMAT);
}

/* ---- FP8 ------------------------------------------------------------------------ */

static void test_f8_e4m3(void **state)
{
    (void)state;
    /* bias 7, 3 mantissa bits: 0x38 = 2^0; 0x7E = 1.75·2^8 = 448 (largest);
     * 0x01 = 1/8·2^-6 = 2^-9; 0x08 = 2^-6 (smallest normal); 0xC4 = -1.5·2^1 */
    const uint8_t c[8] = {0x38, 0x7E, 0x01, 0x08, 0xC4, 0x80, 0x7F, 0xFF};
    float out[8];
    to_f32_ok(MPOC_DTYPE_F8_E4M3, c, 8, out);
    expect_values(out, (const float[]){1.0f, 448.0f, 0x1.0p-9f, 0x1.0p-6f, -3.0f, 0.0f}, 6);
    assert_true(signbit(out[5])); /* 0x80 is -0 in the OCP format */
    assert_true(isnan(out[6]) && isnan(out[7])); /* no Inf: S.1111.111 is NaN */
    /* 0x78..0x7E are numbers (no Inf encoding) */
    const uint8_t big[1] = {0x78};
    to_f32_ok(MPOC_DTYPE_F8_E4M3, big, 1, out);
    assert_true(out[0] == 256.0f);
}

static void test_f8_e5m2(void **state)
{
    (void)state;
    /* the top byte of a half: 0x3C = 1.0, 0x7B = 1.75·2^15 = 57344,
     * 0x01 = 2^-16, 0x7C = Inf, 0x7D..0x7F NaN, 0xC2 = -3 */
    const uint8_t c[7] = {0x3C, 0x7B, 0x01, 0xC2, 0x7C, 0xFC, 0x7D};
    float out[7];
    to_f32_ok(MPOC_DTYPE_F8_E5M2, c, 7, out);
    expect_values(out, (const float[]){1.0f, 57344.0f, 0x1.0p-16f, -3.0f, INFINITY, -INFINITY}, 6);
    assert_true(isnan(out[6]));
}

static void test_f8_fnuz_and_e8m0(void **state)
{
    (void)state;
    float out[6];
    /* E4M3FNUZ: bias 8, 0x80 the only NaN, 0x7F = 1.875·2^7 = 240 */
    const uint8_t a[5] = {0x40, 0x7F, 0x01, 0xC0, 0x80};
    to_f32_ok(MPOC_DTYPE_F8_E4M3FNUZ, a, 5, out);
    expect_values(out, (const float[]){1.0f, 240.0f, 0x1.0p-10f, -1.0f}, 4);
    assert_true(isnan(out[4]));
    /* E5M2FNUZ: bias 16, 0x7F = 1.75·2^15 = 57344 (no Inf), 0x01 = 2^-17 */
    const uint8_t b[4] = {0x40, 0x7F, 0x01, 0x80};
    to_f32_ok(MPOC_DTYPE_F8_E5M2FNUZ, b, 4, out);
    expect_values(out, (const float[]){1.0f, 57344.0f, 0x1.0p-17f}, 3);
    assert_true(isnan(out[3]));
    /* E8M0: 2^(c-127), 0xFF NaN */
    const uint8_t e[5] = {127, 0, 254, 130, 0xFF};
    to_f32_ok(MPOC_DTYPE_F8_E8M0, e, 5, out);
    expect_values(out, (const float[]){1.0f, 0x1.0p-127f, 0x1.0p127f, 8.0f}, 4);
    assert_true(isnan(out[4]));
}

/* ---- 32-element ggml blocks, built by hand ----------------------------------- */

static void test_q4_0_block(void **state)
{
    (void)state;
    uint8_t blk[1 + 18] = {0}; /* +1: read from an odd address */
    uint8_t *b = blk + 1;
    put16(b, 0x3800); /* d = 0.5 */
    for (int j = 0; j < 16; j++)
        b[2 + j] = (uint8_t)(j | ((15 - j) << 4)); /* elem j: j, elem j+16: 15-j */
    float out[32];
    to_f32_ok(MPOC_DTYPE_Q4_0, b, 32, out);
    /* x = (q - 8)·d */
    expect_value_at(out, 0, -4.0f);  /* q 0 */
    expect_value_at(out, 8, 0.0f);   /* q 8 */
    expect_value_at(out, 15, 3.5f);  /* q 15 */
    expect_value_at(out, 16, 3.5f);  /* high nibble of byte 0: 15 */
    expect_value_at(out, 31, -4.0f); /* high nibble of byte 15: 0 */
    expect_value_at(out, 21, 1.0f);  /* high nibble of byte 5: 10 */
    for (int j = 0; j < 16; j++) {
        expect_value_at(out, (size_t)j, (float)(j - 8) * 0.5f);
        expect_value_at(out, (size_t)j + 16, (float)(7 - j) * 0.5f);
    }
}

static void test_q4_1_block(void **state)
{
    (void)state;
    uint8_t b[20] = {0};
    put16(b, 0x3400);     /* d = 0.25 */
    put16(b + 2, 0xBC00); /* m = -1 */
    b[4] = 0xF0;          /* elem 0: 0, elem 16: 15 */
    b[4 + 9] = 0x37;      /* elem 9: 7, elem 25: 3 */
    float out[32];
    to_f32_ok(MPOC_DTYPE_Q4_1, b, 32, out);
    /* x = q·d + m */
    expect_value_at(out, 0, -1.0f);
    expect_value_at(out, 16, 2.75f);
    expect_value_at(out, 9, 0.75f);
    expect_value_at(out, 25, -0.25f);
    expect_value_at(out, 1, -1.0f);
}

static void test_q5_0_block(void **state)
{
    (void)state;
    uint8_t b[22] = {0};
    put16(b, 0x3C00);                 /* d = 1 */
    b[2] = 0x01;                      /* qh bit 0: elem 0 */
    b[4] = 0x01;                      /* qh bit 16: elem 16 */
    b[5] = 0x80;                      /* qh bit 31: elem 31 */
    b[6 + 0] = 0x52;                  /* elem 0: 2, elem 16: 5 */
    b[6 + 1] = 0x52;                  /* elem 1: 2, elem 17: 5 (no 5th bits) */
    b[6 + 15] = 0xA0;                 /* elem 15: 0, elem 31: 10 */
    float out[32];
    to_f32_ok(MPOC_DTYPE_Q5_0, b, 32, out);
    /* x = (q - 16)·d with q = nibble | 5th bit << 4 */
    expect_value_at(out, 0, 2.0f);   /* 18 - 16 */
    expect_value_at(out, 16, 5.0f);  /* 21 - 16 */
    expect_value_at(out, 1, -14.0f); /* 2 - 16 */
    expect_value_at(out, 17, -11.0f);
    expect_value_at(out, 15, -16.0f);
    expect_value_at(out, 31, 10.0f); /* 26 - 16 */
}

static void test_q5_1_block(void **state)
{
    (void)state;
    uint8_t b[24] = {0};
    put16(b, 0x3800);     /* d = 0.5 */
    put16(b + 2, 0x4000); /* m = 2 */
    b[7] = 0x80;          /* qh bit 31: elem 31 */
    b[4] = 0x02;          /* qh bit 1: elem 1 */
    b[8 + 0] = 0x0F;      /* elem 0: 15, elem 16: 0 */
    b[8 + 1] = 0x33;      /* elem 1: 3 | 16, elem 17: 3 */
    b[8 + 15] = 0xF0;     /* elem 15: 0, elem 31: 15 | 16 */
    float out[32];
    to_f32_ok(MPOC_DTYPE_Q5_1, b, 32, out);
    /* x = q·d + m */
    expect_value_at(out, 0, 9.5f);
    expect_value_at(out, 16, 2.0f);
    expect_value_at(out, 1, 11.5f);  /* 19·0.5 + 2 */
    expect_value_at(out, 17, 3.5f);  /* 3·0.5 + 2 */
    expect_value_at(out, 15, 2.0f);
    expect_value_at(out, 31, 17.5f); /* 31·0.5 + 2 */
}

static void test_q8_0_blocks(void **state)
{
    (void)state;
    uint8_t raw[1 + 2 * 34] = {0};
    uint8_t *b = raw + 1; /* odd address */
    put16(b, 0x3800);      /* block 0: d = 0.5 */
    b[2 + 0] = 0x80;       /* -128 */
    b[2 + 5] = 0xFF;       /* -1 */
    b[2 + 31] = 0x7F;      /* 127 */
    put16(b + 34, 0xC000); /* block 1: d = -2 */
    b[34 + 2 + 3] = 0x05;
    float out[64];
    to_f32_ok(MPOC_DTYPE_Q8_0, b, 64, out);
    expect_value_at(out, 0, -64.0f);
    expect_value_at(out, 5, -0.5f);
    expect_value_at(out, 31, 63.5f);
    expect_value_at(out, 1, 0.0f);
    expect_value_at(out, 35, -10.0f);
    expect_value_at(out, 32, 0.0f);
}

/* ---- K-quants ------------------------------------------------------------------
 * Each type gets (a) one block with a few raw bytes set by hand and values
 * derived by hand, and (b) a full block packed from logical codes/scales by
 * a packer written from the format definition, checked at every element. */

static void test_q2_k_block_by_hand(void **state)
{
    (void)state;
    uint8_t b[84] = {0};
    for (int k = 0; k < 16; k++)
        b[k] = 0x21;      /* every sub-block: scale 1, min 2 */
    b[3] = 0x5A;          /* sub-block 3: scale 10, min 5 */
    b[16 + 0] = 0xE4;     /* byte 0, planes 0..3 = 0,1,2,3 */
    b[16 + 17] = 0x1B;    /* byte 17, planes 0..3 = 3,2,1,0 */
    put16(b + 80, 0x3C00); /* d = 1 */
    put16(b + 82, 0x3800); /* dmin = 0.5 */
    float out[256];
    to_f32_ok(MPOC_DTYPE_Q2_K, b, 256, out);
    /* x = d·sc·q - dmin·mn; element 32p + l of half 0 is (byte l >> 2p) & 3 */
    expect_value_at(out, 0, -1.0f);   /* q 0: 0 - 0.5·2 */
    expect_value_at(out, 32, 0.0f);   /* q 1: 1 - 1 */
    expect_value_at(out, 64, 1.0f);   /* q 2 */
    expect_value_at(out, 96, 2.0f);   /* q 3 */
    expect_value_at(out, 17, 2.0f);   /* byte 17 plane 0: q 3, sub-block 1 */
    expect_value_at(out, 49, 17.5f);  /* byte 17 plane 1: q 2, sub-block 3: 10·2 - 0.5·5 */
    expect_value_at(out, 81, 0.0f);   /* plane 2: q 1, sub-block 5 */
    expect_value_at(out, 113, -1.0f); /* plane 3: q 0 */
    expect_value_at(out, 128, -1.0f); /* half 1 uses bytes 32..63: all 0 */
    expect_value_at(out, 1, -1.0f);
}

static void test_q3_k_block_by_hand(void **state)
{
    (void)state;
    uint8_t b[110] = {0};
    uint8_t *hmask = b, *codes = b + 32, *sc = b + 96;
    put16(b + 108, 0x3C00); /* d = 1 */
    /* stored scale S = s + 32, 6 bits: low 4 bits in byte j (j < 8, low
     * nibble) or j-8 (high nibble), top 2 bits in byte 8 + j%4 at 2·(j/4) */
    sc[0] = 0x01;  /* sub-block 0: S = 33 = 0b10_0001 → low 1 ... */
    sc[8] = 0x02;  /* ... top 2 → s = +1 */
    sc[5] = 0x0D;  /* sub-block 5: S = 29 = 0b01_1101: low 0xD ... */
    sc[9] = 0x04;  /* ... top 1 at bits 2-3 of byte 9 → s = -3 */
    sc[2] = 0x40;  /* sub-block 10: S = 52 = 0b11_0100: low 4 in byte 2 high nibble */
    sc[10] = 0x30; /* ... top 3 at bits 4-5 of byte 10 → s = +20 */
    /* element 0: plane 0 of byte 0, high bit = bit 0 of hmask[0] */
    codes[0] = 0x03;
    hmask[0] = 0x01;
    /* element 80 (half 0, plane 2, l 16): bits 4-5 of byte 16; hmask[16] bit 2 */
    codes[16] = 0x20;
    /* element 170 (half 1, plane 1, l 10): bits 2-3 of byte 42; hmask[10] bit 5 */
    codes[42] = 0x04;
    hmask[10] = 0x20;
    float out[256];
    to_f32_ok(MPOC_DTYPE_Q3_K, b, 256, out);
    /* x = d·s·(low - (high bit set ? 0 : 4)) */
    expect_value_at(out, 0, 3.0f);     /* s 1 · (3 - 0) */
    expect_value_at(out, 1, -4.0f);    /* s 1 · (0 - 4) */
    expect_value_at(out, 80, 6.0f);    /* s -3 · (2 - 4) */
    expect_value_at(out, 170, 20.0f);  /* s 20 · (1 - 0) */
    expect_value_at(out, 171, -80.0f); /* s 20 · (0 - 4) */
    expect_value_at(out, 16, 128.0f);  /* sub-block 1: S 0 → s -32 · (0 - 4) */
}

static void test_q4_k_block_by_hand(void **state)
{
    (void)state;
    uint8_t b[144] = {0};
    uint8_t *sc = b + 4, *qs = b + 16;
    put16(b, 0x3C00);     /* d = 1 */
    put16(b + 2, 0x3800); /* dmin = 0.5 */
    /* sub-blocks 0-3: scale = byte j & 63, min = byte j+4 & 63; sub-blocks
     * 4-7: low 4 bits in byte j+4 (scale low nibble, min high nibble), top
     * 2 bits in the top bits of byte j-4 (scale) and byte j (min) */
    sc[0] = 0x40 | 2; /* sub 0 scale 2; top bits 1 → sub 4 scale += 16 */
    sc[1] = 0xC0 | 5; /* sub 1 scale 5; top bits 3 → sub 5 scale += 48 */
    sc[5] = 0x80 | 3; /* sub 1 min 3; top bits 2 → sub 5 min += 32 */
    sc[8] = 0x03;     /* sub 4: scale low 3, min low 0 */
    sc[9] = 0x21;     /* sub 5: scale low 1, min low 2 */
    /* sub-blocks 2c, 2c+1 share bytes 32c..32c+31: low, then high nibbles */
    qs[7] = 0xA4;  /* elem 7 (sub 0): 4; elem 39 (sub 1): 10 */
    qs[67] = 0x75; /* elem 131 (sub 4): 5; elem 163 (sub 5): 7 */
    float out[256];
    to_f32_ok(MPOC_DTYPE_Q4_K, b, 256, out);
    /* x = d·sc·q - dmin·mn */
    expect_value_at(out, 7, 8.0f);     /* 2·4 - 0 */
    expect_value_at(out, 39, 48.5f);   /* 5·10 - 0.5·3 */
    expect_value_at(out, 131, 95.0f);  /* 19·5 - 0 */
    expect_value_at(out, 163, 326.0f); /* 49·7 - 0.5·34 */
    expect_value_at(out, 160, -17.0f); /* q 0, sub 5 */
    expect_value_at(out, 32, -1.5f);   /* q 0, sub 1 */
}

static void test_q5_k_block_by_hand(void **state)
{
    (void)state;
    uint8_t b[176] = {0};
    uint8_t *sc = b + 4, *qh = b + 16, *qs = b + 48;
    put16(b, 0x3C00);
    put16(b + 2, 0x3800);
    sc[0] = 0x40 | 2;
    sc[1] = 0xC0 | 5;
    sc[5] = 0x80 | 3;
    sc[8] = 0x03;
    sc[9] = 0x21;
    qs[7] = 0xA4;
    qs[67] = 0x75;
    qh[7] = 0x02; /* element 7 + 32·1: 5th bit of sub 1 in bit 1 */
    qh[3] = 0x20; /* element 3 + 32·5: 5th bit of sub 5 in bit 5 */
    float out[256];
    to_f32_ok(MPOC_DTYPE_Q5_K, b, 256, out);
    expect_value_at(out, 7, 8.0f);      /* 2·4 */
    expect_value_at(out, 39, 128.5f);   /* 5·(10 + 16) - 1.5 */
    expect_value_at(out, 131, 95.0f);   /* 19·5: bit 4 of qh[3] clear */
    expect_value_at(out, 163, 1110.0f); /* 49·(7 + 16) - 17 */
    expect_value_at(out, 35, -1.5f);    /* sub 1, qh[3] bit 1 clear, q 0 */
}

static void test_q6_k_block_by_hand(void **state)
{
    (void)state;
    uint8_t b[210] = {0};
    uint8_t *ql = b, *qh = b + 128;
    int8_t sc[16] = {0};
    put16(b + 208, 0x3800); /* d = 0.5 */
    /* element 0: low 4 bits ql[0] low nibble, top 2 bits qh[0] bits 0-1 */
    ql[0] = 0x0F;
    qh[0] = 0x02; /* q = 15 | 32 → stored 47 → 47 - 32 = 15 */
    sc[0] = 4;
    /* element 69 (half 0, p 2, l 5): ql[5] high nibble, qh[5] bits 4-5 */
    ql[5] = 0x30; /* stored 3 → 3 - 32 = -29 */
    sc[4] = -2;
    /* element 180 (half 1, p 1, l 20): ql[64 + 32 + 20] low, qh[32 + 20] bits 2-3 */
    ql[116] = 0x09;
    qh[52] = 0x0C; /* stored 9 | 48 = 57 → 25 */
    sc[11] = -128;
    /* element 255 (half 1, p 3, l 31): ql[127] high, qh[63] bits 6-7 */
    ql[127] = 0xF0;
    qh[63] = 0xC0; /* stored 63 → 31 */
    sc[15] = 127;
    memcpy(b + 192, sc, 16);
    float out[256];
    to_f32_ok(MPOC_DTYPE_Q6_K, b, 256, out);
    /* x = d·sc·(stored - 32) */
    expect_value_at(out, 0, 30.0f);      /* 0.5·4·15 */
    expect_value_at(out, 69, 29.0f);     /* 0.5·-2·-29 */
    expect_value_at(out, 180, -1600.0f); /* 0.5·-128·25 */
    expect_value_at(out, 255, 1968.5f);  /* 0.5·127·31 */
    expect_value_at(out, 1, -64.0f);     /* 0.5·4·(0 - 32) */
    expect_value_at(out, 16, -0.0f);     /* sub-block 1 scale 0 */
}

/* Full-block checks: logical content → bytes by the format definition. */

typedef struct kblock {
    uint8_t q[256];  /* stored codes */
    uint8_t sc[16];  /* stored scales (6-bit, 4-bit or 8-bit by type) */
    uint8_t mn[16];  /* stored mins (Q2_K, Q4_K, Q5_K) */
    uint16_t d, dmin;
} kblock;

static void kblock_fill(kblock *k, uint64_t seed, int qmax, int scmax, int mnmax)
{
    uint64_t s = seed;
    for (int e = 0; e < 256; e++)
        k->q[e] = (uint8_t)(rng_next(&s) % (uint64_t)(qmax + 1));
    for (int j = 0; j < 16; j++) {
        k->sc[j] = (uint8_t)(rng_next(&s) % (uint64_t)(scmax + 1));
        k->mn[j] = (uint8_t)(rng_next(&s) % (uint64_t)(mnmax + 1));
    }
    k->d = 0x3800;    /* 0.5: all products below are exact */
    k->dmin = 0x3400; /* 0.25 */
}

/* Codes of 2 bits in planes (Q2_K, Q3_K): half h, plane p, position l. */
static void pack_planes(const uint8_t *q, uint8_t *codes)
{
    for (int e = 0; e < 256; e++)
        codes[32 * (e / 128) + e % 32] |= (uint8_t)((q[e] & 3) << (2 * ((e % 128) / 32)));
}

static void test_q2_k_full_block(void **state)
{
    (void)state;
    kblock k;
    kblock_fill(&k, 11, 3, 15, 15);
    uint8_t b[84] = {0};
    for (int j = 0; j < 16; j++)
        b[j] = (uint8_t)(k.sc[j] | (k.mn[j] << 4));
    pack_planes(k.q, b + 16);
    put16(b + 80, k.d);
    put16(b + 82, k.dmin);
    float out[256], want[256];
    to_f32_ok(MPOC_DTYPE_Q2_K, b, 256, out);
    for (int e = 0; e < 256; e++)
        want[e] = 0.5f * (float)k.sc[e / 16] * (float)k.q[e] - 0.25f * (float)k.mn[e / 16];
    expect_values(out, want, 256);
}

static void test_q3_k_full_block(void **state)
{
    (void)state;
    kblock k;
    kblock_fill(&k, 12, 7, 63, 0); /* q = stored 3-bit code, sc = s + 32 */
    uint8_t b[110] = {0};
    for (int e = 0; e < 256; e++)
        if (k.q[e] & 4)
            b[e % 32] |= (uint8_t)(1u << (e / 32));
    pack_planes(k.q, b + 32);
    for (int j = 0; j < 16; j++) {
        b[96 + (j < 8 ? j : j - 8)] |= (uint8_t)((k.sc[j] & 15) << (j < 8 ? 0 : 4));
        b[96 + 8 + j % 4] |= (uint8_t)((k.sc[j] >> 4) << (2 * (j / 4)));
    }
    put16(b + 108, k.d);
    float out[256], want[256];
    to_f32_ok(MPOC_DTYPE_Q3_K, b, 256, out);
    for (int e = 0; e < 256; e++)
        want[e] = 0.5f * (float)((int)k.sc[e / 16] - 32) * (float)((int)k.q[e] - 4);
    expect_values(out, want, 256);
}

/* Q4_K/Q5_K 6-bit scales and mins, 8 sub-blocks. */
static void pack_k4_scales(const uint8_t *sc, const uint8_t *mn, uint8_t *p)
{
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            p[j] |= sc[j] & 63;
            p[j + 4] |= mn[j] & 63;
        } else {
            p[j + 4] = (uint8_t)((sc[j] & 15) | ((mn[j] & 15) << 4));
            p[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            p[j] |= (uint8_t)((mn[j] >> 4) << 6);
        }
    }
}

static void test_q4_k_full_block(void **state)
{
    (void)state;
    kblock k;
    kblock_fill(&k, 13, 15, 63, 63);
    uint8_t b[144] = {0};
    put16(b, k.d);
    put16(b + 2, k.dmin);
    pack_k4_scales(k.sc, k.mn, b + 4);
    for (int e = 0; e < 256; e++) {
        const int sub = e / 32;
        b[16 + 32 * (sub / 2) + e % 32] |= (uint8_t)(k.q[e] << (4 * (sub % 2)));
    }
    float out[256], want[256];
    to_f32_ok(MPOC_DTYPE_Q4_K, b, 256, out);
    for (int e = 0; e < 256; e++)
        want[e] = 0.5f * (float)k.sc[e / 32] * (float)k.q[e] - 0.25f * (float)k.mn[e / 32];
    expect_values(out, want, 256);
}

static void test_q5_k_full_block(void **state)
{
    (void)state;
    kblock k;
    kblock_fill(&k, 14, 31, 63, 63);
    uint8_t b[176] = {0};
    put16(b, k.d);
    put16(b + 2, k.dmin);
    pack_k4_scales(k.sc, k.mn, b + 4);
    for (int e = 0; e < 256; e++) {
        const int sub = e / 32;
        b[48 + 32 * (sub / 2) + e % 32] |= (uint8_t)((k.q[e] & 15) << (4 * (sub % 2)));
        b[16 + e % 32] |= (uint8_t)((k.q[e] >> 4) << sub);
    }
    float out[256], want[256];
    to_f32_ok(MPOC_DTYPE_Q5_K, b, 256, out);
    for (int e = 0; e < 256; e++)
        want[e] = 0.5f * (float)k.sc[e / 32] * (float)k.q[e] - 0.25f * (float)k.mn[e / 32];
    expect_values(out, want, 256);
}

static void test_q6_k_full_block(void **state)
{
    (void)state;
    kblock k;
    kblock_fill(&k, 15, 63, 255, 0); /* sc: any int8 */
    uint8_t b[210] = {0};
    for (int e = 0; e < 256; e++) {
        const int half = e / 128, p = (e % 128) / 32, l = e % 32;
        b[64 * half + l + 32 * (p % 2)] |= (uint8_t)((k.q[e] & 15) << (4 * (p / 2)));
        b[128 + 32 * half + l] |= (uint8_t)((k.q[e] >> 4) << (2 * p));
    }
    memcpy(b + 192, k.sc, 16);
    put16(b + 208, k.d);
    float out[256], want[256];
    to_f32_ok(MPOC_DTYPE_Q6_K, b, 256, out);
    for (int e = 0; e < 256; e++)
        want[e] = 0.5f * (float)(int8_t)k.sc[e / 16] * (float)((int)k.q[e] - 32);
    expect_values(out, want, 256);
}

/* Several blocks from an unaligned buffer give the same values as each
 * block alone (block strides are right for every readable block type). */
static void test_multi_block_unaligned(void **state)
{
    (void)state;
    for (int t = 0; t < MPOC_DTYPE_COUNT_; t++) {
        const mpoc_dtype_traits *info = mpoc_dtype_info((mpoc_dtype)t);
        if (!info->can_read || info->block_elems == 1)
            continue;
        const size_t bb = info->block_bits / 8, ne = info->block_elems;
        /* random bytes: some f16 scales are NaN/Inf, so compare bitwise */
        uint8_t raw[1 + 3 * 210];
        uint64_t s = (uint64_t)t;
        for (size_t i = 0; i < sizeof raw; i++)
            raw[i] = (uint8_t)rng_next(&s);
        float all[3 * 256], one[256];
        to_f32_ok((mpoc_dtype)t, raw + 1, 3 * ne, all);
        for (int blk = 0; blk < 3; blk++) {
            to_f32_ok((mpoc_dtype)t, raw + 1 + blk * bb, ne, one);
            expect_same_bits(all + blk * ne, one, ne);
        }
    }
}

/* ---- Q8_0 / Q4_0 quantizers ---------------------------------------------------- */

static double relative_error(const float *x, const float *y, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        const double diff = (double)x[i] - (double)y[i];
        num += diff * diff;
        den += (double)x[i] * (double)x[i];
    }
    return sqrt(num / den);
}

static void round_trip_error(mpoc_dtype t, size_t block_bytes, double ceiling)
{
    enum { N = 1 << 18 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    uint8_t *q = malloc(N / 32 * block_bytes), *qref = malloc(N / 32 * block_bytes);
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(q);
    assert_non_null(qref);
    fill_gaussian(x, N, 42);
    assert_int_equal(mpoc_dtype_from_f32(t, x, N, q), MPOC_OK);
    const mpoc_status r = t == MPOC_DTYPE_Q8_0 ? mpoc_q8_0_from_f32_ref(x, N, qref)
                                               : mpoc_q4_0_from_f32_ref(x, N, qref);
    assert_int_equal(r, MPOC_OK);
    assert_memory_equal(q, qref, N / 32 * block_bytes); /* fast == reference */
    to_f32_ok(t, q, N, y);
    const double err = relative_error(x, y, N);
    print_message("%s Gaussian relative RMSE %.4f%% (ceiling %.1f%%)\n", mpoc_dtype_name(t),
                  100 * err, 100 * ceiling);
    assert_true(err < ceiling);
    assert_true(err > ceiling / 10); /* a quantizer that did nothing would pass otherwise */
    free(x);
    free(y);
    free(q);
    free(qref);
}

static void test_q8_0_gaussian_round_trip(void **state)
{
    (void)state;
    round_trip_error(MPOC_DTYPE_Q8_0, 34, 0.007);
}

static void test_q4_0_gaussian_round_trip(void **state)
{
    (void)state;
    round_trip_error(MPOC_DTYPE_Q4_0, 18, 0.10);
}

/* Fast and reference quantizers agree byte for byte on awkward data:
 * ties, equal extremes of both signs, signed zeros, tiny and huge blocks. */
static void test_quantizers_fast_equals_reference(void **state)
{
    (void)state;
    enum { NB = 512, N = NB * 32 };
    float *x = malloc(N * sizeof(float));
    uint8_t *a = malloc(NB * 34), *b = malloc(NB * 34);
    assert_non_null(x);
    assert_non_null(a);
    assert_non_null(b);
    uint64_t s = 99;
    for (int blk = 0; blk < NB; blk++) {
        float *v = x + 32 * blk;
        const int kind = blk % 8;
        const float scale = ldexpf(1.0f, (int)(rng_next(&s) % 40) - 30);
        for (int j = 0; j < 32; j++) {
            const int r = (int)(rng_next(&s) % 255) - 127;
            switch (kind) {
            case 0: v[j] = (float)r * scale; break;                /* integer grid */
            case 1: v[j] = ((float)r + 0.5f) * scale; break;       /* halves: ties */
            case 2: v[j] = (j % 2 ? 0.0f : -0.0f); break;          /* signed zeros */
            case 3: v[j] = (j == 5 || j == 20) ? (j == 5 ? -3.0f : 3.0f) : 1.0f; break;
            case 4: v[j] = (j == 7 ? 1e-30f : 0.0f); break;         /* scale underflows */
            default: v[j] = (float)r * scale * 0.37f; break;       /* off-grid */
            }
        }
    }
    assert_int_equal(mpoc_q8_0_from_f32_fast(x, N, a), MPOC_OK);
    assert_int_equal(mpoc_q8_0_from_f32_ref(x, N, b), MPOC_OK);
    assert_memory_equal(a, b, NB * 34);
    assert_int_equal(mpoc_q4_0_from_f32_fast(x, N, a), MPOC_OK);
    assert_int_equal(mpoc_q4_0_from_f32_ref(x, N, b), MPOC_OK);
    assert_memory_equal(a, b, NB * 18);
    free(x);
    free(a);
    free(b);
}

static void test_q8_0_exact_codes(void **state)
{
    (void)state;
    float x[32] = {0};
    x[0] = 127.0f; /* amax 127 → d = 1 exactly */
    x[1] = 0.5f;   /* ties round away from zero */
    x[2] = 1.5f;
    x[3] = -0.5f;
    x[4] = -2.5f;
    x[5] = 0.49999997f;
    x[6] = -126.5f;
    uint8_t b[34];
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_Q8_0, x, 32, b), MPOC_OK);
    assert_int_equal(get16(b), 0x3C00);
    const int8_t want[7] = {127, 1, 2, -1, -3, 0, -127};
    for (int j = 0; j < 7; j++)
        assert_int_equal((int8_t)b[2 + j], want[j]);
    for (int j = 7; j < 32; j++)
        assert_int_equal(b[2 + j], 0);
}

/* The codes use the float d, the block stores d rounded to f16. With
 * amax = 1: d = 1/127 (f16 0x2008 = 0.0078735...), codes x·127. */
static void test_q8_0_codes_use_float_scale(void **state)
{
    (void)state;
    float x[32];
    for (int j = 0; j < 32; j++)
        x[j] = (float)j / 31.0f; /* amax = 1 */
    uint8_t b[34];
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_Q8_0, x, 32, b), MPOC_OK);
    assert_int_equal(get16(b), 0x2008);
    const float d = 1.0f / 127.0f, id = 1.0f / d;
    for (int j = 0; j < 32; j++)
        assert_int_equal((int8_t)b[2 + j], (int)roundf(x[j] * id));
    assert_int_equal((int8_t)b[2 + 31], 127);
}

static void test_all_zero_blocks(void **state)
{
    (void)state;
    float x[32] = {0}, y[32];
    x[0] = -0.0f; /* the reference keeps mx = +0 even when x[0] is -0 */
    x[3] = -0.0f;
    uint8_t b[34], want8[34] = {0};
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_Q8_0, x, 32, b), MPOC_OK);
    assert_memory_equal(b, want8, 34); /* d = 0, codes 0 */
    to_f32_ok(MPOC_DTYPE_Q8_0, b, 32, y);
    for (int j = 0; j < 32; j++)
        assert_true(y[j] == 0.0f);
    /* Q4_0 (ggml bit for bit): mx = +0, d = 0/-8 = -0 (f16 0x8000), id = 0,
     * q = trunc(0 + 8.5) = 8, so every nibble is the zero point 8 */
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_Q4_0, x, 32, b), MPOC_OK);
    assert_int_equal(get16(b), 0x8000);
    for (int j = 0; j < 16; j++)
        assert_int_equal(b[2 + j], 0x88);
    to_f32_ok(MPOC_DTYPE_Q4_0, b, 32, y);
    for (int j = 0; j < 32; j++)
        assert_true(y[j] == 0.0f && !isnan(y[j]));
}

static void test_single_outlier(void **state)
{
    (void)state;
    float x[32] = {0}, y[32];
    x[7] = 100.0f;
    uint8_t b[34];
    /* Q8_0: code 127 at the outlier, 0 elsewhere; the value comes back
     * within the f16 rounding of d (2^-11 relative) */
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_Q8_0, x, 32, b), MPOC_OK);
    assert_int_equal((int8_t)b[2 + 7], 127);
    to_f32_ok(MPOC_DTYPE_Q8_0, b, 32, y);
    assert_true(fabsf(y[7] - 100.0f) <= 100.0f * 0x1.0p-11f);
    for (int j = 0; j < 32; j++)
        if (j != 7)
            assert_true(y[j] == 0.0f);
    /* Q4_0: d = 100/-8 = -12.5 (exact in f16), outlier code 0 → (0-8)·-12.5 */
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_Q4_0, x, 32, b), MPOC_OK);
    assert_int_equal(get16(b), 0xCA40); /* -12.5 */
    to_f32_ok(MPOC_DTYPE_Q4_0, b, 32, y);
    expect_value_at(y, 7, 100.0f);
    for (int j = 0; j < 32; j++)
        if (j != 7)
            assert_true(y[j] == 0.0f);
}

/* Q4_0's extreme (with its sign) maps to code 0 and comes back exactly;
 * the opposite side reaches only 7·|d|. On a tie of |x| the first wins. */
static void test_q4_0_extreme_sign(void **state)
{
    (void)state;
    float x[32] = {0}, y[32];
    uint8_t b[18];
    x[3] = -6.0f;
    x[10] = 6.0f;
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_Q4_0, x, 32, b), MPOC_OK);
    assert_int_equal(get16(b), 0x3A00); /* d = -6/-8 = 0.75 */
    assert_int_equal(b[2 + 3] & 0x0F, 0);
    assert_int_equal(b[2 + 10] & 0x0F, 15); /* 6/0.75 + 8.5 = 16.5 → min(15, 16) */
    to_f32_ok(MPOC_DTYPE_Q4_0, b, 32, y);
    expect_value_at(y, 3, -6.0f);
    expect_value_at(y, 10, 5.25f);
    /* the other order: the positive extreme comes first, d < 0 */
    x[3] = 6.0f;
    x[10] = -6.0f;
    x[20] = 2.0f; /* high nibble of byte 4: 2/-0.75 + 8.5 = 5.83 → 5 */
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_Q4_0, x, 32, b), MPOC_OK);
    assert_int_equal(get16(b), 0xBA00); /* -0.75 */
    assert_int_equal(b[2 + 3] & 0x0F, 0);
    assert_int_equal(b[2 + 4] >> 4, 5);
    to_f32_ok(MPOC_DTYPE_Q4_0, b, 32, y);
    expect_value_at(y, 3, 6.0f);
    expect_value_at(y, 10, -5.25f);
    expect_value_at(y, 20, 2.25f); /* (5 - 8)·-0.75 */
}

static void test_quantizers_reject_non_finite_and_huge(void **state)
{
    (void)state;
    float x[64] = {0};
    uint8_t b[2 * 34];
    static const mpoc_dtype q[2] = {MPOC_DTYPE_Q8_0, MPOC_DTYPE_Q4_0};
    for (int i = 0; i < 2; i++) {
        x[40] = NAN;
        assert_int_equal(mpoc_dtype_from_f32(q[i], x, 64, b), MPOC_E_NUMERIC);
        x[40] = -INFINITY;
        assert_int_equal(mpoc_dtype_from_f32(q[i], x, 64, b), MPOC_E_NUMERIC);
        x[40] = 0.0f;
    }
    /* scales past f16 range: Q8_0 d = amax/127, Q4_0 d = mx/8 */
    x[1] = 1e7f; /* Q8_0 d ≈ 78740 */
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_Q8_0, x, 64, b), MPOC_E_NUMERIC);
    x[1] = 8e6f; /* d ≈ 62992: fits */
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_Q8_0, x, 64, b), MPOC_OK);
    x[1] = 6e5f; /* Q4_0 d = -75000 */
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_Q4_0, x, 64, b), MPOC_E_NUMERIC);
    x[1] = 5e5f; /* d = -62500: fits */
    assert_int_equal(mpoc_dtype_from_f32(MPOC_DTYPE_Q4_0, x, 64, b), MPOC_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_dtype_has_complete_entry),
        cmocka_unit_test(test_names_ids_unique_and_round_trip),
        cmocka_unit_test(test_ggml_ids_and_block_sizes),
        cmocka_unit_test(test_from_ggml_rejects_removed_and_unknown_ids),
        cmocka_unit_test(test_st_names_exact),
        cmocka_unit_test(test_st_name_lookup_is_length_delimited_and_case_sensitive),
        cmocka_unit_test(test_from_name_case_insensitive),
        cmocka_unit_test(test_invalid_enum_values),
        cmocka_unit_test(test_nbytes_rules),
        cmocka_unit_test(test_nbytes_consistent_for_every_dtype),
        cmocka_unit_test(test_can_read_write_match_converters),
        cmocka_unit_test(test_conversion_argument_checks),
        cmocka_unit_test(test_f16_to_f32_exhaustive),
        cmocka_unit_test(test_f16_known_values),
        cmocka_unit_test(test_f32_to_f16_rounding),
        cmocka_unit_test(test_f16_round_trip_and_midpoints),
        cmocka_unit_test(test_f32_to_f16_fast_matches_reference),
        cmocka_unit_test(test_bf16_to_f32_exhaustive),
        cmocka_unit_test(test_f32_to_bf16_rounding),
        cmocka_unit_test(test_half_rows_streaming_path),
        cmocka_unit_test(test_f32_f64_conversions),
        cmocka_unit_test(test_integer_types),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_f8_e4m3),
        cmocka_unit_test(test_f8_e5m2),
        cmocka_unit_test(test_f8_fnuz_and_e8m0),
        cmocka_unit_test(test_q4_0_block),
        cmocka_unit_test(test_q4_1_block),
        cmocka_unit_test(test_q5_0_block),
        cmocka_unit_test(test_q5_1_block),
        cmocka_unit_test(test_q8_0_blocks),
        cmocka_unit_test(test_q2_k_block_by_hand),
        cmocka_unit_test(test_q3_k_block_by_hand),
        cmocka_unit_test(test_q4_k_block_by_hand),
        cmocka_unit_test(test_q5_k_block_by_hand),
        cmocka_unit_test(test_q6_k_block_by_hand),
        cmocka_unit_test(test_q2_k_full_block),
        cmocka_unit_test(test_q3_k_full_block),
        cmocka_unit_test(test_q4_k_full_block),
        cmocka_unit_test(test_q5_k_full_block),
        cmocka_unit_test(test_q6_k_full_block),
        cmocka_unit_test(test_multi_block_unaligned),
        cmocka_unit_test(test_q8_0_gaussian_round_trip),
        cmocka_unit_test(test_q4_0_gaussian_round_trip),
        cmocka_unit_test(test_quantizers_fast_equals_reference),
        cmocka_unit_test(test_q8_0_exact_codes),
        cmocka_unit_test(test_q8_0_codes_use_float_scale),
        cmocka_unit_test(test_all_zero_blocks),
        cmocka_unit_test(test_single_outlier),
        cmocka_unit_test(test_q4_0_extreme_sign),
        cmocka_unit_test(test_quantizers_reject_non_finite_and_huge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
