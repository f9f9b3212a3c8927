// Each subcommand of the CLI registers itself on the app and returns the function that runs it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace pagedattn::cli {

using Command = std::function<int()>;  // returns the process exit code

Command add_demo(CLI::App& app);
Command add_generate(CLI::App& app);

}  // namespace pagedattn::cli
