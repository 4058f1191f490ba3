/* llama_load.c: open a LLaMA model: config, norms and linear operators. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "llama_internal.h"
#include "mpoc_container.h"
#include "util.h"

/* Longest tensor name we build ("model.layers.<n>.self_attn.q_proj.weight"). */
#define NAME_CAP 96

/* Where linear operators come from, in order of precedence: the caller's
 * source, the mpoc container the weights file is (if it is one), the dense
 * tensor. */
typedef struct load_ctx {
    const mpoc_llama_options *opt;
    mpoc_container *container; /* NULL for an ordinary model file */
    const mpoc_model *model;
    const char *path;
} load_ctx;

mpoc_llama_options mpoc_llama_options_default(void)
{
    mpoc_llama_options o;
    memset(&o, 0, sizeof o);
    return o;
}

const char *mpoc_llama_layout_name(mpoc_llama_layout l)
{
    return l == MPOC_LLAMA_LAYOUT_GGUF ? "gguf" : "hf";
}

static mpoc_status find_tensor(const mpoc_model *mm, const char *path, const char *name,
                               const mpoc_tensor **out)
{
    size_t n = mpoc_model_tensor_count(mm);
    for (size_t i = 0; i < n; i++) {
        const mpoc_tensor *t = mpoc_model_tensor(mm, i);
        if (!strcmp(t->name, name)) {
            *out = t;
            return MPOC_OK;
        }
    }
    MPOC_FAIL(MPOC_E_NOTFOUND, "%s: LLaMA tensor '%s' missing", path, name);
}

/* A 1-D weight of n values (RMSNorm scales), as a new float array. */
static mpoc_status load_vector(const mpoc_model *mm, const char *path, const char *name, size_t n,
                               float **out)
{
    const mpoc_tensor *t;
    MPOC_TRY(find_tensor(mm, path, name, &t));
    if (t->n_dims != 1 || t->shape[0] != n)
        MPOC_FAIL(MPOC_E_SHAPE, "%s: tensor '%s' has %u dims and %llu elements, expected [%zu]",
                  path, name, (unsigned)t->n_dims, (unsigned long long)t->n_elems, n);
    *out = mpoc_alloc_array(n, sizeof(float));
    if (!*out)
        return MPOC_E_NOMEM;
    mpoc_status st = mpoc_tensor_to_f32(t, *out, n);
    if (st != MPOC_OK) {
        free(*out);
        *out = NULL;
    }
    return st;
}

/* The MPO of a decomposed tensor of the container, or MPOC_E_NOTFOUND. */
static mpoc_status container_linear(const load_ctx *cx, const char *name, mpoc_linear **out)
{
    size_t n = cx->container ? mpoc_container_count(cx->container) : 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(mpoc_container_entry_at(cx->container, i)->name, name))
            continue;
        mpoc_qmpo q;
        memset(&q, 0, sizeof q);
        MPOC_TRY(mpoc_container_load(cx->container, i, &q));
        mpoc_status st = mpoc_linear_new_mpo(&q.mpo, out); /* takes the dequantized cores */
        mpoc_qmpo_free(&q);
        return st;
    }
    return MPOC_E_NOTFOUND;
}

/* The operator for `name` ([rows, cols]) from the first source that has it. */
static mpoc_status load_linear(const load_ctx *cx, const char *name, size_t rows, size_t cols,
                               mpoc_linear **out)
{
    *out = NULL;
    mpoc_status st = MPOC_E_NOTFOUND;
    if (cx->opt->linear_source)
        st = cx->opt->linear_source(cx->opt->linear_user, cx->model, name, rows, cols, out);
    if (st == MPOC_E_NOTFOUND)
        st = container_linear(cx, name, out);
    if (st == MPOC_OK) {
        if (*out && mpoc_linear_rows(*out) == rows && mpoc_linear_cols(*out) == cols)
            return MPOC_OK;
        size_t r = *out ? mpoc_linear_rows(*out) : 0, c = *out ? mpoc_linear_cols(*out) : 0;
        mpoc_linear_free(*out);
        *out = NULL;
        MPOC_FAIL(MPOC_E_SHAPE, "%s: operator for '%s' is %zu x %zu, expected %zu x %zu",
                  cx->path, name, r, c, rows, cols);
    }
    if (st != MPOC_E_NOTFOUND)
        return st;
    const mpoc_tensor *t;
    MPOC_TRY(find_tensor(cx->model, cx->path, name, &t));
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols)
        MPOC_FAIL(MPOC_E_SHAPE, "%s: tensor '%s' has shape [%llu, %llu] (%u dims), expected "
                  "[%zu, %zu]", cx->path, name, (unsigned long long)t->shape[0],
                  (unsigned long long)(t->n_dims > 1 ? t->shape[1] : 0), (unsigned)t->n_dims,
                  rows, cols);
    if (!mpoc_tensor_can_read(t))
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: tensor '%s' has dtype %s, which mpoc cannot read",
                  cx->path, name, mpoc_dtype_name(t->dtype));
    return mpoc_linear_from_tensor(t, out);
}

static mpoc_status load_layer(mpoc_llama *m, const load_ctx *cx, size_t l)
{
    const mpoc_llama_config *c = &m->cfg;
    size_t kv = c->n_kv_heads * c->head_dim;
    const size_t shapes[PROJ_COUNT][2] = {{c->dim, c->dim},        {kv, c->dim},
                                          {kv, c->dim},            {c->dim, c->dim},
                                          {c->hidden_dim, c->dim}, {c->hidden_dim, c->dim},
                                          {c->dim, c->hidden_dim}};
    llama_layer *ly = &m->layers[l];
    char name[NAME_CAP];
    mpoc_llama_layer_norm_name_(c->layout, l, false, name, sizeof name);
    MPOC_TRY(load_vector(cx->model, cx->path, name, c->dim, &ly->attn_norm));
    mpoc_llama_layer_norm_name_(c->layout, l, true, name, sizeof name);
    MPOC_TRY(load_vector(cx->model, cx->path, name, c->dim, &ly->ffn_norm));
    for (int p = 0; p < PROJ_COUNT; p++) {
        mpoc_llama_proj_name_(c->layout, l, (enum llama_proj)p, name, sizeof name);
        MPOC_TRY(load_linear(cx, name, shapes[p][0], shapes[p][1], &ly->proj[p]));
    }
    return MPOC_OK;
}

static mpoc_status load_all(mpoc_llama *m, const load_ctx *cx)
{
    const mpoc_llama_config *c = &m->cfg;
    MPOC_TRY(load_linear(cx, mpoc_llama_embed_name_(c->layout), c->vocab_size, c->dim, &m->embed));
    if (c->tied_classifier)
        m->classifier = m->embed;
    else
        MPOC_TRY(load_linear(cx, mpoc_llama_classifier_name_(c->layout), c->vocab_size, c->dim,
                             &m->classifier));
    MPOC_TRY(load_vector(cx->model, cx->path, mpoc_llama_norm_name_(c->layout), c->dim,
                         &m->final_norm));
    m->layers = calloc(c->n_layers, sizeof *m->layers);
    m->inv_freq = mpoc_alloc_array(c->head_dim / 2, sizeof(double));
    if (!m->layers || !m->inv_freq)
        return MPOC_E_NOMEM;
    for (size_t i = 0; i < c->head_dim / 2; i++)
        m->inv_freq[i] = pow(c->rope_theta, -(double)(2 * i) / (double)c->head_dim);
    for (size_t l = 0; l < c->n_layers; l++)
        MPOC_TRY(load_layer(m, cx, l));
    return MPOC_OK;
}

/* A .npy file would otherwise be refused by the model reader with a
 * confusing header-size reason: name it. */
static mpoc_status refuse_npy(const char *path)
{
    unsigned char magic[6] = {0};
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(magic, 1, sizeof magic, f) : 0;
    if (f)
        fclose(f);
    if (n == sizeof magic && !memcmp(magic, "\x93NUMPY", 6))
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: a .npy array, not a model (a model is a GGUF file, a "
                  "safetensors file with config.json beside it, or a Hugging Face folder)", path);
    return MPOC_OK;
}

mpoc_status mpoc_llama_open(const char *path, const mpoc_llama_options *opt, mpoc_llama **out)
{
    *out = NULL;
    mpoc_llama_options dflt = mpoc_llama_options_default();
    if (!opt)
        opt = &dflt;
    mpoc_model *mm;
    MPOC_TRY(refuse_npy(path));
    MPOC_TRY(mpoc_model_open(path, &mm));
    load_ctx cx = {opt, NULL, mm, path};
    mpoc_llama *m = calloc(1, sizeof *m);
    mpoc_status st = m ? MPOC_OK : MPOC_E_NOMEM;
    if (st == MPOC_OK && mpoc_container_detect(mm))
        st = mpoc_container_open(mm, &cx.container);
    if (st == MPOC_OK)
        st = mpoc_llama_read_config_(path, opt->config_path, mm, &m->cfg);
    if (st == MPOC_OK)
        st = load_all(m, &cx);
    mpoc_container_close(cx.container);
    mpoc_model_close(mm);
    if (st != MPOC_OK) {
        mpoc_llama_free(m);
        return st;
    }
    *out = m;
    return MPOC_OK;
}

void mpoc_llama_free(mpoc_llama *m)
{
    if (!m)
        return;
    if (m->layers)
        for (size_t l = 0; l < m->cfg.n_layers; l++) {
            free(m->layers[l].attn_norm);
            free(m->layers[l].ffn_norm);
            for (int p = 0; p < PROJ_COUNT; p++)
                mpoc_linear_free(m->layers[l].proj[p]);
        }
    free(m->layers);
    if (m->classifier != m->embed)
        mpoc_linear_free(m->classifier);
    mpoc_linear_free(m->embed);
    free(m->final_norm);
    free(m->inv_freq);
    free(m);
}

const mpoc_llama_config *mpoc_llama_config_of(const mpoc_llama *m) { return &m->cfg; }

size_t mpoc_llama_linear_params(const mpoc_llama *m)
{
    size_t n = mpoc_linear_params(m->embed);
    if (m->classifier != m->embed)
        n += mpoc_linear_params(m->classifier);
    for (size_t l = 0; l < m->cfg.n_layers; l++)
        for (int p = 0; p < PROJ_COUNT; p++)
            n += mpoc_linear_params(m->layers[l].proj[p]);
    return n;
}

double mpoc_llama_linear_macs(const mpoc_llama *m, size_t batch)
{
    double n = mpoc_linear_macs(m->classifier, batch); /* the embedding is a lookup */
    for (size_t l = 0; l < m->cfg.n_layers; l++)
        for (int p = 0; p < PROJ_COUNT; p++)
            n += mpoc_linear_macs(m->layers[l].proj[p], batch);
    return n;
}

size_t mpoc_llama_mpo_count(const mpoc_llama *m)
{
    size_t n = mpoc_linear_kind_of(m->embed) == MPOC_LINEAR_MPO;
    if (m->classifier != m->embed)
        n += mpoc_linear_kind_of(m->classifier) == MPOC_LINEAR_MPO;
    for (size_t l = 0; l < m->cfg.n_layers; l++)
        for (int p = 0; p < PROJ_COUNT; p++)
            n += mpoc_linear_kind_of(m->layers[l].proj[p]) == MPOC_LINEAR_MPO;
    return n;
}

mpoc_status mpoc_llama_check_compatible(const mpoc_llama *a, const mpoc_llama *b)
{
    static const char *const what[] = {"vocabulary size", "hidden size", "MLP width", "layers",
                                       "attention heads", "key/value heads"};
    const mpoc_llama_config *x = &a->cfg, *y = &b->cfg;
    const size_t va[] = {x->vocab_size, x->dim, x->hidden_dim, x->n_layers, x->n_heads,
                         x->n_kv_heads};
    const size_t vb[] = {y->vocab_size, y->dim, y->hidden_dim, y->n_layers, y->n_heads,
                         y->n_kv_heads};
    for (size_t i = 0; i < sizeof va / sizeof va[0]; i++)
        if (va[i] != vb[i])
            MPOC_FAIL(MPOC_E_SHAPE, "models differ: %s %zu vs %zu", what[i], va[i], vb[i]);
    return MPOC_OK;
}
