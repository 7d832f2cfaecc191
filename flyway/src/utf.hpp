// UTF-8 helpers the module needs to behave like Java: strict validation (Java's reporting
// decoder) and String.compareTo order (UTF-16 code units) for UTF-8 text.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace berth::flyway {

/// The offset of the first byte that is not part of well-formed UTF-8 (overlong forms,
/// surrogates and code points above U+10FFFF are malformed), or nullopt if all is well-formed.
std::optional<std::size_t> find_malformed_utf8(std::string_view text);

/// Java's `a.compareTo(b) < 0` for the UTF-8 strings `a` and `b`: UTF-16 code-unit order, which
/// differs from byte order in that supplementary characters sort before U+E000..U+FFFF. Bytes
/// that are not UTF-8 count as U+FFFD, as Java's lenient decoding makes them.
bool utf16_less(std::string_view a, std::string_view b);

}  // namespace berth::flyway
