/* ATA driver for the primary master disk behind a PIIX IDE function (8086:7010, QEMU -M pc 00:01.1):
 * legacy task file at 0x1F0-0x1F7 / 0x3F6, bus master (BAR4) for DMA.
 *
 * Commands: IDENTIFY DEVICE, SET MULTIPLE MODE, READ/WRITE SECTORS, READ/WRITE MULTIPLE, READ/WRITE DMA
 * (each in its LBA28 and LBA48 "EXT" form), FLUSH CACHE (EXT), plus a software reset (SRST).
 * Completion: polled (nIEN set; Status is polled for !BSY, then DRQ for PIO, and the bus master's
 * interrupt bit or !active for DMA) or interrupt-driven (nIEN clear; the caller supplies a wait
 * function that returns once IRQ 14 arrived; Status is then read once to acknowledge it).
 *
 * Every port access the driver makes on a request path is counted by kind (struct ata_counters), so a
 * benchmark can set its figures next to what the VMM counted. Left out: the slave device, ATAPI,
 * the secondary channel, native-mode PCI IDE, SET FEATURES transfer modes (virtual devices do not need
 * them), NCQ and error recovery beyond reporting.
 *
 * Specs: ATA8-ACS (T13/1699-D) for commands and IDENTIFY words, ATA8-APT (T13/1532-D) for the
 * register protocols (PIO data-in/out, DMA, SRST), Intel 82371SB PIIX3 datasheet section 2.7 / 5.2 for
 * the bus master registers and the PRD format.
 *
 * All of it is plain port I/O and memory: it runs at CPL3 (run_at_cpl3), where kvm_pvm runs natively. */
#ifndef GUEST_ATA_H
#define GUEST_ATA_H

#include <stdint.h>
#include <stddef.h>

#define ATA_PRIMARY_CMD 0x1F0
#define ATA_PRIMARY_CTL 0x3F6
#define ATA_PRIMARY_IRQ 14
#define ATA_SECTOR_SIZE 512

#define PIIX_VENDOR 0x8086
#define PIIX3_IDE_DEVICE 0x7010

/* Task-file registers, offsets from the command block base. */
#define ATA_REG_DATA 0
#define ATA_REG_ERROR 1    /* read */
#define ATA_REG_FEATURE 1  /* write */
#define ATA_REG_NSECT 2
#define ATA_REG_LBAL 3
#define ATA_REG_LBAM 4
#define ATA_REG_LBAH 5
#define ATA_REG_DEVICE 6
#define ATA_REG_STATUS 7   /* read: acknowledges INTRQ */
#define ATA_REG_COMMAND 7  /* write */

#define ATA_SR_ERR 0x01
#define ATA_SR_DRQ 0x08
#define ATA_SR_DF 0x20
#define ATA_SR_DRDY 0x40
#define ATA_SR_BSY 0x80

#define ATA_DC_NIEN 0x02
#define ATA_DC_SRST 0x04

#define ATA_DEV_LBA 0x40
#define ATA_DEV_OBS 0xA0   /* obsolete bits 7 and 5, set by convention (master = bit 4 clear) */

#define ATA_CMD_READ_SECTORS 0x20
#define ATA_CMD_READ_SECTORS_EXT 0x24
#define ATA_CMD_READ_DMA_EXT 0x25
#define ATA_CMD_READ_MULTIPLE_EXT 0x29
#define ATA_CMD_WRITE_SECTORS 0x30
#define ATA_CMD_WRITE_SECTORS_EXT 0x34
#define ATA_CMD_WRITE_DMA_EXT 0x35
#define ATA_CMD_WRITE_MULTIPLE_EXT 0x39
#define ATA_CMD_READ_MULTIPLE 0xC4
#define ATA_CMD_WRITE_MULTIPLE 0xC5
#define ATA_CMD_SET_MULTIPLE 0xC6
#define ATA_CMD_READ_DMA 0xC8
#define ATA_CMD_WRITE_DMA 0xCA
#define ATA_CMD_FLUSH_CACHE 0xE7
#define ATA_CMD_FLUSH_CACHE_EXT 0xEA
#define ATA_CMD_IDENTIFY 0xEC

/* PIIX bus master registers (primary channel), offsets from BAR4. */
#define BM_REG_COMMAND 0
#define BM_REG_STATUS 2
#define BM_REG_PRDT 4
#define BM_CMD_START 0x01
#define BM_CMD_TO_MEMORY 0x08 /* "read/write control": set = the device's data is written to memory */
#define BM_ST_ACTIVE 0x01
#define BM_ST_ERROR 0x02
#define BM_ST_INTERRUPT 0x04

/* One Physical Region Descriptor: a physically contiguous piece that does not cross a 64 KiB
 * boundary; byte_count 0 means 64 KiB; PRD_EOT in flags marks the last entry. */
struct ata_prd {
    uint32_t addr;
    uint16_t byte_count;
    uint16_t flags;
};
#define PRD_EOT 0x8000
/* A 64 KiB request, wherever it starts, needs at most two pieces; the table holds more so that any
 * request of up to 256 sectors (128 KiB) fits. */
#define ATA_PRD_MAX 4

enum ata_mode { ATA_MODE_PIO, ATA_MODE_MULTIPLE, ATA_MODE_DMA };
enum ata_lba { ATA_LBA_AUTO, ATA_LBA_28, ATA_LBA_48 };

/* Port accesses by kind, made by the request paths (not PCI configuration). */
struct ata_counters {
    uint64_t status_reads;    /* Status (0x1F7) and Alternate Status (0x3F6) reads, Error reads */
    uint64_t taskfile_writes; /* writes to 0x1F1-0x1F7 (command included) and to Device Control */
    uint64_t data_chunks;     /* one rep insw/outsw per DRQ block */
    uint64_t bm_accesses;     /* reads and writes of the bus master registers */
    uint64_t interrupts;      /* waits that the wait function reported as completed */
};

struct ata_identity {
    uint64_t sectors;       /* addressable sectors (LBA48 count when supported) */
    int lba48;
    int dma;                /* word 49 bit 8 */
    unsigned multiple_max;  /* word 47 bits 7:0; 0 = READ/WRITE MULTIPLE unsupported */
    char model[41];         /* words 27-46, trailing blanks removed */
};

/* Returns 0 once IRQ 14 has arrived since the last call (then clears that), -1 on timeout. */
typedef int (*ata_irq_wait_fn)(void *ctx);

struct ata_channel {
    uint16_t cmd;           /* 0x1F0 */
    uint16_t ctl;           /* 0x3F6 */
    uint16_t bm;            /* BAR4 I/O base */
    uint8_t pci_bus, pci_dev, pci_fn;
    struct ata_identity id;
    unsigned multiple;      /* sectors per DRQ block set by SET MULTIPLE MODE, 0 if not set */
    enum ata_lba lba;
    ata_irq_wait_fn irq_wait; /* NULL: polled completion */
    void *irq_ctx;
    struct ata_prd *prdt;   /* 8-byte aligned, within one 4 KiB page, below 4 GiB */
    uint64_t timeout_cycles;
    struct ata_counters count;
    const char *error;      /* why the last call failed (static string) */
    uint8_t last_status, last_error, last_bm_status;
};

/* Finds the PIIX IDE function, enables I/O decoding and bus mastering and reads the bus master base
 * (programming bm_default when BAR4 is unassigned). prdt: memory for the PRD table as above.
 * Uses PCI configuration space (0xCF8/0xCFC). Returns 0, or -1 with ch->error set. */
int ata_channel_init(struct ata_channel *ch, struct ata_prd *prdt, uint16_t bm_default);

/* SRST, then IDENTIFY DEVICE into ch->id; leaves nIEN set (polled). Returns 0 or -1. */
int ata_reset(struct ata_channel *ch);
int ata_identify(struct ata_channel *ch);
/* SET MULTIPLE MODE: sectors must be a power of two <= id.multiple_max. */
int ata_set_multiple(struct ata_channel *ch, unsigned sectors);

/* Switches completion: wait == NULL -> polled (nIEN set); otherwise interrupts (nIEN clear). The
 * caller routes IRQ 14 before the first interrupt-driven request. */
void ata_set_completion(struct ata_channel *ch, ata_irq_wait_fn wait, void *ctx);

/* count: 1..256 sectors (LBA28) or 1..65536 (LBA48). buf: for DMA, physical == virtual, below 4 GiB,
 * 2-byte aligned. Returns 0, or -1 with ch->error and last_* set. */
int ata_read(struct ata_channel *ch, enum ata_mode mode, uint64_t lba, uint32_t count, void *buf);
int ata_write(struct ata_channel *ch, enum ata_mode mode, uint64_t lba, uint32_t count, const void *buf);
int ata_flush(struct ata_channel *ch);

/* Builds the PRD table for [buf, buf+bytes); returns the number of entries, 0 if it does not fit. */
int ata_build_prdt(struct ata_prd *prdt, int max, uintptr_t buf, uint32_t bytes);

const char *ata_mode_name(enum ata_mode mode);

#endif
