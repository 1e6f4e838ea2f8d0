#include "cli/bench_support.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <sstream>

namespace iovmm::cli {

ProcessResult run_process(const std::vector<std::string>& argv, int timeout_s) {
  ProcessResult result;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]), ::close(out_pipe[1]);
    return result;
  }
  std::vector<char*> c_argv;
  for (const auto& arg : argv) c_argv.push_back(const_cast<char*>(arg.c_str()));
  c_argv.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null_fd = ::open("/dev/null", O_RDONLY);
    ::dup2(null_fd, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::execvp(c_argv[0], c_argv.data());
    ::dprintf(2, "cannot run %s\n", c_argv[0]);
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (pid < 0) {
    ::close(out_pipe[0]), ::close(err_pipe[0]);
    return result;
  }

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::array<pollfd, 2> fds = {pollfd{out_pipe[0], POLLIN, 0}, pollfd{err_pipe[0], POLLIN, 0}};
  std::array<std::string*, 2> sinks = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds.data(), fds.size(), static_cast<int>(std::min<int64_t>(left.count(), 1000))) < 0 && errno != EINTR) {
      break;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buffer[8192];
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& fd : fds) {
    if (fd.fd >= 0) ::close(fd.fd);
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  return result;
}

std::string last_line(const std::string& text) {
  std::istringstream lines(text);
  std::string line, last;
  while (std::getline(lines, line)) {
    if (!line.empty()) last = line;
  }
  if (last.starts_with("iovmm: ")) last = last.substr(7);
  return last.empty() ? "(no message)" : last;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

std::string describe_failure(const ProcessResult& result) {
  if (result.timed_out) return "timed out";
  return fmt::format("exit status {}: {}", result.status, last_line(result.err));
}

std::vector<std::map<std::string, std::string>> guest_lines(const std::string& text, std::string_view marker) {
  std::vector<std::map<std::string, std::string>> found;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t at = line.find(marker);
    if (at == std::string::npos) continue;
    std::istringstream words(line.substr(at + marker.size()));
    std::map<std::string, std::string> fields;
    std::string word;
    while (words >> word) {
      const size_t eq = word.find('=');
      if (eq != std::string::npos) fields[word.substr(0, eq)] = word.substr(eq + 1);
    }
    found.push_back(std::move(fields));
  }
  return found;
}

bool has_line(const std::string& text, std::string_view line) { return text.find(line) != std::string::npos; }

std::optional<std::string> iovmm_binary(const std::string& given) {
  if (!given.empty()) return given;
  std::error_code error;
  auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return std::nullopt;
  return self.string();
}

std::string guest_path(const std::string& given, std::string_view name) {
  if (!given.empty()) return std::filesystem::absolute(given).string();
  std::error_code error;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return (std::filesystem::path("guests") / name).string();
  return (self.parent_path() / "guests" / name).string();
}

std::string temp_file(std::string_view stem, std::string_view extension) {
  static unsigned counter = 0;
  return (std::filesystem::temp_directory_path() / fmt::format("{}-{}-{}.{}", stem, ::getpid(), counter++, extension))
      .string();
}

namespace {
// "... pio_write at 0x1f7 size 1 count 1 val 0x20" -> 0x1f7
std::optional<uint16_t> traced_port(const std::string& line) {
  const size_t at = line.find(" at 0x");
  if (at == std::string::npos) return std::nullopt;
  try {
    return static_cast<uint16_t>(std::stoul(line.substr(at + 4), nullptr, 16));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}
}  // namespace

QemuTrace trace_qemu(const std::vector<std::string>& argv, int timeout_s, bool pio_by_port) {
  QemuTrace trace;
  const std::string data = temp_file("iovmm-bench", "perf");
  std::vector<std::string> perf = {"perf", "record", "-q", "-o", data, "-e", "kvm:kvm_userspace_exit", "-e",
                                   "kvm:kvm_pio"};
  if (!pio_by_port) {
    perf.push_back("--filter");
    perf.push_back("port == 0x80");
  }
  perf.push_back("--");
  perf.insert(perf.end(), argv.begin(), argv.end());
  trace.run = run_process(perf, timeout_s);
  if (trace.run.status != kGuestSuccessStatus) {
    trace.error = fmt::format("perf record: {}", describe_failure(trace.run));
    std::filesystem::remove(data);
    return trace;
  }
  const ProcessResult script = run_process({"perf", "script", "-i", data, "-F", "event,trace"}, 300);
  std::filesystem::remove(data);
  if (script.status != 0) {
    trace.error = fmt::format("perf script: {}", describe_failure(script));
    return trace;
  }
  std::optional<MarkedSegment> inside;
  std::istringstream lines(script.out);
  std::string line;
  while (std::getline(lines, line)) {
    const bool pio = line.find("kvm_pio") != std::string::npos;
    const auto port = pio ? traced_port(line) : std::nullopt;
    if (pio && port == 0x80 && line.find("val 0xb0") != std::string::npos) {
      inside = MarkedSegment{};
    } else if (pio && port == 0x80 && line.find("val 0xe0") != std::string::npos) {
      if (inside) {
        // The trace shows the begin marker's own exit after its kvm_pio event.
        if (inside->user_exits > 0) --inside->user_exits;
        trace.segments.push_back(*inside);
      }
      inside.reset();
    } else if (inside && pio && port) {
      ++inside->pio_exits_by_port[*port];
    } else if (inside && line.find("kvm_userspace_exit") != std::string::npos) {
      ++inside->user_exits;
    }
  }
  return trace;
}

namespace {
std::map<std::string, uint64_t> exit_accesses(const nlohmann::json& devices, std::string_view device) {
  std::map<std::string, uint64_t> counts;
  for (const auto& window : devices) {
    if (window.value("device", "") != device) continue;
    for (const auto& access : window.at("accesses")) {
      if (access.value("path", "") != "exit") continue;
      std::string name = access.at("register").is_string() ? access.at("register").get<std::string>() : "";
      if (name.empty()) name = fmt::format("{}+{:#x}", window.value("window", ""), access.value("offset", 0ull));
      counts[name] += access.value("count", 0ull);
    }
  }
  return counts;
}
}  // namespace

std::vector<IovmmSegment> iovmm_segments(const nlohmann::json& stats, std::string_view device) {
  std::vector<IovmmSegment> segments;
  const nlohmann::json* begin = nullptr;
  for (const auto& marker : stats.value("markers", nlohmann::json::array())) {
    if (marker.value("value", 0) == 0xB0) {
      begin = &marker;
    } else if (marker.value("value", 0) == 0xE0 && begin) {
      IovmmSegment segment;
      // Both snapshots count their own marker's exit: the loop's are in between.
      const uint64_t exits = marker.value("user_exits", 0ull) - begin->value("user_exits", 0ull);
      segment.user_exits = exits > 0 ? exits - 1 : 0;
      auto before = exit_accesses(begin->at("devices"), device);
      for (const auto& [name, count] : exit_accesses(marker.at("devices"), device)) {
        if (count > before[name]) segment.exits_by_register[name] = count - before[name];
      }
      segments.push_back(std::move(segment));
      begin = nullptr;
    }
  }
  return segments;
}

}  // namespace iovmm::cli
