/* mpoc_pipeline.h: whole-model compression, decompression and pruning.
 *
 * mpoc_compress reads a model (safetensors, sharded safetensors or GGUF),
 * selects weight matrices, factorizes each into an MPO (TT-SVD with the
 * truncation rules of mpoc_mpo_options), quantizes the cores with error
 * feedback, and writes a container of the input's own format
 * (docs/format.md). Everything else passes through byte for byte.
 *
 * Parallelism: OpenMP over tensors, BLAS on one thread, so the output bytes
 * do not depend on the thread count. Every finished tensor is checkpointed
 * in `<out>.partial/` (atomically); the output is assembled in input order
 * from the checkpoints and committed atomically, and the folder removed.
 * With `resume`, checkpoints of an interrupted run with the same input and
 * options are reused, giving byte-identical output. Memory: each thread
 * holds one tensor's working set (a few times the largest matrix); the
 * writer spools tensor data to disk. */
#ifndef MPOC_PIPELINE_H
#define MPOC_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpoc_dtype.h"
#include "mpoc_io.h"
#include "mpoc_model.h"
#include "mpoc_mpo.h"
#include "mpoc_quant.h"
#include "mpoc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What happened to one tensor. Strings are borrowed for the duration of the
 * progress callback (copy what must outlive it). */
typedef struct mpoc_tensor_record {
    const char *name;
    size_t index;                 /* position in the input */
    uint32_t n_dims;
    uint64_t shape[MPOC_MAX_DIMS];
    mpoc_dtype dtype;             /* input dtype */
    bool compressed;              /* false: passed through byte for byte */
    const char *note;             /* why it passed through / how it was handled, or NULL */
    size_t sites;                 /* compressed only: */
    size_t ranks[MPOC_MAX_SITES + 1];
    mpoc_quant_type core, centre;
    uint64_t bytes;               /* on disk in the output (cores + scales, or the copy) */
    uint64_t original_bytes;      /* in the input */
    uint64_t elems;               /* elements of the original tensor */
    double rel_error;             /* ‖W − Ŵ_q‖/‖W‖ of what is stored (0 for passthrough) */
    double rel_error_trunc;       /* of the unquantized factorization */
    double seconds;               /* wall time spent on it (0 when resumed) */
    bool resumed;                 /* taken from a checkpoint */
} mpoc_tensor_record;

typedef struct mpoc_summary {
    size_t tensors, compressed, passthrough, bad_passed;
    uint64_t bytes, original_bytes;           /* all tensor data, output vs input */
    uint64_t compressed_bytes, compressed_original_bytes, compressed_elems;
    uint64_t elems;                           /* all tensors */
    double rel_error;   /* size-weighted total over compressed tensors:
                           √(Σ n_i e_i² / Σ n_i), n_i = elements */
    double seconds;
    size_t resumed;
} mpoc_summary;

/* Called once per tensor as it completes (serialized; from any thread),
 * with the count done so far and the total. */
typedef void (*mpoc_progress_fn)(void *user, const mpoc_tensor_record *rec, size_t done,
                                 size_t total, uint64_t bytes_done, uint64_t bytes_total);

typedef struct mpoc_compress_options {
    mpoc_mpo_options mpo;         /* truncation, sites, SVD (see mpoc_mpo.h) */
    mpoc_quant_options quant;     /* core types, feedback */
    const char *const *include;   /* name globs (fnmatch) replacing the default rule */
    size_t n_include;
    const char *const *exclude;   /* name globs removed from the selection */
    size_t n_exclude;
    uint64_t min_size;            /* smallest matrix (elements) to compress */
    int threads;                  /* tensors in parallel (0: OpenMP default) */
    bool resume;                  /* reuse <out>.partial/ checkpoints */
    bool skip_bad;                /* pass non-finite tensors through instead of failing */
    mpoc_write_policy policy;     /* overwrite; inputs are added automatically */
    mpoc_progress_fn progress;
    void *progress_user;
    size_t stop_after;            /* test hook: stop with MPOC_E_IO after this many new
                                     checkpoints (0 = off), as if killed */
} mpoc_compress_options;

/* Defaults: eps 0.1 (no χ, τ), automatic sites, AUTO SVD with seed 1,
 * cores Q8_0 with an F16 centre and feedback, default selection, min_size
 * 1024 elements, OpenMP default threads. */
mpoc_compress_options mpoc_compress_options_default(void);

/* The default selection rule: a 2-D weight of an attention or MLP
 * projection, by Hugging Face (q_proj … down_proj) or GGUF (attn_q …
 * ffn_down) naming. */
bool mpoc_pipeline_default_select(const char *name);

/* Compress model `in` into container `out` (same format family). `summary`
 * may be NULL. */
mpoc_status mpoc_compress(const char *in, const char *out, const mpoc_compress_options *opt,
                          mpoc_summary *summary);

typedef struct mpoc_decompress_options {
    mpoc_dtype dtype;             /* MPOC_DTYPE_COUNT_ = each tensor's original dtype
                                     (F32 when that cannot be written) */
    mpoc_write_policy policy;
    mpoc_progress_fn progress;
    void *progress_user;
} mpoc_decompress_options;

mpoc_decompress_options mpoc_decompress_options_default(void);

/* Write the dense model of container `in` to `out`: original names, shapes,
 * order and metadata, same format family. */
mpoc_status mpoc_decompress(const char *in, const char *out, const mpoc_decompress_options *opt,
                            mpoc_summary *summary);

typedef struct mpoc_prune_options {
    mpoc_mpo_options mpo;         /* rounding rules (χ, ε, τ) */
    mpoc_quant_options quant;     /* re-quantization (default: as recorded) */
    bool keep_types;              /* true (default): each tensor keeps its recorded types */
    mpoc_write_policy policy;
    mpoc_progress_fn progress;
    void *progress_user;
} mpoc_prune_options;

mpoc_prune_options mpoc_prune_options_default(void);

/* Prune container `in` into `out` without the original model: dequantize
 * the cores, round (TT-rounding with opt->mpo), re-quantize with feedback
 * against the container's reconstruction. Records' rel_error is measured
 * against that reconstruction. */
mpoc_status mpoc_prune(const char *in, const char *out, const mpoc_prune_options *opt,
                       mpoc_summary *summary);

#ifdef __cplusplus
}
#endif
#endif
