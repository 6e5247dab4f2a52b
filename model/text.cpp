#include "text.h"

#include <algorithm>
#include <clocale>
#include <cwchar>
#include <locale.h>
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

std::string join_list(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& item : items) s += (s.empty() ? "" : ", ") + item;
  return s;
}

int display_width(const std::string& utf8) {
  // (glibc's built-in C.UTF-8 locale, whatever the process's own is.)
  static const locale_t kUtf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t(nullptr));
  if (!kUtf8) return static_cast<int>(utf8.size());
  const locale_t old = uselocale(kUtf8);
  int width = 0;
  std::mbstate_t state{};
  for (size_t i = 0; i < utf8.size();) {
    wchar_t c;
    const size_t n = std::mbrtowc(&c, utf8.data() + i, utf8.size() - i, &state);
    if (n == 0 || n == static_cast<size_t>(-1) || n == static_cast<size_t>(-2)) {
      state = std::mbstate_t{};
      width += 1;
      i += 1;
      continue;
    }
    const int w = wcwidth(c);
    width += w < 0 ? 1 : w;
    i += n;
  }
  uselocale(old);
  return width;
}

std::string pad_right(const std::string& utf8, int width) {
  return utf8 + std::string(static_cast<size_t>(std::max(0, width - display_width(utf8))), ' ');
}

std::string pad_left(const std::string& utf8, int width) {
  return std::string(static_cast<size_t>(std::max(0, width - display_width(utf8))), ' ') + utf8;
}

}  // namespace ssd
