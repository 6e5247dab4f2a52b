// The safetensors header (https://github.com/huggingface/safetensors): an 8-byte little-endian
// length, then a JSON object {name: {dtype, shape, data_offsets}, __metadata__: {str: str}},
// then the tensors' bytes. Read and checked here without LibTorch (safetensors.h reads the
// tensors on top of it; `ssd-train info` reads only this).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ssd {

struct SafeTensorsEntry {
  std::string name;
  std::string dtype;             // "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;   // byte range in the data section
  uint64_t elements() const;     // product of the shape (checked not to overflow when read)
};

struct SafeTensorsHeader {
  std::map<std::string, std::string> metadata;
  std::vector<SafeTensorsEntry> tensors;   // in file order
  uint64_t data_start = 0;                 // file offset of the data section
  uint64_t data_size = 0;                  // its length: the file's bytes after the header
};

// Bytes per element of a safetensors dtype name; 0 for a name this reader does not support.
size_t safetensors_dtype_size(const std::string& dtype);

// Reads only the header of the file and checks it against the file's size: a JSON object of
// string metadata and tensor entries with a supported dtype, non-negative integer shapes and
// offsets (no overflowing byte counts), each entry's byte count matching its dtype and shape,
// the entries tiling the data section exactly. Throws ssd::Error naming the file and what is
// wrong (missing, truncated, not JSON, which tensor...).
SafeTensorsHeader read_safetensors_header(const std::string& path);

}  // namespace ssd
