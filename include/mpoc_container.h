/* mpoc_container.h: quantized MPOs as named tensors and metadata of an
 * ordinary safetensors or GGUF file (docs/format.md is the specification).
 *
 * Encoding turns one quantized MPO into a list of tensors (cores, and in
 * safetensors the scales of block-quantized cores) plus one metadata entry
 * `mpo.<name>` (a JSON object); the pipeline hands them to a mpoc_writer.
 * Decoding indexes an opened model: it validates every `mpo.` entry (every
 * listed core present with the stated dtype and shape, sizes checked, no
 * orphaned core) before anything is read, and logs the tensor and the reason
 * when something is wrong (MPOC_E_FORMAT). */
#ifndef MPOC_CONTAINER_H
#define MPOC_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpoc_model.h"
#include "mpoc_mpo.h"
#include "mpoc_quant.h"
#include "mpoc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The value of `mpoc.format_version` this library writes and reads. */
#define MPOC_CONTAINER_VERSION "1"

/* One tensor to write. Owns name and data. */
typedef struct mpoc_enc_tensor {
    char *name;
    mpoc_dtype dtype;
    uint32_t n_dims;      /* 1..4 */
    uint64_t shape[4];    /* row-major, outermost first */
    uint8_t *data;        /* nbytes bytes */
    uint64_t nbytes;
} mpoc_enc_tensor;

/* The encoded form of one compressed tensor. Owns everything. */
typedef struct mpoc_encoded {
    char *meta_key;       /* "mpo.<name>" */
    char *meta_value;     /* JSON object text */
    size_t n;             /* tensors */
    mpoc_enc_tensor *t;   /* [n], in write order: core 0 (, scale 0), core 1, ... */
    uint64_t bytes;       /* Σ nbytes: the bytes on disk */
} mpoc_encoded;

void mpoc_encoded_free(mpoc_encoded *e);

/* Facts recorded beside the cores. */
typedef struct mpoc_encode_info {
    const char *name;          /* original tensor name (borrowed) */
    mpoc_dtype orig_dtype;
    uint32_t orig_n_dims;
    const uint64_t *orig_shape;/* [orig_n_dims] (borrowed) */
    double rel_error_trunc;    /* of the unquantized factorization (NaN: unknown) */
    double rel_error;          /* of what is stored (NaN: unknown) */
    double rel_error_base;     /* pruned containers: the total error recorded in the
                                  container that was pruned (NaN: not pruned) */
    mpoc_quant_options quant;  /* types and whether feedback was used */
} mpoc_encode_info;

/* Encode q for a container of `format` (SAFETENSORS[_SHARDED] or GGUF). */
mpoc_status mpoc_container_encode(mpoc_format format, const mpoc_encode_info *info,
                                  const mpoc_qmpo *q, mpoc_encoded *out);

/* Add e's tensors and its metadata entry to w. */
mpoc_status mpoc_container_emit(mpoc_writer *w, const mpoc_encoded *e);

/* Write the container-wide metadata (format version, core layout, library
 * version) into w. */
mpoc_status mpoc_container_emit_header(mpoc_writer *w);

/* True for metadata keys the container adds (`mpo.*`, `mpoc.*`): dropped
 * when a container is decompressed. */
bool mpoc_container_is_own_key(const char *key);

/* ---- decoding ---- */

/* One compressed tensor of an opened container. Borrowed from the container
 * (and its model). */
typedef struct mpoc_container_entry {
    const char *name;            /* original tensor name */
    mpoc_dtype orig_dtype;
    uint32_t orig_n_dims;
    uint64_t orig_shape[MPOC_MAX_DIMS];
    mpoc_shape shape;            /* sites, dims, rows × cols, padding */
    size_t ranks[MPOC_MAX_SITES + 1];
    mpoc_quant_type types[MPOC_MAX_SITES];
    const mpoc_tensor *cores[MPOC_MAX_SITES];
    const mpoc_tensor *scales[MPOC_MAX_SITES]; /* safetensors block types, else NULL */
    uint64_t bytes;              /* on-disk bytes of cores and scales */
    size_t first_tensor;         /* model index of its first tensor */
    double rel_error, rel_error_trunc; /* as recorded (NaN if absent) */
    mpoc_quant_options quant;    /* as recorded */
} mpoc_container_entry;

typedef struct mpoc_container mpoc_container;

/* True when m carries `mpoc.format_version`. */
bool mpoc_container_detect(const mpoc_model *m);

/* Index and validate the container m (borrowed; must outlive the result).
 * MPOC_E_NOTFOUND when m is not a container, MPOC_E_UNSUPPORTED for another
 * format version, MPOC_E_FORMAT with the tensor and reason otherwise. */
mpoc_status mpoc_container_open(const mpoc_model *m, mpoc_container **out);
void mpoc_container_close(mpoc_container *c);

size_t mpoc_container_count(const mpoc_container *c);
const mpoc_container_entry *mpoc_container_entry_at(const mpoc_container *c, size_t i);
/* For model tensor i: the entry it belongs to (core or scale), or -1 when it
 * is a passthrough tensor. */
long mpoc_container_owner(const mpoc_container *c, size_t tensor_index);

/* Read entry i's stored cores into a new quantized MPO. */
mpoc_status mpoc_container_load(const mpoc_container *c, size_t i, mpoc_qmpo *out);

#ifdef __cplusplus
}
#endif
#endif
