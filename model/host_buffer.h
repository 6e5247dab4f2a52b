// A block of host memory for video frames, page-locked ("pinned") when asked: the GPU's copy
// engines read pinned memory directly, so a frame that lives in it is uploaded asynchronously
// with no staging copy (FrameView::pinned). LibTorch-free: the GStreamer elements' buffer pool
// allocates its memory through this class.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace ssd {

class HostBuffer {
 public:
  // `size` bytes. pinned: page-locked through LibTorch's CUDA host allocator (throws ssd::Error
  // when no CUDA device is available); otherwise ordinary memory.
  HostBuffer(size_t size, bool pinned);
  // `size` bytes, page-locked when that can be had, else ordinary memory (pinned() tells
  // which; `why_not`, when given, receives why page-locked memory could not be had): a frame
  // in ordinary memory is staged before its upload, like any other, rather than not written at
  // all. Throws ssd::Error when not even ordinary memory can be had.
  static std::unique_ptr<HostBuffer> pinned_if_possible(size_t size, std::string* why_not = nullptr);
  ~HostBuffer();
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  uint8_t* data() const;
  size_t size() const;
  bool pinned() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ssd
