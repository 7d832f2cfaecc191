// `berth promote`: resolves the target (an ECR environment from the config, or a registry URL),
// runs the promotion, prints progress and a summary, and records it in the audit log.
#include "promote_commands.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "berth/core/human.hpp"
#include "berth/registry/aws_credentials.hpp"
#include "berth/registry/ecr_client.hpp"
#include "berth/registry/promote.hpp"

namespace berth::appliance {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Source {
  std::string repository;
  std::string reference;
  std::string text() const {
    return repository + (reference.starts_with("sha256:") || reference.starts_with("sha512:") ? "@" : ":") + reference;
  }
};

Source parse_source(std::string const& text) {
  auto const usage = [&] {
    return Error("cannot promote \"" + text +
                 "\": expected REPOSITORY:TAG or REPOSITORY@DIGEST\nHINT: e.g. berth promote api/orders:1.4 --to prod");
  };
  if (auto at = text.find('@'); at != std::string::npos) {
    if (at == 0 || !registry::Digest::parse(text.substr(at + 1))) throw usage();
    return {text.substr(0, at), text.substr(at + 1)};
  }
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size() ||
      text.find('/', colon) != std::string::npos)
    throw usage();
  return {text.substr(0, colon), text.substr(colon + 1)};
}

std::string os_user() {
  if (auto* entry = ::getpwuid(::geteuid()); entry != nullptr) return entry->pw_name;
  return std::to_string(::geteuid());
}

// One JSON line, appended and fsync'ed: the record survives a crash right after the promotion.
void append_audit(fs::path const& file, nlohmann::json const& record) {
  fs::create_directories(file.parent_path());
  auto const line = record.dump() + "\n";
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) throw Error("cannot open the promotion log " + file.string() + ": " + std::strerror(errno));
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  int const error = errno;
  ::close(fd);
  if (!ok) throw Error("cannot append to the promotion log " + file.string() + ": " + std::strerror(error));
}

std::string first_line(std::string const& text) {
  return text.substr(0, text.find('\n'));
}

std::string short_digest(registry::Digest const& digest) {
  return digest.to_string().substr(0, 19);
}

// "https://host:port/prefix" → origin and repository prefix ("prefix/").
std::pair<std::string, std::string> split_registry_url(std::string const& text) {
  auto with_scheme = text.find("://") == std::string::npos ? "https://" + text : text;
  auto url = registry::http::Url::parse(with_scheme);
  auto path = url.target.substr(0, url.target.find('?'));
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  while (!path.empty() && path.back() == '/') path.pop_back();
  return {url.origin(), path.empty() ? "" : path + "/"};
}

registry::PromotionTarget const& find_target(Config const& config, std::string const& name) {
  for (auto const& target : config.promotion_targets)
    if (target.name == name) return target;
  std::string known;
  for (auto const& target : config.promotion_targets) known += (known.empty() ? "" : ", ") + target.name;
  throw Error("no promotion target \"" + name + "\" in " +
              (config.source.empty() ? std::string("the configuration") : config.source.string()) +
              (known.empty() ? "" : " (targets: " + known + ")") + "\nHINT: add it under promotion: targets: " + name +
              ": {registry: ACCOUNT.dkr.ecr.REGION.amazonaws.com, region: REGION}");
}

}  // namespace

fs::path promotion_log_file(Config const& config) {
  return config.primary / "promotions" / "history.jsonl";
}

int promote(Config const& config, PromoteOptions const& options, std::ostream& out) {
  auto const source = parse_source(options.source);
  auto const started = Clock::now();
  nlohmann::json record = {{"time", utc_time(std::chrono::system_clock::now())}, {"user", os_user()}, {"source", source.text()}};

  std::string repository_prefix;
  std::unique_ptr<registry::ecr::Client> ecr;
  registry::RegistryTarget target;
  if (!options.environment.empty()) {
    auto const& configured = find_target(config, options.environment);
    registry::ecr::Target ecr_target{
        .registry_host = configured.registry,
        .region = configured.region,
        .api_endpoint = configured.api_endpoint,
        .ca_file = configured.ca_file.empty() ? std::nullopt : std::optional<fs::path>(configured.ca_file),
        .create_repository = configured.create_repository};
    // STS (role profiles) is asked in the target's region unless the AWS settings name one, and
    // trusts the target's extra CA too (stand-ins).
    ecr = std::make_unique<registry::ecr::Client>(ecr_target, [region = ecr_target.region, ca = ecr_target.ca_file] {
      return registry::aws::resolve_credentials(registry::aws::Environment::current(),
                                                {.default_region = region, .extra_ca_file = ca});
    });
    repository_prefix = configured.repository_prefix;
    target.url = ecr->registry_url();
    target.http = ecr->http_config();
    record["target"] = "ecr:" + options.environment + " " + target.url + "/" + repository_prefix + source.repository;
  } else {
    auto [origin, prefix] = split_registry_url(options.registry);
    target.url = origin;
    repository_prefix = prefix;
    if (!options.ca_file.empty()) target.http.extra_ca_file = options.ca_file;
    if (!options.creds.empty()) {
      auto colon = options.creds.find(':');
      if (colon == std::string::npos)
        throw Error("--creds: expected USER:PASSWORD\nHINT: or set BERTH_PROMOTE_CREDS=USER:PASSWORD");
      target.username = options.creds.substr(0, colon);
      target.password = options.creds.substr(colon + 1);
    }
    record["target"] = target.url + "/" + repository_prefix + source.repository;
  }
  auto const target_repository = repository_prefix + source.repository;

  bool const progress_on_tty = ::isatty(STDERR_FILENO) != 0;
  auto const progress = [&](registry::BlobProgress const& event) {
    if (!progress_on_tty) return;
    using Stage = registry::BlobProgress::Stage;
    if (event.stage == Stage::checking_done && event.present)
      std::cerr << "  exists    " << short_digest(event.digest) << "  " << human_size(event.size) << "\n";
    else if (event.stage == Stage::uploading)
      std::cerr << "  uploading " << short_digest(event.digest) << "  " << human_size(event.size) << "\n";
    else if (event.stage == Stage::uploaded)
      std::cerr << "  sent      " << short_digest(event.digest) << "  " << human_size(event.size) << "\n";
  };

  std::optional<registry::PromoteResult> promoted;
  try {
    if (ecr) {
      // The repository must exist before the push (ECR does not create it on push by default).
      if (!options.dry_run) ecr->ensure_repository(target_repository);
      auto token = ecr->authorization_token();
      target.username = token.username;
      target.password = token.password;
    }
    registry::Storage storage(config.registry);
    registry::RegistryClient client(target);
    registry::PromoteRequest request{.repository = source.repository,
                                     .reference = source.reference,
                                     .target_repository = target_repository,
                                     .tags = options.tags,
                                     .with_referrers = options.with_referrers,
                                     .dry_run = options.dry_run,
                                     .parallel = std::max(options.parallel, 1u)};
    promoted = registry::promote(storage, client, request, progress);
  } catch (std::exception const& error) {
    if (!options.dry_run) {
      record["result"] = "failed";
      record["error"] = first_line(error.what());
      record["seconds"] = std::chrono::duration<double>(Clock::now() - started).count();
      append_audit(promotion_log_file(config), record);
    }
    throw;
  }
  auto const& result = *promoted;
  auto const seconds = std::chrono::duration<double>(Clock::now() - started).count();
  record["digest"] = result.digest.to_string();
  record["tags"] = result.tags;
  record["bytes_sent"] = result.bytes_sent;
  record["blobs_sent"] = result.blobs_sent;
  record["blobs_present"] = result.blobs_present;
  record["manifests_sent"] = result.manifests_sent;
  record["seconds"] = seconds;
  record["result"] = options.dry_run ? "dry_run" : "ok";
  if (!options.dry_run) append_audit(promotion_log_file(config), record);

  if (options.dry_run) {
    nlohmann::json would = nlohmann::json::array();
    for (auto const& item : result.items)
      if (item.state == registry::ItemState::would_send)
        would.push_back(
            {{"digest", item.digest.to_string()}, {"size", item.size}, {"kind", item.manifest ? "manifest" : "blob"}});
    record["would_send"] = would;
  }
  if (::isatty(STDOUT_FILENO) == 0) {
    out << record.dump() << "\n";
    return 0;
  }
  if (options.dry_run) {
    out << "dry run: nothing sent. Would send to " << record["target"].get<std::string>() << ":\n";
    for (auto const& item : result.items)
      if (item.state == registry::ItemState::would_send)
        out << "  " << (item.manifest ? "manifest " : "blob     ") << item.digest.to_string() << "  "
            << human_size(item.size) << "\n";
    return 0;
  }
  std::string tags;
  for (auto const& tag : result.tags) tags += (tags.empty() ? "" : ", ") + tag;
  out << "promoted " << source.text() << " (" << result.digest.to_string() << ") to "
      << record["target"].get<std::string>() << (tags.empty() ? "" : " as " + tags) << ": " << result.blobs_sent
      << " blobs and " << result.manifests_sent << " manifests sent (" << human_size(result.bytes_sent) << "), "
      << result.blobs_present << " blobs already there, in " << std::fixed << std::setprecision(1) << seconds << "s\n";
  return 0;
}

int promote_history(Config const& config, bool json, std::ostream& out) {
  auto const file = promotion_log_file(config);
  std::ifstream in(file);
  if (json) {
    // The audit records as they were written (one JSON object a line), as one array.
    auto list = nlohmann::json::array();
    for (std::string line; in && std::getline(in, line);) {
      auto record = nlohmann::json::parse(line, nullptr, false);
      if (record.is_object()) list.push_back(std::move(record));  // a torn last line after a crash: skipped
    }
    out << list.dump(2) << "\n";
    return 0;
  }
  if (!in) {
    out << "no promotions yet (" << file.string() << ")\n";
    return 0;
  }
  char line_text[1024];
  std::snprintf(line_text, sizeof line_text, "%-20s  %-10s  %-30s  %-19s  %-8s  %10s  %s\n", "TIME", "USER", "SOURCE",
                "DIGEST", "RESULT", "SENT", "TARGET");
  out << line_text;
  for (std::string line; std::getline(in, line);) {
    auto record = nlohmann::json::parse(line, nullptr, false);
    if (!record.is_object()) continue;  // a torn last line after a crash: skip it
    auto const digest = record.value("digest", std::string("-"));
    std::string target = record.value("target", std::string());
    if (record.contains("tags") && record["tags"].is_array() && !record["tags"].empty()) {
      std::string tags;
      for (auto const& tag : record["tags"]) tags += (tags.empty() ? "" : ",") + tag.get<std::string>();
      target += " [" + tags + "]";
    }
    if (record.value("result", std::string()) == "failed") target += " — " + record.value("error", std::string());
    std::snprintf(line_text, sizeof line_text, "%-20s  %-10s  %-30s  %-19s  %-8s  %10s  ",
                  record.value("time", std::string()).c_str(), record.value("user", std::string()).c_str(),
                  record.value("source", std::string()).c_str(), digest.substr(0, 19).c_str(),
                  record.value("result", std::string()).c_str(),
                  human_size(record.value("bytes_sent", std::uint64_t{0})).c_str());
    out << line_text << target << "\n";
  }
  return 0;
}

}  // namespace berth::appliance
