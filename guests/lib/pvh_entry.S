/* PVH entry: 32-bit protected mode -> long mode -> guest_main().
 *
 * Everything here runs in KVM's instruction emulator on this machine (~1 us per instruction),
 * so it does as little as possible at run time: the GDT and the page tables are static data,
 * fully built by the assembler/linker, and only a small .bss is cleared.
 *
 * Page tables identity-map 0..4 GiB with 2 MiB pages (4 page directories), the User bit set at
 * every level so CPL3 code can reach RAM and the device windows (0xFEB00000-0xFFFFFFFF:
 * PCI BARs, IOAPIC, HPET, LAPIC). The top 32 MiB are mapped uncached (PCD|PWT).
 */
#include "pvh.h"
#include "cpu_layout.h"

    .section .note.Xen, "a", @note
    .p2align 2
    .long 4                          /* namesz: "Xen\0" */
    .long 8                          /* descsz: 8, like Linux; readers taking 4 bytes get the same */
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .p2align 2
    .quad pvh_start32

    .section .text.boot, "ax"
    .code32
    .globl pvh_start32
pvh_start32:
    cli
    cld
    mov %ebx, %esi                   /* hvm_start_info*, kept in esi until guest_main */
    lgdt gdt64_ptr
    mov $SEL_KDATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    mov $boot_stack_top, %esp

    mov %cr4, %eax
    or $0x20, %eax                   /* CR4.PAE */
    mov %eax, %cr4
    mov $pml4, %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx            /* IA32_EFER */
    rdmsr
    or $0x100, %eax                  /* EFER.LME */
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax             /* CR0.PG | CR0.PE */
    mov %eax, %cr0
    ljmp $SEL_KCODE, $long_mode

    .code64
long_mode:
    mov %esi, %r12d                  /* zero-extends: upper halves are undefined after the switch */
    /* Clear .bss (small by design; stacks live in .stack, which is not cleared). */
    lea __bss_start(%rip), %rdi
    lea __bss_end(%rip), %rcx
    sub %rdi, %rcx
    shr $3, %rcx
    xor %eax, %eax
    rep stosq
    call cpu_init
    call serial_init
    mov %r12, %rdi
    call guest_main
    xor %edi, %edi
    call debug_exit

/* ---- static GDT (the TSS descriptor is filled in by cpu_init, it needs the TSS address) ---- */
    .section .data.boot, "aw"
    .p2align 4
    .globl gdt64
gdt64:
    .quad 0                          /* 0x00 null */
    .quad 0x00AF9A000000FFFF         /* 0x08 kernel code, 64-bit, DPL0 */
    .quad 0x00CF92000000FFFF         /* 0x10 kernel data (also valid as flat 32-bit data) */
    .quad 0x00CFF2000000FFFF         /* 0x18 user data, DPL3 */
    .quad 0x00AFFA000000FFFF         /* 0x20 user code, 64-bit, DPL3 */
    .quad 0, 0                       /* 0x28 TSS (16 bytes in long mode) */
gdt64_end:
    .p2align 3
gdt64_ptr:
    .word gdt64_end - gdt64 - 1
    .quad gdt64                      /* a 32-bit lgdt reads only the low 4 bytes: fine below 4 GiB */

/* ---- static identity page tables ---- */
#define PTE_P 0x1
#define PTE_RW 0x2
#define PTE_US 0x4
#define PTE_PWT 0x8
#define PTE_PCD 0x10
#define PTE_PS 0x80
    .section .data.pagetables, "aw"
    .p2align 12
pml4:
    .quad pdpt + (PTE_P | PTE_RW | PTE_US)
    .fill 511, 8, 0
pdpt:
    .quad pd + 0x0000 + (PTE_P | PTE_RW | PTE_US)
    .quad pd + 0x1000 + (PTE_P | PTE_RW | PTE_US)
    .quad pd + 0x2000 + (PTE_P | PTE_RW | PTE_US)
    .quad pd + 0x3000 + (PTE_P | PTE_RW | PTE_US)
    .fill 508, 8, 0
pd:
    .set i, 0
    .rept 2048
    /* gas comparisons yield -1 for true, so "& flags" selects the flags for the top 32 MiB */
    .quad (i << 21) | (PTE_P | PTE_RW | PTE_US | PTE_PS) | ((i >= 2032) & (PTE_PCD | PTE_PWT))
    .set i, i + 1
    .endr

    .section .stack, "aw", @nobits
    .p2align 4
boot_stack:
    .skip 16384
    .globl boot_stack_top
boot_stack_top:

    .section .note.GNU-stack, "", @progbits
