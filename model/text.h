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

// Whether s ends with tail.
bool ends_with(const std::string& s, const std::string& tail);

// s with its ASCII letters in lower case (other bytes as they are: UTF-8 stays valid).
std::string lower_ascii(std::string s);

// s for a terminal or a log: each control character (C0 but newline and tab, DEL, and C1's
// U+0080-U+009F) written as \xNN, so that a name read from a file (a label, an image's file
// name) cannot move the cursor, clear, recolour or retitle the terminal it is printed on; the rest
// (UTF-8 included) as it is.
std::string printable(const std::string& s);

// Whether s holds a control character: one that printable() escapes, or a newline or a tab
// (which printable() keeps for a message's layout; in a name they forge lines and columns).
bool has_control_characters(const std::string& s);

// s in double quotes for a POSIX shell: \, ", $ and ` escaped with a backslash (a value a
// printed command line holds, pasted into a shell, gives the command s).
std::string shell_double_quoted(const std::string& s);

// s in single quotes for a POSIX shell (a ' as '\''): nothing in it is expanded.
std::string shell_single_quoted(const std::string& s);

// UTF-8 text's characters in lower case (towlower in glibc's C.UTF-8, whatever the process's
// locale): equal for names that differ only in case, "Ölkanne" and "ölkanne" as "Dog" and "dog".
std::u32string fold_case(const std::string& utf8);

// The characters of UTF-8 text; each byte that is not part of one, U+FFFD.
std::u32string decode_utf8(const std::string& utf8);

// The columns a terminal gives UTF-8 text: a character its wcwidth() says (2 for East Asian wide
// ones, 0 for combining marks), 1 for each byte that is not valid UTF-8 or a control character.
int display_width(const std::string& utf8);

// `utf8` padded with spaces to `width` columns (display_width()), on the right or the left; as
// it is when wider.
std::string pad_right(const std::string& utf8, int width);
std::string pad_left(const std::string& utf8, int width);

}  // namespace ssd
