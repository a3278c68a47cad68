#pragma once
// Strict UTF-8 decoding (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF),
// shared by the JSON codec, channel and user id checks, and the log writer.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace wsfleet {

// Length (1..4) of the well-formed UTF-8 sequence starting at s[pos], storing its code
// point; 0 when the bytes there are ill-formed (overlong, surrogate, truncated, > U+10FFFF)
// or pos is past the end.
size_t decodeUtf8At(std::string_view s, size_t pos, uint32_t* codepoint);

// Bytes (at least 1) of the maximal ill-formed subpart at s[pos], where decodeUtf8At
// returned 0: replacing each such subpart with one U+FFFD is what Unicode recommends
// (chapter 3, "U+FFFD Substitution of Maximal Subparts"), not one per byte.
size_t utf8IllFormedLength(std::string_view s, size_t pos);

}  // namespace wsfleet
