// Page-locked host memory for the frames upstream elements write: a GstAllocator whose
// memories are ssd::HostBuffer blocks (page-locked when a CUDA device is available, ordinary
// memory otherwise), and a GstVideoBufferPool on it that ssddetect offers in the allocation
// query when its model runs on CUDA. A source or decoder that takes the pool writes each frame
// where the GPU's copy engine reads it, so ssddetect uploads the frame straight from there
// (ssd::FrameView::pinned) instead of copying it into staging memory first (a 1080p RGBx frame
// is 8 MB: about 1 ms of one CPU core per frame).
//
// The plugin registers the allocator as "SsdHostMemory" (gst_allocator_find()).
#pragma once

#include <gst/gst.h>

namespace gstssd {

// Name and memory type of the allocator.
inline constexpr const char* kHostMemoryName = "SsdHostMemory";

// The process's allocator (transfer none).
GstAllocator* host_allocator();

// A new video buffer pool (transfer full) for `caps`, its buffers in host_allocator() memory,
// with GstVideoMeta; nullptr when `caps` are not raw video caps.
GstBufferPool* new_host_buffer_pool(GstCaps* caps, guint min_buffers, guint max_buffers);

// Whether every memory of `buffer` is page-locked memory of host_allocator().
bool is_pinned(GstBuffer* buffer);

}  // namespace gstssd
