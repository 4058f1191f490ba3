/* llama_internal.h: the model and state structs shared by src/llama_*.c. */
#ifndef MPOC_LLAMA_INTERNAL_H
#define MPOC_LLAMA_INTERNAL_H

#include "mpoc_llama.h"

/* The linear operators of one block, in this order. */
enum llama_proj { PROJ_Q, PROJ_K, PROJ_V, PROJ_O, PROJ_GATE, PROJ_UP, PROJ_DOWN, PROJ_COUNT };

typedef struct llama_layer {
    float *attn_norm;              /* (dim) RMSNorm weight before attention, owned */
    float *ffn_norm;               /* (dim) RMSNorm weight before the MLP, owned */
    mpoc_linear *proj[PROJ_COUNT]; /* q (n_heads·hd, dim), k, v (kv_dim, dim), o (dim, dim),
                                      gate, up (hidden, dim), down (dim, hidden); owned */
} llama_layer;

struct mpoc_llama {
    mpoc_llama_config cfg;
    mpoc_linear *embed;      /* (vocab, dim) token embedding, owned */
    mpoc_linear *classifier; /* (vocab, dim); == embed when tied (then not owned twice) */
    float *final_norm;       /* (dim), owned */
    llama_layer *layers;     /* (n_layers), owned */
    double *inv_freq;        /* (head_dim / 2): theta^(−2i/hd), owned */
};

struct mpoc_llama_state {
    size_t max_tokens, pos;
    size_t kv_dim;
    float *k_cache;    /* (n_layers, max_tokens, kv_dim), owned */
    float *v_cache;    /* (n_layers, max_tokens, kv_dim), owned */
    float *scratch;    /* activations for a batch of `batch_cap` tokens, owned */
    size_t batch_cap;  /* tokens the scratch holds */
    mpoc_workspace *ws;/* MPO scratch, owned */
};

/* ---- llama_forward.c ---- */

/* One decoding step of nb independent sequences: tokens[i] at the current
 * position of st[i] (distinct states of equal size), logits nb × vocab.
 * The projections run as one GEMM over the nb rows; attention row by row
 * over each sequence's own cache. Scratch comes from st[0]. */
mpoc_status mpoc_llama_decode_multi_(const mpoc_llama *m, mpoc_llama_state *const *st, size_t nb,
                                     const int32_t *tokens, float *logits);

/* ---- llama_config.c ---- */

/* Read the hyper-parameters for the model opened from `path` (config.json
 * beside it or config_path, else `llama.*` metadata) and the layout from
 * the tensor names. Vocabulary size and the tied flag come from tensors. */
mpoc_status mpoc_llama_read_config_(const char *path, const char *config_path,
                                    const mpoc_model *model, mpoc_llama_config *cfg);

/* Tensor names for the layout: the whole-model ones and block `layer`'s. */
const char *mpoc_llama_embed_name_(mpoc_llama_layout l);
const char *mpoc_llama_norm_name_(mpoc_llama_layout l);
const char *mpoc_llama_classifier_name_(mpoc_llama_layout l);
void mpoc_llama_proj_name_(mpoc_llama_layout l, size_t layer, enum llama_proj p, char *buf,
                           size_t cap);
void mpoc_llama_layer_norm_name_(mpoc_llama_layout l, size_t layer, bool ffn, char *buf,
                                 size_t cap);

#endif
