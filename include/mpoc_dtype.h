/* mpoc_dtype.h: storage dtypes of model files, one traits table, and the
 * converters between them and float32.
 *
 * The enum is append-only: numbers never change meaning. It covers every
 * safetensors dtype and every ggml type id we know by name (including those
 * we cannot convert, so they can be named in messages and passed through).
 * Block-quantized types store `block_elems` elements in `block_bytes` bytes;
 * scalar types have block_elems == 1. */
#ifndef MPOC_DTYPE_H
#define MPOC_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpoc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mpoc_dtype {
    MPOC_DTYPE_F32 = 0,
    MPOC_DTYPE_F16 = 1,
    MPOC_DTYPE_BF16 = 2,
    MPOC_DTYPE_F64 = 3,
    MPOC_DTYPE_I8 = 4,
    MPOC_DTYPE_U8 = 5,
    MPOC_DTYPE_I16 = 6,
    MPOC_DTYPE_U16 = 7,
    MPOC_DTYPE_I32 = 8,
    MPOC_DTYPE_U32 = 9,
    MPOC_DTYPE_I64 = 10,
    MPOC_DTYPE_U64 = 11,
    MPOC_DTYPE_BOOL = 12,
    MPOC_DTYPE_F8_E5M2 = 13,
    MPOC_DTYPE_F8_E4M3 = 14,
    MPOC_DTYPE_F8_E8M0 = 15,
    MPOC_DTYPE_F8_E4M3FNUZ = 16,
    MPOC_DTYPE_F8_E5M2FNUZ = 17,
    MPOC_DTYPE_F4 = 18,
    MPOC_DTYPE_F6_E2M3 = 19,
    MPOC_DTYPE_F6_E3M2 = 20,
    MPOC_DTYPE_C64 = 21,
    /* ggml block types */
    MPOC_DTYPE_Q4_0 = 22,
    MPOC_DTYPE_Q4_1 = 23,
    MPOC_DTYPE_Q5_0 = 24,
    MPOC_DTYPE_Q5_1 = 25,
    MPOC_DTYPE_Q8_0 = 26,
    MPOC_DTYPE_Q8_1 = 27,
    MPOC_DTYPE_Q2_K = 28,
    MPOC_DTYPE_Q3_K = 29,
    MPOC_DTYPE_Q4_K = 30,
    MPOC_DTYPE_Q5_K = 31,
    MPOC_DTYPE_Q6_K = 32,
    MPOC_DTYPE_Q8_K = 33,
    MPOC_DTYPE_IQ2_XXS = 34,
    MPOC_DTYPE_IQ2_XS = 35,
    MPOC_DTYPE_IQ3_XXS = 36,
    MPOC_DTYPE_IQ1_S = 37,
    MPOC_DTYPE_IQ4_NL = 38,
    MPOC_DTYPE_IQ3_S = 39,
    MPOC_DTYPE_IQ2_S = 40,
    MPOC_DTYPE_IQ4_XS = 41,
    MPOC_DTYPE_IQ1_M = 42,
    MPOC_DTYPE_TQ1_0 = 43,
    MPOC_DTYPE_TQ2_0 = 44,
    MPOC_DTYPE_MXFP4 = 45,
    MPOC_DTYPE_COUNT_ /* not a dtype; new values go above this line */
} mpoc_dtype;

typedef struct mpoc_dtype_traits {
    const char *name;      /* canonical name: "F32", "BF16", "Q4_K", ... */
    const char *st_name;   /* safetensors dtype string, or NULL if none */
    int32_t ggml_type;     /* ggml type id, or -1 if none */
    uint32_t block_elems;  /* elements per block (1 for scalar types) */
    uint32_t block_bits;   /* bits per block (sub-byte safetensors types: < 8) */
    bool can_read;         /* mpoc_dtype_to_f32 supports it */
    bool can_write;        /* mpoc_dtype_from_f32 supports it */
} mpoc_dtype_traits;

/* Traits of t, or NULL when t is not a valid mpoc_dtype. */
const mpoc_dtype_traits *mpoc_dtype_info(mpoc_dtype t);
/* Name of t ("?" when invalid); never NULL. */
const char *mpoc_dtype_name(mpoc_dtype t);

/* Look-ups. `len` is the byte length of s (not NUL-terminated).
 * MPOC_E_NOTFOUND when no dtype has that name or id. */
mpoc_status mpoc_dtype_from_st_name(const char *s, size_t len, mpoc_dtype *out);
mpoc_status mpoc_dtype_from_ggml(uint32_t ggml_type, mpoc_dtype *out);
/* Case-insensitive canonical name ("f16", "q8_0", ...). */
mpoc_status mpoc_dtype_from_name(const char *s, mpoc_dtype *out);

/* Bytes used by n_elems elements of t, checked: MPOC_E_SHAPE when n_elems
 * is not a multiple of the block size (or the bits are not whole bytes),
 * MPOC_E_OVERFLOW when the size does not fit in 64 bits. */
mpoc_status mpoc_dtype_nbytes(mpoc_dtype t, uint64_t n_elems, uint64_t *bytes);

/* Convert n elements (a multiple of the block size) from storage to float32.
 * `src` holds exactly the bytes mpoc_dtype_nbytes gives; it need not be
 * aligned. MPOC_E_UNSUPPORTED for types without a reader. */
mpoc_status mpoc_dtype_to_f32(mpoc_dtype t, const void *src, size_t n, float *dst);
/* Convert n float32 values to storage type t (F32, F16, BF16, F64, Q8_0,
 * Q4_0 at least), with ggml's reference quantizers for block types and
 * round-to-nearest-even for F16/BF16 (NaN stays NaN). */
mpoc_status mpoc_dtype_from_f32(mpoc_dtype t, const float *src, size_t n, void *dst);

/* Scalar half-precision conversions (round to nearest even). */
float mpoc_f16_to_f32(uint16_t h);
uint16_t mpoc_f32_to_f16(float f);
float mpoc_bf16_to_f32(uint16_t h);
uint16_t mpoc_f32_to_bf16(float f);

#ifdef __cplusplus
}
#endif
#endif
