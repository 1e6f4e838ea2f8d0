// Runs a VMM (iovmm or QEMU) as a child process with stdin from /dev/null, capturing stdout and stderr, and kills
// it when it overruns its time limit: an integration test never hangs CI.
#pragma once

#include <string>
#include <vector>

namespace iovmm::test {

struct RunResult {
  int status = -1;  // exit status, or 128 + signal if it died of a signal
  std::string out;
  std::string err;
  bool timed_out = false;
};

// `program` is a path; args exclude argv[0]. A signal can be sent after `signal_after_ms` (0 = never).
RunResult run_program(const std::string& program, const std::vector<std::string>& args, int timeout_s = 60,
                      int signal_number = 0, int signal_after_ms = 0);

// Sends `signal_number` as soon as standard output contains `line` (a guest saying it reached a point), then
// collects the rest as run_program does.
RunResult run_program_until(const std::string& program, const std::vector<std::string>& args, const std::string& line,
                            int signal_number, int timeout_s = 60);

// The iovmm binary under test.
RunResult run_vmm(const std::vector<std::string>& args, int timeout_s = 60);

std::string guest_path(const std::string& name);  // IOVMM_GUEST_DIR/name
std::string temp_path(const std::string& name);   // IOVMM_TEST_TMPDIR/<test name>/name, directory created

// Lines of `text` that start with `prefix`.
std::vector<std::string> lines_starting_with(const std::string& text, const std::string& prefix);

}  // namespace iovmm::test
