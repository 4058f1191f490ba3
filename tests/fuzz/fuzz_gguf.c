/* fuzz_gguf.c: libFuzzer target for the GGUF parser.
 *
 * Property: for any input, mpoc_model_open_memory on "GGUF" + input either
 * fails with a status (no crash, hang, over-read or large allocation), or
 * succeeds with: every tensor view inside the buffer, at a multiple of the
 * alignment from the data section, in tensor-info order without overlap;
 * n_dims <= 4, names 1..63 bytes; every metadata entry's raw bytes inside
 * the buffer and every array element decodable. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mpoc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_meta(const mpoc_model *m, const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < mpoc_model_meta_count(m); i++) {
        const mpoc_meta *kv = mpoc_model_meta(m, i);
        if (kv->raw_len && (kv->raw < buf || kv->raw + kv->raw_len > buf + len))
            abort();
        if (kv->type != MPOC_META_ARRAY || kv->count == 0)
            continue;
        mpoc_meta_value v;
        uint64_t last = kv->count - 1 < 64 ? kv->count - 1 : 63;
        if (mpoc_meta_array_get(kv, last, &v) != MPOC_OK)
            abort();
    }
}

static void check_model(const mpoc_model *m, const uint8_t *buf, size_t len)
{
    const uint8_t *prev_end = buf;
    for (size_t i = 0; i < mpoc_model_tensor_count(m); i++) {
        const mpoc_tensor *t = mpoc_model_tensor(m, i);
        const uint8_t *p = t->data;
        size_t nl = strlen(t->name);
        if (t->n_dims > 4 || nl == 0 || nl > 63 || p < prev_end)
            abort();
        if (t->nbytes > len || p - buf > (ptrdiff_t)(len - t->nbytes))
            abort();
        if (t->file_offset % mpoc_model_alignment(m) != 0)
            abort();
        prev_end = p + t->nbytes;
    }
    check_meta(m, buf, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size + 4);
    if (!buf)
        return 0;
    size_t len = size;
    if (size >= 4 && !memcmp(data, "GGUF", 4)) {
        memcpy(buf, data, size);
    } else {
        memcpy(buf, "GGUF", 4);
        memcpy(buf + 4, data, size);
        len = size + 4;
    }
    mpoc_model *m;
    if (mpoc_model_open_memory(buf, len, "fuzz", &m) == MPOC_OK) {
        check_model(m, buf, len);
        mpoc_model_close(m);
    }
    free(buf);
    return 0;
}
