/* multiboot-demo.elf: reports what a multiboot v1 loader handed over. 32-bit code, so no
 * 64-bit division anywhere (the printf formats 64-bit values without it). */
#include "debug_exit.h"
#include "multiboot.h"
#include "printf.h"
#include "serial.h"

__attribute__((noreturn)) static void fail(const char *what)
{
    kprintf("mb: FAIL %s\n", what);
    debug_exit(DEBUG_EXIT_FAIL);
}

static const char *str_at(uint32_t paddr) { return paddr ? (const char *)(uintptr_t)paddr : ""; }

void mb_main(uint32_t magic, const struct multiboot_info *mbi)
{
    serial_init();
    kprintf("mb: start\n");
    if (magic != MULTIBOOT_BOOTLOADER_MAGIC)
        fail("bootloader magic");
    kprintf("mb: magic=0x%x flags=0x%x\n", magic, mbi->flags);

    if (!(mbi->flags & MB_INFO_MEMORY))
        fail("no memory info (flags bit 0)");
    kprintf("mb: mem_lower=%u mem_upper=%u\n", mbi->mem_lower, mbi->mem_upper);
    kprintf("mb: cmdline=\"%s\"\n", mbi->flags & MB_INFO_CMDLINE ? str_at(mbi->cmdline) : "");

    if (!(mbi->flags & MB_INFO_MMAP))
        fail("no memory map (flags bit 6)");
    unsigned entries = 0;
    uint64_t ram = 0;
    for (uint32_t off = 0; off + 4 <= mbi->mmap_length;) {
        const struct multiboot_mmap_entry *e =
            (const struct multiboot_mmap_entry *)(uintptr_t)(mbi->mmap_addr + off);
        if (e->size < 20)
            fail("mmap entry size");
        if (e->type == 1)
            ram += e->len;
        entries++;
        off += e->size + 4;
    }
    kprintf("mb: mmap entries=%u ram_kib=%llu\n", entries, (unsigned long long)(ram >> 10));

    uint32_t mods = mbi->flags & MB_INFO_MODS ? mbi->mods_count : 0;
    kprintf("mb: mods=%u\n", mods);
    const struct multiboot_module *m = (const struct multiboot_module *)(uintptr_t)mbi->mods_addr;
    for (uint32_t i = 0; i < mods; i++) {
        uint32_t size = m[i].mod_end - m[i].mod_start;
        char hex[17];
        const uint8_t *data = (const uint8_t *)(uintptr_t)m[i].mod_start;
        uint32_t nb = size < 8 ? size : 8;
        for (uint32_t b = 0; b < nb; b++)
            ksnprintf(hex + 2 * b, 3, "%02x", data[b]);
        hex[2 * nb] = '\0';
        kprintf("mb: mod %u size=%u cmdline=\"%s\" first_bytes=%s\n", i, size, str_at(m[i].string), hex);
    }
    kprintf("mb: done\n");
    debug_exit(DEBUG_EXIT_OK);
}
