/* virtio-blk driver for bench guests: one request queue, up to VBLK_MAX_SLOTS requests in flight
 * (each slot has its own header and status byte; the caller supplies the data buffer), polled or
 * interrupt-driven completion, over any transport of virtio.h.
 *
 * Requests: IN (read), OUT (write), FLUSH, GET_ID. A request is three or more descriptors: header
 * (device-readable), data split at size_max when the device sets VIRTIO_BLK_F_SIZE_MAX, status
 * (device-writable). Negotiated: VERSION_1 (modern), FLUSH, SIZE_MAX, SEG_MAX, BLK_SIZE, RO and,
 * on request, RING_EVENT_IDX. Everything runs at CPL3; interrupt mode needs irq_init() (CPL0) first
 * and IF=1 while waiting (irq_run_at_cpl3).
 *
 * Spec: VIRTIO 1.2 section 5.2 (block device: 5.2.3 features, 5.2.4 config, 5.2.6 requests). */
#ifndef GUEST_VIRTIO_BLK_H
#define GUEST_VIRTIO_BLK_H

#include <stdint.h>
#include "virtio.h"

#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_ID_BYTES 20
#define VBLK_SECTOR_SIZE 512
#define VBLK_MAX_SLOTS 64
#define VBLK_MAX_SEGMENTS 64

enum vblk_transport { VBLK_AUTO, VBLK_MMIO, VBLK_PCI, VBLK_PCI_LEGACY };

struct vblk_options {
    enum vblk_transport transport;
    int use_irq;
    int event_idx;
    uint16_t queue_size;   /* wanted; the device maximum caps it (legacy PCI: the device decides) */
    const char *cmdline;   /* for virtio_mmio.device= */
    int mmio_level;        /* virtio-mmio GSI level-triggered (default edge; see irq.h) */
};

struct vblk_header {       /* device-visible, one per slot */
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
    uint8_t status;
    uint8_t pad[15];
};

struct vblk {
    struct virtio_dev dev;
    struct virtqueue vq;
    uint64_t features;
    uint64_t capacity;     /* in 512-byte sectors */
    uint32_t size_max;     /* 0: no limit */
    uint32_t seg_max;      /* 0: no limit */
    int use_irq;
    uint64_t irq_seen;
    uint64_t interrupts;
    struct vblk_header *headers;          /* [VBLK_MAX_SLOTS] */
    int16_t slot_of_head[VIRTIO_MAX_QUEUE_SIZE];
    const char *error;
};

/* Finds and starts the device; memory for rings and headers comes from ram_alloc. Returns 0 or -1
 * with b->error set (b is fully initialised here; it may live in uncleared memory). */
int vblk_init(struct vblk *b, const struct vblk_options *o);

/* Descriptors one request of len data bytes takes. */
int vblk_descriptors_per_request(const struct vblk *b, uint32_t len);

/* Queues (without notifying) a request in slot (0..VBLK_MAX_SLOTS-1, not in flight). data/len may be
 * 0 for FLUSH. Returns 0, or -1 if descriptors ran out or the request cannot be expressed. */
int vblk_submit(struct vblk *b, int slot, uint32_t type, uint64_t sector, void *data, uint32_t len);
/* Publishes queued requests and notifies the device if it wants that. */
void vblk_kick(struct vblk *b);
/* Takes one completion, if any: returns 1 with *slot and *status (VIRTIO_BLK_S_*), else 0. */
int vblk_reap(struct vblk *b, int *slot, uint8_t *status);
/* Waits until a completion can be reaped: spinning on the used index (polled) or on the interrupt
 * counter, then acknowledging the interrupt (irq). Returns 0, or -1 after timeout_cycles. */
int vblk_wait(struct vblk *b, uint64_t timeout_cycles);
/* One request in slot 0, waited for. Returns its status, or -1 (b->error says why). */
int vblk_sync(struct vblk *b, uint32_t type, uint64_t sector, void *data, uint32_t len, uint64_t timeout_cycles);
/* Resets the device (rings are then free to reuse). */
void vblk_shutdown(struct vblk *b);

#endif
