/* workspace.c: grow-only scratch slots. */
#include <stdlib.h>

#include "mpoc_svd.h"
#include "util.h"
#include "workspace.h"

void *mpoc_ws_get(struct mpoc_workspace *ws, enum mpoc_ws_slot slot, size_t bytes)
{
    if (bytes == 0)
        bytes = 1;
    if (ws->cap[slot] >= bytes)
        return ws->buf[slot];
    free(ws->buf[slot]);
    ws->cap[slot] = 0;
    /* grow by at least 1/4 so slowly increasing requests do not thrash */
    size_t want = bytes + bytes / 4;
    if (want < bytes)
        want = bytes;
    ws->buf[slot] = mpoc_alloc_array(want, 1);
    if (!ws->buf[slot])
        return NULL;
    ws->cap[slot] = want;
    size_t total = 0;
    for (int i = 0; i < WS_SLOT_COUNT; i++)
        total += ws->cap[i];
    if (total > ws->peak_bytes)
        ws->peak_bytes = total;
    return ws->buf[slot];
}

void mpoc_ws_trim(struct mpoc_workspace *ws, size_t max_bytes, uint32_t keep)
{
    for (int i = 0; i < WS_SLOT_COUNT; i++)
        if (!(keep & WS_BIT(i)) && ws->cap[i] > max_bytes) {
            free(ws->buf[i]);
            ws->buf[i] = NULL;
            ws->cap[i] = 0;
        }
}

uint32_t mpoc_ws_bit_of(const struct mpoc_workspace *ws, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    for (int i = 0; i < WS_SLOT_COUNT; i++) {
        uintptr_t b = (uintptr_t)ws->buf[i];
        if (ws->buf[i] && a >= b && a - b < ws->cap[i])
            return WS_BIT(i);
    }
    return 0;
}

float *mpoc_ws_floats(struct mpoc_workspace *ws, enum mpoc_ws_slot slot, size_t n)
{
    size_t bytes;
    if (!mpoc_mul_size(n, sizeof(float), &bytes))
        return NULL;
    return mpoc_ws_get(ws, slot, bytes);
}

mpoc_status mpoc_workspace_new(mpoc_workspace **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? MPOC_OK : MPOC_E_NOMEM;
}

void mpoc_workspace_free(mpoc_workspace *ws)
{
    if (!ws)
        return;
    for (int i = 0; i < WS_SLOT_COUNT; i++)
        free(ws->buf[i]);
    free(ws);
}

size_t mpoc_workspace_peak_bytes(const mpoc_workspace *ws)
{
    return ws ? ws->peak_bytes : 0;
}
