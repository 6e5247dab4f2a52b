// The project's weights file: safetensors with the SsdConfig (architecture, labels,
// normalisation) as JSON in the metadata key "ssd.config", plus every parameter and buffer.
// Python: safetensors.torch.load_file(path) and safe_open(path, "pt").metadata().
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>

#include "config.h"
#include "ssd_model.h"

namespace ssd {

inline constexpr const char* kConfigKey = "ssd.config";
inline constexpr const char* kFormatKey = "format";
inline constexpr const char* kFormatValue = "gst-ssd/1";

// Throws ssd::Error for a model arranged for inference (fuse_for_inference()), whose tensors are
// not the format's.
void save_weights(const std::string& path, Ssd& model);

// Reads the configuration only (cheap: header only). Throws ssd::Error.
SsdConfig read_weights_config(const std::string& path);

// Builds the model the file describes and loads every tensor into it, checking every name,
// shape and dtype; the first mismatch throws ssd::Error naming the file and the tensor.
// The model is returned in eval mode on `device`.
Ssd load_weights(const std::string& path, const torch::Device& device = torch::kCPU);

// Loads the tensors of `path` into an existing model of the same architecture.
void load_weights_into(const std::string& path, Ssd& model);

// Initialises `model` from a weights file of a related architecture (another grid list, a
// fine grid added, another input size) or of other classes: copies every tensor whose name,
// shape and dtype match and leaves the model's other tensors as they are. The class-logit
// convolutions (head.*.oconv1) are copied class by class, by name: a class of the model that the
// file has takes the file's rows (of each anchor), the background takes the file's background,
// and a class the file lacks keeps the model's initialisation. Throws ssd::Error when the file is
// not an SSD weights file or when nothing matches.
struct TransferReport {
  int copied = 0;          // model tensors taken from the file (wholly or class by class)
  int kept = 0;            // model tensors the file lacks (or has with another shape)
  int unused = 0;          // file tensors the model has no place for
  // By class name (filled whatever the file's classes): the model's classes the file has (model
  // order), those it lacks, and the file's the model lacks. Their class outputs were copied
  // only where class_convs_copied says so.
  std::vector<std::string> classes_copied;
  std::vector<std::string> classes_new;
  std::vector<std::string> classes_dropped;
  int class_convs = 0;          // the model's class-logit convolution weights (one a grid)
  int class_convs_copied = 0;   // those taken from the file (whole or class by class)
};
TransferReport transfer_weights(const std::string& path, Ssd& model);

// Imports torchvision ImageNet ResNet weights into model->body by name: a state dict saved by
// torch.save(dict(...)) or a safetensors file. Ignores fc.*, tolerates missing
// num_batches_tracked; any other missing or mis-shaped tensor throws ssd::Error.
// Returns the number of tensors imported.
int import_imagenet_body(const std::string& path, Ssd& model);

}  // namespace ssd
