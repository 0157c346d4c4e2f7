// Temporary: subcommands not written yet (removed once they exist).
#include "tinyds/cli/commands.h"
#include "tinyds/core/error.h"
namespace tinyds {
int cmd_bench(int, char**) { throw_error("bench: not written yet"); }
}  // namespace tinyds
