#include "safetensors_header.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "bounded_json.h"
#include "error.h"

namespace ssd {

namespace {

constexpr uint64_t kMaxHeader = 100u << 20;   // the reference implementation's limit

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what);
}

// A non-negative JSON integer: nlohmann's get<>() of integers truncates 2.5 and converts
// 2.4e58 with undefined behaviour (found by fuzz/fuzz_safetensors.cpp).
uint64_t get_size(const std::string& path, const std::string& where, const nlohmann::ordered_json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  fail(path, where + ": sizes and offsets must be non-negative integers, not " + json_excerpt(v));
}

SafeTensorsEntry parse_entry(const std::string& path, const std::string& name,
                             const nlohmann::ordered_json& e) {
  const std::string where = "tensor '" + name + "'";
  SafeTensorsEntry t;
  t.name = name;
  try {
    if (!e.is_object()) fail(path, "corrupt safetensors header: " + where + " is not an object");
    t.dtype = e.at("dtype").get<std::string>();
    const auto& shape = e.at("shape");
    const auto& offs = e.at("data_offsets");
    if (!shape.is_array()) fail(path, where + ": shape is not an array: " + json_excerpt(shape));
    if (!offs.is_array() || offs.size() != 2)
      fail(path, where + ": data_offsets must have 2 entries: " + json_excerpt(offs));
    for (const auto& d : shape) {
      const uint64_t s = get_size(path, where, d);
      if (s > uint64_t(std::numeric_limits<int64_t>::max()))
        fail(path, where + " has a dimension out of range: " + json_excerpt(d));
      t.shape.push_back(static_cast<int64_t>(s));
    }
    t.begin = get_size(path, where, offs[0]);
    t.end = get_size(path, where, offs[1]);
  } catch (const nlohmann::json::exception& ex) {
    fail(path, "corrupt safetensors header at " + where + ": " + ex.what());
  }
  const size_t elem = safetensors_dtype_size(t.dtype);
  if (elem == 0) fail(path, where + " has unsupported dtype '" + t.dtype + "'");
  // The byte count, refusing shapes whose element count overflows (they cannot match the
  // file's bytes, but a wrapped product could).
  uint64_t nbytes = std::find(t.shape.begin(), t.shape.end(), int64_t(0)) != t.shape.end() ? 0 : elem;
  for (const int64_t s : t.shape) {
    if (nbytes == 0) break;
    if (nbytes > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(s))
      fail(path, where + " has a shape too large for any file");
    nbytes *= static_cast<uint64_t>(s);
  }
  if (t.begin > t.end) fail(path, "corrupt: " + where + " ends before it begins");
  if (t.end - t.begin != nbytes)
    fail(path, "corrupt: " + where + " has " + std::to_string(t.end - t.begin) +
                   " bytes but its dtype and shape need " + std::to_string(nbytes));
  return t;
}

}  // namespace

uint64_t SafeTensorsEntry::elements() const {
  uint64_t n = 1;
  for (const int64_t s : shape) n *= static_cast<uint64_t>(s);
  return n;
}

size_t safetensors_dtype_size(const std::string& dtype) {
  static const std::map<std::string, size_t> sizes = {
      {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F64", 8}, {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},   {"U8", 1},  {"BOOL", 1}};
  const auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

SafeTensorsHeader read_safetensors_header(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, "is a directory, not a weights file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const auto end = in.tellg();
  // (A pipe, <(cat file), has no size to seek to: it read as "truncated: 18446744073709551615
  // bytes". The tools refuse a FIFO before opening it, which would block until a writer came.)
  if (end < 0) fail(path, "cannot seek in it: not a regular file (a pipe, a FIFO?): give the weights file itself");
  const auto size = static_cast<uint64_t>(end);
  in.seekg(0);
  unsigned char len[8];
  if (size < 8 || !in.read(reinterpret_cast<char*>(len), 8))
    fail(path, "truncated: " + std::to_string(size) + " bytes, not a safetensors file");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  if (n > size - 8) {   // (size >= 8 here; n + 8 could wrap)
    // A pickle's first bytes, 0x80 and its protocol, and then its opcodes read as a length that
    // does not fit: PyTorch's legacy torch.save format (its zip format starts with "PK"). (Only
    // then: a safetensors header of 1152 bytes starts with 0x80 0x04 too.)
    if (len[0] == 0x80 && len[1] >= 2 && len[1] <= 5)
      fail(path, "a Python pickle (PyTorch's legacy torch.save format?), not a safetensors file: save the state "
                 "dict with safetensors.torch.save_file");
    fail(path, "not a safetensors file or truncated: header length " + std::to_string(n) +
                   " does not fit in the file's " + std::to_string(size) + " bytes");
  }
  if (n > kMaxHeader)   // (it was said not to fit, where it did)
    fail(path, "header length " + std::to_string(n) + " is over the " + std::to_string(kMaxHeader) +
                   " bytes (100 MiB) safetensors allows");
  std::string text(n, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(n))) fail(path, "read error");
  nlohmann::ordered_json header;
  try {
    header = parse_bounded_json<nlohmann::ordered_json>(text, path + ": corrupt safetensors header");
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("corrupt safetensors header (not JSON): ") + e.what());
  }
  if (!header.is_object()) fail(path, "corrupt safetensors header: not a JSON object");

  SafeTensorsHeader h;
  h.data_start = 8 + n;
  h.data_size = size - h.data_start;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) fail(path, "corrupt safetensors header: __metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m.value().is_string())
          fail(path, "corrupt safetensors header: __metadata__['" + m.key() + "'] is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    h.tensors.push_back(parse_entry(path, it.key(), it.value()));
    const auto& t = h.tensors.back();
    if (t.end > h.data_size)
      fail(path, "truncated or corrupt: tensor '" + t.name + "' spans bytes [" + std::to_string(t.begin) +
                     ", " + std::to_string(t.end) + ") of a " + std::to_string(h.data_size) +
                     "-byte data section");
  }
  // The format forbids overlaps and holes: the tensors tile the data section exactly.
  std::vector<const SafeTensorsEntry*> order;
  for (const auto& t : h.tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const SafeTensorsEntry* a, const SafeTensorsEntry* b) {
    return a->begin < b->begin || (a->begin == b->begin && a->end < b->end);
  });
  uint64_t pos = 0;
  for (const auto* t : order) {
    if (t->begin != pos)
      fail(path, "corrupt: tensor '" + t->name + "' starts at byte " + std::to_string(t->begin) +
                     " where " + std::to_string(pos) + " was expected (overlap or hole)");
    pos = t->end;
  }
  if (pos != h.data_size)
    fail(path, "corrupt: " + std::to_string(h.data_size - pos) + " trailing bytes after the last tensor");
  return h;
}

}  // namespace ssd
