/* synth_model.c: a generated LLaMA-shaped model (mpoc_synth_model.h):
 * mpoc_synth_matrix for every projection, slightly noisy unit norms, and
 * the Hugging Face config.json beside the weights. */
#include "mpoc_synth_model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "internal.h"
#include "mpoc_model.h"
#include "mpoc_synth.h"
#include "util.h"

mpoc_llama_shape mpoc_llama_shape_default(void)
{
    mpoc_llama_shape s = {64, 172, 5, 8, 4, 512, 1, MPOC_DTYPE_F32};
    return s;
}

static mpoc_status check_shape(const mpoc_llama_shape *s)
{
    if (!s->dim || !s->hidden || !s->layers || !s->heads || !s->kv_heads || !s->vocab ||
        s->dim % s->heads || s->heads % s->kv_heads || s->layers > 1000 || s->dim > (1u << 20) ||
        s->hidden > (1u << 20) || s->vocab > (1u << 24))
        MPOC_FAIL(MPOC_E_INVAL, "synth model: dims must be positive, dim a multiple of heads and "
                  "heads a multiple of kv-heads (dim %zu, heads %zu, kv-heads %zu)", s->dim,
                  s->heads, s->kv_heads);
    if (s->dtype != MPOC_DTYPE_F32 && s->dtype != MPOC_DTYPE_F16 && s->dtype != MPOC_DTYPE_BF16)
        MPOC_FAIL(MPOC_E_INVAL, "synth model: dtype must be F32, F16 or BF16");
    return MPOC_OK;
}

static mpoc_status add_matrix(mpoc_writer *w, const mpoc_llama_shape *s, const char *name,
                              size_t rows, size_t cols, uint64_t stream, double decay)
{
    mpoc_synth_spec spec = mpoc_synth_default(MPOC_SPECTRUM_LLM);
    spec.decay = decay;
    mpoc_mat m;
    MPOC_TRY(mpoc_synth_matrix(rows, cols, &spec, s->seed * 1000003u + stream, &m));
    uint64_t shape[2] = {rows, cols};
    mpoc_status st = mpoc_writer_add_f32(w, name, s->dtype, shape, 2, m.data);
    mpoc_mat_free(&m);
    return st;
}

/* RMSNorm weights: 1 + small deterministic ripple. */
static mpoc_status add_norm(mpoc_writer *w, const mpoc_llama_shape *s, const char *name,
                            uint64_t stream)
{
    float *v = mpoc_alloc_array(s->dim, sizeof(float));
    if (!v)
        return MPOC_E_NOMEM;
    uint64_t x = s->seed * 0x9e3779b97f4a7c15ull + stream * 0xbf58476d1ce4e5b9ull + 1;
    for (size_t i = 0; i < s->dim; i++) {
        x ^= x >> 31;
        x *= 0x94d049bb133111ebull;
        x ^= x >> 29;
        double u = (double)(x >> 11) / 9007199254740992.0; /* [0, 1) */
        v[i] = (float)(0.8 + 0.4 * u);
    }
    uint64_t shape[1] = {s->dim};
    mpoc_status st = mpoc_writer_add_f32(w, name, s->dtype, shape, 1, v);
    free(v);
    return st;
}

static mpoc_status add_layer(mpoc_writer *w, const mpoc_llama_shape *s, size_t l)
{
    static const char *const names[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                        "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
                                        "mlp.down_proj"};
    size_t kv = s->dim / s->heads * s->kv_heads;
    size_t rows[] = {s->dim, kv, kv, s->dim, s->hidden, s->hidden, s->dim};
    size_t cols[] = {s->dim, s->dim, s->dim, s->dim, s->dim, s->dim, s->hidden};
    double decay[] = {0.7, 0.7, 0.4, 0.5, 0.5, 0.4, 0.5};
    char name[128];
    snprintf(name, sizeof name, "model.layers.%zu.input_layernorm.weight", l);
    MPOC_TRY(add_norm(w, s, name, 100 * l + 90));
    for (size_t i = 0; i < 7; i++) {
        snprintf(name, sizeof name, "model.layers.%zu.%s.weight", l, names[i]);
        MPOC_TRY(add_matrix(w, s, name, rows[i], cols[i], 100 * l + i + 1, decay[i]));
    }
    snprintf(name, sizeof name, "model.layers.%zu.post_attention_layernorm.weight", l);
    return add_norm(w, s, name, 100 * l + 91);
}

static mpoc_status write_config(const mpoc_llama_shape *s, const char *dir,
                                const mpoc_write_policy *policy)
{
    char text[1024], path[4200];
    const char *dt = s->dtype == MPOC_DTYPE_F32 ? "float32"
                     : s->dtype == MPOC_DTYPE_F16 ? "float16" : "bfloat16";
    int n = snprintf(text, sizeof text,
                     "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n"
                     "  \"hidden_size\": %zu,\n  \"intermediate_size\": %zu,\n"
                     "  \"num_hidden_layers\": %zu,\n  \"num_attention_heads\": %zu,\n"
                     "  \"num_key_value_heads\": %zu,\n  \"vocab_size\": %zu,\n"
                     "  \"max_position_embeddings\": 512,\n  \"rms_norm_eps\": 1e-05,\n"
                     "  \"rope_theta\": 10000.0,\n  \"tie_word_embeddings\": true,\n"
                     "  \"bos_token_id\": 1,\n  \"eos_token_id\": 2,\n  \"torch_dtype\": \"%s\"\n}\n",
                     s->dim, s->hidden, s->layers, s->heads, s->kv_heads, s->vocab, dt);
    if (strlen(dir) > 4000)
        MPOC_FAIL(MPOC_E_INVAL, "synth model: folder name too long");
    snprintf(path, sizeof path, "%s/config.json", dir);
    mpoc_outfile f;
    MPOC_TRY(mpoc_out_open(path, policy, &f));
    mpoc_status st = mpoc_out_write(&f, text, (size_t)n);
    if (st == MPOC_OK)
        return mpoc_out_commit(&f);
    mpoc_out_abort(&f);
    return st;
}

mpoc_status mpoc_synth_llama(const mpoc_llama_shape *s, const char *dir,
                             const mpoc_write_policy *policy)
{
    MPOC_TRY(check_shape(s));
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        MPOC_FAIL(MPOC_E_IO, "%s: cannot create the folder: %s", dir, strerror(errno));
    if (strlen(dir) > 4000)
        MPOC_FAIL(MPOC_E_INVAL, "synth model: folder name too long");
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    mpoc_writer_options wo = mpoc_writer_options_default();
    if (policy)
        wo.policy = *policy;
    mpoc_writer *w;
    MPOC_TRY(mpoc_writer_create(path, &wo, &w));
    mpoc_status st = mpoc_writer_set_meta_string(w, "format", "pt");
    if (st == MPOC_OK)
        st = add_matrix(w, s, "model.embed_tokens.weight", s->vocab, s->dim, 0, 0.3);
    for (size_t l = 0; st == MPOC_OK && l < s->layers; l++)
        st = add_layer(w, s, l);
    if (st == MPOC_OK)
        st = add_norm(w, s, "model.norm.weight", 99);
    if (st != MPOC_OK) {
        mpoc_writer_abort(w);
        return st;
    }
    MPOC_TRY(mpoc_writer_commit(w));
    return write_config(s, dir, policy);
}
