/* fuzz_writer.c: structure-aware libFuzzer target for the writers.
 *
 * The input is a script: a format byte, then records that set metadata
 * strings and add tensors with fuzzer-chosen names, keys, values (any bytes:
 * non-UTF-8, controls, "__metadata__", 64-byte GGUF names), dtypes, dims
 * (zeros included) and data. Property: the writer either refuses a call
 * with a status or accepts it; whatever it commits opens again with exactly
 * the accepted tensors, byte for byte (a writer must never produce a file
 * its own reader refuses). Then one byte of the written file, chosen by the
 * script, is changed and the result opened and walked from memory: a status
 * or a model, never a crash. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpoc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct script {
    const uint8_t *p;
    size_t left;
} script;

static uint8_t next(script *s)
{
    if (!s->left)
        return 0;
    s->left--;
    return *s->p++;
}

/* A NUL-terminated string of up to `max` bytes from the script. */
static char *text(script *s, size_t max)
{
    size_t n = next(s) % (max + 1), k = 0;
    char *t = malloc(n + 1);
    if (!t)
        abort();
    while (k < n && s->left)
        t[k++] = (char)next(s);
    t[k] = '\0';
    return t;
}

enum { MAX_ADDED = 16, MAX_BYTES = 256 };

typedef struct added {
    char *name;
    uint64_t nbytes;
    uint8_t bytes[MAX_BYTES];
} added;

static void add_tensor(script *s, mpoc_writer *w, added *list, size_t *n)
{
    char *name = text(s, 70);
    mpoc_dtype dt = (mpoc_dtype)(next(s) % MPOC_DTYPE_COUNT_);
    uint32_t nd = next(s) % 6;
    uint64_t shape[8] = {0}, elems = 1, nbytes;
    for (uint32_t d = 0; d < nd; d++) {
        uint8_t b = next(s);
        shape[d] = b == 255 ? UINT64_MAX : b == 254 ? (uint64_t)INT64_MAX + 1 : b % 65;
        elems = shape[d] && elems <= UINT64_MAX / shape[d] ? elems * shape[d] : 0;
    }
    uint8_t buf[MAX_BYTES] = {0};
    if (mpoc_dtype_nbytes(dt, elems, &nbytes) != MPOC_OK || nbytes > MAX_BYTES)
        nbytes = next(s) % 8; /* a mismatch the writer must refuse */
    for (uint64_t k = 0; k < nbytes; k++)
        buf[k] = next(s);
    if (mpoc_writer_add_raw(w, name, dt, shape, nd, buf, nbytes) == MPOC_OK && *n < MAX_ADDED) {
        list[*n].name = name;
        list[*n].nbytes = nbytes;
        memcpy(list[*n].bytes, buf, (size_t)nbytes);
        (*n)++;
        return;
    }
    free(name);
}

static void walk(const mpoc_model *m)
{
    for (size_t i = 0; i < mpoc_model_tensor_count(m); i++) {
        mpoc_mat x = {0};
        (void)mpoc_tensor_read_f32(mpoc_model_tensor(m, i), &x);
        mpoc_mat_free(&x);
    }
}

/* Reopen the committed file: every accepted tensor, same bytes; then flip
 * one script-chosen byte and open the damaged copy from memory. */
static void check_output(const char *path, const added *list, size_t n, size_t n_total,
                         script *s)
{
    mpoc_model *m;
    if (mpoc_model_open(path, &m) != MPOC_OK || mpoc_model_tensor_count(m) != n_total)
        abort();
    for (size_t i = 0; i < n; i++) {
        const mpoc_tensor *t;
        if (mpoc_model_find(m, list[i].name, &t) != MPOC_OK || t->nbytes != list[i].nbytes ||
            (t->nbytes && memcmp(t->data, list[i].bytes, (size_t)t->nbytes)))
            abort();
    }
    size_t len = (size_t)mpoc_model_file_size(m, 0);
    uint8_t *copy = malloc(len ? len : 1);
    FILE *f = fopen(path, "rb");
    if (!copy || !f || fread(copy, 1, len, f) != len)
        abort();
    fclose(f);
    mpoc_model_close(m);
    if (len) {
        size_t hi = next(s), lo = next(s), at = (hi << 8 | lo) % len;
        copy[at] ^= (uint8_t)(next(s) | 1);
        if (mpoc_model_open_memory(copy, len, "damaged", &m) == MPOC_OK) {
            walk(m);
            mpoc_model_close(m);
        }
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    script s = {data, size};
    char path[] = "/tmp/mpoc-fuzzw-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    close(fd);
    mpoc_writer_options o = mpoc_writer_options_default();
    o.format = next(&s) & 1 ? MPOC_FORMAT_GGUF : MPOC_FORMAT_SAFETENSORS;
    o.policy.overwrite = true;
    mpoc_writer *w;
    if (mpoc_writer_create(path, &o, &w) != MPOC_OK) {
        unlink(path);
        return 0;
    }
    added list[MAX_ADDED];
    size_t n = 0;
    for (int ops = 0; ops < 24 && s.left; ops++) {
        uint8_t op = next(&s) % 3;
        if (op == 0) {
            char *k = text(&s, 24), *v = text(&s, 40);
            (void)mpoc_writer_set_meta_string(w, k, v);
            free(k);
            free(v);
        } else if (op == 1) {
            char *k = text(&s, 24);
            (void)mpoc_writer_set_meta_u32(w, k, next(&s));
            free(k);
        } else {
            add_tensor(&s, w, list, &n);
        }
    }
    size_t n_total = mpoc_writer_tensor_count(w);
    if (mpoc_writer_commit(w) == MPOC_OK)
        check_output(path, list, n, n_total, &s);
    for (size_t i = 0; i < n; i++)
        free(list[i].name);
    unlink(path);
    return 0;
}
