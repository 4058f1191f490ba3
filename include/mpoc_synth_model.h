/* mpoc_synth_model.h: a deterministic, LLaMA-shaped model with trained-like
 * weight statistics (MPOC_SPECTRUM_LLM: power-law spectra, Student-t noise,
 * outlier columns), written as a Hugging Face folder (model.safetensors +
 * config.json) for the demo, the tests and the benchmarks. */
#ifndef MPOC_SYNTH_MODEL_H
#define MPOC_SYNTH_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "mpoc_dtype.h"
#include "mpoc_io.h"
#include "mpoc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mpoc_llama_shape {
    size_t dim;       /* hidden size (heads × head_dim) */
    size_t hidden;    /* MLP intermediate size */
    size_t layers;
    size_t heads;     /* attention heads (dim % heads == 0) */
    size_t kv_heads;  /* key/value heads (heads % kv_heads == 0) */
    size_t vocab;
    uint64_t seed;
    mpoc_dtype dtype; /* F32, F16 or BF16 */
} mpoc_llama_shape;

/* stories260K's shape: dim 64, hidden 172, 5 layers, 8 heads, 4 kv heads,
 * vocabulary 512, seed 1, F32. */
mpoc_llama_shape mpoc_llama_shape_default(void);

/* Write `dir`/model.safetensors (HF LLaMA names, tied classifier: no
 * lm_head) and `dir`/config.json; the folder is created if missing. Both
 * files are written atomically under `policy` (NULL: no overwrite). Output
 * bytes depend only on the shape (for a fixed BLAS thread count). */
mpoc_status mpoc_synth_llama(const mpoc_llama_shape *shape, const char *dir,
                             const mpoc_write_policy *policy);

#ifdef __cplusplus
}
#endif
#endif
