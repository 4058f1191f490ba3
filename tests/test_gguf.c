/* test_gguf.c: the GGUF reader (formats.md 3.1–3.5 through the generated
 * defect catalogue and every truncation) and writer (round trips for every
 * writable type, typed metadata of every kind, determinism, layout rules). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mpoc.h"
#include "support/modelgen.h"
#include "support/testlog.h"

static void test_catalogue(void **state)
{
    (void)state;
    mg_buf b = {0};
    size_t defects = 0;
    for (size_t i = 0; i < mg_gguf_case_count(); i++) {
        mg_case c = mg_gguf_case(i, &b);
        mpoc_model *m = NULL;
        tl_reset();
        mpoc_status st = mpoc_model_open_memory(b.data, b.len, c.name, &m);
        if (st != c.expect)
            fail_msg("case %s: expected %s, got %s (%s)", c.name, mpoc_strerror(c.expect),
                     mpoc_strerror(st), tl_last());
        if (st != MPOC_OK) {
            defects++;
            assert_null(m);
            assert_true(tl_count() >= 1);
            assert_non_null(strstr(tl_last(), c.name));
            continue;
        }
        assert_int_equal(mpoc_model_format(m), MPOC_FORMAT_GGUF);
        for (size_t k = 0; k < mpoc_model_tensor_count(m); k++) {
            const mpoc_tensor *t = mpoc_model_tensor(m, k);
            const uint8_t *p = t->data;
            assert_true(t->nbytes == 0 || (p >= b.data && p + t->nbytes <= b.data + b.len));
            assert_int_equal(t->file_offset % mpoc_model_alignment(m), 0);
        }
        mpoc_model_close(m);
    }
    assert_true(defects >= 40);
    mg_free(&b);
}

static void test_truncations(void **state)
{
    (void)state;
    mg_buf b = {0};
    mg_gguf_case(0, &b);
    for (size_t len = 0; len < b.len; len++) {
        mpoc_model *m = NULL;
        if (mpoc_model_open_memory(b.data, len, "prefix", &m) == MPOC_OK)
            fail_msg("prefix of %zu/%zu bytes accepted", len, b.len);
    }
    mg_free(&b);
}

/* The valid file's contents: shapes reversed from ne, Q8_0 dequantized by
 * the format definition (x = d·q with d = 1). */
static void test_valid_contents(void **state)
{
    (void)state;
    mg_buf b = {0};
    mg_gguf_case(0, &b);
    mpoc_model *m;
    assert_int_equal(mpoc_model_open_memory(b.data, b.len, "base", &m), MPOC_OK);
    assert_int_equal(mpoc_model_gguf_version(m), 3);
    assert_int_equal(mpoc_model_alignment(m), 32);
    const mpoc_tensor *q, *w;
    assert_int_equal(mpoc_model_find(m, "q", &q), MPOC_OK);
    assert_int_equal(mpoc_model_find(m, "w", &w), MPOC_OK);
    assert_int_equal(q->dtype, MPOC_DTYPE_Q8_0);
    assert_int_equal(q->shape[0], 1);
    assert_int_equal(q->shape[1], 32);
    assert_int_equal(w->shape[0], 2);
    assert_int_equal(w->shape[1], 8);
    mpoc_mat x = {0};
    assert_int_equal(mpoc_tensor_read_f32(q, &x), MPOC_OK);
    for (int j = 0; j < 32; j++)
        assert_true(x.data[j] == (float)(j - 16));
    mpoc_mat_free(&x);
    assert_int_equal(mpoc_tensor_read_f32(w, &x), MPOC_OK);
    assert_int_equal(x.rows, 2);
    assert_true(x.data[9] == 9.0f);
    mpoc_mat_free(&x);
    const mpoc_meta *kv;
    assert_int_equal(mpoc_model_meta_find(m, "test.names", &kv), MPOC_OK);
    assert_int_equal(kv->type, MPOC_META_ARRAY);
    assert_int_equal(kv->elem_type, MPOC_META_STRING);
    mpoc_meta_value v;
    assert_int_equal(mpoc_meta_array_get(kv, 1, &v), MPOC_OK);
    assert_int_equal(v.str_len, 2);
    assert_memory_equal(v.str, "yz", 2);
    assert_int_equal(mpoc_meta_array_get(kv, 2, &v), MPOC_E_INVAL);
    /* a caller-built record whose count exceeds its bytes: refused, where
     * the old code computed raw_len - pos with pos > raw_len (a huge
     * bound) and read past the buffer */
    uint8_t two[8] = {1, 0, 0, 0, 2, 0, 0, 0};
    mpoc_meta forged = {.key = "f", .type = MPOC_META_ARRAY, .elem_type = MPOC_META_U32,
                        .count = 1000, .raw = two, .raw_len = sizeof two};
    assert_int_equal(mpoc_meta_array_get(&forged, 1, &v), MPOC_OK);
    assert_int_equal(v.u, 2);
    assert_int_equal(mpoc_meta_array_get(&forged, 3, &v), MPOC_E_INVAL);
    forged.count = UINT64_MAX;
    assert_int_equal(mpoc_meta_array_get(&forged, UINT64_MAX / 2, &v), MPOC_E_INVAL);
    assert_int_equal(mpoc_model_meta_find(m, "test.flag", &kv), MPOC_OK);
    assert_int_equal(kv->value.u, 1);
    mpoc_model_close(m);
    mg_free(&b);
}

/* ---- writer ---- */

static float values[4 * 64];

static void fill_values(void)
{
    for (int i = 0; i < 4 * 64; i++)
        values[i] = (float)((i * 37) % 101 - 50) / 7.0f;
    values[5] = 0.0f;
}

/* One KV of every type, arrays included. */
static void add_all_kv_types(mpoc_writer *w)
{
    uint8_t raw[64];
    for (int t = 0; t <= 12; t++) {
        char key[32];
        mpoc_meta kv = {.key = key, .type = (mpoc_meta_type)t, .raw = raw, .count = 1};
        snprintf(key, sizeof key, "test.type_%d", t);
        memset(raw, 0, sizeof raw);
        if (t == MPOC_META_STRING) {
            raw[0] = 3;
            memcpy(raw + 8, "abc", 3);
            kv.raw_len = 11;
        } else if (t == MPOC_META_ARRAY) {
            kv.elem_type = MPOC_META_STRING;
            kv.count = 2;
            raw[0] = 1;
            raw[8] = 'x';
            raw[9] = 2;
            raw[17] = 'y';
            raw[18] = 'z';
            kv.raw_len = 19;
        } else {
            kv.raw_len = t == 0 || t == 1 || t == 7 ? 1 : t == 2 || t == 3 ? 2
                       : t <= 6 ? 4 : 8;
            raw[0] = t == 7 ? 1 : (uint8_t)(0x80 + t);
        }
        assert_int_equal(mpoc_writer_set_meta(w, &kv), MPOC_OK);
    }
    mpoc_meta nested = {.key = "test.nested", .type = MPOC_META_ARRAY,
                        .elem_type = MPOC_META_ARRAY, .count = 0, .raw = raw, .raw_len = 0};
    assert_int_equal(mpoc_writer_set_meta(w, &nested), MPOC_E_INVAL);
}

static char *write_gguf(const char *dir, const char *name, mpoc_dtype dt)
{
    char *path = tl_path(dir, name);
    mpoc_writer_options o = mpoc_writer_options_default();
    o.format = MPOC_FORMAT_GGUF;
    o.policy.overwrite = true;
    mpoc_writer *w;
    uint64_t shape[2] = {4, 64}, vec[1] = {64};
    assert_int_equal(mpoc_writer_create(path, &o, &w), MPOC_OK);
    assert_int_equal(mpoc_writer_set_meta_string(w, "general.architecture", "llama"), MPOC_OK);
    add_all_kv_types(w);
    assert_int_equal(mpoc_writer_add_f32(w, "blk.0.ffn_up.weight", dt, shape, 2, values), MPOC_OK);
    assert_int_equal(mpoc_writer_add_f32(w, "blk.0.ffn_norm.weight", MPOC_DTYPE_F32, vec, 1, values),
                     MPOC_OK);
    assert_int_equal(mpoc_writer_commit(w), MPOC_OK);
    return path;
}

static void check_gguf(const char *path, mpoc_dtype dt)
{
    mpoc_model *m;
    assert_int_equal(mpoc_model_open(path, &m), MPOC_OK);
    assert_int_equal(mpoc_model_tensor_count(m), 2);
    const mpoc_tensor *t = mpoc_model_tensor(m, 0); /* tensor-info order = add order */
    assert_string_equal(t->name, "blk.0.ffn_up.weight");
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->shape[0], 4);
    assert_int_equal(t->shape[1], 64);
    uint8_t expect[4 * 64 * 8];
    float back[4 * 64];
    assert_int_equal(mpoc_dtype_from_f32(dt, values, 256, expect), MPOC_OK);
    assert_memory_equal(t->data, expect, t->nbytes);
    mpoc_mat x = {0};
    assert_int_equal(mpoc_tensor_read_f32(t, &x), MPOC_OK);
    assert_int_equal(mpoc_dtype_to_f32(dt, expect, 256, back), MPOC_OK);
    assert_memory_equal(x.data, back, sizeof back);
    mpoc_mat_free(&x);
    const mpoc_meta *kv;
    assert_int_equal(mpoc_model_meta_find(m, "general.alignment", &kv), MPOC_OK);
    assert_int_equal(kv->type, MPOC_META_U32);
    assert_int_equal(mpoc_model_meta_find(m, "test.type_9", &kv), MPOC_OK);
    assert_int_equal(kv->count, 2);
    assert_int_equal(mpoc_model_meta_find(m, "test.type_11", &kv), MPOC_OK);
    assert_int_equal(kv->value.i, 0x8b);
    bool quant = mpoc_dtype_info(dt)->block_elems > 1;
    assert_int_equal(mpoc_model_meta_find(m, "general.quantization_version", &kv),
                     quant ? MPOC_OK : MPOC_E_NOTFOUND);
    mpoc_model_close(m);
}

static void test_roundtrip_types(void **state)
{
    (void)state;
    fill_values();
    char *dir = tl_tempdir();
    const mpoc_dtype dts[] = {MPOC_DTYPE_F32, MPOC_DTYPE_F16, MPOC_DTYPE_BF16, MPOC_DTYPE_Q8_0,
                              MPOC_DTYPE_Q4_0, MPOC_DTYPE_F64};
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        char *p1 = write_gguf(dir, "a.gguf", dts[i]), *p2 = write_gguf(dir, "b.gguf", dts[i]);
        check_gguf(p1, dts[i]);
        size_t n1, n2;
        unsigned char *b1 = tl_read_file(p1, &n1), *b2 = tl_read_file(p2, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(b1, b2, n1);
        assert_int_equal(n1 % 32, 0); /* padded after the last tensor too */
        free(b1);
        free(b2);
        free(p1);
        free(p2);
    }
    tl_rmdir(dir);
}

/* GGUF → GGUF copy of all metadata and tensors gives the same bytes. */
static void test_copy_identical(void **state)
{
    (void)state;
    fill_values();
    char *dir = tl_tempdir();
    char *p1 = write_gguf(dir, "a.gguf", MPOC_DTYPE_Q8_0), *p2 = tl_path(dir, "copy.gguf");
    mpoc_model *m;
    assert_int_equal(mpoc_model_open(p1, &m), MPOC_OK);
    mpoc_writer_options o = mpoc_writer_options_default();
    o.format = MPOC_FORMAT_GGUF;
    mpoc_writer *w;
    assert_int_equal(mpoc_writer_create(p2, &o, &w), MPOC_OK);
    size_t skipped = 9;
    assert_int_equal(mpoc_writer_copy_meta(w, m, &skipped), MPOC_OK);
    assert_int_equal(skipped, 0);
    for (size_t i = 0; i < mpoc_model_tensor_count(m); i++)
        assert_int_equal(mpoc_writer_add_tensor(w, mpoc_model_tensor(m, i), NULL), MPOC_OK);
    assert_int_equal(mpoc_writer_commit(w), MPOC_OK);
    mpoc_model_close(m);
    size_t n1, n2;
    unsigned char *b1 = tl_read_file(p1, &n1), *b2 = tl_read_file(p2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(b1);
    free(b2);
    free(p1);
    free(p2);
    tl_rmdir(dir);
}

static void test_writer_rejects(void **state)
{
    (void)state;
    char *dir = tl_tempdir(), *p = tl_path(dir, "r.gguf");
    mpoc_writer_options o = mpoc_writer_options_default();
    o.format = MPOC_FORMAT_GGUF;
    mpoc_writer *w;
    float z[64] = {0};
    uint64_t row33[2] = {1, 33}, five[5] = {1, 1, 1, 1, 1}, s[1] = {1};
    char longname[80];
    memset(longname, 'n', 64);
    longname[64] = '\0';
    assert_int_equal(mpoc_writer_create(p, &o, &w), MPOC_OK);
    assert_int_equal(mpoc_writer_add_f32(w, "q", MPOC_DTYPE_Q8_0, row33, 2, z), MPOC_E_SHAPE);
    assert_int_equal(mpoc_writer_add_f32(w, "q", MPOC_DTYPE_F32, five, 5, z), MPOC_E_UNSUPPORTED);
    assert_int_equal(mpoc_writer_add_f32(w, longname, MPOC_DTYPE_F32, s, 1, z), MPOC_E_INVAL);
    longname[63] = '\0';
    assert_int_equal(mpoc_writer_add_f32(w, longname, MPOC_DTYPE_F32, s, 1, z), MPOC_OK);
    assert_int_equal(mpoc_writer_add_raw(w, "u", MPOC_DTYPE_U8, s, 1, z, 1), MPOC_E_UNSUPPORTED);
    assert_int_equal(mpoc_writer_commit(w), MPOC_OK);
    mpoc_model *m;
    assert_int_equal(mpoc_model_open(p, &m), MPOC_OK);
    assert_int_equal(strlen(mpoc_model_tensor(m, 0)->name), 63);
    mpoc_model_close(m);
    free(p);
    tl_rmdir(dir);
}

/* Unconvertible known types are listed and refused when read. */
static void test_known_unreadable_type(void **state)
{
    (void)state;
    mg_buf b = {0};
    mg_u32(&b, 0); /* placeholder, rebuilt below */
    b.len = 0;
    mg_put(&b, "GGUF", 4);
    mg_u32(&b, 3);
    mg_u64(&b, 1);
    mg_u64(&b, 0);
    mg_gstr(&b, "iq");
    mg_u32(&b, 1);
    mg_u64(&b, 256);
    mg_u32(&b, 16); /* IQ2_XXS: 66 bytes per 256 */
    mg_u64(&b, 0);
    while (b.len % 32)
        mg_u8(&b, 0);
    for (int i = 0; i < 96; i++)
        mg_u8(&b, 0);
    mpoc_model *m;
    assert_int_equal(mpoc_model_open_memory(b.data, b.len, "iq", &m), MPOC_OK);
    const mpoc_tensor *t = mpoc_model_tensor(m, 0);
    assert_string_equal(mpoc_dtype_name(t->dtype), "IQ2_XXS");
    assert_false(mpoc_tensor_can_read(t));
    mpoc_mat x = {0};
    tl_reset();
    assert_int_equal(mpoc_tensor_read_f32(t, &x), MPOC_E_UNSUPPORTED);
    assert_true(tl_contains("IQ2_XXS"));
    mpoc_model_close(m);
    mg_free(&b);
}

int main(void)
{
    tl_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_valid_contents),
        cmocka_unit_test(test_roundtrip_types),
        cmocka_unit_test(test_copy_identical),
        cmocka_unit_test(test_writer_rejects),
        cmocka_unit_test(test_known_unreadable_type),
    };
    return cmocka_run_group_tests_name("gguf", tests, NULL, NULL);
}
