/* model_internal.h: the model and writer structures shared by model.c,
 * io_safetensors.c and io_gguf.c (never installed). */
#ifndef MPOC_MODEL_INTERNAL_H
#define MPOC_MODEL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpoc_model.h"

/* Policy caps (on top of "every count fits in the bytes left"). */
#define MPOC_ST_MAX_HEADER 100000000u   /* reference MAX_HEADER_SIZE */
#define MPOC_ST_WRITE_MAX_HEADER 25000000u /* npm reader's cap: stay below */
#define MPOC_JSON_MAX_DEPTH 16u
#define MPOC_GGUF_MAX_KV 1000000u
#define MPOC_GGUF_MAX_TENSORS 10000000u
#define MPOC_GGUF_MAX_KEY 65535u
#define MPOC_GGUF_MAX_ALIGN (1u << 20)
#define MPOC_GGUF_DEFAULT_ALIGN 32u
#define MPOC_MAX_SHARDS 100000u

/* One file of a model: a read-only mapping or borrowed memory. */
typedef struct mpoc_model_file {
    char *path;          /* owned: path, or the label of an in-memory model */
    const uint8_t *base; /* len bytes (NULL when len == 0) */
    uint64_t len;
    bool mapped;         /* munmap at close (else borrowed) */
} mpoc_model_file;

struct mpoc_model {
    mpoc_format format;
    uint32_t gguf_version; /* 0 for safetensors */
    uint64_t alignment;
    mpoc_model_file *files; /* [n_files], owned */
    size_t n_files, cap_files;
    mpoc_tensor *tensors;   /* [n_tensors]; names owned (malloc) */
    size_t n_tensors, cap_tensors;
    const mpoc_tensor **by_name; /* [n_tensors] sorted by name, owned */
    mpoc_meta *meta;        /* [n_meta]; keys and scalar strings owned */
    size_t n_meta, cap_meta;
};

/* Append records (the model takes ownership of t->name / kv->key /
 * kv->value.str even on failure). MPOC_E_NOMEM. */
mpoc_status mpoc_model_push_tensor_(mpoc_model *m, const mpoc_tensor *t);
mpoc_status mpoc_model_push_meta_(mpoc_model *m, const mpoc_meta *kv);
/* Copy n bytes into a new NUL-terminated string (NULL on failure). */
char *mpoc_strndup_(const void *s, size_t n);
/* Ensure an array of `*cap` elements of `size` bytes holds `need`. */
bool mpoc_grow_(void **arr, size_t *cap, size_t need, size_t size);

/* Parsers: validate file `fi` of m and append its tensors and metadata.
 * Statuses as mpoc_model_open. */
mpoc_status mpoc_st_parse(mpoc_model *m, uint32_t fi);
mpoc_status mpoc_gguf_parse(mpoc_model *m, uint32_t fi);
/* Parse a sharded index (file 0 of m, already mapped), open every shard
 * beside it and check the weight map. */
mpoc_status mpoc_st_parse_index(mpoc_model *m, const char *dir);
/* True when buf looks like a safetensors file: a plausible length prefix
 * and '{' as the first non-blank header byte. */
bool mpoc_st_sniff(const uint8_t *buf, uint64_t len);
/* Map a file as files[n_files] of m. */
mpoc_status mpoc_model_map_file_(mpoc_model *m, const char *path);

/* ---- writer ---- */

typedef struct mpoc_wtensor {
    char *name;                      /* owned */
    mpoc_dtype dtype;
    uint32_t n_dims;
    uint64_t shape[MPOC_MAX_DIMS];   /* row-major, outermost first */
    uint64_t nbytes;
    uint64_t spool_off;              /* where its bytes sit in the spool */
} mpoc_wtensor;

typedef struct mpoc_wmeta {
    char *key;                       /* owned */
    mpoc_meta_type type, elem_type;
    uint64_t count;
    uint8_t *raw;                    /* owned GGUF encoding (see mpoc_meta) */
    uint64_t raw_len;
} mpoc_wmeta;

struct mpoc_writer {
    char *path;                      /* owned */
    mpoc_writer_options opt;         /* group_sep and policy.inputs borrowed */
    int spool_fd;
    uint64_t spool_len;
    mpoc_wtensor *t;                 /* [n_t] in add order */
    size_t n_t, cap_t;
    mpoc_wmeta *kv;                  /* [n_kv] in first-set order */
    size_t n_kv, cap_kv;
    uint64_t *hash;                  /* open-addressing set of name indices+1 */
    size_t hash_cap;
};

/* Copy `n` spooled bytes at `off` into an output file. */
struct mpoc_outfile;
mpoc_status mpoc_spool_copy_(int spool_fd, uint64_t off, uint64_t n, struct mpoc_outfile *out);

/* Write one safetensors file of the tensors `list[0..n)` (reordered here
 * into the canonical order) with metadata kv[0..n_kv) (strings only).
 * pending == NULL: commit it. Else leave it written, synced and closed in
 * *pending for the caller to mpoc_out_commit or mpoc_out_abort. */
mpoc_status mpoc_st_write_file(const char *path, const mpoc_write_policy *pol,
                               const mpoc_wtensor **list, size_t n, const mpoc_wmeta *kv,
                               size_t n_kv, int spool_fd, struct mpoc_outfile *pending);
/* Canonical order: descending dtype alignment, then name. */
void mpoc_st_sort(const mpoc_wtensor **list, size_t n);
/* Element alignment of a dtype in safetensors output (1..8). */
uint64_t mpoc_st_dtype_align(mpoc_dtype t);
/* Write the GGUF v3 file of w. */
mpoc_status mpoc_gguf_write_file(const mpoc_writer *w);

/* Bytes of one GGUF scalar of type t (0 for STRING/ARRAY/invalid). */
uint64_t mpoc_gguf_scalar_size(mpoc_meta_type t);
/* Validate a GGUF value encoding: `count` elements of `elem_type` (a scalar
 * when !is_array) at raw[0..len) must use exactly len bytes. */
bool mpoc_gguf_value_valid(mpoc_meta_type type, mpoc_meta_type elem_type, uint64_t count,
                           const uint8_t *raw, uint64_t len);

#endif
