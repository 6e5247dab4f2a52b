#include "voc.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <pugixml.hpp>

#include "text.h"

namespace fs = std::filesystem;

namespace ssdtrain {

const std::vector<std::string>& voc_class_names() {
  static const std::vector<std::string> names = {
      "aeroplane", "bicycle", "bird",  "boat",        "bottle", "bus",         "car",
      "cat",       "chair",   "cow",   "diningtable", "dog",    "horse",       "motorbike",
      "person",    "pottedplant", "sheep", "sofa",    "train",  "tvmonitor"};
  return names;
}

namespace {

using ssd::trim;

[[noreturn]] void fail(const std::string& file, const std::string& entry, const std::string& what) {
  throw DataError(file + ": " + (entry.empty() ? "" : entry + ": ") + what);
}

std::string child_text(const pugi::xml_node& node, const char* name, const std::string& file,
                       const std::string& entry) {
  pugi::xml_node c = node.child(name);
  if (!c) fail(file, entry, std::string("missing <") + name + ">");
  return trim(c.text().as_string());
}

double child_number(const pugi::xml_node& node, const char* name, const std::string& file,
                    const std::string& entry) {
  const std::string t = child_text(node, name, file, entry);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size() || errno != 0 || !std::isfinite(v))
    fail(file, entry, std::string("<") + name + "> is not a number: '" + t + "'");
  return v;
}

struct RawObject {
  std::string name;
  BoxAnnotation box;
  std::string entry;
};

struct RawImage {
  ImageRecord rec;
  std::string xml;
  std::vector<RawObject> objects;
};

// Levenshtein distance (insertions, deletions, substitutions) of two short names.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

RawImage parse_xml(const fs::path& xml_path, const fs::path& image_dir, const std::string& id,
                   bool check_files) {
  const std::string file = xml_path.string();
  if (!fs::exists(xml_path)) fail(file, "", "annotation file not found");
  pugi::xml_document doc;
  const pugi::xml_parse_result res = doc.load_file(xml_path.c_str());
  if (!res) {
    if (res.status == pugi::status_file_not_found || res.status == pugi::status_io_error)
      fail(file, "", std::string("cannot read file: ") + res.description());
    fail(file, "", std::string("malformed XML at byte ") + std::to_string(res.offset) + ": " +
                       res.description());
  }
  pugi::xml_node ann = doc.child("annotation");
  if (!ann) fail(file, "", "no <annotation> root element");

  RawImage out;
  out.xml = file;
  pugi::xml_node fn = ann.child("filename");
  std::string filename = fn ? trim(fn.text().as_string()) : "";
  if (filename.empty()) filename = id + ".jpg";
  out.rec.path = (image_dir / filename).string();
  if (check_files && !fs::is_regular_file(out.rec.path))
    fail(file, "filename", "image file not found: " + out.rec.path);
  pugi::xml_node size = ann.child("size");
  if (!size) fail(file, "", "missing <size>");
  const double w = child_number(size, "width", file, "size");
  const double h = child_number(size, "height", file, "size");
  if (w < 1 || h < 1 || w > 1e6 || h > 1e6 || w != std::floor(w) || h != std::floor(h))
    fail(file, "size", "invalid image size " + trim(size.child("width").text().as_string()) +
                           "x" + trim(size.child("height").text().as_string()));
  out.rec.width = static_cast<int>(w);
  out.rec.height = static_cast<int>(h);
  // Numeric ids (VOC's 000012) become the id; other names get their position later.
  char* end = nullptr;
  const long long num = std::strtoll(id.c_str(), &end, 10);
  out.rec.id = (!id.empty() && *end == '\0') ? num : -1;

  int k = 0;
  for (pugi::xml_node obj = ann.child("object"); obj; obj = obj.next_sibling("object"), ++k) {
    const std::string entry = "object[" + std::to_string(k) + "]";
    RawObject o;
    o.entry = entry;
    o.name = child_text(obj, "name", file, entry);
    if (o.name.empty()) fail(file, entry, "empty <name>");
    pugi::xml_node diff = obj.child("difficult");
    o.box.ignore = diff && trim(diff.text().as_string()) != "" &&
                   trim(diff.text().as_string()) != "0";
    pugi::xml_node bb = obj.child("bndbox");
    if (!bb) fail(file, entry, "missing <bndbox>");
    const std::string be = entry + ".bndbox";
    const double xmin = child_number(bb, "xmin", file, be), ymin = child_number(bb, "ymin", file, be);
    const double xmax = child_number(bb, "xmax", file, be), ymax = child_number(bb, "ymax", file, be);
    if (xmax < xmin || ymax < ymin) {
      std::ostringstream os;
      os << "xmax/ymax smaller than xmin/ymin (" << xmin << "," << ymin << "," << xmax << ","
         << ymax << ")";
      fail(file, be, os.str());
    }
    o.box.x1 = pixel_value(xmin - 1.0);
    o.box.y1 = pixel_value(ymin - 1.0);
    o.box.x2 = pixel_value(xmax);
    o.box.y2 = pixel_value(ymax);
    out.objects.push_back(std::move(o));
  }
  return out;
}

}  // namespace

Dataset load_voc(const std::string& root_str, const VocOptions& options, LoadReport* report) {
  LoadReport local_report;
  LoadReport& rep = report ? *report : local_report;
  const fs::path root(root_str);
  const fs::path ann_dir = root / "Annotations", img_dir = root / "JPEGImages";
  if (!fs::is_directory(ann_dir)) fail(ann_dir.string(), "", "not a directory (expected a VOC root)");

  std::vector<std::string> ids;
  if (!options.split.empty()) {
    const fs::path split_file = root / "ImageSets" / "Main" / (options.split + ".txt");
    std::ifstream in(split_file);
    if (!in) fail(split_file.string(), "", "cannot open split file");
    std::string line;
    std::map<std::string, int> line_of;   // each id's line: one listed twice would count twice
    for (int n = 1; std::getline(in, line); ++n) {
      if (n == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);   // a UTF-8 BOM (Notepad's)
      if (line.find('\0') != std::string::npos || (n == 1 && (line.rfind("\xFF\xFE", 0) == 0 || line.rfind("\xFE\xFF", 0) == 0)))
        fail(split_file.string(), "", "not a UTF-8 text file (UTF-16, as PowerShell writes? save it as UTF-8)");
      // Lines are "<id>" (or "<id> <flag>" in per-class lists: take the first token).
      std::istringstream ls(line);
      std::string tok;
      if (!(ls >> tok)) continue;
      if (const auto [first, added] = line_of.emplace(tok, n); !added)
        fail(split_file.string(), "line " + std::to_string(n),
             "id '" + tok + "' is listed again (first on line " + std::to_string(first->second) + ")");
      ids.push_back(tok);
    }
    if (ids.empty()) fail(split_file.string(), "", "empty split list");
  } else {
    for (const auto& e : fs::directory_iterator(ann_dir))
      if (e.is_regular_file() && e.path().extension() == ".xml") ids.push_back(e.path().stem().string());
    std::sort(ids.begin(), ids.end());
    if (ids.empty()) fail(ann_dir.string(), "", "no .xml annotation files");
  }

  std::vector<RawImage> raw;
  raw.reserve(ids.size());
  std::set<std::string> names_found;
  std::map<std::string, std::string> xml_of_image;   // (an XML copied with its <filename>)
  OutsideNames outside;
  for (const auto& id : ids) {
    raw.push_back(parse_xml(ann_dir / (id + ".xml"), img_dir, id, options.check_files));
    const std::string inside = fs::path(raw.back().rec.path).lexically_relative(img_dir).string();
    outside.check(inside.empty() ? raw.back().rec.path : inside, raw.back().xml);
    for (const auto& o : raw.back().objects) names_found.insert(o.name);
    const std::string image = fs::absolute(raw.back().rec.path).lexically_normal().string();
    if (const auto [other, added] = xml_of_image.emplace(image, raw.back().xml); !added)
      fail(raw.back().xml, "filename",
           "names the image " + raw.back().rec.path + ", as " + other->second +
               " does: each image has one annotation file (was this one copied from that one?)");
  }
  if (const std::string w = outside.warning(root.string(), img_dir.string()); !w.empty()) rep.warnings.push_back(w);

  Dataset ds;
  if (!options.labels.empty()) {
    ds.labels = options.labels;
  } else {
    const auto& voc = voc_class_names();
    const bool all_voc = std::all_of(names_found.begin(), names_found.end(), [&](const std::string& n) {
      return std::find(voc.begin(), voc.end(), n) != voc.end();
    });
    if (all_voc) ds.labels = voc;
    else ds.labels.assign(names_found.begin(), names_found.end());
    // Names that differ only in case ("Dog" beside "dog"), or a few that are not VOC's among
    // VOC's (a misspelt one), make classes of their own, and the 20 classes' order (their label
    // ids, shared by VOC models) is lost: said.
    std::map<std::u32string, std::vector<std::string>> by_case;
    std::vector<std::string> misspelt;   // "Dog (dog?)": a name within 2 edits of a VOC name's
    for (const std::string& n : names_found) {
      by_case[ssd::fold_case(n)].push_back(n);
      const std::string lower = ssd::lower_ascii(n);   // (against VOC's names, all ASCII)
      if (std::find(voc.begin(), voc.end(), n) != voc.end() || lower.size() < 3) continue;
      const std::string* nearest = nullptr;
      size_t best = 3;
      for (const std::string& v : voc)
        if (const size_t d = edit_distance(lower, v); d < best) {
          best = d;
          nearest = &v;
        }
      if (nearest) misspelt.push_back(n + " (" + *nearest + "?)");
    }
    for (const auto& [folded, names] : by_case)
      if (names.size() > 1)
        rep.warnings.push_back(root.string() + ": the class names " + ssd::join_list(names) +
                               " differ only in case: they are separate classes");
    if (!misspelt.empty())
      rep.warnings.push_back(root.string() + ": " + ssd::join_list(misspelt) +
                             ": not Pascal VOC class names: the classes are the names used, sorted, not VOC's 20 in "
                             "their usual order");
  }
  std::map<std::string, int> label_of;
  for (size_t i = 0; i < ds.labels.size(); ++i) label_of[ds.labels[i]] = static_cast<int>(i);

  // Image ids (COCO results files refer to them): the numbers of the names when every name is
  // one and no two are the same number ("12" and "012" are), else every image's position.
  std::set<int64_t> numbers;
  bool numbered = true;
  for (const RawImage& r : raw) numbered = numbered && r.rec.id >= 0 && numbers.insert(r.rec.id).second;
  size_t total_boxes = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    RawImage& r = raw[i];
    if (!numbered) r.rec.id = static_cast<int64_t>(i);
    for (auto& o : r.objects) {
      auto it = label_of.find(o.name);
      if (it == label_of.end()) fail(r.xml, o.entry, "class '" + o.name + "' is not in the label list");
      o.box.label = it->second;
      BoxAnnotation b = o.box;
      const bool outside = b.x1 >= r.rec.width || b.y1 >= r.rec.height || b.x2 <= 0 || b.y2 <= 0;
      if (outside && b.x2 > b.x1 && b.y2 > b.y1) {
        std::ostringstream os;
        os << "box lies wholly outside the " << r.rec.width << "x" << r.rec.height << " image";
        fail(r.xml, o.entry, os.str());
      }
      if (!clip_box_to_image(b, r.rec.width, r.rec.height)) {
        rep.skip_annotation(r.xml + ": " + o.entry + ": skipped zero-area box");
        continue;
      }
      r.rec.boxes.push_back(b);
    }
    total_boxes += r.rec.boxes.size();
    if (options.skip_unannotated && r.rec.boxes.empty()) {
      rep.skip_image(r.xml + ": skipped, no usable annotation");
      continue;
    }
    ds.images.push_back(std::move(r.rec));
  }
  if (total_boxes == 0) fail(root.string(), "", "no usable box in any annotation file");
  return ds;
}

}  // namespace ssdtrain
