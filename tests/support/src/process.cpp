#include "berth/testing/process.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "berth/testing/eventually.hpp"
#include "berth/testing/temp_dir.hpp"

extern char** environ;

namespace berth::testing {
namespace {

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Process::Process(std::vector<std::string> argv, std::filesystem::path log_file,
                 std::optional<std::filesystem::path> work_dir, std::vector<std::string> extra_env)
    : log_file_(std::move(log_file)) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry; ++entry) env.emplace_back(*entry);
  for (auto& extra : extra_env) env.push_back(std::move(extra));
  auto argv_ptrs = pointers(argv);
  auto env_ptrs = pointers(env);
  int fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + log_file_.string() + ": " + std::strerror(errno));
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid_ == 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    int null_fd = ::open("/dev/null", O_RDONLY);
    ::dup2(null_fd, 0);
    if (work_dir && ::chdir(work_dir->c_str()) != 0) _exit(126);
    ::execve(argv_ptrs[0], argv_ptrs.data(), env_ptrs.data());
    _exit(127);
  }
  ::close(fd);
}

Process::~Process() {
  if (!exit_code_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

std::string Process::output() const {
  std::ifstream in(log_file_, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<std::string> Process::wait_for_output(std::string const& text, std::chrono::milliseconds timeout) {
  std::optional<std::string> found;
  eventually(timeout, [&] {
    std::istringstream lines(output());
    for (std::string line; std::getline(lines, line);)
      if (line.find(text) != std::string::npos) {
        found = line;
        return true;
      }
    return !running();
  });
  return found;
}

void Process::send_signal(int signal_number) const {
  if (!exit_code_) ::kill(pid_, signal_number);
}

bool Process::running() {
  if (exit_code_) return false;
  int status = 0;
  pid_t done = ::waitpid(pid_, &status, WNOHANG);
  if (done == pid_) {
    exit_code_ = decode_status(status);
    return false;
  }
  return true;
}

std::optional<int> Process::wait_exit(std::chrono::milliseconds timeout) {
  eventually(timeout, [&] { return !running(); });
  return exit_code_;
}

long Process::rss_kib() const {
  std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  return 0;
}

RunResult run(std::vector<std::string> argv, std::vector<std::string> extra_env,
              std::optional<std::filesystem::path> work_dir) {
  TempDir scratch;
  Process process(std::move(argv), scratch.path() / "output", std::move(work_dir), std::move(extra_env));
  auto code = process.wait_exit(std::chrono::seconds(60));
  if (!code) throw std::runtime_error("command did not finish within 60 s");
  return {*code, process.output()};
}

}  // namespace berth::testing
