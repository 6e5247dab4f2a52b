#include "text.h"

#include <sstream>

namespace ssd {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split_list(const std::string& text, char separator) {
  std::vector<std::string> items;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, separator);) items.push_back(trim(item));
  return items;
}

std::string ascii_glyphs(const std::string& utf8) {
  std::string out;
  bool in_character = false;   // after a lead byte: its continuation bytes add nothing
  for (const char ch : utf8) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out += ch;
      in_character = false;
    } else if (c >= 0xC0 || !in_character) {   // a lead byte, or a continuation byte without one
      out += '?';
      in_character = c >= 0xC0;
    }
  }
  return out;
}

}  // namespace ssd
