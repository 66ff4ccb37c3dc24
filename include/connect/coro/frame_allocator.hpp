// Recycles coroutine frames per thread so that a task per read or write costs no malloc in steady state.
// Not a general allocator: frames freed on another thread simply go to that thread's lists.
#pragma once

#include <cstddef>
#include <new>

namespace cproxy::coro {

class frame_allocator {
 public:
  static void* allocate(std::size_t size) {
#if defined(__SANITIZE_ADDRESS__)
    return ::operator new(size);  // under ASan every frame is fresh, so use-after-free is caught
#endif
    const std::size_t cls = size_class(size);
    if (cls < class_count) {
      node*& head = free_lists()[cls];
      if (head) {
        node* n = head;
        head = n->next;
        --counts()[cls];
        return n;
      }
      return ::operator new(class_bytes(cls));
    }
    return ::operator new(size);
  }

  static void deallocate(void* p, std::size_t size) noexcept {
#if defined(__SANITIZE_ADDRESS__)
    ::operator delete(p);
    return;
#endif
    const std::size_t cls = size_class(size);
    if (cls < class_count && counts()[cls] < max_cached(cls)) {
      node* n = static_cast<node*>(p);
      n->next = free_lists()[cls];
      free_lists()[cls] = n;
      ++counts()[cls];
      return;
    }
    ::operator delete(p);
  }

 private:
  struct node {
    node* next;
  };
  static constexpr std::size_t granule = 64;
  // Frames up to 4 KiB are recycled: the exchange stages' frames (heads, buffers, strings inline) are
  // 1-3 KiB, and a malloc of each per request showed in the keep-alive profile.
  static constexpr std::size_t class_count = 64;
  // Each list keeps what was live at once, up to 4096 frames or 512 KiB, whichever is less: at most
  // 32 MiB per thread over all 64 classes, kept for the thread's life.
  static constexpr std::size_t max_cached(std::size_t cls) {
    const std::size_t by_bytes = (512u << 10) / class_bytes(cls);
    return by_bytes < 4096 ? by_bytes : 4096;
  }

  static constexpr std::size_t size_class(std::size_t size) {
    return (size + granule - 1) / granule - 1;
  }
  static constexpr std::size_t class_bytes(std::size_t cls) {
    return (cls + 1) * granule;
  }

  struct lists {
    node* heads[class_count] = {};
    std::size_t counts[class_count] = {};
    ~lists() {
      for (node*& head : heads) {
        while (head) {
          node* n = head;
          head = n->next;
          ::operator delete(n);
        }
      }
    }
  };
  static lists& local() {
    thread_local lists l;
    return l;
  }
  static node** free_lists() {
    return local().heads;
  }
  static std::size_t* counts() {
    return local().counts;
  }
};

}  // namespace cproxy::coro
