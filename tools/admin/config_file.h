// `--config FILE`: every flag of a subcommand read from a TOML or INI file,
// through CLI11's config support, with errors that name the file and line.
//
//   # /etc/peter/peter.toml
//   listen = "0.0.0.0:7000"      # a flag of `peter node`, without dashes
//   advertise = "192.0.2.10:7000"
//   join = ["192.0.2.11:7000", "192.0.2.12:7000"]
//   log-level = "info"           # a global flag of `peter`
//   [node]                       # keys may also sit in the command's section
//   leaf-set = 16
//
// A key at the top of the file belongs to the program (`peter`'s global
// flags) if it names one of them, otherwise to the default subcommand
// (`node`). A flag on the command line wins over the file (CLI11 fills only
// options the command line left empty). A key that names no flag is a usage
// error, "FILE:LINE: unknown key ...": CLI11 (2.1 in Debian 12) reports
// unknown keys without a line, so the file is checked here first. Bad values
// are reported by CLI11 or the command's own checks, naming the flag but not
// the line.
#ifndef PETER_TOOLS_ADMIN_CONFIG_FILE_H_
#define PETER_TOOLS_ADMIN_CONFIG_FILE_H_

#include <istream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace peter::tools::admin {

// CLI11's TOML/INI reader plus the checks above. `root` is the program's
// app; `file_option` the --config option (for the file's name in errors).
class ConfigFile : public CLI::ConfigBase {
 public:
  ConfigFile(const CLI::App* root, std::string default_subcommand,
             const CLI::Option* file_option);

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;

 private:
  // The app an item's keys belong to, or null for an unknown section.
  const CLI::App* Target(const CLI::ConfigItem& item) const;
  std::string FileName() const;

  const CLI::App* root_;
  std::string default_subcommand_;
  const CLI::Option* file_option_;
};

// Adds `--config FILE` to `root` (global, so `peter node --config FILE`
// reaches it), with unknown keys as errors, and a note on the config file
// in `default_subcommand`'s --help.
void AddConfigFileOption(CLI::App& root, const std::string& default_subcommand);

}  // namespace peter::tools::admin

#endif  // PETER_TOOLS_ADMIN_CONFIG_FILE_H_
