/* util.h: checked size arithmetic and aligned allocation.
 *
 * Every size, offset and round-up computed from untrusted input goes through
 * these functions: each returns false (and leaves *out unspecified) when the
 * true result does not fit. */
#ifndef MPOC_UTIL_H
#define MPOC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool mpoc_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static inline bool mpoc_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

static inline bool mpoc_add_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static inline bool mpoc_mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* Round x up to a multiple of align (align > 0, not necessarily a power of
 * two). Fails on align == 0 and when the result would wrap. */
static inline bool mpoc_round_up_u64(uint64_t x, uint64_t align, uint64_t *out)
{
    if (align == 0)
        return false;
    uint64_t rem = x % align;
    if (rem == 0) {
        *out = x;
        return true;
    }
    return mpoc_add_u64(x, align - rem, out);
}

/* Product of n values, checked. An empty product is 1. */
bool mpoc_product_u64(const uint64_t *v, size_t n, uint64_t *out);

/* 64-byte aligned allocation of n_elems * elem_size bytes, checked for
 * overflow; NULL on failure or when the product is 0. Free with free(). */
void *mpoc_alloc_array(size_t n_elems, size_t elem_size);

/* As mpoc_alloc_array, zero-filled. */
void *mpoc_calloc_array(size_t n_elems, size_t elem_size);

#endif
