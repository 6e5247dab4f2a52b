// Text helpers shared by the parsers of element properties, command-line options and dataset
// files. LibTorch-free.
#pragma once

#include <string>
#include <vector>

namespace ssd {

// s without its leading and trailing blanks (space, tab, CR, LF).
std::string trim(const std::string& s);

// The items of a separated list, each trimmed: "a, b,,c," gives "a", "b", "", "c" (an empty item
// between two separators is kept, a trailing separator adds none, "" gives no item).
std::vector<std::string> split_list(const std::string& text, char separator = ',');

// The items with ", " between them (class names in a message).
std::string join_list(const std::vector<std::string>& items);

}  // namespace ssd
