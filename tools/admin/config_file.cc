#include "tools/admin/config_file.h"

#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace peter::tools::admin {
namespace {

struct KeyLine {
  std::string fullname;  // parents and name joined by '.', as CLI11 makes it
  int line = 0;
};

std::string Unquote(std::string s) {
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front()) {
    return s.substr(1, s.size() - 2);
  }
  return s;
}

std::vector<std::string> Segments(absl::string_view dotted) {
  std::vector<std::string> out;
  for (absl::string_view piece : absl::StrSplit(dotted, '.', absl::SkipEmpty())) {
    out.push_back(Unquote(std::string(absl::StripAsciiWhitespace(piece))));
  }
  return out;
}

// Where each key of `text` is, following the line rules of CLI11's
// ConfigBase::from_config (sections, comments, `key = value`, bare keys as
// flags, arrays continued over several lines).
std::vector<KeyLine> ScanKeys(const std::string& text, char comment) {
  std::vector<KeyLine> keys;
  std::vector<std::string> section;
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string line(absl::StripAsciiWhitespace(lines[i]));
    if (line.size() < 3) continue;
    if (line.front() == '[' && line.back() == ']') {
      std::string name = line.substr(1, line.size() - 2);
      if (name.size() > 1 && name.front() == '[' && name.back() == ']') {
        name = name.substr(1, name.size() - 2);
      }
      section = absl::AsciiStrToLower(name) == "default" ? std::vector<std::string>{}
                                                         : Segments(name);
      continue;
    }
    if (line.front() == ';' || line.front() == '#' || line.front() == comment) continue;
    std::string name;
    size_t eq = line.find('=');
    if (eq != std::string::npos) {
      name = std::string(absl::StripAsciiWhitespace(line.substr(0, eq)));
      std::string value(absl::StripAsciiWhitespace(line.substr(eq + 1)));
      if (size_t c = value.find(comment); c != std::string::npos) {
        value = std::string(absl::StripAsciiWhitespace(value.substr(0, c)));
      }
      const int first_line = static_cast<int>(i) + 1;
      if (value.size() > 1 && value.front() == '[') {
        while (value.back() != ']' && i + 1 < lines.size()) {
          value = std::string(absl::StripAsciiWhitespace(lines[++i]));
          if (value.empty()) value = " ";
        }
      }
      std::vector<std::string> full = section;
      for (std::string& s : Segments(name)) full.push_back(std::move(s));
      keys.push_back({absl::StrJoin(full, "."), first_line});
      continue;
    }
    name = line.substr(0, line.find(comment));
    std::vector<std::string> full = section;
    for (std::string& s : Segments(absl::StripAsciiWhitespace(name))) full.push_back(std::move(s));
    keys.push_back({absl::StrJoin(full, "."), static_cast<int>(i) + 1});
  }
  return keys;
}

// The option CLI11 would set for key `name` in `app` (App::_parse_single_config).
const CLI::Option* FindOption(const CLI::App& app, const std::string& name) {
  const CLI::Option* op = app.get_option_no_throw("--" + name);
  if (op == nullptr && name.size() == 1) op = app.get_option_no_throw("-" + name);
  if (op == nullptr) op = app.get_option_no_throw(name);
  return op;
}

std::string Fullname(const CLI::ConfigItem& item) { return item.fullname(); }

}  // namespace

ConfigFile::ConfigFile(const CLI::App* root, std::string default_subcommand,
                       const CLI::Option* file_option)
    : root_(root),
      default_subcommand_(std::move(default_subcommand)),
      file_option_(file_option) {}

std::string ConfigFile::FileName() const {
  if (file_option_ == nullptr || file_option_->results().empty()) return "config file";
  return file_option_->results().front();
}

const CLI::App* ConfigFile::Target(const CLI::ConfigItem& item) const {
  const CLI::App* app = root_;
  for (const std::string& parent : item.parents) {
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : app->get_subcommands([](const CLI::App*) { return true; })) {
      if (sub->check_name(parent)) next = sub;
    }
    if (next == nullptr) return nullptr;
    app = next;
  }
  return app;
}

std::vector<CLI::ConfigItem> ConfigFile::from_config(std::istream& input) const {
  std::stringstream buffer;
  buffer << input.rdbuf();
  const std::string text = buffer.str();
  std::istringstream again(text);
  std::vector<CLI::ConfigItem> items = CLI::ConfigBase::from_config(again);
  const std::vector<KeyLine> keys = ScanKeys(text, commentChar);

  auto where = [&](const std::string& fullname) {
    for (const KeyLine& k : keys) {
      if (k.fullname == fullname) return absl::StrCat(FileName(), ":", k.line);
    }
    return FileName();
  };
  for (CLI::ConfigItem& item : items) {
    const std::string as_written = Fullname(item);
    if (item.name == "++" || item.name == "--") {
      if (Target(item) == nullptr) {
        throw CLI::ConfigError(absl::StrCat(FileName(), ": unknown section [",
                                            absl::StrJoin(item.parents, "."), "]"));
      }
      continue;
    }
    if (item.parents.empty() && FindOption(*root_, item.name) == nullptr) {
      item.parents = {default_subcommand_};
    }
    const CLI::App* app = Target(item);
    const CLI::Option* op = app == nullptr ? nullptr : FindOption(*app, item.name);
    if (op == nullptr || !op->get_configurable()) {
      throw CLI::ConfigError(absl::StrCat(
          where(as_written), ": unknown key \"", as_written, "\" (keys are the flags of `",
          root_->get_name(), " ", default_subcommand_, " --help` without their dashes)"));
    }
  }
  return items;
}

void AddConfigFileOption(CLI::App& root, const std::string& default_subcommand) {
  CLI::Option* option = root.set_config(
      "--config", "", "Read flags from this TOML or INI file (command-line flags win)");
  option->expected(1)->type_name("FILE");
  root.allow_config_extras(CLI::config_extras_mode::error);
  root.config_formatter(std::make_shared<ConfigFile>(&root, default_subcommand, option));
  CLI::App* sub = root.get_subcommand(default_subcommand);
  sub->footer(absl::StrCat(
      "Global flags (", root.get_name(), " --help) may follow `", default_subcommand,
      "`: --log-level LEVEL, and --config FILE:\n"
      "read these flags from a TOML or INI file, one `flag = value` line each, without the\n"
      "dashes, e.g. listen = \"127.0.0.1:7000\" or join = [\"a:7000\", \"b:7000\"].\n"
      "Flags given on the command line win over the file; an unknown key is an error."));
}

}  // namespace peter::tools::admin
