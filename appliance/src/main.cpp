// The `berth` executable: everything happens in the appliance library.
#include "berth/appliance/cli.hpp"

int main(int argc, char** argv) {
  return berth::appliance::run_cli(argc, argv);
}
