// The command-line conventions ssd-train and ssd-clip share (CLI11): what a script or a Makefile
// passes by mistake is an error naming it, not taken for something else. Header-only (CLI11 is).
#pragma once

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

namespace ssdtrain {

// An empty path (an unset make variable, say) is an error, not the default it would stand for
// (eval --weights "" evaluated the shipped model).
inline CLI::Validator not_empty_path() {
  return CLI::Validator([](std::string& v) { return v.empty() ? std::string("an empty path") : std::string(); },
                        "PATH");
}

// A seed: an integer in [0, 2^64 - 1] (CLI11 took -1 and values past it, wrapped or clamped).
inline CLI::Validator seed_value() {
  return CLI::Validator(
      [](std::string& v) {
        errno = 0;
        char* end = nullptr;
        (void)std::strtoull(v.c_str(), &end, 10);
        if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || *end != '\0' || errno == ERANGE)
          return "must be an integer in [0, 18446744073709551615] (" + v + " given)";
        return std::string();
      },
      "UINT");
}

// Each option of one value given again takes the last (a Makefile's defaults, then the target's
// own: it was "At Most 1 required but received 2"); lists add up.
inline void take_last_values(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    for (CLI::Option* o : sub->get_options())
      if (o->get_expected_max() == 1) o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

// A misspelt command is named, with the list of them (CLI11 said only "A subcommand is
// required"): the exit status to return then, else 0.
inline int unknown_command_status(CLI::App& app, int argc, char** argv, const char* tool) {
  if (argc < 2 || argv[1][0] == '-') return 0;
  std::string commands;
  bool known = false;
  for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    known = known || sub->check_name(argv[1]);
    commands += (commands.empty() ? "" : ", ") + sub->get_name();
  }
  if (known) return 0;
  std::cerr << tool << ": unknown command '" << argv[1] << "' (commands: " << commands << ")\n";
  return static_cast<int>(CLI::ExitCodes::ExtrasError);
}

}  // namespace ssdtrain
