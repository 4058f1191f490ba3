/* json.h: the library's only door to jansson, plus a small JSON emitter.
 *
 * Parsing rejects duplicate keys, NUL bytes, invalid UTF-8 and nesting deeper
 * than a caller-given limit (checked by a pre-scan, before jansson sees the
 * text, so no input can exhaust the stack). Integers are 64-bit; a number
 * with a fraction or exponent is a REAL, never an integer. Values are opaque
 * handles borrowed from their document. */
#ifndef MPOC_JSON_H
#define MPOC_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpoc_status.h"

typedef struct mpoc_jv mpoc_jv; /* a JSON value, borrowed from its document */

typedef enum mpoc_json_kind {
    MPOC_JSON_OBJECT,
    MPOC_JSON_ARRAY,
    MPOC_JSON_STRING,
    MPOC_JSON_INTEGER,
    MPOC_JSON_REAL,
    MPOC_JSON_TRUE,
    MPOC_JSON_FALSE,
    MPOC_JSON_NULL
} mpoc_json_kind;

/* True when buf[0..len) is valid UTF-8 (no overlongs, no surrogates). On
 * failure *bad_at is the offset of the first bad byte. */
bool mpoc_utf8_valid(const uint8_t *buf, size_t len, size_t *bad_at);

/* Most structural tokens ([ { , :) a document may hold, counted before
 * jansson runs. jansson spends 20-60 bytes per value, so without it a
 * 100 MB header of "0,0,0,..." took 2 GB of memory and 13 s; under the cap
 * the worst case measured is ~370 MB (2.5 M object members, 26 MB). A
 * typical tensor entry uses ~12 tokens, so every header up to ~40 MB (ours
 * stay below 25 MB) fits. */
#define MPOC_JSON_MAX_TOKENS 5000000u

/* Parse exactly one JSON value (whitespace around it allowed: space, tab,
 * CR, LF). `label` names the source in the logged reason. On success the
 * caller owns *root and frees it with mpoc_json_free. MPOC_E_FORMAT (also
 * for an integer literal -0, see json.c); MPOC_E_UNSUPPORTED over
 * MPOC_JSON_MAX_TOKENS. */
mpoc_status mpoc_json_parse(const char *buf, size_t len, size_t max_depth, const char *label,
                            mpoc_jv **root);
void mpoc_json_free(mpoc_jv *root);

mpoc_json_kind mpoc_json_kind_of(const mpoc_jv *v);
const char *mpoc_json_kind_name(mpoc_json_kind k);
/* Object members or array elements (0 for scalars). */
size_t mpoc_json_size(const mpoc_jv *v);
/* Member by key (NULL when absent or v is not an object). */
const mpoc_jv *mpoc_json_get(const mpoc_jv *obj, const char *key);
/* Array element i (NULL when out of range or not an array). */
const mpoc_jv *mpoc_json_at(const mpoc_jv *arr, size_t i);
/* String contents (NUL-terminated, no embedded NUL) or NULL. */
const char *mpoc_json_str(const mpoc_jv *v, size_t *len);
/* True when v is an integer >= 0; *out gets it. */
bool mpoc_json_u64(const mpoc_jv *v, uint64_t *out);

/* Object iteration in document order:
 *   for (void *it = mpoc_json_iter(o); it; it = mpoc_json_next(o, it)) ... */
void *mpoc_json_iter(const mpoc_jv *obj);
void *mpoc_json_next(const mpoc_jv *obj, void *it);
const char *mpoc_json_iter_key(void *it);
const mpoc_jv *mpoc_json_iter_value(void *it);

/* A growable byte buffer for emitting JSON text. */
typedef struct mpoc_sbuf {
    char *data;  /* owned, NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed: contents are incomplete */
} mpoc_sbuf;

void mpoc_sbuf_free(mpoc_sbuf *b);
void mpoc_sbuf_put(mpoc_sbuf *b, const char *s, size_t n);
void mpoc_sbuf_puts(mpoc_sbuf *b, const char *s);
void mpoc_sbuf_printf(mpoc_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s (n bytes, UTF-8) as a quoted JSON string: `"` and `\` escaped,
 * control characters as \u00XX, everything else verbatim. */
void mpoc_sbuf_json_string(mpoc_sbuf *b, const char *s, size_t n);

#endif
