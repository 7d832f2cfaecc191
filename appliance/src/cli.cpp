// The command line: CLI11 parses, the configuration is found and loaded once, then the chosen
// subcommand runs. Errors end here: printed once, turned into an exit code.
#include "berth/appliance/cli.hpp"

#include <iostream>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "applications.hpp"
#include "backup_commands.hpp"
#include "berth/appliance/config.hpp"
#include "berth/core/version.hpp"
#include "cluster_commands.hpp"
#include "db_commands.hpp"
#include "doctor.hpp"
#include "logging.hpp"
#include "promote_commands.hpp"
#include "registry_commands.hpp"
#include "retention_commands.hpp"
#include "robot_commands.hpp"
#include "serve.hpp"
#include "tls_commands.hpp"
#include "user_commands.hpp"

namespace berth::appliance {
namespace {

struct GlobalOptions {
  std::string config_file;
  std::string log_level;
  std::string data;    ///< --data: volumes.primary
  std::string backup;  ///< --backup: volumes.backup
};

Config load(GlobalOptions const& options, std::string const& file_override = {}) {
  std::optional<std::filesystem::path> explicit_path;
  if (!file_override.empty())
    explicit_path = file_override;
  else if (!options.config_file.empty())
    explicit_path = options.config_file;
  auto file = find_config_file(explicit_path);
  auto config = file ? load_config(*file) : default_config();
  // Every command that works on the volumes takes the same overrides as serve: a second instance
  // can be inspected without writing a config file for it.
  if (!options.data.empty() || !options.backup.empty()) {
    if (!options.data.empty()) set_option(config, "volumes.primary", options.data, "--data");
    if (!options.backup.empty()) set_option(config, "volumes.backup", options.backup, "--backup");
    derive_paths(config);
  }
  return config;
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
                 "configuration file (default: $BERTH_CONFIG, else ./berth.local.yaml, else ./berth.dev.yaml, else "
                 "/etc/berth/berth.yaml, "
                 "else built-in dev defaults)");
  app.add_option("--log-level", global.log_level, "log level, overriding log.level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  app.add_option("--data", global.data, "primary volume directory, overriding volumes.primary (any command)");
  app.add_option("--backup", global.backup, "backup volume directory, overriding volumes.backup (any command)");

  auto* serve_command = app.add_subcommand("serve", "run the appliance in the foreground until SIGTERM");
  std::string listen;
  serve_command->add_option("--listen", listen, "HOST:PORT to listen on, overriding server.listen");

  auto* config_command = app.add_subcommand("config", "inspect the configuration");
  config_command->require_subcommand(1);
  auto* check_command = config_command->add_subcommand(
      "check", "validate a configuration file (line and column for every error) and print the effective settings");
  std::string check_file;
  check_command->add_option("FILE", check_file, "file to check (default: the one berth would use)");

  auto* registry_command = app.add_subcommand("registry", "inspect and look after the registry storage");
  registry_command->require_subcommand(1);
  auto* ls_command = registry_command->add_subcommand("ls", "list repositories with their tags and sizes");
  std::string ls_prefix;
  ls_command->add_option("NAMESPACE", ls_prefix, "only repositories under this namespace or repository (e.g. api)");
  // --json on every listing: one JSON document on stdout, in the shape the README documents.
  bool json_output = false;
  ls_command->add_flag("--json", json_output, "one JSON document instead of the table");
  auto* fsck_command = registry_command->add_subcommand(
      "fsck", "rehash every blob and check every manifest's references; exit 1 if anything is damaged");
  bool fsck_repair = false;
  fsck_command->add_flag("--repair", fsck_repair,
                         "restore missing or damaged blobs from the backup volume's pool (verified copies)");
  auto* gc_command = registry_command->add_subcommand(
      "gc", "collect garbage now: blobs (and with --delete-untagged, manifests) nothing needs; safe while serving");
  GcCommandOptions gc_options;
  gc_command->add_flag("--dry-run", gc_options.dry_run, "list what would be removed; change nothing");
  gc_command->add_flag("--delete-untagged", gc_options.delete_untagged,
                       "also delete untagged manifests no tag, index or subject keeps (registry.gc.delete_untagged)");
  gc_command->add_flag("--list", gc_options.list, "print every object removed");
  auto* retention_command = registry_command->add_subcommand(
      "retention", "delete the tags and manifests registry.retention does not keep (promoted images are kept)");
  RetentionCommandOptions retention_options;
  retention_command->add_flag("--dry-run", retention_options.dry_run, "list what would be deleted; change nothing");
  retention_command->add_flag("-v,--verbose", retention_options.verbose, "also list what is kept, and why");
  retention_command->add_option("REPOSITORY-GLOB", retention_options.repositories,
                                "only repositories matching this (e.g. api/orders, api/*, model/**)");

  auto* tls_command = app.add_subcommand("tls", "TLS of the front door");
  tls_command->require_subcommand(1);
  auto* tls_ca_command = tls_command->add_subcommand(
      "ca", "print berth's CA certificate and how to make docker, podman, skopeo and this system trust it");
  auto* tls_issue_command = tls_command->add_subcommand(
      "issue", "create berth's CA and server certificate now, or renew the certificate when due (serve does at start)");

  auto* db_command = app.add_subcommand("db", "Flyway-compatible migrations of a PostgreSQL database");
  db_command->require_subcommand(1);
  DbTarget db_target;
  std::string db_app;
  bool db_needs_location = false;
  auto const add_db_command = [&](char const* name, char const* help, bool needs_location) {
    auto* command = db_command->add_subcommand(name, help);
    command->add_option("APP", db_app,
                        "application database declared under databases: on berth's cluster (its owner role and "
                        "migrations folder are used); or give --url");
    command
        ->add_option("--url", db_target.url,
                     "any PostgreSQL: connection URL or libpq string (keep passwords out of argv: use BERTH_DB_URL)")
        ->envname("BERTH_DB_URL");
    command->add_option("--location", db_target.location, "folder with the migrations (V1__init.sql, ...)")
        ->check(CLI::ExistingDirectory);
    command->callback([&db_needs_location, needs_location] { db_needs_location = needs_location; });
    return command;
  };
  std::vector<CLI::App*> db_commands;
  for (auto [name, help] : {std::pair{"migrate", "apply pending migrations (Flyway's migrate)"},
                            std::pair{"info", "show every migration and its state (Flyway's info)"},
                            std::pair{"validate", "check applied migrations against the files (Flyway's validate)"}}) {
    auto* command = add_db_command(name, help, true);
    command->add_option("--target", db_target.target, "migrate up to this version");
    command->add_flag("--out-of-order", db_target.out_of_order, "also apply versions below the highest applied");
    if (std::string(name) == "migrate") {
      command->add_flag("--baseline-on-migrate", db_target.baseline_on_migrate,
                        "a database with tables but no history table is baselined first (Flyway's baselineOnMigrate)");
      command->add_option("--baseline-version", db_target.baseline_version,
                          "version of that baseline (Flyway's baselineVersion, default 1)");
    }
    db_commands.push_back(command);
  }
  DbBaselineOptions baseline_options;
  auto* db_baseline_command =
      add_db_command("baseline", "mark an existing database as migrated up to a version (Flyway's baseline)", false);
  db_baseline_command->add_option("--version", baseline_options.version,
                                  "version of the baseline (Flyway's baselineVersion, default 1); migrate then "
                                  "applies only later versions");
  db_baseline_command->add_option("--description", baseline_options.description,
                                  "description of the baseline row (default \"<< Flyway Baseline >>\")");
  auto* db_repair_command = add_db_command(
      "repair",
      "remove failed migration rows, mark removed files as deleted, realign checksums with the files (Flyway's repair)",
      true);
  bool allow_clean = false;
  auto* db_clean_command = add_db_command(
      "clean", "drop every object in the database's schema (Flyway's clean; needs --allow-clean)", false);
  db_clean_command->add_flag("--allow-clean", allow_clean,
                             "really drop everything (Flyway's cleanDisabled=false); without it clean refuses");

  CreateOptions create_options;
  auto* create_command = db_command->add_subcommand(
      "create", "create an application database and its owner role on berth's cluster (idempotent)");
  create_command->add_option("NAME", create_options.name, "database name (lowercase letters, digits, _)")->required();
  create_command->add_option("--owner", create_options.owner, "owner role (default: the declared one, else NAME)");
  create_command->add_option("--extension", create_options.extensions, "extension to install (repeatable)");
  auto* list_command =
      db_command->add_subcommand("list", "list the application databases with owner, size and connections");
  list_command->add_flag("--json", json_output, "a JSON array instead of the table");
  std::string url_name;
  auto* url_command = db_command->add_subcommand(
      "url", "print the connection URL (with the password) of an application database's owner role");
  url_command->add_option("NAME", url_name, "database name")->required();

  auto* status_command = app.add_subcommand(
      "status", "show whether the service runs, PostgreSQL's state, database sizes and the WAL archive");

  auto* doctor_command =
      app.add_subcommand("doctor",
                         "check the installation (config, modes, free space, snapshots, WAL, certificates, PostgreSQL, "
                         "clock) and say how to fix each problem; exit 1 on any error");
  bool doctor_json = false;
  doctor_command->add_flag("--json", doctor_json, "print the findings as JSON");

  // Run by PostgreSQL's archive_command, not by people: hidden from --help.
  std::string archive_dir, archive_state, wal_path, wal_name;
  auto* archive_command = app.add_subcommand("archive-wal", "copy a finished WAL segment into the archive");
  archive_command->group("");
  archive_command->add_option("--to", archive_dir, "archive directory")->required();
  archive_command->add_option("--state", archive_state, "where to record failures, for status and doctor");
  archive_command->add_option("PATH", wal_path, "the segment (%p)")->required();
  archive_command->add_option("NAME", wal_name, "its file name (%f)")->required();
  auto* backup_command = app.add_subcommand("backup", "snapshots of the primary volume on the backup volume");
  backup_command->require_subcommand(1);
  auto* backup_run_command = backup_command->add_subcommand(
      "run", "take a snapshot: registry, PostgreSQL base backup, configuration and secrets");
  auto* backup_list_command = backup_command->add_subcommand("list", "list the complete snapshots");
  backup_list_command->add_flag("--json", json_output, "a JSON array instead of the table");
  auto* backup_verify_command = backup_command->add_subcommand(
      "verify", "rehash a snapshot (default: the newest) against its manifest; exit 1 naming any mismatch");
  std::string backup_id;
  bool backup_all = false;
  auto* verify_id = backup_verify_command->add_option("ID", backup_id, "snapshot id (default: the newest)");
  backup_verify_command->add_flag("--all", backup_all, "verify every snapshot")->excludes(verify_id);
  auto* backup_restore_command =
      backup_command->add_subcommand("restore", "rebuild a primary volume from a snapshot into a folder");
  std::string restore_target;
  bool restore_force = false;
  std::string restore_time;
  auto* restore_id =
      backup_restore_command->add_option("ID", backup_id, "snapshot id (with --pg-time: default the newest that fits)");
  backup_restore_command->add_option("--to", restore_target, "folder to rebuild the primary volume in")->required();
  backup_restore_command->add_flag("--force", restore_force, "write into a folder that is not empty");
  auto* restore_time_option = backup_restore_command->add_option(
      "--pg-time", restore_time,
      "replay the WAL archive to this moment, \"YYYY-MM-DD HH:MM:SS\" local time or with a zone (point-in-time "
      "recovery of the database cluster)");
  backup_restore_command->callback([restore_id, restore_time_option] {
    if (restore_id->count() == 0 && restore_time_option->count() == 0) throw CLI::RequiredError("ID (or --pg-time)");
  });
  bool prune_dry_run = false;
  auto* backup_adopt_command = backup_command->add_subcommand(
      "adopt", "make this primary volume the owner of the backup volume (its WAL archive and snapshots), after "
               "losing the original a restored copy was made from");
  auto* backup_prune_command = backup_command->add_subcommand(
      "prune", "remove the snapshots retention (backup.keep_*) does not keep, and pool blobs none refers to");
  backup_prune_command->add_flag("--dry-run", prune_dry_run, "only print what would be removed");
  std::string drill_scratch;
  auto* backup_drill_command = backup_command->add_subcommand(
      "drill", "prove a snapshot (default: the newest) restores: a scratch restore with a throwaway PostgreSQL");
  backup_drill_command->add_option("ID", backup_id, "snapshot id (default: the newest)");
  backup_drill_command->add_option("--scratch", drill_scratch,
                                   "folder for the scratch copy (default: the backup volume)");
  auto* user_command =
      app.add_subcommand("user", "manage the users of the htpasswd file (auth.htpasswd) and their groups");
  user_command->require_subcommand(1);
  std::string user_name;
  std::vector<std::string> user_groups;
  bool password_stdin = false;
  auto* user_add_command =
      user_command->add_subcommand("add", "add a user; the password is asked for, never an argument");
  auto* user_passwd_command = user_command->add_subcommand("passwd", "set a new password for a user");
  auto* user_del_command = user_command->add_subcommand("del", "remove a user and their group memberships");
  auto* user_list_command = user_command->add_subcommand("list", "list the users and their groups");
  user_list_command->add_flag("--json", json_output, "a JSON array instead of the list");
  for (auto* command : {user_add_command, user_passwd_command, user_del_command})
    command->add_option("NAME", user_name, "user name")->required();
  user_add_command->add_option("--group", user_groups, "put the user in this group (repeatable)");
  for (auto* command : {user_add_command, user_passwd_command})
    command->add_flag("--password-stdin", password_stdin, "read the password as one line from stdin");

  auto* robot_command =
      app.add_subcommand("robot", "manage robot accounts for CI (auth.robots): tokens that expire, revoke and rotate");
  robot_command->require_subcommand(1);
  RobotAddOptions robot_options;
  std::string robot_expires;
  auto* robot_add_command = robot_command->add_subcommand(
      "add", "add a robot (login robot+NAME) and print its token, once: TOKEN=$(berth robot add NAME ...)");
  auto* robot_list_command = robot_command->add_subcommand("list", "list the robots, their state and last sign-in");
  robot_list_command->add_flag("--json", json_output, "a JSON array instead of the table");
  auto* robot_revoke_command =
      robot_command->add_subcommand("revoke", "stop a robot at once: no sign-in, its tokens refused");
  auto* robot_rotate_command =
      robot_command->add_subcommand("rotate", "give a robot a new token; the old one stops working at once");
  auto* robot_del_command = robot_command->add_subcommand("del", "remove a robot");
  for (auto* command : {robot_add_command, robot_revoke_command, robot_rotate_command, robot_del_command})
    command->add_option("NAME", robot_options.name, "robot name (it signs in as robot+NAME)")->required();
  robot_add_command->add_option("--group", robot_options.groups, "put the robot in this group (repeatable)");
  robot_add_command->add_option("--description", robot_options.description, "what the robot is for (one line)");
  auto const lifetime = CLI::Validator(
      [](std::string& text) {
        return parse_robot_lifetime(text) ? std::string()
                                          : "expected a duration like 90d, 12h or 4w (units s, m, h, d, w; "
                                            "at most 3650d), got \"" +
                                                text + "\"";
      },
      "DURATION");
  for (auto* command : {robot_add_command, robot_rotate_command})
    command
        ->add_option("--expires", robot_expires,
                     command == robot_add_command ? "the token expires after this long (default: never)"
                                                  : "a new expiry, this long from now (default: keep the old one)")
        ->check(lifetime);

  PromoteOptions promote_options;
  bool promote_history_wanted = false;
  auto* promote_command = app.add_subcommand(
      "promote", "copy an image byte for byte (same digest) to AWS ECR (--to ENV) or any registry (--to-registry URL)");
  promote_command->add_option("SOURCE", promote_options.source,
                              "REPOSITORY:TAG or REPOSITORY@DIGEST in the local registry");
  auto* promote_to = promote_command->add_option("--to", promote_options.environment,
                                                 "ECR target declared under promotion: targets: in the configuration");
  auto* promote_to_registry =
      promote_command->add_option("--to-registry", promote_options.registry,
                                  "any OCI registry: https://HOST[:PORT][/PREFIX] (the prefix goes before "
                                  "the repository name)");
  promote_to->excludes(promote_to_registry);
  promote_command
      ->add_option("--creds", promote_options.creds,
                   "USER:PASSWORD for --to-registry (keep passwords out of argv: use BERTH_PROMOTE_CREDS)")
      ->envname("BERTH_PROMOTE_CREDS");
  promote_command->add_option("--ca-file", promote_options.ca_file, "extra CA certificates (PEM) for --to-registry")
      ->check(CLI::ExistingFile);
  promote_command->add_option("--tag", promote_options.tags, "tag at the target (repeatable; default: the source tag)");
  promote_command->add_flag("--with-referrers", promote_options.with_referrers,
                            "also copy signatures, SBOMs and other referrers of the image");
  promote_command->add_flag("--dry-run", promote_options.dry_run, "check the target and list what would be sent");
  promote_command->add_option("--parallel", promote_options.parallel, "blobs uploaded at once (default 4)")
      ->check(CLI::Range(1, 32));
  promote_command->add_flag("--history", promote_history_wanted, "list every promotion from the audit log");
  promote_command->add_flag("--json", json_output, "with --history: a JSON array of the audit records");

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
    // A command prints its result once, on stdout; its info lines would say it all again on
    // stderr. Warnings and errors still show; --log-level info (or debug) shows the rest.
    if (!global.log_level.empty())
      set_log_level(global.log_level);
    else if (!serve_command->parsed())
      set_log_level("warn");

    if (check_command->parsed()) {
      auto config = load(global, check_file);
      std::cout << describe(config) << "configuration OK\n";
      return 0;
    }

    // APP on berth's cluster, or --url for any PostgreSQL.
    auto const run_db = [&](auto&& command, bool reopens = false) {
      auto const config = load(global);
      if (!db_app.empty())
        return run_on_application(config, db_app, db_target, db_needs_location, reopens,
                                  [&](DbTarget const& target) { return command(config, target); });
      // Usage errors, like CLI11's own: exit code 2.
      if (db_target.url.empty()) {
        std::cerr << "berth: name the database: berth db COMMAND APP (declared under databases:), or --url URL "
                     "(or BERTH_DB_URL) for any PostgreSQL\n";
        return 2;
      }
      if (db_needs_location && db_target.location.empty()) {
        std::cerr << "berth: --location is required with --url\n";
        return 2;
      }
      return command(config, db_target);
    };
    if (db_commands[0]->parsed())
      return run_db([&](Config const& c, DbTarget const& t) { return db_migrate(c, t, std::cout); }, true);
    if (db_commands[1]->parsed())
      return run_db([&](Config const& c, DbTarget const& t) { return db_info(c, t, std::cout); });
    if (db_commands[2]->parsed())
      return run_db([&](Config const& c, DbTarget const& t) { return db_validate(c, t, std::cout); });
    if (create_command->parsed()) return db_create(load(global), create_options, std::cout);
    if (list_command->parsed()) return db_list(load(global), json_output, std::cout);
    if (url_command->parsed()) return db_url(load(global), url_name, std::cout);
    if (status_command->parsed()) return status(load(global), std::cout);
    if (doctor_command->parsed()) return doctor([&] { return load(global); }, doctor_json, std::cout);
    if (archive_command->parsed()) return archive_wal(archive_dir, archive_state, wal_path, wal_name);
    if (db_baseline_command->parsed())
      return run_db([&](Config const& c, DbTarget const& t) { return db_baseline(c, t, baseline_options, std::cout); });
    if (db_repair_command->parsed())
      return run_db([&](Config const& c, DbTarget const& t) { return db_repair(c, t, std::cout); });
    if (db_clean_command->parsed())
      return run_db([&](Config const& c, DbTarget const& t) { return db_clean(c, t, allow_clean, std::cout); });
    if (ls_command->parsed()) return registry_ls(load(global), ls_prefix, json_output, std::cout);
    if (fsck_command->parsed()) return registry_fsck(load(global), fsck_repair, std::cout);
    if (gc_command->parsed()) return registry_gc(load(global), gc_options, std::cout);
    if (retention_command->parsed()) return registry_retention(load(global), retention_options, std::cout);
    PasswordInput const password_input{password_stdin, &std::cin};
    if (user_add_command->parsed()) return user_add(load(global), user_name, user_groups, password_input, std::cout);
    if (user_passwd_command->parsed()) return user_passwd(load(global), user_name, password_input, std::cout);
    if (user_del_command->parsed()) return user_del(load(global), user_name, std::cout);
    if (user_list_command->parsed()) return user_list(load(global), json_output, std::cout);
    if (!robot_expires.empty()) robot_options.lifetime = parse_robot_lifetime(robot_expires);
    if (robot_add_command->parsed()) return robot_add(load(global), robot_options, std::cout, std::cerr);
    if (robot_list_command->parsed()) return robot_list(load(global), json_output, std::cout);
    if (robot_revoke_command->parsed()) return robot_revoke(load(global), robot_options.name, std::cout);
    if (robot_rotate_command->parsed())
      return robot_rotate(load(global), robot_options.name, robot_options.lifetime, std::cout, std::cerr);
    if (robot_del_command->parsed()) return robot_del(load(global), robot_options.name, std::cout);
    if (tls_ca_command->parsed()) return tls_ca(load(global), std::cout);
    if (tls_issue_command->parsed()) return tls_issue(load(global), std::cout);
    if (backup_run_command->parsed()) return backup_run(load(global), std::cout);
    if (backup_list_command->parsed()) return backup_list(load(global), json_output, std::cout);
    if (backup_verify_command->parsed()) return backup_verify(load(global), backup_id, backup_all, std::cout);
    if (backup_prune_command->parsed()) return backup_prune(load(global), prune_dry_run, std::cout);
    if (backup_drill_command->parsed()) return backup_drill(load(global), backup_id, drill_scratch, std::cout);
    if (backup_adopt_command->parsed()) {
      auto const config = load(global);
      act_as_owner_of(config.backup);
      return backup_adopt(config, std::cout);
    }
    if (backup_restore_command->parsed())
      return backup_restore(load(global), backup_id, restore_target, restore_force, restore_time, std::cout);

    if (promote_command->parsed()) {
      if (promote_history_wanted) return promote_history(load(global), json_output, std::cout);
      if (promote_options.source.empty() || (promote_options.environment.empty() && promote_options.registry.empty())) {
        std::cerr << "berth: promote needs SOURCE and a target: berth promote REPOSITORY:TAG --to ENV, or "
                     "--to-registry URL\n";
        return 2;
      }
      return promote(load(global), promote_options, std::cout);
    }

    if (serve_command->parsed()) {
      auto config = load(global);
      if (!listen.empty()) set_option(config, "server.listen", listen, "--listen");
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
