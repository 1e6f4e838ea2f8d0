/* Interrupts for bench guests: an IDT with device vectors, the xAPIC, the IOAPIC, MSI messages, and
 * interrupts taken while the hot code runs at CPL3.
 *
 * How it works (and why):
 * - Handlers are counters. Each device vector's stub (irq_asm.S) does `lock incq irq_counts[v]`, an
 *   optional LAPIC EOI, and iretq: two to four instructions, because on kvm_pvm every CPL0 instruction
 *   is emulated (~1 us each) and a C handler would cost tens of microseconds per interrupt. Waiting
 *   code spins on the counter (irq_wait) at CPL3, where it runs natively; there is no hlt at CPL3.
 * - Edge vectors (MSI/MSI-X, edge GSIs) get their EOI in the stub. Level vectors do NOT: the device
 *   must be acknowledged first (virtio-mmio InterruptACK, ATA Status read), otherwise the still-asserted
 *   line fires again at once. So the waiter acknowledges the device and then calls irq_done(v), which
 *   writes the EOI from wherever it runs (the LAPIC page is user-mapped, so CPL3 works). Until then the
 *   vector stays in service and blocks the vectors of its priority class (0x4X): one level line per
 *   waiter at a time.
 * - kvm_pvm caveat (measured under QEMU 7.2 microvm, kernel-irqchip on and split alike): a level line
 *   storms. Right after delivery the LAPIC in-service bit reads clear although the guest sent no EOI,
 *   so a still-asserted line is delivered again and again (~10000 times per completion, until
 *   KVM's/QEMU's storm limiter pauses it). Route device lines edge-triggered where the device allows
 *   it (acknowledge the device, then re-check its state, so nothing is lost between edges).
 * - Interrupts at CPL3: run_at_cpl3() enters user mode with IF=0 and, on kvm_pvm, IOPL=0 (so `sti` at
 *   CPL3 is #GP). irq_enable()/irq_disable() at CPL3 execute a ud2 at a known address; this library's
 *   #UD stub recognises it and flips RFLAGS.IF in the CPL3 frame it returns to (other #UDs go to the
 *   library's exception handler as before). At CPL0 they are plain sti/cli. irq_run_at_cpl3() wraps
 *   run_at_cpl3 with both. Interrupts from CPL3 arrive on TSS.rsp0 (the library's interrupt stack).
 *   CPL0 code keeps IF=0 throughout (the library's CPL0 paths are not interrupt-safe, and are slow).
 *
 * Fixed platform facts used (QEMU pc/q35/microvm and iovmm alike): xAPIC at 0xFEE00000, IOAPIC at
 * 0xFEC00000 for GSIs 0-23 and, if present (QEMU microvm ioapic2), a second one at 0xFEC10000 for
 * GSIs 24-47. The legacy 8259 PICs are masked by irq_init. Physical destination = this CPU's APIC ID.
 *
 * Build: not part of GUEST_LIB64_SOURCES; list lib/irq.c and lib/irq_asm.S in your iovmm_add_guest64.
 *
 * Specs: Intel SDM vol. 3A ch. 6 (IDT, interrupt gates, iretq frame) and ch. 11 (xAPIC SVR, EOI,
 * MSI address/data format, 11.11); 82093AA IOAPIC datasheet (IOREGSEL/IOWIN, redirection entries). */
#ifndef GUEST_IRQ_H
#define GUEST_IRQ_H

#include <stdint.h>

#define IRQ_LEVEL_VECTOR_BASE 0x40 /* 0x40-0x47: level-triggered GSIs, EOI by irq_done */
#define IRQ_EDGE_VECTOR_BASE 0x50  /* 0x50-0x57: MSI/MSI-X and edge GSIs, EOI in the stub */
#define IRQ_VECTORS_PER_KIND 8
#define IRQ_SPURIOUS_VECTOR 0x3F

/* CPL0 only (lidt): installs an IDT that keeps the library's 32 exception gates and adds the device
 * vectors and the CPL3 IF switch; masks both 8259s; software-enables the LAPIC (SVR) with TPR 0.
 * Idempotent. Returns 0. */
int irq_init(void);

/* Programs the IOAPIC redirection entry for gsi (fixed delivery, physical destination = this CPU,
 * unmasked) to a newly allocated vector and returns it, or -1 (no such pin, out of vectors).
 * level: 1 level-triggered (EOI deferred to irq_done), 0 edge. active_low: polarity.
 * Works at CPL0 and CPL3 (MMIO only). Routing the same gsi again returns the same vector. */
int irq_route_gsi(unsigned gsi, int level, int active_low);

/* Masks (1) or unmasks (0) gsi's redirection entry. Any CPL. */
void irq_mask_gsi(unsigned gsi, int masked);

/* Allocates an edge vector for MSI/MSI-X and returns it (or -1), with the message to program:
 * address 0xFEE00000 | APIC ID << 12 (physical, no redirection hint), data = vector (fixed, edge). */
int irq_alloc_msi(uint64_t *address, uint32_t *data);

/* The MSI message for an already allocated vector (e.g. two MSI-X entries sharing one vector). */
void irq_msi_message(int vector, uint64_t *address, uint32_t *data);

/* Interrupts taken on vector so far (0 for vectors this library does not own). Any CPL. */
uint64_t irq_count(int vector);

/* Spins (cpu_pause) until irq_count(vector) != *seen or timeout_cycles of TSC pass; on success stores
 * the new count in *seen and returns 0, on timeout returns -1. Meant for CPL3 with IF=1 (irq_enable);
 * called with IF=0 it can only time out. */
int irq_wait(int vector, uint64_t *seen, uint64_t timeout_cycles);

/* Ends the interrupt on vector once the device is acknowledged: LAPIC EOI for level vectors, nothing
 * for edge vectors (their stub already did it). Any CPL. */
void irq_done(int vector);

/* RFLAGS.IF on/off for the current context: sti/cli at CPL0, the ud2 switch at CPL3. */
void irq_enable(void);
void irq_disable(void);

/* run_at_cpl3(fn, arg) with interrupts enabled while fn runs (and disabled again before it returns). */
void irq_run_at_cpl3(void (*fn)(void *), void *arg);

/* Raw xAPIC register access (offsets as in the SDM, e.g. 0x20 ID, 0xB0 EOI, 0xF0 SVR). Any CPL. */
uint32_t irq_lapic_read(uint32_t reg);
void irq_lapic_write(uint32_t reg, uint32_t v);

#endif
