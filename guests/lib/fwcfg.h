/* QEMU fw_cfg, legacy I/O interface: 16-bit selector write to 0x510, then byte reads from 0x511
 * (auto-incrementing). Spec: QEMU docs/specs/fw_cfg.rst. Keys used by our guests below. */
#ifndef GUEST_FWCFG_H
#define GUEST_FWCFG_H

#include <stdint.h>
#include <stddef.h>

#define FW_CFG_PORT_SEL 0x510
#define FW_CFG_PORT_DATA 0x511

#define FW_CFG_SIGNATURE 0x0000    /* "QEMU" */
#define FW_CFG_ID 0x0001
#define FW_CFG_NB_CPUS 0x0005      /* u16 LE */
#define FW_CFG_CMDLINE_SIZE 0x0014 /* u32 LE, includes the NUL */
#define FW_CFG_CMDLINE_DATA 0x0015

void fwcfg_select(uint16_t key);
void fwcfg_read(void *buf, size_t len); /* from the current position of the selected item */
int fwcfg_present(void);                /* 1 if the signature reads "QEMU" */
uint16_t fwcfg_read_u16(uint16_t key);
uint32_t fwcfg_read_u32(uint16_t key);
/* Copies the kernel command line into buf (NUL-terminated, truncated to size-1). Returns its
 * length as stored, without the NUL; 0 when there is none. */
size_t fwcfg_cmdline(char *buf, size_t size);

#endif
