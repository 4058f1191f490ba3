/* llama_config.c: LLaMA hyper-parameters from a Hugging Face config.json or
 * from `llama.*` metadata (GGUF keys, or their decimal text after a
 * conversion to safetensors), and the tensor-name layouts. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "llama_internal.h"

/* Largest config.json we read, and a sanity cap on every dimension (keeps
 * all later size products far from overflow). */
#define CONFIG_MAX_BYTES (1u << 20)
#define DIM_CAP ((size_t)1 << 24)

/* ---- tensor names -------------------------------------------------------- */

const char *mpoc_llama_embed_name_(mpoc_llama_layout l)
{
    return l == MPOC_LLAMA_LAYOUT_GGUF ? "token_embd.weight" : "model.embed_tokens.weight";
}

const char *mpoc_llama_norm_name_(mpoc_llama_layout l)
{
    return l == MPOC_LLAMA_LAYOUT_GGUF ? "output_norm.weight" : "model.norm.weight";
}

const char *mpoc_llama_classifier_name_(mpoc_llama_layout l)
{
    return l == MPOC_LLAMA_LAYOUT_GGUF ? "output.weight" : "lm_head.weight";
}

void mpoc_llama_proj_name_(mpoc_llama_layout l, size_t layer, enum llama_proj p, char *buf,
                           size_t cap)
{
    static const char *const hf[PROJ_COUNT] = {
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
    static const char *const gg[PROJ_COUNT] = {"attn_q",   "attn_k",  "attn_v",  "attn_output",
                                               "ffn_gate", "ffn_up", "ffn_down"};
    if (l == MPOC_LLAMA_LAYOUT_GGUF)
        snprintf(buf, cap, "blk.%zu.%s.weight", layer, gg[p]);
    else
        snprintf(buf, cap, "model.layers.%zu.%s.weight", layer, hf[p]);
}

void mpoc_llama_layer_norm_name_(mpoc_llama_layout l, size_t layer, bool ffn, char *buf,
                                 size_t cap)
{
    if (l == MPOC_LLAMA_LAYOUT_GGUF)
        snprintf(buf, cap, "blk.%zu.%s.weight", layer, ffn ? "ffn_norm" : "attn_norm");
    else
        snprintf(buf, cap, "model.layers.%zu.%s.weight", layer,
                 ffn ? "post_attention_layernorm" : "input_layernorm");
}

/* Tensor by name without logging its absence. */
static const mpoc_tensor *quiet_find(const mpoc_model *m, const char *name)
{
    size_t n = mpoc_model_tensor_count(m);
    for (size_t i = 0; i < n; i++) {
        const mpoc_tensor *t = mpoc_model_tensor(m, i);
        if (!strcmp(t->name, name))
            return t;
    }
    return NULL;
}

/* ---- config.json --------------------------------------------------------- */

static char *dir_of(const char *path)
{
    struct stat st;
    const char *slash = strrchr(path, '/');
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return strdup(path);
    if (!slash)
        return strdup(".");
    return strndup(path, (size_t)(slash - path) + (slash == path));
}

static mpoc_status read_text(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        MPOC_FAIL(errno == ENOENT ? MPOC_E_NOTFOUND : MPOC_E_IO, "%s: cannot open: %s", path,
                  strerror(errno));
    char *buf = malloc(CONFIG_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, CONFIG_MAX_BYTES + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!buf)
        return MPOC_E_NOMEM;
    if (err || n > CONFIG_MAX_BYTES) {
        free(buf);
        MPOC_FAIL(err ? MPOC_E_IO : MPOC_E_FORMAT, "%s: %s", path,
                  err ? "read failed" : "larger than 1 MiB, not a model config");
    }
    *text = buf;
    *len = n;
    return MPOC_OK;
}

static mpoc_status json_size(const char *file, const json_t *o, const char *key, bool required,
                             size_t dflt, size_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required)
            MPOC_FAIL(MPOC_E_FORMAT, "%s: '%s' missing", file, key);
        *out = dflt;
        return MPOC_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
        (uint64_t)json_integer_value(v) > DIM_CAP)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: '%s' must be an integer in [1, %zu]", file, key, DIM_CAP);
    *out = (size_t)json_integer_value(v);
    return MPOC_OK;
}

/* A token id: an integer ≥ 0 (default dflt when absent or null). */
static mpoc_status json_token_id(const char *file, const json_t *o, const char *key, size_t dflt,
                                 size_t *out)
{
    const json_t *v = json_object_get(o, key);
    *out = dflt;
    if (!v || json_is_null(v))
        return MPOC_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) > DIM_CAP)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: '%s' must be a token id in [0, %zu]", file, key, DIM_CAP);
    *out = (size_t)json_integer_value(v);
    return MPOC_OK;
}

static mpoc_status json_positive(const char *file, const json_t *o, const char *key, double dflt,
                                 double *out)
{
    const json_t *v = json_object_get(o, key);
    *out = dflt;
    if (!v || json_is_null(v))
        return MPOC_OK;
    if (!json_is_number(v) || !(json_number_value(v) > 0.0) || !isfinite(json_number_value(v)))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: '%s' must be a positive number", file, key);
    *out = json_number_value(v);
    return MPOC_OK;
}

/* Features this runner does not implement are refused, not ignored. */
static mpoc_status json_refuse_features(const char *file, const json_t *o, size_t dim,
                                        size_t heads)
{
    const json_t *v = json_object_get(o, "model_type");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "llama")))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: model_type '%s' is not a LLaMA model", file,
                  json_is_string(v) ? json_string_value(v) : "?");
    v = json_object_get(o, "rope_scaling");
    if (v && !json_is_null(v))
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: rope_scaling is not supported", file);
    static const char *const biases[] = {"attention_bias", "mlp_bias"};
    for (size_t i = 0; i < 2; i++)
        if (json_is_true(json_object_get(o, biases[i])))
            MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: %s is not supported", file, biases[i]);
    v = json_object_get(o, "hidden_act");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "silu")))
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: hidden_act must be 'silu'", file);
    v = json_object_get(o, "head_dim");
    if (v && !json_is_null(v) && (!json_is_integer(v) || (size_t)json_integer_value(v) * heads != dim))
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: head_dim other than hidden_size / num_attention_heads",
                  file);
    return MPOC_OK;
}

static mpoc_status config_from_json_obj(const char *file, const json_t *o, mpoc_llama_config *c,
                                        size_t *vocab)
{
    if (!json_is_object(o))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: not a JSON object", file);
    MPOC_TRY(json_size(file, o, "hidden_size", true, 0, &c->dim));
    MPOC_TRY(json_size(file, o, "intermediate_size", true, 0, &c->hidden_dim));
    MPOC_TRY(json_size(file, o, "num_hidden_layers", true, 0, &c->n_layers));
    MPOC_TRY(json_size(file, o, "num_attention_heads", true, 0, &c->n_heads));
    MPOC_TRY(json_size(file, o, "num_key_value_heads", false, c->n_heads, &c->n_kv_heads));
    MPOC_TRY(json_size(file, o, "max_position_embeddings", false, 2048, &c->max_seq_len));
    MPOC_TRY(json_size(file, o, "vocab_size", false, 0, vocab));
    MPOC_TRY(json_positive(file, o, "rms_norm_eps", 1e-6, &c->norm_eps));
    MPOC_TRY(json_positive(file, o, "rope_theta", 10000.0, &c->rope_theta));
    MPOC_TRY(json_refuse_features(file, o, c->dim, c->n_heads));
    size_t bos;
    MPOC_TRY(json_token_id(file, o, "bos_token_id", 1, &bos));
    c->bos_id = (int32_t)bos;
    const json_t *tie = json_object_get(o, "tie_word_embeddings");
    c->tied_classifier = tie ? json_is_true(tie) : false;
    return MPOC_OK;
}

static mpoc_status config_from_json_text(const char *file, const char *text, size_t len,
                                         mpoc_llama_config *c, size_t *vocab)
{
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: line %d: %s", file, err.line, err.text);
    mpoc_status st = config_from_json_obj(file, root, c, vocab);
    json_decref(root);
    return st;
}

static mpoc_status config_from_json_file(const char *file, mpoc_llama_config *c, size_t *vocab)
{
    char *text;
    size_t len;
    MPOC_TRY(read_text(file, &text, &len));
    mpoc_status st = config_from_json_text(file, text, len, c, vocab);
    free(text);
    return st;
}

/* ---- llama.* metadata ---------------------------------------------------- */

/* A numeric metadata value: typed (GGUF) or decimal text (safetensors). */
static mpoc_status meta_number(const mpoc_model *m, const char *key, bool *found, double *out)
{
    const mpoc_meta *kv;
    *found = false;
    if (mpoc_model_meta_find(m, key, &kv) != MPOC_OK)
        return MPOC_OK;
    const mpoc_meta_value *v = &kv->value;
    const char *file = mpoc_model_file_path(m, 0);
    switch (kv->type) {
    case MPOC_META_U8: case MPOC_META_U16: case MPOC_META_U32: case MPOC_META_U64:
        *out = (double)v->u; break;
    case MPOC_META_I8: case MPOC_META_I16: case MPOC_META_I32: case MPOC_META_I64:
        *out = (double)v->i; break;
    case MPOC_META_F32: case MPOC_META_F64:
        *out = v->f; break;
    case MPOC_META_STRING: {
        char *end;
        errno = 0;
        *out = v->str ? strtod(v->str, &end) : 0.0;
        if (!v->str || errno || end == v->str || *end)
            MPOC_FAIL(MPOC_E_FORMAT, "%s: metadata '%s' is not a number", file, key);
        break;
    }
    default:
        MPOC_FAIL(MPOC_E_FORMAT, "%s: metadata '%s' has type %s, expected a number", file, key,
                  mpoc_meta_type_name(kv->type));
    }
    if (!isfinite(*out))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: metadata '%s' is not finite", file, key);
    *found = true;
    return MPOC_OK;
}

static mpoc_status meta_size(const mpoc_model *m, const char *key, bool required, size_t dflt,
                             double min, size_t *out)
{
    bool found;
    double v;
    MPOC_TRY(meta_number(m, key, &found, &v));
    if (!found) {
        if (required)
            MPOC_FAIL(MPOC_E_FORMAT, "%s: metadata '%s' missing", mpoc_model_file_path(m, 0), key);
        *out = dflt;
        return MPOC_OK;
    }
    if (!(v >= min) || v > (double)DIM_CAP || v != floor(v))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: metadata '%s' = %g is not an integer in [%g, %zu]",
                  mpoc_model_file_path(m, 0), key, v, min, DIM_CAP);
    *out = (size_t)v;
    return MPOC_OK;
}

static mpoc_status meta_positive(const mpoc_model *m, const char *key, bool required, double dflt,
                                 double *out)
{
    bool found;
    MPOC_TRY(meta_number(m, key, &found, out));
    if (!found) {
        if (required)
            MPOC_FAIL(MPOC_E_FORMAT, "%s: metadata '%s' missing", mpoc_model_file_path(m, 0), key);
        *out = dflt;
    } else if (!(*out > 0.0)) {
        MPOC_FAIL(MPOC_E_FORMAT, "%s: metadata '%s' = %g must be positive",
                  mpoc_model_file_path(m, 0), key, *out);
    }
    return MPOC_OK;
}

static mpoc_status check_architecture(const mpoc_model *m)
{
    const mpoc_meta *kv;
    if (mpoc_model_meta_find(m, "general.architecture", &kv) != MPOC_OK)
        return MPOC_OK;
    if (kv->type != MPOC_META_STRING || kv->value.str_len != 5 ||
        memcmp(kv->value.str, "llama", 5))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: general.architecture is '%.*s', not llama",
                  mpoc_model_file_path(m, 0),
                  kv->type == MPOC_META_STRING ? (int)kv->value.str_len : 1,
                  kv->type == MPOC_META_STRING ? kv->value.str : "?");
    return MPOC_OK;
}

static mpoc_status config_from_meta(const mpoc_model *m, mpoc_llama_config *c)
{
    MPOC_TRY(meta_size(m, "llama.embedding_length", true, 0, 1, &c->dim));
    MPOC_TRY(meta_size(m, "llama.feed_forward_length", true, 0, 1, &c->hidden_dim));
    MPOC_TRY(meta_size(m, "llama.block_count", true, 0, 1, &c->n_layers));
    MPOC_TRY(meta_size(m, "llama.attention.head_count", true, 0, 1, &c->n_heads));
    MPOC_TRY(meta_size(m, "llama.attention.head_count_kv", false, c->n_heads, 1, &c->n_kv_heads));
    MPOC_TRY(meta_size(m, "llama.context_length", false, 2048, 1, &c->max_seq_len));
    MPOC_TRY(meta_positive(m, "llama.attention.layer_norm_rms_epsilon", true, 0.0, &c->norm_eps));
    MPOC_TRY(meta_positive(m, "llama.rope.freq_base", false, 10000.0, &c->rope_theta));
    size_t bos;
    MPOC_TRY(meta_size(m, "tokenizer.ggml.bos_token_id", false, 1, 0, &bos));
    c->bos_id = (int32_t)bos;
    bool found;
    double scale;
    MPOC_TRY(meta_number(m, "llama.rope.scaling.factor", &found, &scale));
    if (found && scale != 1.0 && scale != 0.0)
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: rope scaling (factor %g) is not supported",
                  mpoc_model_file_path(m, 0), scale);
    return MPOC_OK;
}

/* ---- putting it together ------------------------------------------------- */

static mpoc_status detect_layout(const mpoc_model *m, mpoc_llama_config *c)
{
    if (quiet_find(m, "token_embd.weight")) {
        c->layout = MPOC_LLAMA_LAYOUT_GGUF;
        c->rope = MPOC_ROPE_INTERLEAVED;
    } else if (quiet_find(m, "model.embed_tokens.weight")) {
        c->layout = MPOC_LLAMA_LAYOUT_HF;
        c->rope = MPOC_ROPE_HALF;
    } else {
        MPOC_FAIL(MPOC_E_FORMAT, "%s: not a LLaMA model: no tensor 'model.embed_tokens.weight' "
                  "or 'token_embd.weight'", mpoc_model_file_path(m, 0));
    }
    return MPOC_OK;
}

/* config.json in the folder of the weights, when there is one. */
static mpoc_status config_beside(const mpoc_model *m, const char *path, bool *have,
                                 mpoc_llama_config *c, size_t *vocab)
{
    *have = false;
    const char *f0 = mpoc_model_file_path(m, 0);
    char *dir = dir_of(f0 ? f0 : path);
    if (!dir)
        return MPOC_E_NOMEM;
    size_t len = strlen(dir) + sizeof "/config.json";
    char *file = malloc(len);
    if (file)
        snprintf(file, len, "%s/config.json", dir);
    free(dir);
    if (!file)
        return MPOC_E_NOMEM;
    struct stat st;
    mpoc_status s = MPOC_OK;
    if (stat(file, &st) == 0) {
        *have = true;
        s = config_from_json_file(file, c, vocab);
    }
    free(file);
    return s;
}

/* *from_json tells whether tie_word_embeddings came from a config.json. */
static mpoc_status read_hparams(const char *path, const char *config_path, const mpoc_model *m,
                                mpoc_llama_config *c, size_t *vocab, bool *from_json)
{
    *from_json = true;
    MPOC_TRY(check_architecture(m));
    if (config_path)
        return config_from_json_file(config_path, c, vocab);
    const mpoc_meta *kv;
    bool gguf = mpoc_model_format(m) == MPOC_FORMAT_GGUF;
    bool has_llama_keys = mpoc_model_meta_find(m, "llama.embedding_length", &kv) == MPOC_OK;
    /* safetensors: config.json first; GGUF: only without llama.* keys (a
     * Hugging Face checkpoint converted to GGUF keeps its names, not a config) */
    if (!gguf || !has_llama_keys) {
        bool have;
        MPOC_TRY(config_beside(m, path, &have, c, vocab));
        if (have)
            return MPOC_OK;
        if (!gguf && mpoc_model_meta_find(m, "config", &kv) == MPOC_OK &&
            kv->type == MPOC_META_STRING)
            return config_from_json_text("__metadata__ 'config'", kv->value.str,
                                         kv->value.str_len, c, vocab);
        if (!has_llama_keys)
            MPOC_FAIL(MPOC_E_NOTFOUND, "%s: no config.json beside the weights and no llama.* "
                      "metadata: cannot tell the model's hyper-parameters", path);
    }
    *from_json = false;
    return config_from_meta(m, c);
}

static mpoc_status check_config(const char *path, mpoc_llama_config *c)
{
    if (c->dim % c->n_heads || (c->dim / c->n_heads) % 2)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: hidden size %zu is not an even head size times %zu heads",
                  path, c->dim, c->n_heads);
    if (c->n_heads % c->n_kv_heads)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: %zu attention heads do not share %zu key/value heads evenly",
                  path, c->n_heads, c->n_kv_heads);
    c->head_dim = c->dim / c->n_heads;
    return MPOC_OK;
}

mpoc_status mpoc_llama_read_config_(const char *path, const char *config_path,
                                    const mpoc_model *model, mpoc_llama_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    MPOC_TRY(detect_layout(model, cfg));
    mpoc_llama_layout layout = cfg->layout;
    mpoc_rope_style rope = cfg->rope;
    size_t vocab = 0;
    bool from_json;
    MPOC_TRY(read_hparams(path, config_path, model, cfg, &vocab, &from_json));
    cfg->layout = layout;
    cfg->rope = rope;
    MPOC_TRY(check_config(path, cfg));
    const mpoc_tensor *emb = quiet_find(model, mpoc_llama_embed_name_(layout));
    if (emb->n_dims != 2 || emb->shape[1] != cfg->dim || emb->shape[0] == 0 ||
        emb->shape[0] > DIM_CAP)
        MPOC_FAIL(MPOC_E_SHAPE, "%s: tensor '%s' has shape [%llu, %llu], expected [vocab, %zu]",
                  path, emb->name, (unsigned long long)emb->shape[0],
                  (unsigned long long)(emb->n_dims > 1 ? emb->shape[1] : 0), cfg->dim);
    cfg->vocab_size = (size_t)emb->shape[0];
    if (vocab && vocab != cfg->vocab_size)
        MPOC_FAIL(MPOC_E_SHAPE, "%s: config vocab_size %zu but '%s' has %zu rows", path, vocab,
                  emb->name, cfg->vocab_size);
    bool has_cls = quiet_find(model, mpoc_llama_classifier_name_(layout)) != NULL;
    if (layout == MPOC_LLAMA_LAYOUT_GGUF || !from_json)
        cfg->tied_classifier = !has_cls; /* llama.cpp: no output.weight means tied */
    else if (!cfg->tied_classifier && !has_cls)
        MPOC_FAIL(MPOC_E_NOTFOUND, "%s: tie_word_embeddings is false but there is no "
                  "'lm_head.weight'", path);
    if (cfg->bos_id < 0 || (size_t)cfg->bos_id >= cfg->vocab_size)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: BOS id %ld outside the vocabulary of %zu", path,
                  (long)cfg->bos_id, cfg->vocab_size);
    return MPOC_OK;
}
