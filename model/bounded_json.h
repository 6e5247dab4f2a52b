// JSON read from files, with its nesting bounded. nlohmann's parser keeps a stack of its own,
// but copying, comparing and dumping a value recurse once per level of nesting: a weights file
// whose header held 100,000 nested brackets (200 KB) overflowed the stack (a crash, where a
// corrupt file must be an ssd::Error). Header-only, LibTorch-free.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "error.h"

namespace ssd {

// Far deeper than any file this project reads (a COCO file nests 4 levels, a weights header 3).
constexpr int kMaxJsonDepth = 64;

// Json::parse(input), but a value nested deeper than max_depth levels is an ssd::Error
// "<what>: JSON nested deeper than <max_depth> levels" (thrown as soon as the parser reaches it,
// before the deep value is built); malformed JSON throws nlohmann's parse_error as parse() does.
template <typename Json = nlohmann::json, typename Input>
Json parse_bounded_json(Input&& input, const std::string& what, int max_depth = kMaxJsonDepth) {
  using Event = typename Json::parse_event_t;
  return Json::parse(std::forward<Input>(input), [&](int depth, Event event, Json&) {
    if (depth >= max_depth && (event == Event::object_start || event == Event::array_start))
      throw Error(what + ": JSON nested deeper than " + std::to_string(max_depth) + " levels");
    return true;
  });
}

// Whether v is an integer that an int holds (not 2.5, "2", 1e30 or 2^31).
template <typename Json>
bool json_is_int(const Json& v) {
  if (!v.is_number_integer()) return false;
  if (v.is_number_unsigned()) return v.template get<uint64_t>() <= uint64_t(std::numeric_limits<int>::max());
  const int64_t i = v.template get<int64_t>();
  return i >= std::numeric_limits<int>::min() && i <= std::numeric_limits<int>::max();
}

// v as JSON text for an error message, cut to about max_chars ("..." marks the cut).
template <typename Json>
std::string json_excerpt(const Json& v, size_t max_chars = 200) {
  std::string s = v.dump();
  if (s.size() > max_chars) s = s.substr(0, max_chars) + "...";
  return s;
}

}  // namespace ssd
