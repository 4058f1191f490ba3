/* dtype.c: the dtype traits table, look-ups and sizes, and the converters of
 * the scalar types (IEEE floats, integers, BOOL, FP8).
 *
 * The table below is the one dispatch point: every other function looks a
 * dtype up here and never switches on it. ggml block formats live in
 * dtype_ggml.c; docs/dtypes.md lists every formula and its source. */
#include "dtype_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "bytes.h"
#include "internal.h"
#include "util.h"

#if defined(__x86_64__) || defined(__i386__)
#define MPOC_X86 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define MPOC_X86 0
#endif

/* ---- bit casts and native loads --------------------------------------------
 * Storage is little-endian. The hot loops load through memcpy (one
 * instruction, any alignment) and swap only on a big-endian host. */

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define MPOC_BIG_ENDIAN 1
#else
#define MPOC_BIG_ENDIAN 0
#endif

static inline uint16_t load_u16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return MPOC_BIG_ENDIAN ? __builtin_bswap16(v) : v;
}

static inline void store_u16(uint8_t *p, uint16_t v)
{
    v = MPOC_BIG_ENDIAN ? __builtin_bswap16(v) : v;
    memcpy(p, &v, sizeof v);
}

/* ---- F16 ------------------------------------------------------------------ */

float mpoc_f16_to_f32_ref(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu;
    const uint32_t man = h & 0x3FFu;
    if (exp == 0x1F) /* Inf, or NaN made quiet as F16C does */
        return f32_from_bits(sign | 0x7F800000u | (man << 13) | (man ? 0x00400000u : 0));
    if (exp != 0) /* normal: rebias 15 → 127 */
        return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
    /* zero or subnormal: man · 2^-24, exact in float */
    const float mag = (float)man * 0x1.0p-24f;
    return sign ? -mag : mag;
}

float mpoc_f16_to_f32(uint16_t h)
{
    return mpoc_f16_to_f32_ref(h);
}

/* Round the low `shift` bits of m away, to nearest, ties to even. */
static inline uint32_t round_shift_rne(uint32_t m, unsigned shift)
{
    const uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    return q + (rem > half || (rem == half && (q & 1)));
}

uint16_t mpoc_f32_to_f16_ref(float f)
{
    const uint32_t x = f32_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t mag = x & 0x7FFFFFFFu;
    if (mag > 0x7F800000u) /* NaN: keep the top payload, set the quiet bit */
        return (uint16_t)(sign | 0x7E00u | ((mag >> 13) & 0x3FFu));
    if (mag >= 0x477FF000u) /* ≥ 65520 rounds to Inf (65520 is a tie, odd → up) */
        return (uint16_t)(sign | 0x7C00u);
    if (mag >= 0x38800000u) { /* f16 normal range, ≥ 2^-14 */
        /* Rounding the 13 dropped bits may carry into the exponent: correct. */
        const uint32_t r = round_shift_rne(mag, 13);
        return (uint16_t)(sign | (r - (112u << 10)));
    }
    if (mag <= 0x33000000u) /* ≤ 2^-25: rounds to zero (2^-25 ties to even 0) */
        return sign;
    /* f16 subnormal: count units of 2^-24. The significand (with its hidden
     * bit) times 2^(e-150) equals sig >> (126 - e) units, e in [102, 112]. */
    const uint32_t e = mag >> 23;
    const uint32_t sig = (mag & 0x7FFFFFu) | 0x800000u;
    return (uint16_t)(sign | round_shift_rne(sig, 126 - e));
}

uint16_t mpoc_f32_to_f16(float f)
{
    return mpoc_f32_to_f16_ref(f);
}

/* Branch-free F16 → F32 (Maratyszcza's FP16 method): normal, Inf and NaN
 * values by rebiasing the exponent with one multiply; subnormals by a magic
 * subtraction. Both run and a select keeps one, so the compiler vectorizes. */
static inline uint32_t f16_bits_to_f32_bits(uint16_t h)
{
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w; /* drop the sign */
    const float normal = f32_from_bits((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    const float subnormal = f32_from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
    const uint32_t is_subnormal = 0u - (uint32_t)(two_w < (1u << 27)); /* all ones or 0 */
    return sign | (f32_bits(subnormal) & is_subnormal) | (f32_bits(normal) & ~is_subnormal);
}

enum { CHUNK = 16 }; /* elements per vectorizable chunk */

void mpoc_f16_row_to_f32_portable(const uint8_t *src, size_t n, float *dst)
{
    size_t i = 0;
    for (; i + CHUNK <= n; i += CHUNK) {
        uint16_t h[CHUNK];
        uint32_t out[CHUNK];
        memcpy(h, src + 2 * i, sizeof h);
        for (int k = 0; k < CHUNK; k++)
            out[k] = f16_bits_to_f32_bits(MPOC_BIG_ENDIAN ? __builtin_bswap16(h[k]) : h[k]);
        memcpy(dst + i, out, sizeof out);
    }
    for (; i < n; i++)
        dst[i] = f32_from_bits(f16_bits_to_f32_bits(load_u16(src + 2 * i)));
}

#if MPOC_X86
/* Outputs at least this large are written with streaming (non-temporal)
 * stores: far past the last-level cache, an ordinary store first reads the
 * destination line from memory only to overwrite it, so a 2 → 4 byte
 * widening moves 10 bytes per element instead of 6. Smaller outputs stay
 * cached for the caller. */
#define STREAM_MIN_BYTES ((size_t)8 << 20)

static bool want_streaming(size_t n)
{
    return n >= STREAM_MIN_BYTES / sizeof(float);
}

/* Elements to convert one by one before dst + i is `align`-byte aligned. */
static size_t prologue_len(const float *dst, size_t n, size_t align)
{
    const size_t misalign = (uintptr_t)dst % align;
    const size_t len = misalign == 0 ? 0 : (align - misalign) / sizeof(float);
    return (misalign % sizeof(float) != 0 || len > n) ? n : len;
}

/* The F16C instructions need AVX registers; the attribute compiles just
 * these functions for them, and callers check the CPU first. */
__attribute__((target("avx,f16c"))) static void f16_row_to_f32_f16c(const uint8_t *src, size_t n,
                                                                     float *dst)
{
    size_t i = 0;
    if (want_streaming(n)) {
        for (const size_t head = prologue_len(dst, n, 32); i < head; i++)
            dst[i] = mpoc_f16_to_f32_ref(load_u16(src + 2 * i));
        for (; i + 8 <= n; i += 8) {
            const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i));
            _mm256_stream_ps(dst + i, _mm256_cvtph_ps(h));
        }
        _mm_sfence(); /* order the streamed lines before any later store */
    }
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++)
        dst[i] = mpoc_f16_to_f32_ref(load_u16(src + 2 * i));
}

__attribute__((target("avx,f16c"))) static void f32_row_to_f16_f16c(const float *src, size_t n,
                                                                     uint8_t *dst)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(void *)(dst + 2 * i), h);
    }
    for (; i < n; i++)
        store_u16(dst + 2 * i, mpoc_f32_to_f16_ref(src[i]));
}

/* CPUID leaf 1 says whether the CPU has AVX and F16C; XGETBV says whether
 * the OS saves the YMM registers (OSXSAVE first, or XGETBV would fault).
 * Raw CPUID rather than __builtin_cpu_supports("f16c"): clang 14 (the fuzz
 * build) does not know that feature name. */
static int detect_f16c(void)
{
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return 0;
    const unsigned need = bit_OSXSAVE | bit_AVX | bit_F16C;
    if ((ecx & need) != need)
        return 0;
    unsigned xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    (void)xcr0_hi;
    return (xcr0_lo & 0x6u) == 0x6u; /* XMM and YMM state enabled */
}

int mpoc_dtype_have_f16c(void)
{
    /* 0 = not yet known, 1 = no, 2 = yes. Relaxed is enough: every thread
     * computes the same answer. */
    static _Atomic int state;
    int s = atomic_load_explicit(&state, memory_order_relaxed);
    if (s == 0) {
        s = detect_f16c() ? 2 : 1;
        atomic_store_explicit(&state, s, memory_order_relaxed);
    }
    return s == 2;
}
#else
int mpoc_dtype_have_f16c(void)
{
    return 0;
}
#endif

void mpoc_f16_row_to_f32_fast(const uint8_t *src, size_t n, float *dst)
{
#if MPOC_X86
    if (mpoc_dtype_have_f16c()) {
        f16_row_to_f32_f16c(src, n, dst);
        return;
    }
#endif
    mpoc_f16_row_to_f32_portable(src, n, dst);
}

void mpoc_f32_row_to_f16_ref(const float *src, size_t n, uint8_t *dst)
{
    for (size_t i = 0; i < n; i++)
        store_u16(dst + 2 * i, mpoc_f32_to_f16_ref(src[i]));
}

void mpoc_f32_row_to_f16_fast(const float *src, size_t n, uint8_t *dst)
{
#if MPOC_X86
    if (mpoc_dtype_have_f16c()) {
        f32_row_to_f16_f16c(src, n, dst);
        return;
    }
#endif
    mpoc_f32_row_to_f16_ref(src, n, dst);
}

/* ---- BF16: the top half of an f32 ------------------------------------------ */

float mpoc_bf16_to_f32(uint16_t h)
{
    return f32_from_bits((uint32_t)h << 16);
}

/* ggml_compute_fp32_to_bf16 (ggml-impl.h): NaN keeps its top bits and gets
 * the quiet bit; everything else rounds to nearest even, subnormals kept. */
uint16_t mpoc_f32_to_bf16(float f)
{
    const uint32_t x = f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

void mpoc_bf16_row_to_f32_ref(const uint8_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = mpoc_bf16_to_f32(mpoc_load_le16(src + 2 * i));
}

#if defined(__SSE2__)
/* SSE2 is part of x86-64: interleaving zero halves below the BF16 halves
 * is the shift, 8 values per instruction pair. */
static inline void bf16x8_to_f32(const uint8_t *src, float *dst, bool stream)
{
    const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)src);
    const __m128i lo = _mm_unpacklo_epi16(_mm_setzero_si128(), h);
    const __m128i hi = _mm_unpackhi_epi16(_mm_setzero_si128(), h);
    __m128i *out = (__m128i *)(void *)dst;
    if (stream) {
        _mm_stream_si128(out, lo);
        _mm_stream_si128(out + 1, hi);
    } else {
        _mm_storeu_si128(out, lo);
        _mm_storeu_si128(out + 1, hi);
    }
}

void mpoc_bf16_row_to_f32_fast(const uint8_t *src, size_t n, float *dst)
{
    size_t i = 0;
    if (want_streaming(n)) {
        for (const size_t head = prologue_len(dst, n, 16); i < head; i++)
            dst[i] = mpoc_bf16_to_f32(load_u16(src + 2 * i));
        for (; i + 8 <= n; i += 8)
            bf16x8_to_f32(src + 2 * i, dst + i, true);
        _mm_sfence();
    }
    for (; i + 8 <= n; i += 8)
        bf16x8_to_f32(src + 2 * i, dst + i, false);
    for (; i < n; i++)
        dst[i] = mpoc_bf16_to_f32(load_u16(src + 2 * i));
}
#else
/* Elsewhere: fixed-size chunks the compiler vectorizes. */
void mpoc_bf16_row_to_f32_fast(const uint8_t *src, size_t n, float *dst)
{
    size_t i = 0;
    for (; i + CHUNK <= n; i += CHUNK) {
        uint16_t h[CHUNK];
        uint32_t out[CHUNK];
        memcpy(h, src + 2 * i, sizeof h);
        for (int k = 0; k < CHUNK; k++)
            out[k] = (uint32_t)(MPOC_BIG_ENDIAN ? __builtin_bswap16(h[k]) : h[k]) << 16;
        memcpy(dst + i, out, sizeof out);
    }
    for (; i < n; i++)
        dst[i] = mpoc_bf16_to_f32(load_u16(src + 2 * i));
}
#endif

/* ---- row converters of the IEEE types -------------------------------------- */

static mpoc_status f32_to_f32(const uint8_t *src, size_t n, float *dst)
{
    if (MPOC_BIG_ENDIAN) {
        for (size_t i = 0; i < n; i++)
            dst[i] = f32_from_bits(mpoc_load_le32(src + 4 * i));
    } else {
        memcpy(dst, src, n * sizeof(float));
    }
    return MPOC_OK;
}

static mpoc_status f32_from_f32(const float *src, size_t n, uint8_t *dst)
{
    for (size_t i = 0; i < n; i++)
        mpoc_store_le32(dst + 4 * i, f32_bits(src[i]));
    return MPOC_OK;
}

static mpoc_status f16_to_f32(const uint8_t *src, size_t n, float *dst)
{
    mpoc_f16_row_to_f32_fast(src, n, dst);
    return MPOC_OK;
}

static mpoc_status f16_from_f32(const float *src, size_t n, uint8_t *dst)
{
    mpoc_f32_row_to_f16_fast(src, n, dst);
    return MPOC_OK;
}

static mpoc_status bf16_to_f32(const uint8_t *src, size_t n, float *dst)
{
    mpoc_bf16_row_to_f32_fast(src, n, dst);
    return MPOC_OK;
}

static mpoc_status bf16_from_f32(const float *src, size_t n, uint8_t *dst)
{
    for (size_t i = 0; i < n; i++)
        store_u16(dst + 2 * i, mpoc_f32_to_bf16(src[i]));
    return MPOC_OK;
}

static mpoc_status f64_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++) {
        const uint64_t u = mpoc_load_le64(src + 8 * i);
        double v;
        memcpy(&v, &u, sizeof v);
        dst[i] = (float)v; /* round to nearest even; out of range → ±Inf */
    }
    return MPOC_OK;
}

static mpoc_status f64_from_f32(const float *src, size_t n, uint8_t *dst)
{
    for (size_t i = 0; i < n; i++) {
        const double v = (double)src[i]; /* exact */
        uint64_t u;
        memcpy(&u, &v, sizeof u);
        mpoc_store_le64(dst + 8 * i, u);
    }
    return MPOC_OK;
}

/* ---- integers and BOOL (values rounded to nearest float) ------------------ */

static mpoc_status i8_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)(int8_t)src[i];
    return MPOC_OK;
}

static mpoc_status u8_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)src[i];
    return MPOC_OK;
}

static mpoc_status i16_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)(int16_t)mpoc_load_le16(src + 2 * i);
    return MPOC_OK;
}

static mpoc_status u16_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)mpoc_load_le16(src + 2 * i);
    return MPOC_OK;
}

static mpoc_status i32_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)(int32_t)mpoc_load_le32(src + 4 * i);
    return MPOC_OK;
}

static mpoc_status u32_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)mpoc_load_le32(src + 4 * i);
    return MPOC_OK;
}

static mpoc_status i64_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)(int64_t)mpoc_load_le64(src + 8 * i);
    return MPOC_OK;
}

static mpoc_status u64_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)mpoc_load_le64(src + 8 * i);
    return MPOC_OK;
}

/* BOOL bytes other than 0 and 1 are malformed (formats.md 3.5), not "true". */
static mpoc_status bool_to_f32(const uint8_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++) {
        if (src[i] > 1)
            MPOC_FAIL(MPOC_E_FORMAT, "BOOL element %zu has byte 0x%02x (only 0 and 1 are valid)",
                      i, src[i]);
        dst[i] = src[i] ? 1.0f : 0.0f;
    }
    return MPOC_OK;
}

/* ---- FP8 and E8M0 ----------------------------------------------------------
 * Each 8-bit format is decoded once into a 256-entry table on the stack
 * (cheap, thread-safe), then the row is a table look-up. */

static float quiet_nan(unsigned negative)
{
    return f32_from_bits((negative ? 0x80000000u : 0) | 0x7FC00000u);
}

/* (-1)^s · 2^(e-bias) · 1.m for e > 0, (-1)^s · 2^(1-bias) · 0.m for e == 0,
 * with `mbits` mantissa bits. Exact: every such value is a float. */
static float minifloat(unsigned code, int mbits, int bias)
{
    const unsigned sign = code >> 7;
    const unsigned e = (code & 0x7Fu) >> mbits;
    const unsigned m = code & ((1u << mbits) - 1);
    const unsigned sig = e ? m | (1u << mbits) : m;
    const int exp = (e ? (int)e : 1) - bias - mbits;
    const float v = ldexpf((float)sig, exp);
    return sign ? -v : v;
}

/* OCP FP8 E4M3 ("E4M3FN"): bias 7, no Inf, S.1111.111 is NaN, max 448. */
static float e4m3_value(unsigned c)
{
    return (c & 0x7Fu) == 0x7Fu ? quiet_nan(c >> 7) : minifloat(c, 3, 7);
}

/* OCP FP8 E5M2: the top byte of an IEEE half (Inf and NaN as in F16). */
static float e5m2_value(unsigned c)
{
    return mpoc_f16_to_f32_ref((uint16_t)(c << 8));
}

/* FNUZ variants (AMD/Graphcore): bias one larger, no Inf, no -0; the only
 * NaN is 0x80 and the all-ones exponent holds ordinary numbers. */
static float e4m3fnuz_value(unsigned c)
{
    return c == 0x80u ? quiet_nan(0) : minifloat(c, 3, 8);
}

static float e5m2fnuz_value(unsigned c)
{
    return c == 0x80u ? quiet_nan(0) : minifloat(c, 2, 16);
}

/* OCP MX E8M0 scale: 2^(c-127), 0xFF is NaN; no sign, no zero. */
static float e8m0_value(unsigned c)
{
    return c == 0xFFu ? quiet_nan(0) : ldexpf(1.0f, (int)c - 127);
}

static void byte_table_row(float (*value)(unsigned), const uint8_t *src, size_t n, float *dst)
{
    float table[256];
    for (unsigned c = 0; c < 256; c++)
        table[c] = value(c);
    for (size_t i = 0; i < n; i++)
        dst[i] = table[src[i]];
}

static mpoc_status e4m3_to_f32(const uint8_t *src, size_t n, float *dst)
{
    byte_table_row(e4m3_value, src, n, dst);
    return MPOC_OK;
}

static mpoc_status e5m2_to_f32(const uint8_t *src, size_t n, float *dst)
{
    byte_table_row(e5m2_value, src, n, dst);
    return MPOC_OK;
}

static mpoc_status e4m3fnuz_to_f32(const uint8_t *src, size_t n, float *dst)
{
    byte_table_row(e4m3fnuz_value, src, n, dst);
    return MPOC_OK;
}

static mpoc_status e5m2fnuz_to_f32(const uint8_t *src, size_t n, float *dst)
{
    byte_table_row(e5m2fnuz_value, src, n, dst);
    return MPOC_OK;
}

static mpoc_status e8m0_to_f32(const uint8_t *src, size_t n, float *dst)
{
    byte_table_row(e8m0_value, src, n, dst);
    return MPOC_OK;
}

/* ---- the traits table ------------------------------------------------------
 * Block sizes and ggml ids: ggml-common.h block structs and ggml.c
 * type_traits (formats.md 3.3). block_bits = 8 × bytes per block, except
 * the sub-byte safetensors types. can_read/can_write must agree with the
 * converter pointers; test_dtype checks that for every entry. */

typedef struct dtype_entry {
    mpoc_dtype_traits traits;
    mpoc_to_f32_fn to_f32;     /* NULL: no reader */
    mpoc_from_f32_fn from_f32; /* NULL: no writer */
} dtype_entry;

#define R true  /* can_read */
#define W true  /* can_write */
#define NO false
#define BITS(bytes) ((bytes) * 8u)

static const dtype_entry dtype_table[MPOC_DTYPE_COUNT_] = {
    /*                   name     st_name  ggml elems bits    read write  to_f32  from_f32 */
    [MPOC_DTYPE_F32] = {{"F32", "F32", 0, 1, 32, R, W}, f32_to_f32, f32_from_f32},
    [MPOC_DTYPE_F16] = {{"F16", "F16", 1, 1, 16, R, W}, f16_to_f32, f16_from_f32},
    [MPOC_DTYPE_BF16] = {{"BF16", "BF16", 30, 1, 16, R, W}, bf16_to_f32, bf16_from_f32},
    [MPOC_DTYPE_F64] = {{"F64", "F64", 28, 1, 64, R, W}, f64_to_f32, f64_from_f32},
    [MPOC_DTYPE_I8] = {{"I8", "I8", 24, 1, 8, R, NO}, i8_to_f32, NULL},
    [MPOC_DTYPE_U8] = {{"U8", "U8", -1, 1, 8, R, NO}, u8_to_f32, NULL},
    [MPOC_DTYPE_I16] = {{"I16", "I16", 25, 1, 16, R, NO}, i16_to_f32, NULL},
    [MPOC_DTYPE_U16] = {{"U16", "U16", -1, 1, 16, R, NO}, u16_to_f32, NULL},
    [MPOC_DTYPE_I32] = {{"I32", "I32", 26, 1, 32, R, NO}, i32_to_f32, NULL},
    [MPOC_DTYPE_U32] = {{"U32", "U32", -1, 1, 32, R, NO}, u32_to_f32, NULL},
    [MPOC_DTYPE_I64] = {{"I64", "I64", 27, 1, 64, R, NO}, i64_to_f32, NULL},
    [MPOC_DTYPE_U64] = {{"U64", "U64", -1, 1, 64, R, NO}, u64_to_f32, NULL},
    [MPOC_DTYPE_BOOL] = {{"BOOL", "BOOL", -1, 1, 8, R, NO}, bool_to_f32, NULL},
    [MPOC_DTYPE_F8_E5M2] = {{"F8_E5M2", "F8_E5M2", -1, 1, 8, R, NO}, e5m2_to_f32, NULL},
    [MPOC_DTYPE_F8_E4M3] = {{"F8_E4M3", "F8_E4M3", -1, 1, 8, R, NO}, e4m3_to_f32, NULL},
    [MPOC_DTYPE_F8_E8M0] = {{"F8_E8M0", "F8_E8M0", -1, 1, 8, R, NO}, e8m0_to_f32, NULL},
    [MPOC_DTYPE_F8_E4M3FNUZ] = {{"F8_E4M3FNUZ", "F8_E4M3FNUZ", -1, 1, 8, R, NO},
                                e4m3fnuz_to_f32, NULL},
    [MPOC_DTYPE_F8_E5M2FNUZ] = {{"F8_E5M2FNUZ", "F8_E5M2FNUZ", -1, 1, 8, R, NO},
                                e5m2fnuz_to_f32, NULL},
    [MPOC_DTYPE_F4] = {{"F4", "F4", -1, 1, 4, NO, NO}, NULL, NULL},
    [MPOC_DTYPE_F6_E2M3] = {{"F6_E2M3", "F6_E2M3", -1, 1, 6, NO, NO}, NULL, NULL},
    [MPOC_DTYPE_F6_E3M2] = {{"F6_E3M2", "F6_E3M2", -1, 1, 6, NO, NO}, NULL, NULL},
    [MPOC_DTYPE_C64] = {{"C64", "C64", -1, 1, 64, NO, NO}, NULL, NULL},
    /* ggml block types: no safetensors string */
    [MPOC_DTYPE_Q4_0] = {{"Q4_0", NULL, 2, 32, BITS(18), R, W}, mpoc_q4_0_to_f32,
                         mpoc_q4_0_from_f32_fast},
    [MPOC_DTYPE_Q4_1] = {{"Q4_1", NULL, 3, 32, BITS(20), R, NO}, mpoc_q4_1_to_f32, NULL},
    [MPOC_DTYPE_Q5_0] = {{"Q5_0", NULL, 6, 32, BITS(22), R, NO}, mpoc_q5_0_to_f32, NULL},
    [MPOC_DTYPE_Q5_1] = {{"Q5_1", NULL, 7, 32, BITS(24), R, NO}, mpoc_q5_1_to_f32, NULL},
    [MPOC_DTYPE_Q8_0] = {{"Q8_0", NULL, 8, 32, BITS(34), R, W}, mpoc_q8_0_to_f32,
                         mpoc_q8_0_from_f32_fast},
    [MPOC_DTYPE_Q8_1] = {{"Q8_1", NULL, 9, 32, BITS(36), NO, NO}, NULL, NULL},
    [MPOC_DTYPE_Q2_K] = {{"Q2_K", NULL, 10, 256, BITS(84), R, NO}, mpoc_q2_k_to_f32, NULL},
    [MPOC_DTYPE_Q3_K] = {{"Q3_K", NULL, 11, 256, BITS(110), R, NO}, mpoc_q3_k_to_f32, NULL},
    [MPOC_DTYPE_Q4_K] = {{"Q4_K", NULL, 12, 256, BITS(144), R, NO}, mpoc_q4_k_to_f32, NULL},
    [MPOC_DTYPE_Q5_K] = {{"Q5_K", NULL, 13, 256, BITS(176), R, NO}, mpoc_q5_k_to_f32, NULL},
    [MPOC_DTYPE_Q6_K] = {{"Q6_K", NULL, 14, 256, BITS(210), R, NO}, mpoc_q6_k_to_f32, NULL},
    [MPOC_DTYPE_Q8_K] = {{"Q8_K", NULL, 15, 256, BITS(292), NO, NO}, NULL, NULL},
    [MPOC_DTYPE_IQ2_XXS] = {{"IQ2_XXS", NULL, 16, 256, BITS(66), NO, NO}, NULL, NULL},
    [MPOC_DTYPE_IQ2_XS] = {{"IQ2_XS", NULL, 17, 256, BITS(74), NO, NO}, NULL, NULL},
    [MPOC_DTYPE_IQ3_XXS] = {{"IQ3_XXS", NULL, 18, 256, BITS(98), NO, NO}, NULL, NULL},
    [MPOC_DTYPE_IQ1_S] = {{"IQ1_S", NULL, 19, 256, BITS(50), NO, NO}, NULL, NULL},
    [MPOC_DTYPE_IQ4_NL] = {{"IQ4_NL", NULL, 20, 32, BITS(18), NO, NO}, NULL, NULL},
    [MPOC_DTYPE_IQ3_S] = {{"IQ3_S", NULL, 21, 256, BITS(110), NO, NO}, NULL, NULL},
    [MPOC_DTYPE_IQ2_S] = {{"IQ2_S", NULL, 22, 256, BITS(82), NO, NO}, NULL, NULL},
    [MPOC_DTYPE_IQ4_XS] = {{"IQ4_XS", NULL, 23, 256, BITS(136), NO, NO}, NULL, NULL},
    [MPOC_DTYPE_IQ1_M] = {{"IQ1_M", NULL, 29, 256, BITS(56), NO, NO}, NULL, NULL},
    [MPOC_DTYPE_TQ1_0] = {{"TQ1_0", NULL, 34, 256, BITS(54), NO, NO}, NULL, NULL},
    [MPOC_DTYPE_TQ2_0] = {{"TQ2_0", NULL, 35, 256, BITS(66), NO, NO}, NULL, NULL},
    [MPOC_DTYPE_MXFP4] = {{"MXFP4", NULL, 39, 32, BITS(17), NO, NO}, NULL, NULL},
};

#undef R
#undef W
#undef NO
#undef BITS

static const dtype_entry *dtype_entry_of(mpoc_dtype t)
{
    if ((int)t < 0 || (int)t >= MPOC_DTYPE_COUNT_)
        return NULL;
    return &dtype_table[t];
}

const mpoc_dtype_traits *mpoc_dtype_info(mpoc_dtype t)
{
    const dtype_entry *e = dtype_entry_of(t);
    return e ? &e->traits : NULL;
}

const char *mpoc_dtype_name(mpoc_dtype t)
{
    const dtype_entry *e = dtype_entry_of(t);
    return e ? e->traits.name : "?";
}

/* ---- look-ups --------------------------------------------------------------- */

mpoc_status mpoc_dtype_from_st_name(const char *s, size_t len, mpoc_dtype *out)
{
    if (!out || (!s && len > 0))
        MPOC_FAIL(MPOC_E_INVAL, "mpoc_dtype_from_st_name: NULL argument");
    for (int t = 0; t < MPOC_DTYPE_COUNT_; t++) {
        const char *st = dtype_table[t].traits.st_name;
        if (st && strlen(st) == len && memcmp(st, s, len) == 0) {
            *out = (mpoc_dtype)t;
            return MPOC_OK;
        }
    }
    return MPOC_E_NOTFOUND;
}

/* A linear search of the table: ids never index anything, so a removed
 * (4, 5, 31-33, 36-38) or future id simply matches no entry. */
mpoc_status mpoc_dtype_from_ggml(uint32_t ggml_type, mpoc_dtype *out)
{
    if (!out)
        MPOC_FAIL(MPOC_E_INVAL, "mpoc_dtype_from_ggml: NULL argument");
    for (int t = 0; t < MPOC_DTYPE_COUNT_; t++) {
        const int32_t id = dtype_table[t].traits.ggml_type;
        if (id >= 0 && (uint32_t)id == ggml_type) {
            *out = (mpoc_dtype)t;
            return MPOC_OK;
        }
    }
    return MPOC_E_NOTFOUND;
}

/* ASCII-only case folding: locale-independent, unlike strcasecmp. */
static bool ascii_iequal(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        const char ca = (*a >= 'a' && *a <= 'z') ? (char)(*a - 'a' + 'A') : *a;
        const char cb = (*b >= 'a' && *b <= 'z') ? (char)(*b - 'a' + 'A') : *b;
        if (ca != cb)
            return false;
    }
    return *a == *b;
}

mpoc_status mpoc_dtype_from_name(const char *s, mpoc_dtype *out)
{
    if (!s || !out)
        MPOC_FAIL(MPOC_E_INVAL, "mpoc_dtype_from_name: NULL argument");
    for (int t = 0; t < MPOC_DTYPE_COUNT_; t++) {
        if (ascii_iequal(dtype_table[t].traits.name, s)) {
            *out = (mpoc_dtype)t;
            return MPOC_OK;
        }
    }
    return MPOC_E_NOTFOUND;
}

/* ---- sizes ------------------------------------------------------------------ */

mpoc_status mpoc_dtype_nbytes(mpoc_dtype t, uint64_t n_elems, uint64_t *bytes)
{
    const dtype_entry *e = dtype_entry_of(t);
    if (!e || !bytes)
        MPOC_FAIL(MPOC_E_INVAL, "mpoc_dtype_nbytes: invalid dtype %d or NULL output", (int)t);
    const uint64_t elems = e->traits.block_elems, bits = e->traits.block_bits;
    if (n_elems % elems != 0)
        MPOC_FAIL(MPOC_E_SHAPE, "%s: %llu elements is not a multiple of the block size %llu",
                  e->traits.name, (unsigned long long)n_elems, (unsigned long long)elems);
    const uint64_t blocks = n_elems / elems;
    if (bits % 8 == 0) {
        if (!mpoc_mul_u64(blocks, bits / 8, bytes))
            MPOC_FAIL(MPOC_E_OVERFLOW, "%s: byte size of %llu elements overflows",
                      e->traits.name, (unsigned long long)n_elems);
        return MPOC_OK;
    }
    /* Sub-byte types: blocks·bits must be whole bytes. Split blocks by 8 so
     * the bit count never needs more than 64 bits before dividing. */
    const uint64_t tail_bits = (blocks % 8) * bits;
    if (tail_bits % 8 != 0)
        MPOC_FAIL(MPOC_E_SHAPE, "%s: %llu elements of %llu bits do not fill whole bytes",
                  e->traits.name, (unsigned long long)n_elems, (unsigned long long)bits);
    uint64_t head;
    if (!mpoc_mul_u64(blocks / 8, bits, &head) || !mpoc_add_u64(head, tail_bits / 8, bytes))
        MPOC_FAIL(MPOC_E_OVERFLOW, "%s: byte size of %llu elements overflows", e->traits.name,
                  (unsigned long long)n_elems);
    return MPOC_OK;
}

/* ---- conversion dispatch ---------------------------------------------------- */

/* n must be whole blocks, and both the storage and the float32 side must be
 * addressable byte counts. */
static mpoc_status check_row(const dtype_entry *e, size_t n)
{
    uint64_t bytes;
    size_t f32_bytes;
    MPOC_TRY(mpoc_dtype_nbytes((mpoc_dtype)(e - dtype_table), n, &bytes));
    if (bytes > SIZE_MAX || !mpoc_mul_size(n, sizeof(float), &f32_bytes))
        MPOC_FAIL(MPOC_E_OVERFLOW, "%s: %zu elements do not fit in memory", e->traits.name, n);
    return MPOC_OK;
}

mpoc_status mpoc_dtype_to_f32(mpoc_dtype t, const void *src, size_t n, float *dst)
{
    const dtype_entry *e = dtype_entry_of(t);
    if (!e)
        MPOC_FAIL(MPOC_E_INVAL, "mpoc_dtype_to_f32: invalid dtype %d", (int)t);
    if (!e->to_f32)
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: cannot be converted to F32", e->traits.name);
    MPOC_TRY(check_row(e, n));
    if (n == 0)
        return MPOC_OK;
    if (!src || !dst)
        MPOC_FAIL(MPOC_E_INVAL, "mpoc_dtype_to_f32: NULL buffer");
    return e->to_f32((const uint8_t *)src, n, dst);
}

mpoc_status mpoc_dtype_from_f32(mpoc_dtype t, const float *src, size_t n, void *dst)
{
    const dtype_entry *e = dtype_entry_of(t);
    if (!e)
        MPOC_FAIL(MPOC_E_INVAL, "mpoc_dtype_from_f32: invalid dtype %d", (int)t);
    if (!e->from_f32)
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: cannot be written from F32", e->traits.name);
    MPOC_TRY(check_row(e, n));
    if (n == 0)
        return MPOC_OK;
    if (!src || !dst)
        MPOC_FAIL(MPOC_E_INVAL, "mpoc_dtype_from_f32: NULL buffer");
    return e->from_f32(src, n, (uint8_t *)dst);
}
