// berth's own certificate authority and the server certificate it signs, for when the config
// names no certificate: ensure_local_tls() creates them on first start and renews the server
// certificate before it expires or when the hostnames change; trust_instructions() is what
// `berth tls ca` prints. Not for loading an operator's own certificate, and no TLS listener here.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace berth::proxy {

/// Where the PEM files of the local CA and the server certificate are.
struct TlsMaterial {
  std::filesystem::path ca_cert;      ///< ca.crt: what clients must trust
  std::filesystem::path server_cert;  ///< server.crt: the leaf only, signed by ca.crt
  std::filesystem::path server_key;   ///< server.key: unencrypted PKCS#8, mode 0600
};

/// Makes sure `dir` (created with mode 0700 if missing) holds a local CA (ca.key 0600, ca.crt;
/// P-256, valid 10 years, created once and then kept) and a server certificate for `hostnames`
/// (server.key 0600, server.crt; P-256, valid 397 days). IP literals (IPv4, IPv6) become IP
/// SANs, everything else DNS SANs; the first name also names the CA. The server certificate is
/// issued anew when it or its key is missing or unreadable, when it expires within 30 days of
/// `now`, when its SANs differ from `hostnames`, or when it does not verify against ca.crt at
/// `now`; otherwise nothing is written. Each file is replaced atomically (temp file, fsync,
/// rename), keys are created 0600. Returns the three paths.
/// Throws berth::Error naming the file when `hostnames` is empty or holds an invalid name, when
/// the CA is unreadable, corrupt, mismatched or expired (it is never replaced silently, since
/// clients trust it), and on I/O or OpenSSL failures. Blocking file I/O: call it at startup or
/// from a worker thread, not from an I/O thread; concurrent calls on one `dir` are not supported.
TlsMaterial ensure_local_tls(std::filesystem::path const& dir, std::vector<std::string> const& hostnames,
                             std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

/// The text `berth tls ca` prints: the CA certificate in PEM, then the commands that make docker
/// (/etc/docker/certs.d/HOST/ca.crt), podman and skopeo (/etc/containers/certs.d/HOST/ca.crt) and
/// the Debian/Ubuntu system store trust it. HOST is `registry_host` ("host" or "host:port"),
/// with a ":443" suffix dropped, since clients look up certs.d without the default port.
/// Throws berth::Error when the CA certificate cannot be read or `registry_host` is empty or
/// not usable as a directory name. Any thread.
std::string trust_instructions(TlsMaterial const& material, std::string const& registry_host);

}  // namespace berth::proxy
