#include "boot/acpi/tables.h"

#include <fmt/core.h>

#include <cstring>

#include "boot/acpi/append.h"
#include "boot/acpi/structs.h"
#include "common/error.h"

namespace iovmm::boot::acpi {
namespace {

constexpr char kOemId[6] = {'I', 'O', 'V', 'M', 'M', ' '};
constexpr char kCreatorId[4] = {'I', 'O', 'V', 'M'};

template <typename T>
void append_obj(Bytes& out, const T& value) {
  // resize + memcpy rather than insert(): GCC 12 reports a false stringop-overflow for insert into an empty vector.
  const size_t offset = out.size();
  out.resize(offset + sizeof(T));
  std::memcpy(out.data() + offset, &value, sizeof(T));
}

// Fills the header of a table whose struct starts with TableHeader; the checksum is set later over the whole table.
void fill_header(TableHeader& header, std::string_view signature, uint8_t revision, size_t length) {
  std::memcpy(header.signature, signature.data(), 4);
  header.length = static_cast<uint32_t>(length);
  header.revision = revision;
  header.checksum = 0;
  std::memcpy(header.oem_id, kOemId, sizeof(kOemId));
  // "IOVM" + signature keeps each table's OEM table id distinct, as firmware usually does.
  std::memcpy(header.oem_table_id, "IOVM", 4);
  std::memcpy(header.oem_table_id + 4, signature.data(), 4);
  header.oem_revision = 1;
  std::memcpy(header.creator_id, kCreatorId, sizeof(kCreatorId));
  header.creator_revision = 1;
}

void set_table_checksum(Bytes& table) {
  table[offsetof(TableHeader, checksum)] = 0;
  table[offsetof(TableHeader, checksum)] = checksum_fixup(table);
}

Gas io_register(uint16_t port, uint8_t length_bytes) {
  // Access size is left undefined (0) as QEMU does: the OS uses the width of the *_LEN field.
  return Gas{1, static_cast<uint8_t>(length_bytes * 8), 0, 0, port};
}

uint32_t to_u32(uint64_t address, std::string_view what) {
  if (address > UINT32_MAX) throw Error(fmt::format("ACPI: {} at {:#x} is above 4 GiB", what, address));
  return static_cast<uint32_t>(address);
}

}  // namespace

uint8_t checksum_fixup(std::span<const uint8_t> bytes) {
  uint8_t sum = 0;
  for (uint8_t b : bytes) sum = static_cast<uint8_t>(sum + b);
  return static_cast<uint8_t>(-sum);
}

Bytes make_table(std::string_view signature, uint8_t revision, std::span<const uint8_t> body) {
  TableHeader header{};
  fill_header(header, signature, revision, sizeof(TableHeader) + body.size());
  Bytes table;
  append_obj(table, header);
  append_bytes(table, body);
  set_table_checksum(table);
  return table;
}

Bytes build_rsdp(uint64_t rsdt_address, uint64_t xsdt_address) {
  Rsdp rsdp{};
  std::memcpy(rsdp.signature, "RSD PTR ", 8);
  std::memcpy(rsdp.oem_id, kOemId, sizeof(kOemId));
  rsdp.revision = 2;
  rsdp.rsdt_address = to_u32(rsdt_address, "RSDT");
  rsdp.length = sizeof(Rsdp);
  rsdp.xsdt_address = xsdt_address;
  Bytes bytes;
  append_obj(bytes, rsdp);
  bytes[offsetof(Rsdp, checksum)] = checksum_fixup(std::span(bytes).first(20));
  bytes[offsetof(Rsdp, extended_checksum)] = checksum_fixup(bytes);
  return bytes;
}

Bytes build_rsdt(const std::vector<uint64_t>& table_addresses) {
  Bytes body;
  for (uint64_t address : table_addresses) append_obj(body, to_u32(address, "table"));
  return make_table("RSDT", 1, body);
}

Bytes build_xsdt(const std::vector<uint64_t>& table_addresses) {
  Bytes body;
  for (uint64_t address : table_addresses) append_obj(body, address);
  return make_table("XSDT", 1, body);
}

Bytes build_facs() {
  Facs facs{};
  std::memcpy(facs.signature, "FACS", 4);
  facs.length = sizeof(Facs);
  facs.version = 2;
  Bytes bytes;
  append_obj(bytes, facs);
  return bytes;
}

Bytes build_fadt(const AcpiConfig& config, uint64_t facs_address, uint64_t dsdt_address) {
  Fadt fadt{};
  fill_header(fadt.header, "FACP", 6, sizeof(Fadt));
  fadt.firmware_ctrl = to_u32(facs_address, "FACS");
  fadt.dsdt = to_u32(dsdt_address, "DSDT");
  fadt.sci_int = config.sci_irq;
  // SMI_CMD = 0: there is no SMM to hand ACPI over from; the PM device reports SCI_EN set from reset.
  fadt.smi_cmd = 0;
  fadt.pm1a_evt_blk = config.pm1a_evt_blk;
  fadt.pm1a_cnt_blk = config.pm1a_cnt_blk;
  fadt.pm_tmr_blk = config.pm_tmr_blk;
  fadt.pm1_evt_len = 4;
  fadt.pm1_cnt_len = 2;
  fadt.pm_tmr_len = 4;
  // No C2/C3: latencies above 100/1000 us tell the OS those states are not supported.
  fadt.p_lvl2_lat = 0x0FFF;
  fadt.p_lvl3_lat = 0x0FFF;
  fadt.century = 0x32;  // CMOS century register, as on a PC
  fadt.iapc_boot_arch = kBootArchLegacyDevices;
  // As QEMU's pc machine: the power button is the fixed-feature one in PM1 (the PM device raises PWRBTN_STS), there
  // is no sleep button, and the PM timer is 24 bits wide (TMR_VAL_EXT clear).
  fadt.flags = kFadtWbinvd | kFadtProcC1 | kFadtSleepButton | kFadtRtcS4;
  fadt.minor_version = 0;
  fadt.x_firmware_ctrl = facs_address;
  fadt.x_dsdt = dsdt_address;
  fadt.x_pm1a_evt_blk = io_register(config.pm1a_evt_blk, 4);
  fadt.x_pm1a_cnt_blk = io_register(config.pm1a_cnt_blk, 2);
  fadt.x_pm_tmr_blk = io_register(config.pm_tmr_blk, 4);
  Bytes bytes;
  append_obj(bytes, fadt);
  set_table_checksum(bytes);
  return bytes;
}

Bytes build_madt(const AcpiConfig& config) {
  if (config.cpu_count == 0 || config.cpu_count > 255) {
    throw UsageError(fmt::format("ACPI: {} CPUs cannot be described; the MADT takes 1 to 255 (xAPIC ids)",
                                 config.cpu_count));
  }
  MadtHeader madt{};
  madt.local_apic_address = to_u32(config.lapic_address, "local APIC");
  madt.flags = 1;  // PCAT_COMPAT: legacy 8259s exist and must be masked when the IOAPIC is used
  Bytes body;
  append_obj(body, madt.local_apic_address);
  append_obj(body, madt.flags);
  for (uint32_t cpu = 0; cpu < config.cpu_count; ++cpu) {
    MadtLocalApic lapic{};
    lapic.processor_uid = static_cast<uint8_t>(cpu);
    lapic.apic_id = static_cast<uint8_t>(cpu);
    lapic.flags = 1;  // enabled
    append_obj(body, lapic);
  }
  MadtIoApic ioapic{};
  ioapic.ioapic_id = config.ioapic_id;
  ioapic.address = to_u32(config.ioapic_address, "IOAPIC");
  ioapic.gsi_base = 0;
  append_obj(body, ioapic);
  // The PIT's IRQ 0 is wired to IOAPIC pin 2 on a PC; the SCI is level-triggered, active high (QEMU does the same).
  append_obj(body, MadtInterruptOverride{2, 10, 0, 0, 2, 0});
  append_obj(body, MadtInterruptOverride{2, 10, 0, config.sci_irq, config.sci_irq, kMpsActiveHighLevel});
  append_obj(body, MadtLocalApicNmi{4, 6, 0xFF, 0, 1});  // LINT1 is NMI on every CPU
  return make_table("APIC", 5, body);
}

}  // namespace iovmm::boot::acpi
