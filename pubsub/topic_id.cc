#include "pubsub/topic_id.h"

#include <openssl/evp.h>

#include <cstdint>
#include <cstdlib>

namespace peter::pubsub {
namespace {

uint64_t BigEndian64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

TopicId TopicIdOf(std::string_view name) {
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

}  // namespace peter::pubsub
