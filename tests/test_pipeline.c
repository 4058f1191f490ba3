/* test_pipeline.c: whole-model compression on a generated LLaMA-shaped
 * model: selection rules, per-tensor records against the decompressed
 * model, byte-identical output for 1 and 2 threads and after an interrupted
 * run resumed from its checkpoints, NaN tensors stopping the run (or passed
 * through with skip_bad), and pruning without the original. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "numtest.h"
#include "testlog.h"

typedef struct collected {
    size_t n;
    mpoc_tensor_record rec[64];
    char names[64][96];
} collected;

static void collect(void *user, const mpoc_tensor_record *r, size_t done, size_t total,
                    uint64_t bd, uint64_t bt)
{
    (void)bd;
    (void)bt;
    collected *c = user;
    assert_true(done >= 1 && done <= total);
    if (c->n < 64) {
        c->rec[c->n] = *r;
        snprintf(c->names[c->n], sizeof c->names[0], "%s", r->name);
        c->rec[c->n].name = c->names[c->n];
        c->n++;
    }
}

static char *dir;

static char *model_path(void)
{
    char *d = tl_path(dir, "gen"), *p = tl_path(d, "model.safetensors");
    struct stat sb;
    if (stat(p, &sb) != 0) {
        mpoc_llama_shape s = mpoc_llama_shape_default();
        s.dim = 32;
        s.hidden = 48;
        s.layers = 2;
        s.heads = 4;
        s.kv_heads = 2;
        s.vocab = 64;
        NT_ASSERT_OK(mpoc_synth_llama(&s, d, NULL));
    }
    free(d);
    return p;
}

static mpoc_compress_options opts(void)
{
    mpoc_compress_options o = mpoc_compress_options_default();
    o.mpo.eps = 0.2;
    o.min_size = 256;
    o.policy.overwrite = true;
    return o;
}

static int same_file(const char *a, const char *b)
{
    size_t la, lb;
    unsigned char *x = tl_read_file(a, &la), *y = tl_read_file(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

static void test_select_rule(void **state)
{
    (void)state;
    assert_true(mpoc_pipeline_default_select("model.layers.0.self_attn.q_proj.weight"));
    assert_true(mpoc_pipeline_default_select("model.layers.11.mlp.down_proj.weight"));
    assert_true(mpoc_pipeline_default_select("blk.3.attn_output.weight"));
    assert_true(mpoc_pipeline_default_select("blk.0.ffn_gate.weight"));
    assert_false(mpoc_pipeline_default_select("model.embed_tokens.weight"));
    assert_false(mpoc_pipeline_default_select("model.layers.0.input_layernorm.weight"));
    assert_false(mpoc_pipeline_default_select("token_embd.weight"));
    assert_false(mpoc_pipeline_default_select("model.layers.0.self_attn.q_proj.bias"));
}

static void test_compress_records_and_roundtrip(void **state)
{
    (void)state;
    char *in = model_path(), *out = tl_path(dir, "c.safetensors"), *dense = tl_path(dir, "d.safetensors");
    mpoc_compress_options o = opts();
    collected col = {0};
    o.progress = collect;
    o.progress_user = &col;
    mpoc_summary s;
    NT_ASSERT_OK(mpoc_compress(in, out, &o, &s));
    assert_int_equal(s.tensors, 2 * 9 + 2);
    assert_int_equal(s.compressed, 14);
    assert_int_equal(col.n, s.tensors);
    uint64_t bytes = 0;
    for (size_t i = 0; i < col.n; i++)
        bytes += col.rec[i].bytes;
    assert_int_equal(bytes, s.bytes);
    assert_true(s.compressed_bytes < s.compressed_original_bytes);
    /* every reported error is the error of the decompressed tensor */
    mpoc_decompress_options d = mpoc_decompress_options_default();
    d.policy.overwrite = true;
    NT_ASSERT_OK(mpoc_decompress(out, dense, &d, NULL));
    mpoc_model *a, *b;
    NT_ASSERT_OK(mpoc_model_open(in, &a));
    NT_ASSERT_OK(mpoc_model_open(dense, &b));
    assert_int_equal(mpoc_model_tensor_count(a), mpoc_model_tensor_count(b));
    for (size_t i = 0; i < col.n; i++) {
        const mpoc_tensor *ta, *tb;
        NT_ASSERT_OK(mpoc_model_find(a, col.rec[i].name, &ta));
        NT_ASSERT_OK(mpoc_model_find(b, col.rec[i].name, &tb));
        assert_int_equal(ta->nbytes, tb->nbytes);
        if (!col.rec[i].compressed) {
            assert_memory_equal(ta->data, tb->data, ta->nbytes);
            continue;
        }
        mpoc_mat x, y;
        NT_ASSERT_OK(mpoc_tensor_read_f32(ta, &x));
        NT_ASSERT_OK(mpoc_tensor_read_f32(tb, &y));
        double e = nt_rel_diff(mpoc_mat_view_of(&x), mpoc_mat_view_of(&y));
        if (fabs(e - col.rec[i].rel_error) > 1e-5 * e + 1e-7)
            fail_msg("%s: reported %g, measured %g", col.rec[i].name, col.rec[i].rel_error, e);
        assert_true(e <= 0.2 * 1.2); /* eps 0.2 plus a little quantization */
        mpoc_mat_free(&x);
        mpoc_mat_free(&y);
    }
    mpoc_model_close(a);
    mpoc_model_close(b);
    /* include / exclude globs */
    o.n_include = 1;
    const char *inc[1] = {"*.q_proj.weight"}, *exc[1] = {"model.layers.1.*"};
    o.include = inc;
    o.exclude = exc;
    o.n_exclude = 1;
    o.progress = NULL;
    NT_ASSERT_OK(mpoc_compress(in, out, &o, &s));
    assert_int_equal(s.compressed, 1);
    free(in);
    free(out);
    free(dense);
}

static void test_threads_and_resume_identical(void **state)
{
    (void)state;
    char *in = model_path(), *o1 = tl_path(dir, "t1.safetensors"), *o2 = tl_path(dir, "t2.safetensors"),
         *o3 = tl_path(dir, "t3.safetensors");
    mpoc_compress_options o = opts();
    o.quant.core = MPOC_QUANT_Q4_0;
    o.threads = 1;
    NT_ASSERT_OK(mpoc_compress(in, o1, &o, NULL));
    o.threads = 2;
    NT_ASSERT_OK(mpoc_compress(in, o2, &o, NULL));
    assert_true(same_file(o1, o2));
    /* a run stopped after 4 tensors leaves no output, only checkpoints */
    o.stop_after = 4;
    tl_reset();
    assert_int_equal(mpoc_compress(in, o3, &o, NULL), MPOC_E_IO);
    assert_true(tl_contains("stopped after"));
    struct stat sb;
    assert_int_not_equal(stat(o3, &sb), 0);
    o.stop_after = 0;
    o.resume = true;
    o.threads = 1;
    mpoc_summary s;
    NT_ASSERT_OK(mpoc_compress(in, o3, &o, &s));
    assert_true(s.resumed >= 4);
    assert_true(same_file(o1, o3));
    free(in);
    free(o1);
    free(o2);
    free(o3);
}

/* A model with a NaN in one projection. */
static char *nan_model(void)
{
    char *p = tl_path(dir, "nan.safetensors");
    mpoc_writer_options wo = mpoc_writer_options_default();
    wo.policy.overwrite = true;
    mpoc_writer *w;
    NT_ASSERT_OK(mpoc_writer_create(p, &wo, &w));
    mpoc_mat a = nt_power(64, 48, 1.0, 1);
    uint64_t shape[2] = {64, 48};
    NT_ASSERT_OK(mpoc_writer_add_f32(w, "model.layers.0.mlp.up_proj.weight", MPOC_DTYPE_F32, shape, 2, a.data));
    a.data[100] = NAN;
    NT_ASSERT_OK(mpoc_writer_add_f32(w, "model.layers.0.mlp.gate_proj.weight", MPOC_DTYPE_F32, shape, 2, a.data));
    NT_ASSERT_OK(mpoc_writer_commit(w));
    mpoc_mat_free(&a);
    return p;
}

static void test_nan_stops_or_passes(void **state)
{
    (void)state;
    char *in = nan_model(), *out = tl_path(dir, "nan.out");
    mpoc_compress_options o = opts();
    tl_reset();
    assert_int_equal(mpoc_compress(in, out, &o, NULL), MPOC_E_NUMERIC);
    assert_true(tl_contains("model.layers.0.mlp.gate_proj.weight"));
    assert_true(tl_contains("NaN"));
    struct stat sb;
    assert_int_not_equal(stat(out, &sb), 0);
    o.skip_bad = true;
    mpoc_summary s;
    NT_ASSERT_OK(mpoc_compress(in, out, &o, &s));
    assert_int_equal(s.bad_passed, 1);
    assert_int_equal(s.compressed, 1);
    free(in);
    free(out);
}

static void test_prune(void **state)
{
    (void)state;
    char *in = model_path(), *c = tl_path(dir, "p.safetensors"), *p = tl_path(dir, "pp.safetensors");
    mpoc_compress_options o = opts();
    o.mpo.eps = 0.0;
    o.mpo.svd.trunc.max_rank = 24;
    mpoc_summary s1, s2;
    NT_ASSERT_OK(mpoc_compress(in, c, &o, &s1));
    mpoc_prune_options po = mpoc_prune_options_default();
    po.mpo.svd.trunc.max_rank = 6;
    po.policy.overwrite = true;
    NT_ASSERT_OK(mpoc_prune(c, p, &po, &s2));
    assert_int_equal(s2.compressed, s1.compressed);
    assert_true(s2.compressed_bytes < s1.compressed_bytes);
    mpoc_model *m;
    NT_ASSERT_OK(mpoc_model_open(p, &m));
    mpoc_container *ct;
    NT_ASSERT_OK(mpoc_container_open(m, &ct));
    for (size_t i = 0; i < mpoc_container_count(ct); i++) {
        const mpoc_container_entry *e = mpoc_container_entry_at(ct, i);
        for (size_t k = 1; k < e->shape.sites; k++)
            assert_true(e->ranks[k] <= 6);
    }
    mpoc_container_close(ct);
    mpoc_model_close(m);
    /* the input must never be the output */
    po.policy.overwrite = true;
    tl_reset();
    assert_int_equal(mpoc_prune(c, c, &po, NULL), MPOC_E_EXISTS);
    free(in);
    free(c);
    free(p);
}

static int setup(void **state)
{
    (void)state;
    dir = tl_tempdir();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char *g = tl_path(dir, "gen");
    tl_rmdir(g);
    tl_rmdir(dir);
    return 0;
}

int main(void)
{
    tl_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_rule),
        cmocka_unit_test(test_compress_records_and_roundtrip),
        cmocka_unit_test(test_threads_and_resume_identical),
        cmocka_unit_test(test_nan_stops_or_passes),
        cmocka_unit_test(test_prune),
    };
    return cmocka_run_group_tests_name("pipeline", tests, setup, teardown);
}
