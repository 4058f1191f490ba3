/* llama_forward.c: the LLaMA forward pass over a batch of positions with a
 * KV cache: RMSNorm, rotary embeddings (both conventions), grouped-query
 * attention, SwiGLU MLP, classifier. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "linalg.h"
#include "llama_internal.h"
#include "util.h"

/* ---- state --------------------------------------------------------------- */

mpoc_status mpoc_llama_state_new(const mpoc_llama *m, size_t max_tokens, mpoc_llama_state **out)
{
    *out = NULL;
    const mpoc_llama_config *c = &m->cfg;
    if (max_tokens == 0)
        max_tokens = c->max_seq_len;
    size_t kv = c->n_kv_heads * c->head_dim, per_layer, total;
    if (!mpoc_mul_size(max_tokens, kv, &per_layer) || !mpoc_mul_size(per_layer, c->n_layers, &total))
        MPOC_FAIL(MPOC_E_OVERFLOW, "KV cache of %zu positions overflows", max_tokens);
    mpoc_llama_state *s = calloc(1, sizeof *s);
    if (!s)
        return MPOC_E_NOMEM;
    s->max_tokens = max_tokens;
    s->kv_dim = kv;
    s->k_cache = mpoc_alloc_array(total, sizeof(float));
    s->v_cache = mpoc_alloc_array(total, sizeof(float));
    mpoc_status st = s->k_cache && s->v_cache ? mpoc_workspace_new(&s->ws) : MPOC_E_NOMEM;
    if (st != MPOC_OK) {
        mpoc_llama_state_free(s);
        return st;
    }
    *out = s;
    return MPOC_OK;
}

void mpoc_llama_state_free(mpoc_llama_state *s)
{
    if (!s)
        return;
    free(s->k_cache);
    free(s->v_cache);
    free(s->scratch);
    mpoc_workspace_free(s->ws);
    free(s);
}

void mpoc_llama_state_reset(mpoc_llama_state *s) { s->pos = 0; }
size_t mpoc_llama_state_pos(const mpoc_llama_state *s) { return s->pos; }

/* Activations of one batch, carved out of the state's scratch. */
typedef struct batch_bufs {
    float *x;      /* (n, dim) residual stream */
    float *xb;     /* (n, dim) normalized input of a sub-layer */
    float *q;      /* (n, dim) queries */
    float *att;    /* (n, dim) attention output before o_proj */
    float *tmp;    /* (n, dim) sub-layer output */
    float *gate;   /* (n, hidden) */
    float *up;     /* (n, hidden) */
    float *scores; /* (n, max_tokens) attention weights of one head */
    float *kv;     /* (n, 2·kv_dim) keys and values of a multi-sequence step */
} batch_bufs;

static mpoc_status scratch_for(const mpoc_llama *m, mpoc_llama_state *s, size_t n, batch_bufs *b)
{
    const mpoc_llama_config *c = &m->cfg;
    size_t per_token = 5 * c->dim + 2 * c->hidden_dim + s->max_tokens + 2 * s->kv_dim, total;
    if (!mpoc_mul_size(per_token, n, &total))
        MPOC_FAIL(MPOC_E_OVERFLOW, "batch of %zu tokens overflows", n);
    if (n > s->batch_cap) {
        float *p = mpoc_alloc_array(total, sizeof(float));
        if (!p)
            return MPOC_E_NOMEM;
        free(s->scratch);
        s->scratch = p;
        s->batch_cap = n;
    }
    float *p = s->scratch;
    b->x = p;
    b->xb = b->x + n * c->dim;
    b->q = b->xb + n * c->dim;
    b->att = b->q + n * c->dim;
    b->tmp = b->att + n * c->dim;
    b->gate = b->tmp + n * c->dim;
    b->up = b->gate + n * c->hidden_dim;
    b->scores = b->up + n * c->hidden_dim;
    b->kv = b->scores + n * s->max_tokens;
    return MPOC_OK;
}

/* ---- building blocks ----------------------------------------------------- */

/* out[i, :] = x[i, :] / rms(x[i, :]) * w, the mean of squares in double. */
static void rmsnorm(const float *x, const float *w, size_t n, size_t dim, double eps, float *out)
{
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * dim;
        double ss = 0.0;
        for (size_t j = 0; j < dim; j++)
            ss += (double)xi[j] * (double)xi[j];
        float scale = (float)(1.0 / sqrt(ss / (double)dim + eps));
        for (size_t j = 0; j < dim; j++)
            out[i * dim + j] = w[j] * (xi[j] * scale);
    }
}

/* Rotate one head in place by the angles whose cosines and sines are given
 * (hd/2 of each), in the layout's pairing. */
static void rope_head(float *v, const float *cs, const float *sn, size_t hd, mpoc_rope_style style)
{
    size_t half = hd / 2;
    for (size_t j = 0; j < half; j++) {
        size_t a = style == MPOC_ROPE_INTERLEAVED ? 2 * j : j;
        size_t b = style == MPOC_ROPE_INTERLEAVED ? 2 * j + 1 : j + half;
        float x0 = v[a], x1 = v[b];
        v[a] = x0 * cs[j] - x1 * sn[j];
        v[b] = x0 * sn[j] + x1 * cs[j];
    }
}

/* Rotary embedding of the batch's queries (ld dim) and keys (ld kv_dim). */
static void rope_batch(const mpoc_llama *m, size_t pos, size_t n, float *q, float *k, size_t kv_dim,
                       float *cs_sn)
{
    const mpoc_llama_config *c = &m->cfg;
    size_t hd = c->head_dim, half = hd / 2;
    float *cs = cs_sn, *sn = cs_sn + half;
    for (size_t i = 0; i < n; i++) {
        double p = (double)(pos + i);
        for (size_t j = 0; j < half; j++) {
            double angle = p * m->inv_freq[j];
            cs[j] = (float)cos(angle);
            sn[j] = (float)sin(angle);
        }
        for (size_t h = 0; h < c->n_heads; h++)
            rope_head(q + i * c->dim + h * hd, cs, sn, hd, c->rope);
        for (size_t h = 0; h < c->n_kv_heads; h++)
            rope_head(k + i * kv_dim + h * hd, cs, sn, hd, c->rope);
    }
}

/* Row-wise causal softmax: row i of s (n × ld) keeps columns 0..pos+i. */
static void causal_softmax(float *s, size_t n, size_t ld, size_t pos)
{
    for (size_t i = 0; i < n; i++) {
        float *row = s + i * ld;
        size_t len = pos + i + 1;
        float mx = row[0];
        for (size_t t = 1; t < len; t++)
            mx = row[t] > mx ? row[t] : mx;
        double sum = 0.0;
        for (size_t t = 0; t < len; t++) {
            row[t] = expf(row[t] - mx);
            sum += (double)row[t];
        }
        float inv = (float)(1.0 / sum);
        for (size_t t = 0; t < len; t++)
            row[t] *= inv;
        memset(row + len, 0, (ld - len) * sizeof(float));
    }
}

/* Attention of the batch's queries over cache positions 0..pos+n−1 of
 * layer l: query head h reads key/value head h / (n_heads / n_kv_heads). */
static mpoc_status attention(const mpoc_llama *m, mpoc_llama_state *s, size_t l, size_t n,
                             batch_bufs *b)
{
    const mpoc_llama_config *c = &m->cfg;
    size_t hd = c->head_dim, kv = s->kv_dim, total = s->pos + n;
    size_t group = c->n_heads / c->n_kv_heads;
    const float *kc = s->k_cache + l * s->max_tokens * kv, *vc = s->v_cache + l * s->max_tokens * kv;
    float scale = (float)(1.0 / sqrt((double)hd));
    for (size_t h = 0; h < c->n_heads; h++) {
        size_t g = h / group;
        MPOC_TRY(mpoc_la_gemm(false, true, n, total, hd, scale, b->q + h * hd, c->dim, kc + g * hd,
                              kv, 0.0f, b->scores, total));
        causal_softmax(b->scores, n, total, s->pos);
        MPOC_TRY(mpoc_la_gemm(false, false, n, hd, total, 1.0f, b->scores, total, vc + g * hd, kv,
                              0.0f, b->att + h * hd, c->dim));
    }
    return MPOC_OK;
}

static mpoc_status attention_block(const mpoc_llama *m, mpoc_llama_state *s, size_t l, size_t n,
                                   batch_bufs *b)
{
    const mpoc_llama_config *c = &m->cfg;
    const llama_layer *ly = &m->layers[l];
    size_t kv = s->kv_dim;
    float *kdst = s->k_cache + (l * s->max_tokens + s->pos) * kv;
    float *vdst = s->v_cache + (l * s->max_tokens + s->pos) * kv;
    mpoc_mat_view xb = mpoc_view_wrap(b->xb, n, c->dim, c->dim);
    rmsnorm(b->x, ly->attn_norm, n, c->dim, c->norm_eps, b->xb);
    MPOC_TRY(mpoc_linear_apply(ly->proj[PROJ_Q], xb, mpoc_view_wrap(b->q, n, c->dim, c->dim), s->ws));
    MPOC_TRY(mpoc_linear_apply(ly->proj[PROJ_K], xb, mpoc_view_wrap(kdst, n, kv, kv), s->ws));
    MPOC_TRY(mpoc_linear_apply(ly->proj[PROJ_V], xb, mpoc_view_wrap(vdst, n, kv, kv), s->ws));
    rope_batch(m, s->pos, n, b->q, kdst, kv, b->tmp); /* tmp is free until o_proj */
    MPOC_TRY(attention(m, s, l, n, b));
    MPOC_TRY(mpoc_linear_apply(ly->proj[PROJ_O], mpoc_view_wrap(b->att, n, c->dim, c->dim),
                               mpoc_view_wrap(b->tmp, n, c->dim, c->dim), s->ws));
    for (size_t i = 0; i < n * c->dim; i++)
        b->x[i] += b->tmp[i];
    return MPOC_OK;
}

static mpoc_status mlp_block(const mpoc_llama *m, mpoc_llama_state *s, size_t l, size_t n,
                             batch_bufs *b)
{
    const mpoc_llama_config *c = &m->cfg;
    const llama_layer *ly = &m->layers[l];
    size_t hid = c->hidden_dim;
    mpoc_mat_view xb = mpoc_view_wrap(b->xb, n, c->dim, c->dim);
    rmsnorm(b->x, ly->ffn_norm, n, c->dim, c->norm_eps, b->xb);
    MPOC_TRY(mpoc_linear_apply(ly->proj[PROJ_GATE], xb, mpoc_view_wrap(b->gate, n, hid, hid), s->ws));
    MPOC_TRY(mpoc_linear_apply(ly->proj[PROJ_UP], xb, mpoc_view_wrap(b->up, n, hid, hid), s->ws));
    for (size_t i = 0; i < n * hid; i++) {
        float g = b->gate[i];
        b->gate[i] = g / (1.0f + expf(-g)) * b->up[i];
    }
    MPOC_TRY(mpoc_linear_apply(ly->proj[PROJ_DOWN], mpoc_view_wrap(b->gate, n, hid, hid),
                               mpoc_view_wrap(b->tmp, n, c->dim, c->dim), s->ws));
    for (size_t i = 0; i < n * c->dim; i++)
        b->x[i] += b->tmp[i];
    return MPOC_OK;
}

mpoc_status mpoc_llama_forward(const mpoc_llama *m, mpoc_llama_state *s, const int32_t *tokens,
                               size_t n, float *logits)
{
    const mpoc_llama_config *c = &m->cfg;
    if (n == 0 || !tokens)
        MPOC_FAIL(MPOC_E_INVAL, "forward: no tokens");
    if (n > s->max_tokens - s->pos)
        MPOC_FAIL(MPOC_E_INVAL, "forward: %zu tokens after position %zu exceed the cache of %zu "
                  "positions", n, s->pos, s->max_tokens);
    batch_bufs b;
    MPOC_TRY(scratch_for(m, s, n, &b));
    MPOC_TRY(mpoc_linear_gather_rows(m->embed, tokens, n, mpoc_view_wrap(b.x, n, c->dim, c->dim),
                                     s->ws));
    for (size_t l = 0; l < c->n_layers; l++) {
        MPOC_TRY(attention_block(m, s, l, n, &b));
        MPOC_TRY(mlp_block(m, s, l, n, &b));
    }
    s->pos += n;
    if (!logits)
        return MPOC_OK;
    rmsnorm(b.x, m->final_norm, n, c->dim, c->norm_eps, b.xb);
    return mpoc_linear_apply(m->classifier, mpoc_view_wrap(b.xb, n, c->dim, c->dim),
                             mpoc_view_wrap(logits, n, c->vocab_size, c->vocab_size), s->ws);
}

/* ---- several sequences, one token each ------------------------------------ */

/* Queries, keys and values of the step: keys/values computed for all rows at
 * once, rotated at each sequence's position and stored in its cache. */
static mpoc_status multi_qkv(const mpoc_llama *m, mpoc_llama_state *const *st, size_t nb,
                             size_t l, batch_bufs *b)
{
    const mpoc_llama_config *c = &m->cfg;
    const llama_layer *ly = &m->layers[l];
    size_t kv = st[0]->kv_dim;
    mpoc_mat_view xb = mpoc_view_wrap(b->xb, nb, c->dim, c->dim);
    float *kb = b->kv, *vb = b->kv + nb * kv;
    MPOC_TRY(mpoc_linear_apply(ly->proj[PROJ_Q], xb, mpoc_view_wrap(b->q, nb, c->dim, c->dim),
                               st[0]->ws));
    MPOC_TRY(mpoc_linear_apply(ly->proj[PROJ_K], xb, mpoc_view_wrap(kb, nb, kv, kv), st[0]->ws));
    MPOC_TRY(mpoc_linear_apply(ly->proj[PROJ_V], xb, mpoc_view_wrap(vb, nb, kv, kv), st[0]->ws));
    for (size_t i = 0; i < nb; i++) {
        mpoc_llama_state *s = st[i];
        rope_batch(m, s->pos, 1, b->q + i * c->dim, kb + i * kv, kv, b->tmp);
        size_t at = (l * s->max_tokens + s->pos) * kv;
        memcpy(s->k_cache + at, kb + i * kv, kv * sizeof(float));
        memcpy(s->v_cache + at, vb + i * kv, kv * sizeof(float));
    }
    return MPOC_OK;
}

static mpoc_status multi_attention_block(const mpoc_llama *m, mpoc_llama_state *const *st,
                                         size_t nb, size_t l, batch_bufs *b)
{
    const mpoc_llama_config *c = &m->cfg;
    rmsnorm(b->x, m->layers[l].attn_norm, nb, c->dim, c->norm_eps, b->xb);
    MPOC_TRY(multi_qkv(m, st, nb, l, b));
    for (size_t i = 0; i < nb; i++) { /* row i attends over its own cache */
        batch_bufs row = *b;
        row.q = b->q + i * c->dim;
        row.att = b->att + i * c->dim;
        MPOC_TRY(attention(m, st[i], l, 1, &row));
    }
    MPOC_TRY(mpoc_linear_apply(m->layers[l].proj[PROJ_O], mpoc_view_wrap(b->att, nb, c->dim, c->dim),
                               mpoc_view_wrap(b->tmp, nb, c->dim, c->dim), st[0]->ws));
    for (size_t i = 0; i < nb * c->dim; i++)
        b->x[i] += b->tmp[i];
    return MPOC_OK;
}

static mpoc_status multi_check(mpoc_llama_state *const *st, size_t nb, const int32_t *tokens)
{
    if (nb == 0 || !tokens || !st)
        MPOC_FAIL(MPOC_E_INVAL, "decode: no sequences");
    for (size_t i = 0; i < nb; i++) {
        if (st[i]->max_tokens != st[0]->max_tokens || st[i]->kv_dim != st[0]->kv_dim)
            MPOC_FAIL(MPOC_E_INVAL, "decode: states of different sizes");
        if (st[i]->pos >= st[i]->max_tokens)
            MPOC_FAIL(MPOC_E_INVAL, "decode: sequence %zu fills its cache of %zu positions", i,
                      st[i]->max_tokens);
        for (size_t j = 0; j < i; j++)
            if (st[j] == st[i])
                MPOC_FAIL(MPOC_E_INVAL, "decode: state %zu given twice", i);
    }
    return MPOC_OK;
}

mpoc_status mpoc_llama_decode_multi_(const mpoc_llama *m, mpoc_llama_state *const *st, size_t nb,
                                     const int32_t *tokens, float *logits)
{
    const mpoc_llama_config *c = &m->cfg;
    MPOC_TRY(multi_check(st, nb, tokens));
    batch_bufs b;
    MPOC_TRY(scratch_for(m, st[0], nb, &b));
    MPOC_TRY(mpoc_linear_gather_rows(m->embed, tokens, nb, mpoc_view_wrap(b.x, nb, c->dim, c->dim),
                                     st[0]->ws));
    for (size_t l = 0; l < c->n_layers; l++) {
        MPOC_TRY(multi_attention_block(m, st, nb, l, &b));
        MPOC_TRY(mlp_block(m, st[0], l, nb, &b));
    }
    for (size_t i = 0; i < nb; i++)
        st[i]->pos++;
    rmsnorm(b.x, m->final_norm, nb, c->dim, c->norm_eps, b.xb);
    return mpoc_linear_apply(m->classifier, mpoc_view_wrap(b.xb, nb, c->dim, c->dim),
                             mpoc_view_wrap(logits, nb, c->vocab_size, c->vocab_size), st[0]->ws);
}
