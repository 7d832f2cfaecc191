// kill -9 in the middle of a push: nothing partial becomes visible, the upload can be resumed
// after the restart, and fsck finds the registry intact.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "berth/testing/eventually.hpp"
#include "berth/testing/oci_layout.hpp"
#include "berth/testing/raw_http.hpp"
#include "berth_instance.hpp"

namespace berth::testing {
namespace {

using namespace std::chrono_literals;

TEST(RegistryCrash, KillDuringAPushLeavesNothingPartialAndTheUploadResumes) {
  BerthInstance berth;
  std::string blob(48 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>((i * 2654435761u) >> 13);
  auto digest = sha256_digest(blob);

  auto start = http_request("127.0.0.1", berth.port(), "POST", "/v2/api/big/blobs/uploads/");
  ASSERT_EQ(start->status, 202);
  auto location = *start->header("Location");

  // Stream the blob in one PATCH, and kill berth when about half of it has been received.
  RawConnection pusher("127.0.0.1", berth.port());
  pusher.send("PATCH " + location + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(blob.size()) +
              "\r\n\r\n");
  std::size_t sent = 0;
  auto upload_file = berth.data_dir() / "registry" / "uploads" / location.substr(location.rfind('/') + 1) / "data";
  while (sent < blob.size() / 2) {
    pusher.send(std::string_view(blob).substr(sent, 1 << 20));
    sent += 1 << 20;
  }
  ASSERT_TRUE(eventually(10s, [&] { return std::filesystem::file_size(upload_file) > 0; }));
  berth.kill_hard();

  berth.start();
  // Nothing of the interrupted blob is visible, and the registry is intact.
  EXPECT_EQ(http_request("127.0.0.1", berth.port(), "HEAD", "/v2/api/big/blobs/" + digest)->status, 404);
  auto fsck = berth.command({"registry", "fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck.output;

  // The session survived the restart: continue where the server says it stopped.
  auto status = http_request("127.0.0.1", berth.port(), "GET", location);
  ASSERT_EQ(status->status, 204);
  auto range = *status->header("Range");
  std::uint64_t received = std::stoull(range.substr(range.find('-') + 1)) + 1;
  ASSERT_GT(received, 0u);
  ASSERT_LE(received, sent);
  auto rest = blob.substr(received);
  auto finish = http_request("127.0.0.1", berth.port(), "PUT", location + "?digest=" + digest, rest,
                             {{"Content-Range", std::to_string(received) + "-" + std::to_string(blob.size() - 1)}});
  ASSERT_TRUE(finish);
  EXPECT_EQ(finish->status, 201) << finish->body;
  auto head = http_request("127.0.0.1", berth.port(), "HEAD", "/v2/api/big/blobs/" + digest);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("Content-Length"), std::to_string(blob.size()));
  EXPECT_EQ(berth.command({"registry", "fsck"}).exit_code, 0);
}

TEST(RegistryCrash, KillDuringAMonolithicPushThenPushAgain) {
  BerthInstance berth;
  std::string blob(32 * 1024 * 1024, 'm');
  auto digest = sha256_digest(blob);
  RawConnection pusher("127.0.0.1", berth.port());
  pusher.send("POST /v2/api/mono/blobs/uploads/?digest=" + digest + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
              std::to_string(blob.size()) + "\r\n\r\n" + blob.substr(0, blob.size() / 2));
  ASSERT_TRUE(eventually(10s, [&] {
    for (auto const& entry : std::filesystem::recursive_directory_iterator(berth.data_dir() / "registry" / "uploads"))
      if (entry.is_regular_file() && entry.path().filename() == "data" && entry.file_size() > 0) return true;
    return false;
  }));
  berth.kill_hard();
  berth.start();
  EXPECT_EQ(http_request("127.0.0.1", berth.port(), "HEAD", "/v2/api/mono/blobs/" + digest)->status, 404);
  auto again = http_request("127.0.0.1", berth.port(), "POST", "/v2/api/mono/blobs/uploads/?digest=" + digest, blob);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 201) << again->body;
  auto fsck = berth.command({"registry", "fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
}

// A full volume, simulated with a soft file size limit on the running berth (prlimit; the write
// fails with EFBIG as it would with ENOSPC): the push gets
// a clear 507, nothing is lost, and the upload resumes once there is room again.
TEST(RegistryFull, APushIntoAFullVolumeFailsClearlyAndResumes) {
  BerthInstance berth;
  std::string blob(6 * 1024 * 1024, 'f');
  for (std::size_t i = 0; i < blob.size(); i += 4096) blob[i] = static_cast<char>(i >> 12);
  auto digest = sha256_digest(blob);
  auto pid = std::to_string(berth.process().pid());
  ASSERT_EQ(run({"/usr/bin/prlimit", "--pid", pid, "--fsize=2097152:"}).exit_code, 0);

  auto location = *http_request("127.0.0.1", berth.port(), "POST", "/v2/api/full/blobs/uploads/")->header("Location");
  auto refused = http_request("127.0.0.1", berth.port(), "PATCH", location, blob);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 507);
  EXPECT_NE(refused->body.find("the registry's storage is full"), std::string::npos) << refused->body;
  EXPECT_TRUE(berth.process().running());
  EXPECT_NE(berth.process().output().find("File too large"), std::string::npos);

  ASSERT_EQ(run({"/usr/bin/prlimit", "--pid", pid, "--fsize=unlimited:"}).exit_code, 0);
  auto status = http_request("127.0.0.1", berth.port(), "GET", location);
  ASSERT_EQ(status->status, 204);
  auto range = *status->header("Range");
  std::uint64_t kept = std::stoull(range.substr(range.find('-') + 1)) + 1;
  EXPECT_LE(kept, 2u * 1024 * 1024);
  auto finish = http_request("127.0.0.1", berth.port(), "PUT", location + "?digest=" + digest, blob.substr(kept),
                             {{"Content-Range", std::to_string(kept) + "-" + std::to_string(blob.size() - 1)}});
  ASSERT_TRUE(finish);
  EXPECT_EQ(finish->status, 201) << finish->body;
  EXPECT_EQ(berth.command({"registry", "fsck"}).exit_code, 0);
}

}  // namespace
}  // namespace berth::testing
