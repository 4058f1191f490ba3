/* modelgen.h: builds small model files in memory for tests and the fuzz
 * corpus: a valid safetensors and GGUF file, and a catalogue of defective
 * variants, each with the status mpoc_model_open_memory must return.
 * Defect 0 of each catalogue is the valid twin the others derive from. */
#ifndef MPOC_TEST_MODELGEN_H
#define MPOC_TEST_MODELGEN_H

#include <stddef.h>
#include <stdint.h>

#include "mpoc_status.h"

typedef struct mg_buf {
    uint8_t *data; /* owned */
    size_t len, cap;
} mg_buf;

void mg_free(mg_buf *b);
void mg_put(mg_buf *b, const void *p, size_t n);
void mg_u8(mg_buf *b, uint8_t v);
void mg_u32(mg_buf *b, uint32_t v);
void mg_u64(mg_buf *b, uint64_t v);
void mg_gstr(mg_buf *b, const char *s); /* GGUF string: u64 length + bytes */
/* Write buf to a file; 0 on success. */
int mg_write_file(const char *path, const void *data, size_t len);

typedef struct mg_case {
    const char *name;     /* short identifier of the defect */
    mpoc_status expect;   /* MPOC_OK for accepted variants */
} mg_case;

/* Number of safetensors / GGUF cases (index 0 = the valid base file). */
size_t mg_st_case_count(void);
size_t mg_gguf_case_count(void);
/* Build case i into *out (reset first); returns its description. */
mg_case mg_st_case(size_t i, mg_buf *out);
mg_case mg_gguf_case(size_t i, mg_buf *out);

/* A safetensors file from a header text and data_len data bytes (byte k is
 * (uint8_t)k). */
void mg_st_from_header(mg_buf *out, const char *header, size_t data_len);

/* A GGUF v3 file with one string KV (key, value of vlen bytes) and one F32
 * tensor of one element (1.0) named by nlen bytes: for names, keys and
 * values a GGUF may hold but another format may not (non-UTF-8, NUL). */
void mg_gguf_one(mg_buf *out, const char *name, size_t nlen, const char *key, const char *val,
                 size_t vlen);

#endif
