// `berth serve` with TLS as an operator turns it on: berth's own CA made at start, verified by
// curl, openssl and skopeo against that CA (never with verification off); old protocol
// versions refused; a client that never says hello dropped; the plain redirect listener; and
// `berth tls ca` and `berth tls issue`.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "berth/testing/oci_layout.hpp"
#include "berth/testing/raw_http.hpp"
#include "berth/testing/temp_dir.hpp"
#include "berth_instance.hpp"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

unsigned mode_of(fs::path const& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 ? info.st_mode & 07777 : 0;
}

constexpr char tls_config[] = R"(
server:
  header_timeout: 2s
  http_redirect_listen: 127.0.0.1:0
  tls:
    enabled: true
    hostnames: [localhost, 127.0.0.1]
)";

class Tls : public ::testing::Test {
protected:
  fs::path tls_dir() const { return berth_.dir().path() / "tls"; }
  fs::path ca() const { return tls_dir() / "ca.crt"; }
  std::string base() const { return "127.0.0.1:" + std::to_string(berth_.port()); }
  RunResult curl(std::vector<std::string> args) const {
    std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "--max-time", "30", "--cacert", ca().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }
  std::uint16_t redirect_port() {
    auto line = berth_.process().wait_for_output("plain http listener address=", 10s);
    if (!line) throw std::runtime_error("no redirect listener in the log:\n" + berth_.process().output());
    return static_cast<std::uint16_t>(std::stoi(line->substr(line->rfind(':') + 1)));
  }

  BerthInstance berth_{tls_config};
  TempDir scratch_;
};

TEST_F(Tls, ServesHttpsWithACertificateFromItsOwnCa) {
  auto result = curl({"-i", "https://" + base() + "/v2/"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(result.output.starts_with("HTTP/1.1 200")) << result.output;
  EXPECT_NE(result.output.find("Docker-Distribution-API-Version: registry/2.0"), std::string::npos) << result.output;
  EXPECT_NE(curl({"https://localhost:" + std::to_string(berth_.port()) + "/healthz"}).output.find("\"status\":\"ok\""),
            std::string::npos);
  EXPECT_EQ(mode_of(tls_dir() / "ca.key"), 0600u);
  EXPECT_EQ(mode_of(tls_dir() / "server.key"), 0600u);
  EXPECT_NE(berth_.process().output().find("tls=on"), std::string::npos);

  // Plain HTTP on the TLS port gets no answer.
  auto plain = http_request("127.0.0.1", berth_.port(), "GET", "/v2/");
  EXPECT_FALSE(plain && plain->status == 200);
}

TEST_F(Tls, RefusesTls11AndNegotiatesHttp11WithAlpn) {
  auto old = curl({"--tlsv1.1", "--tls-max", "1.1", "https://" + base() + "/v2/"});
  EXPECT_NE(old.exit_code, 0) << old.output;
  auto s_client = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/openssl", "s_client", "-connect", base(), "-CAfile", ca().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);  // stdin is /dev/null: it ends after the handshake
  };
  auto tls11 = s_client({"-tls1_1"});
  EXPECT_NE(tls11.exit_code, 0) << tls11.output;
  auto alpn = s_client({"-alpn", "http/1.1"});
  ASSERT_EQ(alpn.exit_code, 0) << alpn.output;
  EXPECT_NE(alpn.output.find("ALPN protocol: http/1.1"), std::string::npos) << alpn.output;
  EXPECT_NE(alpn.output.find("Verify return code: 0 (ok)"), std::string::npos) << alpn.output;
}

TEST_F(Tls, SkopeoPushesAndPullsVerifyingTheCertificate) {
  auto certs = scratch_.path() / "certs";
  fs::create_directories(certs);
  fs::copy_file(ca(), certs / "ca.crt");
  OciLayout layout(scratch_.path() / "src");
  auto image = layout.add_image({1024 * 1024, 64 * 1024}, 61);
  layout.tag(image.manifest, "v1");
  auto target = "docker://" + base() + "/api/secure:v1";

  // Without the CA skopeo refuses the certificate: verification is really on.
  auto untrusted = skopeo({"copy", "oci:" + layout.dir().string() + ":v1", target});
  EXPECT_NE(untrusted.exit_code, 0);
  EXPECT_NE(untrusted.output.find("certificate"), std::string::npos) << untrusted.output;

  auto pushed = skopeo({"copy", "--dest-cert-dir", certs.string(), "oci:" + layout.dir().string() + ":v1", target});
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  auto out = scratch_.path() / "pulled";
  auto pulled = skopeo({"copy", "--src-cert-dir", certs.string(), "--preserve-digests", target, "dir:" + out.string()});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.output;
  EXPECT_EQ(read_file(out / "manifest.json"), layout.read_blob(image.manifest.digest));
  for (auto const& layer : image.layers)
    EXPECT_EQ(read_file(out / layer.digest.substr(7)), layout.read_blob(layer.digest));
}

TEST_F(Tls, DropsAClientThatNeverSendsAClientHelloWithinTheHeaderTimeout) {
  RawConnection silent("127.0.0.1", berth_.port());
  auto started = std::chrono::steady_clock::now();
  auto served = curl({"https://" + base() + "/healthz"});
  EXPECT_EQ(served.exit_code, 0) << served.output;
  EXPECT_TRUE(silent.wait_closed(10s));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);  // header_timeout 2s, checked once a second
}

TEST_F(Tls, RedirectListenerAnswersHealthAndSendsTheRestToHttps) {
  auto port = redirect_port();
  auto health = http_request("127.0.0.1", port, "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto moved = http_request("127.0.0.1", port, "POST", "/v2/api/app/blobs/uploads/");
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->status, 308);
  EXPECT_EQ(moved->header("Location"), "https://" + base() + "/v2/api/app/blobs/uploads/");
  auto followed = curl({"-L", "-i", "http://127.0.0.1:" + std::to_string(port) + "/v2/"});
  ASSERT_EQ(followed.exit_code, 0) << followed.output;
  EXPECT_NE(followed.output.find("HTTP/1.1 200"), std::string::npos) << followed.output;
}

TEST_F(Tls, SighupReissuesAndServesTheCertificate) {
  auto server_cert = tls_dir() / "server.crt";
  auto before = read_file(server_cert);
  fs::remove(server_cert);
  fs::remove(tls_dir() / "server.key");
  berth_.process().send_signal(SIGHUP);
  ASSERT_TRUE(berth_.process().wait_for_output("tls certificate loaded", 10s)) << berth_.process().output();
  auto after = read_file(server_cert);
  ASSERT_FALSE(after.empty());
  EXPECT_NE(after, before);
  auto shown = run({"/usr/bin/openssl", "s_client", "-connect", base(), "-CAfile", ca().string()});
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_NE(shown.output.find(after), std::string::npos) << shown.output;
  EXPECT_TRUE(berth_.process().running());
}

TEST_F(Tls, TlsCaPrintsTheCaAndHowToTrustIt) {
  auto printed = berth_.command({"tls", "ca"});
  ASSERT_EQ(printed.exit_code, 0) << printed.output;
  EXPECT_NE(printed.output.find(read_file(ca())), std::string::npos) << printed.output;
  // server.listen in the file is the default port; the first hostname names the registry.
  EXPECT_NE(printed.output.find("/etc/docker/certs.d/localhost:5000/ca.crt"), std::string::npos) << printed.output;
  EXPECT_NE(printed.output.find("/etc/containers/certs.d/localhost:5000/ca.crt"), std::string::npos) << printed.output;
}

TEST(TlsConfig, CertWithoutKeyOrRedirectWithoutTlsIsRefusedAtStart) {
  TempDir dir;
  auto serve = [&](std::string const& yaml) {
    auto config = dir.write("berth.yaml", yaml);
    return run({BERTH_BINARY, "--config", config.string(), "serve", "--listen", "127.0.0.1:0", "--data",
                (dir.path() / "var").string(), "--backup", (dir.path() / "backup").string()});
  };
  auto half = serve("server:\n  tls:\n    enabled: true\n    cert: own.crt\n");
  EXPECT_EQ(half.exit_code, 1);
  EXPECT_NE(half.output.find("server.tls.cert and server.tls.key must be set together\nHINT:"), std::string::npos)
      << half.output;
  auto redirect = serve("server:\n  http_redirect_listen: 127.0.0.1:0\n");
  EXPECT_EQ(redirect.exit_code, 1);
  EXPECT_NE(redirect.output.find("server.http_redirect_listen redirects to https, but server.tls.enabled is false"),
            std::string::npos)
      << redirect.output;
  auto missing = serve("server:\n  tls:\n    enabled: true\n    cert: own.crt\n    key: own.key\n");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("cannot load TLS certificate chain " + (dir.path() / "own.crt").string()),
            std::string::npos)
      << missing.output;
  auto no_ca = run({BERTH_BINARY, "--config", dir.write("berth.yaml", "log:\n  level: info\n").string(), "tls", "ca"});
  EXPECT_EQ(no_ca.exit_code, 1);
  EXPECT_NE(no_ca.output.find("no CA certificate in " + (dir.path() / "tls").string() + " yet\nHINT:"),
            std::string::npos)
      << no_ca.output;
}

TEST(TlsConfig, TlsIssueMakesTheCaBeforeAnyStartAndKeepsIt) {
  TempDir dir;
  auto config =
      dir.write("berth.yaml", "server:\n  tls:\n    enabled: true\n    hostnames: [registry.test, 127.0.0.1]\n");
  auto berth = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {BERTH_BINARY, "--config", config.string()});
    return run(args);
  };
  auto issued = berth({"tls", "issue"});
  ASSERT_EQ(issued.exit_code, 0) << issued.output;
  EXPECT_NE(issued.output.find("CA certificate:     " + (dir.path() / "tls" / "ca.crt").string()), std::string::npos)
      << issued.output;
  EXPECT_NE(issued.output.find("(for registry.test, 127.0.0.1)"), std::string::npos) << issued.output;
  EXPECT_EQ(mode_of(dir.path() / "tls" / "ca.key"), 0600u);
  EXPECT_EQ(mode_of(dir.path() / "tls" / "server.key"), 0600u);
  auto const ca = read_file(dir.path() / "tls" / "ca.crt");
  auto const certificate = read_file(dir.path() / "tls" / "server.crt");

  // Again (an upgrade's postinst): nothing is due, nothing changes; `tls ca` works before a start.
  ASSERT_EQ(berth({"tls", "issue"}).exit_code, 0);
  EXPECT_EQ(read_file(dir.path() / "tls" / "ca.crt"), ca);
  EXPECT_EQ(read_file(dir.path() / "tls" / "server.crt"), certificate);
  auto shown = berth({"tls", "ca"});
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_NE(shown.output.find(ca), std::string::npos);

  // The operator's own certificate: nothing to issue.
  auto own =
      run({BERTH_BINARY, "--config",
           dir.write("own.yaml", "server:\n  tls:\n    enabled: true\n    cert: a.crt\n    key: a.key\n").string(),
           "tls", "issue"});
  EXPECT_EQ(own.exit_code, 1);
  EXPECT_NE(own.output.find("berth serves your own certificate (server.tls.cert " + (dir.path() / "a.crt").string()),
            std::string::npos)
      << own.output;
}

// The package's postinst runs `tls issue` as root on a directory the service user owns.
TEST(TlsConfig, TlsIssueRunByRootGivesTheFilesToTheDirectorysOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir dir;
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
  auto config = dir.write("berth.yaml", "server:\n  tls:\n    enabled: true\n    hostnames: [registry.test]\n");
  auto tls = dir.path() / "tls";
  fs::create_directory(tls);
  ASSERT_EQ(::chown(tls.c_str(), 65534, 65534), 0);  // nobody
  auto issued = run({BERTH_BINARY, "--config", config.string(), "tls", "issue"});
  ASSERT_EQ(issued.exit_code, 0) << issued.output;
  for (auto const* name : {"ca.key", "ca.crt", "server.key", "server.crt"}) {
    struct stat info {};
    ASSERT_EQ(::stat((tls / name).c_str(), &info), 0) << name;
    EXPECT_EQ(info.st_uid, 65534u) << name;
  }
}

}  // namespace
}  // namespace berth::testing
