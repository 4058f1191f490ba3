/* mpoc_model.h: format-neutral access to model weight files, and a writer.
 *
 * Reading: mpoc_model_open maps a safetensors file, a sharded safetensors
 * checkpoint (a folder or its `*.index.json`) or a GGUF v2/v3 file, validates
 * it completely (docs/formats.md lists every rule) and exposes its tensors
 * and metadata. The format is recognised from the content, never the name.
 * Pickle (`.bin`, `.pt`) and zip containers are recognised and refused with
 * MPOC_E_UNSUPPORTED: nothing in them is ever parsed or executed.
 *
 * Lifetimes: everything a model hands out (tensor records, their names, their
 * data views, metadata records and their strings) is BORROWED from the model
 * and dies with mpoc_model_close. Copy what must outlive it. Data views
 * point into a read-only MAP_PRIVATE mapping: if another process truncates
 * the file meanwhile, touching a view raises SIGBUS (mmap's contract; mpoc's
 * own writer replaces files by rename and never alters a mapped input).
 *
 * Shapes are row-major, outermost dimension first, as in safetensors and
 * numpy. GGUF lists dims fastest-first (ne[0] = row length); mpoc reverses
 * that list (never transposes data): GGUF ne = [in, out] is shape [out, in].
 *
 * Writing: mpoc_writer_create starts a safetensors (single or sharded) or GGUF
 * v3 output. Tensors are added one at a time (raw bytes, or float32 data
 * converted to a target dtype); their data is spooled to an unlinked
 * temporary file in the destination folder, so memory stays bounded by the
 * largest tensor. mpoc_writer_commit assembles the file(s) atomically (temp
 * file, fsync, rename). Output bytes depend only on the sequence of calls.
 *
 * Failures return a status and log one line naming the file, the tensor or
 * key, and the offending value (see mpoc_log_set). */
#ifndef MPOC_MODEL_H
#define MPOC_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpoc_dtype.h"
#include "mpoc_io.h"
#include "mpoc_mat.h"
#include "mpoc_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most dims a tensor may have (GGUF allows 4; safetensors tensors with more
 * dims are refused with MPOC_E_UNSUPPORTED). */
#define MPOC_MAX_DIMS 8
/* Longest GGUF tensor name in bytes (ggml: strictly below GGML_MAX_NAME=64). */
#define MPOC_GGUF_MAX_NAME 63

typedef enum mpoc_format {
    MPOC_FORMAT_UNKNOWN = 0,
    MPOC_FORMAT_SAFETENSORS = 1,         /* one .safetensors file */
    MPOC_FORMAT_SAFETENSORS_SHARDED = 2, /* index.json + shard files */
    MPOC_FORMAT_GGUF = 3                 /* GGUF v2 or v3, little-endian */
} mpoc_format;

/* "safetensors", "safetensors-sharded", "gguf" or "unknown"; never NULL. */
const char *mpoc_format_name(mpoc_format f);

/* One tensor of an opened model. All pointers are borrowed from the model. */
typedef struct mpoc_tensor {
    const char *name;     /* NUL-terminated (names never contain NUL) */
    mpoc_dtype dtype;     /* storage dtype */
    uint32_t n_dims;      /* 0 (scalar) .. MPOC_MAX_DIMS */
    uint64_t shape[MPOC_MAX_DIMS]; /* [n_dims], row-major, outermost first */
    uint64_t n_elems;     /* product of shape (1 for a scalar, 0 if a dim is 0) */
    uint64_t nbytes;      /* bytes of data */
    const void *data;     /* nbytes bytes inside the mapping (unaligned possible) */
    uint32_t file_index;  /* index of the file holding it (mpoc_model_file) */
    uint64_t file_offset; /* absolute byte offset of data in that file */
} mpoc_tensor;

/* Metadata value types: the GGUF value type ids (safetensors metadata is
 * always MPOC_META_STRING). */
typedef enum mpoc_meta_type {
    MPOC_META_U8 = 0,
    MPOC_META_I8 = 1,
    MPOC_META_U16 = 2,
    MPOC_META_I16 = 3,
    MPOC_META_U32 = 4,
    MPOC_META_I32 = 5,
    MPOC_META_F32 = 6,
    MPOC_META_BOOL = 7,
    MPOC_META_STRING = 8,
    MPOC_META_ARRAY = 9,
    MPOC_META_U64 = 10,
    MPOC_META_I64 = 11,
    MPOC_META_F64 = 12
} mpoc_meta_type;

/* "u8", "i8", ..., "string", "array", "u64", "i64", "f64" ("?" if invalid). */
const char *mpoc_meta_type_name(mpoc_meta_type t);

/* A decoded scalar (one metadata value or one array element). */
typedef struct mpoc_meta_value {
    mpoc_meta_type type; /* never MPOC_META_ARRAY */
    uint64_t u;          /* unsigned types and BOOL (0/1) */
    int64_t i;           /* signed types */
    double f;            /* F32/F64 */
    const char *str;     /* STRING: borrowed bytes, NOT NUL-terminated ... */
    size_t str_len;      /* ... of this length */
} mpoc_meta_value;

/* One metadata entry. Borrowed from the model (or built by the caller for
 * mpoc_writer_set_meta, with `raw` holding the GGUF encoding). */
typedef struct mpoc_meta {
    const char *key;          /* NUL-terminated */
    mpoc_meta_type type;      /* scalar type, STRING or ARRAY */
    mpoc_meta_type elem_type; /* ARRAY only: element type (never ARRAY) */
    uint64_t count;           /* ARRAY: number of elements; else 1 */
    mpoc_meta_value value;    /* decoded scalar (not for ARRAY); for STRING,
                                 str is NUL-terminated in models */
    const uint8_t *raw;       /* GGUF little-endian encoding of the value:
                                 scalars as stored, STRING as u64 length +
                                 bytes, ARRAY as its elements only. NULL for
                                 safetensors entries (use value.str) */
    uint64_t raw_len;         /* bytes at raw */
} mpoc_meta;

typedef struct mpoc_model mpoc_model;

/* ---- opening ------------------------------------------------------------ */

/* Open and validate a model file, a sharded checkpoint's index.json, or a
 * folder (holding model.safetensors.index.json or model.safetensors).
 * Files are memory-mapped read-only; *out must be closed with
 * mpoc_model_close. Statuses: MPOC_E_IO / MPOC_E_NOTFOUND (cannot open),
 * MPOC_E_FORMAT (malformed), MPOC_E_UNSUPPORTED (pickle/zip, big-endian or
 * old GGUF, too many dims), MPOC_E_OVERFLOW (size arithmetic), MPOC_E_NOMEM.
 * Cost: one pass over the headers; tensor data is not touched except GGUF
 * padding bytes. */
mpoc_status mpoc_model_open(const char *path, mpoc_model **out);

/* As mpoc_model_open for a single-file model held in memory (safetensors or
 * GGUF; a sharded index cannot be opened this way). `data` is BORROWED and
 * must outlive the model; `label` names it in messages (may be NULL). */
mpoc_status mpoc_model_open_memory(const void *data, size_t len, const char *label,
                                   mpoc_model **out);

/* Unmap and free everything; accepts NULL. Invalidates every view. */
void mpoc_model_close(mpoc_model *m);

/* ---- what was opened ---------------------------------------------------- */

mpoc_format mpoc_model_format(const mpoc_model *m);
/* GGUF version (2 or 3) or 0 for safetensors. */
uint32_t mpoc_model_gguf_version(const mpoc_model *m);
/* GGUF data alignment (32 by default), 8 for safetensors. */
uint64_t mpoc_model_alignment(const mpoc_model *m);

/* Files making up the model: 1, or for a sharded checkpoint the index
 * (file 0) then the shards sorted by name. Path and size of file i (i <
 * count) are borrowed; NULL / 0 when out of range. */
size_t mpoc_model_file_count(const mpoc_model *m);
const char *mpoc_model_file_path(const mpoc_model *m, size_t i);
uint64_t mpoc_model_file_size(const mpoc_model *m, size_t i);

/* ---- tensors ------------------------------------------------------------ */

/* Number of tensors; tensor i in file order (safetensors: by data offset,
 * shard by shard; GGUF: tensor-info order). NULL when i is out of range. */
size_t mpoc_model_tensor_count(const mpoc_model *m);
const mpoc_tensor *mpoc_model_tensor(const mpoc_model *m, size_t i);

/* Find a tensor by exact name (binary search). MPOC_E_NOTFOUND (logged). */
mpoc_status mpoc_model_find(const mpoc_model *m, const char *name, const mpoc_tensor **out);

/* The matrix view of a tensor's shape: scalar → 1×1, 1-D [n] → 1×n, 2-D as
 * is, k-D → [product of the leading k−1 dims, last dim].
 * MPOC_E_OVERFLOW when it does not fit in size_t. */
mpoc_status mpoc_tensor_matrix_shape(const mpoc_tensor *t, size_t *rows, size_t *cols);

/* True when mpoc_dtype_to_f32 can convert t's dtype. */
bool mpoc_tensor_can_read(const mpoc_tensor *t);

/* Convert the tensor into a new float32 matrix of its matrix shape (above),
 * straight from the mapping; allocates only that matrix. `out` must be
 * unallocated; free with mpoc_mat_free. MPOC_E_UNSUPPORTED (dtype has no
 * float32 reader, named in the log), MPOC_E_SHAPE (no elements),
 * MPOC_E_NOMEM. */
mpoc_status mpoc_tensor_read_f32(const mpoc_tensor *t, mpoc_mat *out);

/* As above into caller memory: dst holds n == t->n_elems floats. */
mpoc_status mpoc_tensor_to_f32(const mpoc_tensor *t, float *dst, size_t n);

/* ---- metadata ----------------------------------------------------------- */

/* Metadata entries in file order (safetensors: `__metadata__` keys sorted;
 * sharded: the union over shards, first occurrence wins; GGUF: every KV). */
size_t mpoc_model_meta_count(const mpoc_model *m);
const mpoc_meta *mpoc_model_meta(const mpoc_model *m, size_t i);
/* Find by key; MPOC_E_NOTFOUND (not logged: absence is normal). */
mpoc_status mpoc_model_meta_find(const mpoc_model *m, const char *key, const mpoc_meta **out);

/* Element i of an ARRAY entry (strings: O(i) walk). MPOC_E_INVAL when kv is
 * not an array or i >= count. */
mpoc_status mpoc_meta_array_get(const mpoc_meta *kv, uint64_t i, mpoc_meta_value *out);

/* ---- writing ------------------------------------------------------------ */

typedef struct mpoc_writer mpoc_writer;

typedef struct mpoc_writer_options {
    mpoc_format format;  /* SAFETENSORS, SAFETENSORS_SHARDED or GGUF */
    /* SAFETENSORS_SHARDED: most tensor-data bytes per shard (a larger tensor
     * or group gets a shard of its own); 0 means 5,000,000,000. */
    uint64_t shard_size;
    /* Sharded: tensors whose names agree up to the first occurrence of this
     * separator (e.g. ".mpo.") stay in one shard. NULL: no grouping. */
    const char *group_sep;
    mpoc_write_policy policy; /* overwrite flag and inputs never to replace */
} mpoc_writer_options;

/* Defaults: SAFETENSORS, shard_size 0, no grouping, no overwrite, no inputs. */
mpoc_writer_options mpoc_writer_options_default(void);

/* Start an output. `path`: SAFETENSORS / GGUF: the file; SHARDED: either a
 * folder (shards and model.safetensors.index.json are written in it; created
 * if missing) or the index path `<dir>/<stem>.safetensors.index.json`
 * (shards are `<stem>-0000k-of-0000n.safetensors`). Creates the spool file
 * in the destination folder (MPOC_E_IO). Existing destinations are checked
 * at commit. Free with mpoc_writer_commit or mpoc_writer_abort. */
mpoc_status mpoc_writer_create(const char *path, const mpoc_writer_options *opt,
                               mpoc_writer **out);

/* Set a string metadata entry (replaces an earlier one with that key).
 * Safetensors: key and value must be UTF-8 without NUL bytes
 * (MPOC_E_UNSUPPORTED). */
mpoc_status mpoc_writer_set_meta_string(mpoc_writer *w, const char *key, const char *value);
/* Set a typed entry (GGUF only, except STRING which every format holds):
 * kv->type / elem_type / count / raw must describe a valid GGUF encoding
 * (validated; nested arrays refused). The bytes are copied. */
mpoc_status mpoc_writer_set_meta(mpoc_writer *w, const mpoc_meta *kv);
/* Set a u32 entry (GGUF; a decimal string for safetensors). */
mpoc_status mpoc_writer_set_meta_u32(mpoc_writer *w, const char *key, uint32_t v);

/* Copy every metadata entry of m the target can hold: GGUF targets take all
 * typed entries (except general.alignment, which the writer owns);
 * safetensors targets take strings, scalars as decimal text, and skip arrays
 * and entries whose key or string value is not UTF-8 without NUL bytes
 * (*n_skipped counts them; may be NULL). */
mpoc_status mpoc_writer_copy_meta(mpoc_writer *w, const mpoc_model *m, size_t *n_skipped);

/* Add a tensor from raw bytes of `dtype` (nbytes must equal the dtype size
 * of the shape). `shape` is row-major outermost first, n_dims <= 4 for GGUF.
 * The target must store the dtype (MPOC_E_UNSUPPORTED), names must be
 * unique and non-empty (GGUF: <= 63 bytes) (MPOC_E_INVAL), GGUF block types
 * need a row length that is a multiple of the block (MPOC_E_SHAPE).
 * MPOC_E_UNSUPPORTED also for a dim above 2^63 - 1 and, for safetensors, a
 * name that is not UTF-8 or is "__metadata__" (no reader could load it). */
mpoc_status mpoc_writer_add_raw(mpoc_writer *w, const char *name, mpoc_dtype dtype,
                                const uint64_t *shape, uint32_t n_dims,
                                const void *data, uint64_t nbytes);
/* Add a tensor from float32 values (product of shape elements), converted to
 * `dtype` with mpoc_dtype_from_f32. Allocates one converted copy. */
mpoc_status mpoc_writer_add_f32(mpoc_writer *w, const char *name, mpoc_dtype dtype,
                                const uint64_t *shape, uint32_t n_dims, const float *data);
/* Copy a tensor of an opened model byte for byte (same name unless `name`). */
mpoc_status mpoc_writer_add_tensor(mpoc_writer *w, const mpoc_tensor *t, const char *name);

/* Number of tensors added so far. */
size_t mpoc_writer_tensor_count(const mpoc_writer *w);

/* Assemble, fsync and rename every output file into place (shards first, the
 * index last), then free w (whatever the result). MPOC_E_EXISTS when a
 * destination exists and overwrite was not asked or it is an input. */
mpoc_status mpoc_writer_commit(mpoc_writer *w);
/* Drop everything (nothing is left on disk); accepts NULL. */
void mpoc_writer_abort(mpoc_writer *w);

#ifdef __cplusplus
}
#endif
#endif
