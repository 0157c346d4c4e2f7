// tinyds/data/gsm8k_text.cpp — see gsm8k_text.h.
#include "tinyds/data/gsm8k_text.h"

#include <cstdio>
#include <vector>

#include "tinyds/core/error.h"

namespace tinyds {

namespace {

struct Fold {
  unsigned code;      // Unicode code point
  const char* ascii;  // its replacement
};
constexpr Fold kFolds[] = {
    {0x2019, "'"}, {0x2018, "'"}, {0x201C, "\""}, {0x201D, "\""}, {0x2013, "-"}, {0x2014, "-"},
    {0x20AC, "EUR"}, {0x00A3, "GBP"}, {0x00D7, "*"}, {0x00F7, "/"}, {0x00A0, " "}, {'\t', " "},
};

const char* folded(unsigned code) {
  for (const Fold& f : kFolds)
    if (f.code == code) return f.ascii;
  return nullptr;
}

bool in_alphabet(unsigned code) { return code == '\n' || (code >= 0x20 && code <= 0x7E); }

// Decodes one UTF-8 character at s[i]; sets `len` (1 for a byte that starts no valid sequence).
unsigned decode_utf8(const std::string& s, std::size_t i, std::size_t& len) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  const int n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n <= 1 || i + n > s.size()) { len = 1; return c; }
  unsigned code = c & (0x7F >> n);
  for (int k = 1; k < n; k++) {
    const unsigned char b = static_cast<unsigned char>(s[i + k]);
    if ((b >> 6) != 0x2) { len = 1; return c; }
    code = (code << 6) | (b & 0x3F);
  }
  len = static_cast<std::size_t>(n);
  return code;
}

int hex4(const std::string& s, std::size_t i) {  // the 4 hex digits at s[i], or -1
  if (i + 4 > s.size()) return -1;
  int v = 0;
  for (std::size_t k = i; k < i + 4; k++) {
    const char c = s[k];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

std::string describe(unsigned code) {
  char buf[48];
  if (code == '\t') return "TAB (U+0009)";
  if (code == 0xA0) return "no-break space (U+00A0)";
  if (code < 0x20 || code == 0x7F) std::snprintf(buf, sizeof buf, "control character U+%04X", code);
  else std::snprintf(buf, sizeof buf, "U+%04X", code);
  return buf;
}

}  // namespace

void check_gsm8k_line(const std::string& raw, const std::string& path, int line, bool fold) {
  std::string errors, key, text;  // text: the current string's raw content (to learn the key names)
  int n_errors = 0, depth = 0;
  bool in_string = false, checking = false, after_colon = false;
  long column = 0;  // 1-based column of the character at raw[i]
  for (std::size_t i = 0; i < raw.size();) {
    column++;
    const std::size_t at = i;
    const long col = column;  // an escape is reported at its backslash
    std::size_t len = 1;
    unsigned code = decode_utf8(raw, i, len);
    if (!in_string) {
      const char c = raw[i];
      if (c == '"') {
        in_string = true;
        checking = after_colon && depth == 1 && (key == "question" || key == "answer");
        text.clear();
      } else if (c == ':') {
        after_colon = true;
        key = text;
      } else if (c == '{' || c == '[') {
        depth++; after_colon = false;
      } else if (c == '}' || c == ']') {
        depth--; after_colon = false;
      } else if (c == ',') {
        after_colon = false;
      }
      i += len;
      continue;
    }
    if (raw[i] == '"') { in_string = false; i++; continue; }
    if (raw[i] == '\\' && i + 1 < raw.size()) {  // an escape: the character it stands for, at its backslash
      const char e = raw[i + 1];
      len = 2;
      code = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b' : e == 'f' ? '\f' : static_cast<unsigned char>(e);
      if (e == 'u') {
        const int h = hex4(raw, i + 2);
        code = h < 0 ? '?' : static_cast<unsigned>(h);
        len = h < 0 ? 2 : 6;
        // A surrogate pair \uD83D\uDE00 is one character.
        if (h >= 0xD800 && h < 0xDC00 && i + 12 <= raw.size() && raw[i + 6] == '\\' && raw[i + 7] == 'u') {
          const int lo = hex4(raw, i + 8);
          if (lo >= 0xDC00 && lo < 0xE000) {
            code = 0x10000 + ((static_cast<unsigned>(h) - 0xD800) << 10) + (static_cast<unsigned>(lo) - 0xDC00);
            len = 12;
          }
        }
      }
      column += static_cast<long>(len) - 1;  // an escape is several characters of the raw line
    }
    if (!checking) text += raw.substr(i, len);
    if (checking && !in_alphabet(code) && !(fold && folded(code))) {
      if (++n_errors <= 20)
        errors += "\n  " + path + ":" + std::to_string(line) + ":" + std::to_string(col) + ": character " +
                  describe(code) + " '" + raw.substr(at, len) + "' is not in the tokenizer's alphabet";
    }
    i += len;
  }
  if (n_errors > 0)
    throw_error(path, ":", line, ": ", n_errors, " character(s) outside the tokenizer's alphabet (newline and "
                "printable ASCII)", n_errors > 20 ? "; the first 20:" : ":", errors,
                fold ? "" : "\n  (--ascii-fold maps typographic quotes, dashes, EUR, GBP, x, /, no-break space and "
                "tab to ASCII)");
}

void check_alphabet(const std::string& s, const std::string& where) {
  for (std::size_t i = 0; i < s.size();) {
    std::size_t len = 1;
    const unsigned code = decode_utf8(s, i, len);
    if (!in_alphabet(code))
      throw_error(where, ": character ", describe(code), " at character ", i + 1, " is not in the tokenizer's alphabet");
    i += len;
  }
}

std::string ascii_fold(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t len = 1;
    const unsigned code = decode_utf8(s, i, len);
    const char* f = folded(code);
    out += f ? std::string(f) : s.substr(i, len);
    i += len;
  }
  return out;
}

}  // namespace tinyds
