#include "common/config_toml.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

namespace wsfleet {

void ConfigErrors::add(uint32_t line, uint32_t column, std::string_view message) {
  entries_.push_back({line, column, std::string(message)});
}

void ConfigErrors::addAt(const toml::node* node, std::string_view message) {
  if (node != nullptr && node->source().begin.line != 0) {
    add(*node, message);
  } else {
    add(1, 1, message);
  }
}

std::vector<std::string> ConfigErrors::lines() const {
  std::vector<const Entry*> order;
  order.reserve(entries_.size());
  for (const Entry& entry : entries_) order.push_back(&entry);
  std::stable_sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return std::tie(a->line, a->column) < std::tie(b->line, b->column);
  });
  std::vector<std::string> out;
  out.reserve(order.size());
  for (const Entry* entry : order) {
    out.push_back(source_name_ + ":" + std::to_string(entry->line) + ":" +
                  std::to_string(entry->column) + ": " + entry->message);
  }
  return out;
}

Status ConfigErrors::toStatus() const {
  if (entries_.empty()) return Status::ok();
  std::string text;
  for (const std::string& line : lines()) {
    if (!text.empty()) text += '\n';
    text += line;
  }
  return Status(Code::kConfig, "config_invalid", std::move(text));
}

std::optional<toml::table> parseToml(std::string_view text, ConfigErrors& errors) {
  try {
    return toml::parse(text, errors.sourceName());
  } catch (const toml::parse_error& err) {
    errors.add(err.source(), "TOML syntax error: " + std::string(err.description()));
    return std::nullopt;
  }
}

std::string configBaseDir(const std::string& source, bool absolute) {
  std::filesystem::path p(source);
  if (absolute) {
    std::error_code ec;
    std::filesystem::path a = std::filesystem::absolute(p, ec);
    if (!ec) p = a;
  }
  return p.parent_path().string();
}

Result<std::string> readConfigFile(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Status(Code::kConfig, "file_unreadable", "'" + path + "' is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(Code::kConfig, "file_unreadable", "cannot open '" + path + "'");
  std::string text;
  char buf[8192];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > max_bytes) {
      return Status(Code::kConfig, "file_unreadable",
                    "'" + path + "' is larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  if (in.bad()) return Status(Code::kConfig, "file_unreadable", "error reading '" + path + "'");
  return text;
}

std::string_view tomlTypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
  }
  return "an unknown type";
}

std::string quoteForError(std::string_view value) {
  constexpr size_t kMax = 64;
  std::string out = "'";
  for (size_t i = 0; i < value.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (value.size() > kMax) out += "...";
  out += "'";
  return out;
}

const toml::node* findPath(const toml::table& table, std::string_view dotted) {
  const toml::table* current = &table;
  while (true) {
    const size_t dot = dotted.find('.');
    const toml::node* node = current->get(dotted.substr(0, dot));
    if (node == nullptr || dot == std::string_view::npos) return node;
    current = node->as_table();
    if (current == nullptr) return nullptr;
    dotted.remove_prefix(dot + 1);
  }
}

std::string resolveRelativePath(std::string_view base_dir, std::string_view path) {
  std::filesystem::path p(path);
  if (p.is_absolute() || base_dir.empty() || path.empty()) return std::string(path);
  return (std::filesystem::path(base_dir) / p).lexically_normal().string();
}

std::string joinKey(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return std::string(key);
  std::string out(prefix);
  out += '.';
  out += key;
  return out;
}

namespace {

// Levenshtein distance, for "did you mean" hints on misspelt keys.
size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

void walkUnknown(const toml::table& table, const std::string& relative, std::string_view prefix,
                 const std::vector<std::string>& known, ConfigErrors& errors) {
  for (const auto& [key, node] : table) {
    const std::string rel = joinKey(relative, key.str());
    const std::string full = joinKey(prefix, rel);
    const toml::source_region& where = key.source().begin.line != 0 ? key.source() : node.source();
    if (std::find(known.begin(), known.end(), rel) != known.end()) continue;
    const std::string section = rel + ".";
    const bool is_section = std::any_of(known.begin(), known.end(), [&](const std::string& k) {
      return k.compare(0, section.size(), section) == 0;
    });
    if (is_section) {
      if (const toml::table* sub = node.as_table()) {
        walkUnknown(*sub, rel, prefix, known, errors);
      } else {
        errors.add(where, "'" + full + "' must be a table, not " + std::string(tomlTypeName(node)));
      }
      continue;
    }
    std::string message = "unknown key '" + full + "'";
    // Suggest a known key of the same section when one is a small typo away.
    const std::string here = relative.empty() ? "" : relative + ".";
    std::string best;
    size_t best_distance = 3;
    for (const std::string& k : known) {
      if (k.compare(0, here.size(), here) != 0) continue;
      std::string_view leaf = std::string_view(k).substr(here.size());
      leaf = leaf.substr(0, leaf.find('.'));
      const size_t d = editDistance(key.str(), leaf);
      if (d < best_distance) {
        best_distance = d;
        best = joinKey(prefix, here + std::string(leaf));
      }
    }
    if (!best.empty()) message += " (did you mean '" + best + "'?)";
    errors.add(where, message);
  }
}

}  // namespace

void rejectUnknownKeys(const toml::table& table, std::string_view prefix,
                       const std::vector<std::string>& known, ConfigErrors& errors) {
  walkUnknown(table, "", prefix, known, errors);
}

namespace config_detail {

std::string expectedType(std::string_view expected, const toml::node& value) {
  return "expected " + std::string(expected) + ", got " + std::string(tomlTypeName(value));
}

std::string rangeText(int64_t min, int64_t max) {
  if (max == std::numeric_limits<int64_t>::max()) return "(at least " + std::to_string(min) + ")";
  return "(" + std::to_string(min) + ".." + std::to_string(max) + ")";
}

std::string quoteTomlString(std::string_view text) {
  std::ostringstream out;
  out << toml::value<std::string>(std::string(text));
  return out.str();
}

}  // namespace config_detail

}  // namespace wsfleet
