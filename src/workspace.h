/* workspace.h: grow-only scratch buffers reused across the steps of one
 * decomposition (first touch of fresh memory costs ~0.6-3 s/GiB here, so a
 * TT-SVD allocates its scratch once and reuses it for every bond).
 *
 * Each slot is an independent buffer; a caller asks for a slot by name and
 * gets at least the bytes it needs. Contents do not survive a grow. Two
 * buffers that must coexist use two slots.
 *
 * Grow-only slots keep every slot's high-water mark alive at once, so a
 * caller whose phases use different slots trims the big ones between
 * phases (mpoc_ws_trim): the peak is then the largest phase, not the sum of
 * all slots' maxima. */
#ifndef MPOC_WORKSPACE_H
#define MPOC_WORKSPACE_H

#include <stddef.h>
#include <stdint.h>

enum mpoc_ws_slot {
    WS_LA_WORK,   /* LAPACK float work array */
    WS_LA_IWORK,  /* LAPACK integer work array */
    WS_LA_TAU,    /* Householder scalars */
    WS_LA_TRI,    /* small triangular factor / SVD of it */
    WS_LA_COLMAJOR, /* column-major copy for QR */
    WS_LA_GRAM,   /* CholeskyQR: Gram / R of one pass (double) */
    WS_LA_RTMP,   /* CholeskyQR: product scratch (double) */
    WS_LA_RTOT,   /* CholeskyQR: accumulated R (double) */
    WS_LA_RF,     /* CholeskyQR: R of one pass (float) */
    WS_LA_TRI2,   /* LQ via CholeskyQR: R of the transpose */
    WS_LA_LQT,    /* LQ via CholeskyQR: the transposed copy */
    WS_LA_U2,     /* SVD of a reduced factor: left vectors */
    WS_LA_VT2,    /* SVD of a reduced factor: right vectors */
    WS_SVD_U,     /* full left vectors before truncation */
    WS_SVD_VT,    /* full right vectors before truncation */
    WS_SVD_S,     /* singular values */
    WS_SVD_COPY,  /* copy destroyed by LAPACK; then the randomized U */
    WS_SVD_SCALED, /* power-of-two scaled input (huge or tiny entries) */
    WS_RSVD_OMEGA,
    WS_RSVD_Y,
    WS_RSVD_Z,
    WS_RSVD_B,
    WS_MPO_A,     /* TT-SVD / contraction ping-pong buffers */
    WS_MPO_B,
    WS_MPO_CORE,
    WS_MPO_IDX,
    WS_SLOT_COUNT
};

struct mpoc_workspace {
    void *buf[WS_SLOT_COUNT];
    size_t cap[WS_SLOT_COUNT];
    size_t peak_bytes; /* high-water mark of all slots together */
};

/* Slots up to this size survive the trims between phases: they are cheap
 * to keep and small against any matrix worth trimming for. */
#define WS_KEEP_BYTES ((size_t)4 << 20)

/* A set of slots for mpoc_ws_trim. */
#define WS_BIT(slot) ((uint32_t)1 << (slot))
_Static_assert(WS_SLOT_COUNT <= 32, "slot sets are 32-bit masks");

/* Free every slot holding more than max_bytes, except those in `keep`.
 * Small slots stay for reuse. */
void mpoc_ws_trim(struct mpoc_workspace *ws, size_t max_bytes, uint32_t keep);

/* WS_BIT of the slot whose buffer holds p, or 0. */
uint32_t mpoc_ws_bit_of(const struct mpoc_workspace *ws, const void *p);

/* At least `bytes` bytes of slot `slot` (64-byte aligned), or NULL when the
 * allocation fails. Previous contents are lost when the slot grows. */
void *mpoc_ws_get(struct mpoc_workspace *ws, enum mpoc_ws_slot slot, size_t bytes);

/* As mpoc_ws_get for n floats, with an overflow check. */
float *mpoc_ws_floats(struct mpoc_workspace *ws, enum mpoc_ws_slot slot, size_t n);

#endif
