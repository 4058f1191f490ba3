/* fuzz_model.c: libFuzzer target for the model walker.
 *
 * Property: for any input (any format, sniffed as mpoc_model_open does),
 * opening either fails with a status, or every tensor can be walked: its
 * matrix shape is consistent with n_elems, and reading it as float32 either
 * succeeds (allocating only that tensor) or fails with UNSUPPORTED (no
 * reader for the dtype) or SHAPE (no elements) — never a crash. A
 * successfully opened model is also written back through the writer in its
 * own format and in the other one and reopened: the writer may refuse what
 * the target cannot hold (a dtype, a GGUF name > 63 bytes, a non-UTF-8 name
 * in safetensors), but whatever it commits reads back, with the same tensors
 * byte for byte. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpoc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const mpoc_model *m)
{
    for (size_t i = 0; i < mpoc_model_tensor_count(m); i++) {
        const mpoc_tensor *t = mpoc_model_tensor(m, i);
        size_t r, c;
        if (mpoc_tensor_matrix_shape(t, &r, &c) == MPOC_OK && (uint64_t)r * c != t->n_elems)
            abort();
        mpoc_mat x = {0};
        mpoc_status st = mpoc_tensor_read_f32(t, &x);
        if (st != MPOC_OK && st != MPOC_E_UNSUPPORTED && st != MPOC_E_SHAPE &&
            st != MPOC_E_NOMEM && st != MPOC_E_OVERFLOW)
            abort();
        mpoc_mat_free(&x);
    }
}

static void rewrite(const mpoc_model *m, mpoc_format format)
{
    char path[] = "/tmp/mpoc-fuzz-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return;
    close(fd);
    mpoc_writer_options o = mpoc_writer_options_default();
    o.format = format;
    o.policy.overwrite = true;
    mpoc_writer *w;
    mpoc_status st = mpoc_writer_create(path, &o, &w);
    if (st == MPOC_OK) {
        st = mpoc_writer_copy_meta(w, m, NULL);
        for (size_t i = 0; st == MPOC_OK && i < mpoc_model_tensor_count(m); i++)
            st = mpoc_writer_add_tensor(w, mpoc_model_tensor(m, i), NULL);
        st = st == MPOC_OK ? mpoc_writer_commit(w) : (mpoc_writer_abort(w), st);
    }
    mpoc_model *back;
    if (st == MPOC_OK) {
        if (mpoc_model_open(path, &back) != MPOC_OK ||
            mpoc_model_tensor_count(back) != mpoc_model_tensor_count(m))
            abort();
        for (size_t i = 0; i < mpoc_model_tensor_count(m); i++) {
            const mpoc_tensor *a = mpoc_model_tensor(m, i), *b;
            if (mpoc_model_find(back, a->name, &b) != MPOC_OK || a->nbytes != b->nbytes ||
                (a->nbytes && memcmp(a->data, b->data, a->nbytes)))
                abort();
        }
        mpoc_model_close(back);
    }
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mpoc_model *m;
    if (mpoc_model_open_memory(data, size, "fuzz", &m) != MPOC_OK)
        return 0;
    walk(m);
    rewrite(m, MPOC_FORMAT_GGUF);
    rewrite(m, MPOC_FORMAT_SAFETENSORS);
    mpoc_model_close(m);
    return 0;
}
