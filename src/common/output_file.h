// A file the VMM writes when a run ends (--stats-json, a benchmark's --json), opened before the run starts: a path
// that cannot be written (no such directory, a read-only file system, a directory, a FIFO nobody reads) is refused
// up front instead of after the whole guest has run, and what goes wrong at the end says why (errno text).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/fd.h"

namespace iovmm {

class OutputFile {
 public:
  // Opens (creating it if needed, without truncating yet) `path` for `option`; throws UsageError
  // "<option> <path>: <why>" when it cannot. Never blocks: a FIFO without a reader is refused (ENXIO).
  // A regular file, a FIFO or pipe with a reader, or a character device (/dev/null, /dev/stderr) is accepted.
  OutputFile(std::string path, std::string_view option);
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  // Removes the file again if it was created here and neither kept nor written: a refused command line leaves no
  // empty file behind.
  ~OutputFile();

  // From now on the file stays, written or not (the run has started).
  void keep() { keep_ = true; }

  // Replaces the file's contents with `text` (a regular file is truncated first); the error line
  // "<option> <path>: write: <strerror>" on failure, nullopt on success. Closes the file.
  [[nodiscard]] std::optional<std::string> replace_contents(std::string_view text);

  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  [[nodiscard]] std::string failure(std::string_view what, int err) const;

  std::string path_;
  std::string option_;
  Fd fd_;
  bool regular_ = false;
  bool created_ = false;
  bool keep_ = false;
};

}  // namespace iovmm
