/* dtype_internal.h: row converters behind mpoc_dtype_to_f32 / _from_f32.
 *
 * Shared by dtype.c (traits table, scalar types, half floats) and
 * dtype_ggml.c (ggml block formats). Tests include it to compare every fast
 * path with its scalar reference. Never installed.
 *
 * Row converters take raw storage bytes (any alignment) and a count of
 * elements that the dispatcher has already checked is a whole number of
 * blocks. `dst` is written completely on MPOC_OK and is unspecified on
 * error. */
#ifndef MPOC_DTYPE_INTERNAL_H
#define MPOC_DTYPE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mpoc_dtype.h"

/* Storage → float32 for n elements (n a multiple of the block size). */
typedef mpoc_status (*mpoc_to_f32_fn)(const uint8_t *src, size_t n, float *dst);
/* float32 → storage for n elements (n a multiple of the block size). */
typedef mpoc_status (*mpoc_from_f32_fn)(const float *src, size_t n, uint8_t *dst);

/* ---- ggml block sizes (ggml-common.h; bytes per block) -------------------- */
enum {
    MPOC_QK = 32,   /* elements per Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 block */
    MPOC_QK_K = 256 /* elements per K-quant super-block */
};
enum {
    MPOC_Q4_0_BYTES = 18,
    MPOC_Q4_1_BYTES = 20,
    MPOC_Q5_0_BYTES = 22,
    MPOC_Q5_1_BYTES = 24,
    MPOC_Q8_0_BYTES = 34,
    MPOC_Q2_K_BYTES = 84,
    MPOC_Q3_K_BYTES = 110,
    MPOC_Q4_K_BYTES = 144,
    MPOC_Q5_K_BYTES = 176,
    MPOC_Q6_K_BYTES = 210
};

/* ---- half floats (dtype.c) ------------------------------------------------ */
/* Scalar references: plain bit manipulation, one value at a time. NaN is
 * quieted the way x86 F16C does it (quiet bit set, payload truncated). */
float mpoc_f16_to_f32_ref(uint16_t h);
uint16_t mpoc_f32_to_f16_ref(float f);
/* Branch-free F16 → F32 (portable fast path; the compiler vectorizes it). */
void mpoc_f16_row_to_f32_portable(const uint8_t *src, size_t n, float *dst);
/* F16C path when the CPU has it, else the portable path. */
void mpoc_f16_row_to_f32_fast(const uint8_t *src, size_t n, float *dst);
/* True when mpoc_f16_row_to_f32_fast / the F16 writer use F16C. */
int mpoc_dtype_have_f16c(void);
/* F32 → F16 rows: reference (scalar) and fast (F16C when present). */
void mpoc_f32_row_to_f16_ref(const float *src, size_t n, uint8_t *dst);
void mpoc_f32_row_to_f16_fast(const float *src, size_t n, uint8_t *dst);
/* BF16 → F32 rows: reference (one value at a time) and fast (16 at a time). */
void mpoc_bf16_row_to_f32_ref(const uint8_t *src, size_t n, float *dst);
void mpoc_bf16_row_to_f32_fast(const uint8_t *src, size_t n, float *dst);

/* ---- ggml block formats (dtype_ggml.c) ----------------------------------- */
/* Dequantizers, following ggml-quants.c dequantize_row_* exactly. */
mpoc_status mpoc_q4_0_to_f32(const uint8_t *src, size_t n, float *dst);
mpoc_status mpoc_q4_1_to_f32(const uint8_t *src, size_t n, float *dst);
mpoc_status mpoc_q5_0_to_f32(const uint8_t *src, size_t n, float *dst);
mpoc_status mpoc_q5_1_to_f32(const uint8_t *src, size_t n, float *dst);
mpoc_status mpoc_q8_0_to_f32(const uint8_t *src, size_t n, float *dst);
mpoc_status mpoc_q2_k_to_f32(const uint8_t *src, size_t n, float *dst);
mpoc_status mpoc_q3_k_to_f32(const uint8_t *src, size_t n, float *dst);
mpoc_status mpoc_q4_k_to_f32(const uint8_t *src, size_t n, float *dst);
mpoc_status mpoc_q5_k_to_f32(const uint8_t *src, size_t n, float *dst);
mpoc_status mpoc_q6_k_to_f32(const uint8_t *src, size_t n, float *dst);

/* Quantizers, bit-exact with ggml's quantize_row_q8_0_ref / _q4_0_ref.
 * MPOC_E_NUMERIC when the input holds NaN/Inf (checked before anything is
 * written) or a block's scale overflows f16 (where ggml would store Inf). */
mpoc_status mpoc_q8_0_from_f32_ref(const float *src, size_t n, uint8_t *dst);
mpoc_status mpoc_q8_0_from_f32_fast(const float *src, size_t n, uint8_t *dst);
mpoc_status mpoc_q4_0_from_f32_ref(const float *src, size_t n, uint8_t *dst);
mpoc_status mpoc_q4_0_from_f32_fast(const float *src, size_t n, uint8_t *dst);

#endif
