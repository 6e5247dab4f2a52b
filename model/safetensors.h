// The safetensors file layout (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__:
// {str: str}}, then the raw little-endian tensor bytes. Reading never executes anything from the
// file and checks every offset against the file size (the header: safetensors_header.h).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace ssd {

struct SafeTensors {
  std::map<std::string, std::string> metadata;
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  // in file order
};

// Writes atomically (temporary file + rename). Tensors are written from CPU, contiguous.
void write_safetensors(const std::string& path, const SafeTensors& content);
// Throws ssd::Error naming the file and what is wrong (truncated, bad header, bad offsets...).
SafeTensors read_safetensors(const std::string& path);
// Just the metadata (reads only the header).
std::map<std::string, std::string> read_safetensors_metadata(const std::string& path);

}  // namespace ssd
