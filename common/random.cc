#include "common/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace wsfleet {

Status randomBytes(void* out, size_t size) {
  auto* dest = static_cast<unsigned char*>(out);
  size_t got = 0;
  while (got < size) {
    // Blocks only until the pool is first seeded at boot; after that reads of any size
    // succeed, though a signal may cut a large one short.
    const ssize_t n = getrandom(dest + got, size - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status(Code::kInternal, "random_failed",
                    std::string("getrandom failed: ") + std::strerror(errno));
    }
    got += static_cast<size_t>(n);
  }
  return Status::ok();
}

std::string hexEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (char ch : bytes) {
    const auto b = static_cast<unsigned char>(ch);
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xF]);
  }
  return out;
}

Result<std::string> tryRandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  WSF_RETURN_IF_ERROR(randomBytes(raw.data(), raw.size()));
  return hexEncode(raw);
}

std::string randomHex(size_t bytes) {
  Result<std::string> hex = tryRandomHex(bytes);
  if (!hex) {
    std::fprintf(stderr, "wsfleet: %s\n", hex.status().toString().c_str());
    std::abort();
  }
  return std::move(hex).value();
}

}  // namespace wsfleet
