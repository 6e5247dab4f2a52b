// The project's weights file: safetensors with the SsdConfig (architecture, labels,
// normalisation) as JSON in the metadata key "ssd.config", plus every parameter and buffer.
// Python: safetensors.torch.load_file(path) and safe_open(path, "pt").metadata().
#pragma once

#include <string>

#include <torch/types.h>

#include "config.h"
#include "ssd_model.h"

namespace ssd {

inline constexpr const char* kConfigKey = "ssd.config";
inline constexpr const char* kFormatKey = "format";
inline constexpr const char* kFormatValue = "gst-ssd/1";

void save_weights(const std::string& path, Ssd& model);

// Reads the configuration only (cheap: header only). Throws ssd::Error.
SsdConfig read_weights_config(const std::string& path);

// Builds the model the file describes and loads every tensor into it, checking every name,
// shape and dtype; the first mismatch throws ssd::Error naming the file and the tensor.
// The model is returned in eval mode on `device`.
Ssd load_weights(const std::string& path, const torch::Device& device = torch::kCPU);

// Loads the tensors of `path` into an existing model of the same architecture.
void load_weights_into(const std::string& path, Ssd& model);

// Imports torchvision ImageNet ResNet weights into model->body by name: a state dict saved by
// torch.save(dict(...)) or a safetensors file. Ignores fc.*, tolerates missing
// num_batches_tracked; any other missing or mis-shaped tensor throws ssd::Error.
// Returns the number of tensors imported.
int import_imagenet_body(const std::string& path, Ssd& model);

}  // namespace ssd
