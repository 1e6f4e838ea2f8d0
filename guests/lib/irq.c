#include "irq.h"

#include "cpu.h"
#include "cpu_layout.h"
#include "io.h"
#include "irq_layout.h"

_Static_assert(IRQ_LAYOUT_PER_KIND == IRQ_VECTORS_PER_KIND, "irq_layout.h out of step");
_Static_assert(IRQ_LAYOUT_IDT_ENTRIES == IRQ_EDGE_VECTOR_BASE + IRQ_VECTORS_PER_KIND, "IDT size");

#define LAPIC_BASE_ADDR 0xFEE00000u
#define LAPIC_REG_ID 0x20
#define LAPIC_REG_TPR 0x80
#define LAPIC_REG_EOI 0xB0
#define LAPIC_REG_SVR 0xF0
#define LAPIC_SVR_ENABLE 0x100

#define IOAPIC0_BASE 0xFEC00000u
#define IOAPIC1_BASE 0xFEC10000u /* QEMU microvm's second IOAPIC (GSI base 24) */
#define IOAPIC_PINS_PER_CHIP 24
#define IOAPIC_MAX_GSI (2 * IOAPIC_PINS_PER_CHIP)
#define IOAPIC_REG_VERSION 0x01
#define IOAPIC_REG_REDIR 0x10
#define IOAPIC_REDIR_LEVEL (1u << 15)
#define IOAPIC_REDIR_ACTIVE_LOW (1u << 13)
#define IOAPIC_REDIR_MASKED (1u << 16)

#define PIC_MASTER_DATA 0x21
#define PIC_SLAVE_DATA 0xA1

#define MSI_ADDRESS_BASE 0xFEE00000u
#define GATE_INTERRUPT_DPL0 0x8E

struct __attribute__((packed)) idt_gate {
    uint16_t offset_lo;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attr;
    uint16_t offset_mid;
    uint32_t offset_hi;
    uint32_t reserved;
};

extern struct idt_gate irq_idt[IRQ_LAYOUT_IDT_ENTRIES]; /* irq_asm.S */
extern const uint64_t isr_stub_table[32];                /* cpu_asm.S */
extern const uint64_t irq_level_stubs[IRQ_VECTORS_PER_KIND], irq_edge_stubs[IRQ_VECTORS_PER_KIND];
extern const char irq_ud_stub[], irq_spurious_stub[];
void irq_cpl3_sti(void);
void irq_cpl3_cli(void);

/* Incremented by the stubs: level vectors first, then edge vectors. */
volatile uint64_t irq_counts[2 * IRQ_VECTORS_PER_KIND];
static int initialized;
static int n_level, n_edge;
static uint8_t gsi_vector[IOAPIC_MAX_GSI]; /* 0 = not routed */

uint32_t irq_lapic_read(uint32_t reg) { return mmio_read32(LAPIC_BASE_ADDR + reg); }
void irq_lapic_write(uint32_t reg, uint32_t v) { mmio_write32(LAPIC_BASE_ADDR + reg, v); }

static uint32_t this_apic_id(void) { return irq_lapic_read(LAPIC_REG_ID) >> 24; }

static void set_gate(int vec, uint64_t handler)
{
    struct idt_gate *g = &irq_idt[vec];
    g->offset_lo = (uint16_t)handler;
    g->selector = SEL_KCODE;
    g->ist = 0;
    g->type_attr = GATE_INTERRUPT_DPL0;
    g->offset_mid = (uint16_t)(handler >> 16);
    g->offset_hi = (uint32_t)(handler >> 32);
    g->reserved = 0;
}

int irq_init(void)
{
    if (initialized)
        return 0;
    /* Not-present gates for unused vectors: a stray vector becomes a reported #NP, not a jump to 0. */
    for (int v = 0; v < IRQ_LAYOUT_IDT_ENTRIES; v++) {
        irq_idt[v] = (struct idt_gate){ 0 };
    }
    for (int v = 0; v < 32; v++)
        set_gate(v, isr_stub_table[v]);
    set_gate(6, (uint64_t)irq_ud_stub);
    set_gate(IRQ_SPURIOUS_VECTOR, (uint64_t)irq_spurious_stub);
    for (int i = 0; i < IRQ_VECTORS_PER_KIND; i++) {
        set_gate(IRQ_LEVEL_VECTOR_BASE + i, irq_level_stubs[i]);
        set_gate(IRQ_EDGE_VECTOR_BASE + i, irq_edge_stubs[i]);
    }
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } idtr = { sizeof(irq_idt) - 1, (uint64_t)irq_idt };
    __asm__ volatile("lidt %0" : : "m"(idtr));

    outb(PIC_MASTER_DATA, 0xFF);
    outb(PIC_SLAVE_DATA, 0xFF);
    irq_lapic_write(LAPIC_REG_TPR, 0);
    irq_lapic_write(LAPIC_REG_SVR, LAPIC_SVR_ENABLE | IRQ_SPURIOUS_VECTOR);
    initialized = 1;
    return 0;
}

/* The IOAPIC serving gsi and its pin, or 0 when there is none (absent chip reads all-ones). */
static uintptr_t ioapic_for(unsigned gsi, unsigned *pin)
{
    if (gsi >= IOAPIC_MAX_GSI)
        return 0;
    uintptr_t base = gsi < IOAPIC_PINS_PER_CHIP ? IOAPIC0_BASE : IOAPIC1_BASE;
    *pin = gsi % IOAPIC_PINS_PER_CHIP;
    mmio_write32(base, IOAPIC_REG_VERSION);
    uint32_t version = mmio_read32(base + 0x10);
    if (version == 0xFFFFFFFFu || *pin > ((version >> 16) & 0xFF))
        return 0;
    return base;
}

static void ioapic_write(uintptr_t base, uint32_t reg, uint32_t v)
{
    mmio_write32(base, reg);
    mmio_write32(base + 0x10, v);
}

static uint32_t ioapic_read(uintptr_t base, uint32_t reg)
{
    mmio_write32(base, reg);
    return mmio_read32(base + 0x10);
}

int irq_route_gsi(unsigned gsi, int level, int active_low)
{
    unsigned pin;
    uintptr_t base = ioapic_for(gsi, &pin);
    if (!base)
        return -1;
    int vector = gsi_vector[gsi];
    if (!vector) {
        if (level ? n_level == IRQ_VECTORS_PER_KIND : n_edge == IRQ_VECTORS_PER_KIND)
            return -1;
        vector = level ? IRQ_LEVEL_VECTOR_BASE + n_level++ : IRQ_EDGE_VECTOR_BASE + n_edge++;
        gsi_vector[gsi] = (uint8_t)vector;
    }
    uint32_t low = (uint32_t)vector | (level ? IOAPIC_REDIR_LEVEL : 0) | (active_low ? IOAPIC_REDIR_ACTIVE_LOW : 0);
    ioapic_write(base, IOAPIC_REG_REDIR + 2 * pin, IOAPIC_REDIR_MASKED);
    ioapic_write(base, IOAPIC_REG_REDIR + 2 * pin + 1, this_apic_id() << 24);
    ioapic_write(base, IOAPIC_REG_REDIR + 2 * pin, low);
    return vector;
}

void irq_mask_gsi(unsigned gsi, int masked)
{
    unsigned pin;
    uintptr_t base = ioapic_for(gsi, &pin);
    if (!base)
        return;
    uint32_t low = ioapic_read(base, IOAPIC_REG_REDIR + 2 * pin);
    low = masked ? low | IOAPIC_REDIR_MASKED : low & ~IOAPIC_REDIR_MASKED;
    ioapic_write(base, IOAPIC_REG_REDIR + 2 * pin, low);
}

void irq_msi_message(int vector, uint64_t *address, uint32_t *data)
{
    *address = MSI_ADDRESS_BASE | (this_apic_id() << 12);
    *data = (uint32_t)vector; /* fixed delivery, edge */
}

int irq_alloc_msi(uint64_t *address, uint32_t *data)
{
    if (n_edge == IRQ_VECTORS_PER_KIND)
        return -1;
    int vector = IRQ_EDGE_VECTOR_BASE + n_edge++;
    irq_msi_message(vector, address, data);
    return vector;
}

static int counter_index(int vector)
{
    if (vector >= IRQ_LEVEL_VECTOR_BASE && vector < IRQ_LEVEL_VECTOR_BASE + IRQ_VECTORS_PER_KIND)
        return vector - IRQ_LEVEL_VECTOR_BASE;
    if (vector >= IRQ_EDGE_VECTOR_BASE && vector < IRQ_EDGE_VECTOR_BASE + IRQ_VECTORS_PER_KIND)
        return IRQ_VECTORS_PER_KIND + vector - IRQ_EDGE_VECTOR_BASE;
    return -1;
}

uint64_t irq_count(int vector)
{
    int i = counter_index(vector);
    return i < 0 ? 0 : irq_counts[i];
}

int irq_wait(int vector, uint64_t *seen, uint64_t timeout_cycles)
{
    int i = counter_index(vector);
    if (i < 0)
        return -1;
    uint64_t start = rdtsc();
    for (;;) {
        uint64_t c = irq_counts[i];
        if (c != *seen) {
            *seen = c;
            return 0;
        }
        if (rdtsc() - start > timeout_cycles)
            return -1;
        cpu_pause();
    }
}

void irq_done(int vector)
{
    if (vector >= IRQ_LEVEL_VECTOR_BASE && vector < IRQ_LEVEL_VECTOR_BASE + IRQ_VECTORS_PER_KIND)
        irq_lapic_write(LAPIC_REG_EOI, 0);
}

void irq_enable(void)
{
    if (current_cpl() == 0)
        __asm__ volatile("sti" ::: "memory");
    else
        irq_cpl3_sti();
}

void irq_disable(void)
{
    if (current_cpl() == 0)
        __asm__ volatile("cli" ::: "memory");
    else
        irq_cpl3_cli();
}

static struct {
    void (*fn)(void *);
    void *arg;
} cpl3_call;

static void cpl3_with_interrupts(void *unused)
{
    (void)unused;
    irq_cpl3_sti();
    cpl3_call.fn(cpl3_call.arg);
    irq_cpl3_cli();
}

void irq_run_at_cpl3(void (*fn)(void *), void *arg)
{
    cpl3_call.fn = fn;
    cpl3_call.arg = arg;
    run_at_cpl3(cpl3_with_interrupts, 0);
}
