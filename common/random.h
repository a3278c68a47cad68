#pragma once
// Random bytes and ids from the kernel's CSPRNG (getrandom), the one place that reads it.

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace wsfleet {

// Fills out[0..size) with random bytes. Interrupted and short reads are retried.
// Errors: Code::kInternal, reason random_failed (only when the kernel refuses, e.g. a
// seccomp filter or a kernel without getrandom).
Status randomBytes(void* out, size_t size);

// `bytes` random bytes as 2 * bytes lowercase hex digits. Errors as randomBytes.
Result<std::string> tryRandomHex(size_t bytes);

// The same for ids whose callers have no way to report an error (instance and session
// ids). A kernel that refuses random bytes is a broken host: the process aborts rather
// than hand out predictable or repeated ids.
std::string randomHex(size_t bytes);

// Lowercase hex of arbitrary bytes, two digits per byte.
std::string hexEncode(std::string_view bytes);

}  // namespace wsfleet
