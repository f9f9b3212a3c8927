// pagedattn: command-line entry point. Errors go to stderr; exit codes: 0 ok (--help included), 1 runtime
// error, 2 bad usage or bad arguments (CLI11's parse and validation errors included).
#include <cstdio>
#include <map>

#include "commands.h"
#include "pagedattn/error.h"

int main(int argc, char** argv) {
  CLI::App app{"pagedattn: paged-attention kernels and an LLM engine over a paged KV cache"};
  app.require_subcommand(1);
  std::map<CLI::App*, pagedattn::cli::Command> commands;
  auto add = [&](pagedattn::cli::Command (*make)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    pagedattn::cli::Command run = make(app);
    commands[app.get_subcommands({})[before]] = std::move(run);
  };
  add(pagedattn::cli::add_generate);
  add(pagedattn::cli::add_demo);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // prints the help or the error
  }
  try {
    for (auto& [sub, run] : commands)
      if (sub->parsed()) return run();
  } catch (const pagedattn::Error& e) {
    std::fprintf(stderr, "pagedattn: error: %s\n", e.what());
    return e.kind() == pagedattn::ErrorKind::runtime || e.kind() == pagedattn::ErrorKind::out_of_memory ? 1 : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pagedattn: error: %s\n", e.what());
    return 1;
  }
  return 2;
}
