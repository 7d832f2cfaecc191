// The operator's certificate or berth's own CA, chosen from berth.yaml; and `berth tls ca`.
#include "tls_commands.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <system_error>

#include "berth/core/log.hpp"
#include "berth/proxy/tls_material.hpp"
#include "registry_commands.hpp"

namespace berth::appliance {
namespace {

namespace fs = std::filesystem;

// The machine's name when it can go into a certificate as a DNS name, else nothing.
std::string usable_host_name() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return {};
  std::string host(name.data());
  bool usable = !host.empty() && std::all_of(host.begin(), host.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.';
  });
  return usable ? host : std::string();
}

}  // namespace

std::vector<std::string> tls_hostnames(Config const& config) {
  if (!config.tls_hostnames.empty()) return config.tls_hostnames;
  std::vector<std::string> names;
  for (auto const& name : {usable_host_name(), std::string("localhost"), std::string("127.0.0.1"), std::string("::1")})
    if (!name.empty() && std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  return names;
}

namespace {

// What berth's own certificate is issued for: tls_hostnames(), then the hosts of routes:, whose
// apps are reached over the same listener.
std::vector<std::string> certificate_names(Config const& config) {
  auto names = tls_hostnames(config);
  for (auto const& route : config.server.routes)
    if (std::find(names.begin(), names.end(), route.host) == names.end()) names.push_back(route.host);
  return names;
}

std::string joined(std::vector<std::string> const& names, std::string const& separator) {
  std::string text;
  for (auto const& name : names) text += (text.empty() ? "" : separator) + name;
  return text;
}

void refuse_own_certificate(Config const& config) {
  if (!config.server.tls.cert_chain.empty())
    throw Error("berth serves your own certificate (server.tls.cert " + config.server.tls.cert_chain.string() +
                "), not one from its CA\nHINT: clients must trust the CA that issued that certificate");
}

}  // namespace

proxy::TlsConfig prepare_tls(Config const& config) {
  auto tls = config.server.tls;
  if (tls.cert_chain.empty() != tls.private_key.empty())
    throw Error(
        "server.tls.cert and server.tls.key must be set together\nHINT: name both the certificate chain "
        "and its private key, or neither to let berth's own CA issue a certificate");
  if (!tls.cert_chain.empty()) {
    logger("berth")->info("tls certificate={} key={}", tls.cert_chain.string(), tls.private_key.string());
    return tls;
  }
  auto const hostnames = certificate_names(config);
  auto material = proxy::ensure_local_tls(config.tls_dir, hostnames);
  logger("berth")->info(
      "tls certificate from berth's own CA dir={} hostnames={} (clients trust it after `berth tls ca`)",
      config.tls_dir.string(), joined(hostnames, ","));
  tls.cert_chain = material.server_cert;
  tls.private_key = material.server_key;
  return tls;
}

int tls_issue(Config const& config, std::ostream& out) {
  refuse_own_certificate(config);
  act_as_owner_of(config.tls_dir);
  auto tls = prepare_tls(config);
  out << "CA certificate:     " << (config.tls_dir / "ca.crt").string() << "\n"
      << "server certificate: " << tls.cert_chain.string() << " (for " << joined(certificate_names(config), ", ")
      << ")\n"
      << "server key:         " << tls.private_key.string() << "\n";
  if (!config.server.tls.enabled) out << "server.tls.enabled is false: berth serves plain HTTP until you turn it on\n";
  out << "clients must trust the CA: `berth tls ca` prints it and the commands for docker, podman and skopeo\n";
  return 0;
}

int tls_ca(Config const& config, std::ostream& out) {
  refuse_own_certificate(config);
  proxy::TlsMaterial material{config.tls_dir / "ca.crt", config.tls_dir / "server.crt", config.tls_dir / "server.key"};
  std::error_code ec;
  if (!fs::exists(material.ca_cert, ec))
    throw Error("no CA certificate in " + config.tls_dir.string() +
                " yet\nHINT: berth creates its CA when `berth serve` first starts with server.tls.enabled: true");
  auto name = tls_hostnames(config).front();
  if (name.find(':') != std::string::npos) name = "[" + name + "]";  // an IPv6 literal
  auto host = name + ":" + std::to_string(config.server.port);
  out << proxy::trust_instructions(material, host);
  return 0;
}

}  // namespace berth::appliance
