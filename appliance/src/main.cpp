// The `berth` executable: everything happens in the appliance library.
#include <csignal>

#include "berth/appliance/cli.hpp"

int main(int argc, char** argv) {
  // A client that goes away mid-download must cost its connection only: sendfile() to a closed
  // socket raises SIGPIPE, whose default action ends the whole process without a word. Ignored,
  // the write fails with EPIPE and the connection is closed like any other.
  std::signal(SIGPIPE, SIG_IGN);
  return berth::appliance::run_cli(argc, argv);
}
