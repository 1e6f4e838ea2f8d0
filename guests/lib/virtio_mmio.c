/* virtio-mmio transport, version 2 (virtio 1.x) and version 1 (legacy: GuestPageSize, QueuePFN).
 * Spec: VIRTIO 1.2 section 4.2 (4.2.2 registers, 4.2.4 legacy interface). The GSI comes from the
 * Linux command-line syntax "virtio_mmio.device=<size>@<base>:<irq>" (QEMU microvm and iovmm add it). */
#include "virtio.h"

#include "io.h"
#include "irq.h"

#define MMIO_WINDOW_BASE 0xFEB00000u
#define MMIO_WINDOW_STRIDE 0x200u
#define MMIO_WINDOWS 32
#define MMIO_MAGIC 0x74726976u /* "virt" */

#define REG_MAGIC 0x000
#define REG_VERSION 0x004
#define REG_DEVICE_ID 0x008
#define REG_DEVICE_FEATURES 0x010
#define REG_DEVICE_FEATURES_SEL 0x014
#define REG_DRIVER_FEATURES 0x020
#define REG_DRIVER_FEATURES_SEL 0x024
#define REG_GUEST_PAGE_SIZE 0x028 /* legacy */
#define REG_QUEUE_SEL 0x030
#define REG_QUEUE_NUM_MAX 0x034
#define REG_QUEUE_NUM 0x038
#define REG_QUEUE_ALIGN 0x03C /* legacy */
#define REG_QUEUE_PFN 0x040   /* legacy */
#define REG_QUEUE_READY 0x044
#define REG_QUEUE_NOTIFY 0x050
#define REG_INTERRUPT_STATUS 0x060
#define REG_INTERRUPT_ACK 0x064
#define REG_STATUS 0x070
#define REG_QUEUE_DESC_LOW 0x080
#define REG_QUEUE_DRIVER_LOW 0x090
#define REG_QUEUE_DEVICE_LOW 0x0A0
#define REG_CONFIG_GENERATION 0x0FC
#define REG_CONFIG 0x100

static uint32_t rd(struct virtio_dev *d, uint32_t reg) { return mmio_read32(d->mmio_base + reg); }
static void wr(struct virtio_dev *d, uint32_t reg, uint32_t v) { mmio_write32(d->mmio_base + reg, v); }

static uint8_t get_status(struct virtio_dev *d) { return (uint8_t)rd(d, REG_STATUS); }
static void set_status(struct virtio_dev *d, uint8_t s) { wr(d, REG_STATUS, s); }

static uint64_t get_features(struct virtio_dev *d)
{
    wr(d, REG_DEVICE_FEATURES_SEL, 0);
    uint64_t f = rd(d, REG_DEVICE_FEATURES);
    if (!d->legacy) {
        wr(d, REG_DEVICE_FEATURES_SEL, 1);
        f |= (uint64_t)rd(d, REG_DEVICE_FEATURES) << 32;
    }
    return f;
}

static void set_features(struct virtio_dev *d, uint64_t f)
{
    wr(d, REG_DRIVER_FEATURES_SEL, 0);
    wr(d, REG_DRIVER_FEATURES, (uint32_t)f);
    if (!d->legacy) {
        wr(d, REG_DRIVER_FEATURES_SEL, 1);
        wr(d, REG_DRIVER_FEATURES, (uint32_t)(f >> 32));
    }
}

static uint32_t config_read32(struct virtio_dev *d, uint32_t off) { return rd(d, REG_CONFIG + off); }
static uint32_t config_generation(struct virtio_dev *d) { return d->legacy ? 0 : rd(d, REG_CONFIG_GENERATION); }

static uint16_t queue_max(struct virtio_dev *d, uint16_t index)
{
    wr(d, REG_QUEUE_SEL, index);
    uint32_t n = rd(d, REG_QUEUE_NUM_MAX);
    return n > 0xFFFF ? 0 : (uint16_t)n;
}

static int queue_fixed_size(struct virtio_dev *d)
{
    (void)d;
    return 0;
}

static int queue_activate(struct virtio_dev *d, struct virtqueue *vq)
{
    wr(d, REG_QUEUE_SEL, vq->index);
    if (d->legacy) {
        if (rd(d, REG_QUEUE_PFN) != 0) {
            d->error = "queue-already-in-use";
            return -1;
        }
        wr(d, REG_GUEST_PAGE_SIZE, VIRTIO_LEGACY_QUEUE_ALIGN); /* the unit of QueuePFN */
        wr(d, REG_QUEUE_NUM, vq->size);
        wr(d, REG_QUEUE_ALIGN, VIRTIO_LEGACY_QUEUE_ALIGN);
        wr(d, REG_QUEUE_PFN, (uint32_t)(vq->desc_addr / VIRTIO_LEGACY_QUEUE_ALIGN));
        return 0;
    }
    if (rd(d, REG_QUEUE_READY) != 0) {
        d->error = "queue-already-ready";
        return -1;
    }
    wr(d, REG_QUEUE_NUM, vq->size);
    wr(d, REG_QUEUE_DESC_LOW, (uint32_t)vq->desc_addr);
    wr(d, REG_QUEUE_DESC_LOW + 4, (uint32_t)(vq->desc_addr >> 32));
    wr(d, REG_QUEUE_DRIVER_LOW, (uint32_t)vq->avail_addr);
    wr(d, REG_QUEUE_DRIVER_LOW + 4, (uint32_t)(vq->avail_addr >> 32));
    wr(d, REG_QUEUE_DEVICE_LOW, (uint32_t)vq->used_addr);
    wr(d, REG_QUEUE_DEVICE_LOW + 4, (uint32_t)(vq->used_addr >> 32));
    wr(d, REG_QUEUE_READY, 1);
    return 0;
}

static void notify(struct virtio_dev *d, struct virtqueue *vq) { wr(d, REG_QUEUE_NOTIFY, vq->index); }

/* Edge-triggered, active-high by default although QEMU microvm's DSDT calls the line level: on kvm_pvm
 * a level line is re-delivered thousands of times per completion (see irq.h). Edge loses nothing
 * here because the waiter acknowledges InterruptStatus first and then looks at the used ring, and
 * the next completion raises the line again. Level stays available (mmio_level). */
static int irq_setup(struct virtio_dev *d)
{
    if (d->mmio_gsi < 0) {
        d->error = "mmio-irq-unknown(no-virtio_mmio.device=-on-cmdline)";
        return -1;
    }
    d->vector = irq_route_gsi((unsigned)d->mmio_gsi, d->mmio_level, 0);
    if (d->vector < 0)
        d->error = "mmio-gsi-not-routable";
    return d->vector;
}

static void irq_ack(struct virtio_dev *d)
{
    uint32_t s = rd(d, REG_INTERRUPT_STATUS);
    if (s)
        wr(d, REG_INTERRUPT_ACK, s);
}

static const struct virtio_transport_ops mmio_ops = {
    .get_status = get_status,
    .set_status = set_status,
    .get_features = get_features,
    .set_features = set_features,
    .config_read32 = config_read32,
    .config_generation = config_generation,
    .queue_max = queue_max,
    .queue_fixed_size = queue_fixed_size,
    .queue_activate = queue_activate,
    .notify = notify,
    .irq_setup = irq_setup,
    .irq_ack = irq_ack,
};

/* Number at s (decimal, or hex with 0x), with an optional K/M/G suffix when suffix_ok; advances *s. */
static int parse_number(const char **s, uint64_t *out, int suffix_ok)
{
    const char *p = *s;
    uint64_t v = 0;
    int base = 10, digits = 0;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    for (;; p++, digits++) {
        int dgt;
        if (*p >= '0' && *p <= '9')
            dgt = *p - '0';
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            dgt = *p - 'a' + 10;
        else if (base == 16 && *p >= 'A' && *p <= 'F')
            dgt = *p - 'A' + 10;
        else
            break;
        v = v * (uint64_t)base + (uint64_t)dgt;
    }
    if (!digits)
        return -1;
    if (suffix_ok && (*p == 'K' || *p == 'k' || *p == 'M' || *p == 'm' || *p == 'G' || *p == 'g')) {
        v <<= (*p == 'K' || *p == 'k') ? 10 : (*p == 'M' || *p == 'm') ? 20 : 30;
        p++;
    }
    *s = p;
    *out = v;
    return 0;
}

/* The GSI given for the window at base, or -1. */
static int cmdline_gsi(const char *cmdline, uintptr_t base)
{
    static const char key[] = "virtio_mmio.device=";
    const char *p = cmdline;
    while (p && *p) {
        while (*p == ' ')
            p++;
        const char *word = p;
        while (*p && *p != ' ')
            p++;
        const char *q = word;
        int k = 0;
        while (key[k] && q < p && *q == key[k]) {
            q++;
            k++;
        }
        if (key[k])
            continue;
        uint64_t size, addr, irq;
        if (parse_number(&q, &size, 1) || *q++ != '@' || parse_number(&q, &addr, 0) || *q++ != ':' ||
            parse_number(&q, &irq, 0))
            continue;
        if (addr == base && irq < 256)
            return (int)irq;
    }
    return -1;
}

int virtio_mmio_probe(struct virtio_dev *d, uint32_t device_id, const char *cmdline)
{
    for (int n = 0; n < MMIO_WINDOWS; n++) {
        uintptr_t base = MMIO_WINDOW_BASE + MMIO_WINDOW_STRIDE * (uintptr_t)n;
        if (mmio_read32(base + REG_MAGIC) != MMIO_MAGIC || mmio_read32(base + REG_DEVICE_ID) != device_id)
            continue;
        uint32_t version = mmio_read32(base + REG_VERSION);
        if (version != 1 && version != 2)
            continue;
        d->ops = &mmio_ops;
        d->mmio_base = base;
        d->legacy = version == 1;
        d->transport = d->legacy ? "mmio-legacy" : "mmio";
        d->device_id = device_id;
        d->mmio_gsi = cmdline_gsi(cmdline, base);
        return 0;
    }
    d->error = "no-virtio-mmio-device";
    return -1;
}
