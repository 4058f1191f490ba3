/* test_container.c: encode quantized MPOs into safetensors and GGUF
 * containers, decode them back bit for bit, and refuse malformed containers
 * (missing, mistyped, misshapen or orphaned cores, bad descriptions, another
 * format version) with a reason naming the tensor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "numtest.h"
#include "testlog.h"

typedef enum defect {
    D_NONE, D_MISSING_CORE, D_WRONG_SHAPE, D_WRONG_DTYPE, D_ORPHAN, D_BAD_JSON, D_RANK_TOO_BIG,
    D_SITES_MISMATCH, D_VERSION, D_DIMS_SHORT, D_MISSING_SCALE, D_COUNT
} defect;

static const struct { mpoc_status st; const char *reason; } expect[D_COUNT] = {
    [D_NONE] = {MPOC_OK, ""},
    [D_MISSING_CORE] = {MPOC_E_FORMAT, "is missing"},
    [D_WRONG_SHAPE] = {MPOC_E_FORMAT, "wrong shape"},
    [D_WRONG_DTYPE] = {MPOC_E_FORMAT, "expected"},
    [D_ORPHAN] = {MPOC_E_FORMAT, "no mpo.* entry lists it"},
    [D_BAD_JSON] = {MPOC_E_FORMAT, "JSON"},
    [D_RANK_TOO_BIG] = {MPOC_E_FORMAT, "largest useful rank"},
    [D_SITES_MISMATCH] = {MPOC_E_FORMAT, "does not match sites"},
    [D_VERSION] = {MPOC_E_UNSUPPORTED, "format_version"},
    [D_DIMS_SHORT] = {MPOC_E_FORMAT, "do not cover the shape"},
    [D_MISSING_SCALE] = {MPOC_E_FORMAT, "is missing"},
};

static const char *NAME = "model.layers.0.mlp.up_proj.weight";

/* A quantized 3-site MPO of a 48 × 40 matrix (padding-free). */
static void make_qmpo(mpoc_quant_type core, mpoc_mat *w, mpoc_qmpo *q)
{
    *w = nt_power(48, 40, 1.0, 3);
    mpoc_mpo_options o = mpoc_mpo_options_default();
    size_t m[3] = {4, 4, 3}, n[3] = {4, 5, 2};
    mpoc_shape s;
    NT_ASSERT_OK(mpoc_shape_explicit(48, 40, 3, m, n, &s));
    o.shape = &s;
    o.svd.trunc.max_rank = 12;
    mpoc_mpo mpo;
    NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(w), &o, &mpo, NULL));
    mpoc_quant_options qo = mpoc_quant_options_default();
    qo.core = core;
    NT_ASSERT_OK(mpoc_quant_mpo(&mpo, mpoc_mat_view_of(w), &qo, NULL, q, NULL));
    mpoc_mpo_free(&mpo);
}

static char *replace(const char *s, const char *from, const char *to)
{
    const char *p = strstr(s, from);
    assert_non_null(p);
    char *r = malloc(strlen(s) + strlen(to) + 1);
    size_t a = (size_t)(p - s);
    memcpy(r, s, a);
    strcpy(r + a, to);
    strcat(r, p + strlen(from));
    return r;
}

/* Write a container with one compressed tensor, one passthrough, and the defect. */
static void write_container(const char *path, mpoc_format f, const mpoc_encoded *e, defect d)
{
    mpoc_writer_options wo = mpoc_writer_options_default();
    wo.format = f;
    mpoc_writer *w;
    NT_ASSERT_OK(mpoc_writer_create(path, &wo, &w));
    NT_ASSERT_OK(mpoc_writer_set_meta_string(w, "mpoc.format_version", d == D_VERSION ? "2" : "1"));
    float norm[4] = {1, 2, 3, 4};
    uint64_t ns = 4;
    NT_ASSERT_OK(mpoc_writer_add_f32(w, "model.norm.weight", MPOC_DTYPE_F32, &ns, 1, norm));
    for (size_t i = 0; i < e->n; i++) {
        mpoc_enc_tensor t = e->t[i];
        if ((d == D_MISSING_CORE && i == 1) ||
            (d == D_MISSING_SCALE && strstr(t.name, ".scale")))
            continue;
        uint64_t shape[4];
        memcpy(shape, t.shape, sizeof shape);
        if (d == D_WRONG_SHAPE && i == 0 && t.n_dims == 4) { /* same bytes, other shape */
            shape[0] = t.shape[3];
            shape[3] = t.shape[0];
        }
        mpoc_dtype dt = t.dtype;
        if (d == D_WRONG_DTYPE && i == 0)
            dt = t.dtype == MPOC_DTYPE_I8    ? MPOC_DTYPE_U8
                 : t.dtype == MPOC_DTYPE_F16 ? MPOC_DTYPE_BF16
                                             : MPOC_DTYPE_I8; /* U8 (packed Q4_0) */
        uint64_t nb = t.nbytes;
        NT_ASSERT_OK(mpoc_writer_add_raw(w, t.name, dt, shape, t.n_dims, t.data, nb));
    }
    if (d == D_ORPHAN) {
        uint64_t s1 = 4;
        NT_ASSERT_OK(mpoc_writer_add_f32(w, "model.layers.1.mlp.up_proj.weight.mpo.0",
                                         MPOC_DTYPE_F32, &s1, 1, norm));
    }
    char *meta = NULL;
    switch (d) {
    case D_BAD_JSON: meta = replace(e->meta_value, "}", ""); break;
    case D_RANK_TOO_BIG: meta = replace(e->meta_value, "\"ranks\":[1,", "\"ranks\":[1,99999,"); break;
    case D_SITES_MISMATCH: meta = replace(e->meta_value, "\"sites\":3", "\"sites\":2"); break;
    case D_DIMS_SHORT: meta = replace(e->meta_value, "\"out_dims\":[4,4,3]", "\"out_dims\":[4,4,2]"); break;
    default: meta = strdup(e->meta_value);
    }
    if (d == D_RANK_TOO_BIG) { /* keep the ranks list the right length */
        char *m2 = replace(meta, ",99999,", ",");
        free(meta);
        meta = replace(m2, "\"ranks\":[1,", "\"ranks\":[1,99999,");
        free(m2);
        char *p = strstr(meta, "\"ranks\":[1,99999,");
        char *q = strchr(p + 17, ',');
        memmove(p + 17, q + 1, strlen(q + 1) + 1); /* drop the old first rank */
    }
    NT_ASSERT_OK(mpoc_writer_set_meta_string(w, e->meta_key, meta));
    free(meta);
    NT_ASSERT_OK(mpoc_writer_commit(w));
}

static void check_roundtrip(const mpoc_model *m, mpoc_container *c, const mpoc_qmpo *q)
{
    assert_int_equal(mpoc_container_count(c), 1);
    const mpoc_container_entry *e = mpoc_container_entry_at(c, 0);
    assert_string_equal(e->name, NAME);
    assert_int_equal(e->orig_n_dims, 2);
    assert_int_equal(e->orig_shape[0], 48);
    const mpoc_tensor *norm;
    NT_ASSERT_OK(mpoc_model_find(m, "model.norm.weight", &norm));
    assert_int_equal(mpoc_container_owner(c, (size_t)(norm - mpoc_model_tensor(m, 0))), -1);
    mpoc_qmpo back;
    NT_ASSERT_OK(mpoc_container_load(c, 0, &back));
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(back.types[k], q->types[k]);
        assert_int_equal(back.nbytes[k], q->nbytes[k]);
        assert_memory_equal(back.data[k], q->data[k], q->nbytes[k]);
        assert_memory_equal(back.mpo.cores[k], q->mpo.cores[k],
                            mpoc_mpo_core_size(&q->mpo, k) * sizeof(float));
    }
    mpoc_qmpo_free(&back);
}

static void run_case(const char *dir, mpoc_format f, mpoc_quant_type qt, defect d)
{
    mpoc_mat w;
    mpoc_qmpo q;
    make_qmpo(qt, &w, &q);
    uint64_t shape[2] = {48, 40};
    mpoc_encode_info info = {NAME, MPOC_DTYPE_F32, 2, shape, 0.1, 0.11, NAN,
                             mpoc_quant_options_default()};
    mpoc_encoded e;
    NT_ASSERT_OK(mpoc_container_encode(f, &info, &q, &e));
    char *path = tl_path(dir, f == MPOC_FORMAT_GGUF ? "c.gguf" : "c.safetensors");
    write_container(path, f, &e, d);
    mpoc_model *m;
    NT_ASSERT_OK(mpoc_model_open(path, &m));
    assert_true(mpoc_container_detect(m));
    mpoc_container *c = NULL;
    tl_reset();
    mpoc_status st = mpoc_container_open(m, &c);
    if (st != expect[d].st || (d != D_NONE && !tl_contains(expect[d].reason)))
        fail_msg("defect %d (%s, %s): status %d, log '%s'", (int)d, mpoc_format_name(f),
                 mpoc_quant_name(qt), (int)st, tl_last());
    if (d != D_NONE && d != D_VERSION && d != D_ORPHAN && !tl_contains(NAME))
        fail_msg("defect %d: the reason does not name the tensor: %s", (int)d, tl_last());
    if (st == MPOC_OK) {
        check_roundtrip(m, c, &q);
        assert_int_equal(mpoc_container_entry_at(c, 0)->bytes, e.bytes);
    }
    mpoc_container_close(c);
    mpoc_model_close(m);
    unlink(path);
    free(path);
    mpoc_encoded_free(&e);
    mpoc_qmpo_free(&q);
    mpoc_mat_free(&w);
}

static void test_roundtrip_every_type(void **state)
{
    (void)state;
    char *dir = tl_tempdir();
    for (int t = 0; t < MPOC_QUANT_COUNT_; t++) {
        run_case(dir, MPOC_FORMAT_SAFETENSORS, (mpoc_quant_type)t, D_NONE);
        run_case(dir, MPOC_FORMAT_GGUF, (mpoc_quant_type)t, D_NONE);
    }
    tl_rmdir(dir);
}

static void test_defects_rejected(void **state)
{
    (void)state;
    char *dir = tl_tempdir();
    for (int d = 1; d < D_COUNT; d++) {
        run_case(dir, MPOC_FORMAT_SAFETENSORS, MPOC_QUANT_Q8_0, (defect)d);
        if (d != D_MISSING_SCALE && d != D_WRONG_SHAPE && d != D_WRONG_DTYPE)
            run_case(dir, MPOC_FORMAT_GGUF, MPOC_QUANT_Q8_0, (defect)d); /* no scales in GGUF */
    }
    run_case(dir, MPOC_FORMAT_GGUF, MPOC_QUANT_F16, D_WRONG_SHAPE);
    run_case(dir, MPOC_FORMAT_GGUF, MPOC_QUANT_F16, D_WRONG_DTYPE);
    run_case(dir, MPOC_FORMAT_SAFETENSORS, MPOC_QUANT_Q4_0, D_WRONG_DTYPE);
    run_case(dir, MPOC_FORMAT_SAFETENSORS, MPOC_QUANT_Q4_0, D_MISSING_SCALE);
    tl_rmdir(dir);
}

static void test_long_gguf_names_hashed(void **state)
{
    (void)state;
    mpoc_mat w;
    mpoc_qmpo q;
    make_qmpo(MPOC_QUANT_Q8_0, &w, &q);
    uint64_t shape[2] = {48, 40};
    const char *longname = "model.layers.123.block_sparse_moe.experts.7.w1_gate_proj.weight";
    mpoc_encode_info info = {longname, MPOC_DTYPE_F32, 2, shape, NAN, NAN, NAN,
                             mpoc_quant_options_default()};
    mpoc_encoded e;
    NT_ASSERT_OK(mpoc_container_encode(MPOC_FORMAT_GGUF, &info, &q, &e));
    for (size_t i = 0; i < e.n; i++)
        assert_true(strlen(e.t[i].name) <= MPOC_GGUF_MAX_NAME);
    assert_true(strncmp(e.t[0].name, "mpo.", 4) == 0);
    assert_non_null(strstr(e.meta_value, "\"core_prefix\":\"mpo."));
    mpoc_encoded e2; /* deterministic */
    NT_ASSERT_OK(mpoc_container_encode(MPOC_FORMAT_GGUF, &info, &q, &e2));
    assert_string_equal(e.t[0].name, e2.t[0].name);
    assert_string_equal(e.meta_value, e2.meta_value);
    mpoc_encoded_free(&e);
    mpoc_encoded_free(&e2);
    mpoc_qmpo_free(&q);
    mpoc_mat_free(&w);
    assert_true(mpoc_container_is_own_key("mpo.x"));
    assert_true(mpoc_container_is_own_key("mpoc.format_version"));
    assert_false(mpoc_container_is_own_key("general.name"));
}

/* Every single-byte change of a container's header (safetensors JSON, GGUF
 * metadata and tensor infos) either is refused with a status or decodes to
 * finite matrices: never a crash or an out-of-bounds read (run under ASan
 * by `make asan`). */
static void mutate_file(const char *path, size_t span)
{
    size_t len;
    unsigned char *orig = tl_read_file(path, &len), *buf = malloc(len);
    assert_non_null(orig);
    static const unsigned char vals[] = {'0', '9', ']', '"', 0xff};
    size_t opened = 0;
    for (size_t pos = 0; pos < span && pos < len; pos++)
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(buf, orig, len);
            if (buf[pos] == vals[v])
                continue;
            buf[pos] = vals[v];
            mpoc_model *m;
            if (mpoc_model_open_memory(buf, len, "mutant", &m) != MPOC_OK)
                continue;
            mpoc_container *c;
            if (mpoc_container_open(m, &c) == MPOC_OK) {
                opened++;
                for (size_t i = 0; i < mpoc_container_count(c); i++) {
                    mpoc_qmpo q;
                    if (mpoc_container_load(c, i, &q) != MPOC_OK)
                        continue;
                    mpoc_mat d;
                    if (mpoc_mpo_to_dense(&q.mpo, &d, NULL) == MPOC_OK)
                        mpoc_mat_free(&d);
                    mpoc_qmpo_free(&q);
                }
                mpoc_container_close(c);
            }
            mpoc_model_close(m);
        }
    assert_true(opened > 0); /* some mutants are harmless (e.g. in a recorded error) */
    free(buf);
    free(orig);
}

static void test_mutations_never_crash(void **state)
{
    (void)state;
    char *dir = tl_tempdir();
    mpoc_log_set(NULL, NULL); /* thousands of refusals: keep the log quiet */
    for (int f = 0; f < 2; f++) {
        mpoc_format fmt = f ? MPOC_FORMAT_GGUF : MPOC_FORMAT_SAFETENSORS;
        mpoc_mat w;
        mpoc_qmpo q;
        make_qmpo(f ? MPOC_QUANT_Q4_0 : MPOC_QUANT_Q8_0, &w, &q);
        uint64_t shape[2] = {48, 40};
        mpoc_encode_info info = {NAME, MPOC_DTYPE_F32, 2, shape, 0.1, 0.11, NAN,
                                 mpoc_quant_options_default()};
        mpoc_encoded e;
        NT_ASSERT_OK(mpoc_container_encode(fmt, &info, &q, &e));
        char *path = tl_path(dir, f ? "m.gguf" : "m.safetensors");
        write_container(path, fmt, &e, D_NONE);
        mutate_file(path, 1200);
        unlink(path);
        free(path);
        mpoc_encoded_free(&e);
        mpoc_qmpo_free(&q);
        mpoc_mat_free(&w);
    }
    tl_install();
    tl_rmdir(dir);
}

int main(void)
{
    tl_install();
    mpoc_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_type),
        cmocka_unit_test(test_defects_rejected),
        cmocka_unit_test(test_long_gguf_names_hashed),
        cmocka_unit_test(test_mutations_never_crash),
    };
    return cmocka_run_group_tests_name("container", tests, NULL, NULL);
}
