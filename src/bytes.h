/* bytes.h: a bounded little-endian cursor over (pointer, length).
 *
 * The only way parsers read bytes. Every read checks the bytes remaining
 * first; a failed read leaves the cursor where it was and returns false. */
#ifndef MPOC_BYTES_H
#define MPOC_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mpoc_cursor {
    const uint8_t *base; /* start of the buffer (borrowed) */
    uint64_t len;        /* total bytes in the buffer */
    uint64_t pos;        /* next byte to read, 0 <= pos <= len */
} mpoc_cursor;

static inline mpoc_cursor mpoc_cursor_make(const void *base, uint64_t len)
{
    mpoc_cursor c = {(const uint8_t *)base, len, 0};
    return c;
}

static inline uint64_t mpoc_cursor_left(const mpoc_cursor *c)
{
    return c->len - c->pos;
}

bool mpoc_cursor_skip(mpoc_cursor *c, uint64_t n);
/* Borrow n bytes at the cursor and advance past them. */
bool mpoc_cursor_take(mpoc_cursor *c, uint64_t n, const uint8_t **out);
bool mpoc_cursor_u8(mpoc_cursor *c, uint8_t *out);
bool mpoc_cursor_u16(mpoc_cursor *c, uint16_t *out);
bool mpoc_cursor_u32(mpoc_cursor *c, uint32_t *out);
bool mpoc_cursor_u64(mpoc_cursor *c, uint64_t *out);

/* Little-endian loads and stores from/to raw memory (no bounds check: the
 * caller has one). */
static inline uint16_t mpoc_load_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t mpoc_load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static inline uint64_t mpoc_load_le64(const uint8_t *p)
{
    return (uint64_t)mpoc_load_le32(p) | ((uint64_t)mpoc_load_le32(p + 4) << 32);
}
static inline void mpoc_store_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void mpoc_store_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void mpoc_store_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

#endif
