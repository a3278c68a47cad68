#pragma once
// A private directory for one test, removed with everything in it when the test ends.

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

namespace wsfleet {

class TempDir {
 public:
  // Under $TMPDIR (else /tmp); the name starts with wsfleet-test- for whoever finds one
  // left behind by a killed test.
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "wsfleet-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      // Thrown rather than asserted: gtest reports it as a failure of the test that
      // wanted the directory.
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    }
    path_ = std::move(pattern);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

  // path()/relative.
  std::string file(std::string_view relative) const { return path_ + "/" + std::string(relative); }

  // Writes `content` to path()/relative, creating its directories; returns the file's path.
  std::string write(std::string_view relative, std::string_view content) const {
    const std::filesystem::path target = file(relative);
    std::filesystem::create_directories(target.parent_path());
    std::ofstream(target, std::ios::binary) << content;
    return target.string();
  }

 private:
  std::string path_;
};

}  // namespace wsfleet
