/* AP trampoline. Assembled into the image, copied to SMP_TRAMPOLINE_ADDR (0x8000) by
 * smp_start_aps, entered by a STARTUP IPI in real mode at CS:IP = 0x0800:0000.
 * Labels inside the trampoline are addressed as REL(label) = where they live after the copy;
 * kernel symbols (smp_ap_seen, smp_ap_count) are used directly, since the kernel is
 * identity-mapped and an AP with paging off sees the same physical addresses. */
#define SMP_TRAMPOLINE_ADDR 0x8000
#define REL(x) (SMP_TRAMPOLINE_ADDR + ((x) - smp_trampoline_start))

    .section .rodata.trampoline, "a"
    .globl smp_trampoline_start, smp_trampoline_end
    .code16
smp_trampoline_start:
    cli
    xor %ax, %ax
    mov %ax, %ds                     /* DS=0 so REL() addresses are plain offsets */
    lgdtl REL(tramp_gdtr)
    mov %cr0, %eax
    or $1, %al                       /* CR0.PE */
    mov %eax, %cr0
    ljmpl $0x08, $REL(tramp_pm32)

    .code32
tramp_pm32:
    mov $0x10, %eax
    mov %eax, %ds
    mov 0xFEE00020, %eax             /* local APIC ID register */
    shr $24, %eax
    movb $1, smp_ap_seen(%eax)       /* publish the ID first ... */
    lock incl smp_ap_count           /* ... then count (x86 keeps the two stores in order) */
1:  cli
    hlt
    jmp 1b

    .p2align 3
tramp_gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF         /* 0x08: flat 32-bit code */
    .quad 0x00CF92000000FFFF         /* 0x10: flat data */
tramp_gdtr:
    .word tramp_gdtr - tramp_gdt - 1
    .long REL(tramp_gdt)
smp_trampoline_end:

    .section .note.GNU-stack, "", @progbits
