#include "pubsub/topic_id.h"

#include <openssl/evp.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace peter::pubsub {
namespace {

uint64_t BigEndian64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

TopicId HashTopicName(std::string_view name) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  // EVP_Digest fails only on allocation failure or a missing algorithm;
  // neither is recoverable here.
  if (EVP_Digest(name.data(), name.size(), digest, &length, EVP_sha256(),
                 nullptr) != 1 ||
      length < 16) {
    std::abort();
  }
  return TopicId(BigEndian64(digest), BigEndian64(digest + 8));
}

}  // namespace

// Every publish names its topic, and EVP_Digest costs three allocations
// (OpenSSL 3 fetches the algorithm per call): recently used names are
// remembered per thread. Bounded (at most 4,096 names of up to 256 bytes):
// forgotten all at once when full.
TopicId TopicIdOf(std::string_view name) {
  constexpr size_t kCachedNames = 4096;
  thread_local absl::flat_hash_map<std::string, TopicId> cache;
  constexpr size_t kMaxCachedName = 256;
  if (name.size() > kMaxCachedName) return HashTopicName(name);
  const absl::string_view key(name.data(), name.size());
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  if (cache.size() >= kCachedNames) cache.clear();
  const TopicId id = HashTopicName(name);
  cache.emplace(std::string(name), id);
  return id;
}

}  // namespace peter::pubsub
