#include "safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "error.h"

namespace ssd {

namespace {

constexpr uint64_t kMaxHeader = 100u << 20;   // the reference implementation's limit

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

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(path, "read error");
  return ss.str();
}

uint64_t read_u64le(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

nlohmann::ordered_json parse_header(const std::string& path, const std::string& bytes,
                                    uint64_t* header_len) {
  if (bytes.size() < 8) fail(path, "truncated: " + std::to_string(bytes.size()) +
                                       " bytes, not a safetensors file");
  const uint64_t n = read_u64le(bytes.data());
  if (n > kMaxHeader || n + 8 > bytes.size())
    fail(path, "not a safetensors file or truncated: header length " + std::to_string(n) +
                   " does not fit in the file's " + std::to_string(bytes.size()) + " bytes");
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(bytes.begin() + 8, bytes.begin() + 8 + n);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("corrupt safetensors header (not JSON): ") + e.what());
  }
  if (!header.is_object()) fail(path, "corrupt safetensors header: not a JSON object");
  *header_len = n;
  return header;
}

std::map<std::string, std::string> parse_metadata(const std::string& path,
                                                  const nlohmann::ordered_json& header) {
  std::map<std::string, std::string> meta;
  auto it = header.find("__metadata__");
  if (it == header.end()) return meta;
  if (!it->is_object()) fail(path, "corrupt safetensors header: __metadata__ is not an object");
  for (auto m = it->begin(); m != it->end(); ++m) {
    if (!m.value().is_string())
      fail(path, "corrupt safetensors header: __metadata__['" + m.key() + "'] is not a string");
    meta[m.key()] = m.value().get<std::string>();
  }
  return meta;
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
    char len[8];
    uint64_t n = h.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    out.write(len, 8);
    out.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (const auto& t : data)
      out.write(static_cast<const char*>(t.data_ptr()),
                static_cast<std::streamsize>(t.numel() * t.element_size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw Error(path + ": write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot rename the temporary file into place: " + std::strerror(errno));
  }
}

std::map<std::string, std::string> read_safetensors_metadata(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const auto size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  char len[8];
  if (size < 8 || !in.read(len, 8)) fail(path, "truncated: not a safetensors file");
  const uint64_t n = read_u64le(len);
  if (n > kMaxHeader || n + 8 > size)
    fail(path, "not a safetensors file or truncated: header length " + std::to_string(n) +
                   " does not fit in the file's " + std::to_string(size) + " bytes");
  std::string bytes(8 + n, '\0');
  std::memcpy(bytes.data(), len, 8);
  if (!in.read(bytes.data() + 8, static_cast<std::streamsize>(n))) fail(path, "read error");
  uint64_t header_len = 0;
  return parse_metadata(path, parse_header(path, bytes, &header_len));
}

SafeTensors read_safetensors(const std::string& path) {
  const std::string bytes = read_all(path);
  uint64_t header_len = 0;
  auto header = parse_header(path, bytes, &header_len);
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = bytes.size() - data_start;
  SafeTensors out;
  out.metadata = parse_metadata(path, header);

  struct Range { uint64_t begin, end; std::string name; };
  std::vector<Range> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") continue;
    const auto& e = it.value();
    const std::string where = "tensor '" + name + "'";
    torch::ScalarType type{};
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;
    try {
      const auto dt = e.at("dtype").get<std::string>();
      auto d = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                            [&](const DtypeName& x) { return dt == x.name; });
      if (d == std::end(kDtypes)) fail(path, where + " has unsupported dtype '" + dt + "'");
      type = d->type;
      shape = e.at("shape").get<std::vector<int64_t>>();
      const auto offs = e.at("data_offsets").get<std::vector<uint64_t>>();
      if (offs.size() != 2) fail(path, where + ": data_offsets must have 2 entries");
      begin = offs[0];
      end = offs[1];
    } catch (const nlohmann::json::exception& ex) {
      fail(path, "corrupt safetensors header at " + where + ": " + ex.what());
    }
    uint64_t numel = 1;
    for (auto s : shape) {
      if (s < 0) fail(path, where + " has a negative dimension");
      numel *= static_cast<uint64_t>(s);
    }
    const uint64_t nbytes = numel * c10::elementSize(type);
    if (begin > end || end > data_size)
      fail(path, "truncated or corrupt: " + where + " spans bytes [" + std::to_string(begin) +
                     ", " + std::to_string(end) + ") of a " + std::to_string(data_size) +
                     "-byte data section");
    if (end - begin != nbytes)
      fail(path, "corrupt: " + where + " has " + std::to_string(end - begin) +
                     " bytes but its dtype and shape need " + std::to_string(nbytes));
    auto t = torch::empty(shape, torch::TensorOptions().dtype(type));
    if (nbytes) std::memcpy(t.data_ptr(), bytes.data() + data_start + begin, nbytes);
    out.tensors.emplace_back(name, t);
    ranges.push_back({begin, end, name});
  }
  // The format forbids overlaps and holes: the tensors tile the data section exactly.
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
  uint64_t pos = 0;
  for (const auto& r : ranges) {
    if (r.begin != pos)
      fail(path, "corrupt: tensor '" + r.name + "' starts at byte " + std::to_string(r.begin) +
                     " where " + std::to_string(pos) + " was expected (overlap or hole)");
    pos = r.end;
  }
  if (pos != data_size)
    fail(path, "corrupt: " + std::to_string(data_size - pos) +
                   " trailing bytes after the last tensor");
  return out;
}

}  // namespace ssd
