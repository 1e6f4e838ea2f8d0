/* Device-vector stubs, the #UD hook that switches RFLAGS.IF for CPL3 code, and the IDT storage
 * (see irq.h for the design). Every instruction here runs in KVM's emulator on kvm_pvm, hence the
 * counters-only handlers. */
#include "irq_layout.h"

    .text
/* Level vectors: count only; the waiter acknowledges the device, then irq_done() sends the EOI. */
.macro LEVEL_STUB n
irq_level_stub\n:
    lock incq irq_counts + 8 * \n (%rip)
    iretq
.endm

/* Edge vectors (MSI-X, edge GSIs): count and EOI. The LAPIC address does not fit a sign-extended
 * 32-bit displacement, hence the register. */
.macro EDGE_STUB n
irq_edge_stub\n:
    lock incq irq_counts + 8 * (IRQ_LAYOUT_PER_KIND + \n) (%rip)
    push %rax
    mov $IRQ_LAYOUT_LAPIC_EOI, %eax
    movl $0, (%rax)
    pop %rax
    iretq
.endm

LEVEL_STUB 0; LEVEL_STUB 1; LEVEL_STUB 2; LEVEL_STUB 3
LEVEL_STUB 4; LEVEL_STUB 5; LEVEL_STUB 6; LEVEL_STUB 7
EDGE_STUB 0;  EDGE_STUB 1;  EDGE_STUB 2;  EDGE_STUB 3
EDGE_STUB 4;  EDGE_STUB 5;  EDGE_STUB 6;  EDGE_STUB 7

/* The LAPIC needs no EOI for its spurious vector. */
    .globl irq_spurious_stub
irq_spurious_stub:
    iretq

/* #UD (no error code: RIP at 0(%rsp), RFLAGS at 16(%rsp)). A ud2 at irq_cpl3_sti / irq_cpl3_cli is a
 * request to set / clear IF in the interrupted context: skip the ud2 and return with the new IF.
 * Anything else goes to the library's own #UD stub (which also handles the CPL3 exit stub). */
    .globl irq_ud_stub
irq_ud_stub:
    cmpq $irq_cpl3_sti, (%rsp)
    je 1f
    cmpq $irq_cpl3_cli, (%rsp)
    je 2f
    jmp *isr_stub_table + 6 * 8(%rip)
1:  addq $2, (%rsp)
    orq $0x200, 16(%rsp)
    iretq
2:  addq $2, (%rsp)
    andq $~0x200, 16(%rsp)
    iretq

/* Called as functions from CPL3: the ud2 is skipped by irq_ud_stub, then ret. */
    .globl irq_cpl3_sti
irq_cpl3_sti:
    ud2
    ret
    .globl irq_cpl3_cli
irq_cpl3_cli:
    ud2
    ret

    .section .rodata
    .p2align 3
    .globl irq_level_stubs
irq_level_stubs:
    .irp v, 0,1,2,3,4,5,6,7
    .quad irq_level_stub\v
    .endr
    .globl irq_edge_stubs
irq_edge_stubs:
    .irp v, 0,1,2,3,4,5,6,7
    .quad irq_edge_stub\v
    .endr

/* Filled by irq_init; in the uncleared .stack section so the entry code spends nothing on it. */
    .section .stack, "aw", @nobits
    .p2align 4
    .globl irq_idt
irq_idt:
    .skip 16 * IRQ_LAYOUT_IDT_ENTRIES

    .section .note.GNU-stack, "", @progbits
