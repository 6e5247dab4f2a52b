#include "coco.h"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "../model/bounded_json.h"
#include "atomic_file.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace ssdtrain {
namespace {

[[noreturn]] void fail(const std::string& file, const std::string& entry, const std::string& what) {
  throw DataError(file + ": " + (entry.empty() ? "" : entry + ": ") + what);
}

const json& field(const json& obj, const char* name, const std::string& file,
                  const std::string& entry) {
  if (!obj.is_object()) fail(file, entry, "is not a JSON object");
  auto it = obj.find(name);
  if (it == obj.end()) fail(file, entry, std::string("missing field '") + name + "'");
  return *it;
}

int64_t get_int(const json& obj, const char* name, const std::string& file,
                const std::string& entry) {
  const json& v = field(obj, name, file, entry);
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))   // (it wrapped to -1)
    fail(file, entry, std::string("field '") + name + "' is out of range (above 2^63 - 1): " + ssd::json_excerpt(v));
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15)
      return static_cast<int64_t>(d);
  }
  fail(file, entry, std::string("field '") + name + "' is not an integer: " + ssd::json_excerpt(v));
}

std::string get_string(const json& obj, const char* name, const std::string& file,
                       const std::string& entry) {
  const json& v = field(obj, name, file, entry);
  if (!v.is_string()) fail(file, entry, std::string("field '") + name + "' is not a string");
  return v.get<std::string>();
}

// Optional 0/1 flag (number or bool); absent or null = false.
bool get_flag(const json& obj, const char* name, const std::string& file,
              const std::string& entry) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_number()) return it->get<double>() != 0.0;
  fail(file, entry, std::string("field '") + name + "' is not a number or boolean");
}

const json& get_array(const json& root, const char* name, const std::string& file) {
  const std::string no_entry;   // a named string: GCC 14 warns of a dangling reference for ""
  const json& v = field(root, name, file, no_entry);
  if (!v.is_array()) fail(file, "", std::string("'") + name + "' is not an array");
  return v;
}

// Where an image is looked for when no image folder is given: beside the JSON file, else in its
// images/ subfolder (ssd-train synth's layout: annotations.json beside images/), each image on
// its own (a stray copy of one beside the JSON file decides nothing for the others).
fs::path default_image_path(const fs::path& json_dir, const std::string& name) {
  const fs::path beside = json_dir / name;
  std::error_code ec;
  if (!fs::exists(beside, ec) && fs::exists(json_dir / "images" / name, ec)) return json_dir / "images" / name;
  return beside;
}

}  // namespace

Dataset load_coco(const std::string& json_path, const CocoOptions& options, LoadReport* report) {
  LoadReport local_report;
  LoadReport& rep = report ? *report : local_report;
  const std::string& file = json_path;

  std::ifstream in(json_path, std::ios::binary);
  if (!in) fail(file, "", "cannot open file");
  json root;
  try {
    root = ssd::parse_bounded_json(in, "malformed");
  } catch (const json::exception& e) {
    fail(file, "", std::string("malformed JSON: ") + e.what());
  } catch (const ssd::Error& e) {   // (nested too deep)
    fail(file, "", e.what());
  }
  if (!root.is_object()) fail(file, "", "top level is not a JSON object");

  Dataset ds;
  // Categories, in order -> contiguous labels.
  const json& cats = get_array(root, "categories", file);
  if (cats.empty()) fail(file, "categories", "empty list");
  std::unordered_map<int64_t, int> cat_to_label;
  std::unordered_map<std::string, int64_t> name_to_id;   // classes are known by name (models, eval)
  for (size_t i = 0; i < cats.size(); ++i) {
    const std::string entry = "categories[" + std::to_string(i) + "]";
    const int64_t id = get_int(cats[i], "id", file, entry);
    std::string name = get_string(cats[i], "name", file, entry);
    if (name.empty()) fail(file, entry, "empty category name");
    if (cat_to_label.count(id)) fail(file, entry, "duplicate category id " + std::to_string(id));
    if (const auto [it, added] = name_to_id.emplace(name, id); !added)
      fail(file, entry, "category name '" + name + "' is also category id " + std::to_string(it->second) + "'s");
    cat_to_label[id] = static_cast<int>(ds.labels.size());
    ds.labels.push_back(std::move(name));
    ds.category_ids.push_back(id);
  }

  // Images.
  const json& images = get_array(root, "images", file);
  if (images.empty()) fail(file, "images", "empty list");
  const fs::path json_dir = fs::path(json_path).parent_path();
  std::unordered_map<int64_t, size_t> id_to_index;
  std::unordered_map<std::string, size_t> path_to_index;   // (one file listed under two ids)
  OutsideNames outside;
  ds.images.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string entry = "images[" + std::to_string(i) + "]";
    ImageRecord rec;
    const std::string name = get_string(images[i], "file_name", file, entry);
    rec.id = get_int(images[i], "id", file, entry);
    const int64_t w = get_int(images[i], "width", file, entry);
    const int64_t h = get_int(images[i], "height", file, entry);
    if (w <= 0 || h <= 0 || w > 1000000 || h > 1000000)
      fail(file, entry, "invalid size " + std::to_string(w) + "x" + std::to_string(h));
    rec.width = static_cast<int>(w);
    rec.height = static_cast<int>(h);
    if (name.empty()) fail(file, entry, "empty file_name");
    outside.check(name, entry);
    rec.path = (options.image_dir.empty() ? (options.check_files ? default_image_path(json_dir, name) : json_dir / name)
                                          : fs::path(options.image_dir) / name)
                   .string();
    if (options.check_files) {
      std::error_code ec;
      const auto st = fs::status(rec.path, ec);
      if (!fs::exists(st))
        fail(file, entry,
             "image file not found: " + rec.path +
                 (options.image_dir.empty() ? " (no image folder given: looked beside the JSON file and in its images/)" : ""));
      if (!fs::is_regular_file(st)) fail(file, entry, "image path is not a file: " + rec.path);
    }
    if (id_to_index.count(rec.id)) fail(file, entry, "duplicate image id " + std::to_string(rec.id));
    // (Files merged from several annotators' exports: each entry would hold part of the
    // picture's boxes, training the rest as background, and evaluation would count it twice.)
    const auto [same_file, added] = path_to_index.emplace(fs::absolute(rec.path).lexically_normal().string(), i);
    if (!added)
      fail(file, entry,
           "file_name '" + name + "' is also images[" + std::to_string(same_file->second) + "]'s (id " +
               std::to_string(ds.images[same_file->second].id) +
               "): give each picture one entry, with all its annotations under its id");
    id_to_index[rec.id] = ds.images.size();
    ds.images.push_back(std::move(rec));
  }
  if (const std::string w = outside.warning(file, options.image_dir.empty() ? "the JSON file's folder" : options.image_dir);
      !w.empty())
    rep.warnings.push_back(w);

  // Annotations.
  const json& anns = get_array(root, "annotations", file);
  // (An empty list is a set of pictures without objects, as `synth --empty 1` writes: eval
  // counts the false detections on it; train refuses a training set without boxes.)
  std::unordered_map<int64_t, size_t> ann_id_to_index;   // (ssd-train does not need them: pycocotools does)
  size_t shared_ids = 0;
  std::string first_shared;
  for (size_t i = 0; i < anns.size(); ++i) {
    const std::string entry = "annotations[" + std::to_string(i) + "]";
    const json& a = anns[i];
    if (a.is_object() && a.contains("id") && a["id"].is_number_integer()) {
      if (const auto [it, added] = ann_id_to_index.emplace(a["id"].get<int64_t>(), i); !added && shared_ids++ == 0)
        first_shared = entry + " has id " + a["id"].dump() + ", as annotations[" + std::to_string(it->second) + "] does";
    }
    const int64_t image_id = get_int(a, "image_id", file, entry);
    const int64_t cat = get_int(a, "category_id", file, entry);
    auto img_it = id_to_index.find(image_id);
    if (img_it == id_to_index.end())
      fail(file, entry, "image_id " + std::to_string(image_id) + " is not in images");
    auto cat_it = cat_to_label.find(cat);
    if (cat_it == cat_to_label.end())
      fail(file, entry, "category_id " + std::to_string(cat) + " is not in categories");
    const json& bb = field(a, "bbox", file, entry);
    if (!bb.is_array() || bb.size() != 4)
      fail(file, entry, "bbox is not an array of 4 numbers [x, y, w, h]: " + ssd::json_excerpt(bb));
    double v[4];
    for (int k = 0; k < 4; ++k) {
      if (!bb[k].is_number()) fail(file, entry, "bbox has a non-number: " + bb.dump());
      v[k] = bb[k].get<double>();
      if (!std::isfinite(v[k])) fail(file, entry, "bbox is not finite: " + bb.dump());
    }
    if (v[2] < 0 || v[3] < 0) fail(file, entry, "bbox has a negative size: " + bb.dump());
    ImageRecord& rec = ds.images[img_it->second];
    BoxAnnotation box;
    box.x1 = pixel_value(v[0]);
    box.y1 = pixel_value(v[1]);
    box.x2 = pixel_value(v[0] + v[2]);
    box.y2 = pixel_value(v[1] + v[3]);
    box.label = cat_it->second;
    box.ignore = get_flag(a, "ignore", file, entry) || get_flag(a, "iscrowd", file, entry);
    if (a.contains("area")) {   // optional; COCO evaluation's object size
      const json& ar = a["area"];
      if (!ar.is_number() || !std::isfinite(ar.get<double>()) || ar.get<double>() < 0)
        fail(file, entry, "area is not a non-negative number: " + ssd::json_excerpt(ar));
      box.area = pixel_value(ar.get<double>());
    }
    const bool outside = box.x1 >= rec.width || box.y1 >= rec.height || box.x2 <= 0 || box.y2 <= 0;
    if (outside && v[2] > 0 && v[3] > 0) {
      std::ostringstream os;
      os << "bbox " << bb.dump() << " lies wholly outside image id " << rec.id << " ("
         << rec.width << "x" << rec.height << ")";
      fail(file, entry, os.str());
    }
    if (!clip_box_to_image(box, rec.width, rec.height)) {
      rep.skip_annotation(file + ": " + entry + ": skipped zero-area bbox " + bb.dump());
      continue;
    }
    rec.boxes.push_back(box);
  }

  if (shared_ids)
    rep.warnings.push_back(file + ": " + std::to_string(shared_ids) + " annotation(s) share an id with an earlier one (" +
                           first_shared + "): pycocotools (and tools built on it) keeps one annotation per id and "
                           "misses the others' boxes; give each annotation its own id");

  if (options.skip_unannotated) {
    std::vector<ImageRecord> kept;
    kept.reserve(ds.images.size());
    for (size_t i = 0; i < ds.images.size(); ++i) {
      if (ds.images[i].boxes.empty())
        rep.skip_image(file + ": images[" + std::to_string(i) + "]: skipped, no usable annotation");
      else
        kept.push_back(std::move(ds.images[i]));
    }
    ds.images = std::move(kept);
    if (ds.images.empty()) fail(file, "", "no image has a usable annotation");
  }
  return ds;
}

void write_coco(const Dataset& dataset, const std::string& json_path,
                const std::string& image_dir) {
  json root;
  json images = json::array(), anns = json::array(), cats = json::array();
  const fs::path base = fs::absolute(image_dir).lexically_normal();
  int64_t ann_id = 1;
  for (const auto& rec : dataset.images) {
    const fs::path p = fs::absolute(rec.path).lexically_normal();
    const std::string rel = p.lexically_relative(base).generic_string();
    if (rel.empty() || rel.rfind("..", 0) == 0)
      throw DataError(json_path + ": image " + rec.path + " is not inside " + image_dir);
    images.push_back({{"file_name", rel}, {"height", rec.height}, {"width", rec.width},
                      {"id", rec.id}});
    for (const auto& b : rec.boxes) {
      const double w = b.x2 - b.x1, h = b.y2 - b.y1;
      anns.push_back({{"area", w * h},
                      {"iscrowd", 0},
                      {"image_id", rec.id},
                      {"bbox", {b.x1, b.y1, w, h}},
                      {"category_id", b.label + 1},
                      {"id", ann_id++},
                      {"ignore", b.ignore ? 1 : 0}});
    }
  }
  for (size_t i = 0; i < dataset.labels.size(); ++i)
    cats.push_back({{"supercategory", "none"}, {"id", i + 1}, {"name", dataset.labels[i]}});
  // "info" as in every COCO file: pycocotools >= 2.0.9's loadRes copies it (a file without it
  // fails there with KeyError 'info').
  root["info"] = {{"description", kCocoWriterDescription}};
  root["images"] = std::move(images);
  root["type"] = "instances";
  root["annotations"] = std::move(anns);
  root["categories"] = std::move(cats);

  const fs::path out(json_path);
  if (out.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(out.parent_path(), ec);
  }
  // (Through a temporary file: an interrupted write leaves the old file or none, never half.)
  write_file_atomic(out, root.dump() + "\n");
}

}  // namespace ssdtrain
