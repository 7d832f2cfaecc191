#include "berth/postgres/wal_archive.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <vector>

#include "berth/core/human.hpp"
#include "berth/core/random.hpp"

namespace berth::postgres {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t chunk = 1 << 20;

bool all_hex(std::string const& text, std::size_t from, std::size_t count) {
  if (from + count > text.size()) return false;
  for (std::size_t i = from; i < from + count; ++i) {
    char const c = text[i];
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

class Fd {
public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd const&) = delete;
  Fd& operator=(Fd const&) = delete;
  int get() const { return fd_; }

private:
  int fd_;
};

[[noreturn]] void fail(std::string const& what, fs::path const& path, int error) {
  std::string message = "cannot archive WAL: " + what + " " + path.string() + ": " + std::strerror(error);
  if (error == ENOSPC || error == EDQUOT)
    message += "\nHINT: the backup volume is full; free space there (berth backup prune) and the server retries";
  throw Error(message);
}

// Reads up to `size` bytes, retrying short reads; returns how many were read (less only at EOF).
std::size_t read_fully(int fd, char* buffer, std::size_t size, fs::path const& path) {
  std::size_t done = 0;
  while (done < size) {
    auto const got = ::read(fd, buffer + done, size - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail("cannot read", path, errno);
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return done;
}

bool same_content(fs::path const& a, fs::path const& b) {
  Fd fa(::open(a.c_str(), O_RDONLY | O_CLOEXEC));
  if (fa.get() < 0) fail("cannot open", a, errno);
  Fd fb(::open(b.c_str(), O_RDONLY | O_CLOEXEC));
  if (fb.get() < 0) fail("cannot open", b, errno);
  std::vector<char> left(chunk), right(chunk);
  for (;;) {
    auto const got_left = read_fully(fa.get(), left.data(), chunk, a);
    auto const got_right = read_fully(fb.get(), right.data(), chunk, b);
    if (got_left != got_right || std::memcmp(left.data(), right.data(), got_left) != 0) return false;
    if (got_left < chunk) return true;
  }
}

void fsync_directory(fs::path const& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) fail("cannot fsync", dir, errno);
}

}  // namespace

bool is_wal_file_name(std::string const& name) {
  if (name.size() == 24) return all_hex(name, 0, 24);
  if (name.size() == 32 && name.ends_with(".partial")) return all_hex(name, 0, 24);
  if (name.size() == 40 && name.ends_with(".backup"))
    return all_hex(name, 0, 24) && name[24] == '.' && all_hex(name, 25, 8);
  if (name.size() == 16 && name.ends_with(".history")) return all_hex(name, 0, 8);
  return false;
}

Archived archive_wal_file(fs::path const& source, std::string const& name, fs::path const& archive_dir) {
  if (!is_wal_file_name(name))
    throw Error("cannot archive WAL: \"" + name + "\" is not a WAL file name" +
                "\nHINT: archive-wal is run by the PostgreSQL server's archive_command with %p %f");
  auto const target = archive_dir / name;
  if (::access(target.c_str(), F_OK) == 0) {
    if (same_content(source, target)) return Archived::already_present;
    throw Error("cannot archive WAL: " + target.string() + " already exists with different content" +
                "\nHINT: the archive belongs to another cluster or timeline; move it aside (never delete it "
                "before a new base backup) and the server retries");
  }

  Fd in(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) fail("cannot open", source, errno);
  auto const temp = archive_dir / ("." + name + "." + random_hex(6) + ".tmp");
  {
    Fd out(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
    if (out.get() < 0) fail("cannot create", temp, errno);
    struct Remove {
      fs::path path;
      bool keep = false;
      ~Remove() {
        if (!keep) ::unlink(path.c_str());
      }
    } remove_temp{temp};
    std::vector<char> buffer(chunk);
    for (;;) {
      auto const got = read_fully(in.get(), buffer.data(), chunk, source);
      for (std::size_t written = 0; written < got;) {
        auto const put = ::write(out.get(), buffer.data() + written, got - written);
        if (put < 0 && errno == EINTR) continue;
        if (put < 0) fail("cannot write", temp, errno);
        written += static_cast<std::size_t>(put);
      }
      if (got < chunk) break;
    }
    if (::fsync(out.get()) != 0) fail("cannot fsync", temp, errno);
    // link() refuses an existing name: two archivers racing on one segment cannot overwrite.
    if (::link(temp.c_str(), target.c_str()) != 0) {
      if (errno == EEXIST && same_content(source, target)) return Archived::already_present;
      if (errno == EEXIST) throw Error("cannot archive WAL: " + target.string() + " appeared with different content");
      fail("cannot link", target, errno);
    }
  }
  fsync_directory(archive_dir);
  return Archived::copied;
}

fs::path archive_failure_file(fs::path const& socket_dir) {
  return socket_dir / "wal-archive-failure";
}

std::string describe(ArchiveFailure const& failure) {
  return "WAL archiving failing since " + failure.since + ": " + failure.reason + " (" +
         std::to_string(failure.attempts) + (failure.attempts == 1 ? " attempt" : " attempts") + ", the last at " +
         failure.last + ", segment " + failure.wal + ")";
}

namespace {

std::string one_line(std::string text) {
  for (auto& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

}  // namespace

void record_archive_failure(fs::path const& file, std::string const& wal, std::string const& reason) {
  try {
    auto record = read_archive_failure(file).value_or(ArchiveFailure{});
    auto const now = utc_time(std::chrono::system_clock::now());
    if (record.since.empty()) record.since = now;
    record.last = now;
    record.attempts += 1;
    // Written whole under a temporary name and renamed: a reader never sees half a record.
    auto const temp = file.string() + ".tmp-" + random_hex(4);
    {
      std::ofstream out(temp, std::ios::trunc);
      out << "since=" << record.since << "\nlast=" << record.last << "\nattempts=" << record.attempts
          << "\nwal=" << one_line(wal) << "\nreason=" << one_line(reason) << "\n";
      if (!out.flush()) throw std::runtime_error("write");
    }
    fs::rename(temp, file);
  } catch (std::exception const&) {
  }
}

void clear_archive_failure(fs::path const& file) {
  std::error_code ec;
  fs::remove(file, ec);
}

std::optional<ArchiveFailure> read_archive_failure(fs::path const& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  ArchiveFailure record;
  for (std::string line; std::getline(in, line);) {
    auto const equals = line.find('=');
    if (equals == std::string::npos) continue;
    auto const key = line.substr(0, equals);
    auto value = line.substr(equals + 1);
    if (key == "since") record.since = value;
    if (key == "last") record.last = value;
    if (key == "attempts") record.attempts = std::strtoull(value.c_str(), nullptr, 10);
    if (key == "wal") record.wal = value;
    if (key == "reason") record.reason = value;
  }
  if (record.since.empty()) return std::nullopt;
  return record;
}

}  // namespace berth::postgres
