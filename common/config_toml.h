#pragma once
// Generic TOML configuration machinery shared by every daemon and tool.
//
// A configuration is described by tables of typed options (key, type, default, one-line
// doc, setter), in the manner of Redis's config.c. Loading never stops at the first
// problem: every error goes into a ConfigErrors, positioned "FILE:LINE:COL", so that an
// operator fixes a file in one pass. Keys that no option names are refused, because a
// misspelt key that is silently ignored leaves a default in force that nobody chose.

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "common/status.h"

namespace wsfleet {

// Every error of one file. Secrets must never be passed in messages.
class ConfigErrors {
 public:
  explicit ConfigErrors(std::string source_name) : source_name_(std::move(source_name)) {}

  const std::string& sourceName() const { return source_name_; }

  void add(uint32_t line, uint32_t column, std::string_view message);
  void add(const toml::source_region& where, std::string_view message) {
    add(where.begin.line, where.begin.column, message);
  }
  void add(const toml::node& node, std::string_view message) { add(node.source(), message); }
  // At `node` when it is known, else at the start of the file.
  void addAt(const toml::node* node, std::string_view message);

  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }

  // Formatted "FILE:LINE:COL: message", in file order (the order of discovery breaks ties).
  std::vector<std::string> lines() const;
  // Code::kConfig, reason "config_invalid", lines() joined by '\n'; ok when empty.
  Status toStatus() const;

 private:
  struct Entry {
    uint32_t line;
    uint32_t column;
    std::string message;
  };
  std::string source_name_;
  std::vector<Entry> entries_;
};

// Parses TOML. A syntax error is recorded with its own position and nullopt returned.
std::optional<toml::table> parseToml(std::string_view text, ConfigErrors& errors);

// Reads a whole file (at most `max_bytes`). Errors: Code::kConfig "file_unreadable".
Result<std::string> readConfigFile(const std::string& path, size_t max_bytes = 16u << 20);

// The directory relative paths in a configuration are resolved against: the one holding
// `source` (made absolute when it is a file that was read; as given for a name).
std::string configBaseDir(const std::string& source, bool absolute);

// Reads `path` and calls parse(text, path, its directory made absolute): the loader of
// every configuration file whose relative paths are relative to the file.
template <class Parse>
auto loadConfigWith(const std::string& path, Parse parse)
    -> decltype(parse(std::string_view(), path, path)) {
  Result<std::string> text = readConfigFile(path);
  if (!text) return text.takeStatus();
  return parse(*text, path, configBaseDir(path, true));
}

// "string", "integer", "boolean", "array", "table", ... as a user would call them.
std::string_view tomlTypeName(const toml::node& node);

// A value quoted for an error message: truncated and with control bytes escaped. Never
// use it on a secret.
std::string quoteForError(std::string_view value);

// The node at a dotted path ("websocket.listen") under `table`, or nullptr when a part is
// missing or a section on the way is not a table.
const toml::node* findPath(const toml::table& table, std::string_view dotted);

// `path` itself when absolute or when `base_dir` is empty, else base_dir/path, normalised.
std::string resolveRelativePath(std::string_view base_dir, std::string_view path);

// "a.b" + "c" = "a.b.c"; "" + "c" = "c".
std::string joinKey(std::string_view prefix, std::string_view key);

// One typed option of a configuration struct C.
template <class C>
struct ConfigOption {
  // Stores the default (value == nullptr) or the file's value into `target`; reports
  // problems with `full_key` (the key as written from the file's root) into `errors`.
  using Setter = std::function<void(C& target, const toml::node* value, const std::string& full_key,
                                    ConfigErrors& errors)>;

  std::string key;           // dotted, relative to the table the options are applied to
  std::string type;          // for documentation: "integer", "string", "array of strings"
  std::string default_text;  // the default as it would be written in TOML
  std::string doc;           // one line: what it does
  Setter set;
};

// A check on one string value: returns "" when fine, else what is wrong (without quoting
// the value when it could be secret).
using StringCheck = std::function<std::string(std::string_view)>;

// Applies every option to `target`: the default first, then the file's value if present.
// `prefix` is the dotted path of `table` from the root, for messages.
template <class C>
void applyOptions(const toml::table& table, const std::vector<ConfigOption<C>>& options,
                  std::string_view prefix, C& target, ConfigErrors& errors) {
  for (const ConfigOption<C>& option : options) {
    const std::string full_key = joinKey(prefix, option.key);
    option.set(target, nullptr, full_key, errors);
    if (const toml::node* value = findPath(table, option.key)) {
      option.set(target, value, full_key, errors);
    }
  }
}

// Refuses every key of `table` that is neither one of `known` (dotted, relative to
// `table`) nor a section on the way to one. Keys in `known` may also name sub-tables that
// the caller walks itself: their contents are not looked at. Sections must be tables.
void rejectUnknownKeys(const toml::table& table, std::string_view prefix,
                       const std::vector<std::string>& known, ConfigErrors& errors);

template <class C>
std::vector<std::string> optionKeys(const std::vector<ConfigOption<C>>& options,
                                    std::vector<std::string> extra = {}) {
  for (const ConfigOption<C>& option : options) extra.push_back(option.key);
  return extra;
}

// "key (type, default: X)\n    doc" for each option: for --help style listings.
template <class C>
std::string describeOptions(const std::vector<ConfigOption<C>>& options,
                            std::string_view prefix = "") {
  std::string out;
  for (const ConfigOption<C>& option : options) {
    out += joinKey(prefix, option.key) + " (" + option.type + ", default " + option.default_text +
           ")\n    " + option.doc + "\n";
  }
  return out;
}

// ---- Option factories. `field` is a callable C& -> T& so options can reach nested
// members (e.g. [](Config& c) -> auto& { return c.policy.audience; }).

namespace config_detail {

std::string expectedType(std::string_view expected, const toml::node& value);
std::string rangeText(int64_t min, int64_t max);
std::string quoteTomlString(std::string_view text);

}  // namespace config_detail

template <class C, class Field>
ConfigOption<C> stringOption(std::string key, Field field, std::string def, std::string doc,
                             StringCheck check = {}) {
  std::string def_text = config_detail::quoteTomlString(def);
  auto set = [field, def = std::move(def), check = std::move(check)](
                 C& target, const toml::node* value, const std::string& full_key,
                 ConfigErrors& errors) {
    if (value == nullptr) {
      field(target) = def;
      return;
    }
    const auto* str = value->as_string();
    if (str == nullptr) {
      errors.add(*value, full_key + ": " + config_detail::expectedType("a string", *value));
      return;
    }
    if (check) {
      std::string problem = check(str->get());
      if (!problem.empty()) {
        errors.add(*value, full_key + ": " + problem);
        return;
      }
    }
    field(target) = str->get();
  };
  return {std::move(key), "string", std::move(def_text), std::move(doc), std::move(set)};
}

template <class C, class Field>
ConfigOption<C> boolOption(std::string key, Field field, bool def, std::string doc) {
  auto set = [field, def](C& target, const toml::node* value, const std::string& full_key,
                          ConfigErrors& errors) {
    if (value == nullptr) {
      field(target) = def;
      return;
    }
    const auto* flag = value->as_boolean();
    if (flag == nullptr) {
      errors.add(*value, full_key + ": " + config_detail::expectedType("true or false", *value));
      return;
    }
    field(target) = flag->get();
  };
  return {std::move(key), "boolean", def ? "true" : "false", std::move(doc), std::move(set)};
}

// An integer in [min, max], stored into whatever integral type the field has (the range
// must fit that type; it is checked at start-up, not per value).
template <class C, class Field>
ConfigOption<C> intOption(std::string key, Field field, int64_t def, int64_t min, int64_t max,
                          std::string doc) {
  auto set = [field, def, min, max](C& target, const toml::node* value, const std::string& full_key,
                                    ConfigErrors& errors) {
    using T = std::remove_reference_t<decltype(field(target))>;
    static_assert(std::is_integral_v<T>);
    if (value == nullptr) {
      field(target) = static_cast<T>(def);
      return;
    }
    const auto* number = value->as_integer();
    if (number == nullptr) {
      errors.add(*value, full_key + ": " + config_detail::expectedType("an integer", *value));
      return;
    }
    const int64_t n = number->get();
    if (n < min || n > max) {
      errors.add(*value, full_key + ": " + std::to_string(n) + " is out of range " +
                             config_detail::rangeText(min, max));
      return;
    }
    field(target) = static_cast<T>(n);
  };
  return {std::move(key), "integer", std::to_string(def), std::move(doc), std::move(set)};
}

// One of a fixed set of strings, mapped to values of the field's type.
template <class C, class Field, class T>
ConfigOption<C> enumOption(std::string key, Field field,
                           std::vector<std::pair<std::string, T>> choices, std::string def,
                           std::string doc) {
  std::string names;
  for (const auto& choice : choices) names += (names.empty() ? "" : "|") + choice.first;
  auto set = [field, choices, def, names](C& target, const toml::node* value,
                                          const std::string& full_key, ConfigErrors& errors) {
    std::string_view wanted = def;
    if (value != nullptr) {
      const auto* str = value->as_string();
      if (str == nullptr) {
        errors.add(*value, full_key + ": " + config_detail::expectedType("a string", *value));
        return;
      }
      wanted = str->get();
    }
    for (const auto& choice : choices) {
      if (choice.first == wanted) {
        field(target) = choice.second;
        return;
      }
    }
    errors.addAt(value, full_key + ": " + quoteForError(wanted) + " is not one of " + names);
  };
  return {std::move(key), "string: " + names, config_detail::quoteTomlString(def), std::move(doc),
          std::move(set)};
}

// An array of strings, each converted by `convert(text, out)` which returns "" or a
// problem. The field is a std::vector<T>; the default is a list of texts.
template <class C, class T = std::string, class Field>
ConfigOption<C> listOption(
    std::string key, Field field, std::vector<std::string> def, std::string doc,
    std::function<std::string(std::string_view, T&)> convert = [](std::string_view text, T& out) {
      out = T(text);
      return std::string();
    }) {
  std::string def_text = "[";
  for (const std::string& item : def) {
    def_text += (def_text.size() > 1 ? ", " : "") + config_detail::quoteTomlString(item);
  }
  def_text += "]";
  auto set = [field, def = std::move(def), convert = std::move(convert)](
                 C& target, const toml::node* value, const std::string& full_key,
                 ConfigErrors& errors) {
    std::vector<T> out;
    if (value == nullptr) {
      for (const std::string& item : def) {
        T converted{};
        // Defaults are written by us and converted at start-up; a failure is a bug.
        if (!convert(item, converted).empty()) continue;
        out.push_back(std::move(converted));
      }
      field(target) = std::move(out);
      return;
    }
    const auto* array = value->as_array();
    if (array == nullptr) {
      errors.add(*value,
                 full_key + ": " + config_detail::expectedType("an array of strings", *value));
      return;
    }
    bool ok = true;
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::node& item = *array->get(i);
      const std::string item_key = full_key + "[" + std::to_string(i) + "]";
      const auto* str = item.as_string();
      if (str == nullptr) {
        errors.add(item, item_key + ": " + config_detail::expectedType("a string", item));
        ok = false;
        continue;
      }
      T converted{};
      std::string problem = convert(str->get(), converted);
      if (!problem.empty()) {
        errors.add(item, item_key + ": " + problem);
        ok = false;
        continue;
      }
      out.push_back(std::move(converted));
    }
    if (ok) field(target) = std::move(out);
  };
  return {std::move(key), "array of strings", std::move(def_text), std::move(doc), std::move(set)};
}

// Anything else: the caller writes the setter.
template <class C>
ConfigOption<C> customOption(std::string key, std::string type, std::string default_text,
                             std::string doc, typename ConfigOption<C>::Setter set) {
  return {std::move(key), std::move(type), std::move(default_text), std::move(doc), std::move(set)};
}

// The options of a section struct S (keys relative to the section) as options of the
// configuration C that holds it in `member`, under `prefix`: one option table per
// section kind, shared by every program whose configuration has that section.
template <class C, class S>
std::vector<ConfigOption<C>> liftOptions(const std::vector<ConfigOption<S>>& inner,
                                         std::string_view prefix, S C::*member) {
  std::vector<ConfigOption<C>> out;
  out.reserve(inner.size());
  for (const ConfigOption<S>& option : inner) {
    auto set = [member, set = option.set](C& target, const toml::node* value,
                                          const std::string& full_key, ConfigErrors& errors) {
      set(target.*member, value, full_key, errors);
    };
    out.push_back({joinKey(prefix, option.key), option.type, option.default_text, option.doc, set});
  }
  return out;
}

// The option tables given, one after the other.
template <class C>
std::vector<ConfigOption<C>> joinOptions(
    std::initializer_list<std::vector<ConfigOption<C>>> parts) {
  std::vector<ConfigOption<C>> out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

// A field accessor for the option makers above: WSF_FIELD(Config, section.key).
#define WSF_FIELD(Type, expr) \
  [](Type & c) -> auto& {     \
    return c.expr;            \
  }

}  // namespace wsfleet
