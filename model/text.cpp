#include "text.h"

#include <algorithm>
#include <clocale>
#include <cstdio>
#include <cwchar>
#include <cwctype>
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

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::string lower_ascii(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

namespace {
// The length of the control character at s[i] (1, or 2 for a C1 one), 0 when there is none;
// newline and tab count as text where `layout` is true.
size_t control_at(const std::string& s, size_t i, bool layout) {
  const auto c = static_cast<unsigned char>(s[i]);
  if ((c < 0x20 && !(layout && (c == '\n' || c == '\t'))) || c == 0x7f) return 1;
  if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
      static_cast<unsigned char>(s[i + 1]) <= 0x9f)
    return 2;
  return 0;
}
}  // namespace

std::string printable(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = control_at(s, i, true);
    if (n == 0) {
      out += s[i++];
      continue;
    }
    const auto code = n == 1 ? static_cast<unsigned char>(s[i]) : static_cast<unsigned char>(s[i + 1]);
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", code);
    out += buf;
    i += n;
  }
  return out;
}

bool has_control_characters(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (control_at(s, i, false)) return true;
  return false;
}

std::string shell_double_quoted(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '\\' || c == '"' || c == '$' || c == '`') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string shell_single_quoted(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

namespace {

// glibc's built-in C.UTF-8 locale for this thread while in scope, whatever the process's own is;
// `ok` false where there is no such locale.
class Utf8Locale {
 public:
  Utf8Locale() : ok(locale() != locale_t(nullptr)), old_(ok ? uselocale(locale()) : locale_t(nullptr)) {}
  ~Utf8Locale() {
    if (ok) uselocale(old_);
  }
  Utf8Locale(const Utf8Locale&) = delete;
  Utf8Locale& operator=(const Utf8Locale&) = delete;
  const bool ok;

 private:
  static locale_t locale() {
    static const locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t(nullptr));
    return utf8;
  }
  const locale_t old_;
};

std::u32string decode(const std::string& utf8, bool have_locale) {
  std::u32string out;
  if (!have_locale) {   // ASCII; every other byte, not one
    for (const unsigned char c : utf8) out += c < 0x80 ? char32_t(c) : U'\ufffd';
    return out;
  }
  std::mbstate_t state{};
  for (size_t i = 0; i < utf8.size();) {
    wchar_t c;
    const size_t n = std::mbrtowc(&c, utf8.data() + i, utf8.size() - i, &state);
    if (n == static_cast<size_t>(-1) || n == static_cast<size_t>(-2)) {
      state = std::mbstate_t{};
      out += U'\ufffd';
      i += 1;
    } else {
      out += static_cast<char32_t>(c);
      i += std::max<size_t>(n, 1);   // (n == 0: the NUL character, one byte)
    }
  }
  return out;
}

}  // namespace

std::u32string decode_utf8(const std::string& utf8) {
  const Utf8Locale utf8_locale;
  return decode(utf8, utf8_locale.ok);
}

std::u32string fold_case(const std::string& utf8) {
  const Utf8Locale utf8_locale;
  std::u32string s = decode(utf8, utf8_locale.ok);
  for (char32_t& c : s) {
    c = utf8_locale.ok ? static_cast<char32_t>(towlower(static_cast<wint_t>(c)))
                       : (c >= U'A' && c <= U'Z' ? c - U'A' + U'a' : c);
    if (c == U'\u03c2') c = U'\u03c3';   // (Greek final sigma: ΣΚΥΛΟΣ and σκυλος, which towlower leaves apart)
  }
  return s;
}

int display_width(const std::string& utf8) {
  const Utf8Locale utf8_locale;
  int width = 0;
  for (const char32_t c : decode(utf8, utf8_locale.ok)) {
    const int w = utf8_locale.ok ? wcwidth(static_cast<wchar_t>(c)) : 1;
    width += w < 0 ? 1 : w;
  }
  return width;
}

std::string pad_right(const std::string& utf8, int width) {
  return utf8 + std::string(static_cast<size_t>(std::max(0, width - display_width(utf8))), ' ');
}

std::string pad_left(const std::string& utf8, int width) {
  return std::string(static_cast<size_t>(std::max(0, width - display_width(utf8))), ' ') + utf8;
}

}  // namespace ssd
