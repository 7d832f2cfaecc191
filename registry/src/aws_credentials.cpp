// The AWS credential chain: environment, shared credentials file, config file, credential_process,
// and AssumeRole through STS for role profiles (chained through source_profile like the AWS CLI).
// The chain is read into a CredentialPlan first (pure: files and variables only), then carried
// out (processes, HTTPS), so the configuration rules are testable without a network.
// The INI dialect is the AWS CLI's: "[name]" sections ("[profile name]" in the config file),
// "key = value" lines, '#'/';' comment lines, indented lines are sub-settings (e.g. "s3 =" blocks)
// that the chain does not need. Values are taken verbatim (no inline comments), as botocore does.
#include "berth/registry/aws_credentials.hpp"

#include <unistd.h>

#include <utility>  // before Asio: see STYLE.md (awaitable.hpp misses it on Boost 1.74)

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/process/args.hpp>
#include <boost/process/async.hpp>
#include <boost/process/child.hpp>
#include <boost/process/io.hpp>
#include <boost/process/search_path.hpp>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "berth/core/log.hpp"
#include "berth/registry/http_client.hpp"

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

std::chrono::system_clock::time_point parse_expiration(std::string const& text, std::string const& what) {
  auto const time = parse_rfc3339(text);
  if (!time) {
    throw CredentialsError(what + ": Expiration '" + text + "' is not an RFC 3339 time with a time zone" +
                           "\nHINT: the program must print e.g. \"Expiration\": \"2026-11-27T17:00:00Z\".");
  }
  return *time;
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

// Both files of the chain, each loaded once; a missing file is an absent optional.
struct AwsFiles {
  fs::path credentials_path;
  fs::path config_path;
  std::optional<IniFile> credentials;
  std::optional<IniFile> config;

  std::string names() const {
    return (credentials_path.empty() ? "~/.aws/credentials (no HOME)" : credentials_path.string()) + " and " +
           (config_path.empty() ? "~/.aws/config (no HOME)" : config_path.string());
  }
};

struct Setting {
  Value const* value = nullptr;
  fs::path const* path = nullptr;
  std::string const& text() const { return value->text; }
};

// One profile as botocore sees it: the config file's section with the credentials file's
// section laid over it (its values win).
struct Profile {
  std::string name;
  Section const* credentials = nullptr;
  Section const* config = nullptr;
  AwsFiles const* files = nullptr;

  bool exists() const { return credentials != nullptr || config != nullptr; }

  std::optional<Setting> find(std::string const& key) const {
    if (credentials != nullptr)
      if (Value const* value = credentials->find(key)) return Setting{value, &files->credentials_path};
    if (config != nullptr)
      if (Value const* value = config->find(key)) return Setting{value, &files->config_path};
    return std::nullopt;
  }

  std::string where(Setting const& setting) const {
    return "profile '" + name + "' in " + location(*setting.path, setting.value->line);
  }

  // Static keys, from the credentials file when it has any for this profile, else the config.
  std::optional<std::pair<sigv4::Credentials, std::string>> keys() const {
    if (credentials != nullptr)
      if (auto found = static_keys(*credentials, files->credentials_path, name))
        return std::pair{std::move(*found), "profile '" + name + "' in " + files->credentials_path.string()};
    if (config != nullptr)
      if (auto found = static_keys(*config, files->config_path, name))
        return std::pair{std::move(*found), "profile '" + name + "' in " + files->config_path.string()};
    return std::nullopt;
  }
};

Profile find_profile(AwsFiles const& files, std::string const& name) {
  Profile profile{name, nullptr, nullptr, &files};
  if (files.credentials) {
    auto const it = files.credentials->sections.find(name);
    if (it != files.credentials->sections.end()) profile.credentials = &it->second;
  }
  if (files.config) profile.config = config_section(*files.config, name);
  return profile;
}

bool is_session_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("_+=,.@-").find(c) != std::string_view::npos;
}

// Walks a profile and, for role profiles, their sources, collecting the AssumeRole steps.
class Planner {
public:
  Planner(Environment const& environment, AwsFiles const& files, CredentialPlan& plan)
      : environment_(environment), files_(files), plan_(plan) {}

  // `referenced_by`: empty for the profile the user selected, else where source_profile named it.
  void plan_profile(Profile const& profile, std::string const& referenced_by) {
    chain_.push_back(profile.name);
    auto const role = profile.find("role_arn");
    auto keys = profile.keys();
    // The selected profile assumes its role even when it has keys (they may be its own source);
    // a source profile with keys is used as it is, as the CLI does.
    if (role && (referenced_by.empty() || !keys)) return plan_role(profile, *role, keys);
    if (keys) {
      plan_.base = CredentialPlan::Base::static_keys;
      plan_.keys = std::move(keys->first);
      plan_.source = std::move(keys->second);
      return;
    }
    if (auto const process = profile.find("credential_process")) {
      plan_.base = CredentialPlan::Base::process;
      plan_.process_command = process->text();
      plan_.source = profile.where(*process);
      return;
    }
    if (profile.find("sso_session") || profile.find("sso_start_url")) {
      throw CredentialsError("AWS profile '" + profile.name +
                             "' uses IAM Identity Center (sso_*), which berth does not support" +
                             "\nHINT: use static keys, credential_process or role_arn in that profile.");
    }
    if (referenced_by.empty()) {
      throw CredentialsError("AWS profile '" + profile.name + "' has no credentials in " + files_.names() +
                             "\nHINT: add aws_access_key_id and aws_secret_access_key, credential_process or "
                             "role_arn with source_profile.");
    }
    throw CredentialsError("AWS profile '" + profile.name + "' (the source_profile of " + referenced_by +
                           ") has no credentials in " + files_.names() +
                           "\nHINT: add aws_access_key_id and aws_secret_access_key, credential_process or role_arn "
                           "to profile '" +
                           profile.name + "'.");
  }

private:
  [[noreturn]] static void bad_setting(Profile const& profile, Setting const& setting, std::string const& what,
                                       std::string const& hint) {
    throw CredentialsError("AWS " + profile.where(setting) + ": " + what + "\nHINT: " + hint);
  }

  void plan_role(Profile const& profile, Setting const& role,
                 std::optional<std::pair<sigv4::Credentials, std::string>> const& own_keys) {
    std::string const where = profile.where(role);
    if (auto const mfa = profile.find("mfa_serial")) {
      bad_setting(profile, *mfa,
                  "mfa_serial asks for an MFA code at every AssumeRole, and berth runs without anyone to type it",
                  "use a role whose trust policy does not require MFA for this automation, or assume the role "
                  "yourself (aws sts assume-role --serial-number ... --token-code ...) and pass the temporary keys "
                  "in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.");
    }
    RoleStep step{profile.name, where, {}};
    step.parameters.role_arn = role.text();
    if (!step.parameters.role_arn.starts_with("arn:") || step.parameters.role_arn.find(":role/") == std::string::npos)
      bad_setting(profile, role, "role_arn '" + role.text() + "' is not a role ARN",
                  "use the role's ARN, e.g. arn:aws:iam::123456789012:role/promote.");

    if (auto const name = profile.find("role_session_name")) {
      auto const& text = name->text();
      if (text.size() < 2 || text.size() > 64 || !std::all_of(text.begin(), text.end(), is_session_name_char))
        bad_setting(profile, *name,
                    "role_session_name '" + text + "' is not 2 to 64 of the characters A-Z a-z 0-9 _+=,.@-",
                    "choose a name such as berth-promote.");
      step.parameters.session_name = text;
    } else {
      step.parameters.session_name = "berth-promote-" + std::to_string(std::time(nullptr));
    }

    if (auto const external = profile.find("external_id")) {
      auto const& text = external->text();
      if (text.size() < 2 || text.size() > 1224 || !std::all_of(text.begin(), text.end(), [](char c) {
            return is_session_name_char(c) || c == ':' || c == '/';
          }))
        bad_setting(profile, *external, "external_id is not 2 to 1224 of the characters A-Z a-z 0-9 _+=,.@:/-",
                    "copy the external ID exactly as the role's trust policy has it.");
      step.parameters.external_id = text;
    }

    if (auto const duration = profile.find("duration_seconds")) {
      auto const& text = duration->text();
      bool const digits = !text.empty() && text.size() <= 6 &&
                          std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
      int const seconds = digits ? std::stoi(text) : 0;
      if (seconds < 900 || seconds > 43200)
        bad_setting(profile, *duration, "duration_seconds '" + text + "' is not a number from 900 to 43200",
                    "give the session length in seconds, at most the role's maximum session duration (3600 when "
                    "the source is itself a role).");
      step.parameters.duration_seconds = seconds;
    }

    auto const source_profile = profile.find("source_profile");
    auto const credential_source = profile.find("credential_source");
    if (source_profile && credential_source) {
      bad_setting(
          profile, *credential_source,
          "has both source_profile (line " + std::to_string(source_profile->value->line) + ") and credential_source",
          "keep one of them: source_profile names the profile whose credentials assume the role.");
    }
    if (!source_profile && !credential_source) {
      bad_setting(profile, role, "role_arn needs source_profile or credential_source",
                  "add source_profile = PROFILE (a profile with keys, credential_process or another role), or "
                  "credential_source = Environment.");
    }
    if (credential_source) {
      plan_environment_source(profile, *credential_source);
    } else {
      std::string const& source_name = source_profile->text();
      std::string const referenced_by = profile.where(*source_profile);
      if (std::find(chain_.begin(), chain_.end(), source_name) != chain_.end()) {
        if (source_name == profile.name && own_keys) {
          // A role profile whose own keys assume its role (source_profile = itself).
          plan_.base = CredentialPlan::Base::static_keys;
          plan_.keys = own_keys->first;
          plan_.source = own_keys->second;
        } else {
          std::string loop;
          for (auto const& name : chain_) loop += name + " -> ";
          throw CredentialsError("AWS profiles form a loop through source_profile: " + loop + source_name + " (at " +
                                 referenced_by +
                                 ")\nHINT: end the chain at a profile with static keys or credential_process.");
        }
      } else {
        auto const source = find_profile(files_, source_name);
        if (!source.exists()) {
          bad_setting(profile, *source_profile,
                      "source_profile '" + source_name + "' is not a profile in " + files_.names(),
                      "create profile '" + source_name + "' or correct the name.");
        }
        plan_profile(source, referenced_by);
      }
    }
    plan_.roles.push_back(std::move(step));
  }

  void plan_environment_source(Profile const& profile, Setting const& credential_source) {
    auto const& kind = credential_source.text();
    if (kind == "Ec2InstanceMetadata" || kind == "EcsContainer") {
      bad_setting(profile, credential_source,
                  "credential_source = " + kind + " needs the " +
                      (kind == "EcsContainer" ? "ECS container" : "EC2 instance") +
                      " metadata service, which an on-prem server does not have",
                  "use credential_source = Environment or source_profile.");
    }
    if (kind != "Environment") {
      bad_setting(profile, credential_source, "unknown credential_source '" + kind + "'",
                  "berth supports credential_source = Environment (or use source_profile).");
    }
    std::string const key_id = variable(environment_, "AWS_ACCESS_KEY_ID");
    std::string const secret = variable(environment_, "AWS_SECRET_ACCESS_KEY");
    if (key_id.empty() || secret.empty()) {
      bad_setting(profile, credential_source,
                  "credential_source = Environment, but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set",
                  "export both variables (and AWS_SESSION_TOKEN for temporary keys) before running berth.");
    }
    plan_.base = CredentialPlan::Base::environment;
    plan_.keys = {key_id, secret, variable(environment_, "AWS_SESSION_TOKEN")};
    plan_.source = "environment";
  }

  Environment const& environment_;
  AwsFiles const& files_;
  CredentialPlan& plan_;
  std::vector<std::string> chain_;  // profiles visited, to detect source_profile loops
};

// The STS endpoint: AWS_ENDPOINT_URL_STS, else the regional (or legacy global) AWS one.
sts::Endpoint sts_endpoint(Environment const& environment, Profile const& selected, ResolveOptions const& options) {
  std::optional<std::string> region;
  for (char const* name : {"AWS_REGION", "AWS_DEFAULT_REGION"})
    if (!region && !variable(environment, name).empty()) region = variable(environment, name);
  if (!region)
    if (auto const configured = selected.find("region"); configured && !configured->text().empty())
      region = configured->text();
  if (!region) region = options.default_region;

  std::string const override_url = variable(environment, "AWS_ENDPOINT_URL_STS");
  if (!override_url.empty()) {
    if (!override_url.starts_with("https://")) {
      throw CredentialsError("AWS_ENDPOINT_URL_STS '" + override_url +
                             "' is not an https:// URL\nHINT: STS answers with secret keys: use https.");
    }
    try {
      http::Url::parse(override_url);
    } catch (Error const& error) {
      throw CredentialsError("AWS_ENDPOINT_URL_STS '" + override_url + "' is not a URL: " + error.what());
    }
    return {override_url, region.value_or("us-east-1")};
  }

  bool regional = true;
  std::string mode = variable(environment, "AWS_STS_REGIONAL_ENDPOINTS");
  std::string mode_where = "AWS_STS_REGIONAL_ENDPOINTS";
  if (mode.empty()) {
    if (auto const configured = selected.find("sts_regional_endpoints")) {
      mode = configured->text();
      mode_where = selected.where(*configured);
    }
  }
  if (mode == "legacy") {
    regional = false;
  } else if (!mode.empty() && mode != "regional") {
    throw CredentialsError("AWS " + mode_where + ": sts_regional_endpoints '" + mode +
                           "' is neither regional nor legacy\nHINT: use regional (the default) or legacy.");
  }
  try {
    return sts::default_endpoint(region, regional);
  } catch (Error const& error) {
    throw CredentialsError(error.what());
  }
}

// "...WXYZ": enough to tell keys apart in a message, as `aws configure list` shows them.
std::string key_hint(std::string const& access_key_id) {
  return access_key_id.size() > 4 ? "..." + access_key_id.substr(access_key_id.size() - 4) : access_key_id;
}

std::string sts_hint(std::string const& code, std::string const& message, RoleStep const& step,
                     ResolvedCredentials const& source, std::string const& signing_region) {
  if (code == "AccessDenied")
    return "the role's trust policy must allow sts:AssumeRole for that identity (and its own policy must allow "
           "it on the role); check role_arn and, if the trust policy asks for one, external_id in profile '" +
           step.profile + "'.";
  if (code == "ExpiredToken")
    return "the source credentials from " + source.source +
           " have expired; renew them (a new session token, or check credential_process) and run the command "
           "again.";
  if (code == "InvalidClientTokenId")
    return "AWS does not know the access key (or session token) from " + source.source + "; check it.";
  if (code == "SignatureDoesNotMatch" && message.find("xpired") != std::string::npos)
    return "this machine's clock is off by more than a few minutes; sync it (timedatectl set-ntp true).";
  if (code == "SignatureDoesNotMatch") return "the secret access key from " + source.source + " is wrong.";
  if (code == "RegionDisabledException")
    return "activate STS in region " + signing_region +
           " (IAM, account settings), or set region or sts_regional_endpoints = legacy in the profile.";
  if (code == "ValidationError" && message.find("Duration") != std::string::npos)
    return "lower duration_seconds in profile '" + step.profile +
           "' to the role's maximum session duration (at most 3600 when a role assumes another role).";
  if (code == "ValidationError")
    return "check role_arn, role_session_name and external_id in profile '" + step.profile + "'.";
  if (code.empty()) return "check that the STS endpoint (AWS_ENDPOINT_URL_STS, if set) is AWS STS and reachable.";
  return "check profile '" + step.profile + "' and the source credentials from " + source.source + ".";
}

bool transient_sts_failure(int status, std::string const& code) {
  return status >= 500 || status == 429 || code == "Throttling" || code == "ThrottlingException" ||
         code == "RequestLimitExceeded" || code == "IDPCommunicationError";
}

ResolvedCredentials assume_role(http::Client& client, sts::Endpoint const& endpoint, RoleStep const& step,
                                ResolvedCredentials const& source) {
  constexpr int attempts = 4;
  std::string const what =
      "cannot assume role " + step.parameters.role_arn + " (" + step.location + ") at " + endpoint.url;
  std::minstd_rand jitter(std::random_device{}());
  for (int attempt = 1;; ++attempt) {
    auto const signed_request =
        sts::sign_assume_role(step.parameters, endpoint, source.credentials, std::chrono::system_clock::now());
    http::Request request{.method = "POST", .url = signed_request.url, .headers = {}, .body = signed_request.body};
    for (auto const& header : signed_request.headers)
      if (header.name != "Host") request.headers.emplace_back(header.name, header.value);
    auto const response = client.send(request);
    if (response.status == 200) {
      sts::AssumedRole role;
      try {
        role = sts::parse_assume_role_response(response.body);
      } catch (Error const& error) {
        throw CredentialsError(what + ": " + error.what());
      }
      logger("promote")->info(
          "aws role assumed role={} profile={} session={} expires_in={}s", step.parameters.role_arn, step.profile,
          step.parameters.session_name,
          std::chrono::duration_cast<std::chrono::seconds>(role.expiration - std::chrono::system_clock::now()).count());
      return {std::move(role.credentials), role.expiration,
              "role " + step.parameters.role_arn + " (" + step.location + ")"};
    }
    auto const error = sts::parse_error_response(response.body);
    if (transient_sts_failure(response.status, error.code) && attempt < attempts) {
      auto const backoff = std::chrono::milliseconds(200 << attempt);
      std::this_thread::sleep_for(backoff + std::chrono::milliseconds(jitter() % (100 << attempt)));
      continue;
    }
    throw CredentialsError(what + ": " + (error.code.empty() ? "HTTP " + std::to_string(response.status) : error.code) +
                           (error.message.empty() ? "" : " (" + error.message + ")") +
                           "\nthe request was signed with the credentials from " + source.source + " (access key " +
                           key_hint(source.credentials.access_key_id) +
                           ")\nHINT: " + sts_hint(error.code, error.message, step, source, endpoint.region));
  }
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

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  std::string const copy(text);
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(copy.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  std::string_view rest = text.substr(static_cast<std::size_t>(consumed));
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
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&tm) - offset_seconds);
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
  if (!expiration.empty()) result.expiration = parse_expiration(expiration, what);
  result.source = what;
  return result;
}

CredentialPlan plan_credentials(Environment const& environment, ResolveOptions const& options) {
  std::string const key_id = variable(environment, "AWS_ACCESS_KEY_ID");
  std::string const secret = variable(environment, "AWS_SECRET_ACCESS_KEY");
  if (key_id.empty() != secret.empty()) {
    throw CredentialsError(std::string("AWS credentials in the environment are incomplete: ") +
                           (key_id.empty() ? "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"
                                           : "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not") +
                           "\nHINT: set both variables, or neither to use a profile.");
  }
  bool const explicit_profile = !variable(environment, "AWS_PROFILE").empty();
  CredentialPlan plan;
  plan.base = CredentialPlan::Base::environment;
  plan.keys = {key_id, secret, variable(environment, "AWS_SESSION_TOKEN")};
  plan.source = "environment";
  // Keys in the environment win, as in the CLI, except over a role profile that AWS_PROFILE
  // names: that is the CLI's --profile, and credential_source = Environment needs it.
  if (!key_id.empty() && !explicit_profile) return plan;

  AwsFiles files;
  files.credentials_path = file_path(environment, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
  files.config_path = file_path(environment, "AWS_CONFIG_FILE", "config");
  files.credentials = load_ini(files.credentials_path);
  files.config = load_ini(files.config_path);
  auto const selected = find_profile(files, profile_name(environment));
  if (!key_id.empty() && !selected.find("role_arn")) return plan;

  if (!selected.exists()) {
    throw CredentialsError("no AWS credentials found: AWS_ACCESS_KEY_ID is not set and profile '" + selected.name +
                           "' is not in " + files.names() +
                           "\nHINT: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or create the profile "
                           "(AWS_PROFILE selects one).");
  }
  Planner(environment, files, plan).plan_profile(selected, "");
  if (!plan.roles.empty()) plan.sts_endpoint = sts_endpoint(environment, selected, options);
  return plan;
}

ResolvedCredentials resolve_credentials(Environment const& environment, ResolveOptions const& options) {
  auto const plan = plan_credentials(environment, options);
  ResolvedCredentials current;
  if (plan.base == CredentialPlan::Base::process) {
    current = run_credential_process(plan.process_command, plan.source, options.process_timeout);
  } else {
    current = {plan.keys, std::nullopt, plan.source};
  }
  if (plan.roles.empty()) return current;
  http::Client client({.extra_ca_file = options.extra_ca_file});
  for (auto const& step : plan.roles) current = assume_role(client, plan.sts_endpoint, step, current);
  return current;
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
