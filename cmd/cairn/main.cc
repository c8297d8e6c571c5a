// The `cairn` executable: everything lives in cairn_cli (src/cairn/cli/).
#include "cairn/cli/main.h"

int main(int argc, char** argv) { return cairn::cli::Main(argc, argv); }
