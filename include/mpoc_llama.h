/* mpoc_llama.h: run LLaMA-family models, dense or on MPO cores, and compare
 * two of them (docs/eval.md).
 *
 * Linear operators. Every linear layer of a model (the seven projections of
 * each block, the token embedding and the classifier) is an mpoc_linear: a
 * dense float32 matrix or an MPO applied core by core (a prepared
 * mpoc_mpo_plan: one gemm and one transpose per site), never densified. Both compute Y = X·Wᵀ for a batch of rows X, W being
 * [out, in].
 *
 * Models. A model is a path: a GGUF file (llama.cpp names `blk.N.*`,
 * config in the `llama.*` keys, else a config.json beside it), a
 * safetensors file or sharded index with the Hugging Face `config.json`
 * beside it, or a Hugging Face folder
 * (`config.json` + `model.safetensors` or an index). Each layout is run with
 * the rotary convention its ecosystem defines: Hugging Face names (q/k rows
 * permuted for rotate_half) rotate the pairs (i, i + hd/2) of a head, GGUF
 * names the interleaved pairs (2i, 2i+1). The same weights in either layout
 * give the same logits up to float rounding.
 *
 * Compressed containers. A file written by `mpoc compress` (mpoc_container.h)
 * is a model as it is: each tensor it lists becomes an MPO operator on the
 * stored (dequantized) cores; a container beside a config.json is a model
 * too. Before the container and the dense tensor, the loader asks an
 * optional callback (mpoc_llama_options.linear_source) for each linear
 * tensor by name, so a caller can supply its own operators (docs/eval.md).
 *
 * Numerics: float32 activations and weights; norms, softmax sums, KL and
 * log-likelihoods accumulate in double. The library never prints; failures
 * return a status and log a reason naming the file, tensor and value. */
#ifndef MPOC_LLAMA_H
#define MPOC_LLAMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpoc_mat.h"
#include "mpoc_model.h"
#include "mpoc_mpo.h"
#include "mpoc_status.h"
#include "mpoc_svd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== linear operators ==================================================== */

typedef enum mpoc_linear_kind {
    MPOC_LINEAR_DENSE = 0, /* [out, in] matrix: float32, or kept in its stored dtype */
    MPOC_LINEAR_MPO = 1    /* mpoc_mpo, applied without densifying */
} mpoc_linear_kind;

/* A linear operator y = W·x with W [rows = out, cols = in]. Owns its
 * weights (the dense matrix or the MPO's cores). */
typedef struct mpoc_linear mpoc_linear;

/* Dense operator taking ownership of w's data: on success w is reset to
 * empty; on failure w is untouched (still the caller's). */
mpoc_status mpoc_linear_new_dense(mpoc_mat *w, mpoc_linear **out);

/* Dense operator from a 2-D tensor of any dtype mpoc can read. F32 is
 * copied as float32; any other readable dtype whose rows are whole blocks
 * (every F16/BF16 tensor; ggml block types whose row length is a multiple of
 * the block) keeps its stored bytes and is dequantized in blocks of rows at
 * each apply, so the operator costs the file's bytes, not 4 per weight (the
 * same values reach the gemm either way). Others are converted to float32
 * once. MPOC_E_SHAPE when the tensor is not 2-D; MPOC_E_UNSUPPORTED for
 * unreadable dtypes. */
mpoc_status mpoc_linear_from_tensor(const mpoc_tensor *t, mpoc_linear **out);

/* MPO operator taking ownership of mpo's cores and spectra: on success *mpo
 * is zeroed (mpoc_mpo_free on it is then a no-op). W is mpo->shape.rows ×
 * mpo->shape.cols. The operator prepares its application once
 * (mpoc_mpo_plan_new: the cores permuted for the gemms, the contraction
 * order with fewer multiply-adds), which costs a second copy of the cores.
 * Batches of 8 rows or more run on a second plan when merging adjacent
 * sites cuts their multiply-adds by ≥ 1.25× (mpoc_mpo_merge_choose; its
 * cores are capped at 4× the MPO's parameters and at a quarter of the
 * dense matrix).
 * MPOC_E_SHAPE for an inconsistent MPO; MPOC_E_NOMEM. */
mpoc_status mpoc_linear_new_mpo(mpoc_mpo *mpo, mpoc_linear **out);

/* Free; accepts NULL. */
void mpoc_linear_free(mpoc_linear *l);

mpoc_linear_kind mpoc_linear_kind_of(const mpoc_linear *l);
size_t mpoc_linear_rows(const mpoc_linear *l); /* out features */
size_t mpoc_linear_cols(const mpoc_linear *l); /* in features */
/* Multiply-adds per input vector of mpoc_linear_apply on a batch of
 * `batch` rows: rows·cols (dense), the count of the plan that batch runs
 * on (MPO; mpoc_mpo_plan_macs). */
double mpoc_linear_macs(const mpoc_linear *l, size_t batch);
/* Storage dtype of a dense operator's weights (F32 for MPO operators,
 * whose cores are dequantized to float32 when loaded). */
mpoc_dtype mpoc_linear_dtype(const mpoc_linear *l);
/* Stored parameters: rows·cols (dense) or Σ core sizes (MPO). */
size_t mpoc_linear_params(const mpoc_linear *l);

/* Y = X·Wᵀ: x is B × cols, y is B × rows (distinct memory). `ws` is scratch
 * for MPO operators (may be NULL: allocated per call). MPOC_E_SHAPE. */
mpoc_status mpoc_linear_apply(const mpoc_linear *l, mpoc_mat_view x, mpoc_mat_view y,
                              mpoc_workspace *ws);

/* Gather rows of W (an embedding lookup): out row i = W[ids[i], :]; out is
 * n × cols. Dense: a copy. MPO: the cores' slices for the row index are
 * contracted left to right (never densified; cost per row Σ_k
 * n_1···n_k·r_k·r_{k+1}, scratch 2 · padded_cols · max rank floats). `ws` is
 * unused for now (may be NULL). MPOC_E_INVAL (logged) for an id outside
 * [0, rows). */
mpoc_status mpoc_linear_gather_rows(const mpoc_linear *l, const int32_t *ids, size_t n,
                                    mpoc_mat_view out, mpoc_workspace *ws);

/* ==== models ============================================================== */

typedef enum mpoc_rope_style {
    MPOC_ROPE_INTERLEAVED = 0, /* pairs (2i, 2i+1): GGUF / llama.cpp / llama2.c */
    MPOC_ROPE_HALF = 1         /* pairs (i, i + hd/2): Hugging Face rotate_half */
} mpoc_rope_style;

typedef enum mpoc_llama_layout {
    MPOC_LLAMA_LAYOUT_HF = 0,  /* model.layers.N.self_attn.q_proj.weight, ... */
    MPOC_LLAMA_LAYOUT_GGUF = 1 /* blk.N.attn_q.weight, ... */
} mpoc_llama_layout;

/* Hyper-parameters (from config.json or the GGUF `llama.*` keys). */
typedef struct mpoc_llama_config {
    size_t dim;           /* hidden size (embedding_length / hidden_size) */
    size_t hidden_dim;    /* MLP width (feed_forward_length / intermediate_size) */
    size_t n_layers;      /* block_count / num_hidden_layers */
    size_t n_heads;       /* query heads */
    size_t n_kv_heads;    /* key/value heads; n_heads is a multiple of it */
    size_t head_dim;      /* dim / n_heads (even) */
    size_t vocab_size;    /* rows of the token embedding */
    size_t max_seq_len;   /* context length the config states */
    double norm_eps;      /* RMSNorm epsilon */
    double rope_theta;    /* RoPE frequency base */
    mpoc_rope_style rope; /* from the layout */
    mpoc_llama_layout layout;
    bool tied_classifier; /* classifier is the token embedding */
    int32_t bos_id;       /* 1 unless the config says otherwise */
} mpoc_llama_config;

/* A loaded model. Owns its operators, norms and the mapping it read. */
typedef struct mpoc_llama mpoc_llama;

/* Supplies an operator for a linear tensor (`name` as in the file, W is
 * rows × cols = [out, in]). Return MPOC_OK with *out set to hand over an
 * operator (the model takes ownership), MPOC_E_NOTFOUND to let the loader
 * read the tensor `name` of `model` dense, any other status to fail the
 * load. The tensor itself need not exist in `model` (a container stores
 * cores under other names). A tied classifier is the embedding's operator
 * and is not asked for separately. */
typedef mpoc_status (*mpoc_linear_source_fn)(void *user, const mpoc_model *model,
                                             const char *name, size_t rows, size_t cols,
                                             mpoc_linear **out);

typedef struct mpoc_llama_options {
    const char *config_path;          /* a config.json to use instead of the one beside
                                         the weights (NULL: automatic) */
    mpoc_linear_source_fn linear_source; /* NULL: every linear layer dense */
    void *linear_user;                /* passed to linear_source */
} mpoc_llama_options;

/* Defaults: automatic config, no linear source. */
mpoc_llama_options mpoc_llama_options_default(void);

/* Open a model (see the top of this header for the accepted paths). `opt`
 * may be NULL. Reads every weight once (dense operators are float32 copies;
 * the file is unmapped before returning). Operators come from, in order:
 * opt->linear_source, the container's MPOs, the dense tensor. A .npy file
 * is refused by name (MPOC_E_UNSUPPORTED). Statuses: those of
 * mpoc_model_open; MPOC_E_NOTFOUND (no config, a missing tensor);
 * MPOC_E_FORMAT (not a LLaMA model, bad config value); MPOC_E_SHAPE (a
 * tensor's shape disagrees with the config); MPOC_E_UNSUPPORTED (rope
 * scaling, biases, an unreadable dtype); MPOC_E_NOMEM. */
mpoc_status mpoc_llama_open(const char *path, const mpoc_llama_options *opt, mpoc_llama **out);

/* Free; accepts NULL. */
void mpoc_llama_free(mpoc_llama *m);

const mpoc_llama_config *mpoc_llama_config_of(const mpoc_llama *m);
/* Parameters stored in the linear operators (projections + classifier;
 * a tied classifier counts once, with the embedding), and how many of the
 * operators are MPOs. */
size_t mpoc_llama_linear_params(const mpoc_llama *m);
size_t mpoc_llama_mpo_count(const mpoc_llama *m);
/* Multiply-adds per token of the linear operators applied to every
 * position (projections + classifier; the embedding is a lookup), in a
 * forward pass of `batch` positions. */
double mpoc_llama_linear_macs(const mpoc_llama *m, size_t batch);
/* "hf" or "gguf". */
const char *mpoc_llama_layout_name(mpoc_llama_layout l);

/* MPOC_OK when b can be compared with a (same vocabulary, dims, layers,
 * heads); MPOC_E_SHAPE naming the first difference otherwise. */
mpoc_status mpoc_llama_check_compatible(const mpoc_llama *a, const mpoc_llama *b);

/* ==== running ============================================================= */

/* Per-sequence state: the KV cache (layer, position, kv_dim) for keys and
 * values, scratch activations and a workspace. Owns all of it. One state
 * per thread. */
typedef struct mpoc_llama_state mpoc_llama_state;

/* A state for up to max_tokens positions (0: the config's max_seq_len).
 * Allocates 2·n_layers·max_tokens·kv_dim floats for the cache. */
mpoc_status mpoc_llama_state_new(const mpoc_llama *m, size_t max_tokens,
                                 mpoc_llama_state **out);
void mpoc_llama_state_free(mpoc_llama_state *s);
/* Forget the sequence (position back to 0). */
void mpoc_llama_state_reset(mpoc_llama_state *s);
/* Number of positions already in the cache. */
size_t mpoc_llama_state_pos(const mpoc_llama_state *s);

/* Run n ≥ 1 tokens at positions pos .. pos+n−1 (causal attention over the
 * cache and the batch), append their keys/values to the cache and, when
 * logits is not NULL, write n × vocab_size logits (row i predicts the token
 * after tokens[i]). n = 1 is single-token decoding; n = a whole sequence is
 * teacher forcing with one GEMM per dense layer. MPOC_E_INVAL (logged) for
 * token ids outside [0, vocab) or a cache overflow. */
mpoc_status mpoc_llama_forward(const mpoc_llama *m, mpoc_llama_state *s, const int32_t *tokens,
                               size_t n, float *logits);

/* Greedy decoding: feed `first`, then n − 1 argmax tokens; out[0..n) are
 * the n argmax tokens after `first` (out excludes `first`). */
mpoc_status mpoc_llama_greedy(const mpoc_llama *m, int32_t first, size_t n, int32_t *out);

/* n_seq sequences of `length` ≥ 2 tokens sampled from m at temperature 1:
 * each starts with bos_id, the rest drawn by inverse CDF from uniform draws
 * of stream (seed, sequence index). Up to 64 sequences are decoded in
 * lockstep (one GEMM per layer and step; their KV caches kept under
 * 256 MiB). The same model, seed, n_seq, length and thread count give the
 * same tokens. tokens: n_seq × length ids, row-major. */
mpoc_status mpoc_llama_sample(const mpoc_llama *m, size_t n_seq, size_t length, uint64_t seed,
                              int32_t *tokens);

/* ==== logit arithmetic (double accumulation) ============================== */

/* log Σ exp(logits[i]). */
double mpoc_logits_logsumexp(const float *logits, size_t n);
/* Index of the largest logit (the first on ties); 0 for n == 0. */
size_t mpoc_logits_argmax(const float *logits, size_t n);
/* probs[i] = softmax(logits)[i] (may alias logits). */
void mpoc_logits_softmax(const float *logits, size_t n, float *probs);
/* KL(softmax(p) ‖ softmax(q)) in nats, ≥ 0 (clamped at 0 against round-off). */
double mpoc_logits_kl(const float *p, const float *q, size_t n);

/* ==== evaluation ========================================================== */

/* Teacher-forced comparison of a candidate against a reference. */
typedef struct mpoc_eval_result {
    double kl_mean;      /* mean over predicted positions of KL(P_ref ‖ P_cand), nats */
    double kl_max;       /* largest per-position KL */
    double top1;         /* fraction of positions where the argmaxes agree */
    double ppl_ref;      /* exp(mean −log P_ref(next token)) */
    double ppl_cand;     /* same for the candidate */
    size_t n_tokens;     /* predicted positions: n_seq · (length − 1) */
    double ref_seconds;  /* wall time in the reference's forward passes */
    double cand_seconds; /* ... and the candidate's */
    size_t n_forward;    /* tokens each model processed: n_seq · length */
} mpoc_eval_result;

/* Evaluate over n_seq sequences of `length` ≥ 2 tokens (row-major). The
 * models must be compatible (mpoc_llama_check_compatible). Each sequence
 * runs as one batched forward pass per model; position t's logits predict
 * token t + 1. */
mpoc_status mpoc_llama_eval(const mpoc_llama *ref, const mpoc_llama *cand, const int32_t *tokens,
                            size_t n_seq, size_t length, mpoc_eval_result *out);

#ifdef __cplusplus
}
#endif
#endif
