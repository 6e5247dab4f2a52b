#include "config.h"

#include <algorithm>
#include <sstream>

#include <nlohmann/json.hpp>

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
    steps.push_back(n);
  }
  return steps;
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
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i].empty()) fail("labels[" + std::to_string(i) + "] is empty");
    for (size_t j = 0; j < i; ++j)
      if (labels[j] == labels[i]) fail("label '" + labels[i] + "' appears twice");
  }
  if (head_channels < 1 || head_channels > 4096)
    fail("head_channels " + std::to_string(head_channels) + " is outside [1, 4096]");
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

SsdConfig SsdConfig::from_json(const nlohmann::json& j) {
  SsdConfig c;
  try {
    if (!j.is_object()) throw Error("configuration is not a JSON object");
    c.body = j.at("body").get<std::string>();
    c.input_size = j.at("input_size").get<int>();
    c.grids = j.at("grids").get<std::vector<int>>();
    c.zooms = j.at("zooms").get<std::vector<double>>();
    c.ratios.clear();
    for (const auto& r : j.at("ratios_wh")) {
      auto v = r.get<std::vector<double>>();
      if (v.size() != 2) throw Error("ratios_wh entries must be [w, h] pairs");
      c.ratios.push_back({v[0], v[1]});
    }
    c.labels = j.at("labels").get<std::vector<std::string>>();
    c.head_channels = j.at("head_channels").get<int>();
    c.dropout = j.value("dropout", c.dropout);
    c.class_bias = j.value("class_bias", c.class_bias);
    c.mean = j.at("mean").get<std::array<float, 3>>();
    c.std = j.at("std").get<std::array<float, 3>>();
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
    j = nlohmann::json::parse(s);
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
