#include "model_info.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../model/error.h"

namespace ssdtrain {

WeightsInfo read_weights_info(const std::string& path) {
  auto fail = [&](const std::string& why) { throw ssd::Error(path + ": " + why); };
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(std::string("cannot open: ") + std::strerror(errno));
  WeightsInfo info;
  std::error_code ec;
  info.file_bytes = std::filesystem::file_size(path, ec);
  if (ec) fail("cannot stat: " + ec.message());
  unsigned char len[8];
  if (info.file_bytes < 8 || !in.read(reinterpret_cast<char*>(len), 8))
    fail("truncated: not a safetensors file");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  if (n > (100u << 20) || n + 8 > info.file_bytes)
    fail("not a safetensors file: header length " + std::to_string(n) + " does not fit in " +
         std::to_string(info.file_bytes) + " bytes");
  std::string header(n, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(n))) fail("read error");
  nlohmann::json j = nlohmann::json::parse(header, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail("not a safetensors file: bad JSON header");
  try {
    for (const auto& [name, v] : j.items()) {
      if (name == "__metadata__") {
        for (const auto& [k, s] : v.items()) info.metadata[k] = s.get<std::string>();
        continue;
      }
      ++info.tensor_count;
      int64_t e = 1;
      for (const auto& d : v.at("shape")) e *= d.get<int64_t>();
      info.element_count += e;
      if (name.find("running_") == std::string::npos &&
          name.find("num_batches_tracked") == std::string::npos)
        info.parameter_like += e;
      ++info.dtypes[v.at("dtype").get<std::string>()];
    }
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("bad safetensors header: ") + e.what());
  }
  auto it = info.metadata.find("ssd.config");
  if (it == info.metadata.end()) fail("not an SSD weights file (no 'ssd.config' metadata)");
  try {
    info.config = ssd::SsdConfig::from_json_string(it->second);
  } catch (const std::exception& e) {
    fail(e.what());
  }
  return info;
}

std::string format_weights_info(const std::string& path, const WeightsInfo& info) {
  const auto& c = info.config;
  std::ostringstream os;
  os << "file:          " << path << " (" << info.file_bytes << " bytes)\n";
  auto f = info.metadata.find("format");
  os << "format:        " << (f == info.metadata.end() ? "?" : f->second) << "\n";
  os << "body:          " << c.body << "\n";
  os << "input size:    " << c.input_size << "x" << c.input_size << "\n";
  os << "grids:        ";
  for (int g : c.grids) os << " " << g;
  if (c.has_fine_grid()) os << " (the first from the body's stride-16 features)";
  os << "\nzooms:        ";
  for (double z : c.zooms) os << " " << z;
  os << "\nratios (w,h): ";
  for (const auto& r : c.ratios) os << " (" << r.w << "," << r.h << ")";
  os << "\nanchors:       " << c.num_anchors() << " (" << c.anchors_per_cell() << " per cell)\n";
  os << "head channels: " << c.head_channels << ", dropout " << c.dropout << "\n";
  os << "mean / std:    " << c.mean[0] << " " << c.mean[1] << " " << c.mean[2] << " / " << c.std[0]
     << " " << c.std[1] << " " << c.std[2] << "\n";
  os << "classes (" << c.labels.size() << "):";
  for (size_t i = 0; i < c.labels.size(); ++i) os << (i ? ", " : " ") << c.labels[i];
  os << "\ntensors:       " << info.tensor_count << " (" << info.element_count << " values, "
     << info.parameter_like << " excluding BatchNorm statistics;";
  for (const auto& [d, k] : info.dtypes) os << " " << d << " x" << k;
  os << ")\n";
  return os.str();
}

}  // namespace ssdtrain
