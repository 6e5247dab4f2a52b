#include "weights.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include <torch/serialize.h>
#include <torch/types.h>

#include "error.h"
#include "safetensors.h"
#include "text.h"

namespace ssd {

namespace {

std::string shape_str(c10::IntArrayRef s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

// Every parameter and buffer, in module order.
std::vector<std::pair<std::string, torch::Tensor>> model_tensors(torch::nn::Module& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : m.named_parameters(true)) out.emplace_back(p.key(), p.value());
  for (const auto& b : m.named_buffers(true)) out.emplace_back(b.key(), b.value());
  return out;
}

SsdConfig config_from_metadata(const std::string& path,
                               const std::map<std::string, std::string>& meta) {
  // Another version of the format (a later gst-ssd's) would be read as this one's: refused. (A
  // file without the key, written by other tools from the README's description, is read.)
  if (const auto format = meta.find(kFormatKey); format != meta.end() && format->second != kFormatValue)
    throw Error(path + ": its format is '" + format->second + "', and this gst-ssd reads '" + kFormatValue +
                "' (written by another version?)");
  auto it = meta.find(kConfigKey);
  if (it == meta.end())
    throw Error(path + ": not an SSD weights file (no '" + std::string(kConfigKey) +
                "' in the safetensors metadata)");
  try {
    return SsdConfig::from_json_string(it->second);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

void load_tensors(const std::string& path, const SafeTensors& file, torch::nn::Module& model) {
  std::map<std::string, const torch::Tensor*> by_name;
  for (const auto& [name, t] : file.tensors) by_name[name] = &t;
  auto expected = model_tensors(model);
  for (const auto& [name, dst] : expected) {
    auto it = by_name.find(name);
    if (it == by_name.end())
      throw Error(path + ": tensor '" + name + "' is missing (the model expects shape " +
                  shape_str(dst.sizes()) + ")");
    const torch::Tensor& src = *it->second;
    if (src.sizes() != dst.sizes())
      throw Error(path + ": tensor '" + name + "' has shape " + shape_str(src.sizes()) +
                  " but the model expects " + shape_str(dst.sizes()));
    if (src.scalar_type() != dst.scalar_type())
      throw Error(path + ": tensor '" + name + "' has dtype " + c10::toString(src.scalar_type()) +
                  " but the model expects " + c10::toString(dst.scalar_type()) +
                  (src.is_floating_point() && dst.is_floating_point()
                       ? std::string(" (the weights are stored as float32, as ssd-train writes them)")
                       : std::string()));
    if (src.is_floating_point() && !torch::isfinite(src).all().item<bool>())
      throw Error(path + ": tensor '" + name + "' holds NaN or infinite values (from a training run that " +
                  "diverged?); the model would detect nothing sensible");
  }
  if (file.tensors.size() != expected.size()) {
    std::map<std::string, int> want;
    for (const auto& e : expected) want[e.first] = 1;
    for (const auto& [name, t] : file.tensors)
      if (!want.count(name)) throw Error(path + ": unexpected tensor '" + name + "'");
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, dst] : expected) dst.copy_(*by_name[name]);
}

}  // namespace

void save_weights(const std::string& path, Ssd& model) {
  // A model arranged for inference (BatchNorms folded, output convolutions fused) has other
  // tensors than the file format's, and load_weights() would refuse the file.
  if (model->body->folded() || model->head->fused())
    throw Error(path + ": not written: the model's BatchNorms are folded or its output convolutions "
                "fused (fuse_for_inference()); save the model as trained");
  SafeTensors content;
  content.metadata[kConfigKey] = model->config().to_json_string();
  content.metadata[kFormatKey] = kFormatValue;
  content.tensors = model_tensors(*model);
  write_safetensors(path, content);
}

SsdConfig read_weights_config(const std::string& path) {
  return config_from_metadata(path, read_safetensors_metadata(path));
}

Ssd load_weights(const std::string& path, const torch::Device& device) {
  auto file = read_safetensors(path);
  const SsdConfig config = config_from_metadata(path, file.metadata);
  // Before the model is built: a corrupt or hostile configuration in a small file would
  // otherwise have us allocate gigabytes only to find its tensors missing.
  // (Values, not bytes: a file of fp16 tensors is then refused naming the dtype, below; a byte
  // tensor's values count a quarter, as no weight is one, so that a file cannot claim more.)
  int64_t values = 0;
  for (const auto& [name, t] : file.tensors) values += t.element_size() >= 2 ? t.numel() : t.numel() / 4;
  if (const int64_t weights = config.min_parameters(); values < weights)
    throw Error(path + ": its tensors hold " + std::to_string(values) + " values, but its configuration has at least " +
                std::to_string(weights) + " weights: the file is truncated or its configuration corrupt");
  Ssd model(config);
  load_tensors(path, file, *model);
  model->eval();
  model->to(device);
  return model;
}

void load_weights_into(const std::string& path, Ssd& model) {
  auto file = read_safetensors(path);
  auto config = config_from_metadata(path, file.metadata);
  if (!(config == model->config()))
    throw Error(path + ": its architecture " + config.to_json_string() +
                " differs from the model's " + model->config().to_json_string());
  load_tensors(path, file, *model);
}

namespace {

// Whether a file's tensor may fill a model's of the same shape: the same dtype, or floating
// point both (an fp16 or bf16 file's weights, converted by copy_).
bool same_kind(const torch::Tensor& src, const torch::Tensor& dst) {
  return src.scalar_type() == dst.scalar_type() || (src.is_floating_point() && dst.is_floating_point());
}

// Whether `name` is a class-logit convolution's tensor (OutConvImpl's oconv1).
bool is_class_conv(const std::string& name) {
  return ends_with(name, ".oconv1.weight") || ends_with(name, ".oconv1.bias");
}

// Copies `src`'s class rows into `dst` by class name: both are (k * (C + 1), ...) with anchor j's
// class c at row j * (C + 1) + c and the background at c = C. False (nothing copied) when the
// shapes do not fit that layout with the same k and the same trailing sizes.
bool copy_class_rows(const torch::Tensor& src, const std::vector<std::string>& src_labels, torch::Tensor& dst,
                     const std::vector<std::string>& dst_labels) {
  const int64_t ns = static_cast<int64_t>(src_labels.size()) + 1, nd = static_cast<int64_t>(dst_labels.size()) + 1;
  if (src.dim() != dst.dim() || !same_kind(src, dst) || src.size(0) % ns != 0 ||
      dst.size(0) % nd != 0 || src.size(0) / ns != dst.size(0) / nd || src.sizes().slice(1) != dst.sizes().slice(1))
    return false;
  const int64_t k = dst.size(0) / nd;
  for (int64_t c = 0; c < nd; ++c) {
    int64_t from = ns - 1;   // the background
    if (c < nd - 1) {
      const auto it = std::find(src_labels.begin(), src_labels.end(), dst_labels[static_cast<size_t>(c)]);
      if (it == src_labels.end()) continue;
      from = it - src_labels.begin();
    }
    for (int64_t j = 0; j < k; ++j) dst[j * nd + c].copy_(src[j * ns + from]);
  }
  return true;
}

}  // namespace

TransferReport transfer_weights(const std::string& path, Ssd& model) {
  auto file = read_safetensors(path);
  const SsdConfig config = config_from_metadata(path, file.metadata);
  const std::vector<std::string>& mine = model->config().labels;
  TransferReport r;
  for (const auto& l : mine)
    (std::count(config.labels.begin(), config.labels.end(), l) ? r.classes_copied : r.classes_new).push_back(l);
  for (const auto& l : config.labels)
    if (!std::count(mine.begin(), mine.end(), l)) r.classes_dropped.push_back(l);
  std::map<std::string, const torch::Tensor*> by_name;
  for (const auto& [name, t] : file.tensors) by_name[name] = &t;
  torch::NoGradGuard no_grad;
  std::set<std::string> weights_not_taken;
  for (auto& [name, dst] : model_tensors(*model)) {
    auto it = by_name.find(name);
    // A bias (or BatchNorm shift) goes with its layer's weight: not over weights of another shape.
    const std::string sibling = ends_with(name, ".bias") ? name.substr(0, name.size() - 5) + ".weight" : std::string();
    bool taken = false;
    if (it != by_name.end() && !weights_not_taken.count(sibling)) {
      if (config.labels != mine && is_class_conv(name)) {
        taken = copy_class_rows(*it->second, config.labels, dst, mine);
      } else if (it->second->sizes() == dst.sizes() && same_kind(*it->second, dst)) {
        dst.copy_(*it->second);
        taken = true;
      }
    }
    const bool weight = ends_with(name, ".weight");
    if (!taken && weight) weights_not_taken.insert(name);
    const bool class_weight = weight && is_class_conv(name);
    r.class_convs += class_weight;
    if (!taken) {
      ++r.kept;
      continue;
    }
    r.class_convs_copied += class_weight;
    by_name.erase(it);
    ++r.copied;
  }
  r.unused = static_cast<int>(by_name.size());
  if (r.copied == 0) throw Error(path + ": no tensor matches the model's by name and shape");
  return r;
}

int import_imagenet_body(const std::string& path, Ssd& model) {
  const std::string& body = model->config().body;
  if (body.rfind("resnet", 0) != 0)
    throw Error(path + ": ImageNet weights are for the ResNet bodies; the " + body + " body has none");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::map<std::string, torch::Tensor> sd;
  if (bytes.size() >= 4 && bytes[0] == 'P' && bytes[1] == 'K') {
    // torch.save's zip format. LibTorch's unpickler builds only tensors and containers; it
    // runs no code from the file.
    // A state dict as state_dict() returns it is an OrderedDict, which that unpickler cannot
    // build (nor a pickled module): the message says what it reads.
    const std::string readable =
        " (LibTorch reads a plain dict of tensors, saved with torch.save(dict(model.state_dict()), PATH), "
        "not the OrderedDict state_dict() returns nor a pickled model; or give a .safetensors file)";
    torch::IValue v;
    try {
      v = torch::pickle_load(bytes);
    } catch (const c10::Error& e) {
      throw Error(path + ": cannot read the torch.save file" + readable + ": " + e.what_without_backtrace());
    } catch (const std::exception& e) {
      throw Error(path + ": cannot read the torch.save file" + readable + ": " + e.what());
    }
    if (!v.isGenericDict()) throw Error(path + ": expected a state dict" + readable);
    for (const auto& kv : v.toGenericDict()) {
      if (!kv.key().isString() || !kv.value().isTensor())
        throw Error(path + ": the state dict must map names to tensors");
      sd[kv.key().toStringRef()] = kv.value().toTensor();
    }
  } else {
    for (auto& [name, t] : read_safetensors(path).tensors) sd[name] = t;
  }
  int imported = 0;
  torch::NoGradGuard no_grad;
  for (auto& [name, dst] : model_tensors(*model->body)) {
    auto it = sd.find(name);
    if (it == sd.end()) {
      if (ends_with(name, "num_batches_tracked")) continue;
      throw Error(path + ": ImageNet weights lack '" + name + "' (is this a torchvision " +
                  model->config().body + "?)");
    }
    if (it->second.sizes() != dst.sizes())
      throw Error(path + ": '" + name + "' has shape " + shape_str(it->second.sizes()) +
                  " but the " + model->config().body + " body expects " +
                  shape_str(dst.sizes()));
    dst.copy_(it->second.to(dst.scalar_type()));
    ++imported;
  }
  return imported;
}

}  // namespace ssd
