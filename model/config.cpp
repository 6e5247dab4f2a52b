#include "config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bounded_json.h"
#include "class_filter.h"
#include "text.h"
#include "error.h"

namespace ssd {

const std::vector<std::string>& known_bodies() {
  static const std::vector<std::string> names = {"resnet18", "resnet34", "resnet50", "tiny"};
  return names;
}

int SsdConfig::body_grid() const { return (input_size + 31) / 32; }
std::vector<int> SsdConfig::head_steps() const {
  // The head reaches each grid by stride-2 steps from the body's stride-32 map; the first grid
  // may be the body's stride-16 map instead.
  auto fail = [](const std::string& what) { throw Error("invalid SSD configuration: " + what); };
  std::vector<int> steps;
  int side = body_grid(), n = 0;
  for (size_t i = has_fine_grid() ? 1 : 0; i < grids.size(); ++i) {
    if (grids[i] < 1) fail("grids[" + std::to_string(i) + "] = " + std::to_string(grids[i]));
    for (; side > grids[i] && side > 1; ++n) side = stride2_out(side);
    if (side != grids[i]) {
      std::ostringstream msg;
      msg << "grids[" << i << "] = " << grids[i] << " is not reachable from the body's "
          << body_grid() << "x" << body_grid() << " map (input " << input_size
          << ") by stride-2 steps (each gives (n-1)/2+1); grids must be strictly decreasing "
          << "(the first may also be the stride-16 map's " << fine_grid() << ")";
      fail(msg.str());
    }
    // (A grid repeated is reached by no further step: the same map's anchors again.)
    if (i > 0 && grids[i] >= grids[i - 1])
      fail("grids must be strictly decreasing: grids[" + std::to_string(i - 1) + "] = " +
           std::to_string(grids[i - 1]) + ", grids[" + std::to_string(i) + "] = " + std::to_string(grids[i]));
    steps.push_back(n);
  }
  return steps;
}

int64_t SsdConfig::min_parameters() const {
  const std::vector<int> steps = head_steps();
  const int64_t ch = head_channels, k = anchors_per_cell();
  const int64_t stride2 = int64_t{steps.empty() ? 0 : steps.back()} * 9 * ch * ch;
  const int64_t outputs = static_cast<int64_t>(grids.size()) * 9 * ch * k * (num_classes() + 1 + 4);
  return stride2 + outputs;
}

int SsdConfig::fine_grid() const { return (input_size + 15) / 16; }
bool SsdConfig::has_fine_grid() const {
  return !grids.empty() && fine_grid() > body_grid() && grids[0] == fine_grid();
}

int SsdConfig::num_anchors() const {
  int cells = 0;
  for (int g : grids) cells += g * g;
  return cells * anchors_per_cell();
}

void SsdConfig::validate() const {
  auto fail = [](const std::string& what) { throw Error("invalid SSD configuration: " + what); };
  if (std::find(known_bodies().begin(), known_bodies().end(), body) == known_bodies().end())
    fail("unknown body '" + body + "' (expected resnet18, resnet34, resnet50 or tiny)");
  if (input_size < 32 || input_size > 4096)
    fail("input_size " + std::to_string(input_size) + " is outside [32, 4096]");
  if (grids.empty()) fail("grids is empty");
  head_steps();
  if (zooms.empty()) fail("zooms is empty");
  for (double z : zooms)
    if (!(z > 0)) fail("zoom " + std::to_string(z) + " must be > 0");
  if (ratios.empty()) fail("ratios is empty");
  for (const auto& r : ratios)
    if (!(r.w > 0 && r.h > 0)) fail("anchor ratios must be > 0");
  if (labels.empty()) fail("labels is empty (at least one class is needed)");
  if (labels.size() > 10000) fail(std::to_string(labels.size()) + " labels: more than 10000");
  std::set<std::string> seen;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i].empty()) fail("labels[" + std::to_string(i) + "] is empty");
    // (C strings end there: GStreamer's captions, quarks and messages cut the label short, and
    // two labels could become one.)
    if (labels[i].find('\0') != std::string::npos) fail("labels[" + std::to_string(i) + "] holds a NUL character");
    if (!seen.insert(labels[i]).second) fail("label '" + printable(labels[i]) + "' appears twice");
    // (As ssd-train refuses to train such a class: ssddetect's classes and class-thresholds,
    // and predict's, could never select it, and a list of the labels would not read back.)
    if (const std::string why = unnameable_label(labels[i]); !why.empty())
      fail("labels[" + std::to_string(i) + "] \"" + printable(labels[i]) + "\" cannot be named in ssddetect's classes and "
           "class-thresholds (" + why + ")");
  }
  if (head_channels < 1 || head_channels > 4096)
    fail("head_channels " + std::to_string(head_channels) + " is outside [1, 4096]");
  // A weights file's configuration is built before its tensors are read: bound what a corrupt
  // or hostile one could make us allocate.
  if (zooms.size() * ratios.size() > 64)
    fail(std::to_string(zooms.size()) + " zooms x " + std::to_string(ratios.size()) +
         " ratios: more than 64 anchors per cell");
  // Each grid's output convolutions: 3x3 from head_channels to k * (C + 1 + 4) channels.
  const double out_params = double(grids.size()) * 9.0 * head_channels * double(zooms.size() * ratios.size()) *
                            double(labels.size() + 5);
  if (out_params > 2e8)
    fail("the output convolutions would hold " + std::to_string(static_cast<long long>(out_params)) +
         " parameters (more than 2e8): too many grids, labels, anchors or head channels");
  if (!(dropout >= 0 && dropout < 1)) fail("dropout must be in [0, 1)");
  for (int c = 0; c < 3; ++c)
    if (!(std[c] > 0)) fail("std[" + std::to_string(c) + "] must be > 0");
}

nlohmann::json SsdConfig::to_json() const {
  nlohmann::json j;
  j["body"] = body;
  j["input_size"] = input_size;
  j["grids"] = grids;
  j["zooms"] = zooms;
  nlohmann::json r = nlohmann::json::array();
  for (const auto& a : ratios) r.push_back({a.w, a.h});
  j["ratios_wh"] = r;
  j["labels"] = labels;
  j["head_channels"] = head_channels;
  j["dropout"] = dropout;
  j["class_bias"] = class_bias;
  j["mean"] = mean;
  j["std"] = std;
  j["background"] = "last";   // class logits are C+1 with background at index C
  return j;
}

namespace {

// Strict readers: nlohmann's get<int>() truncates 160.5 to 160 and converts out-of-range
// numbers with undefined behaviour (found by fuzz/fuzz_config.cpp), so integers must be JSON
// integers within int's range and reals finite numbers within float's.
int json_int(const nlohmann::json& v, const char* what) {
  if (!v.is_number_integer()) throw Error(std::string(what) + " must be an integer, not " + json_excerpt(v));
  if (!json_is_int(v)) throw Error(std::string(what) + " is out of range: " + json_excerpt(v));
  return static_cast<int>(v.get<int64_t>());
}

double json_real(const nlohmann::json& v, const char* what) {
  if (!v.is_number()) throw Error(std::string(what) + " must be a number, not " + json_excerpt(v));
  const double d = v.get<double>();
  if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max())
    throw Error(std::string(what) + " is out of range: " + json_excerpt(v));
  return d;
}

const nlohmann::json& json_array(const nlohmann::json& v, const char* what) {
  if (!v.is_array()) throw Error(std::string(what) + " must be an array, not " + json_excerpt(v));
  return v;
}

}  // namespace

SsdConfig SsdConfig::from_json(const nlohmann::json& j) {
  SsdConfig c;
  try {
    if (!j.is_object()) throw Error("configuration is not a JSON object");
    c.body = j.at("body").get<std::string>();
    c.input_size = json_int(j.at("input_size"), "input_size");
    c.grids.clear();
    for (const auto& g : json_array(j.at("grids"), "grids")) c.grids.push_back(json_int(g, "a grid"));
    c.zooms.clear();
    for (const auto& z : json_array(j.at("zooms"), "zooms")) c.zooms.push_back(json_real(z, "a zoom"));
    c.ratios.clear();
    for (const auto& r : json_array(j.at("ratios_wh"), "ratios_wh")) {
      if (!r.is_array() || r.size() != 2) throw Error("ratios_wh entries must be [w, h] pairs");
      c.ratios.push_back({json_real(r[0], "a ratio"), json_real(r[1], "a ratio")});
    }
    c.labels = j.at("labels").get<std::vector<std::string>>();
    c.head_channels = json_int(j.at("head_channels"), "head_channels");
    if (j.contains("dropout")) c.dropout = json_real(j["dropout"], "dropout");
    if (j.contains("class_bias")) c.class_bias = json_real(j["class_bias"], "class_bias");
    for (const char* key : {"mean", "std"}) {
      const auto& v = json_array(j.at(key), key);
      if (v.size() != 3) throw Error(std::string(key) + " must hold 3 numbers, not " + json_excerpt(v));
      auto& out = std::string(key) == "mean" ? c.mean : c.std;
      for (int i = 0; i < 3; ++i) out[i] = static_cast<float>(json_real(v[i], key));
    }
    if (j.value("background", std::string("last")) != "last")
      throw Error("only background = \"last\" is supported");
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("invalid SSD configuration JSON: ") + e.what());
  }
  c.validate();
  return c;
}

std::string SsdConfig::to_json_string() const { return to_json().dump(); }

SsdConfig SsdConfig::from_json_string(const std::string& s) {
  nlohmann::json j;
  try {
    j = parse_bounded_json(s, "SSD configuration");
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("SSD configuration is not valid JSON: ") + e.what());
  }
  return from_json(j);
}

bool SsdConfig::operator==(const SsdConfig& o) const {
  return body == o.body && input_size == o.input_size && grids == o.grids && zooms == o.zooms &&
         ratios == o.ratios && labels == o.labels && head_channels == o.head_channels &&
         dropout == o.dropout && class_bias == o.class_bias && mean == o.mean && std == o.std;
}

}  // namespace ssd
