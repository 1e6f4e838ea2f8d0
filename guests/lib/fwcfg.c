#include "fwcfg.h"
#include "io.h"
#include "mem.h"

void fwcfg_select(uint16_t key) { outw(FW_CFG_PORT_SEL, key); }

void fwcfg_read(void *buf, size_t len)
{
    uint8_t *b = buf;
    while (len--)
        *b++ = inb(FW_CFG_PORT_DATA);
}

int fwcfg_present(void)
{
    char sig[4];
    fwcfg_select(FW_CFG_SIGNATURE);
    fwcfg_read(sig, 4);
    return memcmp(sig, "QEMU", 4) == 0;
}

/* Items are little-endian; so is x86, so a plain copy is the decode. */
uint16_t fwcfg_read_u16(uint16_t key)
{
    uint16_t v;
    fwcfg_select(key);
    fwcfg_read(&v, 2);
    return v;
}

uint32_t fwcfg_read_u32(uint16_t key)
{
    uint32_t v;
    fwcfg_select(key);
    fwcfg_read(&v, 4);
    return v;
}

size_t fwcfg_cmdline(char *buf, size_t size)
{
    uint32_t len = fwcfg_read_u32(FW_CFG_CMDLINE_SIZE);
    if (size == 0)
        return 0;
    size_t n = len < size - 1 ? len : size - 1; /* len counts the NUL; keep room for ours */
    fwcfg_select(FW_CFG_CMDLINE_DATA);
    fwcfg_read(buf, n);
    buf[n] = '\0';
    return len ? len - 1 : 0;
}
