#include "safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "error.h"
#include "safetensors_header.h"

namespace ssd {

namespace {

struct DtypeName {
  torch::ScalarType type;
  const char* name;
};
const DtypeName kDtypes[] = {
    {torch::kFloat32, "F32"}, {torch::kFloat16, "F16"}, {torch::kBFloat16, "BF16"},
    {torch::kFloat64, "F64"}, {torch::kInt64, "I64"},   {torch::kInt32, "I32"},
    {torch::kInt16, "I16"},   {torch::kInt8, "I8"},     {torch::kUInt8, "U8"},
    {torch::kBool, "BOOL"},
};

const char* dtype_name(torch::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.name;
  throw Error(std::string("safetensors: unsupported dtype ") + c10::toString(t));
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what);
}

}  // namespace

void write_safetensors(const std::string& path, const SafeTensors& content) {
  nlohmann::ordered_json header;
  if (!content.metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : content.metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : content.tensors) {
    if (name == "__metadata__" || header.contains(name))
      throw Error(path + ": duplicate or reserved tensor name '" + name + "'");
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = t.numel() * t.element_size();
    header[name] = {{"dtype", dtype_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    data.push_back(t);
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');   // align the data to 8 bytes, as the reference does
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot write: " + std::strerror(errno));
    errno = 0;   // (what a failed write or close below sets is its reason; nothing earlier's)
    char len[8];
    uint64_t n = h.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    out.write(len, 8);
    out.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (const auto& t : data)
      out.write(static_cast<const char*>(t.data_ptr()),
                static_cast<std::streamsize>(t.numel() * t.element_size()));
    out.close();   // (a file system may report a full disk only when the file is closed)
    if (!out) {
      const int err = errno;   // (ENOSPC, EIO... as the failed write or close left it)
      std::remove(tmp.c_str());
      throw Error(path + ": write failed" + (err ? std::string(": ") + std::strerror(err) : std::string()));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot rename the temporary file into place: " + std::strerror(errno));
  }
}

std::map<std::string, std::string> read_safetensors_metadata(const std::string& path) {
  return read_safetensors_header(path).metadata;
}

SafeTensors read_safetensors(const std::string& path) {
  const SafeTensorsHeader header = read_safetensors_header(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::string data(header.data_size, '\0');
  in.seekg(static_cast<std::streamoff>(header.data_start));
  if (!in.read(data.data(), static_cast<std::streamsize>(data.size()))) fail(path, "read error");
  SafeTensors out;
  out.metadata = header.metadata;
  for (const auto& e : header.tensors) {
    const auto d = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                                [&](const DtypeName& x) { return e.dtype == x.name; });
    if (d == std::end(kDtypes)) fail(path, "tensor '" + e.name + "' has unsupported dtype '" + e.dtype + "'");
    torch::Tensor t;
    try {
      t = torch::empty(e.shape, torch::TensorOptions().dtype(d->type));
    } catch (const std::exception& ex) {
      fail(path, "tensor '" + e.name + "': cannot hold its shape: " + ex.what());
    }
    if (e.end > e.begin) std::memcpy(t.data_ptr(), data.data() + e.begin, e.end - e.begin);
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

}  // namespace ssd
