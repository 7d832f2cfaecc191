// Settings of the migration engine. Plain values; `appliance` fills them from berth.yaml.
#pragma once

#include <string>

namespace berth::flyway {

struct Config {
  std::string history_table = "flyway_schema_history";  ///< Flyway's default table name
};

}  // namespace berth::flyway
