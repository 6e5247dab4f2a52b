// Whether C++ exceptions can be caught in this process.
//
// GStreamer links libunwind, whose _Unwind_* functions have libgcc_s's names but not its data
// layout. A library loaded once libunwind is in the global scope (GStreamer loaded with
// RTLD_GLOBAL, as PyGObject loads it) binds its _Unwind_Resume to libunwind's; libstdc++ loaded
// before (by a Python module using C++, such as PIL or torch, imported before GStreamer) threw
// through libgcc_s's. An exception passing through this plugin's or LibTorch's frames is then
// resumed by the other unwinder, and the process aborts (or crashes) instead of catching it:
// ssddetect given a bad property value or model file took the application down.
#pragma once

#include <string>

namespace gstssd {

// Empty when libstdc++ raises exceptions with the unwinder this plugin resumes them with (or
// when that cannot be told); else what is wrong and what to do, for a warning.
std::string mixed_unwinders();

}  // namespace gstssd
