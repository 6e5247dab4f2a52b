// `ssd-train info`: what a weights file holds, read from its safetensors header only (no
// tensor data, no LibTorch).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "../model/config.h"

namespace ssdtrain {

struct WeightsInfo {
  ssd::SsdConfig config;
  std::map<std::string, std::string> metadata;
  int tensor_count = 0;
  int64_t element_count = 0;        // sum over tensors of their element counts
  int64_t parameter_like = 0;       // elements of tensors not named *running_* / *num_batches*
  std::map<std::string, int> dtypes;   // dtype -> number of tensors
  uint64_t file_bytes = 0;
};

// Throws ssd::Error naming the file (missing, not safetensors, not an SSD weights file).
WeightsInfo read_weights_info(const std::string& path);

// Human-readable summary (architecture, labels, tensor counts).
std::string format_weights_info(const std::string& path, const WeightsInfo& info);

}  // namespace ssdtrain
