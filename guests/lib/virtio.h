/* Virtio 1.x / legacy split-ring driver core for bench guests: device status and feature handshake,
 * one split virtqueue (descriptor free list, available ring, used ring, notification suppression)
 * and the transport interface the mmio and PCI transports implement.
 *
 * The ring always uses the legacy contiguous layout (descriptors, available ring, used ring at the
 * next 4 KiB boundary), which every transport accepts, so legacy and modern share one code path.
 * Buffers are identity-mapped guest memory: virtual address == guest physical address.
 *
 * Left out: packed rings, indirect descriptors, more than one queue per device, config-change
 * handling beyond counting the interrupt. Constants are restated from the spec because the guest is
 * freestanding (no UAPI headers). Spec: Virtual I/O Device (VIRTIO) Version 1.2, sections 2.1 (status),
 * 2.2 (features), 2.7 (split virtqueues, 2.7.7/2.7.10 notification suppression), 3.1 (initialization),
 * 4.1 (PCI), 4.2 (MMIO). */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include <stdint.h>
#include <stddef.h>

#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1
#define VIRTIO_LEGACY_QUEUE_ALIGN 4096
#define VIRTIO_MAX_QUEUE_SIZE 1024

#define VIRTIO_ID_BLOCK 2

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
};

struct virtio_dev;

struct virtqueue {
    struct virtio_dev *dev;
    uint16_t index;
    uint16_t size;              /* a power of two */
    struct virtq_desc *desc;
    volatile uint16_t *avail;   /* flags, idx, ring[size], used_event */
    volatile uint16_t *used;    /* flags, idx, then virtq_used_elem[size], avail_event */
    uint64_t desc_addr, avail_addr, used_addr;
    uint16_t free_head, num_free;
    uint16_t avail_shadow;      /* next available index (not yet published past kicked_idx) */
    uint16_t kicked_idx;        /* avail idx at the last publish */
    uint16_t last_used;
    int event_idx;
    uint64_t notifies, notifies_suppressed;
};

/* A transport: how status, features, config, queues, notifications and interrupts are reached. */
struct virtio_transport_ops {
    uint8_t (*get_status)(struct virtio_dev *d);
    void (*set_status)(struct virtio_dev *d, uint8_t status);
    uint64_t (*get_features)(struct virtio_dev *d);
    void (*set_features)(struct virtio_dev *d, uint64_t features);
    uint32_t (*config_read32)(struct virtio_dev *d, uint32_t offset); /* device-specific config */
    uint32_t (*config_generation)(struct virtio_dev *d);              /* 0 where there is none */
    uint16_t (*queue_max)(struct virtio_dev *d, uint16_t index);      /* 0: no such queue */
    int (*queue_fixed_size)(struct virtio_dev *d);                    /* legacy PCI: size not writable */
    int (*queue_activate)(struct virtio_dev *d, struct virtqueue *vq);
    void (*notify)(struct virtio_dev *d, struct virtqueue *vq);
    /* Interrupt mode: routes the device's interrupt and returns the vector to wait on (or -1 with
     * d->error set). Called after FEATURES_OK and before queue_activate. */
    int (*irq_setup)(struct virtio_dev *d);
    /* After an interrupt: acknowledge it at the device (mmio InterruptACK, legacy ISR read). */
    void (*irq_ack)(struct virtio_dev *d);
};

struct virtio_dev {
    const struct virtio_transport_ops *ops;
    const char *transport;      /* "mmio", "mmio-legacy", "pci", "pci-legacy" */
    int legacy;
    uint32_t device_id;
    const char *error;          /* why the last step failed */
    /* virtio-mmio */
    uintptr_t mmio_base;
    int mmio_gsi;               /* -1: unknown */
    int mmio_level;             /* route the GSI level-triggered (default edge: see irq.h) */
    /* virtio-pci */
    uint8_t pci_dev;
    uintptr_t common_cfg, notify_base, isr_cfg, device_cfg;
    uint32_t notify_multiplier;
    uintptr_t queue_notify_addr;
    uint16_t io_base;
    uintptr_t msix_table;
    uint8_t msix_cap;
    int msix_enabled;
    uint16_t msix_queue_entry;  /* 0xFFFF: no vector */
    /* interrupt mode */
    int use_irq;
    int vector, config_vector;
};

/* Reset, ACKNOWLEDGE | DRIVER, negotiate (device & wanted; VERSION_1 is required on modern transports
 * and refused on legacy ones), FEATURES_OK where applicable. Returns the negotiated features, or
 * sets d->error, writes FAILED and returns ~0ull. */
uint64_t virtio_negotiate(struct virtio_dev *d, uint64_t wanted);
void virtio_driver_ok(struct virtio_dev *d);
/* Writes status 0 and, on modern transports, waits (bounded) for the device to read back 0. */
void virtio_reset(struct virtio_dev *d);

/* Bytes of memory for a queue of `size` entries in the legacy layout (alignment 4 KiB). */
size_t virtq_bytes(uint16_t size);
/* Lays out queue `index` in mem (zeroed here, 4 KiB aligned, virtq_bytes(size) long) and activates it
 * through the transport. size must be a power of two no larger than the device maximum. */
int virtq_init(struct virtio_dev *d, struct virtqueue *vq, uint16_t index, uint16_t size, void *mem,
               int event_idx);

/* Chains n buffers (device-writable where write[i]) into one request and puts its head on the
 * available ring without publishing it. Returns the head descriptor id, or -1 if descriptors ran out. */
struct virtq_buf {
    uint64_t addr;
    uint32_t len;
    int device_writes;
};
int virtq_add(struct virtqueue *vq, const struct virtq_buf *bufs, int n);
/* Publishes the available index and notifies the device unless it asked not to be (NO_NOTIFY, or
 * avail_event with EVENT_IDX). Returns 1 if it notified. */
int virtq_kick(struct virtqueue *vq);
/* Whether a used entry is waiting (reads the used index with acquire semantics). */
int virtq_has_used(struct virtqueue *vq);
/* Takes one used entry: returns its head id (the chain is freed) and the written length, or -1. */
int virtq_get_used(struct virtqueue *vq, uint32_t *len);
/* Interrupt suppression: on = ask for an interrupt at the next used entry; off = ask for none. */
void virtq_want_interrupts(struct virtqueue *vq, int on);

/* Transports. Each fills d on success (0) or sets d->error (-1). */
/* virtio-mmio: the first window (0xFEB00000 + 0x200 * n, n < 32) with magic "virt" and device_id.
 * cmdline: for the Linux-style "virtio_mmio.device=<size>@<addr>:<irq>" that gives its GSI. */
int virtio_mmio_probe(struct virtio_dev *d, uint32_t device_id, const char *cmdline);
/* virtio-pci on bus 0: vendor 0x1AF4, transitional (0x1000 + id - 1) or modern (0x1040 + id) device.
 * force_legacy: use the legacy I/O BAR0 interface even if modern capabilities exist. */
int virtio_pci_probe(struct virtio_dev *d, uint32_t device_id, int force_legacy);

/* Barriers for memory shared with the device (x86: stores are not reordered with stores, loads not
 * with loads, so only the compiler must be stopped; a store followed by a load needs mfence). */
static inline void virtio_wmb(void) { __asm__ volatile("" ::: "memory"); }
static inline void virtio_rmb(void) { __asm__ volatile("" ::: "memory"); }
static inline void virtio_mb(void) { __asm__ volatile("mfence" ::: "memory"); }

#endif
