// LazyDeque: a std::deque made on its first push_back. Private to pubsub/.
#ifndef PETER_PUBSUB_LAZY_DEQUE_H_
#define PETER_PUBSUB_LAZY_DEQUE_H_

#include <cstddef>
#include <deque>
#include <memory>
#include <utility>

namespace peter::pubsub {

// The part of std::deque a topic's rarely used queues need. An empty
// std::deque allocates (libstdc++: its map and a first block of 512
// bytes, two allocations and about 600 bytes with a malloc's overhead);
// this one allocates nothing until something is pushed, so a topic that
// never queues (every topic published once) pays a pointer. Once made,
// the deque is kept when it empties (a topic that queues once will
// likely queue again); clear() gives it back.
template <typename T>
class LazyDeque {
 public:
  bool empty() const { return deque_ == nullptr || deque_->empty(); }
  size_t size() const { return deque_ == nullptr ? 0 : deque_->size(); }
  // REQUIRES: !empty().
  T& front() { return deque_->front(); }
  void pop_front() { deque_->pop_front(); }
  void push_back(T value) {
    if (deque_ == nullptr) deque_ = std::make_unique<std::deque<T>>();
    deque_->push_back(std::move(value));
  }
  void clear() { deque_.reset(); }
  bool allocated() const { return deque_ != nullptr; }

 private:
  std::unique_ptr<std::deque<T>> deque_;
};

}  // namespace peter::pubsub

#endif  // PETER_PUBSUB_LAZY_DEQUE_H_
