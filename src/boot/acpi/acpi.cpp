#include "boot/acpi/acpi.h"

#include <fmt/core.h>

#include "boot/acpi/tables.h"
#include "common/error.h"

namespace iovmm::boot::acpi {
namespace {

uint64_t align_up(uint64_t value, uint64_t alignment) { return (value + alignment - 1) / alignment * alignment; }

// Hands out addresses in the ACPI area: 16-byte aligned by default, 64 for the FACS.
class AreaAllocator {
 public:
  explicit AreaAllocator(GuestArea area) : area_(area), next_(area.start) {}
  uint64_t place(size_t size, uint64_t alignment = 16) {
    const uint64_t address = align_up(next_, alignment);
    next_ = address + size;
    return address;
  }
  void check_fits() const {
    if (next_ > area_.end()) {
      throw UsageError(fmt::format("ACPI: the tables need {} bytes; the ACPI area at {:#x} holds only {}",
                                   next_ - area_.start, area_.start, area_.size));
    }
  }

 private:
  GuestArea area_;
  uint64_t next_;
};

}  // namespace

std::vector<AcpiTable> build_acpi_tables(const AcpiConfig& config, GuestArea area) {
  AreaAllocator allocator(area);
  // The RSDP goes first so the guest's scan of 0xE0000-0xFFFFF finds it at the start of the area.
  const uint64_t rsdp_address = allocator.place(36);

  Bytes facs = build_facs();
  const uint64_t facs_address = allocator.place(facs.size(), 64);  // the FACS must be 64-byte aligned
  Bytes dsdt = build_dsdt(config);
  const uint64_t dsdt_address = allocator.place(dsdt.size());
  Bytes fadt = build_fadt(config, facs_address, dsdt_address);
  const uint64_t fadt_address = allocator.place(fadt.size());
  Bytes madt = build_madt(config);
  const uint64_t madt_address = allocator.place(madt.size());

  const std::vector<uint64_t> root_entries = {fadt_address, madt_address};
  Bytes rsdt = build_rsdt(root_entries);
  const uint64_t rsdt_address = allocator.place(rsdt.size());
  Bytes xsdt = build_xsdt(root_entries);
  const uint64_t xsdt_address = allocator.place(xsdt.size());
  allocator.check_fits();

  std::vector<AcpiTable> tables;
  tables.push_back({"RSDP", rsdp_address, build_rsdp(rsdt_address, xsdt_address)});
  tables.push_back({"FACS", facs_address, std::move(facs)});
  tables.push_back({"DSDT", dsdt_address, std::move(dsdt)});
  tables.push_back({"FACP", fadt_address, std::move(fadt)});
  tables.push_back({"APIC", madt_address, std::move(madt)});
  tables.push_back({"RSDT", rsdt_address, std::move(rsdt)});
  tables.push_back({"XSDT", xsdt_address, std::move(xsdt)});
  return tables;
}

uint64_t write_acpi_tables(GuestMemory& memory, const AcpiConfig& config) {
  const auto tables = build_acpi_tables(config, kAcpiArea);
  for (const auto& table : tables) {
    if (!memory.write(table.address, table.bytes.data(), table.bytes.size())) {
      throw Error(fmt::format("ACPI: {} at {:#x} is not in guest RAM", table.signature, table.address));
    }
  }
  return tables.front().address;
}

}  // namespace iovmm::boot::acpi
