/* dtype_ggml.c: ggml block formats: dequantizers and the Q8_0/Q4_0
 * quantizers.
 *
 * Each function follows the reference C of ggml/src/ggml-quants.c
 * (dequantize_row_*, quantize_row_q8_0_ref, quantize_row_q4_0_ref), with the
 * same float operations in the same order, so results are bit-identical.
 * Blocks are read at byte offsets (ggml-common.h struct layouts, asserted
 * packed there) rather than through structs, so `src` may be unaligned. All
 * multi-byte fields are little-endian. docs/dtypes.md has the formulas.
 * The per-element loops carry `omp simd` (elements are independent and each
 * is the same expression, so vectorized results are the scalar ones): 3–5×
 * the conversion rate for Q8_0/Q4_0, which the dense layers of a quantized
 * model pay at every apply (linear.c). */
#include "dtype_internal.h"

#include <math.h>
#include <string.h>

#include "bytes.h"
#include "internal.h"

static inline float half_at(const uint8_t *p)
{
    return mpoc_f16_to_f32(mpoc_load_le16(p));
}

/* ---- 32-element blocks ----------------------------------------------------
 * Byte j of the nibble array holds element j (low nibble) and element j+16
 * (high nibble). */

/* Q4_0, 18 bytes: f16 d | 16 bytes nibbles.  x = (q - 8)·d */
mpoc_status mpoc_q4_0_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t b = 0; b < n / MPOC_QK; b++) {
        const uint8_t *blk = src + b * MPOC_Q4_0_BYTES;
        const uint8_t *qs = blk + 2;
        const float d = half_at(blk);
        float *y = dst + b * MPOC_QK;
#pragma omp simd
        for (int j = 0; j < MPOC_QK / 2; j++) {
            y[j] = (float)((qs[j] & 0x0F) - 8) * d;
            y[j + MPOC_QK / 2] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
    return MPOC_OK;
}

/* Q4_1, 20 bytes: f16 d | f16 m | 16 bytes nibbles.  x = q·d + m */
mpoc_status mpoc_q4_1_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t b = 0; b < n / MPOC_QK; b++) {
        const uint8_t *blk = src + b * MPOC_Q4_1_BYTES;
        const uint8_t *qs = blk + 4;
        const float d = half_at(blk), m = half_at(blk + 2);
        float *y = dst + b * MPOC_QK;
#pragma omp simd
        for (int j = 0; j < MPOC_QK / 2; j++) {
            y[j] = (float)(qs[j] & 0x0F) * d + m;
            y[j + MPOC_QK / 2] = (float)(qs[j] >> 4) * d + m;
        }
    }
    return MPOC_OK;
}

/* The 5th bits of Q5_x: bit j of the 32-bit word qh belongs to element j. */
static inline int fifth_bit(uint32_t qh, int j)
{
    return (int)((qh >> j) & 1u) << 4;
}

/* Q5_0, 22 bytes: f16 d | u32 qh | 16 bytes nibbles.  x = (q - 16)·d */
mpoc_status mpoc_q5_0_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t b = 0; b < n / MPOC_QK; b++) {
        const uint8_t *blk = src + b * MPOC_Q5_0_BYTES;
        const uint32_t qh = mpoc_load_le32(blk + 2);
        const uint8_t *qs = blk + 6;
        const float d = half_at(blk);
        float *y = dst + b * MPOC_QK;
#pragma omp simd
        for (int j = 0; j < MPOC_QK / 2; j++) {
            const int q0 = ((qs[j] & 0x0F) | fifth_bit(qh, j)) - 16;
            const int q1 = ((qs[j] >> 4) | fifth_bit(qh, j + 16)) - 16;
            y[j] = (float)q0 * d;
            y[j + MPOC_QK / 2] = (float)q1 * d;
        }
    }
    return MPOC_OK;
}

/* Q5_1, 24 bytes: f16 d | f16 m | u32 qh | 16 bytes nibbles.  x = q·d + m */
mpoc_status mpoc_q5_1_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t b = 0; b < n / MPOC_QK; b++) {
        const uint8_t *blk = src + b * MPOC_Q5_1_BYTES;
        const uint32_t qh = mpoc_load_le32(blk + 4);
        const uint8_t *qs = blk + 8;
        const float d = half_at(blk), m = half_at(blk + 2);
        float *y = dst + b * MPOC_QK;
#pragma omp simd
        for (int j = 0; j < MPOC_QK / 2; j++) {
            const int q0 = (qs[j] & 0x0F) | fifth_bit(qh, j);
            const int q1 = (qs[j] >> 4) | fifth_bit(qh, j + 16);
            y[j] = (float)q0 * d + m;
            y[j + MPOC_QK / 2] = (float)q1 * d + m;
        }
    }
    return MPOC_OK;
}

/* Q8_0, 34 bytes: f16 d | 32 × int8.  x = q·d */
mpoc_status mpoc_q8_0_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t b = 0; b < n / MPOC_QK; b++) {
        const uint8_t *blk = src + b * MPOC_Q8_0_BYTES;
        const float d = half_at(blk);
        float *y = dst + b * MPOC_QK;
#pragma omp simd
        for (int j = 0; j < MPOC_QK; j++)
            y[j] = (float)(int8_t)blk[2 + j] * d;
    }
    return MPOC_OK;
}

/* ---- K-quants: 256-element super-blocks ------------------------------------
 * The 2-bit and 3-bit codes of Q2_K/Q3_K are stored as 2 halves of 128
 * elements; in each half, 32 bytes hold 4 "planes" (bit pairs 0-1, 2-3,
 * 4-5, 6-7): element 32·p + l of the half is (byte l >> 2p) & 3. */

/* Q2_K, 84 bytes: 16 × u8 scales (low nibble scale, high nibble min) |
 * 64 bytes codes | f16 d | f16 dmin.  16 sub-blocks of 16:
 * x = d·sc·q - dmin·mn */
mpoc_status mpoc_q2_k_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t b = 0; b < n / MPOC_QK_K; b++) {
        const uint8_t *blk = src + b * MPOC_Q2_K_BYTES;
        const uint8_t *scales = blk, *codes = blk + 16;
        const float d = half_at(blk + 80), dmin = half_at(blk + 82);
        float *y = dst + b * MPOC_QK_K;
        for (int e = 0; e < MPOC_QK_K; e++) {
            const int half = e / 128, plane = (e % 128) / 32, l = e % 32;
            const uint8_t sc = scales[e / 16];
            const float dl = d * (float)(sc & 0x0F), ml = dmin * (float)(sc >> 4);
            const int q = (codes[32 * half + l] >> (2 * plane)) & 3;
            y[e] = dl * (float)q - ml;
        }
    }
    return MPOC_OK;
}

/* Q3_K's 16 six-bit scales in 12 bytes: scale j has its low 4 bits in byte
 * j (j < 8, low nibble) or byte j-8 (high nibble), and its top 2 bits in
 * byte 8 + j%4 at bit 2·(j/4). Stored with a +32 offset. */
static void q3_k_unpack_scales(const uint8_t packed[12], int scales[16])
{
    for (int j = 0; j < 16; j++) {
        const int low = j < 8 ? (packed[j] & 0x0F) : (packed[j - 8] >> 4);
        const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        scales[j] = (low | (high << 4)) - 32;
    }
}

/* Q3_K, 110 bytes: 32 bytes hmask | 64 bytes low 2 bits | 12 bytes scales |
 * f16 d.  x = d·(sc-32)·(q - 4·!hbit), 16 sub-blocks of 16; the high bit of
 * element e is bit e/32 of hmask byte e%32. */
mpoc_status mpoc_q3_k_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t b = 0; b < n / MPOC_QK_K; b++) {
        const uint8_t *blk = src + b * MPOC_Q3_K_BYTES;
        const uint8_t *hmask = blk, *codes = blk + 32;
        const float d = half_at(blk + 108);
        int scales[16];
        q3_k_unpack_scales(blk + 96, scales);
        float *y = dst + b * MPOC_QK_K;
        for (int e = 0; e < MPOC_QK_K; e++) {
            const int half = e / 128, plane = (e % 128) / 32, l = e % 32;
            const float dl = d * (float)scales[e / 16];
            const int low = (codes[32 * half + l] >> (2 * plane)) & 3;
            const int high_set = (hmask[e % 32] >> (e / 32)) & 1;
            y[e] = dl * (float)(low - (high_set ? 0 : 4));
        }
    }
    return MPOC_OK;
}

/* Q4_K/Q5_K's 8 six-bit scales and mins in 12 bytes (ggml's
 * get_scale_min_k4): sub-blocks 0-3 keep theirs in the low 6 bits of bytes
 * j (scale) and j+4 (min); sub-blocks 4-7 keep the low 4 bits in byte j+4
 * (scale low nibble, min high nibble) and the top 2 bits in the spare top
 * bits of bytes j-4 (scale) and j (min). */
static void k4_scale_min(int j, const uint8_t packed[12], int *scale, int *min)
{
    if (j < 4) {
        *scale = packed[j] & 63;
        *min = packed[j + 4] & 63;
    } else {
        *scale = (packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4);
        *min = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
    }
}

/* Q4_K, 144 bytes: f16 d | f16 dmin | 12 bytes scales | 128 bytes nibbles.
 * 8 sub-blocks of 32: x = d·sc·q - dmin·mn. Sub-blocks 2c and 2c+1 share
 * the 32 bytes at 32c: low nibbles, then high nibbles. */
mpoc_status mpoc_q4_k_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t b = 0; b < n / MPOC_QK_K; b++) {
        const uint8_t *blk = src + b * MPOC_Q4_K_BYTES;
        const float d = half_at(blk), dmin = half_at(blk + 2);
        const uint8_t *scales = blk + 4, *qs = blk + 16;
        float *y = dst + b * MPOC_QK_K;
        for (int pair = 0; pair < 4; pair++) { /* sub-blocks 2·pair (low) and 2·pair+1 (high) */
            int sc0, mn0, sc1, mn1;
            k4_scale_min(2 * pair, scales, &sc0, &mn0);
            k4_scale_min(2 * pair + 1, scales, &sc1, &mn1);
            const float d0 = d * (float)sc0, m0 = dmin * (float)mn0;
            const float d1 = d * (float)sc1, m1 = dmin * (float)mn1;
            const uint8_t *q = qs + 32 * pair;
            float *y0 = y + 64 * pair, *y1 = y0 + 32;
#pragma omp simd
            for (int l = 0; l < 32; l++) {
                y0[l] = d0 * (float)(q[l] & 0x0F) - m0;
                y1[l] = d1 * (float)(q[l] >> 4) - m1;
            }
        }
    }
    return MPOC_OK;
}

/* Q5_K, 176 bytes: f16 d | f16 dmin | 12 bytes scales | 32 bytes qh |
 * 128 bytes nibbles. As Q4_K, plus a 5th bit: element l of sub-block s has
 * it in bit s of qh[l]. */
mpoc_status mpoc_q5_k_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t b = 0; b < n / MPOC_QK_K; b++) {
        const uint8_t *blk = src + b * MPOC_Q5_K_BYTES;
        const float d = half_at(blk), dmin = half_at(blk + 2);
        const uint8_t *scales = blk + 4, *qh = blk + 16, *qs = blk + 48;
        float *y = dst + b * MPOC_QK_K;
        for (int sub = 0; sub < 8; sub++) {
            int sc, mn;
            k4_scale_min(sub, scales, &sc, &mn);
            const float dl = d * (float)sc, ml = dmin * (float)mn;
            const uint8_t *q = qs + 32 * (sub / 2);
            const int shift = 4 * (sub % 2);
            for (int l = 0; l < 32; l++) {
                const int high = ((qh[l] >> sub) & 1) ? 16 : 0;
                y[32 * sub + l] = dl * (float)(((q[l] >> shift) & 0x0F) + high) - ml;
            }
        }
    }
    return MPOC_OK;
}

/* Q6_K, 210 bytes: 128 bytes ql | 64 bytes qh | 16 × int8 scales | f16 d.
 * x = d·sc·(q - 32), 16 sub-blocks of 16. In each half of 128 elements
 * (ql at 64·half, qh at 32·half), element 32·p + l, p = 0..3, takes its low
 * 4 bits from ql[l + 32·(p%2)] (low nibble for p < 2, else high) and its top
 * 2 bits from qh[l] at bit 2p. */
mpoc_status mpoc_q6_k_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t b = 0; b < n / MPOC_QK_K; b++) {
        const uint8_t *blk = src + b * MPOC_Q6_K_BYTES;
        const float d = half_at(blk + 208);
        const uint8_t *scales = blk + 192;
        float *y = dst + b * MPOC_QK_K;
        for (int e = 0; e < MPOC_QK_K; e++) {
            const int half = e / 128, p = (e % 128) / 32, l = e % 32;
            const uint8_t *ql = blk + 64 * half, *qh = blk + 128 + 32 * half;
            const int low = (ql[l + 32 * (p % 2)] >> (4 * (p / 2))) & 0x0F;
            const int high = (qh[l] >> (2 * p)) & 3;
            const int q = (low | (high << 4)) - 32;
            /* ggml evaluates d * sc * q left to right: keep that order. */
            y[e] = d * (float)(int8_t)scales[e / 16] * (float)q;
        }
    }
    return MPOC_OK;
}

/* ---- quantizers ------------------------------------------------------------ */

/* NaN/Inf never reach a quantizer (numerics.md 9): ggml's casts of them
 * are undefined behaviour. Checked over the whole row before writing. */
static mpoc_status check_finite(const float *src, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(src[i]))
            MPOC_FAIL(MPOC_E_NUMERIC, "%s: element %zu is not finite", what, i);
    }
    return MPOC_OK;
}

/* Store the block scale as f16; refuse one that overflows to Inf (ggml
 * would store it and every value of the block would read back as ±Inf/NaN). */
static mpoc_status store_scale(uint8_t *p, float d, const char *what, size_t block)
{
    const uint16_t h = mpoc_f32_to_f16(d);
    if ((h & 0x7FFFu) == 0x7C00u)
        MPOC_FAIL(MPOC_E_NUMERIC, "%s: block %zu scale %g overflows f16", what, block,
                  (double)d);
    mpoc_store_le16(p, h);
    return MPOC_OK;
}

/* quantize_row_q8_0_ref: d = amax/127 (the float d, not its f16 rounding,
 * gives the codes); q = roundf(x/d), half away from zero. */
static mpoc_status q8_0_block_ref(const float *x, uint8_t *out, size_t block)
{
    float amax = 0.0f;
    for (int j = 0; j < MPOC_QK; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    MPOC_TRY(store_scale(out, d, "Q8_0", block));
    for (int j = 0; j < MPOC_QK; j++)
        out[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    return MPOC_OK;
}

/* roundf (half away from zero) for |v| < 2^23 without a libm call, so the
 * loop vectorizes: add the largest float below 0.5 and truncate. Adding
 * exactly 0.5 would be wrong for 0.49999997 (the sum rounds up to 1). */
static inline int round_half_away(float v)
{
    return (int)(v + copysignf(0x1.fffffep-2f, v));
}

/* Same bytes as q8_0_block_ref, written so gcc vectorizes both loops. */
static mpoc_status q8_0_block_fast(const float *x, uint8_t *out, size_t block)
{
    float amax = 0.0f;
    for (int j = 0; j < MPOC_QK; j++) {
        const float a = fabsf(x[j]);
        amax = a > amax ? a : amax;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    MPOC_TRY(store_scale(out, d, "Q8_0", block));
    int8_t q[MPOC_QK];
    for (int j = 0; j < MPOC_QK; j++)
        q[j] = (int8_t)round_half_away(x[j] * id);
    memcpy(out + 2, q, sizeof q);
    return MPOC_OK;
}

/* quantize_row_q4_0_ref: mx = the first element of largest |x|, with its
 * sign; d = mx/-8 so mx itself maps to code 0; q = min(15, trunc(x/d + 8.5)).
 * An all-zero block gives mx = +0, d = -0 (stored 0x8000) and codes 8. */
static void q4_0_codes(const float *x, float id, uint8_t *qs)
{
    for (int j = 0; j < MPOC_QK / 2; j++) {
        const int q0 = (int)(x[j] * id + 8.5f);
        const int q1 = (int)(x[j + MPOC_QK / 2] * id + 8.5f);
        qs[j] = (uint8_t)((q0 < 15 ? q0 : 15) | ((q1 < 15 ? q1 : 15) << 4));
    }
}

static mpoc_status q4_0_block_ref(const float *x, uint8_t *out, size_t block)
{
    float amax = 0.0f, mx = 0.0f;
    for (int j = 0; j < MPOC_QK; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            mx = x[j];
        }
    }
    const float d = mx / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    MPOC_TRY(store_scale(out, d, "Q4_0", block));
    q4_0_codes(x, id, out + 2);
    return MPOC_OK;
}

/* Same bytes as q4_0_block_ref: a branch-free maximum first, then the first
 * element reaching it (the reference keeps the first on ties). */
static mpoc_status q4_0_block_fast(const float *x, uint8_t *out, size_t block)
{
    float amax = 0.0f;
    for (int j = 0; j < MPOC_QK; j++) {
        const float a = fabsf(x[j]);
        amax = a > amax ? a : amax;
    }
    float mx = 0.0f; /* all zero: +0 like the reference, even if x[0] is -0 */
    if (amax > 0.0f) {
        int j = 0;
        while (fabsf(x[j]) != amax)
            j++;
        mx = x[j];
    }
    const float d = mx / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    MPOC_TRY(store_scale(out, d, "Q4_0", block));
    q4_0_codes(x, id, out + 2);
    return MPOC_OK;
}

typedef mpoc_status (*block_quantizer)(const float *x, uint8_t *out, size_t block);

static mpoc_status quantize_rows(block_quantizer quantize_block, size_t block_bytes,
                                 const float *src, size_t n, uint8_t *dst, const char *what)
{
    MPOC_TRY(check_finite(src, n, what));
    for (size_t b = 0; b < n / MPOC_QK; b++)
        MPOC_TRY(quantize_block(src + b * MPOC_QK, dst + b * block_bytes, b));
    return MPOC_OK;
}

mpoc_status mpoc_q8_0_from_f32_ref(const float *src, size_t n, uint8_t *dst)
{
    return quantize_rows(q8_0_block_ref, MPOC_Q8_0_BYTES, src, n, dst, "Q8_0");
}

mpoc_status mpoc_q8_0_from_f32_fast(const float *src, size_t n, uint8_t *dst)
{
    return quantize_rows(q8_0_block_fast, MPOC_Q8_0_BYTES, src, n, dst, "Q8_0");
}

mpoc_status mpoc_q4_0_from_f32_ref(const float *src, size_t n, uint8_t *dst)
{
    return quantize_rows(q4_0_block_ref, MPOC_Q4_0_BYTES, src, n, dst, "Q4_0");
}

mpoc_status mpoc_q4_0_from_f32_fast(const float *src, size_t n, uint8_t *dst)
{
    return quantize_rows(q4_0_block_fast, MPOC_Q4_0_BYTES, src, n, dst, "Q4_0");
}
