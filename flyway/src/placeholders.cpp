// Replacement is one left-to-right pass over the text, as Flyway's PlaceholderReplacingReader
// does it: a replaced value is not scanned again, so a value containing `${x}` stays literal.
#include "berth/flyway/placeholders.hpp"

#include <ctime>

#include "berth/flyway/error.hpp"

namespace berth::flyway {
namespace {

std::string lower_ascii(std::string_view text) {
  std::string lower(text);
  for (char& c : lower)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return lower;
}

}  // namespace

Placeholders::Placeholders(Config const& config, DefaultPlaceholders const& defaults)
    : prefix_(config.placeholder_prefix), suffix_(config.placeholder_suffix) {
  for (auto const& [name, value] : config.placeholders) values_[lower_ascii(name)] = value;
  auto set_default = [&](std::string_view name, std::optional<std::string> const& value) {
    if (value) values_[lower_ascii(name)] = *value;
  };
  set_default("flyway:defaultSchema", defaults.default_schema);
  set_default("flyway:user", defaults.user);
  set_default("flyway:database", defaults.database);
  set_default("flyway:timestamp", defaults.timestamp);
  set_default("flyway:workingDirectory", defaults.working_directory);
  set_default("flyway:table", defaults.table);
  set_default("flyway:environment", defaults.environment);
}

Placeholders Placeholders::for_script(std::string_view filename) const {
  Placeholders copy = *this;
  copy.values_["flyway:filename"] = std::string(filename);
  return copy;
}

std::string Placeholders::replace(std::string_view text) const {
  std::string result;
  result.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto start = prefix_.empty() ? std::string_view::npos : text.find(prefix_, pos);
    if (start == std::string_view::npos) break;
    result.append(text.substr(pos, start - pos));
    auto name_start = start + prefix_.size();
    auto end = text.find(suffix_, name_start);
    // An unterminated placeholder runs to the end of the script; Flyway then fails on its name.
    auto name = text.substr(name_start, end == std::string_view::npos ? std::string_view::npos : end - name_start);
    auto found = values_.find(lower_ascii(name));
    if (found == values_.end()) {
      auto written = prefix_ + std::string(name) + (end == std::string_view::npos ? "" : suffix_);
      if (name.find("flyway:") != std::string_view::npos)
        throw MigrationError("Failed to populate value for default placeholder: " + written);
      throw MigrationError("No value provided for placeholder: " + written + ".  Check your configuration!");
    }
    result += found->second;
    pos = end + suffix_.size();
  }
  if (pos < text.size()) result.append(text.substr(pos));
  return result;
}

std::string format_placeholder_timestamp(std::chrono::system_clock::time_point when) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(when);
  std::tm local{};
  localtime_r(&seconds, &local);
  char buffer[32];
  std::size_t length = std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S", &local);
  return std::string(buffer, length);
}

}  // namespace berth::flyway
