// Where the shipped default model is: what ssddetect's `model` property and ssd-train's
// `--weights` default to. LibTorch-free.
#pragma once

#include <string>

namespace ssd {

// $SSD_DEFAULT_MODEL when set; else, for a binary that runs from a meson build tree (the plugin,
// ssd-train or a test, as scripts/demo.sh runs them), the build tree's copy of the source tree's
// models/ssd-default.safetensors; else the installed copy (<datadir>/gst-ssd/models/...). An
// installed binary never looks in a build or source tree, which may be a stale one or another
// machine's path.
std::string default_model_path();

// What default_model_path() gives, $SSD_DEFAULT_MODEL aside, for a binary at `binary` (an
// absolute path): the build tree's copy when a folder above it holds meson-private/ and models/
// with the model in it, else the installed copy.
std::string default_model_path_for(const std::string& binary);

}  // namespace ssd
