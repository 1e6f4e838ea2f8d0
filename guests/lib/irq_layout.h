/* Constants shared by irq.c and irq_asm.S (kept in step with irq.h). */
#ifndef GUEST_IRQ_LAYOUT_H
#define GUEST_IRQ_LAYOUT_H

#define IRQ_LAYOUT_PER_KIND 8           /* IRQ_VECTORS_PER_KIND */
#define IRQ_LAYOUT_IDT_ENTRIES 0x58     /* up to the last edge vector, 0x57 */
#define IRQ_LAYOUT_LAPIC_EOI 0xFEE000B0

#endif
