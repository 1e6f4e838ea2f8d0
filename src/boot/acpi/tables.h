// Builders for the individual ACPI tables. Each returns the finished table (header filled in, checksum set) so
// tests can check them one by one; build_acpi_tables() decides where they go.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "boot/acpi/acpi.h"

namespace iovmm::boot::acpi {

using Bytes = std::vector<uint8_t>;

// The byte that makes `bytes` sum to zero (mod 256) when added.
[[nodiscard]] uint8_t checksum_fixup(std::span<const uint8_t> bytes);

// Header + body, with length and checksum filled in.
[[nodiscard]] Bytes make_table(std::string_view signature, uint8_t revision, std::span<const uint8_t> body);

[[nodiscard]] Bytes build_rsdp(uint64_t rsdt_address, uint64_t xsdt_address);
[[nodiscard]] Bytes build_rsdt(const std::vector<uint64_t>& table_addresses);
[[nodiscard]] Bytes build_xsdt(const std::vector<uint64_t>& table_addresses);
[[nodiscard]] Bytes build_facs();
[[nodiscard]] Bytes build_fadt(const AcpiConfig& config, uint64_t facs_address, uint64_t dsdt_address);
[[nodiscard]] Bytes build_madt(const AcpiConfig& config);
[[nodiscard]] Bytes build_dsdt(const AcpiConfig& config);

}  // namespace iovmm::boot::acpi
