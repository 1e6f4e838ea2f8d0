/* virtio-pci transport: modern (virtio 1.x capabilities: common, notify, ISR, device config, found
 * through vendor capabilities in the BARs they name) and legacy (I/O BAR0 register block), with
 * MSI-X for interrupt mode (entry 0: config changes, entry 1: the queue). INTx is not used.
 * Spec: VIRTIO 1.2 section 4.1 (4.1.4 capabilities, 4.1.4.3 common config, 4.1.4.4 notify,
 * 4.1.4.10 legacy interface); PCI Local Bus 3.0 section 6.8.2 (MSI-X). BARs must have been assigned
 * (firmware under QEMU -M pc, the VMM under iovmm). */
#include "virtio.h"

#include "io.h"
#include "irq.h"
#include "pci.h"

#define VIRTIO_PCI_VENDOR 0x1AF4
#define VIRTIO_PCI_TRANSITIONAL_BASE 0x0FFF /* + device id: 0x1001 for block */
#define VIRTIO_PCI_MODERN_BASE 0x1040

#define PCI_REG_COMMAND 0x04
#define PCI_REG_STATUS 0x06
#define PCI_REG_BAR0 0x10
#define PCI_REG_CAP_PTR 0x34
#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_CAP_ID_VENDOR 0x09
#define PCI_CAP_ID_MSIX 0x11

#define VIRTIO_PCI_CAP_COMMON 1
#define VIRTIO_PCI_CAP_NOTIFY 2
#define VIRTIO_PCI_CAP_ISR 3
#define VIRTIO_PCI_CAP_DEVICE 4

/* Modern common configuration (4.1.4.3). */
#define COMMON_DFSELECT 0x00
#define COMMON_DF 0x04
#define COMMON_GFSELECT 0x08
#define COMMON_GF 0x0C
#define COMMON_MSIX_CONFIG 0x10
#define COMMON_STATUS 0x14
#define COMMON_CFG_GENERATION 0x15
#define COMMON_Q_SELECT 0x16
#define COMMON_Q_SIZE 0x18
#define COMMON_Q_MSIX 0x1A
#define COMMON_Q_ENABLE 0x1C
#define COMMON_Q_NOFF 0x1E
#define COMMON_Q_DESC 0x20
#define COMMON_Q_AVAIL 0x28
#define COMMON_Q_USED 0x30

/* Legacy I/O registers (4.1.4.10). */
#define LEGACY_HOST_FEATURES 0x00
#define LEGACY_GUEST_FEATURES 0x04
#define LEGACY_QUEUE_PFN 0x08
#define LEGACY_QUEUE_NUM 0x0C
#define LEGACY_QUEUE_SEL 0x0E
#define LEGACY_QUEUE_NOTIFY 0x10
#define LEGACY_STATUS 0x12
#define LEGACY_ISR 0x13
#define LEGACY_MSIX_CONFIG 0x14
#define LEGACY_MSIX_QUEUE 0x16
#define LEGACY_CONFIG 0x14 /* 0x18 while MSI-X is enabled */
#define LEGACY_CONFIG_MSIX 0x18

#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_MASK_ALL 0x4000
#define MSIX_NO_VECTOR 0xFFFF
#define MSIX_ENTRY_CONFIG 0
#define MSIX_ENTRY_QUEUE 1

static uint32_t cfg32(struct virtio_dev *d, uint8_t off) { return pci_read32(0, d->pci_dev, 0, off); }

/* ---- modern ---- */
static uint8_t m_get_status(struct virtio_dev *d) { return mmio_read8(d->common_cfg + COMMON_STATUS); }
static void m_set_status(struct virtio_dev *d, uint8_t s) { mmio_write8(d->common_cfg + COMMON_STATUS, s); }

static uint64_t m_get_features(struct virtio_dev *d)
{
    mmio_write32(d->common_cfg + COMMON_DFSELECT, 0);
    uint64_t f = mmio_read32(d->common_cfg + COMMON_DF);
    mmio_write32(d->common_cfg + COMMON_DFSELECT, 1);
    return f | (uint64_t)mmio_read32(d->common_cfg + COMMON_DF) << 32;
}

static void m_set_features(struct virtio_dev *d, uint64_t f)
{
    mmio_write32(d->common_cfg + COMMON_GFSELECT, 0);
    mmio_write32(d->common_cfg + COMMON_GF, (uint32_t)f);
    mmio_write32(d->common_cfg + COMMON_GFSELECT, 1);
    mmio_write32(d->common_cfg + COMMON_GF, (uint32_t)(f >> 32));
}

static uint32_t m_config_read32(struct virtio_dev *d, uint32_t off) { return mmio_read32(d->device_cfg + off); }
static uint32_t m_config_generation(struct virtio_dev *d) { return mmio_read8(d->common_cfg + COMMON_CFG_GENERATION); }

static uint16_t m_queue_max(struct virtio_dev *d, uint16_t index)
{
    mmio_write16(d->common_cfg + COMMON_Q_SELECT, index);
    return mmio_read16(d->common_cfg + COMMON_Q_SIZE);
}

static int no_fixed_size(struct virtio_dev *d)
{
    (void)d;
    return 0;
}

static void write64(uintptr_t a, uint64_t v)
{
    mmio_write32(a, (uint32_t)v);
    mmio_write32(a + 4, (uint32_t)(v >> 32));
}

static int m_queue_activate(struct virtio_dev *d, struct virtqueue *vq)
{
    uintptr_t c = d->common_cfg;
    mmio_write16(c + COMMON_Q_SELECT, vq->index);
    if (mmio_read16(c + COMMON_Q_ENABLE)) {
        d->error = "queue-already-enabled";
        return -1;
    }
    mmio_write16(c + COMMON_Q_SIZE, vq->size);
    write64(c + COMMON_Q_DESC, vq->desc_addr);
    write64(c + COMMON_Q_AVAIL, vq->avail_addr);
    write64(c + COMMON_Q_USED, vq->used_addr);
    if (d->use_irq) {
        mmio_write16(c + COMMON_Q_MSIX, d->msix_queue_entry);
        if (mmio_read16(c + COMMON_Q_MSIX) != d->msix_queue_entry) {
            d->error = "queue-msix-vector-refused";
            return -1;
        }
    }
    d->queue_notify_addr = d->notify_base + (uintptr_t)mmio_read16(c + COMMON_Q_NOFF) * d->notify_multiplier;
    mmio_write16(c + COMMON_Q_ENABLE, 1);
    return 0;
}

static void m_notify(struct virtio_dev *d, struct virtqueue *vq) { mmio_write16(d->queue_notify_addr, vq->index); }

/* ---- legacy ---- */
static uint8_t l_get_status(struct virtio_dev *d) { return inb((uint16_t)(d->io_base + LEGACY_STATUS)); }
static void l_set_status(struct virtio_dev *d, uint8_t s) { outb((uint16_t)(d->io_base + LEGACY_STATUS), s); }
static uint64_t l_get_features(struct virtio_dev *d) { return inl((uint16_t)(d->io_base + LEGACY_HOST_FEATURES)); }
static void l_set_features(struct virtio_dev *d, uint64_t f)
{
    outl((uint16_t)(d->io_base + LEGACY_GUEST_FEATURES), (uint32_t)f);
}

static uint32_t l_config_read32(struct virtio_dev *d, uint32_t off)
{
    uint32_t base = d->msix_enabled ? LEGACY_CONFIG_MSIX : LEGACY_CONFIG;
    return inl((uint16_t)(d->io_base + base + off));
}

static uint32_t l_config_generation(struct virtio_dev *d)
{
    (void)d;
    return 0;
}

static uint16_t l_queue_max(struct virtio_dev *d, uint16_t index)
{
    outw((uint16_t)(d->io_base + LEGACY_QUEUE_SEL), index);
    return inw((uint16_t)(d->io_base + LEGACY_QUEUE_NUM));
}

static int l_fixed_size(struct virtio_dev *d)
{
    (void)d;
    return 1;
}

static int l_queue_activate(struct virtio_dev *d, struct virtqueue *vq)
{
    outw((uint16_t)(d->io_base + LEGACY_QUEUE_SEL), vq->index);
    if (inw((uint16_t)(d->io_base + LEGACY_QUEUE_NUM)) != vq->size) {
        d->error = "legacy-queue-size-mismatch";
        return -1;
    }
    if (d->use_irq) {
        outw((uint16_t)(d->io_base + LEGACY_MSIX_QUEUE), d->msix_queue_entry);
        if (inw((uint16_t)(d->io_base + LEGACY_MSIX_QUEUE)) != d->msix_queue_entry) {
            d->error = "queue-msix-vector-refused";
            return -1;
        }
    }
    outl((uint16_t)(d->io_base + LEGACY_QUEUE_PFN), (uint32_t)(vq->desc_addr / VIRTIO_LEGACY_QUEUE_ALIGN));
    return 0;
}

static void l_notify(struct virtio_dev *d, struct virtqueue *vq)
{
    outw((uint16_t)(d->io_base + LEGACY_QUEUE_NOTIFY), vq->index);
}

/* ---- MSI-X (both flavours) ---- */
static uint64_t bar_address(struct virtio_dev *d, int bar, int *is_io)
{
    if (bar < 0 || bar > 5)
        return 0;
    uint32_t lo = cfg32(d, (uint8_t)(PCI_REG_BAR0 + 4 * bar));
    *is_io = lo & 1;
    if (lo & 1)
        return lo & ~3u;
    uint64_t a = lo & ~0xFu;
    if (((lo >> 1) & 3) == 2 && bar < 5)
        a |= (uint64_t)cfg32(d, (uint8_t)(PCI_REG_BAR0 + 4 * (bar + 1))) << 32;
    return a;
}

static void msix_entry(struct virtio_dev *d, int entry, int vector)
{
    uint64_t addr;
    uint32_t data;
    irq_msi_message(vector, &addr, &data);
    uintptr_t e = d->msix_table + 16 * (uintptr_t)entry;
    mmio_write32(e + 0, (uint32_t)addr);
    mmio_write32(e + 4, (uint32_t)(addr >> 32));
    mmio_write32(e + 8, data);
    mmio_write32(e + 12, 0); /* unmasked */
}

static int irq_setup(struct virtio_dev *d)
{
    if (!d->msix_cap) {
        d->error = "no-msix-capability";
        return -1;
    }
    uint16_t ctrl = pci_read16(0, d->pci_dev, 0, (uint8_t)(d->msix_cap + 2));
    if ((ctrl & 0x7FF) + 1 < 2) {
        d->error = "msix-table-too-small";
        return -1;
    }
    uint32_t table = pci_read32(0, d->pci_dev, 0, (uint8_t)(d->msix_cap + 4));
    int is_io;
    uint64_t bar = bar_address(d, (int)(table & 7), &is_io);
    if (!bar || is_io) {
        d->error = "msix-bar-unassigned";
        return -1;
    }
    d->msix_table = (uintptr_t)(bar + (table & ~7u));
    uint64_t unused_addr;
    uint32_t unused_data;
    d->config_vector = irq_alloc_msi(&unused_addr, &unused_data);
    d->vector = irq_alloc_msi(&unused_addr, &unused_data);
    if (d->vector < 0 || d->config_vector < 0) {
        d->error = "out-of-vectors";
        return -1;
    }
    /* Enable with the function masked, program the entries, then unmask. */
    pci_write16(0, d->pci_dev, 0, (uint8_t)(d->msix_cap + 2), (uint16_t)(ctrl | MSIX_CTRL_ENABLE | MSIX_CTRL_MASK_ALL));
    msix_entry(d, MSIX_ENTRY_CONFIG, d->config_vector);
    msix_entry(d, MSIX_ENTRY_QUEUE, d->vector);
    pci_write16(0, d->pci_dev, 0, (uint8_t)(d->msix_cap + 2), (uint16_t)((ctrl | MSIX_CTRL_ENABLE) & ~MSIX_CTRL_MASK_ALL));
    d->msix_enabled = 1;
    d->msix_queue_entry = MSIX_ENTRY_QUEUE;
    uint16_t readback;
    if (d->legacy) {
        outw((uint16_t)(d->io_base + LEGACY_MSIX_CONFIG), MSIX_ENTRY_CONFIG);
        readback = inw((uint16_t)(d->io_base + LEGACY_MSIX_CONFIG));
    } else {
        mmio_write16(d->common_cfg + COMMON_MSIX_CONFIG, MSIX_ENTRY_CONFIG);
        readback = mmio_read16(d->common_cfg + COMMON_MSIX_CONFIG);
    }
    if (readback != MSIX_ENTRY_CONFIG) {
        d->error = "config-msix-vector-refused";
        return -1;
    }
    return d->vector;
}

static void msix_irq_ack(struct virtio_dev *d)
{
    (void)d; /* MSI-X: nothing to acknowledge at the device */
}

static const struct virtio_transport_ops modern_ops = {
    .get_status = m_get_status,
    .set_status = m_set_status,
    .get_features = m_get_features,
    .set_features = m_set_features,
    .config_read32 = m_config_read32,
    .config_generation = m_config_generation,
    .queue_max = m_queue_max,
    .queue_fixed_size = no_fixed_size,
    .queue_activate = m_queue_activate,
    .notify = m_notify,
    .irq_setup = irq_setup,
    .irq_ack = msix_irq_ack,
};

static const struct virtio_transport_ops legacy_ops = {
    .get_status = l_get_status,
    .set_status = l_set_status,
    .get_features = l_get_features,
    .set_features = l_set_features,
    .config_read32 = l_config_read32,
    .config_generation = l_config_generation,
    .queue_max = l_queue_max,
    .queue_fixed_size = l_fixed_size,
    .queue_activate = l_queue_activate,
    .notify = l_notify,
    .irq_setup = irq_setup,
    .irq_ack = msix_irq_ack,
};

/* Walks the capability list: the first capability of each virtio type, and MSI-X. Returns 0 when
 * common, notify and device capabilities were all found in assigned memory BARs. */
static int find_modern_caps(struct virtio_dev *d)
{
    int found = 0;
    uint8_t ptr = pci_read8(0, d->pci_dev, 0, PCI_REG_CAP_PTR) & 0xFC;
    for (int guard = 0; ptr && guard < 48; guard++) {
        uint8_t id = pci_read8(0, d->pci_dev, 0, ptr);
        if (id == PCI_CAP_ID_MSIX && !d->msix_cap)
            d->msix_cap = ptr;
        if (id == PCI_CAP_ID_VENDOR) {
            uint8_t type = pci_read8(0, d->pci_dev, 0, (uint8_t)(ptr + 3));
            uint8_t bar = pci_read8(0, d->pci_dev, 0, (uint8_t)(ptr + 4));
            uint32_t offset = pci_read32(0, d->pci_dev, 0, (uint8_t)(ptr + 8));
            int is_io = 0;
            uint64_t base = bar_address(d, bar, &is_io);
            uintptr_t addr = (uintptr_t)(base + offset);
            int bit = 1 << type;
            if (type >= VIRTIO_PCI_CAP_COMMON && type <= VIRTIO_PCI_CAP_DEVICE && !(found & bit) && base && !is_io) {
                found |= bit;
                if (type == VIRTIO_PCI_CAP_COMMON)
                    d->common_cfg = addr;
                else if (type == VIRTIO_PCI_CAP_NOTIFY) {
                    d->notify_base = addr;
                    d->notify_multiplier = pci_read32(0, d->pci_dev, 0, (uint8_t)(ptr + 16));
                } else if (type == VIRTIO_PCI_CAP_ISR)
                    d->isr_cfg = addr;
                else
                    d->device_cfg = addr;
            }
        }
        ptr = pci_read8(0, d->pci_dev, 0, (uint8_t)(ptr + 1)) & 0xFC;
    }
    int need = (1 << VIRTIO_PCI_CAP_COMMON) | (1 << VIRTIO_PCI_CAP_NOTIFY) | (1 << VIRTIO_PCI_CAP_DEVICE);
    return (found & need) == need ? 0 : -1;
}

int virtio_pci_probe(struct virtio_dev *d, uint32_t device_id, int force_legacy)
{
    struct pci_func f;
    int modern_id = pci_find_device(VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_MODERN_BASE + device_id), &f) == 0;
    if (!modern_id && pci_find_device(VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_TRANSITIONAL_BASE + device_id), &f) != 0) {
        d->error = "no-virtio-pci-device";
        return -1;
    }
    d->pci_dev = f.dev;
    d->device_id = device_id;
    d->msix_queue_entry = MSIX_NO_VECTOR;
    /* Bus mastering is what lets the device reach the rings; INTx stays off (MSI-X or polling). */
    uint16_t cmd = pci_read16(0, f.dev, 0, PCI_REG_COMMAND);
    pci_write16(0, f.dev, 0, PCI_REG_COMMAND,
                (uint16_t)(cmd | PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE));
    int have_caps = (pci_read16(0, f.dev, 0, PCI_REG_STATUS) & PCI_STATUS_CAP_LIST) && find_modern_caps(d) == 0;
    if (!force_legacy && have_caps) {
        d->ops = &modern_ops;
        d->transport = "pci";
        d->legacy = 0;
        return 0;
    }
    int is_io = 0;
    uint64_t io = bar_address(d, 0, &is_io);
    if (modern_id || !is_io || !io || io > 0xFFFF) {
        d->error = force_legacy ? "no-legacy-io-bar" : "no-usable-virtio-pci-interface";
        return -1;
    }
    d->ops = &legacy_ops;
    d->transport = "pci-legacy";
    d->legacy = 1;
    d->io_base = (uint16_t)io;
    return 0;
}
