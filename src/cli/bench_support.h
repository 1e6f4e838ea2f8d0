// What the benchmarks (bench exits, bench disk, bench ide) share: running a VMM as a child process with a
// deadline, reading the guest's "prefix: key=value ..." lines, medians, where the binaries and guests are, the
// exits a QEMU run made between the guest's port-0x80 markers (perf), and what iovmm's --stats-json says
// between them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace iovmm::cli {

inline constexpr int kGuestSuccessStatus = 1;  // debug_exit(0) -> (0 << 1) | 1
inline constexpr int kUsageStatus = 2;

struct ProcessResult {
  int status = -1;  // exit status, 128 + signal, or -1 if it could not start
  std::string out;
  std::string err;
  bool timed_out = false;
};

// Runs argv[0] (looked up in PATH) with stdin from /dev/null, collecting stdout and stderr; kills it after
// timeout_s so a hung guest never hangs the bench.
[[nodiscard]] ProcessResult run_process(const std::vector<std::string>& argv, int timeout_s);

// The last non-empty line of a process's stderr, without iovmm's "iovmm: " prefix: what a failure says.
[[nodiscard]] std::string last_line(const std::string& text);
// "exit status 4: <last line>", or "timed out".
[[nodiscard]] std::string describe_failure(const ProcessResult& result);

[[nodiscard]] double median(std::vector<double> values);

// The key=value words of every line containing `marker` (e.g. "disk: result "), in order; words without '=' are
// ignored. Searched anywhere in a line: QEMU's firmware leaves escape codes before the first one.
[[nodiscard]] std::vector<std::map<std::string, std::string>> guest_lines(const std::string& text,
                                                                          std::string_view marker);
[[nodiscard]] bool has_line(const std::string& text, std::string_view line);

// The iovmm binary (this program unless `given`), and a guest next to it (guests/NAME) unless `given`.
[[nodiscard]] std::optional<std::string> iovmm_binary(const std::string& given);
[[nodiscard]] std::string guest_path(const std::string& given, std::string_view name);

// One measured loop between a 0xB0 and a 0xE0 marker: user-space exits (the begin marker's own exit excluded) and
// port I/O exits by port.
struct MarkedSegment {
  uint64_t user_exits = 0;
  std::map<uint16_t, uint64_t> pio_exits_by_port;
};

// Runs QEMU (`argv`) under `perf record` with KVM's kvm_userspace_exit and kvm_pio tracepoints and cuts the trace
// at the markers. Returns the run (for its output) and the segments; an error string when perf itself failed.
struct QemuTrace {
  ProcessResult run;
  std::vector<MarkedSegment> segments;
  std::optional<std::string> error;
};
[[nodiscard]] QemuTrace trace_qemu(const std::vector<std::string>& argv, int timeout_s, bool pio_by_port);

// From an iovmm --stats-json document: the segments between its markers, with exits by register for `device`
// (accesses that took the exit path; a string transfer is one exit).
struct IovmmSegment {
  uint64_t user_exits = 0;
  std::map<std::string, uint64_t> exits_by_register;
};
[[nodiscard]] std::vector<IovmmSegment> iovmm_segments(const nlohmann::json& stats, std::string_view device);

// A temporary file path unique to this process.
[[nodiscard]] std::string temp_file(std::string_view stem, std::string_view extension);

}  // namespace iovmm::cli
