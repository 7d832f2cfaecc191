// The local CA and server certificate, checked with the real openssl binary rather than with the
// library that made them, and the text `berth tls ca` prints.
#include "berth/proxy/tls_material.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "berth/core/error.hpp"
#include "berth/testing/process.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::proxy {
namespace {

namespace fs = std::filesystem;
using std::chrono::days;

std::vector<std::string> const hostnames = {"registry.example", "127.0.0.1", "::1"};

std::string read(fs::path const& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

unsigned mode_of(fs::path const& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return 0;
  return info.st_mode & 07777;
}

std::string seconds(days count) {
  return std::to_string(std::chrono::seconds(count).count());
}

testing::RunResult openssl(std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/openssl");
  return testing::run(std::move(args));
}

std::string subject_alt_names(TlsMaterial const& material) {
  auto result = openssl({"x509", "-noout", "-ext", "subjectAltName", "-in", material.server_cert.string()});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return result.output;
}

struct Snapshot {
  std::map<std::string, std::string> bytes;
  std::map<std::string, fs::file_time_type> mtimes;
  bool operator==(Snapshot const&) const = default;
};

Snapshot snapshot(fs::path const& dir) {
  Snapshot result;
  for (char const* name : {"ca.key", "ca.crt", "server.key", "server.crt"}) {
    result.bytes[name] = read(dir / name);
    result.mtimes[name] = fs::last_write_time(dir / name);
  }
  return result;
}

std::string error_of(fs::path const& dir, std::vector<std::string> const& names) {
  try {
    ensure_local_tls(dir, names);
  } catch (Error const& error) {
    return error.what();
  }
  return "no error";
}

TEST(TlsMaterial, FirstCallCreatesCaAndServerFilesWithOwnerOnlyKeys) {
  testing::TempDir temp;
  fs::path dir = temp.path() / "config" / "tls";
  auto material = ensure_local_tls(dir, hostnames);
  EXPECT_EQ(material.ca_cert, dir / "ca.crt");
  EXPECT_EQ(material.server_cert, dir / "server.crt");
  EXPECT_EQ(material.server_key, dir / "server.key");
  EXPECT_EQ(mode_of(dir), 0700u);
  EXPECT_EQ(mode_of(dir / "ca.key"), 0600u);
  EXPECT_EQ(mode_of(material.server_key), 0600u);
  EXPECT_EQ(mode_of(material.ca_cert) & 0600u, 0600u);
  EXPECT_EQ(mode_of(material.server_cert) & 0600u, 0600u);
  EXPECT_NE(read(material.ca_cert).find("-----BEGIN CERTIFICATE-----"), std::string::npos);
  EXPECT_NE(read(material.server_key).find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "server.key.tmp"));
}

TEST(TlsMaterial, SecondCallChangesNothing) {
  testing::TempDir temp;
  ensure_local_tls(temp.path(), hostnames);
  auto before = snapshot(temp.path());
  ensure_local_tls(temp.path(), {"REGISTRY.example", "::1", "127.0.0.1", "[::1]"});
  EXPECT_TRUE(snapshot(temp.path()) == before);
}

TEST(TlsMaterial, ServerCertificateVerifiesAgainstCaWithOpenssl) {
  testing::TempDir temp;
  auto material = ensure_local_tls(temp.path(), hostnames);
  auto plain = openssl({"verify", "-CAfile", material.ca_cert.string(), material.server_cert.string()});
  EXPECT_EQ(plain.exit_code, 0) << plain.output;
  auto strict = openssl({"verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", material.ca_cert.string(),
                         material.server_cert.string()});
  EXPECT_EQ(strict.exit_code, 0) << strict.output;
}

TEST(TlsMaterial, SubjectAltNamesHoldDnsNamesAndIpLiterals) {
  testing::TempDir temp;
  auto sans = subject_alt_names(ensure_local_tls(temp.path(), hostnames));
  EXPECT_NE(sans.find("DNS:registry.example"), std::string::npos) << sans;
  EXPECT_NE(sans.find("IP Address:127.0.0.1"), std::string::npos) << sans;
  // OpenSSL 3.0 prints ::1 uncompressed; later releases may not.
  bool has_ipv6 =
      sans.find("IP Address:0:0:0:0:0:0:0:1") != std::string::npos || sans.find("IP Address:::1") != std::string::npos;
  EXPECT_TRUE(has_ipv6) << sans;
}

TEST(TlsMaterial, ExtensionsMarkCaAndServerRoles) {
  testing::TempDir temp;
  auto material = ensure_local_tls(temp.path(), hostnames);
  auto ca = openssl({"x509", "-noout", "-subject", "-ext", "basicConstraints,keyUsage,subjectKeyIdentifier", "-in",
                     material.ca_cert.string()});
  // OpenSSL 3.0 prints "CN = name", 3.2 and later "CN=name".
  EXPECT_TRUE(ca.output.find("CN = berth local CA registry.example") != std::string::npos ||
              ca.output.find("CN=berth local CA registry.example") != std::string::npos)
      << ca.output;
  EXPECT_NE(ca.output.find("Basic Constraints: critical\n    CA:TRUE"), std::string::npos) << ca.output;
  EXPECT_NE(ca.output.find("Key Usage: critical\n    Certificate Sign, CRL Sign"), std::string::npos) << ca.output;
  EXPECT_NE(ca.output.find("Subject Key Identifier"), std::string::npos) << ca.output;
  auto server = openssl({"x509", "-noout", "-ext", "basicConstraints,keyUsage,extendedKeyUsage,authorityKeyIdentifier",
                         "-in", material.server_cert.string()});
  EXPECT_NE(server.output.find("CA:FALSE"), std::string::npos) << server.output;
  EXPECT_NE(server.output.find("Key Usage: critical\n    Digital Signature\n"), std::string::npos) << server.output;
  EXPECT_NE(server.output.find("TLS Web Server Authentication"), std::string::npos) << server.output;
  EXPECT_NE(server.output.find("Authority Key Identifier"), std::string::npos) << server.output;
}

TEST(TlsMaterial, ValidityIs397DaysForServerAndTenYearsForCa) {
  testing::TempDir temp;
  auto material = ensure_local_tls(temp.path(), hostnames);
  auto checkend = [](fs::path const& cert, days from_now) {
    return openssl({"x509", "-noout", "-checkend", seconds(from_now), "-in", cert.string()}).exit_code;
  };
  EXPECT_EQ(checkend(material.server_cert, days(396)), 0);
  EXPECT_EQ(checkend(material.server_cert, days(397)), 1);
  EXPECT_EQ(checkend(material.ca_cert, days(3649)), 0);
  EXPECT_EQ(checkend(material.ca_cert, days(3650)), 1);
}

TEST(TlsMaterial, RenewsServerCertificateWithin30DaysOfExpiryAndKeepsCa) {
  testing::TempDir temp;
  auto start = std::chrono::system_clock::now();
  auto material = ensure_local_tls(temp.path(), hostnames, start);
  auto before = snapshot(temp.path());
  // 37 days left: nothing to do yet.
  ensure_local_tls(temp.path(), hostnames, start + days(360));
  EXPECT_TRUE(snapshot(temp.path()) == before);

  auto later = start + days(380);
  ensure_local_tls(temp.path(), hostnames, later);
  auto after = snapshot(temp.path());
  EXPECT_EQ(after.bytes["ca.key"], before.bytes["ca.key"]);
  EXPECT_EQ(after.bytes["ca.crt"], before.bytes["ca.crt"]);
  EXPECT_EQ(after.mtimes["ca.crt"], before.mtimes["ca.crt"]);
  EXPECT_NE(after.bytes["server.crt"], before.bytes["server.crt"]);
  EXPECT_NE(after.bytes["server.key"], before.bytes["server.key"]);
  auto at = std::to_string(std::chrono::system_clock::to_time_t(later));
  auto verify = openssl({"verify", "-attime", at, "-CAfile", material.ca_cert.string(), material.server_cert.string()});
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
}

TEST(TlsMaterial, ChangedHostnamesReissueServerCertificate) {
  testing::TempDir temp;
  auto material = ensure_local_tls(temp.path(), hostnames);
  auto before = snapshot(temp.path());
  ensure_local_tls(temp.path(), {"registry.example", "192.168.1.10"});
  auto after = snapshot(temp.path());
  EXPECT_EQ(after.bytes["ca.crt"], before.bytes["ca.crt"]);
  EXPECT_NE(after.bytes["server.crt"], before.bytes["server.crt"]);
  auto sans = subject_alt_names(material);
  EXPECT_NE(sans.find("IP Address:192.168.1.10"), std::string::npos) << sans;
  EXPECT_EQ(sans.find("127.0.0.1"), std::string::npos) << sans;
}

TEST(TlsMaterial, DeletedServerKeyReissuesServerCertificate) {
  testing::TempDir temp;
  auto material = ensure_local_tls(temp.path(), hostnames);
  auto before = snapshot(temp.path());
  fs::remove(material.server_key);
  ensure_local_tls(temp.path(), hostnames);
  auto after = snapshot(temp.path());
  EXPECT_EQ(mode_of(material.server_key), 0600u);
  EXPECT_NE(after.bytes["server.crt"], before.bytes["server.crt"]);
  EXPECT_EQ(after.bytes["ca.key"], before.bytes["ca.key"]);
  auto verify = openssl({"verify", "-CAfile", material.ca_cert.string(), material.server_cert.string()});
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
}

TEST(TlsMaterial, CertificateFromAnotherCaIsReissued) {
  testing::TempDir temp;
  testing::TempDir other;
  auto material = ensure_local_tls(temp.path(), hostnames);
  auto foreign = ensure_local_tls(other.path(), hostnames);
  fs::copy_file(foreign.server_cert, material.server_cert, fs::copy_options::overwrite_existing);
  fs::copy_file(foreign.server_key, material.server_key, fs::copy_options::overwrite_existing);
  ensure_local_tls(temp.path(), hostnames);
  EXPECT_NE(read(material.server_cert), read(foreign.server_cert));
  auto verify = openssl({"verify", "-CAfile", material.ca_cert.string(), material.server_cert.string()});
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
}

TEST(TlsMaterial, CaKeyWithoutCertificateGetsItsCertificateBack) {
  testing::TempDir temp;
  auto material = ensure_local_tls(temp.path(), hostnames);
  auto key = read(temp.path() / "ca.key");
  fs::remove(material.ca_cert);
  ensure_local_tls(temp.path(), hostnames);
  EXPECT_EQ(read(temp.path() / "ca.key"), key);
  auto verify = openssl({"verify", "-CAfile", material.ca_cert.string(), material.server_cert.string()});
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
}

TEST(TlsMaterial, CorruptedCaKeyIsAnErrorNamingTheFile) {
  testing::TempDir temp;
  ensure_local_tls(temp.path(), hostnames);
  temp.write("ca.key", "not a key\n");
  auto key_path = (temp.path() / "ca.key").string();
  // The middle is OpenSSL's own wording, which differs between releases; ours is around it.
  auto message = error_of(temp.path(), hostnames);
  EXPECT_TRUE(message.starts_with("cannot read CA key " + key_path + ": error:")) << message;
  EXPECT_TRUE(
      message.ends_with("\nHINT: restore ca.key and ca.crt from a backup, or remove both to create a new CA "
                        "(every client must then trust the new ca.crt)"))
      << message;
}

TEST(TlsMaterial, CaCertificateWithoutKeyIsAnError) {
  testing::TempDir temp;
  ensure_local_tls(temp.path(), hostnames);
  fs::remove(temp.path() / "ca.key");
  EXPECT_EQ(error_of(temp.path(), hostnames),
            "cannot read CA key " + (temp.path() / "ca.key").string() +
                ": No such file or directory\n"
                "HINT: restore ca.key and ca.crt from a backup, or remove both to create a new CA "
                "(every client must then trust the new ca.crt)");
}

TEST(TlsMaterial, RejectsInvalidHostnamesBeforeWritingAnything) {
  testing::TempDir temp;
  EXPECT_EQ(error_of(temp.path() / "tls", {}), "cannot issue a server certificate without hostnames");
  EXPECT_EQ(error_of(temp.path() / "tls", {"registry.example", "https://registry.example:5000"}),
            "cannot issue a server certificate for hostname \"https://registry.example:5000\": neither a DNS name "
            "nor an IP address\nHINT: use a name such as registry.home.arpa or an address such as 192.168.1.10 or "
            "::1, without port or scheme");
  EXPECT_FALSE(fs::exists(temp.path() / "tls"));
}

TEST(TlsMaterial, TrustInstructionsHoldPemAndTheThreeTrustPaths) {
  testing::TempDir temp;
  auto material = ensure_local_tls(temp.path(), hostnames);
  auto text = trust_instructions(material, "registry.example:5000");
  EXPECT_NE(text.find(read(material.ca_cert)), std::string::npos) << text;
  EXPECT_NE(text.find("sudo mkdir -p /etc/docker/certs.d/registry.example:5000 && sudo cp " +
                      material.ca_cert.string() + " /etc/docker/certs.d/registry.example:5000/ca.crt\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("/etc/containers/certs.d/registry.example:5000/ca.crt\n"), std::string::npos) << text;
  EXPECT_NE(text.find(material.ca_cert.string() +
                      " /usr/local/share/ca-certificates/berth-local-ca.crt && sudo update-ca-certificates\n"),
            std::string::npos)
      << text;
  EXPECT_LT(text.find("-----END CERTIFICATE-----"), text.find("/etc/docker/"));
}

TEST(TlsMaterial, TrustInstructionsDropTheDefaultPort) {
  testing::TempDir temp;
  auto material = ensure_local_tls(temp.path(), hostnames);
  auto text = trust_instructions(material, "registry.example:443");
  EXPECT_NE(text.find("/etc/docker/certs.d/registry.example/ca.crt"), std::string::npos) << text;
  EXPECT_EQ(text.find(":443"), std::string::npos) << text;
}

}  // namespace
}  // namespace berth::proxy
