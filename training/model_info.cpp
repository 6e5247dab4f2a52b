#include "model_info.h"

#include <sstream>

#include "../model/error.h"
#include "../model/safetensors_header.h"

namespace ssdtrain {

WeightsInfo read_weights_info(const std::string& path) {
  auto fail = [&](const std::string& why) { throw ssd::Error(path + ": " + why); };
  const ssd::SafeTensorsHeader header = ssd::read_safetensors_header(path);   // checked, names the file
  WeightsInfo info;
  info.file_bytes = header.data_start + header.data_size;
  info.metadata = header.metadata;
  for (const auto& t : header.tensors) {
    ++info.tensor_count;
    // Each count fits: the entry's bytes lie within the file.
    const auto e = static_cast<int64_t>(t.elements());
    info.element_count += e;
    if (t.name.find("running_") == std::string::npos && t.name.find("num_batches_tracked") == std::string::npos)
      info.parameter_like += e;
    ++info.dtypes[t.dtype];
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
