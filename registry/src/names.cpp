// Hand-written matchers for the OCI Distribution Spec's repository-name and tag grammars.
// No std::regex: these run on every request, and a byte-by-byte scan is both faster and easy
// to audit for the path-traversal cases the grammar exists to exclude.
#include "berth/registry/names.hpp"

#include <cstddef>

namespace berth::registry {
namespace {

constexpr std::size_t max_repository_name_size = 255;
constexpr std::size_t max_tag_size = 128;

bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool is_alnum(char c) {
  return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`: runs of lowercase alphanumerics, each pair joined by
// exactly one separator. A component therefore never starts or ends with a separator, and "."
// can only ever appear between two alphanumerics, so "." and ".." cannot match.
bool is_valid_component(std::string_view component) {
  std::size_t pos = 0;
  while (true) {
    std::size_t const run_start = pos;
    while (pos < component.size() && is_lower_alnum(component[pos])) ++pos;
    if (pos == run_start) return false;  // empty component, or a separator not followed by alnum
    if (pos == component.size()) return true;

    std::size_t const separator_start = pos;
    while (pos < component.size() && !is_lower_alnum(component[pos])) ++pos;
    std::string_view const separator = component.substr(separator_start, pos - separator_start);
    bool const all_dashes = separator.find_first_not_of('-') == std::string_view::npos;
    if (separator != "." && separator != "_" && separator != "__" && !all_dashes) return false;
  }
}

}  // namespace

bool is_valid_repository_name(std::string_view name) {
  if (name.empty() || name.size() > max_repository_name_size) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t const slash = name.find('/', start);
    if (!is_valid_component(name.substr(start, slash == std::string_view::npos ? name.npos : slash - start)))
      return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

bool is_valid_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > max_tag_size) return false;
  if (!is_alnum(tag[0]) && tag[0] != '_') return false;
  for (char c : tag.substr(1))
    if (!is_alnum(c) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

}  // namespace berth::registry
