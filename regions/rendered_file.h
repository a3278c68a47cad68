#pragma once
// What the topology renderers produce: files for other programs (nats-server, named),
// as text. The renderers are pure; wsfleetctl writes the files.

#include <string>
#include <string_view>

namespace wsfleet {

struct RenderedFile {
  std::string name;  // a plain file name, no directory
  std::string text;
};

// `text` with control bytes replaced by '?', for a one-line header comment that names the
// topology a file came from.
inline std::string commentSafe(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

}  // namespace wsfleet
