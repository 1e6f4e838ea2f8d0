#include "run_vmm.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace iovmm::test {

namespace {
RunResult run(const std::string& program, const std::vector<std::string>& args, int timeout_s, int signal_number,
              int signal_after_ms, const std::string& signal_on_line) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid;
  int err = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (err != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    throw std::runtime_error("posix_spawn " + program + " failed");
  }

  RunResult result;
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::seconds(timeout_s);
  bool signalled = signal_number == 0;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    auto now = std::chrono::steady_clock::now();
    const bool line_seen = !signal_on_line.empty() && result.out.find(signal_on_line) != std::string::npos;
    const bool time_up = signal_on_line.empty() && now - start >= std::chrono::milliseconds(signal_after_ms);
    if (!signalled && (line_seen || time_up)) {
      kill(pid, signal_number);
      signalled = true;
    }
    if (now >= deadline) {
      kill(pid, SIGKILL);
      result.timed_out = true;
      break;
    }
    if (poll(fds, 2, 50) < 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char buffer[4096];
      ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        (i == 0 ? result.out : result.err).append(buffer, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& fd : fds) {
    if (fd.fd >= 0) close(fd.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace

RunResult run_program(const std::string& program, const std::vector<std::string>& args, int timeout_s,
                      int signal_number, int signal_after_ms) {
  return run(program, args, timeout_s, signal_number, signal_after_ms, "");
}

RunResult run_program_until(const std::string& program, const std::vector<std::string>& args, const std::string& line,
                            int signal_number, int timeout_s) {
  return run(program, args, timeout_s, signal_number, 0, line);
}

RunResult run_vmm(const std::vector<std::string>& args, int timeout_s) {
  return run_program(IOVMM_BINARY, args, timeout_s);
}

std::string guest_path(const std::string& name) { return std::string(IOVMM_GUEST_DIR) + "/" + name; }

std::string temp_path(const std::string& name) {
  // Prefixed with the running test's full name: ctest runs tests (and each parameter of a test) in parallel.
  std::string prefix;
  if (const auto* test = ::testing::UnitTest::GetInstance()->current_test_info()) {
    prefix = std::string(test->test_suite_name()) + "." + test->name();
    for (char& c : prefix) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
    }
  }
  std::string dir = std::string(IOVMM_TEST_TMPDIR) + "/" + prefix;
  std::filesystem::create_directories(dir);
  return dir + "/" + name;
}

std::vector<std::string> lines_starting_with(const std::string& text, const std::string& prefix) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  std::string line;
  while (std::getline(stream, line)) {
    if (line.rfind(prefix, 0) == 0) lines.push_back(line);
  }
  return lines;
}

}  // namespace iovmm::test
