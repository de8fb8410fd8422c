// Character classes and case folding for protocol text, ASCII only. The C
// library's versions follow the process locale (Wireshark sets the user's),
// so a byte above 0x7F could count as a letter in one locale and not in
// another; they are also calls where these are a compare or two.
#pragma once

namespace soh::ascii {

constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }
constexpr char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
constexpr char upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

}  // namespace soh::ascii
