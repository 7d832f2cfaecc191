// Flyway reads a script line by line (BufferedReader.readLine) and feeds each line's UTF-8 bytes
// to one CRC-32 with nothing in between; the first line loses a leading BOM. Dropping every CR
// and LF byte and one leading BOM from valid UTF-8 yields exactly the same byte stream, so that
// is what is hashed here. CRC-32 is the IEEE polynomial, implemented here to avoid a zlib
// dependency for 20 lines.
#include "berth/flyway/checksum.hpp"

#include <array>
#include <fstream>
#include <sstream>

#include "berth/flyway/error.hpp"
#include "utf.hpp"

namespace berth::flyway {
namespace {

constexpr std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t byte = 0; byte < 256; ++byte) {
    std::uint32_t crc = byte;
    for (int bit_idx = 0; bit_idx < 8; ++bit_idx) crc = (crc & 1) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    table[byte] = crc;
  }
  return table;
}

constexpr auto crc_table = make_crc_table();

// Continues a CRC-32 over `bytes`; `crc` is the running value before the final inversion.
std::uint32_t crc32_update(std::uint32_t crc, std::string_view bytes) {
  for (char c : bytes) crc = crc_table[(crc ^ static_cast<std::uint8_t>(c)) & 0xFF] ^ (crc >> 8);
  return crc;
}

// Java's `(int) crc.getValue()`: the same 32 bits read as two's complement.
std::int32_t to_signed(std::uint32_t value) {
  return static_cast<std::int32_t>(value);
}

std::string read_file(std::filesystem::path const& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  if (in) content << in.rdbuf();
  if (!in || in.bad())
    throw MigrationError("Unable to calculate checksum of " + path.filename().string() + ": cannot read " +
                         path.string());
  return content.str();
}

}  // namespace

std::int32_t checksum_of(std::string_view bytes, std::string_view name) {
  if (auto offset = find_malformed_utf8(bytes))
    throw MigrationError("Unable to calculate checksum of " + std::string(name) + ": malformed UTF-8 at byte offset " +
                         std::to_string(*offset));
  constexpr std::string_view bom = "\xEF\xBB\xBF";
  if (bytes.starts_with(bom)) bytes.remove_prefix(bom.size());

  std::uint32_t crc = 0xFFFFFFFFu;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    auto terminator = bytes.find_first_of("\r\n", pos);
    auto line = bytes.substr(pos, terminator == std::string_view::npos ? std::string_view::npos : terminator - pos);
    crc = crc32_update(crc, line);
    if (terminator == std::string_view::npos) break;
    pos = terminator + 1;
  }
  return to_signed(crc ^ 0xFFFFFFFFu);
}

std::int32_t combine_checksums(std::span<std::int32_t const> checksums) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::int32_t checksum : checksums) {
    auto value = static_cast<std::uint32_t>(checksum);
    char big_endian[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16), static_cast<char>(value >> 8),
                          static_cast<char>(value)};
    crc = crc32_update(crc, std::string_view(big_endian, 4));
  }
  return to_signed(crc ^ 0xFFFFFFFFu);
}

MigrationChecksum checksum_migration(MigrationFile const& migration, Config const& config,
                                     Placeholders const& placeholders) {
  auto raw = read_file(migration.path);
  auto name = migration.filename();
  auto raw_checksum = checksum_of(raw, name);
  bool replace = migration.settings.placeholder_replacement.value_or(config.placeholder_replacement);
  // Only repeatables hash the replaced text (Flyway 6.3+), so that changing a placeholder value
  // re-applies them; versioned scripts keep the checksum of what is in the file.
  if (migration.kind != MigrationKind::repeatable || !replace) return {raw_checksum, std::nullopt};
  auto replaced = placeholders.for_script(name).replace(raw);
  return {checksum_of(replaced, name), raw_checksum};
}

}  // namespace berth::flyway
