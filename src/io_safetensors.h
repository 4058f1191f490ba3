/* io_safetensors.h: safetensors reader and writer (see model_internal.h for
 * the functions: mpoc_st_parse, mpoc_st_parse_index, mpoc_st_sniff,
 * mpoc_st_write_file, mpoc_st_sort). Shard-name safety is exposed for tests. */
#ifndef MPOC_IO_SAFETENSORS_H
#define MPOC_IO_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>

#include "model_internal.h"

/* True when `name` is a plain file name: non-empty, <= 255 bytes, no '/',
 * '\\', no "..", not ".", no percent sign (no "%%2e%%2e" tricks), no control bytes. */
bool mpoc_st_shard_name_safe(const char *name);

#endif
