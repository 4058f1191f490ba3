/* json.c: jansson behind a narrow interface, and a JSON text emitter. */
#include "json.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util.h"

/* mpoc_jv is never defined: a handle is a json_t cast. */
static const json_t *J(const mpoc_jv *v)
{
    return (const json_t *)(const void *)v;
}

static const mpoc_jv *V(const json_t *j)
{
    return (const mpoc_jv *)(const void *)j;
}

/* Length of the UTF-8 sequence led by b, 0 if b cannot lead one. */
static size_t utf8_lead_len(uint8_t b)
{
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        return 2;
    if (b >= 0xE0 && b <= 0xEF)
        return 3;
    if (b >= 0xF0 && b <= 0xF4)
        return 4;
    return 0;
}

static bool utf8_seq_ok(const uint8_t *p, size_t n)
{
    for (size_t k = 1; k < n; k++)
        if ((p[k] & 0xC0) != 0x80)
            return false;
    if (n == 3 && p[0] == 0xE0 && p[1] < 0xA0)
        return false; /* overlong */
    if (n == 3 && p[0] == 0xED && p[1] >= 0xA0)
        return false; /* surrogate */
    if (n == 4 && p[0] == 0xF0 && p[1] < 0x90)
        return false; /* overlong */
    if (n == 4 && p[0] == 0xF4 && p[1] >= 0x90)
        return false; /* above U+10FFFF */
    return true;
}

bool mpoc_utf8_valid(const uint8_t *buf, size_t len, size_t *bad_at)
{
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_lead_len(buf[i]);
        if (n == 0 || n > len - i || !utf8_seq_ok(buf + i, n)) {
            if (bad_at)
                *bad_at = i;
            return false;
        }
        i += n;
    }
    return true;
}

/* One pass outside strings: the deepest nesting of [ and {, the number of
 * structural tokens ([ { , :), which bounds the values jansson would
 * allocate, and whether an integer literal -0 occurs (jansson reads it as
 * the integer 0; serde, the reference reader, as the float -0.0, which no
 * u64 field accepts). Stops early once depth or tokens pass their limit. */
static void json_prescan(const char *buf, size_t len, size_t depth_limit, size_t *max_depth,
                         size_t *tokens, bool *neg_zero)
{
    *neg_zero = false;
    size_t depth = 0, max = 0, n = 0;
    bool in_str = false;
    for (size_t i = 0; i < len && max <= depth_limit && n <= MPOC_JSON_MAX_TOKENS; i++) {
        char c = buf[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            n++;
            if (++depth > max)
                max = depth;
        } else if (c == ',' || c == ':') {
            n++;
        } else if (c == '-' && i + 1 < len && buf[i + 1] == '0' &&
                   (i + 2 == len || !strchr("0123456789.eE", buf[i + 2]))) {
            *neg_zero = true;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    *max_depth = max;
    *tokens = n;
}

mpoc_status mpoc_json_parse(const char *buf, size_t len, size_t max_depth, const char *label,
                            mpoc_jv **root)
{
    *root = NULL;
    if (!label)
        label = "(json)";
    if (memchr(buf, '\0', len))
        MPOC_FAIL(MPOC_E_FORMAT, "%s: JSON text contains a NUL byte at offset %zu", label,
                  (size_t)((const char *)memchr(buf, '\0', len) - buf));
    size_t depth, tokens;
    bool neg_zero;
    json_prescan(buf, len, max_depth, &depth, &tokens, &neg_zero);
    if (depth > max_depth)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: JSON nested deeper than %zu levels", label, max_depth);
    if (tokens > MPOC_JSON_MAX_TOKENS)
        MPOC_FAIL(MPOC_E_UNSUPPORTED, "%s: JSON text holds more than %u values (policy cap: "
                  "parsed, each costs ~20-60 bytes of memory)", label, MPOC_JSON_MAX_TOKENS);
    if (neg_zero)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: JSON holds the integer -0, which the reference reader "
                  "takes for a negative real", label);
    json_error_t err;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
    if (!j)
        MPOC_FAIL(MPOC_E_FORMAT, "%s: invalid JSON at byte %d (line %d): %s", label, err.position,
                  err.line, err.text);
    *root = (mpoc_jv *)(void *)j;
    return MPOC_OK;
}

void mpoc_json_free(mpoc_jv *root)
{
    if (root)
        json_decref((json_t *)(void *)root);
}

mpoc_json_kind mpoc_json_kind_of(const mpoc_jv *v)
{
    switch (json_typeof(J(v))) {
    case JSON_OBJECT: return MPOC_JSON_OBJECT;
    case JSON_ARRAY: return MPOC_JSON_ARRAY;
    case JSON_STRING: return MPOC_JSON_STRING;
    case JSON_INTEGER: return MPOC_JSON_INTEGER;
    case JSON_REAL: return MPOC_JSON_REAL;
    case JSON_TRUE: return MPOC_JSON_TRUE;
    case JSON_FALSE: return MPOC_JSON_FALSE;
    default: return MPOC_JSON_NULL;
    }
}

const char *mpoc_json_kind_name(mpoc_json_kind k)
{
    static const char *const names[] = {"object", "array", "string", "integer",
                                        "real",   "true",  "false",  "null"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

size_t mpoc_json_size(const mpoc_jv *v)
{
    if (json_is_object(J(v)))
        return json_object_size(J(v));
    if (json_is_array(J(v)))
        return json_array_size(J(v));
    return 0;
}

const mpoc_jv *mpoc_json_get(const mpoc_jv *obj, const char *key)
{
    return json_is_object(J(obj)) ? V(json_object_get(J(obj), key)) : NULL;
}

const mpoc_jv *mpoc_json_at(const mpoc_jv *arr, size_t i)
{
    return json_is_array(J(arr)) ? V(json_array_get(J(arr), i)) : NULL;
}

const char *mpoc_json_str(const mpoc_jv *v, size_t *len)
{
    if (!json_is_string(J(v)))
        return NULL;
    if (len)
        *len = json_string_length(J(v));
    return json_string_value(J(v));
}

bool mpoc_json_u64(const mpoc_jv *v, uint64_t *out)
{
    if (!json_is_integer(J(v)))
        return false;
    json_int_t x = json_integer_value(J(v));
    if (x < 0)
        return false;
    *out = (uint64_t)x;
    return true;
}

void *mpoc_json_iter(const mpoc_jv *obj)
{
    /* jansson's iterator API is not const-correct; it does not modify. */
    return json_is_object(J(obj)) ? json_object_iter((json_t *)(uintptr_t)J(obj)) : NULL;
}

void *mpoc_json_next(const mpoc_jv *obj, void *it)
{
    return json_object_iter_next((json_t *)(uintptr_t)J(obj), it);
}

const char *mpoc_json_iter_key(void *it)
{
    return json_object_iter_key(it);
}

const mpoc_jv *mpoc_json_iter_value(void *it)
{
    return V(json_object_iter_value(it));
}

/* ---- emitter ------------------------------------------------------------ */

void mpoc_sbuf_free(mpoc_sbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static bool sbuf_reserve(mpoc_sbuf *b, size_t extra)
{
    size_t need;
    if (b->failed || !mpoc_add_size(b->len, extra, &need) || !mpoc_add_size(need, 1, &need)) {
        b->failed = true;
        return false;
    }
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void mpoc_sbuf_put(mpoc_sbuf *b, const char *s, size_t n)
{
    if (!sbuf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void mpoc_sbuf_puts(mpoc_sbuf *b, const char *s)
{
    mpoc_sbuf_put(b, s, strlen(s));
}

void mpoc_sbuf_printf(mpoc_sbuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        mpoc_sbuf_put(b, small, (size_t)n);
        return;
    }
    if (!sbuf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void mpoc_sbuf_json_string(mpoc_sbuf *b, const char *s, size_t n)
{
    mpoc_sbuf_put(b, "\"", 1);
    size_t run = 0; /* start of the pending verbatim run */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        mpoc_sbuf_put(b, s + run, i - run);
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            mpoc_sbuf_put(b, esc, 2);
        } else {
            mpoc_sbuf_printf(b, "\\u%04x", c);
        }
        run = i + 1;
    }
    mpoc_sbuf_put(b, s + run, n - run);
    mpoc_sbuf_put(b, "\"", 1);
}
