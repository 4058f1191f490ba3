/* io_gguf.h: GGUF v3 reader and writer (declared in model_internal.h:
 * mpoc_gguf_parse, mpoc_gguf_write_file, mpoc_gguf_scalar_size,
 * mpoc_gguf_value_valid) and the scalar decoder shared with model.c. */
#ifndef MPOC_IO_GGUF_H
#define MPOC_IO_GGUF_H

#include <stdint.h>

#include "model_internal.h"

#define MPOC_GGUF_MAGIC "GGUF"

/* Decode one scalar of type t at p (mpoc_gguf_scalar_size(t) bytes;
 * STRING: u64 length + bytes, `avail` bounding it). False when it does not
 * fit in avail or a BOOL byte is not 0/1. *used gets the bytes consumed. */
bool mpoc_gguf_decode_scalar(mpoc_meta_type t, const uint8_t *p, uint64_t avail,
                             mpoc_meta_value *v, uint64_t *used);

#endif
