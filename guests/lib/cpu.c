#include "cpu.h"
#include "debug_exit.h"
#include "printf.h"

struct __attribute__((packed)) tss64 {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
};
_Static_assert(sizeof(struct tss64) == 104, "tss64 size");

struct __attribute__((packed)) idt_gate {
    uint16_t offset_lo;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attr; /* P | DPL | type (0xE = 64-bit interrupt gate) */
    uint16_t offset_mid;
    uint32_t offset_hi;
    uint32_t reserved;
};
_Static_assert(sizeof(struct idt_gate) == 16, "idt gate size");

extern uint64_t gdt64[];                 /* pvh_entry.S */
extern const uint64_t isr_stub_table[32]; /* cpu_asm.S */
extern const char cpl3_exit_stub[];       /* cpu_asm.S */
__attribute__((noreturn)) void cpl3_resume_kernel(void);

/* The TSS with an I/O permission bitmap that allows every port (all zero bits) plus the
 * mandatory all-ones terminator byte. With IOPL=3 a CPU never consults it; kvm_pvm however
 * does not keep IOPL for CPL3 code, traps its port I/O and emulates it only when this bitmap
 * allows the port. In .data so that it needs no clearing at (emulated) CPL0. */
static struct __attribute__((packed, aligned(16))) {
    struct tss64 tss;
    uint8_t iomap[65536 / 8];
    uint8_t iomap_end; /* 0xFF */
} tss_block __attribute__((section(".data"))) = { .iomap_end = 0xFF };
/* Only the 32 exception vectors: interrupts stay disabled, and any vector past the IDT limit
 * raises #GP, which is reported. Small because .bss is cleared at (emulated) CPL0. */
static struct idt_gate idt[32];
/* Stack used when an interrupt or exception arrives from CPL3 (TSS.rsp0); in cpu_asm.S so it
 * lands in the uncleared .stack section. */
extern uint8_t intr_stack_top[];

static void set_gate(int vec, uint64_t handler, int dpl)
{
    struct idt_gate *g = &idt[vec];
    g->offset_lo = (uint16_t)handler;
    g->selector = SEL_KCODE;
    g->ist = 0;
    g->type_attr = (uint8_t)(0x80 | (dpl << 5) | 0xE);
    g->offset_mid = (uint16_t)(handler >> 16);
    g->offset_hi = (uint32_t)(handler >> 32);
}

void cpu_init(void)
{
    /* TSS: rsp0 for exceptions from CPL3, and the all-ports-allowed I/O bitmap. */
    tss_block.tss.rsp[0] = (uint64_t)intr_stack_top;
    tss_block.tss.iomap_base = sizeof(tss_block.tss);
    uint64_t base = (uint64_t)&tss_block, limit = sizeof(tss_block) - 1;
    gdt64[SEL_TSS / 8] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89ULL << 40) /* P, type 9 */
                         | ((limit >> 16) & 0xF) << 48 | ((base >> 24) & 0xFF) << 56;
    gdt64[SEL_TSS / 8 + 1] = base >> 32;
    __asm__ volatile("ltr %w0" : : "r"(SEL_TSS));

    for (int v = 0; v < 32; v++)
        set_gate(v, isr_stub_table[v], 0);
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } idtr = { sizeof(idt) - 1, (uint64_t)idt };
    __asm__ volatile("lidt %0" : : "m"(idtr));
}

static const char *const exc_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#MF-old", "#TS", "#NP", "#SS",
    "#GP", "#PF", "rsvd15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

/* Called from cpu_asm.S for vectors 0-31, always at CPL0 on a good stack. */
void exception_dispatch(struct trap_frame *f)
{
    if (f->vector == 6 && (f->cs & 3) == 3 && f->rip == (uint64_t)cpl3_exit_stub)
        cpl3_resume_kernel(); /* the CPL3 function returned: back to run_at_cpl3's caller */
    uint64_t cr2 = 0;
    if (f->vector == 14)
        __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    const char *name = f->vector < 32 && exc_names[f->vector] ? exc_names[f->vector] : "?";
    kprintf("\nexception: vector=%llu (%s) error=0x%llx rip=0x%llx cs=0x%llx cpl=%llu rsp=0x%llx "
            "rflags=0x%llx cr2=0x%llx\n",
            (unsigned long long)f->vector, name, (unsigned long long)f->error_code,
            (unsigned long long)f->rip, (unsigned long long)f->cs, (unsigned long long)(f->cs & 3),
            (unsigned long long)f->rsp, (unsigned long long)f->rflags, (unsigned long long)cr2);
    debug_exit(DEBUG_EXIT_EXCEPTION);
}
