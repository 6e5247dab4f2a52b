// The torch-free half of trainer.h: TrainSpec <-> JSON, and loading a DataSpec's data set.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../model/bounded_json.h"
#include "../model/error.h"
#include "atomic_file.h"
#include "coco.h"
#include "synth.h"
#include "trainer.h"
#include "voc.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace ssdtrain {

namespace {
bool default_object_size(const DataSpec& d) {
  const SynthOptions defaults;
  return d.synth_object_min == defaults.min_size && d.synth_object_max == defaults.max_size;
}
}  // namespace

std::string DataSpec::describe() const {
  std::ostringstream os;
  if (!coco.empty()) {
    os << "COCO " << coco;
    if (!images.empty()) os << " (images " << images << ")";
  } else if (!voc.empty()) {
    os << "VOC " << voc << " split " << voc_split;
  } else if (synth > 0) {
    os << "synthetic x" << synth << " seed " << synth_seed << " " << synth_size << "px";
    if (synth_empty > 0) os << ", " << synth_empty * 100 << "% without objects";
    if (!default_object_size(*this))
      os << ", objects " << synth_object_min * 100 << "-" << synth_object_max * 100 << "% of the side";
  } else {
    os << "(none)";
  }
  return os.str();
}

namespace {

json data_to_json(const DataSpec& d) {
  return json{{"coco", d.coco},   {"images", d.images},         {"voc", d.voc},
              {"voc_split", d.voc_split}, {"synth", d.synth}, {"synth_seed", d.synth_seed},
              {"synth_size", d.synth_size}, {"synth_empty", d.synth_empty},
              {"synth_object_size", {d.synth_object_min, d.synth_object_max}}, {"synth_dir", d.synth_dir}};
}

DataSpec data_from_json(const json& j) {
  DataSpec d;
  d.coco = j.value("coco", d.coco);
  d.images = j.value("images", d.images);
  d.voc = j.value("voc", d.voc);
  d.voc_split = j.value("voc_split", d.voc_split);
  d.synth = j.value("synth", d.synth);
  d.synth_seed = j.value("synth_seed", d.synth_seed);
  d.synth_size = j.value("synth_size", d.synth_size);
  d.synth_empty = j.value("synth_empty", d.synth_empty);   // (absent from earlier runs' run.json: 0)
  if (j.contains("synth_object_size")) {   // (absent from earlier runs' run.json: the defaults)
    const json& size = j.at("synth_object_size");
    if (!size.is_array() || size.size() != 2 || !size[0].is_number() || !size[1].is_number())
      throw ssd::Error("synth_object_size must be [min, max], not " + ssd::json_excerpt(size));
    d.synth_object_min = size[0].get<double>();
    d.synth_object_max = size[1].get<double>();
  }
  d.synth_dir = j.value("synth_dir", d.synth_dir);
  return d;
}

#define SSD_OPT_FIELDS(X)                                                                     \
  X(epochs) X(freeze_epochs) X(stop_after) X(batch_size) X(lr) X(lr_div) X(wd) X(pct_start)   \
  X(div_factor) X(final_div) X(cycle_momentum) X(beta1_max) X(beta1_min) X(beta2)             \
  X(clip_grad) X(workers) X(threads) X(seed) X(device) X(precision) X(imagenet)               \
  X(init_weights) X(augment) X(eval_every) X(max_eval_images) X(match_threshold) X(focal)     \
  X(focal_alpha) X(focal_gamma) X(plot_samples) X(val_fraction) X(ignored)

json options_to_json(const TrainOptions& o) {
  json j;
#define X(f) j[#f] = o.f;
  SSD_OPT_FIELDS(X)
#undef X
  return j;
}

// Strict readers of a stored option, by its type (nlohmann's value() cut 2.5 epochs to 2,
// converted 1e30 with undefined behaviour, and named no key for a string): an error names the key.
[[noreturn]] void bad_option(const char* key, const char* what, const json& v) {
  throw ssd::Error(std::string("options.") + key + " must be " + what + ", not " + ssd::json_excerpt(v));
}
void read_option(const json& v, const char* key, int& out) {
  if (!ssd::json_is_int(v)) bad_option(key, "an integer within int's range", v);
  out = static_cast<int>(v.get<int64_t>());
}
void read_option(const json& v, const char* key, uint64_t& out) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
    bad_option(key, "an integer in [0, 2^64 - 1]", v);
  out = v.get<uint64_t>();
}
void read_option(const json& v, const char* key, double& out) {
  if (!v.is_number() || !std::isfinite(v.get<double>())) bad_option(key, "a finite number", v);
  out = v.get<double>();
}
void read_option(const json& v, const char* key, bool& out) {
  if (!v.is_boolean()) bad_option(key, "true or false", v);
  out = v.get<bool>();
}
void read_option(const json& v, const char* key, std::string& out) {
  if (!v.is_string()) bad_option(key, "a string", v);
  out = v.get<std::string>();
}

TrainOptions options_from_json(const json& j) {
  TrainOptions o;
  if (!j.is_object()) throw ssd::Error("options must be a JSON object, not " + ssd::json_excerpt(j));
#define X(f) \
  if (const auto it = j.find(#f); it != j.end()) read_option(*it, #f, o.f);
  SSD_OPT_FIELDS(X)
#undef X
  // Runs stored before `ignored` existed trained such anchors as background: they resume so.
  if (!j.contains("ignored")) o.ignored = "background";
  return o;
}

}  // namespace

std::string train_spec_to_json(const TrainSpec& spec) {
  json j{{"config", spec.config.to_json()},
         {"train", data_to_json(spec.train)},
         {"val", data_to_json(spec.val)},
         {"options", options_to_json(spec.options)},
         {"out_dir", spec.out_dir}};
  return j.dump(2);
}

TrainSpec train_spec_from_json(const std::string& text) {
  try {
    const json j = ssd::parse_bounded_json(text, "run description");
    TrainSpec s;
    s.config = ssd::SsdConfig::from_json(j.at("config"));
    s.train = data_from_json(j.at("train"));
    s.val = data_from_json(j.at("val"));
    s.options = options_from_json(j.at("options"));
    s.out_dir = j.value("out_dir", "");
    return s;
  } catch (const json::exception& e) {
    throw ssd::Error(std::string("bad run description: ") + e.what());
  }
}

Dataset load_dataset(const DataSpec& spec, LoadReport* report, const std::vector<std::string>* labels) {
  Dataset ds = load_dataset(spec, report);
  if (labels) use_labels(ds, *labels, spec.describe());
  return ds;
}

Dataset load_dataset(const DataSpec& spec, LoadReport* report) {
  const int sources = int(!spec.coco.empty()) + int(!spec.voc.empty()) + int(spec.synth > 0);
  if (sources != 1)
    throw ssd::Error("give exactly one data source (--coco, --voc or --synth N), got " +
                     std::to_string(sources));
  if (!spec.coco.empty()) {
    CocoOptions o;
    o.image_dir = spec.images;
    return load_coco(spec.coco, o, report);
  }
  if (!spec.voc.empty()) {
    VocOptions o;
    o.split = spec.voc_split;
    return load_voc(spec.voc, o, report);
  }
  // Synthetic: written once into synth_dir (a marker file records what it holds, so a resumed
  // run or a second evaluation reuses it; anything else is regenerated).
  if (spec.synth_dir.empty()) throw ssd::Error("synthetic data needs a folder (synth_dir)");
  if (spec.synth_size < 32) throw ssd::Error("--synth-size must be at least 32");
  const fs::path dir(spec.synth_dir);
  const fs::path marker = dir / "synth.json";
  if (!(spec.synth_empty >= 0 && spec.synth_empty <= 1)) throw ssd::Error("--synth-empty must be in [0, 1]");
  if (!(spec.synth_object_min >= 0.02 && spec.synth_object_min <= spec.synth_object_max && spec.synth_object_max <= 1))
    throw ssd::Error("--synth-object-size must be MIN,MAX with 0.02 <= MIN <= MAX <= 1");
  json want{{"count", spec.synth}, {"seed", spec.synth_seed}, {"size", spec.synth_size}};
  // (A set without negatives keeps its earlier marker. With, the marker names the generator's
  // version of sets with negatives, raised whenever those images change: a set an earlier
  // version wrote is written anew.)
  if (spec.synth_empty > 0) {
    want["empty"] = spec.synth_empty;
    want["empty_version"] = 2;
  }
  if (!default_object_size(spec)) want["object_size"] = {spec.synth_object_min, spec.synth_object_max};
  {
    std::error_code ec;
    fs::create_directories(dir / "images", ec);
    if (ec) throw ssd::Error("cannot create " + (dir / "images").string() + ": " + ec.message());
  }
  lock_synth_folder(dir / "images", /*exclusive=*/false);   // (what it holds stays as read below)
  bool reuse = false;
  if (fs::exists(marker) && fs::exists(dir / "annotations.json")) {
    std::ifstream f(marker);
    try {
      reuse = ssd::parse_bounded_json(f, marker.string()) == want;
    } catch (const std::exception&) {   // (malformed or too deep: not the set wanted)
    }
  }
  if (reuse) {
    CocoOptions o;
    o.image_dir = (dir / "images").string();
    Dataset ds = load_coco((dir / "annotations.json").string(), o, report);
    return ds;
  }
  lock_synth_folder(dir / "images", /*exclusive=*/true);   // (before the marker goes)
  std::error_code ec;
  fs::remove(marker, ec);
  SynthDatasetOptions o;
  o.count = spec.synth;
  o.seed = spec.synth_seed;
  o.width = o.height = spec.synth_size;
  o.synth.empty_fraction = spec.synth_empty;
  o.synth.min_size = spec.synth_object_min;
  o.synth.max_size = spec.synth_object_max;
  Dataset ds = write_synth_dataset(dir.string(), o);
  write_file_atomic(marker, want.dump() + "\n");
  lock_synth_folder(dir / "images", /*exclusive=*/false);   // complete: others may read it too
  return ds;
}

}  // namespace ssdtrain
