// A temporary directory for node logs, removed unless the test failed.
#ifndef PETER_TESTS_INTEGRATION_LOG_DIR_H_
#define PETER_TESTS_INTEGRATION_LOG_DIR_H_

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace peter::integration {

class LogDir {
 public:
  LogDir() {
    char path[] = "/tmp/peter-cluster-XXXXXX";
    path_ = mkdtemp(path);
  }
  ~LogDir() {
    if (::testing::Test::HasFailure()) {
      std::printf("node logs kept in %s\n", path_.c_str());
    } else {
      std::filesystem::remove_all(path_);
    }
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace peter::integration

#endif  // PETER_TESTS_INTEGRATION_LOG_DIR_H_
