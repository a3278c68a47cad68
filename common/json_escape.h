#pragma once
// The escapes of JSON string literals, shared by the codec's writer and the log writer
// (which keeps out of the codec library so that anything can log).

#include <cstdint>
#include <string>

namespace wsfleet {

// Appends the escape of ASCII byte `c` (< 0x80): the two-character form where JSON has
// one (\" \\ \b \f \n \r \t), else \u00XX.
void appendJsonAsciiEscape(std::string& out, unsigned char c);

// Appends \uXXXX (lowercase hex) for a code point or UTF-16 unit up to U+FFFF.
void appendJsonUnicodeEscape(std::string& out, uint32_t unit);

}  // namespace wsfleet
