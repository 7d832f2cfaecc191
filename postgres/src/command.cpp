#include "command.hpp"

#include <sys/wait.h>

#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/io.hpp>
#include <boost/process/pipe.hpp>
#include <boost/process/start_dir.hpp>

#include "berth/core/error.hpp"

namespace berth::postgres::detail {

namespace bp = boost::process;

CommandResult run_command(std::filesystem::path const& program, std::vector<std::string> const& args,
                          OsUser const* user) {
  CommandResult result;
  try {
    bp::ipstream output;
    bp::child child(program.string(), bp::args(args), (bp::std_out & bp::std_err) > output, bp::std_in.close(),
                    bp::start_dir("/"), RunAs(user));
    for (std::string line; std::getline(output, line);) result.output += line + "\n";
    child.wait();
    int const status = child.native_exit_code();
    result.exit_code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  } catch (bp::process_error const& e) {
    throw Error("cannot run " + program.string() + ": " + e.what());
  }
  return result;
}

}  // namespace berth::postgres::detail
