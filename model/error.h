// The one exception type the model library throws for bad input (files, configurations,
// frames). Callers at API boundaries (GStreamer vfuncs, the CLI) catch std::exception.
#pragma once

#include <stdexcept>
#include <string>

namespace ssd {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace ssd
