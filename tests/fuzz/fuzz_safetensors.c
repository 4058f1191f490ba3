/* fuzz_safetensors.c: libFuzzer target for the safetensors header parser.
 *
 * Property: for any input, mpoc_model_open_memory either fails with a status
 * (never crashes, hangs, over-reads or allocates beyond the input's size
 * times a small factor), or succeeds with every tensor view inside the
 * input, each tensor's bytes equal to its dtype size of its shape, and
 * views in offset order without overlap. The input is presented as a
 * safetensors file: when it does not start with a plausible length prefix,
 * one is added so that the JSON parser and validator are reached. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mpoc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_model(const mpoc_model *m, const uint8_t *buf, size_t len)
{
    const uint8_t *prev_end = NULL;
    for (size_t i = 0; i < mpoc_model_tensor_count(m); i++) {
        const mpoc_tensor *t = mpoc_model_tensor(m, i);
        const uint8_t *p = t->data;
        uint64_t nb;
        if (t->nbytes && (p < buf || t->nbytes > len || p - buf > (ptrdiff_t)(len - t->nbytes)))
            abort();
        if (mpoc_dtype_nbytes(t->dtype, t->n_elems, &nb) == MPOC_OK && nb != t->nbytes)
            abort();
        if (prev_end && t->nbytes && p < prev_end)
            abort();
        if (t->nbytes)
            prev_end = p + t->nbytes;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size + 8);
    if (!buf)
        return 0;
    size_t len = size;
    if (size >= 8 && data[8 % size] == '{') {
        memcpy(buf, data, size);
    } else { /* add a length prefix covering the first half as header */
        uint64_t n = size / 2;
        for (int i = 0; i < 8; i++)
            buf[i] = (uint8_t)(n >> (8 * i));
        memcpy(buf + 8, data, size);
        len = size + 8;
    }
    mpoc_model *m;
    if (mpoc_model_open_memory(buf, len, "fuzz", &m) == MPOC_OK) {
        check_model(m, buf, len);
        mpoc_model_close(m);
    }
    free(buf);
    return 0;
}
