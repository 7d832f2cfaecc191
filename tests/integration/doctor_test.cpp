// `berth doctor` on real volumes in a temp dir: files with wrong modes, certificates made with the
// openssl command line (expired, expiring, not yet valid), a missing backup volume, a bad config.
#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "berth/testing/process.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A volume as berth serve lays it out, with the modes berth gives it.
class DoctorVolume {
public:
  explicit DoctorVolume(std::string const& extra_yaml = "") {
    fs::create_directories(primary() / "secrets");
    fs::create_directories(primary() / "registry");
    fs::create_directories(backup());
    ::chmod(primary().c_str(), 0750);
    ::chmod((primary() / "secrets").c_str(), 0700);
    ::chmod(backup().c_str(), 0750);
    ::chmod(dir_.write("var/secrets/htpasswd", "").c_str(), 0600);
    write_config(extra_yaml);
  }

  void write_config(std::string const& extra_yaml, bool postgres = false) {
    config_ = dir_.write("berth.yaml", std::string("postgres:\n  enabled: ") + (postgres ? "true" : "false") +
                                           "\nvolumes:\n  primary: " + primary().string() +
                                           "\n  backup: " + backup().string() + "\n" + extra_yaml);
  }

  RunResult doctor(bool as_json = true) const {
    std::vector<std::string> argv = {BERTH_BINARY, "--config", config_.string(), "doctor"};
    if (as_json) argv.push_back("--json");
    return run(argv);
  }
  RunResult command(std::vector<std::string> args) const {
    args.insert(args.begin(), {BERTH_BINARY, "--config", config_.string()});
    return run(args);
  }

  fs::path primary() const { return dir_.path() / "var"; }
  fs::path backup() const { return dir_.path() / "backup"; }
  TempDir const& dir() const { return dir_; }

private:
  TempDir dir_;
  fs::path config_;
};

json findings_of(RunResult const& result) {
  auto const report = json::parse(result.output);
  return report.at("findings");
}

// The finding of `check` whose text contains `text`, or null.
json find(json const& findings, std::string const& check, std::string const& text) {
  for (auto const& finding : findings)
    if (finding.at("check") == check && finding.at("what").get<std::string>().find(text) != std::string::npos)
      return finding;
  return nullptr;
}

std::string openssl_time(std::chrono::system_clock::time_point when) {
  auto const seconds = std::chrono::system_clock::to_time_t(when);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y%m%d%H%M%SZ", &utc);
  return text;
}

// A self-signed certificate valid from `from` to `until`, made with `openssl ca` (the only
// openssl command that takes explicit dates on OpenSSL 3.0). Returns the YAML that serves it.
std::string make_certificate(TempDir const& dir, std::chrono::system_clock::time_point from,
                             std::chrono::system_clock::time_point until) {
  auto const ca = dir.path() / "ca";
  dir.write("ca/ca.cnf",
            "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
            "default_md = sha256\npolicy = any\n[any]\ncommonName = supplied\n");
  dir.write("ca/index.txt", "");
  dir.write("ca/serial", "01\n");
  auto const request =
      run({"/usr/bin/openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-keyout", (ca / "server.key").string(), "-out", (ca / "server.csr").string(), "-subj", "/CN=localhost"});
  EXPECT_EQ(request.exit_code, 0) << request.output;
  auto const sign =
      run({"/usr/bin/openssl", "ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", "server.key", "-in",
           "server.csr", "-out", "server.crt", "-startdate", openssl_time(from), "-enddate", openssl_time(until)},
          {}, ca);
  EXPECT_EQ(sign.exit_code, 0) << sign.output;
  ::chmod((ca / "server.key").c_str(), 0600);
  return "server:\n  tls:\n    enabled: true\n    cert: " + (ca / "server.crt").string() +
         "\n    key: " + (ca / "server.key").string() + "\n";
}

TEST(Doctor, AHealthyVolumeHasNoErrorsButSaysWhatIsMissing) {
  DoctorVolume volume;
  auto const result = volume.doctor();
  ASSERT_EQ(result.exit_code, 0) << result.output;
  auto const report = json::parse(result.output);
  EXPECT_EQ(report.at("errors"), 0);
  auto const findings = report.at("findings");
  EXPECT_EQ(find(findings, "config", "is valid").at("level"), "ok");
  EXPECT_EQ(find(findings, "modes", "closed to others").at("level"), "ok");
  // ok or warn depending on this machine's disk; it names the volume and its free space either way.
  EXPECT_FALSE(find(findings, "space", "primary volume " + volume.primary().string() + ": ").is_null())
      << findings.dump(2);
  // Both volumes are in one temp dir: one disk for the data and its backups.
  auto const same_disk = find(findings, "backup disk", "same filesystem");
  ASSERT_FALSE(same_disk.is_null()) << findings.dump(2);
  EXPECT_EQ(same_disk.at("level"), "warn");
  EXPECT_EQ(same_disk.at("fix"),
            "mount a second disk at " + volume.backup().string() + " (or point volumes.backup at one)");
  auto const no_snapshot = find(findings, "snapshot", "no snapshot");
  ASSERT_FALSE(no_snapshot.is_null()) << findings.dump(2);
  EXPECT_EQ(no_snapshot.at("level"), "warn");
  EXPECT_EQ(find(findings, "tls", "TLS is off").at("level"), "ok");
  EXPECT_EQ(find(findings, "clock", "the clock says").at("level"), "ok");

  // A snapshot turns the warning into an ok naming it.
  auto const snapshot = volume.command({"backup", "run"});
  ASSERT_EQ(snapshot.exit_code, 0) << snapshot.output;
  auto const after = findings_of(volume.doctor());
  EXPECT_EQ(find(after, "snapshot", "newest snapshot").at("level"), "ok") << after.dump(2);
}

// The release and the PostgreSQL major, read from this machine: each named, with whether berth
// supports it (this suite runs on Debian 12 and 13, both supported).
TEST(Doctor, NamesTheReleaseAndThePostgresMajorItRunsOn) {
  std::string pretty;
  std::ifstream os_release("/etc/os-release");
  for (std::string line; std::getline(os_release, line);)
    if (line.starts_with("PRETTY_NAME=")) pretty = line.substr(13, line.size() - 14);
  ASSERT_FALSE(pretty.empty());
  DoctorVolume volume;
  auto const without_postgres = findings_of(volume.doctor());
  auto const release = find(without_postgres, "platform", pretty + ": supported");
  ASSERT_FALSE(release.is_null()) << without_postgres.dump(2);
  EXPECT_EQ(release.at("level"), "ok");
  EXPECT_TRUE(find(without_postgres, "platform", "PostgreSQL").is_null()) << without_postgres.dump(2);

  volume.write_config("", true);
  auto const findings = findings_of(volume.doctor());
  auto const server = find(findings, "platform", "PostgreSQL ");
  ASSERT_FALSE(server.is_null()) << findings.dump(2);
  EXPECT_EQ(server.at("level"), "ok");
  EXPECT_NE(server.at("what").get<std::string>().find("/usr/lib/postgresql/"), std::string::npos);
  EXPECT_NE(server.at("what").get<std::string>().find(": supported (15 to 18)"), std::string::npos);
}

TEST(Doctor, NamesSecretsOpenToOthersWithTheChmodThatFixesThem) {
  DoctorVolume volume;
  auto const htpasswd = volume.primary() / "secrets" / "htpasswd";
  ::chmod(htpasswd.c_str(), 0644);
  ::chmod((volume.primary() / "secrets").c_str(), 0750);
  auto const result = volume.doctor();
  EXPECT_EQ(result.exit_code, 1) << result.output;
  auto const findings = findings_of(result);
  auto const file = find(findings, "modes", htpasswd.string() + " has mode 0644, open to every user");
  ASSERT_FALSE(file.is_null()) << findings.dump(2);
  EXPECT_EQ(file.at("level"), "error");
  EXPECT_EQ(file.at("fix"), "chmod 0600 " + htpasswd.string());
  auto const folder = find(findings, "modes", "secrets has mode 0750, open to its group");
  ASSERT_FALSE(folder.is_null()) << findings.dump(2);
  EXPECT_EQ(folder.at("level"), "warn");
  EXPECT_EQ(folder.at("fix"), "chmod 0700 " + (volume.primary() / "secrets").string());

  // The text form says the same, with the fix under the finding and a count at the end.
  auto const text = volume.doctor(false);
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.output.find("error modes        " + htpasswd.string() + " has mode 0644, open to every user\n" +
                             std::string(19, ' ') + "fix: chmod 0600 " + htpasswd.string() + "\n"),
            std::string::npos)
      << text.output;
  EXPECT_NE(text.output.find("1 error(s), "), std::string::npos) << text.output;

  // Fixed as told, the error is gone.
  ::chmod(htpasswd.c_str(), 0600);
  ::chmod((volume.primary() / "secrets").c_str(), 0700);
  EXPECT_EQ(volume.doctor().exit_code, 0);
}

// Account files outside the secrets folder (the package keeps them in /etc/berth) must still be
// closed to others: the htpasswd's password hashes and the robots file's token hashes.
TEST(Doctor, NamesAccountFilesOutsideTheSecretsFolderThatOthersCanRead) {
  DoctorVolume volume;
  auto const htpasswd = volume.dir().write("etc/htpasswd", "");
  auto const robots = volume.dir().write("etc/robots", "");
  ::chmod(htpasswd.c_str(), 0640);
  ::chmod(robots.c_str(), 0644);
  volume.write_config("auth:\n  htpasswd: " + htpasswd.string() + "\n  robots: " + robots.string() + "\n");
  auto const result = volume.doctor();
  EXPECT_EQ(result.exit_code, 1) << result.output;
  auto const findings = findings_of(result);
  auto const open = find(findings, "modes", robots.string() + " has mode 0644, open to every user");
  ASSERT_FALSE(open.is_null()) << findings.dump(2);
  EXPECT_EQ(open.at("level"), "error");
  EXPECT_EQ(open.at("fix"), "chmod o-rwx " + robots.string());
  EXPECT_TRUE(find(findings, "modes", htpasswd.string()).is_null()) << "0640 is the package's own mode";

  ::chmod(robots.c_str(), 0640);
  EXPECT_EQ(volume.doctor().exit_code, 0) << volume.doctor(false).output;
}

TEST(Doctor, AMissingBackupVolumeIsAnError) {
  DoctorVolume volume;
  fs::remove_all(volume.backup());
  auto const result = volume.doctor();
  EXPECT_EQ(result.exit_code, 1) << result.output;
  auto const findings = findings_of(result);
  auto const missing = find(findings, "volumes", "backup volume " + volume.backup().string() + " is missing");
  ASSERT_FALSE(missing.is_null()) << findings.dump(2);
  EXPECT_EQ(missing.at("level"), "error");
  EXPECT_EQ(missing.at("fix"), "mount the backup disk at " + volume.backup().string() +
                                   " (or set volumes.backup), then: install -d -m 0750 -o berth -g berth " +
                                   volume.backup().string());
  // Nothing is created: doctor only looks.
  EXPECT_FALSE(fs::exists(volume.backup()));
}

TEST(Doctor, AnExpiredCertificateIsAnErrorAndAnExpiringOneAWarning) {
  using namespace std::chrono_literals;
  auto const now = std::chrono::system_clock::now();
  DoctorVolume volume;

  volume.write_config(make_certificate(volume.dir(), now - 24h * 60, now - 24h * 3));
  auto const expired = volume.doctor();
  EXPECT_EQ(expired.exit_code, 1) << expired.output;
  auto const expired_finding = find(findings_of(expired), "tls", "server.crt expired 3d");
  ASSERT_FALSE(expired_finding.is_null()) << expired.output;
  EXPECT_EQ(expired_finding.at("level"), "error");
  EXPECT_EQ(expired_finding.at("fix"), "renew it, then systemctl reload berth");

  volume.write_config(make_certificate(volume.dir(), now - 24h * 60, now + 24h * 10 + 1h));
  auto const expiring = volume.doctor();
  EXPECT_EQ(expiring.exit_code, 0) << expiring.output;
  auto const expiring_finding = find(findings_of(expiring), "tls", "server.crt expires in 10 days");
  ASSERT_FALSE(expiring_finding.is_null()) << expiring.output;
  EXPECT_EQ(expiring_finding.at("level"), "warn");

  // A certificate issued "in the future" means the clock is behind.
  volume.write_config(make_certificate(volume.dir(), now + 24h * 30, now + 24h * 400));
  auto const early = volume.doctor();
  EXPECT_EQ(early.exit_code, 1) << early.output;
  auto const clock = find(findings_of(early), "clock", "before server certificate");
  ASSERT_FALSE(clock.is_null()) << early.output;
  EXPECT_EQ(clock.at("level"), "error");
  EXPECT_EQ(clock.at("fix"), "set the clock: timedatectl set-ntp true (and check timedatectl status)");
}

TEST(Doctor, ABadConfigurationIsTheOneErrorReported) {
  DoctorVolume volume("servr:\n  listen: \"127.0.0.1:5000\"\n");
  auto const result = volume.doctor();
  EXPECT_EQ(result.exit_code, 1) << result.output;
  auto const report = json::parse(result.output);
  ASSERT_EQ(report.at("findings").size(), 1u) << result.output;
  auto const finding = report.at("findings").at(0);
  EXPECT_EQ(finding.at("check"), "config");
  EXPECT_EQ(finding.at("level"), "error");
  EXPECT_NE(finding.at("what").get<std::string>().find("servr"), std::string::npos) << result.output;
  EXPECT_EQ(finding.at("fix"), "fix the file, then run `berth config check`");
}

}  // namespace
}  // namespace berth::testing
