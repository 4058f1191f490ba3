/* bytes.c: the bounded cursor. */
#include "bytes.h"

bool mpoc_cursor_skip(mpoc_cursor *c, uint64_t n)
{
    if (n > mpoc_cursor_left(c))
        return false;
    c->pos += n;
    return true;
}

bool mpoc_cursor_take(mpoc_cursor *c, uint64_t n, const uint8_t **out)
{
    if (n > mpoc_cursor_left(c))
        return false;
    *out = c->base + c->pos;
    c->pos += n;
    return true;
}

bool mpoc_cursor_u8(mpoc_cursor *c, uint8_t *out)
{
    const uint8_t *p;
    if (!mpoc_cursor_take(c, 1, &p))
        return false;
    *out = p[0];
    return true;
}

bool mpoc_cursor_u16(mpoc_cursor *c, uint16_t *out)
{
    const uint8_t *p;
    if (!mpoc_cursor_take(c, 2, &p))
        return false;
    *out = mpoc_load_le16(p);
    return true;
}

bool mpoc_cursor_u32(mpoc_cursor *c, uint32_t *out)
{
    const uint8_t *p;
    if (!mpoc_cursor_take(c, 4, &p))
        return false;
    *out = mpoc_load_le32(p);
    return true;
}

bool mpoc_cursor_u64(mpoc_cursor *c, uint64_t *out)
{
    const uint8_t *p;
    if (!mpoc_cursor_take(c, 8, &p))
        return false;
    *out = mpoc_load_le64(p);
    return true;
}
