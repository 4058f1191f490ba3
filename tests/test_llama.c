/* test_llama.c: the LLaMA runner and linear operators: greedy decoding of
 * the fixture in both layouts against the reference ids, identical logits
 * across layouts (fixture and a generated model with GQA and an untied
 * classifier), softmax/KL properties, eval of a model against itself, MPO
 * operators against dense, batched against step-by-step decoding, sampling
 * reproducibility, and refused inputs. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "mpoc.h"
#include "llama_internal.h" /* mpoc_llama_decode_multi_ */
#include "support/modelgen.h"
#include "support/numtest.h"
#include "support/testlog.h"

/* First 48 greedy ids after BOS (fixtures README). */
static const int32_t REF_IDS[48] = {
    403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338,
    401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385,
    328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267};

static char *fixture(const char *name)
{
    const char *dir = getenv("MPOC_FIXTURES");
    if (!dir || !*dir)
        dir = "../shared/fixtures";
    char *p = tl_path(dir, name);
    struct stat st;
    if (p && stat(p, &st) == 0)
        return p;
    free(p);
    return NULL;
}

/* ---- a generated LLaMA in both layouts ------------------------------------ */

typedef struct gen_spec {
    size_t dim, hidden, layers, heads, kv_heads, vocab;
    bool tied;
    uint64_t seed;
} gen_spec;

static const gen_spec GEN_GQA = {32, 24, 2, 4, 2, 37, false, 7};
static const gen_spec GEN_TIED = {8, 12, 1, 2, 1, 11, true, 9};

/* Gaussian rows × cols scaled by `scale` (+ `shift`), as a malloc'd array. */
static float *gen_values(size_t rows, size_t cols, uint64_t seed, float scale, float shift)
{
    mpoc_mat g = nt_gaussian(rows, cols, seed);
    float *v = malloc(rows * cols * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < rows * cols; i++)
        v[i] = shift + scale * g.data[i];
    mpoc_mat_free(&g);
    return v;
}

/* HF q/k rows from the interleaved (GGUF) ones: HF row h·hd + a·hd/2 + i
 * is interleaved row h·hd + 2i + a. */
static float *hf_permute(const float *w, size_t rows, size_t cols, size_t heads)
{
    float *p = malloc(rows * cols * sizeof *p);
    assert_non_null(p);
    size_t hd = rows / heads;
    for (size_t h = 0; h < heads; h++)
        for (size_t a = 0; a < 2; a++)
            for (size_t i = 0; i < hd / 2; i++)
                memcpy(p + (h * hd + a * hd / 2 + i) * cols, w + (h * hd + 2 * i + a) * cols,
                       cols * sizeof *p);
    return p;
}

/* A 2-D tensor rows × cols, or 1-D [rows] when cols is 0. */
static void add(mpoc_writer *w, const char *name, const float *v, size_t rows, size_t cols)
{
    uint64_t shape[2] = {rows, cols};
    NT_ASSERT_OK(mpoc_writer_add_f32(w, name, MPOC_DTYPE_F32, shape, cols ? 2 : 1, v));
}

static void add_f32_meta(mpoc_writer *w, const char *key, float v)
{
    mpoc_meta kv;
    memset(&kv, 0, sizeof kv);
    uint8_t raw[4];
    memcpy(raw, &v, 4); /* x86: little-endian */
    kv.key = key;
    kv.type = MPOC_META_F32;
    kv.count = 1;
    kv.value.type = MPOC_META_F32;
    kv.value.f = (double)v;
    kv.raw = raw;
    kv.raw_len = 4;
    NT_ASSERT_OK(mpoc_writer_set_meta(w, &kv));
}

static void gen_meta(mpoc_writer *w, const gen_spec *g)
{
    NT_ASSERT_OK(mpoc_writer_set_meta_string(w, "general.architecture", "llama"));
    NT_ASSERT_OK(mpoc_writer_set_meta_u32(w, "llama.context_length", 64));
    NT_ASSERT_OK(mpoc_writer_set_meta_u32(w, "llama.embedding_length", (uint32_t)g->dim));
    NT_ASSERT_OK(mpoc_writer_set_meta_u32(w, "llama.feed_forward_length", (uint32_t)g->hidden));
    NT_ASSERT_OK(mpoc_writer_set_meta_u32(w, "llama.block_count", (uint32_t)g->layers));
    NT_ASSERT_OK(mpoc_writer_set_meta_u32(w, "llama.attention.head_count", (uint32_t)g->heads));
    NT_ASSERT_OK(mpoc_writer_set_meta_u32(w, "llama.attention.head_count_kv", (uint32_t)g->kv_heads));
    add_f32_meta(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    add_f32_meta(w, "llama.rope.freq_base", 10000.0f);
}

static void write_config(const char *dir, const gen_spec *g)
{
    char *p = tl_path(dir, "config.json");
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\","
            "\"hidden_size\":%zu,\"intermediate_size\":%zu,\"num_hidden_layers\":%zu,"
            "\"num_attention_heads\":%zu,\"num_key_value_heads\":%zu,\"vocab_size\":%zu,"
            "\"max_position_embeddings\":64,\"rms_norm_eps\":1e-05,\"rope_theta\":10000.0,"
            "\"tie_word_embeddings\":%s,\"bos_token_id\":1,\"hidden_act\":\"silu\"}\n",
            g->dim, g->hidden, g->layers, g->heads, g->kv_heads, g->vocab,
            g->tied ? "true" : "false");
    fclose(f);
    free(p);
}

/* One block's tensors into both writers. */
static void gen_layer(mpoc_writer *hf, mpoc_writer *gg, const gen_spec *g, size_t l, uint64_t seed)
{
    size_t hd = g->dim / g->heads, kv = g->kv_heads * hd;
    const struct { const char *hf, *gg; size_t rows, cols; size_t heads; } P[] = {
        {"self_attn.q_proj", "attn_q", g->dim, g->dim, g->heads},
        {"self_attn.k_proj", "attn_k", kv, g->dim, g->kv_heads},
        {"self_attn.v_proj", "attn_v", kv, g->dim, 0},
        {"self_attn.o_proj", "attn_output", g->dim, g->dim, 0},
        {"mlp.gate_proj", "ffn_gate", g->hidden, g->dim, 0},
        {"mlp.up_proj", "ffn_up", g->hidden, g->dim, 0},
        {"mlp.down_proj", "ffn_down", g->dim, g->hidden, 0},
    };
    char a[96], b[96];
    for (size_t p = 0; p < sizeof P / sizeof P[0]; p++) {
        float *w = gen_values(P[p].rows, P[p].cols, seed + p, 1.0f / sqrtf((float)P[p].cols), 0.0f);
        float *wh = P[p].heads ? hf_permute(w, P[p].rows, P[p].cols, P[p].heads) : NULL;
        snprintf(a, sizeof a, "model.layers.%zu.%s.weight", l, P[p].hf);
        snprintf(b, sizeof b, "blk.%zu.%s.weight", l, P[p].gg);
        add(hf, a, wh ? wh : w, P[p].rows, P[p].cols);
        add(gg, b, w, P[p].rows, P[p].cols);
        free(w);
        free(wh);
    }
    for (int n = 0; n < 2; n++) {
        float *v = gen_values(1, g->dim, seed + 10 + (uint64_t)n, 0.1f, 1.0f);
        snprintf(a, sizeof a, "model.layers.%zu.%s.weight", l,
                 n ? "post_attention_layernorm" : "input_layernorm");
        snprintf(b, sizeof b, "blk.%zu.%s.weight", l, n ? "ffn_norm" : "attn_norm");
        add(hf, a, v, g->dim, 0);
        add(gg, b, v, g->dim, 0);
        free(v);
    }
}

/* Write the model as dir/hf/{model.safetensors,config.json} and
 * dir/model.gguf. */
static void gen_write(const char *dir, const gen_spec *g)
{
    char *hfdir = tl_path(dir, "hf"), *hfpath = tl_path(hfdir, "model.safetensors");
    char *ggpath = tl_path(dir, "model.gguf");
    assert_int_equal(mkdir(hfdir, 0700), 0);
    mpoc_writer_options o = mpoc_writer_options_default();
    mpoc_writer *hf, *gg;
    NT_ASSERT_OK(mpoc_writer_create(hfpath, &o, &hf));
    o.format = MPOC_FORMAT_GGUF;
    NT_ASSERT_OK(mpoc_writer_create(ggpath, &o, &gg));
    gen_meta(gg, g);
    float *emb = gen_values(g->vocab, g->dim, g->seed, 1.0f, 0.0f);
    float *norm = gen_values(1, g->dim, g->seed + 1, 0.1f, 1.0f);
    add(hf, "model.embed_tokens.weight", emb, g->vocab, g->dim);
    add(gg, "token_embd.weight", emb, g->vocab, g->dim);
    add(hf, "model.norm.weight", norm, g->dim, 0);
    add(gg, "output_norm.weight", norm, g->dim, 0);
    if (!g->tied) {
        float *cls = gen_values(g->vocab, g->dim, g->seed + 2, 0.25f, 0.0f);
        add(hf, "lm_head.weight", cls, g->vocab, g->dim);
        add(gg, "output.weight", cls, g->vocab, g->dim);
        free(cls);
    }
    for (size_t l = 0; l < g->layers; l++)
        gen_layer(hf, gg, g, l, g->seed + 100 * (l + 1));
    NT_ASSERT_OK(mpoc_writer_commit(hf));
    NT_ASSERT_OK(mpoc_writer_commit(gg));
    write_config(hfdir, g);
    free(emb);
    free(norm);
    free(hfdir);
    free(hfpath);
    free(ggpath);
}

/* ---- helpers --------------------------------------------------------------- */

/* The two layouts of a model: the fixture when present, else generated. */
typedef struct pair {
    char *tmp;          /* generated files' folder, or NULL */
    char *hf, *gg;      /* paths */
    bool fixture;
} pair;

static pair open_pair(const gen_spec *fallback)
{
    pair p = {0};
    p.hf = fixture("stories260K-hf");
    p.gg = fixture("stories260K.gguf");
    if (p.hf && p.gg) {
        p.fixture = true;
        return p;
    }
    free(p.hf);
    free(p.gg);
    p.tmp = tl_tempdir();
    assert_non_null(p.tmp);
    gen_write(p.tmp, fallback);
    p.hf = tl_path(p.tmp, "hf");
    p.gg = tl_path(p.tmp, "model.gguf");
    return p;
}

static pair gen_pair(const gen_spec *g)
{
    pair p = {0};
    p.tmp = tl_tempdir();
    assert_non_null(p.tmp);
    gen_write(p.tmp, g);
    p.hf = tl_path(p.tmp, "hf");
    p.gg = tl_path(p.tmp, "model.gguf");
    return p;
}

static void close_pair(pair *p)
{
    free(p->hf);
    free(p->gg);
    tl_rmdir(p->tmp); /* NULL for the fixture */
}

static mpoc_llama *open_model(const char *path)
{
    mpoc_llama *m = NULL;
    mpoc_status st = mpoc_llama_open(path, NULL, &m);
    if (st != MPOC_OK)
        fprintf(stderr, "open %s: %s (%s)\n", path, mpoc_strerror(st), tl_last());
    NT_ASSERT_OK(st);
    return m;
}

/* Teacher-forced logits of tokens[0..n) (n × vocab, malloc'd). */
static float *logits_of(const mpoc_llama *m, const int32_t *tokens, size_t n)
{
    size_t vocab = mpoc_llama_config_of(m)->vocab_size;
    float *lg = malloc(n * vocab * sizeof *lg);
    assert_non_null(lg);
    mpoc_llama_state *s;
    NT_ASSERT_OK(mpoc_llama_state_new(m, n, &s));
    NT_ASSERT_OK(mpoc_llama_forward(m, s, tokens, n, lg));
    assert_int_equal(mpoc_llama_state_pos(s), n);
    mpoc_llama_state_free(s);
    return lg;
}

static double max_abs(const float *a, size_t n)
{
    double mx = 0;
    for (size_t i = 0; i < n; i++)
        mx = fabs(a[i]) > mx ? fabs(a[i]) : mx;
    return mx;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double mx = 0;
    for (size_t i = 0; i < n; i++)
        mx = fabs((double)a[i] - b[i]) > mx ? fabs((double)a[i] - b[i]) : mx;
    return mx;
}

/* A deterministic token sequence: BOS then ids spread over the vocabulary. */
static int32_t *test_tokens(size_t n, size_t vocab, int32_t bos)
{
    int32_t *t = malloc(n * sizeof *t);
    assert_non_null(t);
    t[0] = bos;
    for (size_t i = 1; i < n; i++)
        t[i] = (int32_t)((i * 7919u + 13u) % vocab);
    return t;
}

/* Layout agreement: same logits within c·dim·ε·max|logit| (the ops differ
 * only in the order of q/k rows and the rotation pairing). */
static void check_layouts_agree(const char *hf, const char *gg, size_t n, double *diff_out)
{
    mpoc_llama *a = open_model(hf), *b = open_model(gg);
    const mpoc_llama_config *ca = mpoc_llama_config_of(a), *cb = mpoc_llama_config_of(b);
    assert_int_equal(ca->layout, MPOC_LLAMA_LAYOUT_HF);
    assert_int_equal(cb->layout, MPOC_LLAMA_LAYOUT_GGUF);
    assert_int_equal(ca->rope, MPOC_ROPE_HALF);
    assert_int_equal(cb->rope, MPOC_ROPE_INTERLEAVED);
    NT_ASSERT_OK(mpoc_llama_check_compatible(a, b));
    int32_t *tok = test_tokens(n, ca->vocab_size, ca->bos_id);
    float *la = logits_of(a, tok, n), *lb = logits_of(b, tok, n);
    size_t len = n * ca->vocab_size;
    double diff = max_diff(la, lb, len), scale = max_abs(la, len);
    double tol = 64.0 * (double)ca->dim * FLT_EPSILON * (scale > 1 ? scale : 1);
    if (diff > tol || getenv("MPOC_TEST_VERBOSE"))
        fprintf(stderr, "layouts differ by %.3g (tolerance %.3g)\n", diff, tol);
    assert_true(diff <= tol);
    assert_true(scale > 0.1); /* not trivially zero */
    if (diff_out)
        *diff_out = diff;
    free(la);
    free(lb);
    free(tok);
    mpoc_llama_free(a);
    mpoc_llama_free(b);
}

/* ---- an independent reference forward pass ---------------------------------- */

/* Tensor name → float32 values in double, straight from the file. */
static double *ref_tensor(const mpoc_model *mm, const char *name, size_t n)
{
    const mpoc_tensor *t;
    NT_ASSERT_OK(mpoc_model_find(mm, name, &t));
    assert_int_equal(t->n_elems, n);
    float *f = malloc(n * sizeof *f);
    double *d = malloc(n * sizeof *d);
    NT_ASSERT_OK(mpoc_tensor_to_f32(t, f, n));
    for (size_t i = 0; i < n; i++)
        d[i] = f[i];
    free(f);
    return d;
}

static void ref_matvec(const double *w, const double *x, size_t rows, size_t cols, double *y)
{
    for (size_t i = 0; i < rows; i++) {
        double acc = 0;
        for (size_t j = 0; j < cols; j++)
            acc += w[i * cols + j] * x[j];
        y[i] = acc;
    }
}

static void ref_rmsnorm(const double *x, const double *w, size_t n, double *y)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += x[i] * x[i];
    double s = 1.0 / sqrt(ss / (double)n + 1e-5);
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * s * w[i];
}

/* llama2.c's algorithm in double, token by token, for a GGUF-layout model
 * (interleaved RoPE): logits of the last of tokens[0..n). */
static void ref_forward(const char *gguf, const gen_spec *g, const int32_t *tok, size_t n,
                        double *logits)
{
    mpoc_model *mm;
    NT_ASSERT_OK(mpoc_model_open(gguf, &mm));
    size_t D = g->dim, HD = D / g->heads, KV = g->kv_heads * HD, F = g->hidden;
    double *emb = ref_tensor(mm, "token_embd.weight", g->vocab * D);
    double *kc = calloc(g->layers * n * KV, sizeof *kc), *vc = calloc(g->layers * n * KV, sizeof *vc);
    double *x = malloc(D * sizeof *x), *xb = malloc(D * sizeof *xb), *q = malloc(D * sizeof *q);
    double *att = malloc(D * sizeof *att), *tmp = malloc(D * sizeof *tmp), *sc = malloc(n * sizeof *sc);
    double *h1 = malloc(F * sizeof *h1), *h2 = malloc(F * sizeof *h2);
    char name[96];
    for (size_t pos = 0; pos < n; pos++) {
        memcpy(x, emb + (size_t)tok[pos] * D, D * sizeof *x);
        for (size_t l = 0; l < g->layers; l++) {
#define REF_W(suffix, count) (snprintf(name, sizeof name, "blk.%zu." suffix, l), ref_tensor(mm, name, count))
            double *an = REF_W("attn_norm.weight", D), *wq = REF_W("attn_q.weight", D * D);
            double *wk = REF_W("attn_k.weight", KV * D), *wv = REF_W("attn_v.weight", KV * D);
            double *wo = REF_W("attn_output.weight", D * D), *fn = REF_W("ffn_norm.weight", D);
            double *wg = REF_W("ffn_gate.weight", F * D), *wu = REF_W("ffn_up.weight", F * D);
            double *wd = REF_W("ffn_down.weight", D * F);
#undef REF_W
            double *k = kc + (l * n + pos) * KV, *v = vc + (l * n + pos) * KV;
            ref_rmsnorm(x, an, D, xb);
            ref_matvec(wq, xb, D, D, q);
            ref_matvec(wk, xb, KV, D, k);
            ref_matvec(wv, xb, KV, D, v);
            for (size_t i = 0; i < D; i += 2) { /* interleaved pairs, per head */
                double th = pow(10000.0, -(double)(i % HD) / (double)HD) * (double)pos;
                double c = cos(th), s_ = sin(th), a = q[i], b = q[i + 1];
                q[i] = a * c - b * s_;
                q[i + 1] = a * s_ + b * c;
                if (i < KV) {
                    a = k[i];
                    b = k[i + 1];
                    k[i] = a * c - b * s_;
                    k[i + 1] = a * s_ + b * c;
                }
            }
            for (size_t h = 0; h < g->heads; h++) {
                size_t kvh = h / (g->heads / g->kv_heads);
                double mx = -INFINITY, sum = 0;
                for (size_t t = 0; t <= pos; t++) {
                    double d = 0;
                    for (size_t i = 0; i < HD; i++)
                        d += q[h * HD + i] * kc[(l * n + t) * KV + kvh * HD + i];
                    sc[t] = d / sqrt((double)HD);
                    mx = sc[t] > mx ? sc[t] : mx;
                }
                for (size_t t = 0; t <= pos; t++)
                    sum += (sc[t] = exp(sc[t] - mx));
                for (size_t i = 0; i < HD; i++) {
                    double acc = 0;
                    for (size_t t = 0; t <= pos; t++)
                        acc += sc[t] / sum * vc[(l * n + t) * KV + kvh * HD + i];
                    att[h * HD + i] = acc;
                }
            }
            ref_matvec(wo, att, D, D, tmp);
            for (size_t i = 0; i < D; i++)
                x[i] += tmp[i];
            ref_rmsnorm(x, fn, D, xb);
            ref_matvec(wg, xb, F, D, h1);
            ref_matvec(wu, xb, F, D, h2);
            for (size_t i = 0; i < F; i++)
                h1[i] = h1[i] / (1 + exp(-h1[i])) * h2[i];
            ref_matvec(wd, h1, D, F, tmp);
            for (size_t i = 0; i < D; i++)
                x[i] += tmp[i];
            free(an); free(wq); free(wk); free(wv); free(wo); free(fn); free(wg); free(wu); free(wd);
        }
    }
    double *fnorm = ref_tensor(mm, "output_norm.weight", D);
    double *cls = g->tied ? emb : ref_tensor(mm, "output.weight", g->vocab * D);
    ref_rmsnorm(x, fnorm, D, xb);
    ref_matvec(cls, xb, g->vocab, D, logits);
    if (cls != emb)
        free(cls);
    free(fnorm); free(emb); free(kc); free(vc); free(x); free(xb); free(q); free(att); free(tmp);
    free(sc); free(h1); free(h2);
    mpoc_model_close(mm);
}

/* ---- tests ----------------------------------------------------------------- */

static void check_greedy(const char *name)
{
    char *path = fixture(name);
    if (!path) {
        fprintf(stderr, "note: fixture %s absent; greedy reference check skipped "
                "(generated models are checked by the other tests)\n", name);
        skip();
    }
    mpoc_llama *m = open_model(path);
    const mpoc_llama_config *c = mpoc_llama_config_of(m);
    assert_int_equal(c->dim, 64);
    assert_int_equal(c->hidden_dim, 172);
    assert_int_equal(c->n_layers, 5);
    assert_int_equal(c->n_heads, 8);
    assert_int_equal(c->n_kv_heads, 4);
    assert_int_equal(c->vocab_size, 512);
    assert_int_equal(c->bos_id, 1);
    int32_t out[48];
    NT_ASSERT_OK(mpoc_llama_greedy(m, 1, 48, out));
    for (size_t i = 0; i < 48; i++)
        if (out[i] != REF_IDS[i])
            fail_msg("%s: greedy token %zu is %d, reference %d", name, i, out[i], REF_IDS[i]);
    mpoc_llama_free(m);
    free(path);
}

static void test_fixture_greedy_hf(void **state)
{
    (void)state;
    check_greedy("stories260K-hf");
}

static void test_fixture_greedy_gguf(void **state)
{
    (void)state;
    check_greedy("stories260K.gguf");
}

static void test_layouts_agree_fixture_or_generated(void **state)
{
    (void)state;
    pair p = open_pair(&GEN_GQA);
    double diff;
    check_layouts_agree(p.hf, p.gg, p.fixture ? 96 : 24, &diff);
    if (p.fixture)
        fprintf(stderr, "note: fixture HF vs GGUF max |logit difference| = %.3g\n", diff);
    close_pair(&p);
}

static void test_layouts_agree_generated(void **state)
{
    (void)state;
    const gen_spec *specs[] = {&GEN_GQA, &GEN_TIED};
    for (size_t i = 0; i < 2; i++) {
        pair p = gen_pair(specs[i]);
        check_layouts_agree(p.hf, p.gg, 20, NULL);
        mpoc_llama *m = open_model(p.gg);
        assert_int_equal(mpoc_llama_config_of(m)->tied_classifier, specs[i]->tied);
        mpoc_llama_free(m);
        m = open_model(p.hf);
        assert_int_equal(mpoc_llama_config_of(m)->tied_classifier, specs[i]->tied);
        mpoc_llama_free(m);
        close_pair(&p);
    }
}

static void test_matches_reference_implementation(void **state)
{
    (void)state;
    const gen_spec *specs[] = {&GEN_GQA, &GEN_TIED};
    for (size_t k = 0; k < 2; k++) {
        const gen_spec *g = specs[k];
        pair p = gen_pair(g);
        size_t n = 13;
        int32_t *tok = test_tokens(n, g->vocab, 1);
        double *want = malloc(g->vocab * sizeof *want);
        ref_forward(p.gg, g, tok, n, want);
        const char *paths[2] = {p.gg, p.hf};
        for (size_t j = 0; j < 2; j++) {
            mpoc_llama *m = open_model(paths[j]);
            float *got = logits_of(m, tok, n);
            double diff = 0, scale = 0;
            for (size_t i = 0; i < g->vocab; i++) {
                double d = fabs(got[(n - 1) * g->vocab + i] - want[i]);
                diff = d > diff ? d : diff;
                scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
            }
            if (diff > 64.0 * (double)g->dim * FLT_EPSILON * scale)
                fprintf(stderr, "reference vs %s: %.3g (scale %.3g)\n", paths[j], diff, scale);
            assert_true(diff <= 64.0 * (double)g->dim * FLT_EPSILON * scale);
            free(got);
            mpoc_llama_free(m);
        }
        free(want);
        free(tok);
        close_pair(&p);
    }
}

static void test_logit_properties(void **state)
{
    (void)state;
    /* hand-checkable values */
    const float two[2] = {0.0f, 0.0f}, skew[2] = {(float)log(3.0), 0.0f};
    assert_true(fabs(mpoc_logits_logsumexp(two, 2) - log(2.0)) < 1e-12);
    /* KL((.5,.5) || (.75,.25)) = .5 ln(.5/.75) + .5 ln(.5/.25) */
    double want = 0.5 * log(0.5 / 0.75) + 0.5 * log(2.0);
    assert_true(fabs(mpoc_logits_kl(two, skew, 2) - want) < 1e-7);
    assert_int_equal(mpoc_logits_argmax(skew, 2), 0);
    /* softmax of real logits sums to 1; KL(p || p) = 0; KL ≥ 0 */
    pair p = open_pair(&GEN_GQA);
    mpoc_llama *m = open_model(p.hf);
    size_t vocab = mpoc_llama_config_of(m)->vocab_size, n = 16;
    int32_t *tok = test_tokens(n, vocab, 1);
    float *lg = logits_of(m, tok, n);
    float *pr = malloc(vocab * sizeof *pr);
    for (size_t t = 0; t < n; t++) {
        const float *row = lg + t * vocab;
        mpoc_logits_softmax(row, vocab, pr);
        double sum = 0;
        for (size_t i = 0; i < vocab; i++) {
            assert_true(pr[i] >= 0.0f);
            sum += pr[i];
        }
        assert_true(fabs(sum - 1.0) <= 4.0 * (double)vocab * FLT_EPSILON);
        assert_true(mpoc_logits_kl(row, row, vocab) == 0.0);
        if (t > 0)
            assert_true(mpoc_logits_kl(row, row - vocab, vocab) > 0.0);
    }
    free(pr);
    free(lg);
    free(tok);
    mpoc_llama_free(m);
    close_pair(&p);
}

static void test_eval_self_is_zero(void **state)
{
    (void)state;
    pair p = open_pair(&GEN_GQA);
    mpoc_llama *a = open_model(p.gg), *b = open_model(p.gg), *h = open_model(p.hf);
    size_t n_seq = 3, len = 24;
    int32_t *tok = malloc(n_seq * len * sizeof *tok);
    NT_ASSERT_OK(mpoc_llama_sample(a, n_seq, len, 5, tok));
    mpoc_eval_result r;
    NT_ASSERT_OK(mpoc_llama_eval(a, b, tok, n_seq, len, &r));
    assert_true(r.kl_mean == 0.0 && r.kl_max == 0.0);
    assert_true(r.top1 == 1.0);
    assert_true(r.ppl_ref == r.ppl_cand && r.ppl_ref > 1.0);
    assert_int_equal(r.n_tokens, n_seq * (len - 1));
    assert_int_equal(r.n_forward, n_seq * len);
    /* across layouts: ~0, not exactly */
    NT_ASSERT_OK(mpoc_llama_eval(a, h, tok, n_seq, len, &r));
    assert_true(r.kl_mean < 1e-8 && r.kl_max < 1e-6);
    assert_true(r.top1 == 1.0);
    free(tok);
    /* a sequence longer than eval's chunk of 128 positions */
    len = 150;
    tok = test_tokens(len, mpoc_llama_config_of(a)->vocab_size, 1);
    NT_ASSERT_OK(mpoc_llama_eval(a, h, tok, 1, len, &r));
    assert_int_equal(r.n_tokens, len - 1);
    assert_true(r.kl_mean < 1e-8 && r.top1 == 1.0);
    double ppl = r.ppl_ref;
    NT_ASSERT_OK(mpoc_llama_eval(a, a, tok, 1, len, &r));
    assert_true(r.kl_max == 0.0 && fabs(r.ppl_ref - ppl) < 1e-6 * ppl);
    free(tok);
    mpoc_llama_free(a);
    mpoc_llama_free(b);
    mpoc_llama_free(h);
    close_pair(&p);
}

/* Linear source: every 2-D tensor decomposed exactly into an MPO. */
static mpoc_status exact_mpo_source(void *user, const mpoc_model *model, const char *name,
                                    size_t rows, size_t cols, mpoc_linear **out)
{
    size_t *count = user;
    const mpoc_tensor *t;
    mpoc_status st = mpoc_model_find(model, name, &t);
    if (st != MPOC_OK)
        return st;
    mpoc_mat w = {0};
    st = mpoc_tensor_read_f32(t, &w);
    if (st != MPOC_OK)
        return st;
    assert_int_equal(w.rows, rows);
    assert_int_equal(w.cols, cols);
    mpoc_mpo_options opt = mpoc_mpo_options_default();
    opt.sites = 2;
    opt.svd.trunc.keep_zeros = true;
    mpoc_mpo mpo;
    st = mpoc_mpo_decompose(mpoc_mat_view_of(&w), &opt, &mpo, NULL);
    mpoc_mat_free(&w);
    if (st != MPOC_OK)
        return st;
    st = mpoc_linear_new_mpo(&mpo, out);
    mpoc_mpo_free(&mpo);
    if (st == MPOC_OK)
        (*count)++;
    return st;
}

static void test_mpo_operators_match_dense(void **state)
{
    (void)state;
    pair p = open_pair(&GEN_GQA);
    const char *paths[2] = {p.hf, p.gg};
    for (size_t k = 0; k < 2; k++) {
        size_t count = 0;
        mpoc_llama_options o = mpoc_llama_options_default();
        o.linear_source = exact_mpo_source;
        o.linear_user = &count;
        mpoc_llama *mpo = NULL, *dense = open_model(paths[k]);
        NT_ASSERT_OK(mpoc_llama_open(paths[k], &o, &mpo));
        const mpoc_llama_config *c = mpoc_llama_config_of(dense);
        size_t expect = 7 * c->n_layers + 1 + !c->tied_classifier;
        assert_int_equal(count, expect);
        assert_int_equal(mpoc_llama_mpo_count(mpo), expect);
        assert_int_equal(mpoc_llama_mpo_count(dense), 0);
        size_t n = 20;
        int32_t *tok = test_tokens(n, c->vocab_size, c->bos_id);
        float *ld = logits_of(dense, tok, n), *lm = logits_of(mpo, tok, n);
        size_t len = n * c->vocab_size;
        double diff = max_diff(ld, lm, len), scale = max_abs(ld, len);
        if (diff > 1e-4 * (scale > 1 ? scale : 1))
            fprintf(stderr, "MPO vs dense: %.3g (scale %.3g)\n", diff, scale);
        assert_true(diff <= 1e-4 * (scale > 1 ? scale : 1));
        free(ld);
        free(lm);
        free(tok);
        mpoc_llama_free(mpo);
        mpoc_llama_free(dense);
    }
    close_pair(&p);
}

static void test_batched_equals_stepwise(void **state)
{
    (void)state;
    pair p = open_pair(&GEN_GQA);
    const char *paths[2] = {p.hf, p.gg};
    for (size_t k = 0; k < 2; k++) {
        mpoc_llama *m = open_model(paths[k]);
        size_t vocab = mpoc_llama_config_of(m)->vocab_size, n = 33;
        int32_t *tok = test_tokens(n, vocab, 1);
        float *batch = logits_of(m, tok, n);
        float *step = malloc(n * vocab * sizeof *step);
        mpoc_llama_state *s;
        NT_ASSERT_OK(mpoc_llama_state_new(m, n, &s));
        /* one token at a time, then a chunk of 5, then the rest one by one */
        size_t t = 0;
        while (t < n) {
            size_t len = (t == 10) ? 5 : 1;
            NT_ASSERT_OK(mpoc_llama_forward(m, s, tok + t, len, step + t * vocab));
            t += len;
        }
        double diff = max_diff(batch, step, n * vocab), scale = max_abs(batch, n * vocab);
        assert_true(diff <= 64.0 * 64.0 * FLT_EPSILON * (scale > 1 ? scale : 1));
        /* the cache is full: one more token is refused, not written */
        assert_int_equal(mpoc_llama_forward(m, s, tok, 1, step), MPOC_E_INVAL);
        mpoc_llama_state_reset(s);
        assert_int_equal(mpoc_llama_state_pos(s), 0);
        mpoc_llama_state_free(s);
        free(batch);
        free(step);
        free(tok);
        mpoc_llama_free(m);
    }
    close_pair(&p);
}

/* Several sequences at different positions decoded in one step give the
 * logits each would get alone. */
static void test_multi_sequence_decode(void **state)
{
    (void)state;
    pair p = gen_pair(&GEN_GQA);
    mpoc_llama *m = open_model(p.hf);
    size_t vocab = GEN_GQA.vocab, lens[3] = {1, 4, 9};
    int32_t *tok = test_tokens(9, vocab, 1);
    mpoc_llama_state *st[3];
    int32_t last[3];
    for (size_t i = 0; i < 3; i++) {
        NT_ASSERT_OK(mpoc_llama_state_new(m, 16, &st[i]));
        if (lens[i] > 1)
            NT_ASSERT_OK(mpoc_llama_forward(m, st[i], tok, lens[i] - 1, NULL));
        last[i] = tok[lens[i] - 1];
    }
    float *multi = malloc(3 * vocab * sizeof *multi);
    NT_ASSERT_OK(mpoc_llama_decode_multi_(m, st, 3, last, multi));
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(mpoc_llama_state_pos(st[i]), lens[i]);
        float *alone = logits_of(m, tok, lens[i]);
        const float *row = alone + (lens[i] - 1) * vocab;
        double tol = 64.0 * 64.0 * FLT_EPSILON * (max_abs(row, vocab) > 1 ? max_abs(row, vocab) : 1);
        assert_true(max_diff(row, multi + i * vocab, vocab) <= tol);
        free(alone);
    }
    mpoc_llama_state *dup[2] = {st[0], st[0]};
    assert_int_equal(mpoc_llama_decode_multi_(m, dup, 2, last, multi), MPOC_E_INVAL);
    for (size_t i = 0; i < 3; i++)
        mpoc_llama_state_free(st[i]);
    free(multi);
    free(tok);
    mpoc_llama_free(m);
    close_pair(&p);
}

static void test_sampling_reproducible(void **state)
{
    (void)state;
    pair p = open_pair(&GEN_GQA);
    mpoc_llama *m = open_model(p.gg);
    size_t n = 4, len = 16, vocab = mpoc_llama_config_of(m)->vocab_size;
    int32_t *a = malloc(n * len * sizeof *a), *b = malloc(n * len * sizeof *b);
    NT_ASSERT_OK(mpoc_llama_sample(m, n, len, 42, a));
    NT_ASSERT_OK(mpoc_llama_sample(m, n, len, 42, b));
    assert_memory_equal(a, b, n * len * sizeof *a);
    for (size_t i = 0; i < n * len; i++) {
        assert_true(a[i] >= 0 && (size_t)a[i] < vocab);
        if (i % len == 0)
            assert_int_equal(a[i], mpoc_llama_config_of(m)->bos_id);
    }
    NT_ASSERT_OK(mpoc_llama_sample(m, n, len, 43, b));
    assert_true(memcmp(a, b, n * len * sizeof *a) != 0);
    free(a);
    free(b);
    mpoc_llama_free(m);
    close_pair(&p);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    pair p = gen_pair(&GEN_GQA), q = gen_pair(&GEN_TIED);
    mpoc_llama *m = open_model(p.gg), *other = open_model(q.hf);
    /* token ids out of range */
    mpoc_llama_state *s;
    NT_ASSERT_OK(mpoc_llama_state_new(m, 8, &s));
    float *lg = malloc(8 * GEN_GQA.vocab * sizeof *lg);
    int32_t bad[3] = {1, (int32_t)GEN_GQA.vocab, 2}, neg[1] = {-1};
    tl_reset();
    assert_int_equal(mpoc_llama_forward(m, s, bad, 3, lg), MPOC_E_INVAL);
    assert_true(tl_contains("token id 37 at position 1"));
    assert_int_equal(mpoc_llama_forward(m, s, neg, 1, lg), MPOC_E_INVAL);
    assert_int_equal(mpoc_llama_state_pos(s), 0);
    /* mismatched models */
    tl_reset();
    assert_int_equal(mpoc_llama_check_compatible(m, other), MPOC_E_SHAPE);
    assert_true(tl_contains("vocabulary size 37 vs 11"));
    mpoc_eval_result r;
    int32_t tok[4] = {1, 2, 3, 4};
    assert_int_equal(mpoc_llama_eval(m, other, tok, 1, 4, &r), MPOC_E_SHAPE);
    /* a weights file with no config beside it */
    char *lone = tl_path(p.tmp, "lone.safetensors"), *src = tl_path(p.hf, "model.safetensors");
    size_t len;
    unsigned char *bytes = tl_read_file(src, &len);
    assert_non_null(bytes);
    assert_int_equal(mg_write_file(lone, bytes, len), 0);
    mpoc_llama *x = NULL;
    tl_reset();
    assert_int_equal(mpoc_llama_open(lone, NULL, &x), MPOC_E_NOTFOUND);
    assert_true(tl_contains("no config.json"));
    /* the same file with an explicit config works */
    mpoc_llama_options o = mpoc_llama_options_default();
    char *cfg = tl_path(p.hf, "config.json");
    o.config_path = cfg;
    NT_ASSERT_OK(mpoc_llama_open(lone, &o, &x));
    mpoc_llama_free(x);
    x = NULL;
    /* a config for another model: shapes disagree */
    char *cfg2 = tl_path(q.hf, "config.json");
    o.config_path = cfg2;
    assert_int_equal(mpoc_llama_open(lone, &o, &x), MPOC_E_SHAPE);
    free(bytes);
    free(lone);
    free(src);
    free(cfg);
    free(cfg2);
    free(lg);
    mpoc_llama_state_free(s);
    mpoc_llama_free(m);
    mpoc_llama_free(other);
    close_pair(&p);
    close_pair(&q);
}

/* Linear source: the last block's down projection full of NaN. */
static mpoc_status nan_source(void *user, const mpoc_model *model, const char *name, size_t rows,
                              size_t cols, mpoc_linear **out)
{
    (void)user;
    (void)model;
    if (!strstr(name, "blk.1.ffn_down"))
        return MPOC_E_NOTFOUND;
    mpoc_mat w;
    NT_ASSERT_OK(mpoc_mat_alloc(&w, rows, cols));
    for (size_t i = 0; i < rows * cols; i++)
        w.data[i] = NAN;
    return mpoc_linear_new_dense(&w, out);
}

static void test_non_finite_candidate(void **state)
{
    (void)state;
    pair p = gen_pair(&GEN_GQA);
    mpoc_llama_options o = mpoc_llama_options_default();
    o.linear_source = nan_source;
    mpoc_llama *ref = open_model(p.gg), *bad = NULL;
    NT_ASSERT_OK(mpoc_llama_open(p.gg, &o, &bad));
    int32_t tok[6] = {1, 4, 9, 2, 30, 7};
    mpoc_eval_result r;
    tl_reset();
    assert_int_equal(mpoc_llama_eval(ref, bad, tok, 1, 6, &r), MPOC_E_NUMERIC);
    assert_true(tl_contains("candidate model's logit"));
    mpoc_llama_free(ref);
    mpoc_llama_free(bad);
    close_pair(&p);
}

static void test_non_llama_refused(void **state)
{
    (void)state;
    char *dir = tl_tempdir();
    char *path = tl_path(dir, "other.safetensors"), *cfg = tl_path(dir, "config.json");
    mpoc_writer_options o = mpoc_writer_options_default();
    mpoc_writer *w;
    NT_ASSERT_OK(mpoc_writer_create(path, &o, &w));
    float v[4] = {1, 2, 3, 4};
    add(w, "encoder.weight", v, 2, 2);
    NT_ASSERT_OK(mpoc_writer_commit(w));
    mpoc_llama *m = NULL;
    tl_reset();
    assert_int_equal(mpoc_llama_open(path, NULL, &m), MPOC_E_FORMAT);
    assert_true(tl_contains("not a LLaMA model"));
    assert_null(m);
    /* a GGUF of another architecture */
    char *gpath = tl_path(dir, "gpt.gguf");
    o.format = MPOC_FORMAT_GGUF;
    NT_ASSERT_OK(mpoc_writer_create(gpath, &o, &w));
    NT_ASSERT_OK(mpoc_writer_set_meta_string(w, "general.architecture", "gpt2"));
    add(w, "token_embd.weight", v, 2, 2);
    NT_ASSERT_OK(mpoc_writer_commit(w));
    tl_reset();
    assert_int_equal(mpoc_llama_open(gpath, NULL, &m), MPOC_E_FORMAT);
    assert_true(tl_contains("gpt2"));
    free(path);
    free(cfg);
    free(gpath);
    tl_rmdir(dir);
}

static void test_linear_operators(void **state)
{
    (void)state;
    mpoc_mat w = nt_gaussian(12, 20, 3), x = nt_gaussian(5, 20, 4);
    mpoc_mat wc;
    NT_ASSERT_OK(mpoc_mat_copy(&wc, mpoc_mat_view_of(&w)));
    mpoc_mpo_options opt = mpoc_mpo_options_default();
    opt.sites = 2;
    mpoc_mpo mpo;
    NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&w), &opt, &mpo, NULL));
    mpoc_linear *d, *q;
    NT_ASSERT_OK(mpoc_linear_new_dense(&wc, &d));
    assert_null(wc.data); /* ownership moved */
    NT_ASSERT_OK(mpoc_linear_new_mpo(&mpo, &q));
    assert_null(mpo.cores[0]);
    assert_int_equal(mpoc_linear_kind_of(d), MPOC_LINEAR_DENSE);
    assert_int_equal(mpoc_linear_kind_of(q), MPOC_LINEAR_MPO);
    assert_int_equal(mpoc_linear_rows(q), 12);
    assert_int_equal(mpoc_linear_cols(q), 20);
    assert_int_equal(mpoc_linear_params(d), 240);
    float yd[60], yq[60], yr[60];
    NT_ASSERT_OK(mpoc_linear_apply(d, mpoc_mat_view_of(&x), mpoc_view_wrap(yd, 5, 12, 12), NULL));
    NT_ASSERT_OK(mpoc_linear_apply(q, mpoc_mat_view_of(&x), mpoc_view_wrap(yq, 5, 12, 12), NULL));
    for (size_t b = 0; b < 5; b++) /* reference: a plain double loop */
        for (size_t i = 0; i < 12; i++) {
            double acc = 0;
            for (size_t j = 0; j < 20; j++)
                acc += (double)w.data[i * 20 + j] * x.data[b * 20 + j];
            yr[b * 12 + i] = (float)acc;
        }
    double tol = nt_tol(8, 12, 20) * max_abs(yr, 60);
    assert_true(max_diff(yd, yr, 60) <= tol);
    assert_true(max_diff(yq, yr, 60) <= 10 * tol);
    /* gather rows, dense and MPO */
    int32_t ids[3] = {11, 0, 5};
    float gd[60], gq[60];
    NT_ASSERT_OK(mpoc_linear_gather_rows(d, ids, 3, mpoc_view_wrap(gd, 3, 20, 20), NULL));
    NT_ASSERT_OK(mpoc_linear_gather_rows(q, ids, 3, mpoc_view_wrap(gq, 3, 20, 20), NULL));
    for (size_t i = 0; i < 3; i++)
        assert_memory_equal(gd + i * 20, w.data + (size_t)ids[i] * 20, 20 * sizeof(float));
    assert_true(max_diff(gd, gq, 60) <= 10 * nt_tol(8, 12, 20) * max_abs(gd, 60));
    /* three sites with zero-padded columns (20 → 24): every row, cropped */
    mpoc_shape sh;
    const size_t rd[3] = {2, 2, 3}, cd[3] = {2, 3, 4};
    NT_ASSERT_OK(mpoc_shape_explicit(12, 20, 3, rd, cd, &sh));
    mpoc_mpo_options o3 = mpoc_mpo_options_default();
    o3.shape = &sh;
    mpoc_mpo mpo3;
    NT_ASSERT_OK(mpoc_mpo_decompose(mpoc_mat_view_of(&w), &o3, &mpo3, NULL));
    mpoc_linear *q3;
    NT_ASSERT_OK(mpoc_linear_new_mpo(&mpo3, &q3));
    int32_t all[12];
    float g3[240];
    for (int i = 0; i < 12; i++)
        all[i] = 11 - i;
    NT_ASSERT_OK(mpoc_linear_gather_rows(q3, all, 12, mpoc_view_wrap(g3, 12, 20, 20), NULL));
    for (size_t i = 0; i < 12; i++)
        for (size_t j = 0; j < 20; j++)
            assert_true(fabs(g3[i * 20 + j] - w.data[(11 - i) * 20 + j]) <=
                        10 * nt_tol(8, 12, 20) * max_abs(w.data, 240));
    /* ...and applied (a prepared plan) to a batch and to one row: the dense result */
    float y3[60];
    NT_ASSERT_OK(mpoc_linear_apply(q3, mpoc_mat_view_of(&x), mpoc_view_wrap(y3, 5, 12, 12), NULL));
    assert_true(max_diff(y3, yr, 60) <= 10 * tol);
    NT_ASSERT_OK(mpoc_linear_apply(q3, mpoc_view_wrap(x.data + 40, 1, 20, 20),
                                   mpoc_view_wrap(y3, 1, 12, 12), NULL));
    assert_true(max_diff(y3, yr + 24, 12) <= 10 * tol);
    mpoc_linear_free(q3);
    int32_t bad[1] = {12};
    assert_int_equal(mpoc_linear_gather_rows(q, bad, 1, mpoc_view_wrap(gq, 1, 20, 20), NULL),
                     MPOC_E_INVAL);
    assert_int_equal(mpoc_linear_apply(d, mpoc_mat_view_of(&x), mpoc_view_wrap(yd, 5, 11, 12), NULL),
                     MPOC_E_SHAPE);
    mpoc_linear_free(d);
    mpoc_linear_free(q);
    mpoc_linear_free(NULL);
    mpoc_mat_free(&w);
    mpoc_mat_free(&x);
}

/* A dense operator from a non-F32 tensor keeps the stored bytes and
 * dequantizes blocks of rows at each apply: its products and gathered rows
 * equal those of the float32 matrix the same tensor converts to, for each
 * dtype and across the row-block boundaries (rows ≫ one block). */
static void test_linear_stored_dtypes(void **state)
{
    (void)state;
    const mpoc_dtype types[] = {MPOC_DTYPE_F16, MPOC_DTYPE_BF16, MPOC_DTYPE_Q8_0, MPOC_DTYPE_Q4_0};
    size_t rows = 2500, cols = 256, nb = 7; /* 1024-row blocks: two whole and a partial one */
    mpoc_mat w = nt_gaussian(rows, cols, 21), x = nt_gaussian(nb, cols, 22);
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
        uint64_t bytes;
        NT_ASSERT_OK(mpoc_dtype_nbytes(types[t], rows * cols, &bytes));
        void *raw = malloc(bytes);
        assert_non_null(raw);
        NT_ASSERT_OK(mpoc_dtype_from_f32(types[t], w.data, rows * cols, raw));
        mpoc_tensor ten;
        memset(&ten, 0, sizeof ten);
        ten.name = "w";
        ten.dtype = types[t];
        ten.n_dims = 2;
        ten.shape[0] = rows;
        ten.shape[1] = cols;
        ten.n_elems = rows * cols;
        ten.nbytes = bytes;
        ten.data = raw;
        mpoc_mat ref = {0};
        NT_ASSERT_OK(mpoc_tensor_read_f32(&ten, &ref)); /* what the file means */
        mpoc_linear *l, *d;
        NT_ASSERT_OK(mpoc_linear_from_tensor(&ten, &l));
        free(raw); /* the operator owns a copy */
        assert_int_equal(mpoc_linear_dtype(l), types[t]);
        assert_int_equal(mpoc_linear_kind_of(l), MPOC_LINEAR_DENSE);
        assert_int_equal(mpoc_linear_params(l), rows * cols);
        NT_ASSERT_OK(mpoc_linear_new_dense(&ref, &d));
        assert_int_equal(mpoc_linear_dtype(d), MPOC_DTYPE_F32);
        for (size_t b = 1; b <= nb; b += nb - 1) { /* one input (decoding) and a batch */
            float *ys = malloc(b * rows * sizeof(float)), *yd = malloc(b * rows * sizeof(float));
            assert_true(ys && yd);
            NT_ASSERT_OK(mpoc_linear_apply(l, mpoc_view_wrap(x.data, b, cols, cols),
                                           mpoc_view_wrap(ys, b, rows, rows), NULL));
            NT_ASSERT_OK(mpoc_linear_apply(d, mpoc_view_wrap(x.data, b, cols, cols),
                                           mpoc_view_wrap(yd, b, rows, rows), NULL));
            /* same float32 weights; only the gemm's blocking may differ */
            assert_true(max_diff(ys, yd, b * rows) <= nt_tol(4, b, cols) * max_abs(yd, b * rows));
            free(ys);
            free(yd);
        }
        int32_t ids[4] = {2499, 0, 1024, 1};
        float gs[4 * 256], gd[4 * 256];
        NT_ASSERT_OK(mpoc_linear_gather_rows(l, ids, 4, mpoc_view_wrap(gs, 4, cols, cols), NULL));
        NT_ASSERT_OK(mpoc_linear_gather_rows(d, ids, 4, mpoc_view_wrap(gd, 4, cols, cols), NULL));
        assert_memory_equal(gs, gd, sizeof gs);
        mpoc_linear_free(l);
        mpoc_linear_free(d);
    }
    mpoc_mat_free(&w);
    mpoc_mat_free(&x);
}

int main(void)
{
    tl_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_greedy_hf),
        cmocka_unit_test(test_fixture_greedy_gguf),
        cmocka_unit_test(test_layouts_agree_fixture_or_generated),
        cmocka_unit_test(test_layouts_agree_generated),
        cmocka_unit_test(test_matches_reference_implementation),
        cmocka_unit_test(test_logit_properties),
        cmocka_unit_test(test_eval_self_is_zero),
        cmocka_unit_test(test_mpo_operators_match_dense),
        cmocka_unit_test(test_batched_equals_stepwise),
        cmocka_unit_test(test_multi_sequence_decode),
        cmocka_unit_test(test_sampling_reproducible),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_non_finite_candidate),
        cmocka_unit_test(test_non_llama_refused),
        cmocka_unit_test(test_linear_operators),
        cmocka_unit_test(test_linear_stored_dtypes),
    };
    return cmocka_run_group_tests_name("llama", tests, NULL, NULL);
}
