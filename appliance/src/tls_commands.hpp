// TLS as berth.yaml configures it: the certificate `berth serve` presents, what `berth tls ca`
// prints and what `berth tls issue` makes. The TLS policy itself (versions, ciphers, ALPN) is the proxy module's.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "berth/appliance/config.hpp"
#include "berth/proxy/config.hpp"

namespace berth::appliance {

/// server.tls.hostnames, or when unset: this machine's host name, localhost, 127.0.0.1, ::1.
std::vector<std::string> tls_hostnames(Config const& config);

/// The certificate files to serve: server.tls.cert and server.tls.key when set, else those of
/// berth's own CA in server.tls.dir, created or renewed now (proxy::ensure_local_tls). Throws
/// berth::Error when only one of cert and key is set, or the local CA cannot be made or used.
/// Blocking file I/O: call at startup.
proxy::TlsConfig prepare_tls(Config const& config);

/// `berth tls ca`: the local CA certificate and how to make docker, podman, skopeo and the system
/// trust it, for the first of tls_hostnames() and server.listen's port. Returns the exit code;
/// throws berth::Error when berth serves the operator's own certificate or has no CA yet.
int tls_ca(Config const& config, std::ostream& out);

/// `berth tls issue`: creates berth's own CA and server certificate in server.tls.dir now, or
/// renews the certificate when it is due (as `berth serve` does at every start), and says what
/// is there. Run as root on a directory the service user owns, it works as that user. The
/// package's postinst runs it, so the CA exists before the first start. Returns the exit code;
/// throws berth::Error when berth serves the operator's own certificate or the CA is unusable.
int tls_issue(Config const& config, std::ostream& out);

}  // namespace berth::appliance
