#include "class_filter.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include "error.h"
#include "text.h"

namespace ssd {

std::string join_labels(const std::vector<std::string>& labels, const char* separator) {
  std::string joined;
  for (const auto& l : labels) joined += (joined.empty() ? "" : separator) + l;
  return joined;
}

void check_class_thresholds(const std::vector<float>& class_thresholds, size_t num_classes, bool per_image) {
  const size_t n = class_thresholds.size();
  if (n != 0 && n != num_classes && !(per_image && num_classes > 0 && n % num_classes == 0))
    throw Error(std::to_string(class_thresholds.size()) + " class thresholds for a model of " +
                std::to_string(num_classes) + " classes");
  for (size_t i = 0; i < n; ++i)
    if (std::isnan(class_thresholds[i])) throw Error("class threshold " + std::to_string(i) + " is NaN");
}

std::string unnameable_label(const std::string& label) {
  if (label.find(',') != std::string::npos) return "a comma separates classes there";
  if (label.find('=') != std::string::npos) return "an equals sign gives a class's threshold there";
  if (trim(label) != label) return "names are trimmed of spaces there";
  // (An escape sequence in a model's label recoloured, cleared or retitled the terminal that
  // ssd-train info, eval or an error message printed it on.)
  if (has_control_characters(label)) return "a control character, such as ESC or CR, is no part of a name";
  return {};
}

std::vector<float> ClassFilter::class_thresholds(float global_threshold, size_t num_classes) const {
  if (empty()) return {};
  std::vector<float> t(num_classes, global_threshold);
  for (size_t c = 0; c < num_classes; ++c) {
    if (!keep.empty() && !(c < keep.size() && keep[c])) t[c] = kDropped;
    else if (c < threshold.size() && threshold[c] >= 0) t[c] = threshold[c];
  }
  return t;
}

ClassFilter parse_class_filter(const std::vector<std::string>& labels, const std::string& classes,
                               const std::string& thresholds, const std::string& classes_name,
                               const std::string& thresholds_name) {
  ClassFilter f;
  f.classes = classes;
  f.thresholds = thresholds;
  auto label_id = [&](const std::string& name, const std::string& where) {
    auto it = std::find(labels.begin(), labels.end(), name);
    if (it == labels.end())
      throw Error("unknown class \"" + name + "\" in " + where + "; the model knows: " + join_labels(labels));
    return static_cast<size_t>(it - labels.begin());
  };
  for (const std::string& item : split_list(classes)) {
    if (item.empty()) continue;
    if (f.keep.empty()) f.keep.assign(labels.size(), false);
    f.keep[label_id(item, classes_name)] = true;
  }   // "" or "," names no class: keep all
  for (const std::string& item : split_list(thresholds)) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    const std::string name = trim(item.substr(0, eq)), value = eq == std::string::npos ? "" : trim(item.substr(eq + 1));
    double v = -1;   // from_chars: the C locale's decimal point whatever the process's locale
    const bool plus = value.size() > 1 && value[0] == '+' && (std::isdigit(static_cast<unsigned char>(value[1])) || value[1] == '.');
    const char* begin = value.data() + plus;   // strtod's "+0.5"
    const auto [end, ec] = std::from_chars(begin, value.data() + value.size(), v);
    if (name.empty() || value.empty() || ec != std::errc() || end != value.data() + value.size() ||
        !(v >= 0 && v <= 1))
      throw Error(thresholds_name + " entry \"" + item + "\" is not label=confidence with a confidence in [0, 1]");
    if (f.threshold.empty()) f.threshold.assign(labels.size(), -1.f);
    float& t = f.threshold[label_id(name, thresholds_name)];
    if (t >= 0)   // "car=0.2,car=0.9": which one was meant?
      throw Error(thresholds_name + " gives class \"" + name + "\" two thresholds");
    t = static_cast<float>(v);
  }
  return f;
}

}  // namespace ssd
