// The command line: CLI11 parses, the configuration is found and loaded once, then the chosen
// subcommand runs. Errors end here: printed once, turned into an exit code.
#include "berth/appliance/cli.hpp"

#include <iostream>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "berth/appliance/config.hpp"
#include "berth/core/version.hpp"
#include "db_commands.hpp"
#include "logging.hpp"
#include "registry_commands.hpp"
#include "serve.hpp"
#include "tls_commands.hpp"

namespace berth::appliance {
namespace {

struct GlobalOptions {
  std::string config_file;
  std::string log_level;
};

Config load(GlobalOptions const& options, std::string const& file_override = {}) {
  std::optional<std::filesystem::path> explicit_path;
  if (!file_override.empty())
    explicit_path = file_override;
  else if (!options.config_file.empty())
    explicit_path = options.config_file;
  auto file = find_config_file(explicit_path);
  return file ? load_config(*file) : default_config();
}

}  // namespace

int run_cli(int argc, char** argv) {
  setup_logging();
  CLI::App app{
      "berth: a private container registry, PostgreSQL with Flyway-compatible migrations, nightly "
      "snapshots and promotion to AWS ECR, in one appliance.",
      "berth"};
  app.set_version_flag("--version", std::string("berth ") + berth::version, "print the version and exit");
  app.require_subcommand(1);
  app.fallthrough();

  GlobalOptions global;
  app.add_option("-c,--config", global.config_file,
                 "configuration file (default: $BERTH_CONFIG, else ./berth.dev.yaml, else /etc/berth/berth.yaml, "
                 "else built-in dev defaults)");
  app.add_option("--log-level", global.log_level, "log level, overriding log.level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  auto* serve_command = app.add_subcommand("serve", "run the appliance in the foreground until SIGTERM");
  std::string listen, data, backup;
  serve_command->add_option("--listen", listen, "HOST:PORT to listen on, overriding server.listen");
  serve_command->add_option("--data", data, "primary volume directory, overriding volumes.primary");
  serve_command->add_option("--backup", backup, "backup volume directory, overriding volumes.backup");

  auto* config_command = app.add_subcommand("config", "inspect the configuration");
  config_command->require_subcommand(1);
  auto* check_command = config_command->add_subcommand(
      "check", "validate a configuration file (line and column for every error) and print the effective settings");
  std::string check_file;
  check_command->add_option("FILE", check_file, "file to check (default: the one berth would use)");

  auto* registry_command = app.add_subcommand("registry", "inspect the registry storage");
  registry_command->require_subcommand(1);
  auto* ls_command = registry_command->add_subcommand("ls", "list repositories with their tags and sizes");
  std::string ls_prefix;
  ls_command->add_option("NAMESPACE", ls_prefix, "only repositories under this namespace or repository (e.g. api)");
  auto* fsck_command = registry_command->add_subcommand(
      "fsck", "rehash every blob and check every manifest's references; exit 1 if anything is damaged");

  auto* tls_command = app.add_subcommand("tls", "TLS of the front door");
  tls_command->require_subcommand(1);
  auto* tls_ca_command = tls_command->add_subcommand(
      "ca", "print berth's CA certificate and how to make docker, podman, skopeo and this system trust it");

  auto* db_command = app.add_subcommand("db", "Flyway-compatible migrations of a PostgreSQL database");
  db_command->require_subcommand(1);
  DbTarget db_target;
  std::vector<CLI::App*> db_commands;
  for (auto [name, help] : {std::pair{"migrate", "apply pending migrations (Flyway's migrate)"},
                            std::pair{"info", "show every migration and its state (Flyway's info)"},
                            std::pair{"validate", "check applied migrations against the files (Flyway's validate)"}}) {
    auto* command = db_command->add_subcommand(name, help);
    command
        ->add_option("--url", db_target.url,
                     "PostgreSQL connection URL or libpq string (keep passwords out of argv: use BERTH_DB_URL)")
        ->envname("BERTH_DB_URL")
        ->required();
    command->add_option("--location", db_target.location, "folder with the migrations (V1__init.sql, ...)")
        ->required()
        ->check(CLI::ExistingDirectory);
    command->add_option("--target", db_target.target, "migrate up to this version");
    command->add_flag("--out-of-order", db_target.out_of_order, "also apply versions below the highest applied");
    db_commands.push_back(command);
  }

  try {
    app.parse(argc, argv);
  } catch (CLI::ParseError const& error) {
    // CLI11 reports a missing subcommand before a misspelt one; name the misspelt one instead.
    if (auto unknown = app.remaining(); !unknown.empty() && dynamic_cast<CLI::RequiredError const*>(&error)) {
      std::cerr << "berth: unknown command \"" << unknown.front() << "\"\nRun with --help for the list of commands.\n";
      return 2;
    }
    int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }

  try {
    if (!global.log_level.empty()) set_log_level(global.log_level);

    if (check_command->parsed()) {
      auto config = load(global, check_file);
      std::cout << describe(config) << "configuration OK\n";
      return 0;
    }

    if (db_commands[0]->parsed()) return db_migrate(load(global), db_target, std::cout);
    if (db_commands[1]->parsed()) return db_info(load(global), db_target, std::cout);
    if (db_commands[2]->parsed()) return db_validate(load(global), db_target, std::cout);
    if (ls_command->parsed()) return registry_ls(load(global), ls_prefix, std::cout);
    if (fsck_command->parsed()) return registry_fsck(load(global), std::cout);
    if (tls_ca_command->parsed()) return tls_ca(load(global), std::cout);

    if (serve_command->parsed()) {
      auto config = load(global);
      if (!listen.empty()) set_option(config, "server.listen", listen, "--listen");
      if (!data.empty()) set_option(config, "volumes.primary", data, "--data");
      if (!backup.empty()) set_option(config, "volumes.backup", backup, "--backup");
      derive_paths(config);
      if (global.log_level.empty()) set_log_level(config.log_level);
      return serve(config);
    }
  } catch (std::exception const& error) {
    // The service reports through its log (the journal); interactive commands print plainly.
    if (serve_command->parsed())
      spdlog::error("{}", error.what());
    else
      std::cerr << "berth: " << error.what() << "\n";
    return 1;
  }
  return 2;
}

}  // namespace berth::appliance
