/* Virtio split-ring driver core; see virtio.h. */
#include "virtio.h"

#include "io.h"
#include "mem.h"

#define RESET_POLLS 1000000

void virtio_reset(struct virtio_dev *d)
{
    d->ops->set_status(d, 0);
    if (d->legacy)
        return; /* legacy devices reset synchronously on the write */
    for (int i = 0; i < RESET_POLLS && d->ops->get_status(d) != 0; i++)
        cpu_pause();
}

uint64_t virtio_negotiate(struct virtio_dev *d, uint64_t wanted)
{
    virtio_reset(d);
    d->ops->set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
    d->ops->set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    uint64_t offered = d->ops->get_features(d);
    if (d->legacy) {
        wanted &= 0xFFFFFFFFull; /* legacy has one 32-bit feature word and no VERSION_1 */
    } else {
        if (!(offered & (1ull << VIRTIO_F_VERSION_1))) {
            d->error = "modern-transport-without-VERSION_1";
            goto fail;
        }
        wanted |= 1ull << VIRTIO_F_VERSION_1;
    }
    uint64_t features = offered & wanted;
    d->ops->set_features(d, features);
    if (!d->legacy) {
        d->ops->set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
        if (!(d->ops->get_status(d) & VIRTIO_STATUS_FEATURES_OK)) {
            d->error = "FEATURES_OK-not-accepted";
            goto fail;
        }
    }
    return features;
fail:
    d->ops->set_status(d, d->ops->get_status(d) | VIRTIO_STATUS_FAILED);
    return ~0ull;
}

void virtio_driver_ok(struct virtio_dev *d)
{
    uint8_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK;
    if (!d->legacy)
        s |= VIRTIO_STATUS_FEATURES_OK;
    d->ops->set_status(d, s);
}

static size_t align_up(size_t v, size_t a) { return (v + a - 1) & ~(a - 1); }

/* Offsets of the legacy layout: descriptors, available ring (+ used_event), used ring at 4 KiB. */
static size_t avail_offset(uint16_t size) { return (size_t)16 * size; }
static size_t used_offset(uint16_t size)
{
    return align_up(avail_offset(size) + 2 * (3 + (size_t)size), VIRTIO_LEGACY_QUEUE_ALIGN);
}

size_t virtq_bytes(uint16_t size)
{
    return align_up(used_offset(size) + 6 + (size_t)8 * size, VIRTIO_LEGACY_QUEUE_ALIGN);
}

int virtq_init(struct virtio_dev *d, struct virtqueue *vq, uint16_t index, uint16_t size, void *mem,
               int event_idx)
{
    memset(vq, 0, sizeof(*vq));
    if (size == 0 || (size & (size - 1)) || size > VIRTIO_MAX_QUEUE_SIZE) {
        d->error = "bad-queue-size";
        return -1;
    }
    memset(mem, 0, virtq_bytes(size));
    uint8_t *base = mem;
    vq->dev = d;
    vq->index = index;
    vq->size = size;
    vq->desc = (struct virtq_desc *)base;
    vq->avail = (volatile uint16_t *)(base + avail_offset(size));
    vq->used = (volatile uint16_t *)(base + used_offset(size));
    vq->desc_addr = (uint64_t)(uintptr_t)vq->desc;
    vq->avail_addr = (uint64_t)(uintptr_t)vq->avail;
    vq->used_addr = (uint64_t)(uintptr_t)vq->used;
    vq->event_idx = event_idx;
    for (uint16_t i = 0; i < size; i++)
        vq->desc[i].next = (uint16_t)(i + 1);
    vq->free_head = 0;
    vq->num_free = size;
    return d->ops->queue_activate(d, vq);
}

int virtq_add(struct virtqueue *vq, const struct virtq_buf *bufs, int n)
{
    if (n <= 0 || n > vq->num_free)
        return -1;
    uint16_t head = vq->free_head, id = head, last = head;
    for (int i = 0; i < n; i++) {
        struct virtq_desc *dsc = &vq->desc[id];
        dsc->addr = bufs[i].addr;
        dsc->len = bufs[i].len;
        dsc->flags = (uint16_t)((bufs[i].device_writes ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
        last = id;
        id = dsc->next;
    }
    vq->free_head = vq->desc[last].next; /* the chain's last descriptor kept the free-list link */
    vq->num_free = (uint16_t)(vq->num_free - n);
    vq->avail[2 + (vq->avail_shadow & (vq->size - 1))] = head;
    vq->avail_shadow++;
    return head;
}

/* Spec 2.7.10: notify when the new entries [old, new) include avail_event. */
static int need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

int virtq_kick(struct virtqueue *vq)
{
    uint16_t old = vq->kicked_idx, now = vq->avail_shadow;
    if (old == now)
        return 0;
    virtio_wmb(); /* descriptors and ring entries before the index */
    vq->avail[1] = now;
    vq->kicked_idx = now;
    virtio_mb(); /* the index store before reading the device's suppression fields */
    int notify;
    if (vq->event_idx)
        notify = need_event(vq->used[2 + 4 * vq->size], now, old); /* avail_event after the used ring */
    else
        notify = !(vq->used[0] & VIRTQ_USED_F_NO_NOTIFY);
    if (notify) {
        vq->dev->ops->notify(vq->dev, vq);
        vq->notifies++;
    } else {
        vq->notifies_suppressed++;
    }
    return notify;
}

int virtq_has_used(struct virtqueue *vq)
{
    uint16_t idx = vq->used[1];
    virtio_rmb(); /* the index before the entries it covers */
    return idx != vq->last_used;
}

int virtq_get_used(struct virtqueue *vq, uint32_t *len)
{
    if (!virtq_has_used(vq))
        return -1;
    const volatile struct virtq_used_elem *ring = (const volatile struct virtq_used_elem *)(vq->used + 2);
    const volatile struct virtq_used_elem *e = &ring[vq->last_used & (vq->size - 1)];
    uint32_t id = e->id;
    if (len)
        *len = e->len;
    vq->last_used++;
    if (id >= vq->size)
        return -1; /* a device bug; the entry is dropped rather than corrupting the free list */
    /* Return the chain to the free list. */
    uint16_t n = 1, tail = (uint16_t)id;
    while (vq->desc[tail].flags & VIRTQ_DESC_F_NEXT && n < vq->size) {
        tail = vq->desc[tail].next;
        n++;
    }
    vq->desc[tail].next = vq->free_head;
    vq->free_head = (uint16_t)id;
    vq->num_free = (uint16_t)(vq->num_free + n);
    return (int)id;
}

void virtq_want_interrupts(struct virtqueue *vq, int on)
{
    volatile uint16_t *used_event = &vq->avail[2 + vq->size];
    if (vq->event_idx)
        *used_event = on ? vq->last_used : (uint16_t)(vq->last_used - 1);
    else
        vq->avail[0] = on ? 0 : VIRTQ_AVAIL_F_NO_INTERRUPT;
    if (on)
        virtio_mb(); /* the request before re-reading the used index (callers check again) */
}
