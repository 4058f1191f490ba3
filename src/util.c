/* util.c: checked products and aligned allocation. */
#include "util.h"

#include <stdlib.h>
#include <string.h>

bool mpoc_product_u64(const uint64_t *v, size_t n, uint64_t *out)
{
    uint64_t p = 1;
    for (size_t i = 0; i < n; i++)
        if (!mpoc_mul_u64(p, v[i], &p))
            return false;
    *out = p;
    return true;
}

void *mpoc_alloc_array(size_t n_elems, size_t elem_size)
{
    size_t bytes;
    if (!mpoc_mul_size(n_elems, elem_size, &bytes) || bytes == 0)
        return NULL;
    /* aligned_alloc needs a size that is a multiple of the alignment. */
    size_t rounded;
    if (!mpoc_add_size(bytes, 63, &rounded))
        return NULL;
    rounded &= ~(size_t)63;
    return aligned_alloc(64, rounded);
}

void *mpoc_calloc_array(size_t n_elems, size_t elem_size)
{
    void *p = mpoc_alloc_array(n_elems, elem_size);
    if (p)
        memset(p, 0, n_elems * elem_size);
    return p;
}
