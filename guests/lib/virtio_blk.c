/* virtio-blk driver; see virtio_blk.h. */
#include "virtio_blk.h"

#include "io.h"
#include "irq.h"
#include "mem.h"
#include "ram.h"

#define CONFIG_CAPACITY 0
#define CONFIG_SIZE_MAX 8
#define CONFIG_SEG_MAX 12
#define CONFIG_READ_TRIES 16

static int probe(struct vblk *b, const struct vblk_options *o)
{
    struct virtio_dev *d = &b->dev;
    switch (o->transport) {
    case VBLK_MMIO:
        return virtio_mmio_probe(d, VIRTIO_ID_BLOCK, o->cmdline);
    case VBLK_PCI:
        return virtio_pci_probe(d, VIRTIO_ID_BLOCK, 0);
    case VBLK_PCI_LEGACY:
        return virtio_pci_probe(d, VIRTIO_ID_BLOCK, 1);
    case VBLK_AUTO:
    default:
        /* PCI first: config space answers definitively, while the mmio windows may overlap BARs. */
        if (virtio_pci_probe(d, VIRTIO_ID_BLOCK, 0) == 0)
            return 0;
        memset(d, 0, sizeof(*d));
        return virtio_mmio_probe(d, VIRTIO_ID_BLOCK, o->cmdline);
    }
}

/* Reads the config fields the driver uses, retrying while the generation changes (a torn 64-bit
 * capacity otherwise). */
static void read_config(struct vblk *b)
{
    struct virtio_dev *d = &b->dev;
    for (int i = 0; i < CONFIG_READ_TRIES; i++) {
        uint32_t gen = d->ops->config_generation(d);
        b->capacity = d->ops->config_read32(d, CONFIG_CAPACITY) |
                      (uint64_t)d->ops->config_read32(d, CONFIG_CAPACITY + 4) << 32;
        b->size_max = b->features & (1ull << VIRTIO_BLK_F_SIZE_MAX) ? d->ops->config_read32(d, CONFIG_SIZE_MAX) : 0;
        b->seg_max = b->features & (1ull << VIRTIO_BLK_F_SEG_MAX) ? d->ops->config_read32(d, CONFIG_SEG_MAX) : 0;
        if (d->ops->config_generation(d) == gen)
            return;
    }
}

static int fail(struct vblk *b, const char *why)
{
    b->error = why;
    if (b->dev.ops)
        b->dev.ops->set_status(&b->dev, b->dev.ops->get_status(&b->dev) | VIRTIO_STATUS_FAILED);
    return -1;
}

int vblk_init(struct vblk *b, const struct vblk_options *o)
{
    memset(b, 0, sizeof(*b));
    for (int i = 0; i < VIRTIO_MAX_QUEUE_SIZE; i++)
        b->slot_of_head[i] = -1;
    b->use_irq = o->use_irq;
    b->dev.use_irq = o->use_irq;
    b->dev.vector = b->dev.config_vector = -1;
    if (probe(b, o) != 0) {
        b->error = b->dev.error;
        return -1;
    }
    struct virtio_dev *d = &b->dev;
    d->mmio_level = o->mmio_level;
    uint64_t wanted = (1ull << VIRTIO_BLK_F_SIZE_MAX) | (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_RO) |
                      (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH);
    if (o->event_idx)
        wanted |= 1ull << VIRTIO_F_RING_EVENT_IDX;
    b->features = virtio_negotiate(d, wanted);
    if (b->features == ~0ull) {
        b->error = d->error;
        return -1;
    }
    read_config(b);
    if (b->size_max != 0 && b->size_max < VBLK_SECTOR_SIZE)
        return fail(b, "size_max-below-a-sector");

    uint16_t max = d->ops->queue_max(d, 0);
    if (max == 0)
        return fail(b, "no-request-queue");
    uint16_t size;
    if (d->ops->queue_fixed_size(d)) {
        size = max;
    } else {
        size = o->queue_size && o->queue_size < max ? o->queue_size : max;
        if (size > VIRTIO_MAX_QUEUE_SIZE)
            size = VIRTIO_MAX_QUEUE_SIZE;
        while (size & (size - 1)) /* round down to a power of two */
            size &= (uint16_t)(size - 1);
    }
    if (size > VIRTIO_MAX_QUEUE_SIZE || (size & (size - 1)))
        return fail(b, "unsupported-queue-size");

    void *ring = ram_alloc(virtq_bytes(size), VIRTIO_LEGACY_QUEUE_ALIGN);
    b->headers = ram_alloc(sizeof(struct vblk_header) * VBLK_MAX_SLOTS, 64);
    if (!ring || !b->headers)
        return fail(b, "out-of-ram");
    if (o->use_irq && d->ops->irq_setup(d) < 0)
        return fail(b, d->error);
    if (virtq_init(d, &b->vq, 0, size, ring, (b->features >> VIRTIO_F_RING_EVENT_IDX) & 1) != 0)
        return fail(b, d->error);
    virtq_want_interrupts(&b->vq, o->use_irq);
    virtio_driver_ok(d);
    if (d->ops->get_status(d) & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED))
        return fail(b, "device-refused-DRIVER_OK");
    b->irq_seen = o->use_irq ? irq_count(d->vector) : 0;
    return 0;
}

static uint32_t segments(const struct vblk *b, uint32_t len)
{
    if (len == 0)
        return 0;
    return b->size_max ? (len + b->size_max - 1) / b->size_max : 1;
}

int vblk_descriptors_per_request(const struct vblk *b, uint32_t len) { return 2 + (int)segments(b, len); }

int vblk_submit(struct vblk *b, int slot, uint32_t type, uint64_t sector, void *data, uint32_t len)
{
    if (slot < 0 || slot >= VBLK_MAX_SLOTS)
        return -1;
    uint32_t segs = segments(b, len);
    if (segs > VBLK_MAX_SEGMENTS || (b->seg_max && segs > b->seg_max)) {
        b->error = "request-needs-too-many-segments";
        return -1;
    }
    struct vblk_header *h = &b->headers[slot];
    h->type = type;
    h->reserved = 0;
    h->sector = sector;
    h->status = 0xFF; /* so a completion that wrote nothing is not mistaken for OK */
    struct virtq_buf bufs[VBLK_MAX_SEGMENTS + 2];
    int n = 0;
    bufs[n++] = (struct virtq_buf){ (uint64_t)(uintptr_t)h, 16, 0 };
    int device_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
    for (uint32_t off = 0; off < len;) {
        uint32_t chunk = len - off;
        if (b->size_max && chunk > b->size_max)
            chunk = b->size_max;
        bufs[n++] = (struct virtq_buf){ (uint64_t)(uintptr_t)data + off, chunk, device_writes };
        off += chunk;
    }
    bufs[n++] = (struct virtq_buf){ (uint64_t)(uintptr_t)&h->status, 1, 1 };
    int head = virtq_add(&b->vq, bufs, n);
    if (head < 0) {
        b->error = "queue-full";
        return -1;
    }
    b->slot_of_head[head] = (int16_t)slot;
    return 0;
}

void vblk_kick(struct vblk *b) { virtq_kick(&b->vq); }

int vblk_reap(struct vblk *b, int *slot, uint8_t *status)
{
    for (;;) {
        int head = virtq_get_used(&b->vq, 0);
        if (head < 0)
            return 0;
        int s = b->slot_of_head[head];
        if (s < 0)
            continue; /* not a request of ours: the device returned a stale id */
        b->slot_of_head[head] = -1;
        *slot = s;
        *status = ((volatile struct vblk_header *)&b->headers[s])->status;
        return 1;
    }
}

int vblk_wait(struct vblk *b, uint64_t timeout_cycles)
{
    struct virtqueue *vq = &b->vq;
    uint64_t start = rdtsc();
    if (!b->use_irq) {
        if (vq->event_idx)
            virtq_want_interrupts(vq, 0); /* keep used_event just behind us */
        while (!virtq_has_used(vq)) {
            if (rdtsc() - start > timeout_cycles)
                return -1;
            cpu_pause();
        }
        return 0;
    }
    virtq_want_interrupts(vq, 1);
    for (;;) {
        if (virtq_has_used(vq))
            return 0;
        uint64_t spent = rdtsc() - start;
        if (spent > timeout_cycles || irq_wait(b->dev.vector, &b->irq_seen, timeout_cycles - spent) < 0)
            return -1;
        b->interrupts++;
        /* Acknowledge before the EOI (a level line would fire again), then look at the ring again:
         * a completion that raced with the acknowledgement is found there. */
        b->dev.ops->irq_ack(&b->dev);
        irq_done(b->dev.vector);
    }
}

int vblk_sync(struct vblk *b, uint32_t type, uint64_t sector, void *data, uint32_t len, uint64_t timeout_cycles)
{
    if (vblk_submit(b, 0, type, sector, data, len) != 0)
        return -1;
    vblk_kick(b);
    int slot;
    uint8_t status;
    for (;;) {
        if (vblk_wait(b, timeout_cycles) != 0) {
            b->error = "timeout";
            return -1;
        }
        if (vblk_reap(b, &slot, &status) && slot == 0)
            return status;
    }
}

void vblk_shutdown(struct vblk *b)
{
    if (b->dev.ops)
        virtio_reset(&b->dev);
}
