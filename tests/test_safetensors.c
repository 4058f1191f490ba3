/* test_safetensors.c: the safetensors reader (every rule of formats.md 1.2
 * through the generated defect catalogue, every truncation) and writer
 * (layout, round trips for every dtype, determinism, overwrite policy). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "io_safetensors.h"
#include "json.h"
#include "mpoc.h"
#include "support/modelgen.h"
#include "support/testlog.h"

static bool contains(const unsigned char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(hay + i, needle, k))
            return true;
    return false;
}

/* Every view of an opened in-memory model lies inside the buffer. */
static void assert_views_inside(const mpoc_model *m, const mg_buf *b)
{
    for (size_t i = 0; i < mpoc_model_tensor_count(m); i++) {
        const mpoc_tensor *t = mpoc_model_tensor(m, i);
        const uint8_t *p = t->data;
        if (t->nbytes == 0)
            continue;
        assert_true(p >= b->data && p + t->nbytes <= b->data + b->len);
    }
}

static void test_catalogue(void **state)
{
    (void)state;
    mg_buf b = {0};
    size_t n = mg_st_case_count(), defects = 0;
    for (size_t i = 0; i < n; i++) {
        mg_case c = mg_st_case(i, &b);
        mpoc_model *m = NULL;
        tl_reset();
        mpoc_status st = mpoc_model_open_memory(b.data, b.len, c.name, &m);
        if (st != c.expect)
            fail_msg("case %s: expected %s, got %s (%s)", c.name, mpoc_strerror(c.expect),
                     mpoc_strerror(st), tl_last());
        if (st == MPOC_OK) {
            assert_views_inside(m, &b);
            mpoc_model_close(m);
        } else {
            defects++;
            assert_null(m);
            /* one reason, naming the file */
            assert_true(tl_count() >= 1);
            assert_non_null(strstr(tl_last(), c.name));
        }
    }
    assert_true(defects >= 40);
    mg_free(&b);
}

static void test_truncations(void **state)
{
    (void)state;
    mg_buf b = {0};
    mg_st_case(0, &b);
    for (size_t len = 0; len < b.len; len++) {
        mpoc_model *m = NULL;
        mpoc_status st = mpoc_model_open_memory(b.data, len, "prefix", &m);
        if (st == MPOC_OK)
            fail_msg("prefix of %zu/%zu bytes accepted", len, b.len);
    }
    mg_free(&b);
}

static void test_valid_contents(void **state)
{
    (void)state;
    mg_buf b = {0};
    mg_st_case(0, &b);
    mpoc_model *m;
    assert_int_equal(mpoc_model_open_memory(b.data, b.len, "base", &m), MPOC_OK);
    assert_int_equal(mpoc_model_format(m), MPOC_FORMAT_SAFETENSORS);
    assert_int_equal(mpoc_model_tensor_count(m), 2);
    const mpoc_tensor *a;
    assert_int_equal(mpoc_model_find(m, "a", &a), MPOC_OK);
    assert_int_equal(a->dtype, MPOC_DTYPE_F32);
    assert_int_equal(a->n_dims, 2);
    assert_int_equal(a->shape[0], 2);
    assert_int_equal(a->shape[1], 3);
    assert_int_equal(a->nbytes, 24);
    uint64_t hlen = b.data[0] | (uint64_t)b.data[1] << 8;
    assert_int_equal(a->file_offset, 8 + hlen);
    const mpoc_meta *kv;
    assert_int_equal(mpoc_model_meta_find(m, "format", &kv), MPOC_OK);
    assert_string_equal(kv->value.str, "pt");
    assert_int_equal(mpoc_model_find(m, "nope", &a), MPOC_E_NOTFOUND);
    mpoc_model_close(m);
    mg_free(&b);
}

static void test_shard_name_safety(void **state)
{
    (void)state;
    assert_true(mpoc_st_shard_name_safe("model-00001-of-00002.safetensors"));
    const char *bad[] = {"", ".", "..", "../x.safetensors", "/etc/passwd", "a/b.safetensors",
                         "a\\b", "%2e%2e", "x..y", "a\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(mpoc_st_shard_name_safe(bad[i]));
}

/* ---- writer ---- */

static const float ramp[12] = {-1.5f, 0.0f, 0.25f, 3.0f, -7.75f, 1e-3f,
                               65504.0f, -2.0f, 0.5f, 100.0f, -0.125f, 42.0f};

static char *write_one(const char *dir, const char *name, mpoc_dtype dt, bool overwrite)
{
    char *path = tl_path(dir, name);
    mpoc_writer_options o = mpoc_writer_options_default();
    o.policy.overwrite = overwrite;
    mpoc_writer *w;
    uint64_t shape[2] = {3, 4}, one[1] = {2};
    assert_int_equal(mpoc_writer_create(path, &o, &w), MPOC_OK);
    assert_int_equal(mpoc_writer_set_meta_string(w, "note", "a \"quoted\"\nline"), MPOC_OK);
    assert_int_equal(mpoc_writer_add_f32(w, "z.weight", dt, shape, 2, ramp), MPOC_OK);
    assert_int_equal(mpoc_writer_add_f32(w, "a.bias", MPOC_DTYPE_F16, one, 1, ramp), MPOC_OK);
    assert_int_equal(mpoc_writer_add_f32(w, "b.wide", MPOC_DTYPE_F64, one, 1, ramp), MPOC_OK);
    assert_int_equal(mpoc_writer_commit(w), MPOC_OK);
    return path;
}

static void check_roundtrip(const char *path, mpoc_dtype dt)
{
    mpoc_model *m;
    assert_int_equal(mpoc_model_open(path, &m), MPOC_OK);
    assert_int_equal(mpoc_model_tensor_count(m), 3);
    /* order: F64 (8) first, then dt by alignment, names break ties */
    assert_string_equal(mpoc_model_tensor(m, 0)->name, "b.wide");
    const mpoc_tensor *t;
    assert_int_equal(mpoc_model_find(m, "z.weight", &t), MPOC_OK);
    uint8_t expect[12 * 8];
    assert_int_equal(mpoc_dtype_from_f32(dt, ramp, 12, expect), MPOC_OK);
    assert_memory_equal(t->data, expect, t->nbytes);
    mpoc_mat x = {0};
    float back[12];
    assert_int_equal(mpoc_tensor_read_f32(t, &x), MPOC_OK);
    assert_int_equal(x.rows, 3);
    assert_int_equal(x.cols, 4);
    assert_int_equal(mpoc_dtype_to_f32(dt, expect, 12, back), MPOC_OK);
    assert_memory_equal(x.data, back, sizeof back);
    mpoc_mat_free(&x);
    const mpoc_meta *kv;
    assert_int_equal(mpoc_model_meta_find(m, "format", &kv), MPOC_OK);
    assert_string_equal(kv->value.str, "pt");
    assert_int_equal(mpoc_model_meta_find(m, "note", &kv), MPOC_OK);
    assert_string_equal(kv->value.str, "a \"quoted\"\nline");
    mpoc_model_close(m);
}

static void test_roundtrip_float_dtypes(void **state)
{
    (void)state;
    char *dir = tl_tempdir();
    const mpoc_dtype dts[] = {MPOC_DTYPE_F32, MPOC_DTYPE_F16, MPOC_DTYPE_BF16, MPOC_DTYPE_F64};
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        char *p1 = write_one(dir, "one.safetensors", dts[i], true);
        char *p2 = write_one(dir, "two.safetensors", dts[i], true);
        check_roundtrip(p1, dts[i]);
        size_t n1, n2;
        unsigned char *b1 = tl_read_file(p1, &n1), *b2 = tl_read_file(p2, &n2);
        assert_non_null(b1);
        assert_int_equal(n1, n2);
        assert_memory_equal(b1, b2, n1); /* deterministic */
        uint64_t hlen = 0;
        for (int k = 7; k >= 0; k--)
            hlen = hlen << 8 | b1[k];
        assert_int_equal(hlen % 8, 0);
        assert_true(hlen < 25000000);
        assert_true(contains(b1 + 8, hlen, "\"__metadata__\":{\"format\":\"pt\""));
        free(b1);
        free(b2);
        free(p1);
        free(p2);
    }
    tl_rmdir(dir);
}

/* Raw bytes of every safetensors dtype survive a write/read unchanged. */
static void test_roundtrip_raw_all_dtypes(void **state)
{
    (void)state;
    char *dir = tl_tempdir(), *path = tl_path(dir, "raw.safetensors");
    mpoc_writer *w;
    assert_int_equal(mpoc_writer_create(path, NULL, &w), MPOC_OK);
    uint8_t bytes[256];
    for (int i = 0; i < 256; i++)
        bytes[i] = (uint8_t)(i * 7 + 1);
    size_t added = 0;
    for (int d = 0; d < MPOC_DTYPE_COUNT_; d++) {
        const mpoc_dtype_traits *tr = mpoc_dtype_info((mpoc_dtype)d);
        if (!tr->st_name)
            continue;
        uint64_t shape[2] = {2, 8}, nb;
        assert_int_equal(mpoc_dtype_nbytes((mpoc_dtype)d, 16, &nb), MPOC_OK);
        assert_int_equal(mpoc_writer_add_raw(w, tr->st_name, (mpoc_dtype)d, shape, 2, bytes, nb),
                         MPOC_OK);
        added++;
    }
    assert_int_equal(mpoc_writer_commit(w), MPOC_OK);
    mpoc_model *m;
    assert_int_equal(mpoc_model_open(path, &m), MPOC_OK);
    assert_int_equal(mpoc_model_tensor_count(m), added);
    for (size_t i = 0; i < added; i++) {
        const mpoc_tensor *t = mpoc_model_tensor(m, i);
        assert_memory_equal(t->data, bytes, t->nbytes);
        assert_int_equal(t->file_offset % mpoc_st_dtype_align(t->dtype), 0);
        if (i > 0) /* descending alignment */
            assert_true(mpoc_st_dtype_align(t->dtype) <=
                        mpoc_st_dtype_align(mpoc_model_tensor(m, i - 1)->dtype));
    }
    mpoc_model_close(m);
    free(path);
    tl_rmdir(dir);
}

static void test_overwrite_policy(void **state)
{
    (void)state;
    char *dir = tl_tempdir();
    char *p = write_one(dir, "x.safetensors", MPOC_DTYPE_F32, false);
    mpoc_writer *w;
    mpoc_writer_options o = mpoc_writer_options_default();
    uint64_t shape[1] = {1};
    assert_int_equal(mpoc_writer_create(p, &o, &w), MPOC_OK);
    assert_int_equal(mpoc_writer_add_f32(w, "t", MPOC_DTYPE_F32, shape, 1, ramp), MPOC_OK);
    assert_int_equal(mpoc_writer_commit(w), MPOC_E_EXISTS);
    const char *inputs[1] = {p};
    o.policy = (mpoc_write_policy){true, inputs, 1};
    assert_int_equal(mpoc_writer_create(p, &o, &w), MPOC_OK);
    assert_int_equal(mpoc_writer_commit(w), MPOC_E_EXISTS); /* never over an input */
    o.policy.n_inputs = 0;
    assert_int_equal(mpoc_writer_create(p, &o, &w), MPOC_OK);
    assert_int_equal(mpoc_writer_add_f32(w, "t", MPOC_DTYPE_F32, shape, 1, ramp), MPOC_OK);
    assert_int_equal(mpoc_writer_commit(w), MPOC_OK);
    mpoc_model *m;
    assert_int_equal(mpoc_model_open(p, &m), MPOC_OK);
    assert_int_equal(mpoc_model_tensor_count(m), 1);
    mpoc_model_close(m);
    free(p);
    tl_rmdir(dir); /* also proves no temp or spool file was left behind */
}

/* The input reached through a hard link or a symlink (even with --force)
 * is still the input: st_dev/st_ino after resolving, not the spelling. */
static void test_same_file_links(void **state)
{
    (void)state;
    char *dir = tl_tempdir();
    char *p = write_one(dir, "in.safetensors", MPOC_DTYPE_F32, false);
    char *hard = tl_path(dir, "hard.safetensors"), *soft = tl_path(dir, "soft.safetensors");
    char *rel = tl_path(dir, "./in.safetensors");
    size_t len;
    unsigned char *before = tl_read_file(p, &len), *after;
    assert_int_equal(link(p, hard), 0);
    assert_int_equal(symlink("in.safetensors", soft), 0);
    const char *targets[3] = {hard, soft, rel};
    const char *inputs[1] = {p};
    uint64_t shape[1] = {1};
    for (size_t i = 0; i < 3; i++) {
        mpoc_writer_options o = mpoc_writer_options_default();
        o.policy = (mpoc_write_policy){true, inputs, 1};
        mpoc_writer *w;
        assert_int_equal(mpoc_writer_create(targets[i], &o, &w), MPOC_OK);
        assert_int_equal(mpoc_writer_add_f32(w, "t", MPOC_DTYPE_F32, shape, 1, ramp), MPOC_OK);
        tl_reset();
        assert_int_equal(mpoc_writer_commit(w), MPOC_E_EXISTS);
        assert_true(tl_contains("is the input"));
    }
    after = tl_read_file(p, &len);
    assert_memory_equal(before, after, len);
    free(before);
    free(after);
    free(p);
    free(hard);
    free(soft);
    free(rel);
    tl_rmdir(dir);
}

/* Outputs get 0666 & ~umask like any created file: a fixed 0644 made
 * weights world-readable for a user whose umask is 077. */
static void test_output_mode_follows_umask(void **state)
{
    (void)state;
    char *dir = tl_tempdir();
    mode_t old = umask(077);
    char *p = write_one(dir, "private.safetensors", MPOC_DTYPE_F32, false);
    umask(022);
    char *q = write_one(dir, "shared.safetensors", MPOC_DTYPE_F32, false);
    umask(old);
    struct stat sp, sq;
    assert_int_equal(stat(p, &sp), 0);
    assert_int_equal(stat(q, &sq), 0);
    assert_int_equal(sp.st_mode & 0777, 0600);
    assert_int_equal(sq.st_mode & 0777, 0644);
    free(p);
    free(q);
    tl_rmdir(dir);
}

static void test_writer_rejects(void **state)
{
    (void)state;
    char *dir = tl_tempdir(), *p = tl_path(dir, "r.safetensors");
    mpoc_writer *w;
    uint64_t shape[2] = {1, 32};
    float zeros[32] = {0};
    assert_int_equal(mpoc_writer_create(p, NULL, &w), MPOC_OK);
    assert_int_equal(mpoc_writer_add_f32(w, "q", MPOC_DTYPE_Q8_0, shape, 2, zeros),
                     MPOC_E_UNSUPPORTED);
    assert_int_equal(mpoc_writer_add_f32(w, "", MPOC_DTYPE_F32, shape, 2, zeros), MPOC_E_INVAL);
    assert_int_equal(mpoc_writer_add_f32(w, "x", MPOC_DTYPE_F32, shape, 2, zeros), MPOC_OK);
    assert_int_equal(mpoc_writer_add_f32(w, "x", MPOC_DTYPE_F32, shape, 2, zeros), MPOC_E_INVAL);
    assert_int_equal(mpoc_writer_add_raw(w, "y", MPOC_DTYPE_F32, shape, 2, zeros, 12),
                     MPOC_E_SHAPE);
    mpoc_meta kv = {.key = "n", .type = MPOC_META_U32};
    uint8_t raw[4] = {1, 0, 0, 0};
    kv.raw = raw;
    kv.raw_len = 4;
    assert_int_equal(mpoc_writer_set_meta(w, &kv), MPOC_E_UNSUPPORTED);
    mpoc_writer_abort(w);
    free(p);
    tl_rmdir(dir);
}

/* A 10 MB header of "shape":[0,0,0,...] used to cost jansson ~20 bytes of
 * memory per header byte (2 GB for a 100 MB header) before the shape was
 * found too long. The pre-scan now refuses more than MPOC_JSON_MAX_TOKENS
 * values before anything is allocated. */
static void test_json_value_cap(void **state)
{
    (void)state;
    const char *head = "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,0],\"shape\":[";
    size_t head_tokens = 0; /* counted the way the pre-scan does */
    for (const char *c = head; *c; c++)
        head_tokens += (*c == '{' || *c == '[' || *c == ',' || *c == ':');
    size_t commas = MPOC_JSON_MAX_TOKENS - head_tokens + 1; /* one over the cap */
    size_t len = strlen(head) + 2 * commas + 1 + 3 + 1;
    char *h = malloc(len);
    assert_non_null(h);
    strcpy(h, head);
    char *p = h + strlen(head);
    for (size_t i = 0; i < commas; i++, p += 2)
        memcpy(p, "0,", 2);
    strcpy(p, "0]}}");
    mg_buf b = {0};
    mg_st_from_header(&b, h, 0);
    mpoc_model *m;
    tl_reset();
    assert_int_equal(mpoc_model_open_memory(b.data, b.len, "cap", &m), MPOC_E_UNSUPPORTED);
    assert_true(tl_contains("policy cap"));
    /* (exactly at the cap jansson parses it, 5 M values: seconds under the
     * sanitizers, so that twin is left to the catalogue's small files) */
    mg_free(&b);
    free(h);
}

int main(void)
{
    tl_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_valid_contents),
        cmocka_unit_test(test_shard_name_safety),
        cmocka_unit_test(test_roundtrip_float_dtypes),
        cmocka_unit_test(test_roundtrip_raw_all_dtypes),
        cmocka_unit_test(test_overwrite_policy),
        cmocka_unit_test(test_same_file_links),
        cmocka_unit_test(test_output_mode_follows_umask),
        cmocka_unit_test(test_writer_rejects),
        cmocka_unit_test(test_json_value_cap),
    };
    return cmocka_run_group_tests_name("safetensors", tests, NULL, NULL);
}
