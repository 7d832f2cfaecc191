// SigV4 signer against AWS's published test suite (tests/data/sigv4-testsuite, from
// awslabs/aws-c-auth): every case's header variant must reproduce the canonical request, the
// string to sign and the Authorization header byte for byte. The query-* files (presigned URLs)
// are not replayed: berth signs only with the Authorization header.
#include "berth/registry/sigv4.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "berth/core/error.hpp"

namespace fs = std::filesystem;
using namespace berth::registry;

namespace {

fs::path const suite_dir = fs::path(BERTH_SIGV4_TESTSUITE_DIR) / "v4";

std::string read_file(fs::path const& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The suite's request.txt: request line, header lines (a line starting with whitespace continues
// the previous value, the obsolete line folding case), an empty line, the body.
sigv4::Request parse_request(std::string const& text, std::string& body) {
  sigv4::Request request;
  std::size_t pos = 0;
  auto next_line = [&]() -> std::optional<std::string> {
    if (pos > text.size()) return std::nullopt;
    std::size_t const end = std::min(text.find('\n', pos), text.size());
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    return line;
  };
  std::string const request_line = *next_line();
  std::size_t const first_space = request_line.find(' ');
  std::size_t const last_space = request_line.rfind(' ');
  request.method = request_line.substr(0, first_space);
  request.target = request_line.substr(first_space + 1, last_space - first_space - 1);
  while (auto line = next_line()) {
    if (line->empty()) break;
    if ((*line)[0] == ' ' || (*line)[0] == '\t') {
      request.headers.back().value += "\n" + *line;
      continue;
    }
    std::size_t const colon = line->find(':');
    request.headers.push_back({line->substr(0, colon), line->substr(colon + 1)});
  }
  body = pos < text.size() ? text.substr(pos) : std::string();
  return request;
}

std::chrono::system_clock::time_point parse_timestamp(std::string const& text) {
  std::tm tm{};
  std::istringstream in(text);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::vector<std::string> suite_cases() {
  std::vector<std::string> names;
  for (auto const& entry : fs::directory_iterator(suite_dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class AwsTestSuite : public testing::TestWithParam<std::string> {};

TEST_P(AwsTestSuite, HeaderSigningMatchesExpectedOutput) {
  fs::path const dir = suite_dir / GetParam();
  auto const context = nlohmann::json::parse(read_file(dir / "context.json"));
  std::string body;
  std::string const request_text = read_file(dir / "request.txt");
  sigv4::Request request = parse_request(request_text, body);
  request.body = body;

  sigv4::Credentials credentials{context["credentials"]["access_key_id"], context["credentials"]["secret_access_key"],
                                 context["credentials"].value("token", "")};
  sigv4::Options options;
  options.region = context["region"];
  options.service = context["service"];
  options.normalize_path = context.value("normalize", true);
  options.add_content_sha256 = context.value("sign_body", false);
  options.sign_session_token = !context.value("omit_session_token", false);

  auto const signature = sigv4::sign(request, credentials, options, parse_timestamp(context["timestamp"]));

  EXPECT_EQ(signature.canonical_request, read_file(dir / "header-canonical-request.txt"));
  EXPECT_EQ(signature.string_to_sign, read_file(dir / "header-string-to-sign.txt"));

  // The signed request shows what the signer must add: every header line that is not in
  // request.txt, Authorization among them.
  std::string signed_body;
  auto const signed_request = parse_request(read_file(dir / "header-signed-request.txt"), signed_body);
  std::vector<sigv4::Header> expected_added;
  for (auto const& header : signed_request.headers) {
    if (std::find(request.headers.begin(), request.headers.end(), header) == request.headers.end()) {
      expected_added.push_back(header);
    }
  }
  auto sorted = [](std::vector<sigv4::Header> headers) {
    std::sort(headers.begin(), headers.end(), [](auto const& a, auto const& b) { return a.name < b.name; });
    return headers;
  };
  EXPECT_EQ(sorted(signature.headers_to_add), sorted(expected_added));
  EXPECT_EQ(signature.authorization.substr(signature.authorization.rfind('=') + 1),
            read_file(dir / "header-signature.txt"));
}

INSTANTIATE_TEST_SUITE_P(V4, AwsTestSuite, testing::ValuesIn(suite_cases()), [](auto const& info) {
  std::string name = info.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
});

// Guards against the parameterised test passing vacuously when the data folder is missing.
TEST(Sigv4, TestSuiteHasAllCases) {
  EXPECT_EQ(suite_cases().size(), 38u);
}

sigv4::Credentials const example_credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};

std::chrono::system_clock::time_point at(std::string const& timestamp) {
  return parse_timestamp(timestamp);
}

TEST(Sigv4, MatchesTheGeneralReferenceIamExample) {
  sigv4::Request request{
      "GET",
      "/?Action=ListUsers&Version=2010-05-08",
      {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}, {"Host", "iam.amazonaws.com"}},
      ""};
  auto const signature =
      sigv4::sign(request, example_credentials, {.region = "us-east-1", .service = "iam"}, at("2015-08-30T12:36:00Z"));
  EXPECT_EQ(signature.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date, "
            "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

TEST(Sigv4, EncodesAnAlreadyEncodedPathAgain) {
  sigv4::Request request{"GET", "/a%20b/c+d", {{"Host", "example.amazonaws.com"}}, ""};
  auto const signature = sigv4::sign(request, example_credentials, {.region = "us-east-1", .service = "service"},
                                     at("2015-08-30T12:36:00Z"));
  EXPECT_EQ(signature.canonical_request.substr(0, signature.canonical_request.find('\n', 4)), "GET\n/a%2520b/c%2Bd");
}

TEST(Sigv4, CanonicalQueryDecodesReencodesAndSorts) {
  sigv4::Request request{"GET", "/?b=2&a=z&a=y&sp=a+b%20c&empty&x=%2F", {{"Host", "example.amazonaws.com"}}, ""};
  auto const signature = sigv4::sign(request, example_credentials, {.region = "us-east-1", .service = "service"},
                                     at("2015-08-30T12:36:00Z"));
  std::istringstream lines(signature.canonical_request);
  std::string line;
  std::getline(lines, line);
  std::getline(lines, line);
  std::getline(lines, line);
  EXPECT_EQ(line, "a=y&a=z&b=2&empty=&sp=a%2Bb%20c&x=%2F");
}

TEST(Sigv4, UnsignedPayloadAndContentSha256) {
  sigv4::Request request{"PUT", "/", {{"Host", "example.amazonaws.com"}}, "body"};
  auto const signature =
      sigv4::sign(request, example_credentials,
                  {.region = "us-east-1", .service = "s3", .add_content_sha256 = true, .unsigned_payload = true},
                  at("2015-08-30T12:36:00Z"));
  EXPECT_TRUE(signature.canonical_request.ends_with("\nhost;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD"));
  EXPECT_NE(std::find(signature.headers_to_add.begin(), signature.headers_to_add.end(),
                      sigv4::Header{"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}),
            signature.headers_to_add.end());
}

TEST(Sigv4, PayloadHashesOfEmptyAndEmptyObject) {
  EXPECT_EQ(sigv4::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sigv4::sha256_hex("{}"), "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
}

TEST(Sigv4, AmzDateIsUtcBasicFormat) {
  EXPECT_EQ(sigv4::amz_date(at("2026-01-02T03:04:05Z")), "20260102T030405Z");
}

TEST(Sigv4, RejectsRequestsItCannotSign) {
  auto const time = at("2015-08-30T12:36:00Z");
  sigv4::Options const options{.region = "us-east-1", .service = "service"};
  auto message = [&](sigv4::Request const& request, sigv4::Credentials const& credentials,
                     sigv4::Options const& opts) -> std::string {
    try {
      sigv4::sign(request, credentials, opts, time);
    } catch (berth::Error const& error) {
      return error.what();
    }
    return "no error";
  };
  sigv4::Request const no_host{"GET", "/", {{"Accept", "*/*"}}, ""};
  EXPECT_EQ(message(no_host, example_credentials, options),
            "cannot sign an AWS request: the request has no Host header\n"
            "HINT: this is a bug in the caller of the signer; report it with the request that failed.");
  sigv4::Request const signed_twice{"GET", "/", {{"Host", "h"}, {"Authorization", "x"}}, ""};
  EXPECT_TRUE(
      message(signed_twice, example_credentials, options)
          .starts_with("cannot sign an AWS request: the request already carries Authorization; the signer adds it"));
  sigv4::Request const token_twice{"GET", "/", {{"Host", "h"}, {"X-Amz-Security-Token", "t"}}, ""};
  EXPECT_TRUE(message(token_twice, {"AKID", "secret", "t"}, options)
                  .starts_with("cannot sign an AWS request: the request already carries X-Amz-Security-Token; the "
                               "signer adds it"));
  sigv4::Request const ok{"GET", "/", {{"Host", "h"}}, ""};
  EXPECT_TRUE(message(ok, {"AKID", "", ""}, options)
                  .starts_with("cannot sign an AWS request: the access key id or secret access key is empty"));
  EXPECT_TRUE(message(ok, example_credentials, {.region = "", .service = "ecr"})
                  .starts_with("cannot sign an AWS request: the region is empty"));
}

}  // namespace
