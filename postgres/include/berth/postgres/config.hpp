// Settings of the PostgreSQL cluster berth owns. Plain values; `appliance` fills them.
#pragma once

#include <filesystem>

namespace berth::postgres {

struct Config {
  std::filesystem::path data_dir;    ///< cluster data directory, <primary volume>/postgres
  std::filesystem::path socket_dir;  ///< Unix socket directory, <primary volume>/run
};

}  // namespace berth::postgres
