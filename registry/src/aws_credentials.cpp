// The AWS credential chain: environment, shared credentials file, config file, credential_process.
// The INI dialect is the AWS CLI's: "[name]" sections ("[profile name]" in the config file),
// "key = value" lines, '#'/';' comment lines, indented lines are sub-settings (e.g. "s3 =" blocks)
// that the chain does not need. Values are taken verbatim (no inline comments), as botocore does.
#include "berth/registry/aws_credentials.hpp"

#include <unistd.h>

#include <utility>  // before Asio: see STYLE.md (awaitable.hpp misses it on Boost 1.74)

#include <boost/asio/io_context.hpp>
#include <boost/process/args.hpp>
#include <boost/process/async.hpp>
#include <boost/process/child.hpp>
#include <boost/process/io.hpp>
#include <boost/process/search_path.hpp>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

extern char** environ;

namespace berth::registry::aws {
namespace {

namespace fs = std::filesystem;

struct Value {
  std::string text;
  int line = 0;
};

struct Section {
  int line = 0;
  std::map<std::string, Value> values;

  Value const* find(std::string const& key) const {
    auto const it = values.find(key);
    return it == values.end() ? nullptr : &it->second;
  }
};

struct IniFile {
  fs::path path;
  std::map<std::string, Section> sections;
};

std::string trim(std::string_view text) {
  auto const first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  auto const last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

std::string location(fs::path const& path, int line) {
  return path.string() + " line " + std::to_string(line);
}

// nullopt when the file does not exist: a missing ~/.aws/config is normal.
std::optional<IniFile> load_ini(fs::path const& path) {
  std::error_code ec;
  if (path.empty() || !fs::exists(path, ec)) return std::nullopt;
  std::ifstream in(path);
  if (!in) {
    throw CredentialsError("cannot read AWS file " + path.string() +
                           "\nHINT: check that the file is readable by the user berth runs as.");
  }
  IniFile file{path, {}};
  Section* current = nullptr;
  int line_number = 0;
  for (std::string raw; std::getline(in, raw);) {
    ++line_number;
    std::string const line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (raw[0] == ' ' || raw[0] == '\t') {
      if (current == nullptr) {
        throw CredentialsError("cannot parse " + location(path, line_number) +
                               ": indented line outside a section\nHINT: start the file with a [section] line.");
      }
      continue;  // a sub-setting of the previous key
    }
    if (line[0] == '[') {
      if (line.back() != ']' || trim(line.substr(1, line.size() - 2)).empty()) {
        throw CredentialsError("cannot parse " + location(path, line_number) +
                               ": expected a section header like [default]\nHINT: fix or remove that line.");
      }
      current = &file.sections[trim(line.substr(1, line.size() - 2))];
      if (current->line == 0) current->line = line_number;
      continue;
    }
    auto const eq = line.find('=');
    if (eq == std::string::npos || trim(line.substr(0, eq)).empty()) {
      throw CredentialsError("cannot parse " + location(path, line_number) +
                             ": expected 'key = value'\nHINT: fix or remove that line.");
    }
    if (current == nullptr) {
      throw CredentialsError("cannot parse " + location(path, line_number) +
                             ": setting outside a section\nHINT: put it under a [profile] section.");
    }
    current->values[trim(line.substr(0, eq))] = {trim(line.substr(eq + 1)), line_number};
  }
  return file;
}

std::string variable(Environment const& environment, std::string const& name) {
  auto const it = environment.variables.find(name);
  return it == environment.variables.end() ? std::string() : it->second;
}

fs::path file_path(Environment const& environment, std::string const& override_variable, char const* default_name) {
  std::string const override_path = variable(environment, override_variable);
  if (!override_path.empty()) {
    if (override_path.starts_with("~/") && !environment.home.empty()) {
      return environment.home / override_path.substr(2);
    }
    return override_path;
  }
  if (environment.home.empty()) return {};
  return environment.home / ".aws" / default_name;
}

std::string profile_name(Environment const& environment) {
  std::string const name = variable(environment, "AWS_PROFILE");
  return name.empty() ? "default" : name;
}

// In the config file a profile is "[profile name]"; "default" may also be plain "[default]".
Section const* config_section(IniFile const& config, std::string const& profile) {
  for (auto const& [name, section] : config.sections) {
    if (name.starts_with("profile ") && trim(name.substr(8)) == profile) return &section;
  }
  if (profile == "default") {
    auto const it = config.sections.find("default");
    if (it != config.sections.end()) return &it->second;
  }
  return nullptr;
}

// Static keys of one section, or nullopt when it has none. Both keys or neither.
std::optional<sigv4::Credentials> static_keys(Section const& section, fs::path const& path,
                                              std::string const& profile) {
  Value const* key_id = section.find("aws_access_key_id");
  Value const* secret = section.find("aws_secret_access_key");
  if (key_id == nullptr && secret == nullptr) return std::nullopt;
  if (key_id == nullptr || secret == nullptr || key_id->text.empty() || secret->text.empty()) {
    throw CredentialsError("AWS profile '" + profile + "' in " + location(path, section.line) +
                           " has only one of aws_access_key_id and aws_secret_access_key"
                           "\nHINT: set both keys in that profile, or remove both.");
  }
  Value const* token = section.find("aws_session_token");
  return sigv4::Credentials{key_id->text, secret->text, token == nullptr ? std::string() : token->text};
}

std::chrono::system_clock::time_point parse_rfc3339(std::string const& text, std::string const& what) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    throw CredentialsError(what + ": Expiration '" + text + "' is not an RFC 3339 time" +
                           "\nHINT: the program must print e.g. \"Expiration\": \"2026-11-27T17:00:00Z\".");
  }
  std::string_view rest = std::string_view(text).substr(static_cast<std::size_t>(consumed));
  if (!rest.empty() && rest[0] == '.') {
    std::size_t digits = 1;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
    rest.remove_prefix(digits);
  }
  long offset_seconds = 0;
  if (rest == "Z" || rest == "z") {
    offset_seconds = 0;
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int const hours = std::atoi(std::string(rest.substr(1, 2)).c_str());
    int const minutes = std::atoi(std::string(rest.substr(4, 2)).c_str());
    offset_seconds = (rest[0] == '+' ? 1 : -1) * (hours * 3600L + minutes * 60L);
  } else {
    throw CredentialsError(what + ": Expiration '" + text + "' has no time zone (Z or +HH:MM)" +
                           "\nHINT: the program must print e.g. \"Expiration\": \"2026-11-27T17:00:00Z\".");
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&tm) - offset_seconds);
}

ResolvedCredentials run_credential_process(std::string const& command, std::string const& source,
                                           std::chrono::seconds timeout) {
  namespace bp = boost::process;
  std::string const what = "credential_process of " + source;
  std::vector<std::string> args = split_command_line(command);
  if (args.empty()) {
    throw CredentialsError(what + " is empty\nHINT: set credential_process to a program and its arguments.");
  }
  std::string program = args.front();
  args.erase(args.begin());
  if (program.find('/') == std::string::npos) {
    auto const found = bp::search_path(program);
    if (found.empty()) {
      throw CredentialsError(what + ": program '" + program + "' not found in PATH" +
                             "\nHINT: install it or give its absolute path in credential_process.");
    }
    program = found.string();
  }

  boost::asio::io_context io;
  std::future<std::string> output;
  std::future<std::string> errors;
  int exit_code = -1;
  try {
    bp::child child(program, bp::args(args), bp::std_in.close(), bp::std_out > output, bp::std_err > errors, io);
    io.run_for(timeout);
    if (!io.stopped()) {
      child.terminate();  // SIGKILL: a hung helper must not block promotion forever
      child.wait();
      throw CredentialsError(what + ": '" + program + "' did not finish within " + std::to_string(timeout.count()) +
                             " seconds\nHINT: run the command by hand to see where it hangs.");
    }
    child.wait();
    exit_code = child.exit_code();
  } catch (bp::process_error const& error) {
    throw CredentialsError(what + ": cannot run '" + program + "': " + error.what() +
                           "\nHINT: check that the program exists and is executable.");
  }
  if (exit_code != 0) {
    std::string stderr_text = trim(errors.get());
    if (stderr_text.size() > 2000) stderr_text = stderr_text.substr(0, 2000) + "...";
    throw CredentialsError(what + ": '" + program + "' exited with code " + std::to_string(exit_code) +
                           (stderr_text.empty() ? std::string() : ": " + stderr_text) +
                           "\nHINT: run the command by hand to see why it fails.");
  }
  ResolvedCredentials result = parse_process_output(output.get(), what);
  result.source = what;
  return result;
}

}  // namespace

Environment Environment::current() {
  Environment environment;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view const text(*entry);
    auto const eq = text.find('=');
    if (eq != std::string_view::npos) environment.variables.emplace(text.substr(0, eq), text.substr(eq + 1));
  }
  environment.home = variable(environment, "HOME");
  return environment;
}

std::vector<std::string> split_command_line(std::string const& command) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < command.size(); ++i) {
    char const c = command[i];
    if (quote == '\'') {
      if (c == '\'')
        quote = 0;
      else
        word.push_back(c);
    } else if (quote == '"') {
      if (c == '"')
        quote = 0;
      else if (c == '\\' && i + 1 < command.size() &&
               std::string_view("\"\\$`").find(command[i + 1]) != std::string_view::npos)
        word.push_back(command[++i]);
      else
        word.push_back(c);
    } else if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      in_word = true;
      if (c == '\'' || c == '"')
        quote = c;
      else if (c == '\\' && i + 1 < command.size())
        word.push_back(command[++i]);
      else
        word.push_back(c);
    }
  }
  if (quote != 0) {
    throw CredentialsError(std::string("cannot parse credential_process: unterminated ") + quote +
                           " quote\nHINT: close the quote in the config file.");
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

ResolvedCredentials parse_process_output(std::string const& output, std::string const& command_for_errors) {
  std::string const& what = command_for_errors;
  std::string const hint =
      "\nHINT: the program must print JSON like {\"Version\": 1, \"AccessKeyId\": ..., \"SecretAccessKey\": ...}.";
  auto const json = nlohmann::json::parse(output, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    throw CredentialsError(what + ": output is not a JSON object" + hint);
  }
  auto const version = json.find("Version");
  if (version == json.end() || !version->is_number_integer() || version->get<int>() != 1) {
    throw CredentialsError(what + ": output has no \"Version\": 1" + hint);
  }
  auto string_field = [&](char const* name, bool required) -> std::string {
    auto const it = json.find(name);
    if (it == json.end() || it->is_null()) {
      if (required) throw CredentialsError(what + ": output has no \"" + name + "\"" + hint);
      return {};
    }
    if (!it->is_string() || (required && it->get<std::string>().empty())) {
      throw CredentialsError(what + ": \"" + name + "\" in the output is not a non-empty string" + hint);
    }
    return it->get<std::string>();
  };
  ResolvedCredentials result;
  result.credentials.access_key_id = string_field("AccessKeyId", true);
  result.credentials.secret_access_key = string_field("SecretAccessKey", true);
  result.credentials.session_token = string_field("SessionToken", false);
  std::string const expiration = string_field("Expiration", false);
  if (!expiration.empty()) result.expiration = parse_rfc3339(expiration, what);
  result.source = what;
  return result;
}

ResolvedCredentials resolve_credentials(Environment const& environment, std::chrono::seconds process_timeout) {
  std::string const key_id = variable(environment, "AWS_ACCESS_KEY_ID");
  std::string const secret = variable(environment, "AWS_SECRET_ACCESS_KEY");
  if (!key_id.empty() && !secret.empty()) {
    return {{key_id, secret, variable(environment, "AWS_SESSION_TOKEN")}, std::nullopt, "environment"};
  }
  if (!key_id.empty() || !secret.empty()) {
    throw CredentialsError(std::string("AWS credentials in the environment are incomplete: ") +
                           (key_id.empty() ? "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"
                                           : "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not") +
                           "\nHINT: set both variables, or neither to use a profile.");
  }

  std::string const profile = profile_name(environment);
  fs::path const credentials_path = file_path(environment, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
  fs::path const config_path = file_path(environment, "AWS_CONFIG_FILE", "config");

  bool profile_found = false;
  if (auto const file = load_ini(credentials_path)) {
    auto const it = file->sections.find(profile);
    if (it != file->sections.end()) {
      profile_found = true;
      if (auto keys = static_keys(it->second, file->path, profile)) {
        return {std::move(*keys), std::nullopt, "profile '" + profile + "' in " + file->path.string()};
      }
    }
  }
  if (auto const file = load_ini(config_path)) {
    if (Section const* section = config_section(*file, profile)) {
      profile_found = true;
      std::string const source = "profile '" + profile + "' in " + file->path.string();
      if (auto keys = static_keys(*section, file->path, profile)) return {std::move(*keys), std::nullopt, source};
      if (Value const* role = section->find("role_arn")) {
        throw CredentialsError("AWS " + source + " line " + std::to_string(role->line) +
                               " uses role_arn (AssumeRole through STS), which berth does not support yet" +
                               "\nHINT: use static keys or credential_process (for example IAM Roles Anywhere's "
                               "aws_signing_helper) in that profile.");
      }
      if (Value const* process = section->find("credential_process")) {
        return run_credential_process(process->text, source + " line " + std::to_string(process->line),
                                      process_timeout);
      }
      if (section->find("sso_session") != nullptr || section->find("sso_start_url") != nullptr) {
        throw CredentialsError("AWS " + source + " uses IAM Identity Center (sso_*), which berth does not support" +
                               "\nHINT: use static keys or credential_process in that profile.");
      }
    }
  }

  std::string const files = (credentials_path.empty() ? "~/.aws/credentials (no HOME)" : credentials_path.string()) +
                            " and " + (config_path.empty() ? "~/.aws/config (no HOME)" : config_path.string());
  if (profile_found) {
    throw CredentialsError("AWS profile '" + profile + "' has no credentials in " + files +
                           "\nHINT: add aws_access_key_id and aws_secret_access_key, or credential_process.");
  }
  throw CredentialsError("no AWS credentials found: AWS_ACCESS_KEY_ID is not set and profile '" + profile +
                         "' is not in " + files +
                         "\nHINT: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or create the profile "
                         "(AWS_PROFILE selects one).");
}

std::optional<std::string> resolve_region(Environment const& environment) {
  for (char const* name : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    std::string const value = variable(environment, name);
    if (!value.empty()) return value;
  }
  if (auto const file = load_ini(file_path(environment, "AWS_CONFIG_FILE", "config"))) {
    if (Section const* section = config_section(*file, profile_name(environment))) {
      if (Value const* region = section->find("region"); region != nullptr && !region->text.empty()) {
        return region->text;
      }
    }
  }
  return std::nullopt;
}

}  // namespace berth::registry::aws
